"""Outwit: draw a digit, fool the model, flag it; every N flags the model retrains in the background.

`python app.py` serves the page on port 7860. `build_demo(config, services)` builds it for tests and Spaces; the
services it talks to are started by `services.start_services(config)`.
"""
from __future__ import annotations

import logging
import signal
import sys

import gradio as gr
import pandas as pd
import torch
from starlette.middleware import Middleware

from config import Config
from http_limits import BodyLimit
from hub import SyncStatus
from metrics import Accuracy
from preprocess import EmptyDrawingError
from publish import PublishStatus
from services import AppStatus, Services, start_services
from admin import admin_tab
from attack_tab import machine_adversary_tab
from review_tabs import rounds_tab, validate_tab
from reviews import Reviews, ReviewError
import strokes
from strokes import StrokesError
from ui import (BRUSH_RADIUS, CANVAS, EDITOR_CHANGED_JS, LABELS_JS, PAGE_CSS, PEN_UP_HEAD, RECORD_STROKES_JS,
                SELECT_BRUSH_JS, STROKES_PAYLOAD_JS, clear_canvas_js, digit_choice, display_name_box, label_value,
                sketchpad, unreadable, user_error, visitor)

log = logging.getLogger(__name__)
# ---------------------------------------------------------------------------------------------- handlers
def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _accuracy(accuracy: Accuracy | None) -> str:
    return "measuring…" if accuracy is None else f"**{_percent(accuracy.top1)}**"


def summary_markdown(status: AppStatus) -> str:
    worker = status.worker
    mnist, adversarial, rate, examples = worker.mnist, worker.adversarial, worker.error_rate, worker.examples
    training = f" · {retraining(worker)}" if worker.training else ""
    mnist_name = f"`{mnist.dataset}`, {mnist.size:,} images" if mnist and mnist.size else "the MNIST test split"
    return (
        f"### {round_landed(worker) or f'Round {worker.round}'}{training}\n"
        f"- Accuracy on MNIST ({mnist_name}): {_accuracy(mnist)}\n"
        f"- Accuracy on held-out adversarial examples ({adversarial.size if adversarial else 0} examples): "
        f"{_accuracy(adversarial)}\n"
        f"{robust_line(worker.robust)}"
        f"- Model error rate this round: {rate.flags} fooled of {rate.attempts} drawings judged "
        f"({_percent(rate.rate)}): of the drawings the model guessed this round, the share people saved as wrong. "
        "Lower means it is harder to fool\n"
        f"- Adversarial examples: {examples.total} in all ({examples.train} train, {examples.test} held out), "
        f"{examples.this_round} this round; **{worker.until_next_round}** more until the next retrain\n"
        f"- {sync_line(status.sync, status.models)}"
    )


def retraining(worker) -> str:
    """The round under way: how long it has run, and how long the last one took."""
    line = "**retraining now…**"
    if worker.training_seconds is not None:
        line += f" {worker.training_seconds:.0f} s in"
    took = [r.seconds for r in worker.history if r.seconds and r.status in ("promoted", "rejected")]
    return line + (f" (the last round took {took[-1]:.0f} s)" if took else "")


def round_landed(worker) -> str | None:
    """The serving round in a visitor's words, once a round has been promoted: "Round 3 is live: 96.0% on held-out
    drawings like yours, up from 81.0%". None while the model as shipped serves."""
    promoted = [r for r in worker.history if r.status in ("base", "promoted")]
    if worker.round == 0 or not promoted or promoted[-1].round != worker.round:
        return None
    now = promoted[-1].adversarial
    if now is None or now.top1 is None:
        return f"Round {worker.round} is live"
    line = f"Round {worker.round} is live: {_percent(now.top1)} on held-out drawings like yours"
    before = promoted[-2].adversarial if len(promoted) > 1 else None
    if before is not None and before.top1 is not None:
        change = "up" if now.top1 > before.top1 else "down" if now.top1 < before.top1 else "level"
        line += f", {change} from {_percent(before.top1)}" if change != "level" else ", level with the round before"
    return line


def review_line(reviews: Reviews) -> str:
    """Where the examples stand, once anyone voted or retracted, or when votes are required."""
    if not reviews.required and not reviews.events():
        return ""
    counts = reviews.counts()
    needed = f"{reviews.required} agreeing votes" if reviews.required else "the flag alone (trusted)"
    return (f"\n- Validation: {counts['validated']} validated, {counts['pending']} waiting, {counts['rejected']} "
            f"voted incorrect, {counts['retracted']} retracted; an example is trained on after {needed}")


def robust_line(robust: Accuracy | None) -> str:
    """The serving model under a gradient attack (measured by the worker on a fixed subset), when measured."""
    if robust is None:
        return ""
    return f"- Accuracy under a gradient attack (`{robust.dataset}`): {_accuracy(robust)}\n"


def sync_line(sync: SyncStatus, models: PublishStatus | None) -> str:
    line = f"Storage: {sync.reason}" if not sync.enabled else dataset_line(sync)
    if models:
        line += f"\n- Models published to `{models.repo}`: last {models.last_push or 'not yet'}"
        line += f", {models.waiting} rounds waiting" if models.waiting else ""
    return line


def dataset_line(sync: SyncStatus) -> str:
    line = f"Hub dataset `{sync.repo}`: last push {sync.last_push or 'not yet'}, {sync.waiting} examples waiting"
    if sync.phase:
        line += f" ({sync.phase})"
    if sync.last_error:
        line += " · the last push failed; it will be retried"
    return line


def accuracy_frame(status: AppStatus) -> pd.DataFrame:
    """One row per promoted round and test set. The round is text: the plot's x axis then has one tick per round
    (as numbers, two rounds got ticks at 0, 0.5 and 1, which read "0, 1, 1" as whole numbers)."""
    rows = []
    for record in status.worker.history:
        if record.status in ("base", "promoted"):  # a RoundSummary: the JSON status, not a RoundRecord
            for name, accuracy in (("MNIST test", record.mnist), ("adversarial test", record.adversarial),
                                   ("MNIST under PGD", record.robust)):
                if accuracy is not None and accuracy.top1 is not None:
                    rows.append({"round": str(record.round), "accuracy": accuracy.top1, "measured on": name})
    return pd.DataFrame(rows, columns=["round", "accuracy", "measured on"])


def digits_frame(status: AppStatus) -> pd.DataFrame:
    per_digit = status.worker.examples.per_digit
    return pd.DataFrame({"digit": list(per_digit), "examples": list(per_digit.values())})


def how_it_works(retrain_every: int) -> str:
    return ("# Outwit\nDraw a digit and try to make the model guess wrong: the drawings that fool it are what it "
            "learns from. When it guesses wrong, pick the digit you drew and save the drawing; every "
            f"{retrain_every} saved drawings the model retrains on them in the background, and the figures below "
            "show whether it got harder to fool.")


def plot_updates(status: AppStatus) -> tuple[dict, dict]:
    """The two plots, with a sentence where there is nothing to draw yet: before round 1 the accuracy plot has one
    point (round 0, the model as shipped), and before the first save every digit counts 0."""
    worker = status.worker
    accuracy_caption = ""  # "", not None: None in an update leaves the old caption up
    if worker.round == 0 and worker.training:
        accuracy_caption = "Round 0 is the model as shipped. Round 1 is training now: it appears here when it lands."
    elif worker.round == 0:
        accuracy_caption = (f"Round 0 is the model as shipped. Round 1 appears after {worker.retrain_every} saved "
                            f"drawings: {worker.until_next_round} to go.")
    counts = worker.examples.per_digit
    digits_caption = "" if any(counts.values()) else "No drawings saved yet: each one you save is counted here."
    frame = accuracy_frame(status)
    in_order = list(dict.fromkeys(frame["round"]))  # the rounds as text sort "10" before "2"
    return (gr.update(value=frame, caption=accuracy_caption, sort=in_order),
            gr.update(value=digits_frame(status), caption=digits_caption,
                      y_lim=[0, max(5, *counts.values()) if counts else 5]))


def drawing_tab():
    with gr.Row():
        with gr.Column():
            sketch = sketchpad("sketchpad", "Draw a digit")
            clear = gr.Button("Clear", elem_id="clear")
        with gr.Column():
            guess = gr.Label(num_top_classes=3, label="The model's guess", elem_id="guess")
            digit = digit_choice("digit")
            save = gr.Button("The model was wrong: save it", variant="primary", elem_id="save")
            message = gr.Markdown(elem_id="flag-message")
    return sketch, clear, guess, digit, save, message


def quick_guess_inputs() -> tuple[gr.Textbox, gr.Button]:
    """The page's quick guess (strokes.py): where its script puts the strokes, and the button it clicks."""
    return gr.Textbox(visible=False, elem_id="strokes"), gr.Button("guess", visible="hidden", elem_id="quick-guess")


def build_demo(config: Config, services: Services) -> gr.Blocks:
    predictor, store, worker, flagger = services.predictor, services.store, services.worker, services.flagger
    reviews = services.reviews

    def read_drawing(drawing: dict | None):
        """The model's probabilities. EmptyDrawingError when there is no digit (an empty canvas, a dot, a blot);
        an image that cannot be read is the visitor's error."""
        if drawing is None:
            raise EmptyDrawingError("the canvas is empty")
        try:
            return predictor.predict(drawing)
        except EmptyDrawingError:
            raise
        except ValueError as err:  # not an image we can read: say so, change nothing
            raise unreadable(err) from None

    def predict(drawing: dict | None, judged: bool = False):
        """A drawing → the model's probabilities for each digit (top 3 shown); nothing when there is no digit."""
        try:
            probs = read_drawing(drawing)
        except EmptyDrawingError:
            return None, judged
        return label_value(probs), True

    def quick_guess(payload: str):
        """The strokes the page recorded → the top-3 digits, the moment the pen lifts; the editor's value follows."""
        if not payload:
            return gr.skip()
        try:
            ink = strokes.ink(payload, CANVAS, BRUSH_RADIUS)
        except StrokesError as err:
            raise user_error(f"The quick guess could not read the strokes: {err}") from None
        try:
            probs = predictor.predict(ink)
        except EmptyDrawingError:
            return None
        return label_value(probs)

    def finish_attempt(judged: bool, sandbox: bool):
        """The visitor cleared a judged drawing without flagging it: one more attempt that did not fool."""
        if judged and not sandbox:
            worker.record_attempt(fooled=False)
        return None, False

    def flag(drawing: dict | None, digit: int | None, name: str | None = None, sandbox: bool = False,
             mine: list | None = None, request: gr.Request | None = None):
        """Save a drawing the model got wrong, with the digit it really is. Returns a status message (and, in
        the page, this session's saved drawings, which it may retract). In the sandbox nothing is saved."""
        try:
            probs = read_drawing(drawing)
        except EmptyDrawingError as err:
            raise user_error(f"Draw a digit first: {err}") from None
        if digit is None or str(digit) not in [str(d) for d in range(10)]:
            raise user_error("Pick the digit you drew (0–9)")
        digit, guess = int(digit), int(probs.argmax())
        if guess == digit:
            raise user_error(f"The model already reads this as {digit}: nothing saved. Draw one it gets wrong.")
        if sandbox:
            return (f"Sandbox: you fooled it (you drew {digit}, the model said {guess}). Nothing was saved; "
                    "turn the sandbox off to keep the drawings that fool it."), mine or [], ""
        session, user = visitor(request, name)
        try:
            row = flagger.flag_example([drawing, digit, guess, float(probs[guess]),
                                        predictor.current[1].get("round", 0), session], username=user)
        except ValueError as err:  # a name that cannot be shown, or the session is at its limit: nothing written
            raise user_error(str(err)) from None
        worker.record_attempt(fooled=True)
        completes = worker.until_next_round() == 0  # this save starts a round
        worker.notify()
        now = worker.status()
        mine = [*(mine or []), [f"a {digit} the model read as {guess} ({row['id'][:8]})", row["id"]]]
        saved = f"Saved: you drew {digit}, the model said {guess}."
        if completes:
            return (f"{saved} That makes {now.retrain_every}: the model is retraining on them now, and the new round "
                    f"shows below in a few seconds ({now.examples.total} in all)."), mine, row["id"]
        return (f"{saved} {now.examples.this_round} this round, {now.examples.total} in all; "
                f"{now.until_next_round} more until the next retrain."), mine, row["id"]

    def list_saved(mine: list, last: str):
        """This session's saved drawings, the newest picked: what the visitor may retract."""
        return gr.update(choices=[tuple(m) for m in mine], value=last or None)

    def retract(example_id: str | None, request: gr.Request | None = None) -> str:
        """Take back one of this session's saved drawings: it stays in the log, marked, and is not trained on."""
        try:
            reviews.retract(example_id, session=request.session_hash if request else None)
        except ReviewError as err:
            raise user_error(str(err)) from None
        return "Retracted: it stays in the log, marked, and is left out of training and testing."

    def status() -> dict:
        """Round, accuracies, counts, examples until the next round and the Hub sync state, as JSON."""
        return services.status().to_json()

    def panel(current: AppStatus | None = None):
        current = current or services.status()
        shown = [row for row in store.latest(4 * config.gallery_size) if reviews.shown(row)][:config.gallery_size]
        gallery = [(str(store.path_of(row)), f"drawn {row['label']}, model said {row['guess']}") for row in shown]
        return (summary_markdown(current) + review_line(reviews), *plot_updates(current),
                gr.update(value=gallery, visible=bool(gallery)))  # no empty box before the first save

    def refresh(seen: int | None):
        """The panel, with a toast when a new round lands while the page is open; and the round now serving."""
        current = services.status()
        now = current.worker
        if seen is not None and now.round > seen and (landed := round_landed(now)):
            gr.Info(f"{landed}. Can you still fool it?")
        return (*panel(current), now.round)

    with gr.Blocks(title="Outwit: fool the digit model") as demo:
        judged = gr.State(False)
        seen_round = gr.State(None)  # the round this page last showed, for refresh()
        gr.Markdown(how_it_works(config.retrain_every), elem_id="how-it-works")
        mine = gr.State([])  # this session's saved drawings: [label, id] pairs it may retract
        with gr.Row(equal_height=True):  # a column each: on a phone the sandbox goes under the name (side by side,
            with gr.Column(scale=3, min_width=240):  # in one form, its label wrapped a word per line)
                name = display_name_box()
            with gr.Column(scale=2, min_width=240):
                sandbox = gr.Checkbox(label="Sandbox: play without saving anything", elem_id="sandbox")
        with gr.Tabs():
            with gr.Tab("Fool it by drawing", id="draw"):
                sketch, clear, guess, digit, save, message = drawing_tab()
                strokes_box, quick = quick_guess_inputs()
                with gr.Row():
                    saved = gr.Dropdown(label="Your saved drawings this session", choices=[], elem_id="mine",
                                        allow_custom_value=True, scale=3)  # an API client sends an id
                    retract_button = gr.Button("Retract it", size="sm", elem_id="retract", scale=1)
                retract_message = gr.Markdown(elem_id="retract-message")
                saved_id = gr.Textbox(visible=False, elem_id="saved-id")  # the last save's id, for API clients
            with gr.Tab("Machine adversary", id="machine", elem_id="machine-tab") as machine_tab:
                saved_attack = machine_adversary_tab(services, name, sandbox)
            validate_tab(services, name)
            rounds_tab(services)
            if config.admin_password:
                admin_tab(services, config.admin_password)
        with gr.Group():
            summary = gr.Markdown(elem_id="summary")
            with gr.Row():
                accuracy_plot = gr.LinePlot(x="round", y="accuracy", color="measured on", y_lim=[0, 1],
                                            y_axis_format=".0%", title="Accuracy per round",
                                            x_title="round", min_width=320, elem_id="accuracy-plot")
                digits_plot = gr.BarPlot(x="digit", y="examples", title="Adversarial examples per digit",
                                         y_axis_format="d", y_lim=[0, 5], min_width=320,  # a phone: one per line
                                         elem_id="digits-plot")
            gallery = gr.Gallery(label="Latest drawings that fooled the model", columns=6, rows=2, height=280,
                                 allow_preview=False, object_fit="contain", fit_columns=False, interactive=False,
                                 visible=False, elem_id="gallery")
        panel_outputs = [summary, accuracy_plot, digits_plot, gallery]

        sketch.change(predict, [sketch, judged], [guess, judged], api_name="predict", trigger_mode="always_last",
                      show_progress="hidden", queue=False)
        sketch.change(None, js=EDITOR_CHANGED_JS, queue=False)  # a Save waits for the editor (ui.py)
        quick.click(quick_guess, strokes_box, guess, js=STROKES_PAYLOAD_JS, queue=False, show_progress="hidden",
                    trigger_mode="always_last", api_visibility="private")
        sketch.clear(finish_attempt, [judged, sandbox], [guess, judged], api_visibility="private")
        # The Sketchpad's own "Clear canvas" keeps the brush ready (setting its value to None would not).
        clear.click(None, js=clear_canvas_js("sketchpad"))
        save.click(flag, [sketch, digit, name, sandbox, mine], [message, mine, saved_id], api_name="flag").success(
            list_saved, [mine, saved_id], saved, api_visibility="private").success(
            lambda: (None, None, False), None, [guess, digit, judged], api_visibility="private").then(
            None, js=clear_canvas_js("sketchpad")).then(panel, None, panel_outputs, api_visibility="private")
        saved_attack.success(panel, None, panel_outputs, api_visibility="private")
        retract_button.click(retract, saved, retract_message, api_name="retract").success(
            panel, None, panel_outputs, api_visibility="private")
        gr.api(status, api_name="status", queue=False)
        timer = gr.Timer(5.0)
        timer.tick(refresh, seen_round, [*panel_outputs, seen_round], api_visibility="private", show_progress="hidden")
        demo.load(refresh, seen_round, [*panel_outputs, seen_round], api_visibility="private")
        demo.load(None, js=SELECT_BRUSH_JS)
        demo.load(None, js=RECORD_STROKES_JS)
        demo.load(None, js=LABELS_JS)  # names for the canvases and plots, for screen readers
        machine_tab.select(None, js=SELECT_BRUSH_JS)
        flagger.setup([sketch, digit], str(config.store_dir))
    return demo


MAX_UPLOAD = "1mb"  # a canvas's PNG layers are a few KB each: a bigger upload is not a drawing
MAX_REQUEST = 4 * 2**20  # bytes of any request's body: three uploads at most MAX_UPLOAD, and room to spare


def launch(demo: gr.Blocks, config: Config, **options):
    """Queue and serve the page as `python app.py` does; tests pass `server_port=None, prevent_thread_lock=True`."""
    options = {"server_name": config.host, "server_port": config.port, "max_file_size": MAX_UPLOAD,
               "allowed_paths": [str(config.data_dir)], "head": PEN_UP_HEAD, "css": PAGE_CSS,
               "app_kwargs": {"middleware": [Middleware(BodyLimit, max_bytes=MAX_REQUEST)]}, **options}
    return demo.queue(default_concurrency_limit=8).launch(**options)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    config = Config.from_env()
    torch.set_num_threads(1)  # one image per request is fastest on one core; a round trains beside it
    services = start_services(config)
    demo = build_demo(config, services)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopping Space: run the `finally` below
    try:
        launch(demo, config)
    finally:  # Ctrl+C or the platform stopping the app: the last examples and rounds go up first
        services.stop()


if __name__ == "__main__":
    main()
