"""The fast round: fine-tune only the layers above a fixed trunk, over trunk features kept across rounds.

Four fifths of the CNN's multiply-adds are in its trunk (the conv blocks at 28 and 14 px). A round that keeps the
trunk fixed computes the trunk's output for the MNIST replay and test images once, and then every round trains
and evaluates only the upper layers on them; the few adversarial examples still pass through the trunk each step,
with the random affine augmentation. (Stopping as soon as the adversarial examples were learnt was tried: with
ten examples it stopped at the learning rate's peak, a quarter into the schedule, and MNIST fell 8 points.)
"""
from __future__ import annotations

import hashlib
import threading
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from outwit.ml.training import batched, one_cycle, optimiser_step, random_affine


def can_tune_upper(model: nn.Module) -> bool:
    return all(hasattr(model, name) for name in ("trunk", "upper", "trunk_layers", "upper_layers"))


def fingerprint(module: nn.Module) -> str:
    """The weights of `module`, as a short hash: features computed by one trunk are never used with another."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class TrunkCache:
    """The trunk's output for fixed image sets (by name), for one trunk at a time; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._trunk: str | None = None
        self._features: dict[str, torch.Tensor] = {}

    def features(self, model: nn.Module, name: str, inputs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) trunk features of `inputs`, the image set called `name`, on their device; computed on first
        use."""
        key = fingerprint(model.trunk_layers())
        with self._lock:
            if key != self._trunk:
                self._trunk, self._features = key, {}
            cached = self._features.get(name)
        if cached is None or len(cached) != len(inputs) or cached.device != inputs.device:
            cached = trunk_features(model, inputs)
            with self._lock:
                if key == self._trunk:
                    self._features[name] = cached
        return cached


def trunk_features(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    return batched(model.trunk, inputs, batch_size)


def upper_predictions(model: nn.Module, features: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 10) probabilities from trunk features."""
    model.eval()
    return batched(lambda f: F.softmax(model.upper(f), dim=1), features, batch_size)


def tune_upper(model: nn.Module, adversarial: tuple[torch.Tensor, torch.Tensor],
               replay: tuple[torch.Tensor, torch.Tensor], *, steps: int, lr: float, batch_size: int,
               generator: torch.Generator, augment: bool, weight_decay: float) -> dict:
    """Train `model`'s upper layers in place, `steps` steps, on adversarial images (augmented, through the fixed
    trunk) and replay trunk features, mixed in proportion to their counts. Returns loss figures."""
    adv_x, adv_y = adversarial
    replay_f, replay_y = replay
    n_adv, total = len(adv_y), len(adv_y) + len(replay_y)
    if total == 0:
        raise ValueError("no training examples")
    params = [p for layer in model.upper_layers() for p in layer.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=steps))
    _train_upper(model)
    losses, step = [], 0
    while step < steps:
        order = torch.randperm(total, generator=generator)
        for start in range(0, total, batch_size):
            idx = order[start : start + batch_size]
            features, labels = _batch(model, idx, n_adv, adv_x, adv_y, replay_f, replay_y, generator, augment)
            losses.append(optimiser_step(optimizer, schedule, F.cross_entropy(model.upper(features), labels)))
            step += 1
            if step >= steps:
                break
    model.eval()
    return {"steps": step, "final_loss": float(sum(losses[-50:]) / len(losses[-50:]))}


def _batch(model, idx, n_adv, adv_x, adv_y, replay_f, replay_y, generator, augment):
    from_adv, from_replay = idx[idx < n_adv], idx[idx >= n_adv] - n_adv
    parts, labels = [replay_f[from_replay]], [replay_y[from_replay]]
    if len(from_adv):
        x = adv_x[from_adv]
        with torch.no_grad():
            parts.append(model.trunk(random_affine(x, generator) if augment else x))
        labels.append(adv_y[from_adv])
    return torch.cat(parts), torch.cat(labels)


def _train_upper(model: nn.Module) -> None:
    """Train mode for the upper layers only: the trunk's BatchNorm keeps its statistics, so cached features stay
    true."""
    model.eval()
    for layer in model.upper_layers():
        layer.train()


def warm_up(cache: TrunkCache, model: nn.Module, training_set, eval_sets) -> None:
    """Compute what a round will ask of `cache`: the trunk features of the replay set and of the fixed evaluation
    sets (a rounds.TrainingSet and a mapping of rounds.EvalSet)."""
    if not can_tune_upper(model):
        return
    if training_set.replay is not None:
        cache.features(model, training_set.replay.name, training_set.replay.images)
    for s in eval_sets.values():
        if s.fixed and s.attack is None and len(s.labels):
            cache.features(model, s.dataset, s.inputs)
