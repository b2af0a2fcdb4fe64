"""The status panel under the tabs: the serving round and its figures in words, two plots and the latest fooling
drawings, refreshed every 5 seconds for every open page, with a toast on pages open when a round lands.

The words and plots are plain functions of an `AppStatus`, so that a test can call them.
"""
from __future__ import annotations

import threading
import time

import gradio as gr
import pandas as pd

from outwit.dadc.reviews import Reviews
from outwit.hub.publish import PublishStatus
from outwit.hub.sync import SyncStatus
from outwit.ml.metrics import Accuracy, percent
from outwit.services import AppStatus, Services


# ---------------------------------------------------------------------------------------------- in words
def _accuracy(accuracy: Accuracy | None) -> str:
    return "measuring…" if accuracy is None else f"**{percent(accuracy.top1)}**"


def summary_markdown(status: AppStatus) -> str:
    worker = status.worker
    mnist, adversarial, rate, examples = worker.mnist, worker.adversarial, worker.error_rate, worker.examples
    training = f" · {retraining(worker)}" if worker.training else ""
    mnist_name = f"`{mnist.dataset}`, {mnist.size:,} images" if mnist and mnist.size else "the MNIST test split"
    origin = f"- Round {worker.round} came from {worker.served_from}\n" if worker.served_from else ""
    return (
        f"### {round_landed(worker) or f'Round {worker.round}'}{training}\n"
        f"{origin}"
        f"- Accuracy on MNIST ({mnist_name}): {_accuracy(mnist)}\n"
        f"- Accuracy on held-out adversarial examples ({adversarial.size if adversarial else 0} examples): "
        f"{_accuracy(adversarial)}\n"
        f"{robust_line(worker.robust)}"
        f"- Model error rate this round: {rate.flags} fooled of {rate.attempts} drawings judged "
        f"({percent(rate.rate)}): of the drawings the model guessed this round, the share people saved as wrong. "
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
    line = f"Round {worker.round} is live: {percent(now.top1)} on held-out drawings like yours"
    before = promoted[-2].adversarial if len(promoted) > 1 else None
    if before is not None and before.top1 is not None:
        change = "up" if now.top1 > before.top1 else "down" if now.top1 < before.top1 else "level"
        line += f", {change} from {percent(before.top1)}" if change != "level" else ", level with the round before"
    return line


def review_line(reviews: Reviews) -> str:
    """Where the examples stand, once anyone voted or retracted, or when votes are required."""
    if not reviews.required and not reviews.any_events:
        return ""
    counts = reviews.counts()
    needed = (f"{reviews.required} agreeing votes (a split vote asks for more, up to {reviews.limit})"
              if reviews.required else "the flag alone (trusted)")
    return (f"\n- Validation: {counts['validated']} validated, {counts['pending']} waiting, {counts['rejected']} "
            f"voted incorrect, {counts['retracted']} retracted; an example is trained on after {needed}")


def goal_line(reviews: Reviews) -> str:
    """The owner's goal for the round, when there is one."""
    goal = reviews.goal()
    return f"\n- This round's goal: **{goal}**" if goal else ""


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


# ---------------------------------------------------------------------------------------------- plots
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
    return (gr.update(value=accuracy_frame(status), caption=accuracy_caption),
            gr.update(value=digits_frame(status), caption=digits_caption,
                      y_lim=[0, max(5, *counts.values()) if counts else 5]))


# ---------------------------------------------------------------------------------------------- on the page
# The rounds in order on the plot's axis (as text, "10" sorts before "2"). Fixed at build, so that an update carries
# only the rows; rounds past the list follow in the frame's order, which is round order.
ROUND_ORDER = [str(r) for r in range(200)]

def status_panel() -> list[gr.components.Component]:
    """The panel's layout; call inside `gr.Blocks`. Returns its outputs, in the order `panel_handlers` fill them."""
    with gr.Group():
        summary = gr.Markdown(elem_id="summary")
        with gr.Row():
            accuracy_plot = gr.LinePlot(x="round", y="accuracy", color="measured on", y_lim=[0, 1], sort=ROUND_ORDER,
                                        y_axis_format=".0%", title="Accuracy per round",
                                        x_title="round", min_width=320, elem_id="accuracy-plot")
            digits_plot = gr.BarPlot(x="digit", y="examples", title="Adversarial examples per digit",
                                     y_axis_format="d", y_lim=[0, 5], min_width=320,  # a phone: one per line
                                     elem_id="digits-plot")
        gallery = gr.Gallery(label="Latest drawings that fooled the model", columns=6, rows=2, height=280,
                             allow_preview=False, object_fit="contain", fit_columns=False, interactive=False,
                             visible=False, elem_id="gallery")
    return [summary, accuracy_plot, digits_plot, gallery]


class SharedPanel:
    """The panel is the same for every page: built once per change, not once per page per tick. `current()` reads
    the app's status at most every `every` seconds (for all pages at once) and keeps, per part (summary, accuracy
    plot, digits plot, gallery), its value as Gradio sends it and a version that moves when that part changed; a
    page's tick then sends only the parts that changed since the versions it last showed, or nothing.

    The values are postprocessed here, once per change (the events that send them do not postprocess): per page and
    send, Gradio's Gallery hashed and copied each of its files into its cache, with a thread pool of its own, and an
    update with props built a new component; a part whose props (caption, axis, visibility) a page already shows
    goes as a plain value (`send`)."""

    PARTS = 4
    KEPT = 64  # versions whose props are remembered, per part: a page that last looked longer ago gets them again

    def __init__(self, services: Services, components: list[gr.components.Component], every: float = 1.0):
        self.services, self.components, self.every = services, components, every
        self.lock = threading.Lock()
        self.read_at = float("-inf")
        self.keys: list = [None] * self.PARTS
        self.versions = [0] * self.PARTS
        self.values: list = [None] * self.PARTS
        self.props_at: list[dict[int, dict]] = [{} for _ in range(self.PARTS)]  # version → props then
        self.status: AppStatus | None = None

    def current(self, fresh: bool = False) -> tuple[AppStatus, tuple[int, ...]]:
        """(status, the parts' versions), at most `every` seconds old (`fresh`: read now)."""
        with self.lock:
            if fresh or time.monotonic() - self.read_at >= self.every:
                self._read()
            return self.status, tuple(self.versions)

    def send(self, part: int, seen: int | None):
        """What part `part` sends to a page whose copy of it is at version `seen` (None: the page has none)."""
        with self.lock:
            value, props = self.values[part], self.props_at[part][self.versions[part]]
            plain = seen is not None and self.props_at[part].get(abs(seen)) == props
        return value if plain else gr.update(value=value, **props)

    def _read(self) -> None:
        services = self.services
        status = services.status()
        gallery_size, store, reviews = services.config.gallery_size, services.store, services.reviews
        shown = [row for row in store.latest(4 * gallery_size) if reviews.shown(row)][:gallery_size]
        summary = summary_markdown(status) + review_line(reviews) + goal_line(reviews)
        accuracy, digits = (_split(update) for update in plot_updates(status))
        keys = [summary, (accuracy[1].to_json(), status.worker.round, status.worker.training, accuracy[0]),
                (digits[1].to_json(), digits[0]), tuple(row["id"] for row in shown)]
        changed = [key != self.keys[i] for i, key in enumerate(keys)]
        if any(changed):
            gallery = [(str(store.path_of(row)), f"drawn {row['label']}, model said {row['guess']}") for row in shown]
            made = (({}, summary), accuracy, digits, ({"visible": bool(gallery)}, gallery))
            for i, component in enumerate(self.components):
                if changed[i]:
                    props, value = made[i]
                    self.values[i] = _postprocessed(component, value)
                    self.versions[i] += 1
                    self.props_at[i][self.versions[i]] = props
                    self.props_at[i].pop(self.versions[i] - self.KEPT, None)
            self.keys = keys
        self.status, self.read_at = status, time.monotonic()


def _split(update: dict) -> tuple[dict, object]:
    """An update's props and its value."""
    props = {k: v for k, v in update.items() if k not in ("value", "__type__")}
    return props, update["value"]


def _postprocessed(component: gr.components.Component, value):
    """`value` as Gradio sends it for `component`: postprocessed, its files (a gallery's) copied into the
    component's cache once."""
    from gradio.data_classes import GradioModel, GradioRootModel
    from gradio.processing_utils import move_files_to_cache

    data = component.postprocess(value)
    if isinstance(data, (GradioModel, GradioRootModel)):
        data = data.model_dump()
    return move_files_to_cache(data, component, postprocess=True) if isinstance(component, gr.Gallery) else data


def panel_handlers(services: Services, components: list[gr.components.Component], read_every: float = 1.0):
    """(panel, refresh, status, versions): every part of the panel read now; on a page's refresh, the parts that
    changed since the page last showed them, with a toast when a new round landed since; `/status`'s JSON; what the
    panel is at (for the page's cheap check, `outwit.ui.routes.panel_route`). Both `panel` and `refresh` also return
    what the page then shows (its `seen`). The status is read for all pages at most every `read_every` seconds.
    `components`: the panel's, from `status_panel()`; the events that send `panel` and `refresh` must not
    postprocess (`postprocess=False`): their values are postprocessed once per change (`SharedPanel`)."""
    shared = SharedPanel(services, components, every=read_every)

    def panel(seen: tuple | None = None):
        """As `refresh`, read now: after the visitor's own save or retraction, which they expect to see counted."""
        return refresh(seen, fresh=True)

    def refresh(seen: tuple | None, fresh: bool = False):
        """The parts changed since `seen` (the round and part versions this page shows; None: all), a toast when a
        new round lands while the page is open, and what the page then shows."""
        current, versions = shared.current(fresh=fresh)
        now = current.worker
        seen_round, seen_versions = seen or (None, None)
        if seen_round is not None and now.round > seen_round and (landed := round_landed(now)):
            gr.Info(f"{landed}. Can you still fool it?")
        parts = [gr.skip() if seen_versions and seen_versions[i] == version else
                 shared.send(i, seen_versions[i] if seen_versions else None) for i, version in enumerate(versions)]
        # The accuracy plot draws a new round's rows only when it is sent them a second time (Gradio 6.31's
        # LinePlot): a page is marked as having seen it (-version) after the first send; the next refresh, which the
        # page asks for after a new round, sends it again.
        first_send = not (seen_versions and abs(seen_versions[1]) == versions[1])
        shows = (versions[0], -versions[1] if first_send else versions[1], *versions[2:])
        return (*parts, (now.round, shows))

    def status() -> dict:
        """Round, accuracies, counts, examples until the next round and the Hub sync state, as JSON."""
        return services.status().to_json()

    def versions() -> dict:
        """The serving round and the parts' versions: what a page compares with what it shows."""
        current, at = shared.current()
        return {"round": current.worker.round, "versions": ".".join(map(str, at))}

    return panel, refresh, status, versions
