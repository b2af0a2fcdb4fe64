"""Robustness you can trust: our attacks cross-checked with torchattacks and with noise; one drawing attacked for the
page; a PNG grid of clean and attacked digits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageDraw, ImageFont

from outwit.ml.attacks import Attack, eval_mode
from outwit.ml.training import batched


def _guesses(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return batched(lambda xb: model(xb).argmax(dim=1), x, batch_size)


def survives(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None, *, batch_size: int = 250,
             seed: int = 0) -> torch.Tensor:
    """(N,) bool: which examples the model still gets right under `attack` (clean when None)."""
    generator = torch.Generator().manual_seed(seed)
    right = []
    with eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            right.append(_guesses(model, attack(model, xb, yb, generator) if attack else xb) == yb)
    return torch.cat(right)


def report(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_values: list[float], *, pgd: Attack,
           cross_check: bool = True, apgd_steps: int = 100, autoattack: bool = False) -> dict:
    """Accuracy, clean and under each attack at each epsilon.

    Per epsilon: FGSM, our PGD (`pgd`'s steps, step size and restarts at that epsilon), torchattacks' APGD-CE
    (the cross-check), with `autoattack` torchattacks' AutoAttack (standard), uniform noise, and `worst`: the
    examples that survive every gradient attack.
    `noise_beats_pgd` flags gradient masking: noise of the same size should never do better than PGD.
    """
    if len(y) == 0:
        raise ValueError("no examples to evaluate on")
    clean = survives(model, x, y, None)
    figures = {"clean": _rate(clean), "attacks": {}}
    for eps in eps_values:
        attacks = {"fgsm": Attack("fgsm", eps),
                   "pgd": Attack("pgd", eps, steps=pgd.steps, step_size=pgd.step_size, restarts=pgd.restarts),
                   "noise": Attack("noise", eps)}
        if cross_check:
            attacks["apgd"] = Attack("apgd", eps, steps=apgd_steps, restarts=pgd.restarts)
        if autoattack:
            attacks["autoattack"] = Attack("autoattack", eps)
        right = {name: survives(model, x, y, attack) & clean for name, attack in attacks.items()}
        gradient = [right[name] for name in ("fgsm", "pgd", "apgd", "autoattack") if name in right]
        worst = torch.stack(gradient).all(dim=0)
        row = {name: {"attack": attacks[name].name, "accuracy": _rate(r)} for name, r in right.items()}
        row["worst"] = _rate(worst)
        row["noise_beats_pgd"] = row["noise"]["accuracy"] < row["pgd"]["accuracy"]
        if cross_check:  # how far our PGD is from the library's, in accuracy points
            row["pgd_minus_apgd"] = round(row["pgd"]["accuracy"] - row["apgd"]["accuracy"], 4)
        if autoattack:
            row["pgd_minus_autoattack"] = round(row["pgd"]["accuracy"] - row["autoattack"]["accuracy"], 4)
        figures["attacks"][f"{eps:g}"] = row
    return figures


def _rate(right: torch.Tensor) -> float:
    return round(right.float().mean().item(), 4)


# ---------------------------------------------------------------------------------------------- one drawing
@dataclass(frozen=True)
class AttackedDrawing:
    clean: np.ndarray  # (28, 28) uint8, the model input as the store keeps it
    adversarial: np.ndarray  # (28, 28) uint8, within eps of `clean` (rounded towards it)
    clean_probs: np.ndarray  # (10,)
    adversarial_probs: np.ndarray  # (10,)
    eps: float

    @property
    def perturbation(self) -> np.ndarray:
        """(28, 28) uint8 shown as grey 128 for no change, lighter where ink was added, darker where removed."""
        delta = self.adversarial.astype(np.float32) - self.clean.astype(np.float32)
        scale = 127 / max(1.0, self.eps * 255)
        return np.clip(128 + delta * scale, 0, 255).astype(np.uint8)


def attack_input(model: nn.Module, model_input: torch.Tensor, label: int, attack: Attack) -> AttackedDrawing:
    """Attack one (1, 28, 28) input towards any wrong digit; both images on the 8-bit grid a PNG keeps."""
    clean = (model_input.clamp(0, 1) * 255).round() / 255
    x, y = clean.unsqueeze(0), torch.tensor([int(label)])
    with eval_mode(model):
        x_adv = attack(model, x, y, torch.Generator().manual_seed(0))
        delta = torch.trunc((x_adv - x) * 255) / 255  # towards zero: stays within eps on the 8-bit grid
        x_adv = (x + delta).clamp(0, 1)
        with torch.no_grad():
            probs = torch.softmax(model(torch.cat([x, x_adv])), dim=1).numpy()
    as_bytes = lambda t: (t[0, 0].numpy() * 255).round().astype(np.uint8)  # noqa: E731
    return AttackedDrawing(as_bytes(x), as_bytes(x_adv), probs[0], probs[1], attack.eps)


# ---------------------------------------------------------------------------------------------- the grid
def grid(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *, cell: int = 84) -> Image.Image:
    """Three rows for the given examples: clean, attacked, perturbation; captions read "true digit -> guess"."""
    with eval_mode(model):
        x_adv = attack(model, x, y, torch.Generator().manual_seed(0))
        clean_guess, adversarial_guess = _guesses(model, x), _guesses(model, x_adv)
    rows = [("clean", x, clean_guess), (attack.name, x_adv, adversarial_guess),
            ("perturbation", 0.5 + (x_adv - x) / (2 * max(attack.eps, 1e-6)), None)]
    caption, left = 18, 110
    image = Image.new("L", (left + cell * len(y), len(rows) * (cell + caption)), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for r, (title, images, guesses) in enumerate(rows):
        top = r * (cell + caption)
        draw.text((4, top + cell // 2), title, fill=0, font=font)
        for i in range(len(y)):
            digit = Image.fromarray((images[i, 0].clamp(0, 1).numpy() * 255).astype(np.uint8), "L")
            image.paste(digit.resize((cell, cell), Image.NEAREST), (left + i * cell, top))
            if guesses is not None:
                mark = "" if guesses[i] == y[i] else " wrong"
                draw.text((left + i * cell + 4, top + cell + 2), f"{int(y[i])} -> {int(guesses[i])}{mark}", fill=0,
                          font=font)
    return image
