"""Adversarial training: learn from attacked inputs (Madry et al.'s min-max, or TRADES), guarded against
catastrophic overfitting.

`trainer.train(..., adversarial=AdversarialTraining(...))` learns each batch from `batch_loss`: the cross-entropy
on attacked inputs (`perturbation`), or TRADES's trade-off; `CollapseGuard` runs a PGD check after each epoch at
full epsilon.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from outwit.ml import attacks

log = logging.getLogger(__name__)

MODES = ("none", "fgsm-rs", "pgd", "trades")


def perturbation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str, eps: float, *,
                 pgd_steps: int = 7, generator: torch.Generator | None = None) -> torch.Tensor:
    """The inputs adversarial training learns from, in the model's current mode.

    `fgsm-rs`: FGSM from a uniform random start with step 1.25·eps (Wong et al. 2020, "Fast is better than free"):
    one extra gradient per batch. `pgd`: `pgd_steps` steps of 2.5·eps/steps from a random start (Madry et al.).
    """
    if mode == "none" or eps == 0:
        return x
    if mode == "fgsm-rs":
        return attacks.pgd_in_current_mode(model, x, y, eps, 1.25 * eps, 1, True, generator)
    if mode == "pgd":
        return attacks.pgd_in_current_mode(model, x, y, eps, attacks.madry_step(eps, pgd_steps), pgd_steps, True,
                                           generator)
    if mode == "trades":
        raise ValueError("mode 'trades' learns from its own search on the KL divergence (`trades_loss`), not from a "
                         "perturbation of the batch")
    raise ValueError(f"adversarial training mode {mode!r} is not one of {MODES}")


def trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int, beta: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """TRADES (Zhang et al. 2019): cross-entropy on the clean batch plus beta times the KL divergence between the
    model's clean and attacked outputs, the attacked input found by PGD on that divergence (in eval mode, from a
    tiny Gaussian start, as their code does). Learns from clean inputs too, so clean accuracy suffers less."""
    step_size = attacks.madry_step(eps, steps)
    with attacks.eval_mode(model):
        with torch.no_grad():
            clean_probs = F.softmax(model(x), dim=1)
        noise = torch.randn(x.shape, generator=generator).to(x.device) * 0.001
        x_adv = (x + noise).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                divergence = F.kl_div(F.log_softmax(model(x_adv), dim=1), clean_probs, reduction="sum")
                (grad,) = torch.autograd.grad(divergence, x_adv)
            x_adv = attacks.project(x_adv.detach() + step_size * grad.sign(), x, eps)
    logits = model(x)
    robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, y) + beta * robust


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adversarial: AdversarialTraining | None, *,
               eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The loss a training step goes down for the batch (x, y), at this step's epsilon."""
    if adversarial is None or eps == 0:
        return F.cross_entropy(model(x), y)
    if adversarial.mode == "trades":
        return trades_loss(model, x, y, eps, steps=adversarial.pgd_steps, beta=adversarial.beta, generator=generator)
    x = perturbation(model, x, y, adversarial.mode, eps, pgd_steps=adversarial.pgd_steps, generator=generator)
    return F.cross_entropy(model(x), y)


@dataclass(frozen=True)
class AdversarialTraining:
    """Train on attacked inputs (Madry et al.'s min-max), with a guard against catastrophic overfitting."""

    mode: str = "fgsm-rs"  # one of MODES
    eps: float = 0.3
    pgd_steps: int = 7  # attack steps per batch, for modes "pgd" and "trades"
    beta: float = 6.0  # mode "trades": weight of the robustness term (Zhang et al.'s MNIST choice)
    eps_warmup: float = 0.3  # epsilon ramps up from 0 over this fraction of the steps
    check_size: int = 200  # training images the PGD check attacks after each epoch
    collapse: float = 0.2  # robust accuracy this far below its best on the check = catastrophic overfitting: stop

    def __post_init__(self):
        for name, ok, rule in (("mode", self.mode in MODES, f"one of {MODES}"),
                               ("eps", 0 < self.eps <= 1, "more than 0 and at most 1"),
                               ("pgd_steps", self.pgd_steps >= 1, "at least 1"),
                               ("beta", self.beta > 0, "more than 0"),
                               ("eps_warmup", 0 <= self.eps_warmup < 1, "from 0 to less than 1"),
                               ("check_size", self.check_size >= 1, "at least 1"),
                               ("collapse", 0 < self.collapse <= 1, "more than 0 and at most 1")):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} must be {rule}")

    def eps_at(self, step: int, total: int) -> float:
        ramp = self.eps_warmup * total
        return self.eps if step >= ramp else self.eps * (step + 1) / ramp

    def check(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """Robust accuracy under PGD-10 (step eps/4) on the check images."""
        return attacks.robust_accuracy(model, x, y, attacks.Attack("pgd", self.eps, steps=10, step_size=self.eps / 4))



class CollapseGuard:
    """Wong et al.'s early stop: FGSM training can suddenly stop resisting PGD; keep the best weights and stop."""

    def __init__(self, adversarial: AdversarialTraining, inputs: torch.Tensor, labels: torch.Tensor):
        self.adversarial = adversarial
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[: adversarial.check_size]
        self.x, self.y = inputs[pick], labels[pick]
        self.checks: list[dict] = []
        self.best, self.best_state, self.stopped = -1.0, None, False

    def after_epoch(self, model: nn.Module, step: int) -> None:
        robust = self.adversarial.check(model, self.x, self.y)
        self.checks.append({"step": step, "pgd": round(robust, 4)})
        if robust >= self.best:
            self.best, self.best_state = robust, copy.deepcopy(model.state_dict())
        elif robust < self.best - self.adversarial.collapse:
            log.warning("catastrophic overfitting at step %d: PGD check %.3f after a best of %.3f; "
                        "restoring the best weights and stopping", step, robust, self.best)
            model.load_state_dict(self.best_state)
            self.stopped = True

    def postfix(self) -> dict:
        return {"pgd_check": f"{self.checks[-1]['pgd']:.3f}"} if self.checks else {}

    def report(self) -> dict:
        return {"pgd_checks": self.checks, "stopped_early": self.stopped}
