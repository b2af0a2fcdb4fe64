"""The one saving path: a fooling example, drawn by a person or made by a machine adversary, judged, saved, counted.

The page's save, the Machine adversary tab's save, the simulation and the FlaggingCallback (`flagging.py`) all come
here. `judge` is the reading of a drawing by the serving model and by the models the visitor chose to fool
(`outwit.dadc.opponents`); `save` writes the example through the store (which
refuses a bad one before anything is written), counts a drawing as an attempt that fooled the serving model (the
model error rate), and wakes the worker, which decides whether a round is due.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from outwit.dadc.opponents import DEFAULT, SERVING, Opponents, Reading, judged_by
from outwit.dadc.status import WorkerStatus
from outwit.dadc.store import DRAWN, NO_TARGET, AdversarialStore
from outwit.dadc.worker import RetrainWorker
from outwit.ml.preprocess import preprocess
from outwit.ml.references import References
from outwit.ml.serving import Predictor


class NotFooled(ValueError):
    """The serving model already reads the drawing as the digit it is: there is nothing to learn from it."""


class Stopping(ValueError):
    """The app is stopping: the example was not saved."""


@dataclass(frozen=True)
class Judgement:
    """The serving model's reading of one drawing, and the readings of the models the visitor chose to fool."""

    probs: np.ndarray  # (10,) the serving model's probabilities of the digits 0-9
    model_round: int  # the round whose model read it
    readings: tuple[Reading, ...] = ()  # the chosen models' readings; none: the serving model alone was chosen

    @property
    def serving(self) -> Reading:
        return Reading(SERVING, self.probs, self.model_round)

    @property
    def chosen(self) -> tuple[Reading, ...]:
        return self.readings or (self.serving,)

    @property
    def guess(self) -> int:
        return self.serving.guess

    @property
    def confidence(self) -> float:
        return self.serving.confidence


@dataclass(frozen=True)
class Fooling:
    """One example about to be saved: what fooled the model, the digit it really is, and who saves it."""

    label: int
    guess: int
    confidence: float
    model_round: int
    drawing: Any = None  # a person's drawing, as the canvas sent it (or any image `preprocess` takes)
    model_input: np.ndarray | None = None  # or a machine adversary's (28, 28) uint8 model input
    source: str = DRAWN  # DRAWN, or the attack that made `model_input`, e.g. "pgd-40x1@0.1"
    session: str | None = None  # the visitor's session id, or `hf:<username>` signed in (kept as a short hash)
    user: str | None = None  # their display name or signed-in name
    identity: str = ""  # how they were known: "signed-in", "session" or "" (identity.py)
    aimed: int = NO_TARGET  # the digit a targeted challenge aimed for ("make it read your 3 as an 8")
    strokes: str = ""  # the pen strokes that drew it, Quick, Draw!'s raw format as JSON text ("" when unknown)
    readings: tuple[Reading, ...] = ()  # the models it was judged by (a drawing): every one of them it fooled

    @property
    def target(self) -> int:
        """The challenge's digit when it was met (every model it was judged by read it so), else NO_TARGET."""
        read_as = {r.guess for r in self.readings} or {self.guess}
        return self.aimed if self.aimed != NO_TARGET and read_as == {self.aimed} else NO_TARGET

    @classmethod
    def drawn(cls, drawing: Any, label: int, judgement: Judgement, *, session: str | None = None,
              user: str | None = None, identity: str = "", aimed: int = NO_TARGET, strokes: str = "") -> "Fooling":
        return cls(label=label, guess=judgement.guess, confidence=judgement.confidence,
                   model_round=judgement.model_round, drawing=drawing, session=session, user=user,
                   identity=identity, aimed=aimed, strokes=strokes, readings=judgement.chosen)


@dataclass(frozen=True)
class Saved:
    row: dict  # the stored row: its `id` is what a retraction or a vote refers to
    starts_round: bool  # this save completed the examples the next round waits for
    status: WorkerStatus  # the worker's figures just after the save


class Collector:
    """What every way of saving a fooling example calls; thread-safe as the store and the worker are."""

    def __init__(self, *, store: AdversarialStore, worker: RetrainWorker, predictor: Predictor,
                 references: References | None = None):
        self.store, self.worker, self.predictor = store, worker, predictor
        self.opponents = Opponents(lambda x: (predictor.predict_tensor(x), predictor.current.round),
                                   references or References())
        self._saves = threading.Condition()  # guards the two below
        self._under_way = 0
        self._closed = False

    def close(self, timeout: float = 30) -> bool:
        """Refuse saves from now on and wait for those under way: after it the store takes no more examples, so a
        last push carries every one that was saved. False if some were still under way after `timeout` s."""
        with self._saves:
            self._closed = True
            return self._saves.wait_for(lambda: self._under_way == 0, timeout)

    def judge(self, drawing: Any, models: tuple[str, ...] = DEFAULT) -> Judgement:
        """The serving model's reading and the `models`' (`Opponents.chosen` keys). Raises EmptyDrawingError (no
        digit) or ValueError (not an image)."""
        readings = self.opponents.read(preprocess(drawing), tuple(dict.fromkeys((SERVING, *models))))
        serving = readings[0]
        return Judgement(serving.probs, serving.round, tuple(r for r in readings if r.model in models))

    def fooling(self, drawing: Any, label: int, judgement: Judgement | None = None, *, session: str | None = None,
                user: str | None = None, identity: str = "", aimed: int = NO_TARGET, strokes: str = "") -> Fooling:
        """A drawing as an example to save, judged now unless `judgement` is given; NotFooled when a model it was
        judged by reads it as `label`. `aimed`: a targeted challenge's digit (refused if it is `label`); the example
        is a targeted fooling when every model read it as that digit (`Fooling.target`), a plain one otherwise."""
        if aimed != NO_TARGET and aimed == label:
            raise ValueError(f"The challenge is to make it read your {label} as another digit, not as {aimed}")
        judgement = judgement or self.judge(drawing)
        right = [r for r in judgement.chosen if r.guess == label]
        if right and len(judgement.chosen) == 1 and right[0].model == SERVING:
            raise NotFooled(f"The model already reads this as {label}: nothing saved. Draw one it gets wrong.")
        if right:
            who = "This round's model" if right[0].model == SERVING else f"The {right[0].name}"
            raise NotFooled(f"{who} already reads this as {label}: nothing saved. Draw one that "
                            f"{'every model you chose gets' if len(judgement.chosen) > 1 else 'it gets'} wrong.")
        return Fooling.drawn(drawing, label, judgement, session=session, user=user, identity=identity,
                             aimed=aimed, strokes=strokes)

    def tried(self, guess: int | None = None, aimed: int = NO_TARGET) -> None:
        """A drawing the model judged that was not saved (it did not fool it): one more attempt, for the error
        rate. `guess`: the digit the model read it as, which is the digit drawn (it was not saved as wrong), for
        the per-digit rates; `aimed`: the targeted challenge the visitor was on, for the per-pair rates."""
        self.worker.record_attempt(fooled=False, digit=guess, pair=_pair(guess, aimed))

    def save(self, example: Fooling) -> Saved:
        """Write one example; raises ValueError (a bad label or name, the session at its limit, the app stopping)
        with nothing written."""
        with self._saves:
            if self._closed:
                raise Stopping("The app is stopping: nothing was saved. Try again in a minute, when it is back.")
            self._under_way += 1
        try:
            return self._save(example)
        finally:
            with self._saves:
                self._under_way -= 1
                self._saves.notify_all()

    def _save(self, example: Fooling) -> Saved:
        fields = {"label": example.label, "guess": example.guess, "confidence": example.confidence,
                  "model_round": example.model_round, "session": example.session, "user": example.user,
                  "identity": example.identity}
        if example.source == DRAWN:
            row = self.store.add(example.drawing, **fields, target=example.target, strokes=example.strokes,
                                 judged_by=judged_by(example.readings) if example.readings else "")
            pair = _pair(example.label, example.aimed)
            # the model error rate is the serving model's: a drawing saved against the references alone may not
            # have fooled it
            self.worker.record_attempt(fooled=example.guess != example.label, digit=example.label, pair=pair,
                                       hit=example.target != NO_TARGET)
        else:
            row = self.store.add_input(example.model_input, source=example.source, **fields)
        starts_round = self.worker.until_next_round() == 0
        self.worker.notify()
        return Saved(row, starts_round, self.worker.status())


def _pair(drawn: int | None, aimed: int) -> tuple[int, int] | None:
    """A targeted attempt's (digit drawn, digit aimed for); None when there was no challenge or no digit known."""
    if drawn is None or aimed == NO_TARGET or drawn == aimed:
        return None
    return int(drawn), int(aimed)
