"""The "Fool it by drawing" tab, where a drawing becomes a guess and a fooling drawing is saved.

A stroke's guess is the quick guess, from the strokes the page recorded, the moment the pen lifts (`outwit.ml.strokes`,
on the plain route of `outwit.ui.routes`); once the visitor used another tool than the brush (undo, eraser, upload),
the editor's own drawing is guessed instead (`predict`, also `/predict` for scripts). The editor's drawing is read
only by the events that need it (assets/page.js). A save goes through the one saving path (`outwit.dadc.collect`).
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from outwit.dadc.collect import Judgement, NotFooled
from outwit.dadc.reviews import ReviewError
from outwit.ml.preprocess import EmptyDrawingError
from outwit.services import Services
from outwit.ui import scripts
from outwit.ui.components import DIGITS, digit_choice, label_value, unreadable, user_error, visitor
from outwit.ui.routes import guess_route, tried_route
from outwit.ui.sketchpad import BRUSH_RADIUS, CANVAS, sketchpad


def drawing_handlers(services: Services):
    """(predict, flag, list_saved, retract): the tab's handlers, plain functions."""
    collector, reviews = services.collector, services.reviews

    def judge(drawing: dict | None) -> Judgement:
        """The serving model's reading. EmptyDrawingError when there is no digit (an empty canvas, a dot, a blot);
        an image that cannot be read is the visitor's error."""
        if drawing is None:
            raise EmptyDrawingError("the canvas is empty")
        try:
            return collector.judge(drawing)
        except EmptyDrawingError:
            raise
        except ValueError as err:  # not an image we can read: say so, change nothing
            raise unreadable(err) from None

    def predict(drawing: dict | None):
        """A drawing → the model's probabilities for each digit (top 3 shown); nothing when there is no digit."""
        try:
            judgement = judge(drawing)
        except EmptyDrawingError:
            return None
        return label_value(judgement.probs)

    def flag(drawing: dict | None, digit: int | None, name: str | None = None, sandbox: bool = False,
             mine: list | None = None, request: gr.Request | None = None):
        """Save a drawing the model got wrong, with the digit it really is. Returns a status message (and, in
        the page, this session's saved drawings, which it may retract). In the sandbox nothing is saved."""
        try:
            judgement = judge(drawing)
        except EmptyDrawingError as err:
            raise user_error(f"Draw a digit first: {err}") from None
        if digit is None or str(digit) not in DIGITS:
            raise user_error("Pick the digit you drew (0–9)")
        session, user = visitor(request, name)
        try:
            example = collector.fooling(drawing, int(digit), judgement, session=session, user=user)
        except NotFooled as err:
            raise user_error(str(err)) from None
        digit, guess = example.label, example.guess
        if sandbox:
            return (f"Sandbox: you fooled it (you drew {digit}, the model said {guess}). Nothing was saved; "
                    "turn the sandbox off to keep the drawings that fool it."), mine or [], ""
        try:
            saved = collector.save(example)
        except ValueError as err:  # a name that cannot be shown, or the session is at its limit: nothing written
            raise user_error(str(err)) from None
        row, now = saved.row, saved.status
        mine = [*(mine or []), [f"a {digit} the model read as {guess} ({row['id'][:8]})", row["id"]]]
        said = f"Saved: you drew {digit}, the model said {guess}."
        if saved.starts_round:
            return (f"{said} That makes {now.retrain_every}: the model is retraining on them now, and the new round "
                    f"shows below in a few seconds ({now.examples.total} in all)."), mine, row["id"]
        return (f"{said} {now.examples.this_round} this round, {now.examples.total} in all; "
                f"{now.until_next_round} more until the next retrain."), mine, row["id"]

    def list_saved(mine: list, last: str):
        """After a save: this session's saved drawings, the newest picked (what the visitor may retract); the guess
        and the digit cleared for the next drawing."""
        return gr.update(choices=[tuple(m) for m in mine], value=last or None), None, None

    def retract(example_id: str | None, request: gr.Request | None = None) -> str:
        """Take back one of this session's saved drawings: it stays in the log, marked, and is not trained on."""
        try:
            reviews.retract(example_id, session=request.session_hash if request else None)
        except ReviewError as err:
            raise user_error(str(err)) from None
        return "Retracted: it stays in the log, marked, and is left out of training and testing."

    return predict, flag, list_saved, retract


@dataclass(frozen=True)
class DrawingEvents:
    """The tab's events that change what the panel shows, for the page to chain its refresh to."""

    saved: gr.events.Dependency  # runs after a save (and the canvas cleared), whether it was refused or not
    retracted: gr.events.Dependency  # chain with .success: after a retraction that was taken
    routes: list  # the plain routes the tab's page script calls: the quick guess, an attempt counted


def drawing_tab(services: Services, name: gr.Textbox, sandbox: gr.Checkbox) -> DrawingEvents:
    """The tab's layout and wiring; call inside a `gr.Tab`; `name` and `sandbox` are the page's."""
    predict, flag, list_saved, retract = drawing_handlers(services)
    mine = gr.State([])  # this session's saved drawings: [label, id] pairs it may retract
    with gr.Row():
        with gr.Column():
            sketch = sketchpad("sketchpad", "Draw a digit")
            clear = gr.Button("Clear", elem_id="clear")
        with gr.Column():
            guess = gr.Label(num_top_classes=3, label="The model's guess", elem_id="guess")
            digit = digit_choice("digit")
            save = gr.Button("The model was wrong: save it", variant="primary", elem_id="save")
            message = gr.Markdown(elem_id="flag-message")
    # What the page's script clicks when the pen lifts: the quick guess (client-side: it asks the plain route), or,
    # once another tool than the brush was used, the editor's own guess.
    quick = gr.Button("guess", visible="hidden", elem_id="quick-guess")
    editor_guess = gr.Button("guess the drawing", visible="hidden", elem_id="editor-guess")
    with gr.Row():
        saved = gr.Dropdown(label="Your saved drawings this session", choices=[], elem_id="mine",
                            allow_custom_value=True, scale=3)  # an API client sends an id
        retract_button = gr.Button("Retract it", size="sm", elem_id="retract", scale=1)
    retract_message = gr.Markdown(elem_id="retract-message")
    saved_id = gr.Textbox(visible=False, elem_id="saved-id")  # the last save's id, for API clients

    quick.click(None, guess, guess, js=scripts.QUICK_GUESS, show_progress="hidden")
    editor_guess.click(predict, sketch, guess, api_name="predict", trigger_mode="always_last", show_progress="hidden",
                       queue=False)
    sketch.clear(None, sandbox, guess, js=scripts.CLEARED)  # an attempt counted on the plain route /outwit/tried
    clear.click(None, js=scripts.clear_canvas("sketchpad"))
    saving = save.click(flag, [sketch, digit, name, sandbox, mine], [message, mine, saved_id], api_name="flag")
    after_save = saving.success(list_saved, [mine, saved_id], [saved, guess, digit], api_visibility="private").then(
        None, js=scripts.CLEAR_SAVED)
    retracting = retract_button.click(retract, saved, retract_message, api_name="retract")
    shown_as = lambda probs: guess.postprocess(label_value(probs)).model_dump()  # noqa: E731 - as the Label sends it
    quick_route = guess_route(services.predictor.predict, shown_as, CANVAS, BRUSH_RADIUS)
    return DrawingEvents(saved=after_save, retracted=retracting,
                         routes=[quick_route, tried_route(services.collector.tried)])
