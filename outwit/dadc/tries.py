"""Drawings judged per round, by every replica: what the model error rate (MER, vMER, the panel's error rate)
divides by, so that it is the whole app's and not one process's.

Each process counts the drawings its serving model judged, and how many of those were saved as fooling it, per
round. `flush()` appends its running totals for each round whose totals changed to `<data>/tries/<shard>/tries.jsonl`
(the Hub sync calls it before each push, and the app at its stop), beside the examples and synced with them. A
round's figures are, over the shards, the sum of each shard's last line for it; this process's own are its live
counts. A process started again under the same shard carries on from its last line.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from outwit.storage import append_jsonl, read_jsonl, utc_now


class Tries:
    """`lock`: the store's, held around each append (the Hub sync holds it around its scan)."""

    def __init__(self, root: str | Path, shard: str, lock: threading.Lock):
        self.root, self.shard, self._file_lock = Path(root), shard, lock
        self.path = self.root / shard / "tries.jsonl"
        self._lock = threading.Lock()  # guards the counts below
        self._own: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # round -> [judged, fooled], live
        self._written: dict[int, tuple[int, int]] = {}
        for row in read_jsonl(self.path) if self.path.exists() else []:
            self._own[row["round"]] = [row["judged"], row["fooled"]]
            self._written[row["round"]] = (row["judged"], row["fooled"])
        self._others: dict[int, list[int]] = {}
        self.refresh()

    def record(self, model_round: int, fooled: bool) -> None:
        with self._lock:
            counts = self._own[model_round]
            counts[0] += 1
            counts[1] += int(fooled)

    def of(self, model_round: int) -> tuple[int, int]:
        """(judged, fooled) for one round, over every replica."""
        return self.per_round().get(model_round, (0, 0))

    def per_round(self) -> dict[int, tuple[int, int]]:
        with self._lock:
            rounds = set(self._own) | set(self._others)
            return {r: (self._own.get(r, [0, 0])[0] + self._others.get(r, [0, 0])[0],
                        self._own.get(r, [0, 0])[1] + self._others.get(r, [0, 0])[1]) for r in sorted(rounds)}

    def flush(self) -> int:
        """Append this process's totals for each round whose totals changed since the last flush; returns the
        lines written."""
        with self._lock:
            changed = {r: tuple(c) for r, c in self._own.items() if self._written.get(r) != tuple(c)}
        with self._file_lock:
            for model_round, (judged, fooled) in sorted(changed.items()):
                append_jsonl(self.path, {"round": model_round, "judged": judged, "fooled": fooled,
                                         "shard": self.shard, "created": utc_now()})
        with self._lock:
            self._written.update(changed)
        return len(changed)

    def refresh(self) -> None:
        """Read the other shards' last lines again (after a pull brought theirs)."""
        others: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for path in sorted(self.root.glob("*/tries.jsonl")):
            if path == self.path:
                continue
            last = {row["round"]: row for row in read_jsonl(path)}
            for model_round, row in last.items():
                others[model_round][0] += row["judged"]
                others[model_round][1] += row["fooled"]
        with self._lock:
            self._others = dict(others)
