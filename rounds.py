"""One round of DADC: fine-tune a copy of the serving model, evaluate it, decide whether it may replace it.

`run_round` is pure and synchronous: a model, tensors and a recipe in, a `RoundResult` out; no threads, no files,
no HTTP. The retrain worker schedules it and acts on the result (save, swap, publish); the simulation, the attacks
and the speed comparison call the same function.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

import torch
import torch.nn as nn

import data
import trainer
from attacks import Attack, robust_accuracy
from metrics import MNIST, Accuracy, Metrics


@dataclass(frozen=True)
class Recipe:
    """How a round fine-tunes, and how it decides. Recorded in each promoted round's checkpoint."""

    steps: int = 80  # optimiser steps
    lr: float = 3e-4  # peak learning rate (AdamW, warm-up then cosine decay)
    batch_size: int = 64
    seed: int = 0  # the worker adds the round number, so that each round draws differently
    augment: bool = True  # random affine transforms of every training image
    weight_decay: float = 1e-4
    gate_margin: float = 1.0  # percentage points of MNIST test accuracy a round may lose and still be promoted

    def __post_init__(self):
        for name, ok, rule in (("steps", self.steps >= 1, "at least 1"), ("lr", self.lr > 0, "more than 0"),
                               ("batch_size", self.batch_size >= 1, "at least 1"),
                               ("weight_decay", self.weight_decay >= 0, "at least 0"),
                               ("gate_margin", 0 <= self.gate_margin <= 100, "from 0 to 100 percentage points")):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} must be {rule}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingSet:
    inputs: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    labels: torch.Tensor  # (N,) int64
    description: dict = field(default_factory=dict)  # what it is made of, e.g. {"adversarial": 8, "replay": 2048}


@dataclass(frozen=True)
class EvalSet:
    dataset: str  # the name shown beside its accuracy, e.g. "mnist-sample-5k/test"
    inputs: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    labels: torch.Tensor  # (N,) int64
    attack: Attack | None = None  # measure robust accuracy: each input attacked first

    @classmethod
    def of(cls, digits: data.Digits) -> "EvalSet":
        return cls(digits.name, *digits.tensors())


@dataclass(frozen=True)
class RoundResult:
    model: nn.Module  # the fine-tuned copy, in eval mode; the serving model is untouched
    metrics: Metrics  # the new model's, on each evaluation set
    baseline: Metrics  # the serving model's, as the decision saw them
    promoted: bool
    reason: str  # the decision in words
    recipe: Recipe
    trained_on: dict
    steps: int
    final_loss: float
    seconds: float


def evaluate_sets(model: nn.Module, eval_sets: Mapping[str, EvalSet]) -> Metrics:
    """Top-1 and top-5 accuracy on each set, by name; an empty set has no accuracy (None). A set with an attack
    gets its robust top-1, with the attack named after the data set."""
    return Metrics({name: _evaluate(model, s) for name, s in eval_sets.items()})


def _evaluate(model: nn.Module, s: EvalSet) -> Accuracy:
    if s.attack is None:
        return Accuracy.from_json(trainer.evaluate(model, s.inputs, s.labels, name=s.dataset))
    top1 = robust_accuracy(model, s.inputs, s.labels, s.attack) if len(s.labels) else None
    return Accuracy(dataset=f"{s.dataset} under {s.attack.name}", size=len(s.labels), top1=top1)


def run_round(model: nn.Module, training_set: TrainingSet, eval_sets: Mapping[str, EvalSet], recipe: Recipe,
              *, baseline: Metrics | None = None) -> RoundResult:
    """Fine-tune a copy of `model` on `training_set`, evaluate it on `eval_sets` (which must include `MNIST`) and
    decide: promoted if its MNIST accuracy is at most `recipe.gate_margin` points below the serving model's.

    `baseline`: the serving model's metrics as recorded; its MNIST accuracy is measured again only if it was
    recorded on another data set.
    """
    if MNIST not in eval_sets:
        raise ValueError(f"eval_sets={sorted(eval_sets)} must include {MNIST!r}: the gate compares MNIST accuracy")
    if len(training_set.labels) == 0:
        raise ValueError("training_set is empty: nothing to train on")
    started = time.perf_counter()
    candidate = copy.deepcopy(model)
    generator = trainer.seed_everything(recipe.seed)
    epochs = max(1.0, recipe.steps * recipe.batch_size / len(training_set.labels))
    losses = trainer.train(candidate, training_set.inputs, training_set.labels, epochs=epochs, lr=recipe.lr,
                           batch_size=recipe.batch_size, generator=generator, augment=recipe.augment,
                           max_steps=recipe.steps, weight_decay=recipe.weight_decay)
    metrics = evaluate_sets(candidate, eval_sets)
    baseline = _serving_baseline(model, eval_sets[MNIST], baseline or Metrics())
    promoted, reason = decide(metrics, baseline, recipe.gate_margin)
    return RoundResult(model=candidate, metrics=metrics, baseline=baseline, promoted=promoted, reason=reason,
                       recipe=recipe, trained_on=dict(training_set.description), steps=losses["steps"],
                       final_loss=losses["final_loss"], seconds=round(time.perf_counter() - started, 2))


def decide(metrics: Metrics, baseline: Metrics, gate_margin: float) -> tuple[bool, str]:
    """The gate: a round may cost at most `gate_margin` points of MNIST accuracy."""
    new, old = metrics.top1(MNIST), baseline.top1(MNIST)
    floor = old - gate_margin / 100
    verdict = ">=" if new >= floor - 1e-9 else "<"
    text = f"MNIST {100 * new:.1f}% {verdict} serving {100 * old:.1f}% - {gate_margin:g} points"
    return verdict == ">=", text


def _serving_baseline(model: nn.Module, mnist: EvalSet, recorded: Metrics) -> Metrics:
    known = recorded.get(MNIST)
    if known is not None and known.top1 is not None and known.dataset == mnist.dataset:
        return recorded
    return Metrics({**recorded.sets, **evaluate_sets(model, {MNIST: mnist}).sets})
