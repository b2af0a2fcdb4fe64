"""The record of rounds: one JSON line per round, append-only; round 0 is the base model.

Each replica keeps its own at `<rounds root>/<shard>/rounds.jsonl`, with its promoted checkpoints beside it; a
record's `checkpoint` is relative to the rounds root. Records written before the metrics had one layout (flat
`mnist_top1`, `train_adversarial`, `flags_total`, ...) are read as well.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch.nn as nn

from outwit.ml import checkpoints
from outwit.ml.metrics import MNIST, Metrics
from outwit.storage import append_jsonl, atomic_write, read_jsonl, utc_now

log = logging.getLogger(__name__)
STATUSES = ("base", "promoted", "rejected", "failed")


@dataclass(frozen=True)
class RoundRecord:
    round: int
    status: str  # one of STATUSES
    started: str = ""  # when the round started (UTC)
    examples_added: int = 0  # examples ever added when the round started: the next round counts from here
    seconds: float = 0
    metrics: Metrics = field(default_factory=Metrics)  # this round's model
    baseline: Metrics = field(default_factory=Metrics)  # the serving model's, as the gate saw them
    checkpoint: str | None = None  # promoted rounds: the model, relative to the rounds root
    created: str | None = None  # the checkpoint's own timestamp: which model this is
    trained_on: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    reason: str | None = None  # the gate's decision in words
    error: str | None = None  # failed rounds
    error_rate: float | None = None  # of the serving model, over the drawings it judged before this round
    attempts: int | None = None  # those drawings (since the serving model was promoted, in this process)
    fooled: int | None = None  # the ones among them that fooled it and were saved
    source: str | None = None  # a model adopted from elsewhere (a model repo)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} must be one of {STATUSES}")

    @property
    def served(self) -> bool:
        """Its model served: the base model, or a promoted round."""
        return self.status in ("base", "promoted")

    def to_json(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["metrics"], row["baseline"] = self.metrics.to_json(), self.baseline.to_json()
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_json(cls, raw: dict) -> "RoundRecord":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["metrics"] = Metrics.from_json(raw["metrics"] if "metrics" in raw else _legacy_metrics(raw))
        values["baseline"] = Metrics.from_json(raw["baseline"] if "baseline" in raw else _legacy_baseline(raw))
        values.setdefault("examples_added", raw.get("flags_total", 0))
        if "trained_on" not in raw and "train_adversarial" in raw:
            values["trained_on"] = {"adversarial": raw["train_adversarial"], "replay": raw.get("replay")}
        return cls(**values)


def _legacy_metrics(raw: dict) -> dict:
    return {k: v for k, v in raw.items() if k.startswith(("mnist_", "adversarial_"))}


def _legacy_baseline(raw: dict) -> dict:
    if raw.get("serving_mnist_top1") is None:
        return {}
    return {MNIST: {"dataset": raw.get("mnist_dataset", ""), "size": None, "top1": raw["serving_mnist_top1"]}}


class History:
    """`lock` is taken around each append: the store's, so that a Hub sync never reads half a line."""

    def __init__(self, path: str | Path, lock: threading.Lock | None = None):
        self.path = Path(path)
        self.root = self.path.parent.parent
        self._lock = lock or threading.Lock()
        rows = read_jsonl(self.path) if self.path.exists() else []
        self.records: list[RoundRecord] = [RoundRecord.from_json(row) for row in rows]

    def append(self, record: RoundRecord) -> None:
        with self._lock:
            append_jsonl(self.path, record.to_json())
            self.records.append(record)

    def serving(self) -> RoundRecord | None:
        """The latest round whose model was promoted (or the base record)."""
        return next((r for r in reversed(self.records) if r.served), None)

    def served_rounds(self) -> list[int]:
        """The rounds whose model served (the base model's, and each promoted one), oldest first."""
        return sorted({r.round for r in self.records if r.served})

    def next_round(self) -> int:
        return max((r.round for r in self.records), default=0) + 1

    def added_at_last_round(self) -> int:
        """Examples added when the last round that ran to a decision started: the trigger counts from there."""
        return next((r.examples_added for r in reversed(self.records) if r.status in ("promoted", "rejected")), 0)

    def model_path(self, record: RoundRecord, base_path: str | Path) -> Path:
        """Where a served round's model is: its checkpoint, or the base model's when it has none."""
        return self.root / record.checkpoint if record.checkpoint else Path(base_path)

    def serve_again(self, earlier: RoundRecord, *, source: str, reason: str) -> RoundRecord:
        """Record that an earlier round's model serves again (an admin's rollback; a fallback from a checkpoint that
        cannot be loaded): a new promoted round that names it. The round trigger goes on counting as before."""
        record = replace(earlier, round=self.next_round(), status="promoted", started=utc_now(), seconds=0,
                         examples_added=self.added_at_last_round(), source=source, reason=reason,
                         error_rate=None, attempts=None, fooled=None)
        self.append(record)
        return record

    def adopt_latest(self) -> bool:
        """A new replica (or a restarted Space) with no history of its own carries on from the replica whose
        latest promoted round is newest: its records are copied here. Returns whether anything was adopted."""
        if self.records:
            return False
        candidates = [History(p) for p in self.root.glob("*/rounds.jsonl") if p != self.path]
        candidates = [h for h in candidates if h.serving() and h.serving().status == "promoted"]
        if not candidates:
            return False
        newest = max(candidates, key=lambda h: h.serving().started)
        for record in newest.records:
            self.append(record)
        log.info("carrying on from %s: round %d", newest.path, newest.serving().round)
        return True

    def adopt_model(self, checkpoint: bytes, meta: checkpoints.CheckpointMeta, *, source: str,
                    examples_added: int) -> bool:
        """Serve a model made elsewhere (a model repo's latest round): unless this history already serves that very
        checkpoint, it is copied beside the history and recorded as promoted. Returns whether it was adopted."""
        serving = self.serving()
        if serving is not None and serving.created == meta.created:
            return False
        target = self.path.parent / f"round-{meta.round:04d}.safetensors"
        atomic_write(target, checkpoint)
        self.append(RoundRecord(round=meta.round, status="promoted", started=meta.created, source=source,
                                checkpoint=target.relative_to(self.root).as_posix(), created=meta.created,
                                examples_added=examples_added, metrics=meta.metrics, trained_on=meta.trained_on,
                                recipe=meta.recipe))
        log.info("serving round %d from %s", meta.round, source)
        return True


def load_serving(history: History, base_path: str | Path) -> tuple[nn.Module, dict]:
    """The latest promoted round's model if the history has one, else the base checkpoint.

    A checkpoint is written whole before its round is recorded, so a crash never leaves a record pointing at half
    a file. Should one still not load (a damaged disk, a file removed by hand), the latest earlier model that
    loads serves, recorded as a new round that says why; the base model is the last resort.
    """
    broken = None
    for record in reversed([r for r in history.records if r.served]):
        path = history.model_path(record, base_path)
        try:
            model, _ = checkpoints.load(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file: fall back rather than fail to start
            if not record.checkpoint:
                raise  # the base model itself: nothing to fall back to
            log.error("round %d's checkpoint %s cannot be loaded (%s); trying the round before", record.round,
                      path, err)
            broken = broken or record
            continue
        if broken is not None:
            record = history.serve_again(record, source=f"fallback to round {record.round}",
                                         reason=f"round {broken.round}'s checkpoint could not be loaded")
        return model, {"round": record.round, "checkpoint": str(path)}
    model, meta = checkpoints.load(base_path)
    number = meta.round
    if broken is not None:
        number = history.serve_again(RoundRecord(round=meta.round, status="base"), source="fallback to the base model",
                                     reason=f"round {broken.round}'s checkpoint could not be loaded").round
    return model, {"round": number, "checkpoint": str(base_path)}
