"""Drawings judged per round, by every replica: what the model error rate (MER, vMER, the panel's error rate)
divides by, so that it is the whole app's and not one process's; and the same per digit drawn and per targeted
challenge, for the hints (where the model is weakest) and the Rounds tab's per-pair rates.

Each process counts the drawings its serving model judged, and how many of those were saved as fooling it, per
round: in all, per digit drawn (a drawing cleared unsaved is taken to be the digit the model read it as: the
visitor did not say it was wrong), and per challenge pair ("3>8": attempts at making a 3 read as an 8, and hits).
`flush()` appends its running totals for each round whose totals changed to `<data>/tries/<shard>/tries.jsonl`
(the Hub sync calls it before each push, and the app at its stop), beside the examples and synced with them. A
round's figures are, over the shards, the sum of each shard's last line for it; this process's own are its live
counts. A process started again under the same shard carries on from its last line. Lines written before the
digits and pairs were counted lack them: zeros.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from outwit.storage import append_jsonl, read_jsonl, utc_now


@dataclass
class RoundTries:
    """One round's counts: drawings judged and fooling, in all and per digit drawn; per challenge pair, attempts
    and hits."""

    judged: int = 0
    fooled: int = 0
    digits: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(10)])  # digit -> [judged, fooled]
    pairs: dict[str, list[int]] = field(default_factory=dict)  # "3>8" -> [attempts, hits]

    def add(self, other: "RoundTries") -> None:
        self.judged += other.judged
        self.fooled += other.fooled
        for mine, theirs in zip(self.digits, other.digits):
            mine[0] += theirs[0]
            mine[1] += theirs[1]
        for pair, (attempts, hits) in other.pairs.items():
            counts = self.pairs.setdefault(pair, [0, 0])
            counts[0] += attempts
            counts[1] += hits

    def line(self) -> dict:
        return {"judged": self.judged, "fooled": self.fooled, "digits": [list(d) for d in self.digits],
                "pairs": {p: list(c) for p, c in sorted(self.pairs.items())}}

    @classmethod
    def of_line(cls, row: dict) -> "RoundTries":
        counts = cls(judged=row["judged"], fooled=row["fooled"])
        for d, pair in enumerate(row.get("digits") or []):
            counts.digits[d] = [int(pair[0]), int(pair[1])]
        counts.pairs = {p: [int(c[0]), int(c[1])] for p, c in (row.get("pairs") or {}).items()}
        return counts


class Tries:
    """`lock`: the store's, held around each append (the Hub sync holds it around its scan)."""

    def __init__(self, root: str | Path, shard: str, lock: threading.Lock):
        self.root, self.shard, self._file_lock = Path(root), shard, lock
        self.path = self.root / shard / "tries.jsonl"
        self._lock = threading.Lock()  # guards the counts below
        self._own: dict[int, RoundTries] = defaultdict(RoundTries)  # round -> counts, live
        self._written: dict[int, dict] = {}
        for row in read_jsonl(self.path) if self.path.exists() else []:
            self._own[row["round"]] = RoundTries.of_line(row)
            self._written[row["round"]] = self._own[row["round"]].line()
        self._others: dict[int, RoundTries] = {}
        self.refresh()

    def record(self, model_round: int, fooled: bool, digit: int | None = None,
               pair: tuple[int, int] | None = None, hit: bool = False) -> None:
        """One drawing judged by round `model_round`'s model; `digit`: the digit drawn, when known; `pair`: the
        challenge (drawn, aimed) it was an attempt at, `hit` whether it was met."""
        with self._lock:
            counts = self._own[model_round]
            counts.judged += 1
            counts.fooled += int(fooled)
            if digit is not None and 0 <= digit <= 9:
                counts.digits[digit][0] += 1
                counts.digits[digit][1] += int(fooled)
            if pair is not None:
                attempts = counts.pairs.setdefault(f"{pair[0]}>{pair[1]}", [0, 0])
                attempts[0] += 1
                attempts[1] += int(hit)

    def of(self, model_round: int) -> tuple[int, int]:
        """(judged, fooled) for one round, over every replica."""
        counts = self.round(model_round)
        return counts.judged, counts.fooled

    def round(self, model_round: int) -> RoundTries:
        """One round's counts, over every replica."""
        total = RoundTries()
        with self._lock:
            for source in (self._own, self._others):
                if model_round in source:
                    total.add(source[model_round])
        return total

    def per_round(self) -> dict[int, tuple[int, int]]:
        with self._lock:
            rounds = set(self._own) | set(self._others)
        return {r: self.of(r) for r in sorted(rounds)}

    def flush(self) -> int:
        """Append this process's totals for each round whose totals changed since the last flush; returns the
        lines written."""
        with self._lock:
            lines = {r: c.line() for r, c in self._own.items()}
            changed = {r: line for r, line in lines.items() if self._written.get(r) != line}
        with self._file_lock:
            for model_round, line in sorted(changed.items()):
                append_jsonl(self.path, {"round": model_round, **line, "shard": self.shard, "created": utc_now()})
        with self._lock:
            self._written.update(changed)
        return len(changed)

    def refresh(self) -> None:
        """Read the other shards' last lines again (after a pull brought theirs)."""
        others: dict[int, RoundTries] = defaultdict(RoundTries)
        for path in sorted(self.root.glob("*/tries.jsonl")):
            if path == self.path:
                continue
            last = {row["round"]: row for row in read_jsonl(path)}
            for model_round, row in last.items():
                others[model_round].add(RoundTries.of_line(row))
        with self._lock:
            self._others = dict(others)
