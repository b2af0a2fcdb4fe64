"""The background retrain worker: every N fooling examples, a round of fine-tuning that never blocks a request.

A round: fine-tune a copy of the serving model on the adversarial training examples mixed with replayed MNIST,
evaluate it on the MNIST test split and on the held-out adversarial examples, and promote it (save the checkpoint,
swap it in) only if its MNIST accuracy is at most `gate_margin` points below the serving model's. Every round,
promoted, rejected or failed, is appended to the history (`rounds.jsonl`); a restart resumes from it.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

import data
import trainer
from flagging import AdversarialStore, append_jsonl, read_jsonl
from model import CheckpointMeta, Predictor, model_arch_args

log = logging.getLogger(__name__)
TrainingSet = Callable[[], tuple[torch.Tensor, torch.Tensor, dict]]


class History:
    """Append-only record of rounds, one JSON line each; round 0 is the base model.

    Each replica keeps its own at `<rounds root>/<shard>/rounds.jsonl`, with its promoted checkpoints beside it;
    a record's `checkpoint` is relative to the rounds root. `lock` is taken around each append (the store's, so
    that a Hub sync never reads half a line).
    """

    def __init__(self, path: str | Path, lock: threading.Lock | None = None):
        self.path = Path(path)
        self.root = self.path.parent.parent
        self._lock = lock or threading.Lock()
        self.records: list[dict] = read_jsonl(self.path) if self.path.exists() else []

    def append(self, record: dict) -> None:
        with self._lock:
            append_jsonl(self.path, record)
            self.records.append(record)

    def adopt_latest(self) -> bool:
        """A new replica (or a restarted Space) with no history of its own carries on from the replica whose
        latest promoted round is newest: its records are copied here. Returns whether anything was adopted."""
        if self.records:
            return False
        candidates = [History(p) for p in self.root.glob("*/rounds.jsonl") if p != self.path]
        candidates = [h for h in candidates if h.serving() and h.serving()["status"] == "promoted"]
        if not candidates:
            return False
        newest = max(candidates, key=lambda h: h.serving()["started"])
        for record in newest.records:
            self.append(record)
        log.info("carrying on from %s: round %d", newest.path, newest.serving()["round"])
        return True

    def serving(self) -> dict | None:
        """The latest round whose model was promoted (or the base record)."""
        return next((r for r in reversed(self.records) if r["status"] in ("promoted", "base")), None)

    def next_round(self) -> int:
        return max((r["round"] for r in self.records), default=0) + 1

    def flags_at_last_round(self) -> int:
        """Flag count when the last round that ran to a decision started: the trigger counts from there."""
        return next((r["flags_total"] for r in reversed(self.records) if r["status"] in ("promoted", "rejected")), 0)


def mixed_training_set(store: AdversarialStore, mnist_train: data.Digits, *, replay: int = 2048,
                       adversarial_share: float = 0.25, seed: int = 0) -> TrainingSet:
    """All adversarial training examples, repeated to about `adversarial_share` of the set, plus `replay` MNIST
    training images drawn at random (so MNIST accuracy holds). A function, so a caller can filter or add."""
    mnist_x, mnist_y = mnist_train.tensors()
    generator = torch.Generator().manual_seed(seed)

    def build() -> tuple[torch.Tensor, torch.Tensor, dict]:
        adv_x, adv_y = store.tensors(store.rows("train"))
        pick = torch.randperm(len(mnist_y), generator=generator)[:replay]
        repeat = max(1, round(adversarial_share / (1 - adversarial_share) * len(pick) / max(1, len(adv_y))))
        x = torch.cat([adv_x.repeat(repeat, 1, 1, 1), mnist_x[pick]])
        y = torch.cat([adv_y.repeat(repeat), mnist_y[pick]])
        return x, y, {"adversarial": len(adv_y), "replay": len(pick), "mnist": mnist_train.name}

    return build


class RetrainWorker:
    """A daemon thread that waits on an Event; `notify()` after each flag is all a request ever does."""

    def __init__(self, *, store: AdversarialStore, predictor: Predictor, history: History, mnist_test: data.Digits,
                 training_set: TrainingSet, every: int = 10, gate_margin: float = 1.0, steps: int = 80,
                 lr: float = 3e-4, batch_size: int = 64, seed: int = 0,
                 on_promoted: Callable[[Path, CheckpointMeta], None] | None = None):
        if every < 1:
            raise ValueError(f"every={every!r} must be at least 1")
        if not 0 <= gate_margin <= 100:
            raise ValueError(f"gate_margin={gate_margin!r} must be from 0 to 100 percentage points")
        self.store, self.predictor, self.history = store, predictor, history
        self.mnist_x, self.mnist_y = mnist_test.tensors()
        self.mnist_name = mnist_test.name
        self.training_set, self.every, self.gate_margin = training_set, every, gate_margin
        self.steps, self.lr, self.batch_size, self.seed = steps, lr, batch_size, seed
        self.on_promoted = on_promoted  # e.g. publish to a model repo; must not block for long
        self._lock = threading.Lock()  # guards the counters below
        self._attempts = self._flags = 0  # this round's drawings judged and fooling ones, for the error rate
        self._training = False
        self._last_error: str | None = None
        self._wake, self._stop, self._idle = threading.Event(), threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="retrain-worker", daemon=True)

    # ------------------------------------------------------------------ what requests call
    def start(self) -> "RetrainWorker":
        self._wake.set()  # evaluate the base model, and run a round if one is already due
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def notify(self) -> None:
        """Called after each flag: wakes the worker, which decides whether a round is due."""
        self._idle.clear()
        self._wake.set()

    def record_attempt(self, fooled: bool) -> None:
        with self._lock:
            self._attempts += 1
            self._flags += int(fooled)

    def wait_idle(self, timeout: float) -> bool:
        """Test helper: True once the worker has nothing left to do."""
        return self._idle.wait(timeout)

    def until_next_round(self) -> int:
        return max(0, self.every - (self.store.counts().total - self.history.flags_at_last_round()))

    def status(self) -> dict:
        serving = self.history.serving() or {}
        counts = self.store.counts()
        with self._lock:
            attempts, flags, training, error = self._attempts, self._flags, self._training, self._last_error
        return {
            "round": serving.get("round", 0),
            "mnist": {"dataset": self.mnist_name, "size": len(self.mnist_y), "top1": serving.get("mnist_top1")},
            "adversarial": {"size": serving.get("adversarial_size", 0), "top1": serving.get("adversarial_top1")},
            "examples": {"total": counts.total, "train": counts.train, "test": counts.test,
                         "this_round": counts.total - self.history.flags_at_last_round(),
                         "per_digit": {str(d): n for d, n in counts.per_digit.items()}},
            "until_next_round": self.until_next_round(),
            "retrain_every": self.every,
            "error_rate": {"flags": flags, "attempts": attempts, "rate": round(flags / attempts, 4) if attempts else None},
            "training": training,
            "last_error": error,
            "history": [{k: r.get(k) for k in ("round", "status", "mnist_top1", "adversarial_top1",
                                                "adversarial_size", "train_adversarial", "seconds", "error_rate")}
                        for r in self.history.records],
        }

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
                if self.until_next_round() == 0:
                    self._round()
            except Exception as err:  # noqa: BLE001 - a failed round must never take the app down
                log.exception("retrain round failed; the serving model stays")
                with self._lock:
                    self._last_error = f"{type(err).__name__}: {err}"
                self.history.append({"round": self.history.next_round(), "status": "failed",
                                     "error": self._last_error, "started": _now(),
                                     "flags_total": self.store.counts().total})
            finally:
                with self._lock:
                    self._training = False
            if not self._wake.is_set():
                self._idle.set()

    def _evaluate(self, model: torch.nn.Module) -> dict:
        mnist = trainer.evaluate(model, self.mnist_x, self.mnist_y, name=self.mnist_name)
        adv_x, adv_y = self.store.tensors(self.store.rows("test"))
        adversarial = trainer.evaluate(model, adv_x, adv_y, name="adversarial/test")
        return {"mnist_top1": mnist["top1"], "mnist_dataset": self.mnist_name, "adversarial_top1": adversarial["top1"],
                "adversarial_size": adversarial["size"]}

    def _serving_mnist_top1(self, serving: torch.nn.Module) -> float:
        """The serving model's MNIST accuracy as its round recorded it, measured again only if the test set changed."""
        record = self.history.serving()
        if record and record.get("mnist_dataset") == self.mnist_name and record.get("mnist_top1") is not None:
            return record["mnist_top1"]
        return trainer.evaluate(serving, self.mnist_x, self.mnist_y, name=self.mnist_name)["top1"]

    def _record_base(self) -> None:
        model, meta = self.predictor.current
        self.history.append({"round": meta.get("round", 0), "status": "base", "started": _now(), "seconds": 0,
                             "flags_total": 0, **self._evaluate(model)})

    def _round(self) -> None:
        with self._lock:
            self._training = True
        started, number = time.perf_counter(), self.history.next_round()
        flags_total = self.store.counts().total
        serving, serving_meta = self.predictor.current
        model = copy.deepcopy(serving)
        x, y, trained_on = self.training_set()
        generator = trainer.seed_everything(self.seed + number)
        trainer.train(model, x, y, epochs=max(1.0, self.steps * self.batch_size / len(y)), lr=self.lr,
                      batch_size=self.batch_size, generator=generator, max_steps=self.steps)
        new = self._evaluate(model)
        old = self._serving_mnist_top1(serving)
        promoted = new["mnist_top1"] >= old - self.gate_margin / 100
        with self._lock:
            attempts, flags = self._attempts, self._flags
        record = {"round": number, "status": "promoted" if promoted else "rejected", "started": _now(),
                  "flags_total": flags_total, "train_adversarial": trained_on["adversarial"],
                  "replay": trained_on["replay"], "serving_mnist_top1": old,
                  "error_rate": round(flags / attempts, 4) if attempts else None, **new}
        if promoted:
            path = self.history.path.parent / f"round-{number:04d}.safetensors"  # this replica's folder
            arch, arch_args = model_arch_args(model)
            meta = CheckpointMeta(arch=arch, arch_args=arch_args, round=number, metrics=new, trained_on=trained_on,
                                  created=_now())
            trainer.save_checkpoint(path, model, meta)
            record["checkpoint"] = path.relative_to(self.history.root).as_posix()  # wherever the data folder is
            record["created"] = meta.created
        record["seconds"] = round(time.perf_counter() - started, 2)
        self.history.append(record)
        with self._lock:
            self._last_error = None  # this round ran to a decision: an earlier failure is no longer the news
        if promoted:
            self.predictor.swap(model, {"round": number, "checkpoint": record["checkpoint"]})
            with self._lock:
                self._attempts = self._flags = 0
            log.info("round %d promoted: MNIST %.3f, adversarial %s", number, new["mnist_top1"], new["adversarial_top1"])
            if self.on_promoted:
                self.on_promoted(path, meta)
        else:
            log.warning("round %d rejected: MNIST %.3f < serving %.3f - %.1f points", number, new["mnist_top1"],
                        old, self.gate_margin)


def load_serving(history: History, base_path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The latest promoted round's model if the history has one, else the base checkpoint."""
    serving = history.serving()
    path = history.root / serving["checkpoint"] if serving and serving.get("checkpoint") else Path(base_path)
    model, meta = trainer.load_checkpoint(path)
    return model, {"round": meta.round, "checkpoint": str(path)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
