"""The background retrain worker: every N fooling examples, a round that never blocks a request.

The worker only schedules: it takes the training set and the evaluation sets from functions, has its runner compute
`rounds.run_round` (in the app, in a process of its own: `runner.py`), and acts on the result: saves a promoted
model, swaps it in, hands it to the publisher. Every round, promoted, rejected or failed, is a line of the history
(`history.py`); a restart resumes from it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from outwit.dadc.history import History, RoundRecord
from outwit.dadc.rounds import EvalSet, Recipe, RoundResult, TrainingSet
from outwit.dadc.runner import InProcess, RoundProcess
from outwit.dadc.status import ErrorRate, ExampleCounts, RoundSummary, WorkerStatus
from outwit.dadc.store import AdversarialStore
from outwit.dadc.tries import Tries
from outwit.ml import checkpoints
from outwit.ml.metrics import ADVERSARIAL, MNIST, ROBUST, Metrics
from outwit.ml.serving import Predictor
from outwit.storage import utc_now
from outwit.text import quoted

log = logging.getLogger(__name__)


class RetrainWorker:
    """A daemon thread that waits on an Event; `notify()` after each flag is all a request ever does."""

    def __init__(self, *, store: AdversarialStore, predictor: Predictor, history: History,
                 training_set: Callable[[], TrainingSet], eval_sets: Callable[[], dict[str, EvalSet]],
                 recipe: Recipe = Recipe(), every: int = 10,
                 on_promoted: Callable[[Path, checkpoints.CheckpointMeta], None] | None = None,
                 counter: Callable[[], int] | None = None, runner: InProcess | RoundProcess | None = None,
                 may_run: Callable[[], bool] | None = None, tries: Tries | None = None):
        """`may_run`: whether this process runs rounds now (ROUND_RUNNER: always, never, or while it holds the
        round runner's lease); when it does not, rounds come from elsewhere through `adopt`. `tries`: the drawings
        judged per round by every replica; the error rate is then the whole app's, not this process's."""
        if every < 1:
            raise ValueError(f"every={every!r} must be at least 1")
        self.store, self.predictor, self.history = store, predictor, history
        self.training_set, self.eval_sets, self.recipe, self.every = training_set, eval_sets, recipe, every
        self.runner = runner or InProcess()  # where rounds and evaluations compute; closed by stop()
        self.may_run = may_run or (lambda: True)
        self.tries = tries
        self._warmed = False
        self.on_promoted = on_promoted  # e.g. publish to a model repo; must not block for long
        # what the trigger counts, never decreasing: examples added, or (when votes are required) examples validated
        self.counter = counter or (lambda: store.counts().added)
        self._lock = threading.Lock()  # guards the counters below
        self._attempts = self._flags = 0  # this round's drawings judged and fooling ones, for the error rate
        self._training = False
        self._training_since: float | None = None
        self._forced = False  # an admin asked for a round now
        self._busy = threading.Lock()  # held by a round and by a rollback: one of them at a time
        self._last_error: str | None = None
        self._wake, self._stop, self._idle = threading.Event(), threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="retrain-worker", daemon=True)

    def start(self) -> "RetrainWorker":
        self._wake.set()  # evaluate the base model, and run a round if one is already due
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.runner.close()

    def notify(self) -> None:
        """Called after each flag: wakes the worker, which decides whether a round is due."""
        self._idle.clear()
        self._wake.set()

    def record_attempt(self, fooled: bool, digit: int | None = None, pair: tuple[int, int] | None = None,
                       hit: bool = False) -> None:
        """One drawing judged by the serving model (see `Tries.record` for `digit`, `pair` and `hit`)."""
        with self._lock:
            self._attempts += 1
            self._flags += int(fooled)
        if self.tries is not None:
            self.tries.record(self.predictor.current.round, fooled, digit, pair, hit)

    def _error_counts(self) -> tuple[int, int]:
        """(judged, fooled) of the serving model: over every replica with `tries`, else this process's."""
        if self.tries is not None:
            return self.tries.of(self.predictor.current.round)
        with self._lock:
            return self._attempts, self._flags

    def request_round(self) -> None:
        """An admin's "start a round now": the next wake runs a round, however few examples came in."""
        if not self.may_run():
            raise ValueError("Rounds run in another process here (the round runner): start one there")
        with self._lock:
            self._forced = True
        self.notify()

    def roll_back(self, to_round: int, base_path: str | Path) -> RoundRecord:
        """An admin's call: serve again the model of an earlier round (a promoted one, or 0, the base model),
        recorded as a new promoted round that names the one it rolls back to. Refused while a round runs."""
        if not self.may_run():
            raise ValueError("Rounds run in another process here (the round runner): roll back there")
        earlier = next((r for r in self.history.records if r.round == to_round and r.served), None)
        if earlier is None:
            raise ValueError(f"Round {quoted(to_round)} has no model to roll back to; these do: "
                             f"{self.history.served_rounds()}")
        if not self._busy.acquire(blocking=False):
            raise ValueError("A round is running: roll back when it has finished")
        try:
            path = self.history.model_path(earlier, base_path)
            model, _ = checkpoints.load(path)
            record = self.history.serve_again(earlier, source=f"rollback to round {to_round}",
                                              reason=f"an admin rolled back to round {to_round}")
            self.predictor.swap(model, {"round": record.round, "checkpoint": str(path)})
            with self._lock:
                self._attempts = self._flags = 0
            log.warning("round %d: an admin rolled back to round %d (%s)", record.round, to_round, path)
            return record
        finally:
            self._busy.release()

    def adopt(self, checkpoint: bytes, meta: checkpoints.CheckpointMeta, *, source: str,
              counted: int | None = None) -> bool:
        """Serve a round promoted elsewhere (the round runner's, from the model repo) if it is newer than the one
        serving: recorded in the history as promoted, swapped in as a round of this process's own would be.
        `counted`: the round trigger's count when that round started (the next round counts from there)."""
        with self._busy:
            serving = self.history.serving()
            if serving is not None and (serving.created or "") >= meta.created:
                return False
            model, _ = checkpoints.from_bytes(checkpoint)
            added = counted if counted is not None else self.counter()
            if not self.history.adopt_model(checkpoint, meta, source=source, examples_added=added):
                return False
            record = self.history.serving()
            self.predictor.swap(model, {"round": record.round, "checkpoint": record.checkpoint})
            with self._lock:
                self._attempts = self._flags = 0
        self.notify()  # the page's figures, and the trigger, move on
        return True

    def wait_idle(self, timeout: float) -> bool:
        """True once the worker has nothing left to do (tests and benchmarks wait on it)."""
        return self._idle.wait(timeout)

    def until_next_round(self) -> int:
        return self._until_next(self._added_this_round(self.counter()))

    def _added_this_round(self, added: int) -> int:
        return added - self.history.added_at_last_round()

    def _until_next(self, this_round: int) -> int:
        return max(0, self.every - this_round)

    def status(self) -> WorkerStatus:
        serving = self.history.serving()
        metrics = serving.metrics if serving else Metrics()
        counts = self.store.counts()
        this_round = self._added_this_round(self.counter())
        attempts, flags = self._error_counts()
        with self._lock:
            training, error, since = self._training, self._last_error, self._training_since
        return WorkerStatus(
            round=serving.round if serving else 0, mnist=metrics.get(MNIST), adversarial=metrics.get(ADVERSARIAL),
            robust=metrics.get(ROBUST),
            examples=ExampleCounts(total=counts.total, train=counts.train, test=counts.test,
                                   this_round=this_round,
                                   per_digit={str(d): n for d, n in counts.per_digit.items()}),
            until_next_round=self._until_next(this_round), retrain_every=self.every,
            error_rate=ErrorRate(flags, attempts, round(flags / attempts, 4) if attempts else None),
            training=training, last_error=error,
            history=[RoundSummary(r.round, r.status, r.metrics.get(MNIST), r.metrics.get(ADVERSARIAL),
                                  r.metrics.get(ROBUST), r.trained_on.get("adversarial"), r.seconds, r.error_rate)
                     for r in self.history.records],
            training_seconds=round(time.monotonic() - since, 1) if training and since is not None else None,
            served_from=serving.source if serving else None)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            self._idle.clear()
            try:
                if not self.history.records:
                    self._record_base()
                with self._lock:
                    forced, self._forced = self._forced, False
                if self.may_run():  # else another process runs the rounds
                    self._warm_up()
                    if forced or self.until_next_round() == 0:
                        with self._busy:
                            self._round()
            except Exception as err:  # noqa: BLE001 - a failed round must never take the app down
                log.exception("retrain round failed; the serving model stays")
                with self._lock:
                    self._last_error = f"{type(err).__name__}: {err}"
                self.history.append(RoundRecord(round=self.history.next_round(), status="failed", started=utc_now(),
                                                examples_added=self.counter(), error=self._last_error))
            finally:
                with self._lock:
                    self._training = False
            if not self._wake.is_set():
                self._idle.set()

    def _warm_up(self) -> None:
        """Once a round is on its way (the first example of it saved), compute the trunk features it will need,
        while people draw the rest: the round itself then trains and evaluates only the upper layers."""
        if self.recipe.tune == "upper" and not self._warmed and self.until_next_round() < self.every:
            self.runner.warm_up(self.predictor.current.model, self.training_set(), self.eval_sets())
            self._warmed = True

    def _record_base(self) -> None:
        model, meta = self.predictor.current
        self.history.append(RoundRecord(round=meta.get("round", 0), status="base", started=utc_now(),
                                        metrics=self.runner.evaluate(model, self.eval_sets())))

    def _round(self) -> None:
        with self._lock:
            self._training, self._training_since = True, time.monotonic()
        started, number, added = utc_now(), self.history.next_round(), self.counter()
        serving_record = self.history.serving()
        serving, _ = self.predictor.current
        result = self.runner.run(serving, self.training_set(), self.eval_sets(),
                                 replace(self.recipe, seed=self.recipe.seed + number),
                                 serving_record.metrics if serving_record else None)
        attempts, flags = self._error_counts()
        record = RoundRecord(round=number, status="promoted" if result.promoted else "rejected", started=started,
                             examples_added=added, seconds=result.seconds, metrics=result.metrics,
                             baseline=result.baseline, trained_on=result.trained_on, recipe=result.recipe.to_json(),
                             reason=result.reason, error_rate=round(flags / attempts, 4) if attempts else None,
                             attempts=attempts, fooled=flags)
        if result.promoted:
            path, meta = self._save(number, result)
            record = replace(record, checkpoint=path.relative_to(self.history.root).as_posix(), created=meta.created)
        self.history.append(record)
        with self._lock:
            self._last_error = None  # this round ran to a decision: an earlier failure is no longer the news
        if result.promoted:
            self.predictor.swap(result.model, {"round": number, "checkpoint": record.checkpoint})
            with self._lock:
                self._attempts = self._flags = 0
            log.info("round %d promoted: %s", number, result.reason)
            if self.on_promoted:
                self.on_promoted(path, meta)
        else:
            log.warning("round %d rejected: %s", number, result.reason)

    def _save(self, number: int, result: RoundResult) -> tuple[Path, checkpoints.CheckpointMeta]:
        meta = checkpoints.describe(result.model, round=number, metrics=result.metrics, trained_on=result.trained_on,
                                    recipe=result.recipe.to_json())
        path = self.history.path.parent / f"round-{number:04d}.safetensors"  # this replica's folder
        return checkpoints.save(path, result.model, meta), meta
