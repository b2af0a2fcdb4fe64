"""One round of DADC: fine-tune a copy of the serving model, evaluate it, decide whether it may replace it.

`run_round` is pure and synchronous: a model, tensors and a recipe in, a `RoundResult` out; no threads, no files,
no HTTP. The retrain worker schedules it and acts on the result (save, swap, publish); the simulation, the attacks
and the speed comparison call the same function.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

import torch
import torch.nn as nn

from outwit.config import TUNES
from outwit.ml import data, training
from outwit.ml.attacks import Attack, robust_accuracy
from outwit.ml.metrics import MNIST, Accuracy, Metrics
from outwit.ml.tuning import TrunkCache, can_tune_upper, tune_upper, upper_predictions

LR = {"all": 3e-4, "upper": 3e-3}  # the upper layers alone move less: a larger step learns the examples in time


@dataclass(frozen=True)
class Recipe:
    """How a round fine-tunes, and how it decides. Recorded in each promoted round's checkpoint."""

    steps: int = 80  # optimiser steps
    lr: float | None = None  # peak learning rate (AdamW, warm-up then cosine decay); None: LR[tune]
    batch_size: int = 64
    seed: int = 0  # the worker adds the round number, so that each round draws differently
    augment: bool = True  # random affine transforms of every training image
    weight_decay: float = 1e-4
    gate_margin: float = 1.0  # percentage points of MNIST test accuracy a round may lose and still be promoted
    tune: str = "all"  # "upper": train only the layers above the trunk, over cached trunk features (tuning.py)

    def __post_init__(self):
        if self.tune not in TUNES:
            raise ValueError(f"tune={self.tune!r} must be one of {TUNES}")
        for name, ok, rule in (("steps", self.steps >= 1, "at least 1"),
                               ("lr", self.lr is None or self.lr > 0, "more than 0 (or None: LR[tune])"),
                               ("batch_size", self.batch_size >= 1, "at least 1"),
                               ("weight_decay", self.weight_decay >= 0, "at least 0"),
                               ("gate_margin", 0 <= self.gate_margin <= 100, "from 0 to 100 percentage points")):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} must be {rule}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LR[self.tune]

    def to_json(self) -> dict:
        return {**asdict(self), "lr": self.learning_rate}


@dataclass(frozen=True)
class Replay:
    """The MNIST images a training set replays: rows `pick` of the fixed image set `name`."""

    name: str
    images: torch.Tensor  # (M, 1, 28, 28): the whole set
    pick: torch.Tensor  # (R,) int64

    def to(self, device: torch.device) -> "Replay":
        return replace(self, images=self.images.to(device))


@dataclass(frozen=True)
class TrainingSet:
    inputs: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    labels: torch.Tensor  # (N,) int64
    description: dict = field(default_factory=dict)  # what it is made of, e.g. {"adversarial": 8, "replay": 2048}
    replay: Replay | None = None  # when the last R rows are replayed images of a fixed set: which

    def to(self, device: torch.device) -> "TrainingSet":
        """The same set with its tensors on `device`."""
        return replace(self, inputs=self.inputs.to(device), labels=self.labels.to(device),
                       replay=self.replay.to(device) if self.replay is not None else None)

    @property
    def adversarial_rows(self) -> int:
        """The rows before the replay: the adversarial examples (repeated to weigh them in the mix)."""
        return len(self.labels) - (len(self.replay.pick) if self.replay is not None else 0)


@dataclass(frozen=True)
class EvalSet:
    dataset: str  # the name shown beside its accuracy, e.g. "mnist-sample-5k/test"
    inputs: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    labels: torch.Tensor  # (N,) int64
    attack: Attack | None = None  # measure robust accuracy: each input attacked first
    fixed: bool = False  # the same images every round: their trunk features may be cached

    @classmethod
    def of(cls, digits: data.Digits) -> "EvalSet":
        return cls(digits.name, *digits.tensors(), fixed=True)

    def to(self, device: torch.device) -> "EvalSet":
        return replace(self, inputs=self.inputs.to(device), labels=self.labels.to(device))


def on_device(device: torch.device, training_set: TrainingSet, eval_sets: Mapping[str, EvalSet]):
    """The sets with their tensors on `device` (the same objects on the CPU)."""
    if device.type == "cpu":
        return training_set, dict(eval_sets)
    return training_set.to(device), {name: s.to(device) for name, s in eval_sets.items()}


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


def evaluate_sets(model: nn.Module, eval_sets: Mapping[str, EvalSet], cache: TrunkCache | None = None) -> Metrics:
    """Top-1 and top-5 accuracy on each set, by name; an empty set has no accuracy (None). A set with an attack
    gets its robust top-1, with the attack named after the data set. With `cache`, a fixed set's trunk features
    come from it and only the upper layers run."""
    return Metrics({name: _evaluate(model, s, cache) for name, s in eval_sets.items()})


def _evaluate(model: nn.Module, s: EvalSet, cache: TrunkCache | None) -> Accuracy:
    if s.attack is None and cache is not None and s.fixed and len(s.labels) and can_tune_upper(model):
        probs = upper_predictions(model, cache.features(model, s.dataset, s.inputs))
        return Accuracy.from_json(training.scores(probs, s.labels, s.dataset))
    if s.attack is None:
        return Accuracy.from_json(training.evaluate(model, s.inputs, s.labels, name=s.dataset))
    top1 = robust_accuracy(model, s.inputs, s.labels, s.attack) if len(s.labels) else None
    return Accuracy(dataset=f"{s.dataset} under {s.attack.name}", size=len(s.labels), top1=top1)


def run_round(model: nn.Module, training_set: TrainingSet, eval_sets: Mapping[str, EvalSet], recipe: Recipe,
              *, baseline: Metrics | None = None, cache: TrunkCache | None = None,
              device: str | torch.device = "cpu") -> RoundResult:
    """Fine-tune a copy of `model` on `training_set`, evaluate it on `eval_sets` (which must include `MNIST`) and
    decide: promoted if its MNIST accuracy is at most `recipe.gate_margin` points below the serving model's.

    `baseline`: the serving model's metrics as recorded; its MNIST accuracy is measured again only if it was
    recorded on another data set. `recipe.tune == "upper"` needs a model with a trunk (the CNN) and a training set
    that names its replay; otherwise every layer is trained, and the result's recipe says so. `cache` keeps the
    trunk features of fixed image sets across rounds (one is made for this round if none is given). `device`: where
    the round computes ("cuda" on a GPU; the cache's features must have been computed there); the result's model
    is on the CPU, and `model` is left where it is.
    """
    if MNIST not in eval_sets:
        raise ValueError(f"eval_sets={sorted(eval_sets)} must include {MNIST!r}: the gate compares MNIST accuracy")
    if len(training_set.labels) == 0:
        raise ValueError("training_set is empty: nothing to train on")
    started = time.perf_counter()
    device = torch.device(device)
    training_set, eval_sets = on_device(device, training_set, eval_sets)
    candidate = copy.deepcopy(model).to(device)
    serving = model if device.type == "cpu" else copy.deepcopy(model).to(device)
    generator = training.seed_everything(recipe.seed)
    upper = recipe.tune == "upper" and can_tune_upper(model) and training_set.replay is not None
    if upper:
        cache = cache or TrunkCache()
        losses = _tune_upper(candidate, training_set, recipe, generator, cache)
    else:
        cache, recipe = None, replace(recipe, tune="all")
        epochs = max(1.0, recipe.steps * recipe.batch_size / len(training_set.labels))
        losses = training.train(candidate, training_set.inputs, training_set.labels, epochs=epochs,
                                lr=recipe.learning_rate, batch_size=recipe.batch_size, generator=generator,
                                augment=recipe.augment, max_steps=recipe.steps, weight_decay=recipe.weight_decay)
    metrics = evaluate_sets(candidate, eval_sets, cache)
    baseline = _serving_baseline(serving, eval_sets[MNIST], baseline or Metrics(), cache)
    promoted, reason = decide(metrics, baseline, recipe.gate_margin)
    return RoundResult(model=candidate.cpu(), metrics=metrics, baseline=baseline, promoted=promoted, reason=reason,
                       recipe=recipe, trained_on=dict(training_set.description), steps=losses["steps"],
                       final_loss=losses["final_loss"], seconds=round(time.perf_counter() - started, 2))


def decide(metrics: Metrics, baseline: Metrics, gate_margin: float) -> tuple[bool, str]:
    """The gate: a round may cost at most `gate_margin` points of MNIST accuracy."""
    new, old = metrics.top1(MNIST), baseline.top1(MNIST)
    floor = old - gate_margin / 100
    verdict = ">=" if new >= floor - 1e-9 else "<"
    text = f"MNIST {100 * new:.1f}% {verdict} serving {100 * old:.1f}% - {gate_margin:g} points"
    return verdict == ">=", text


def _serving_baseline(model: nn.Module, mnist: EvalSet, recorded: Metrics, cache: TrunkCache | None) -> Metrics:
    known = recorded.get(MNIST)
    if known is not None and known.top1 is not None and known.dataset == mnist.dataset:
        return recorded
    return Metrics({**recorded.sets, **evaluate_sets(model, {MNIST: mnist}, cache).sets})


def _tune_upper(candidate: nn.Module, training_set: TrainingSet, recipe: Recipe, generator: torch.Generator,
                cache: TrunkCache) -> dict:
    replay, n_adv = training_set.replay, training_set.adversarial_rows
    features = cache.features(candidate, replay.name, replay.images)[replay.pick]
    return tune_upper(candidate, (training_set.inputs[:n_adv], training_set.labels[:n_adv]),
                      (features, training_set.labels[n_adv:]), steps=recipe.steps, lr=recipe.learning_rate,
                      batch_size=recipe.batch_size, generator=generator, augment=recipe.augment,
                      weight_decay=recipe.weight_decay)
