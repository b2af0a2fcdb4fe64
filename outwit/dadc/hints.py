"""Hints that teach: what the serving model has not learnt yet, and where it is weakest, for visitors to aim at.

- Still unbeaten: validated fooling drawings of earlier rounds that the serving model still reads wrong. Read again
  by the serving model once per change (a new round, another validated drawing), not per page.
- Per-digit error rates this round: of the drawings of each digit the serving model judged, the share it got wrong
  (a drawing cleared unsaved counts as the digit the model read it as: its drawer did not say it was wrong).
- A challenge suggestion: the digit the model is strongest on this round (the lowest error rate, the fewest fooling
  drawings overall on ties), to be read as the digit it is least often mistaken for.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

from outwit.dadc.reviews import Reviews
from outwit.dadc.store import DRAWN, AdversarialStore
from outwit.dadc.tries import Tries
from outwit.ml.serving import Predictor
from outwit.ml.training import predict_all

MAX_UNBEATEN = 12  # drawings the gallery shows, the newest first


@dataclass(frozen=True)
class DigitRate:
    digit: int
    judged: int
    fooled: int

    @property
    def rate(self) -> float | None:
        return self.fooled / self.judged if self.judged else None


@dataclass(frozen=True)
class Unbeaten:
    row: dict
    now_read_as: int  # the serving model's reading


class Hints:
    def __init__(self, *, store: AdversarialStore, reviews: Reviews, predictor: Predictor, tries: Tries | None):
        self.store, self.reviews, self.predictor, self.tries = store, reviews, predictor, tries
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._unbeaten: list[Unbeaten] = []

    def digit_rates(self) -> list[DigitRate]:
        """This round's error rate per digit drawn, over every replica."""
        if self.tries is None:
            return [DigitRate(d, 0, 0) for d in range(10)]
        digits = self.tries.round(self.predictor.current.round).digits
        return [DigitRate(d, judged, fooled) for d, (judged, fooled) in enumerate(digits)]

    def unbeaten(self) -> list[Unbeaten]:
        """Validated drawings that fooled an earlier round's model and still fool the serving one, newest first."""
        serving = self.predictor.current
        earlier = [row for row in self.store.rows() if row["round"] < serving.round
                   and row.get("source", DRAWN) == DRAWN and self.reviews.usable(row) and self.reviews.shown(row)]
        key = (serving.round, id(serving.model), tuple(row["id"] for row in earlier))
        with self._lock:
            if key == self._key:
                return list(self._unbeaten)
        found: list[Unbeaten] = []
        if earlier:
            inputs, labels = self.store.tensors(earlier)
            guesses = predict_all(serving.model, inputs).argmax(1)
            found = [Unbeaten(row, int(g)) for row, g, y in zip(earlier, guesses, labels) if g != y][::-1]
        with self._lock:
            self._key, self._unbeaten = key, found[:MAX_UNBEATEN]
            return list(self._unbeaten)

    def suggestion(self, seed: int | None = None) -> tuple[int, int]:
        """(digit to draw, digit to make it read as): where the model is strongest this round."""
        pick = random.Random(seed)
        rates = self.digit_rates()
        rows = self.store.rows()
        fooled_as = Counter((row["label"], row["guess"]) for row in rows)
        per_digit = Counter(row["label"] for row in rows)
        order = sorted(rates, key=lambda r: (r.rate if r.rate is not None else 0.0, per_digit[r.digit], pick.random()))
        drawn = order[0].digit
        targets = sorted((t for t in range(10) if t != drawn), key=lambda t: (fooled_as[(drawn, t)], pick.random()))
        return drawn, targets[0]
