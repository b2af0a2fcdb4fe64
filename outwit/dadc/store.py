"""The store of adversarial examples: one data folder that owns its lock, its appends and its counts.

On disk, a Hugging Face imagefolder data set that `datasets.load_dataset("imagefolder", data_dir=root)` loads:

    root/{train,test}/<shard>/metadata.jsonl        one JSON row per example
    root/{train,test}/<shard>/images/<id>.png       the drawing as the person drew it (dark ink on white)
    root/{train,test}/<shard>/inputs/<id>.png       the 28×28 model input made from it

Each writer (one per app replica) appends only to its own shard. An image is written, flushed and renamed into
place before its row is appended, so a row never points at a missing image; a torn last line (a crash
mid-append) is skipped with a warning on load. Counts live in memory.

Additions are counted apart from the examples in use: a row's `seq` (its place among its shard's additions)
decides its split, and the round trigger counts additions, so that marking an example later (retracted, voted
incorrect) moves neither. A visitor's session is kept only as a short hash; a user name, when one is given
(a signed-in visitor, a chosen display name), is kept apart from it, as given, with how the person was known
(`identity`: signed-in or session). A drawing drawn in the page keeps its pen strokes (`strokes`), and one saved
under a targeted challenge the digit it was made to read as (`target`, else NO_TARGET), and what each model it was
judged by read it as (`judged_by`, JSON text; `outwit.dadc.opponents`). Rows written before
those fields existed lack them; readers take a missing one as empty.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from outwit.dadc.identity import SESSION, SIGNED_IN, hash_session, user_name
from outwit.ml.preprocess import ink_image, preprocess
from outwit.storage import append_jsonl, atomic_write, read_jsonl, utc_now
from outwit.text import quoted

log = logging.getLogger(__name__)
SPLITS = ("train", "test")

DRAWN = "drawn"  # a row's `source` when a person drew it; a machine adversary's rows name their attack
# A row's `target` when no targeted challenge was met: -1, as `datasets` marks a missing label. Not null: `datasets`
# types a column from each metadata file, and a file of nulls beside one of digits is refused.
NO_TARGET = -1


@dataclass(frozen=True)
class Counts:
    added: int  # every example ever added, by every shard: what the round trigger counts
    total: int  # the examples in use
    train: int
    test: int
    per_digit: dict[int, int]


class FlagLimitError(ValueError):
    """A session saved as many examples as one session may; nothing was written."""


class AdversarialStore:
    """Append-only store of flagged drawings; thread-safe; every `holdout_every`-th example is held out as test.

    `session_limit`: examples one session may add (0: no limit), checked under the lock, so that a burst of
    concurrent requests cannot slip past it; counted from the rows, so a restart does not reset it."""

    def __init__(self, root: str | Path, *, shard: str = "local", holdout_every: int = 5, session_limit: int = 0):
        if holdout_every < 2:
            raise ValueError(f"holdout_every={holdout_every!r} must be at least 2 (one in N examples held out)")
        if session_limit < 0:
            raise ValueError(f"session_limit={session_limit!r} must be 0 (no limit) or more")
        self.session_limit = session_limit
        if not shard or any(c in shard for c in "/\\.") or shard.startswith("-"):
            raise ValueError(f"shard={shard!r} must be a plain name")
        self.root, self.shard, self.holdout_every = Path(root), shard, holdout_every
        self.lock = threading.Lock()  # held around each append; an uploader takes it around its scan
        self.refresh()

    def refresh(self) -> None:
        """Read every shard's rows from disk again: after examples of other replicas were downloaded. This writer's
        own shard is read under the lock its appends hold: a save under way is neither missed nor counted twice."""
        own = {self.root / split / self.shard / "metadata.jsonl" for split in SPLITS}
        others = [row for split in SPLITS for path in sorted((self.root / split).glob("*/metadata.jsonl"))
                  if path not in own for row in read_jsonl(path)]
        with self.lock:
            rows = others + [row for path in sorted(own) if path.exists() for row in read_jsonl(path)]
            rows.sort(key=lambda row: row["created"])
            self._rows = rows
            self._by_id = {row["id"]: row for row in rows}
            self._added = len(rows)
            own = [row.get("seq", -1) for row in rows if row.get("shard") == self.shard]
            self._mine = max(len(own), max(own, default=-1) + 1)
            self._splits = Counter(row["split"] for row in rows)
            self._digits = Counter(row["label"] for row in rows)
            self._sessions = Counter(row.get("session") or "" for row in rows)

    @property
    def own_rows(self) -> int:
        """Examples this writer added to its own shard, ever: the next one's `seq`."""
        return self._mine

    # ------------------------------------------------------------------ writing
    def add(self, drawing: Any, *, label: int, guess: int, confidence: float, model_round: int,
            session: str | None = None, user: str | None = None, identity: str = "", target: int = NO_TARGET,
            strokes: str = "", judged_by: str = "") -> dict:
        """Save one fooling drawing; returns its row. Raises EmptyDrawingError / ValueError before writing.
        `target`: the digit a targeted challenge aimed for, which the models read it as; `strokes`: the pen strokes
        that made it, as the page recorded them (Quick, Draw!'s raw format as JSON text, `strokes.quickdraw`);
        `judged_by`: the readings of the models it was judged by (JSON text, `opponents.judged_by`)."""
        _check_label(label)
        user = user_name(user)
        read_as = _read_as(judged_by) or {int(guess)}
        if target != NO_TARGET:
            _check_label(target)
            if read_as != {int(target)} or int(target) == int(label):
                raise ValueError(f"target={quoted(target)} must be the digit the models read it as, not its label")
        model_input = preprocess(drawing)  # (1, 28, 28); raises on an empty canvas before anything is written
        drawn = Image.fromarray(255 - ink_image(drawing), mode="L")
        return self._write(drawn, _input_image(model_input), dict(
            label=int(label), guess=int(guess), confidence=round(float(confidence), 4), round=int(model_round),
            source=DRAWN, session=hash_session(session), user=user, identity=_identity(identity, session),
            target=int(target), strokes=str(strokes or ""), judged_by=judged_by))

    def add_input(self, model_input: np.ndarray, *, source: str, label: int, guess: int, confidence: float,
                  model_round: int, session: str | None = None, user: str | None = None,
                  identity: str = "") -> dict:
        """Save a model input made by a machine adversary (e.g. `source="pgd-40x1@0.1"`) as an example."""
        _check_label(label)
        user = user_name(user)
        if model_input.shape != (28, 28) or model_input.dtype != np.uint8:
            raise ValueError(f"model_input must be a (28, 28) uint8 image, not {model_input.shape} {model_input.dtype}")
        if not source or source == DRAWN:
            raise ValueError(f"source={source!r} must name the attack that made the input")
        image = Image.fromarray(model_input, mode="L")
        return self._write(Image.fromarray(255 - model_input, mode="L"), image, dict(
            label=int(label), guess=int(guess), confidence=round(float(confidence), 4), round=int(model_round),
            source=source, session=hash_session(session), user=user, identity=_identity(identity, session),
            target=NO_TARGET, strokes="", judged_by=""))

    def _write(self, drawn: Image.Image, model_input: Image.Image, fields: dict) -> dict:
        example_id = uuid.uuid4().hex
        with self.lock:
            session = fields["session"]
            if self.session_limit and session and self._sessions[session] >= self.session_limit:
                raise FlagLimitError(f"This session has saved {self.session_limit} drawings, as many as one session "
                                     "may: thank you! Nothing more is saved from it.")
            seq = self._mine
            split = "test" if seq % self.holdout_every == self.holdout_every - 1 else "train"
            folder = self.root / split / self.shard
            row = {"id": example_id, "seq": seq, "file_name": f"images/{example_id}.png",
                   "input_file_name": f"inputs/{example_id}.png", **fields, "split": split,
                   "created": utc_now("microseconds"), "shard": self.shard}
            _write_png(folder / row["file_name"], drawn)
            _write_png(folder / row["input_file_name"], model_input)
            append_jsonl(folder / "metadata.jsonl", row)
            self._rows.append(row)
            self._by_id[example_id] = row
            self._added += 1
            self._mine += 1
            self._splits[split] += 1
            self._digits[row["label"]] += 1
            self._sessions[session] += 1
        return row

    # ------------------------------------------------------------------ reading
    def counts(self) -> Counts:
        with self.lock:
            return Counts(added=self._added, total=len(self._rows), train=self._splits["train"],
                          test=self._splits["test"],
                          per_digit={d: self._digits[d] for d in range(10)})

    def rows(self, split: str | None = None) -> list[dict]:
        """A snapshot of the rows, oldest first; `split` picks one split."""
        with self.lock:
            rows = list(self._rows)
        return [row for row in rows if split is None or row["split"] == split]

    def row(self, example_id: str) -> dict | None:
        """The row of one example, by its id; None if there is none."""
        with self.lock:
            return self._by_id.get(example_id)

    def latest(self, n: int) -> list[dict]:
        with self.lock:
            return list(reversed(self._rows[-n:]))

    def path_of(self, row: dict, column: str = "file_name") -> Path:
        return self.root / row["split"] / row["shard"] / row[column]

    def tensors(self, rows: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored 28×28 model inputs of `rows` as (N, 1, 28, 28) floats in [0, 1], and their labels."""
        if not rows:
            return torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64)
        images = np.stack([np.asarray(Image.open(self.path_of(r, "input_file_name")).convert("L")) for r in rows])
        inputs = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
        return inputs, torch.tensor([r["label"] for r in rows], dtype=torch.int64)


def _identity(kind: str, session: str | None) -> str:
    """How the person was known: SIGNED_IN or SESSION as the caller says, SESSION for a session id, else ""."""
    if kind not in (SIGNED_IN, SESSION, ""):
        raise ValueError(f"identity={quoted(kind)} must be {SIGNED_IN!r}, {SESSION!r} or empty")
    return kind or (SESSION if session else "")


def _read_as(judged_by: str) -> set[int]:
    """The digits the models of `judged_by` read a drawing as; ValueError for text that is not such a list."""
    if not judged_by:
        return set()
    try:
        readings = json.loads(judged_by)
        read_as = {int(r["guess"]) for r in readings if isinstance(r["model"], str)}
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"judged_by={quoted(judged_by)} must be a JSON list of model readings") from err
    if not read_as or not read_as <= set(range(10)):
        raise ValueError(f"judged_by={quoted(judged_by)} must name the digits 0-9 the models read")
    return read_as


def _check_label(label: Any) -> None:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise ValueError(f"label={quoted(label)} must be a digit 0-9")


def _input_image(model_input: torch.Tensor) -> Image.Image:
    return Image.fromarray((model_input[0].numpy() * 255).round().astype(np.uint8), mode="L")


def _write_png(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
