"""Training and evaluation as small functions over (model, tensors, ...): what pretraining, each round, the fast
round's upper layers and the simulation all call.
"""
from __future__ import annotations

import math
import random
import sys
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from outwit.ml import adversarial_training
from outwit.ml.adversarial_training import AdversarialTraining, CollapseGuard


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 12.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.85, 1.15), shear: float = 0.15) -> torch.Tensor:
    """A different small random affine transform for each image of a (B, 1, 28, 28) batch."""
    b = images.shape[0]
    u = torch.rand(b, 5, generator=generator).to(images.device) * 2 - 1  # (B, 5) in [-1, 1]; a CPU generator
    angle = u[:, 0] * math.radians(degrees)
    zoom = (scale[0] + (u[:, 1] + 1) / 2 * (scale[1] - scale[0])).reciprocal()
    cos, sin, sh = torch.cos(angle) * zoom, torch.sin(angle) * zoom, u[:, 2] * shear
    theta = torch.stack([
        torch.stack([cos, -sin + sh * cos, u[:, 3] * translate * 2], dim=1),
        torch.stack([sin, cos + sh * sin, u[:, 4] * translate * 2], dim=1),
    ], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def optimiser_step(optimizer: torch.optim.Optimizer, schedule, loss: torch.Tensor) -> float:
    """One step of `optimizer` down `loss`, the schedule moved on; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return loss.item()


def one_cycle(step: int, total: int, warmup: float = 0.2) -> float:
    """Learning-rate factor: linear warm-up over the first 20% of steps, then cosine decay to zero."""
    ramp = max(1, round(warmup * total))
    if step < ramp:
        return (step + 1) / ramp
    return 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, total - ramp)))


def train(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epochs: float, lr: float, batch_size: int,
          generator: torch.Generator, augment: bool = True, max_steps: int | None = None,
          weight_decay: float = 1e-4, progress: bool = False, adversarial: AdversarialTraining | None = None,
          ema: float | None = None) -> dict:
    """Train on (N, 1, 28, 28) inputs in [0, 1] with AdamW and a warm-up + cosine schedule; returns loss figures.

    With `adversarial`, every batch is attacked first and the model learns from the attack (`batch_loss`); after each
    epoch at full epsilon a PGD check runs, and a collapse of its robust accuracy restores the best weights and stops.
    With `ema` (a decay such as 0.995), the model ends with the exponential moving average of its weights and
    BatchNorm statistics over the steps (unless the guard restored earlier weights, which are kept).
    """
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema={ema!r} must be a decay between 0 and 1, such as 0.995")
    if len(inputs) == 0:
        raise ValueError("no training examples")
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    total = max(1, round(epochs * steps_per_epoch))
    total = min(total, max_steps) if max_steps else total
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=total))
    guard = CollapseGuard(adversarial, inputs, labels) if adversarial else None
    average = None if ema is None else torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema), use_buffers=True)
    model.train()
    losses, step = [], 0
    bar = tqdm(total=total, desc="train", unit="step", file=sys.stderr) if progress else None
    while step < total and not (guard and guard.stopped):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            x, y = inputs[idx], labels[idx]
            if augment:
                x = random_affine(x, generator)
            eps = adversarial.eps_at(step, total) if adversarial else 0.0
            loss = adversarial_training.batch_loss(model, x, y, adversarial, eps=eps, generator=generator)
            losses.append(optimiser_step(optimizer, schedule, loss))
            if average is not None:
                average.update_parameters(model)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", **guard.postfix() if guard else {})
            if step >= total:
                break
        if guard and step >= adversarial.eps_warmup * total:
            guard.after_epoch(model, step)
    if bar is not None:
        bar.close()
    if average is not None and not (guard and guard.stopped):
        model.load_state_dict(average.module.state_dict())
    model.eval()
    return {"steps": step, "final_loss": float(np.mean(losses[-50:])), **(guard.report() if guard else {})}


@torch.inference_mode()
def batched(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`forward` over `inputs`, `batch_size` rows at a time, joined: a large set never passes through at once."""
    return torch.cat([forward(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])


def predict_all(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """(N, 10) probabilities, in eval mode."""
    model.eval()
    return batched(lambda x: F.softmax(model(x), dim=1), inputs, batch_size)


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, name: str) -> dict:
    """Top-1, top-5, per-digit accuracy and the confusion matrix (rows: true digit, columns: guess)."""
    return scores(predict_all(model, inputs) if len(labels) else None, labels, name)


def scores(probs: torch.Tensor | None, labels: torch.Tensor, name: str) -> dict:
    """`evaluate`'s figures from (N, 10) probabilities."""
    if len(labels) == 0:
        return {"dataset": name, "size": 0, "top1": None, "top5": None, "per_digit": {}, "confusion": []}
    probs, labels = probs.cpu(), labels.cpu()  # computed on a GPU, counted here
    top5 = probs.topk(5, dim=1).indices
    guess = top5[:, 0]
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion.index_put_((labels, guess), torch.ones_like(labels), accumulate=True)
    per_digit = {str(d): round(confusion[d, d].item() / n, 4) for d in range(10) if (n := confusion[d].sum().item())}
    return {
        "dataset": name,
        "size": len(labels),
        "top1": round((guess == labels).float().mean().item(), 4),
        "top5": round((top5 == labels[:, None]).any(dim=1).float().mean().item(), 4),
        "per_digit": per_digit,
        "confusion": confusion.tolist(),
    }
