"""What the worker says of itself: the serving round, its figures, the examples, the error rate and the rounds so far.
The page's panel and `/status` read these (services.AppStatus adds the Hub's and the serving copy's state)."""
from __future__ import annotations

from dataclasses import dataclass

from outwit.ml.metrics import Accuracy


@dataclass(frozen=True)
class ExampleCounts:
    total: int
    train: int
    test: int
    this_round: int  # added since the last round that ran to a decision
    per_digit: dict[str, int]


@dataclass(frozen=True)
class ErrorRate:
    flags: int  # drawings that fooled the serving model, since it was promoted
    attempts: int  # drawings it judged
    rate: float | None


@dataclass(frozen=True)
class RoundSummary:
    round: int
    status: str
    mnist: Accuracy | None
    adversarial: Accuracy | None
    robust: Accuracy | None
    train_adversarial: int | None
    seconds: float
    error_rate: float | None


@dataclass(frozen=True)
class WorkerStatus:
    round: int
    mnist: Accuracy | None  # None until the serving model is measured
    adversarial: Accuracy | None
    robust: Accuracy | None  # under PGD on a fixed subset of MNIST test; None when not measured
    examples: ExampleCounts
    until_next_round: int
    retrain_every: int
    error_rate: ErrorRate
    training: bool
    last_error: str | None
    history: list[RoundSummary]
    training_seconds: float | None = None  # how long the round under way has run
    served_from: str | None = None  # where the serving model came from, when not a round of this process's own
