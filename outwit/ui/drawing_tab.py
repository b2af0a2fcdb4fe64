"""The "Fool it by drawing" tab, where a drawing becomes a guess and a fooling drawing is saved.

A stroke's guess is the quick guess, from the strokes the page recorded, the moment the pen lifts (`outwit.ml.strokes`,
on the plain route of `outwit.ui.routes`); once the visitor used another tool than the brush (undo, eraser, upload),
the editor's own drawing is guessed instead (`predict`, also `/predict` for scripts). The editor's drawing is read
only by the events that need it (assets/page.js). A save goes through the one saving path (`outwit.dadc.collect`).
The visitor picks the models to fool (`outwit.dadc.opponents`): the guess shown is the first one's, and when any
other is chosen a line under it says what each read.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass

import gradio as gr

from outwit.dadc.collect import Judgement, NotFooled
from outwit.dadc.identity import Visitor, hash_session
from outwit.dadc.opponents import DEFAULT, SERVING, not_offered, said
from outwit.dadc.reviews import ReviewError
from outwit.dadc.store import NO_TARGET
from outwit.ml import strokes
from outwit.ml.preprocess import EmptyDrawingError, ink_image
from outwit.ml.strokes import StrokesError
from outwit.services import Services
from outwit.ui import scripts
from outwit.ui.challenges import challenge_row, goal_box, hints_section, wire_challenges
from outwit.ui.components import DIGITS, InOurWords, digit_choice, label_value, person, unreadable, user_error
from outwit.ui.routes import guess_route, tried_route
from outwit.ui.seeing import see_section
from outwit.ui.sketchpad import BRUSH_RADIUS, CANVAS, sketchpad


def drawing_handlers(services: Services):
    """(predict, flag, list_saved, retract, own_saved, read): the tab's handlers, plain functions."""
    collector, reviews, config = services.collector, services.reviews, services.config

    def chosen(models: list | str | None) -> tuple[str, ...]:
        try:
            return collector.opponents.chosen(models)
        except ValueError as err:
            raise user_error(str(err)) from None

    def judge(drawing, models: tuple[str, ...] = DEFAULT) -> Judgement:
        """The serving model's and the chosen models' readings. EmptyDrawingError when there is no digit (an empty
        canvas, a dot, a blot); an image that cannot be read is the visitor's error."""
        if drawing is None:
            raise EmptyDrawingError("the canvas is empty")
        try:
            return collector.judge(drawing, models)
        except EmptyDrawingError:
            raise
        except ValueError as err:  # not an image we can read: say so, change nothing
            raise unreadable(err) from None

    def read(drawing, models: list | str | tuple | None = None):
        """A drawing (or the quick guess's ink) → the first chosen model's probabilities and, when the choice is
        not the serving model alone, a line saying what each chosen model read. EmptyDrawingError: no digit."""
        judgement = judge(drawing, keys := chosen(models))
        return judgement.chosen[0].probs, ("" if keys == DEFAULT else f"Read as: {said(judgement.chosen)}")

    def predict(drawing: dict | None, models: list | None = None):
        """A drawing → the first chosen model's probabilities for each digit (top 3 shown), and what each chosen
        model read (the page shows it under the guess; an API client gets the probabilities); nothing when there
        is no digit."""
        try:
            keys = collector.opponents.chosen(models)
        except ValueError as err:  # no model chosen: said under the guess (this event's toast would not show)
            return None, html.escape(str(err))
        try:
            probs, readings = read(drawing, keys)
        except EmptyDrawingError:
            return None, ""
        return label_value(probs), readings

    def flag(drawing: dict | None, digit: int | None, name: str | None = None, sandbox: bool = False,
             mine: list | None = None, aim: int | None = NO_TARGET, pen: str | None = None,
             models: list | None = None, request: gr.Request | None = None, profile: gr.OAuthProfile | None = None):
        """Save a drawing the chosen models got wrong, with the digit it really is. `aim`: a targeted challenge
        ("make it read your 3 as an 8": the 8); `pen`: the strokes the page recorded, with their times; `models`:
        the models to fool (default: the serving round's), every one of which must read it as another digit.
        Returns a status message (and, in the page, this visitor's saved drawings, which they may retract). In the
        sandbox nothing is saved."""
        who = person(request, name, profile, required=config.require_sign_in and not sandbox)  # said first
        keys = chosen(models)
        try:
            judgement = judge(drawing, keys)
        except EmptyDrawingError as err:
            raise user_error(f"Draw a digit first: {err}") from None
        if digit is None or str(digit) not in DIGITS:
            raise user_error("Pick the digit you drew (0–9)")
        aimed = NO_TARGET if aim is None else int(aim)  # the picker refused anything but -1 and 0-9
        kept = _kept_strokes(pen, drawing)
        try:
            example = collector.fooling(drawing, int(digit), judgement, session=who.session, user=who.user,
                                        identity=who.kind, aimed=aimed, strokes=kept)
        except NotFooled as err:
            raise user_error(str(err)) from None
        except ValueError as err:  # a challenge to read a digit as itself
            raise user_error(str(err)) from None
        digit, fooled = example.label, _fooled_words(example, keys)
        challenge = _challenge_words(example)
        if sandbox:
            return (f"Sandbox: you fooled it (you drew {digit}, {fooled}).{challenge} Nothing was "
                    "saved; turn the sandbox off to keep the drawings that fool it."), mine or [], ""
        try:
            saved = collector.save(example)
        except ValueError as err:  # a name that cannot be shown, or the session is at its limit: nothing written
            raise user_error(str(err)) from None
        row, now = saved.row, saved.status
        mine = [*(mine or []), [_saved_label(row), row["id"]]]
        said = f"Saved: you drew {digit}, {fooled}.{challenge}"
        if saved.starts_round:
            return (f"{said} That makes {now.retrain_every}: the model is retraining on them now, and the new round "
                    f"shows below in a few seconds ({now.examples.total} in all)."), mine, row["id"]
        return (f"{said} {now.examples.this_round} this round, {now.examples.total} in all; "
                f"{now.until_next_round} more until the next retrain."), mine, row["id"]

    def list_saved(mine: list, last: str):
        """After a save: this visitor's saved drawings, the newest picked (what they may retract); the guess, the
        digit and what each model read cleared for the next drawing."""
        return gr.update(choices=[tuple(m) for m in mine], value=last or None), None, None, ""

    def own_saved(profile: gr.OAuthProfile | None = None):
        """On opening the page signed in: every drawing this person saved and has not retracted, from any tab,
        device or replica, to retract later; as it was for anyone else."""
        if profile is None:
            return gr.update(), gr.update()
        me = hash_session(Visitor.of(None, None, profile.username).session)
        mine = [[_saved_label(row), row["id"]] for row in services.store.rows()
                if row.get("session") == me and reviews.status(row) != "retracted"]
        return mine, gr.update(choices=[tuple(m) for m in mine], value=None,
                               label="Your saved drawings (signed in: from every visit)")

    def retract(example_id: str | None, request: gr.Request | None = None,
                profile: gr.OAuthProfile | None = None) -> str:
        """Take back one of your saved drawings (this session's; signed in, any of yours): it stays in the log,
        marked, and is not trained on."""
        try:
            reviews.retract(example_id, session=person(request, None, profile).session)
        except ReviewError as err:
            raise user_error(str(err)) from None
        return "Retracted: it stays in the log, marked, and is left out of training and testing."

    return predict, flag, list_saved, retract, own_saved, read


def _fooled_words(example, keys: tuple[str, ...]) -> str:
    """"the model said 5", or for a choice of models "the robust CNN said 5 and the ViT 8"."""
    if keys == DEFAULT:
        return f"the model said {example.guess}"
    words = [f"{'the ' if r.model != SERVING else ''}{r.name} said {r.guess}" for r in example.readings]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _kept_strokes(pen: str | None, drawing) -> str:
    """The page's strokes as the row keeps them (JSON text), placed on the drawing's own ink; "" when there are
    none (another tool was used)."""
    if not pen:
        return ""
    try:
        return json.dumps(strokes.quickdraw(pen, CANVAS, ink_image(drawing), BRUSH_RADIUS), separators=(",", ":"))
    except StrokesError as err:
        raise user_error(f"The pen strokes sent with the drawing can't be read: {err}") from None


def _challenge_words(example) -> str:
    if example.aimed == NO_TARGET:
        return ""
    if example.target != NO_TARGET:
        return f" Challenge met: it read your {example.label} as a {example.target}!"
    return (f" Not the {example.aimed} you aimed for, so it counts as a plain fooling drawing "
            "(the challenge stays on).")


def _saved_label(row: dict) -> str:
    return f"a {row['label']} the model read as {row['guess']} ({row['id'][:8]})"


class ModelBoxes(InOurWords, gr.CheckboxGroup):
    """The models to fool; a model that is not offered is refused."""

    block = "checkboxgroup"

    def refusal(self, payload) -> str:
        offered = [key for _, key in self.choices]
        unknown = next((m for m in payload if m not in offered), payload) if isinstance(payload, list) else payload
        return not_offered(unknown, offered)


def models_to_fool(services: Services) -> tuple[ModelBoxes, gr.Button]:
    """The choice of models to fool (the serving round's by default), and a button that ticks them all."""
    with gr.Row():
        opponents = ModelBoxes(services.collector.opponents.choices(), value=[SERVING], label="Models to fool",
                                     info="Tick several to fool them all: a drawing counts when every one gets it "
                                          "wrong. Rounds retrain this round's model; the others stay as they are.",
                                     elem_id="opponents", scale=4)
        fool_all = gr.Button("Fool them all", size="sm", elem_id="fool-all", scale=1)
    return opponents, fool_all


@dataclass(frozen=True)
class DrawingEvents:
    """The tab's events that change what the panel shows, for the page to chain its refresh to."""

    saved: gr.events.Dependency  # runs after a save (and the canvas cleared), whether it was refused or not
    retracted: gr.events.Dependency  # chain with .success: after a retraction that was taken
    own: tuple  # (handler, outputs): on the page's load, a signed-in person's saved drawings
    routes: list  # the plain routes the tab's page script calls: the quick guess, an attempt counted


def drawing_tab(services: Services, name: gr.Textbox, sandbox: gr.Checkbox) -> DrawingEvents:
    """The tab's layout and wiring; call inside a `gr.Tab`; `name` and `sandbox` are the page's."""
    predict, flag, list_saved, retract, own_saved, read = drawing_handlers(services)
    mine = gr.State([])  # this visitor's saved drawings: [label, id] pairs they may retract
    goal_box(services)
    with gr.Row():
        with gr.Column():
            sketch = sketchpad("sketchpad", "Draw a digit")
            clear = gr.Button("Clear", elem_id="clear")
        with gr.Column():
            guess = gr.Label(num_top_classes=3, label="The model's guess", elem_id="guess")
            readings = gr.Markdown(elem_id="readings")
            opponents, fool_all = models_to_fool(services)
            digit = digit_choice("digit")
            aim, suggest, challenge = challenge_row()
            save = gr.Button("The model was wrong: save it", variant="primary", elem_id="save")
            message = gr.Markdown(elem_id="flag-message")
    # What the page's script clicks when the pen lifts: the quick guess (client-side: it asks the plain route), or,
    # once another tool than the brush was used, the editor's own guess.
    quick = gr.Button("guess", visible="hidden", elem_id="quick-guess")
    editor_guess = gr.Button("guess the drawing", visible="hidden", elem_id="editor-guess")
    pen = gr.Textbox(visible=False, elem_id="pen")  # the strokes, set by the save's client-side step
    with gr.Row():
        saved = gr.Dropdown(label="Your saved drawings this session", choices=[], elem_id="mine",
                            allow_custom_value=True, scale=3)  # an API client sends an id
        retract_button = gr.Button("Retract it", size="sm", elem_id="retract", scale=1)
    retract_message = gr.Markdown(elem_id="retract-message")
    saved_id = gr.Textbox(visible=False, elem_id="saved-id")  # the last save's id, for API clients
    see_section(services, sketch)
    hints_section(services)

    read_out = gr.State("")  # what each chosen model read, from the editor's guess (an API client gets the Label)
    quick.click(None, [guess, opponents], [guess, readings], js=scripts.QUICK_GUESS, show_progress="hidden")

    def guessed(trigger, **api):  # the drawing guessed by the chosen models; what each read shown under it
        trigger(predict, [sketch, opponents], [guess, read_out], trigger_mode="always_last", show_progress="hidden",
                queue=False, **api).then(lambda text: text, read_out, readings, api_visibility="private",
                                         show_progress="hidden", queue=False)

    guessed(editor_guess.click, api_name="predict")
    guessed(opponents.change, api_visibility="private")  # a new choice of models (or all of them)
    every_model = [key for _, key in services.collector.opponents.choices()]
    fool_all.click(None, None, opponents, js=f"() => [{json.dumps(every_model)}]")  # one output: a list
    # an attempt counted on the plain route /outwit/tried, with the digit read and the challenge on
    sketch.clear(None, [sandbox, aim], [guess, readings], js=scripts.CLEARED)
    clear.click(None, js=scripts.clear_canvas("sketchpad"))
    saving = save.click(flag, [sketch, digit, name, sandbox, mine, aim, pen, opponents], [message, mine, saved_id],
                        api_name="flag", js=scripts.with_strokes(at=6))
    after_save = saving.success(list_saved, [mine, saved_id], [saved, guess, digit, readings],
                                api_visibility="private").then(
        None, js=scripts.CLEAR_SAVED)
    retracting = retract_button.click(retract, saved, retract_message, api_name="retract")
    wire_challenges(services, suggest, [digit, aim, challenge])
    shown_as = lambda probs: guess.postprocess(label_value(probs)).model_dump()  # noqa: E731 - as the Label sends it
    quick_route = guess_route(read, shown_as, CANVAS, BRUSH_RADIUS)
    return DrawingEvents(saved=after_save, retracted=retracting, own=(own_saved, [mine, saved]),
                         routes=[quick_route, tried_route(services.collector.tried)])
