"""What the model sees: the 28×28 input it got, and which of its pixels pushed it towards its guess.

Integrated Gradients (Sundararajan et al. 2017) from Captum, the attribution library the PyTorch team keeps: each
pixel's attribution is its value times the gradient of the guess's logit averaged along the straight path from a
black image (MNIST's background, so "no ink") to the input; the attributions add up to the logit's change along
that path, which the picture's caption can trust. `steps` points on the path go through the model as one batch.
Torch and Captum only: the page (outwit/ui) turns the map into a picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

STEPS = 32  # points on the path: the attributions' sum is within a few percent of the logit's change at 32


@dataclass(frozen=True)
class Explanation:
    model_input: np.ndarray  # (28, 28) uint8, white ink on black: what the model got
    attributions: np.ndarray  # (28, 28) float: > 0 pushed towards `target`, < 0 away from it
    target: int  # the digit explained (the model's guess)
    probability: float  # the model's probability of `target`
    convergence: float  # |sum of attributions − logit change| / |logit change|: how far to trust the map


def explain(model: nn.Module, model_input: torch.Tensor, target: int | None = None,
            steps: int = STEPS) -> Explanation:
    """`model_input`: (1, 28, 28) or (1, 1, 28, 28) in [0, 1]; `target`: the digit to explain (default the guess)."""
    from captum.attr import IntegratedGradients

    x = model_input.reshape(1, 1, 28, 28).float()
    model.eval()
    with torch.no_grad():
        logits = model(x)
    target = int(logits.argmax()) if target is None else int(target)
    baseline = torch.zeros_like(x)
    attributions, delta = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=target, n_steps=steps, internal_batch_size=steps,
        return_convergence_delta=True)
    with torch.no_grad():
        change = float(logits[0, target] - model(baseline)[0, target])
    convergence = abs(float(delta)) / max(abs(change), 1e-6)
    image = (x[0, 0].numpy() * 255).round().astype(np.uint8)
    probability = float(torch.softmax(logits, 1)[0, target])
    return Explanation(image, attributions[0, 0].detach().numpy(), target, probability, convergence)


def heat_picture(explanation: Explanation, scale: int = 8) -> np.ndarray:
    """(28·scale, 28·scale, 3) uint8: the input in grey, pixels that pushed towards the guess tinted red, away blue,
    as strongly as their attribution against the 99th percentile's (square-rooted, so that weak pushes show too)."""
    a = explanation.attributions
    top = float(np.percentile(np.abs(a), 99)) or float(np.abs(a).max()) or 1.0
    weight = np.sqrt(np.clip(np.abs(a) / top, 0, 1))
    grey = explanation.model_input.astype(np.float32) * 0.5
    towards, away = weight * (a > 0), weight * (a < 0)
    rgb = np.stack([grey + (255 - grey) * towards - grey * away,
                    grey * (1 - weight),
                    grey + (255 - grey) * away - grey * towards], -1)
    picture = np.clip(rgb, 0, 255).round().astype(np.uint8)
    return np.kron(picture, np.ones((scale, scale, 1), dtype=np.uint8))
