"""Models in the loop: the models a visitor sets out to fool, and what each of them read a drawing as.

The serving round's model is the default opponent; a visitor may choose instead, or as well, any of the fixed
references (`outwit.ml.references`): the robust CNN, the ViT, the blog's small network, the base CNN. A drawing
counts as fooling when every chosen model reads it as another digit than the one drawn ("fool them all"). Rounds
retrain only the serving model; the references never change. Every saved drawing keeps the readings it was judged
by (`judged_by`: JSON text, a list of {"model", "guess", "confidence"} and, for the serving model, its "round").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch

from outwit.ml.references import REFERENCES, References
from outwit.text import quoted

SERVING = "serving"  # the serving round's model, whichever round it is
DEFAULT = (SERVING,)


def model_name(model: str, model_round: int | None = None) -> str:
    """A model as a person reads it: "round 3's model" (the serving one), "ViT"."""
    return f"round {model_round}'s model" if model == SERVING else REFERENCES[model]


def not_offered(model, offered: list[str]) -> str:
    """The refusal of a model to fool that is not offered here (quoted short and without markup: it came from
    outside)."""
    return f"{quoted(model)} is not a model to fool here; choose from {', '.join(offered)}"


@dataclass(frozen=True)
class Reading:
    """What one model read a drawing as."""

    model: str  # SERVING or a key of REFERENCES
    probs: np.ndarray = field(repr=False)  # (10,) probabilities of the digits 0-9
    round: int | None = None  # the serving model's round

    @property
    def guess(self) -> int:
        return int(self.probs.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probs[self.guess])

    @property
    def name(self) -> str:
        return model_name(self.model, self.round)

    def to_json(self) -> dict:
        kept = {"model": self.model, "guess": self.guess, "confidence": round(self.confidence, 4)}
        return {**kept, "round": self.round} if self.model == SERVING else kept


def judged_by(readings: Iterable[Reading]) -> str:
    """The row's `judged_by`: the readings as JSON text (text, not a struct: structs whose keys differ from file to
    file break `datasets`' loading of the folder)."""
    return json.dumps([r.to_json() for r in readings], separators=(",", ":"))


def said(readings: Iterable[Reading]) -> str:
    """One line for the page: "round 3's model: 5 (91%) · ViT: 8 (55%)"."""
    return " · ".join(f"{r.name}: **{r.guess}** ({r.confidence:.0%})" for r in readings)


def told(row: dict) -> str:
    """What the models a saved drawing was judged by said, for a validator: "the model said 5", or "the models it
    was drawn to fool said: robust CNN 5, ViT 8"."""
    try:
        readings = json.loads(row.get("judged_by") or "[]")
        named = [(model_name(r["model"], r.get("round")), r["guess"]) for r in readings]
    except (ValueError, TypeError, KeyError):  # a row written by hand: its serving model's reading stands
        named = []
    if len(named) <= 1 and all(name.startswith("round ") for name, _ in named):
        return f"the model said {row['guess']}"
    return f"the models it was drawn to fool said: {', '.join(f'{name} {guess}' for name, guess in named)}"


class Opponents:
    """The models a visitor may choose to fool, and their readings of one model input."""

    def __init__(self, serving_read, references: References):
        """`serving_read(model_input) -> (probs, round)`: the serving model's reading (the predictor's)."""
        self.serving_read, self.references = serving_read, references

    def choices(self) -> list[tuple[str, str]]:
        """(name shown, key) of every model that may be chosen, the serving model first."""
        return [("this round's model", SERVING), *((REFERENCES[k], k) for k in self.references.available())]

    def chosen(self, keys: Iterable[str] | None) -> tuple[str, ...]:
        """The keys as a canonical tuple (the serving model first, then REFERENCES' order); None: the default.
        ValueError, naming what is wrong, for an empty choice or a model that is not offered."""
        if keys is None:
            return DEFAULT
        if isinstance(keys, str):
            keys = [k for k in keys.split(",") if k]
        offered = [key for _, key in self.choices()]
        unknown = [k for k in keys if k not in offered]
        if unknown:
            raise ValueError(not_offered(unknown[0], offered))
        picked = tuple(k for k in offered if k in set(keys))
        if not picked:
            raise ValueError("Choose at least one model to fool")
        return picked

    def read(self, model_input: torch.Tensor, keys: tuple[str, ...]) -> tuple[Reading, ...]:
        """Each chosen model's reading of a (1, 28, 28) model input, in `keys`' order."""
        readings = []
        for key in keys:
            if key == SERVING:
                probs, model_round = self.serving_read(model_input)
                readings.append(Reading(SERVING, probs, model_round))
            else:
                readings.append(Reading(key, self.references.read(key, model_input)))
        return tuple(readings)
