"""Fooling transfer: of the drawings that fooled one round's model, the share that fools each other model.

Bartolo et al.'s "Beat the AI" found that data collected against a weak model still teaches a strong one; here a
researcher sees, per round, whether what fooled that round's model also fools the fixed reference models (the blog's
small network, the base CNN, the adversarially trained CNN, the ViT) and the models of the rounds after it (does an
example stay hard?). An example counts when it is a validated person's drawing; it "still fools" a model that reads
it as another digit than its label. The app's Rounds tab and `trainer.py evaluate --examples DIR` make the same
table (`transfer_table`).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from outwit.dadc.reviews import Reviews
from outwit.dadc.store import DRAWN, AdversarialStore
from outwit.ml import checkpoints
from outwit.ml.metrics import percent
from outwit.ml.references import REFERENCES, References
from outwit.ml.training import predict_all

TRANSFER_COLUMNS = ["examples from round", "examples", "model", "still fooled"]


@dataclass(frozen=True)
class Judge:
    """A model the examples are tried on: a fixed reference, or a round's (`round` then set)."""

    name: str
    model: nn.Module
    round: int | None = None


def reference_judges(references: References) -> list[Judge]:
    """The shipped reference models there are, in REFERENCES' order."""
    return [Judge(REFERENCES[key], references.model(key)) for key in references.available()]


def transfer_table(store: AdversarialStore, keep: Callable[[dict], bool], judges: list[Judge]) -> list[list]:
    """Per round whose examples there are (oldest first) and judge, in TRANSFER_COLUMNS order: the examples that
    fooled that round's model and the share the judge still gets wrong. A round's judge is tried on the rounds
    before it only (on its own round's examples it was trained after, or was the model fooled)."""
    by_round: dict[int, list[dict]] = defaultdict(list)
    for row in store.rows():
        if row.get("source", DRAWN) == DRAWN and row["guess"] != row["label"] and keep(row):  # fooled it
            by_round[row["round"]].append(row)
    table = []
    for model_round in sorted(by_round):
        rows = by_round[model_round]
        inputs, labels = store.tensors(rows)
        for judge in judges:
            if judge.round is not None and judge.round <= model_round:
                continue
            guesses = predict_all(judge.model, inputs).argmax(1)
            wrong = int((guesses != labels).sum())
            table.append([model_round, len(rows), judge.name, f"{percent(wrong / len(rows))} ({wrong})"])
    return table


class TransferCache:
    """The app's table, made again only when the examples in use or the rounds change (the Rounds tab asks for it
    each time it is opened). `round_models()`: {round: checkpoint path} of the rounds whose models served; the
    reference models are read the first time the table is asked for, not at the app's start."""

    def __init__(self, store: AdversarialStore, keep: Callable[[dict], bool],
                 round_models: Callable[[], dict[int, Path]], references: References):
        self.store, self.keep, self.round_models, self.references = store, keep, round_models, references
        self._key, self._table = None, []
        self._loaded: dict[Path, nn.Module] = {}
        self._lock = threading.Lock()  # one table made at a time; the others wait for it

    def table(self) -> list[list]:
        """Of the validated drawings that fooled each round's model, the share each other model still gets wrong."""
        rounds = self.round_models()
        key = (tuple(r["id"] for r in self.store.rows() if self.keep(r)), tuple(sorted(rounds.items())))
        with self._lock:
            if key != self._key:
                later = [Judge(f"round {r}", self._model(path), r) for r, path in sorted(rounds.items())]
                with torch.inference_mode():
                    self._table = transfer_table(self.store, self.keep, [*reference_judges(self.references), *later])
                self._key = key
            return self._table

    def _model(self, path: Path) -> nn.Module:
        if path not in self._loaded:
            self._loaded[path] = checkpoints.load(path)[0].eval()
        return self._loaded[path]


def folder_table(folder: str | Path, *, votes_required: int = 0, extra: list[Path] = ()) -> dict:
    """`trainer.py evaluate --examples DIR`: the transfer table of a data folder (`data_mnist`, with `adversarial/`,
    `reviews/` and `rounds/`) or of an examples folder alone (a round's zip, unpacked: `train/`, `test/`). The judges:
    the shipped references, every round checkpoint under `rounds/`, and `extra` checkpoints (named by file)."""
    folder = Path(folder)
    root = folder / "adversarial" if (folder / "adversarial").is_dir() else folder
    if not any(root.glob("*/*/metadata.jsonl")):
        raise ValueError(f"{folder} holds no examples: expected <split>/<replica>/metadata.jsonl, or adversarial/...")
    store = AdversarialStore(root, shard="reader")
    reviews = Reviews(folder / "reviews", store, required=votes_required)
    rounds: dict[int, Path] = {}
    for path in sorted((folder / "rounds").glob("*/round-*.safetensors")):
        rounds[int(path.stem.split("-")[1])] = path
    judges = [*reference_judges(References()), *(Judge(p.stem, checkpoints.load(p)[0].eval()) for p in extra),
              *(Judge(f"round {r}", checkpoints.load(p)[0].eval(), r) for r, p in sorted(rounds.items()))]
    with torch.inference_mode():
        table = transfer_table(store, reviews.usable, judges)
    return {"examples": str(folder), "examples_used": len([r for r in store.rows() if reviews.usable(r)]),
            "judges": [j.name for j in judges], "table": [dict(zip(TRANSFER_COLUMNS, row)) for row in table]}
