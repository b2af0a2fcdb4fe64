"""Gradient attacks on digit models: FGSM, L∞ PGD and, as the control, uniform noise of the same size.

Pixels are in [0, 1] (the models normalise inside), so epsilon is in pixel units: MNIST's usual 0.1, 0.2, 0.3.
Every attack runs the model in eval mode (BatchNorm and dropout as served) and puts back the mode it found; it
takes gradients with respect to the input only, so the model's parameters are left untouched.

Robust accuracy is trusted only when a well-kept library agrees (`apgd`, torchattacks' APGD-CE; `autoattack`, its
AutoAttack, the standard suite) and noise of the same epsilon does no better than PGD: a model that resists PGD but
not noise is masking gradients.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("fgsm", "pgd", "noise", "apgd", "autoattack")


@dataclass(frozen=True)
class Attack:
    """One threat model and how hard to search it. The default is Madry et al.'s MNIST PGD-40, step 0.01."""

    kind: str = "pgd"
    eps: float = 0.3
    steps: int = 40  # PGD and APGD iterations
    step_size: float = 0.01  # PGD's step; FGSM steps the whole epsilon
    restarts: int = 1  # PGD and APGD random starts; an example counts as broken if any restart breaks it
    random_start: bool = True

    def __post_init__(self):
        for name, ok, rule in (("kind", self.kind in KINDS, f"one of {KINDS}"),
                               ("eps", 0 <= self.eps <= 1, "from 0 to 1 (pixels are in [0, 1])"),
                               ("steps", self.steps >= 1, "at least 1"),
                               ("step_size", self.step_size > 0, "more than 0"),
                               ("restarts", self.restarts >= 1, "at least 1")):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} must be {rule}")

    @property
    def name(self) -> str:
        """As it is shown beside its accuracy, e.g. `pgd-40x1@0.3`."""
        if self.kind in ("fgsm", "noise", "autoattack"):
            return f"{self.kind}@{self.eps:g}"
        return f"{self.kind}-{self.steps}x{self.restarts}@{self.eps:g}"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None, *, until_fooled: bool = False) -> torch.Tensor:
        """Adversarial versions of (B, 1, 28, 28) inputs `x` with labels `y`, within eps of x and inside [0, 1].

        `until_fooled` (PGD): stop each example at its first fooling iterate, to measure; without it the search
        runs every step and lands deeper past the boundary, as an example to keep (rounded to a PNG's grid) needs."""
        if self.kind == "fgsm":
            return fgsm(model, x, y, self.eps)
        if self.kind == "noise":
            return uniform_noise(x, self.eps, generator)
        if self.kind == "apgd":
            return apgd(model, x, y, self.eps, steps=self.steps, restarts=self.restarts)
        if self.kind == "autoattack":
            return autoattack(model, x, y, self.eps)
        return pgd(model, x, y, self.eps, step_size=self.step_size, steps=self.steps, restarts=self.restarts,
                   random_start=self.random_start, generator=generator, until_fooled=until_fooled)


def madry_step(eps: float, steps: int) -> float:
    """PGD's step by Madry et al.'s rule, 2.5·eps/steps: enough to cross the ε-ball and back at any budget."""
    return 2.5 * eps / steps


def madry_pgd(eps: float, steps: int) -> Attack:
    """PGD-`steps` at `eps` with Madry et al.'s step (a fixed step such as 0.01, right at 0.3, is too big at 0.02)."""
    return Attack("pgd", eps, steps=steps, step_size=madry_step(eps, steps))


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss's gradient at `x`, and which of `x` the model already gets wrong."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad, logits.detach().argmax(dim=1) != y


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """`x_adv` brought back within `eps` of `x` (L∞) and inside [0, 1]."""
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0, 1)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One step of eps along the sign of the loss gradient (Goodfellow et al. 2015)."""
    with eval_mode(model):
        return project(x + eps * _input_gradient(model, x, y)[0].sign(), x, eps).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, step_size: float = 0.01,
        steps: int = 40, restarts: int = 1, random_start: bool = True,
        generator: torch.Generator | None = None, until_fooled: bool = False) -> torch.Tensor:
    """L∞ projected gradient descent (Madry et al. 2018) on the cross-entropy loss.

    With restarts, each example keeps the first adversarial input that fools the model (or the last restart's).
    """
    best = x.clone()
    with eval_mode(model):
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(restarts):
            todo = ~fooled
            if not todo.any():
                break
            x_adv = pgd_in_current_mode(model, x[todo], y[todo], eps, step_size, steps, random_start, generator,
                                        until_fooled=until_fooled)
            with torch.no_grad():
                now_fooled = model(x_adv).argmax(dim=1) != y[todo]
            best[todo] = x_adv
            fooled[todo] = now_fooled
    return best


def pgd_in_current_mode(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step_size: float, steps: int,
                        random_start: bool, generator: torch.Generator | None, *,
                        until_fooled: bool = False) -> torch.Tensor:
    """PGD in whatever mode the model is in (training perturbs in train mode, as Wong et al. do).

    `until_fooled`: an example stops at the first iterate that fools the model (the strongest a search can do
    for it, and a smaller perturbation); the search goes on only for the rest, so that measuring a model that
    most inputs fool costs a few steps instead of all."""
    x_adv = project(x + _uniform(x, eps, generator), x, eps) if random_start else x.clone()
    active = torch.arange(len(x), device=x.device)
    for _ in range(steps):
        grad, fooled = _input_gradient(model, x_adv[active], y[active])
        if until_fooled:
            active, grad = active[~fooled], grad[~fooled]
            if len(active) == 0:
                break
        x_adv[active] = project(x_adv[active] + step_size * grad.sign(), x[active], eps)
    return x_adv.detach()


def uniform_noise(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The control: noise of the same L∞ size, uniform in [-eps, eps], clipped to [0, 1]."""
    return project(x + _uniform(x, eps, generator), x, eps)


def _uniform(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(x.shape, generator=generator).to(x.device) * 2 - 1) * eps  # a CPU generator, x anywhere


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 100,
         restarts: int = 1, seed: int = 0) -> torch.Tensor:
    """torchattacks' APGD-CE (Croce & Hein 2020): a well-kept implementation to cross-check our PGD with."""
    try:
        import torchattacks
    except ImportError as err:  # installed by `make install`, without its stale `requests` pin
        raise RuntimeError("the APGD cross-check needs torchattacks: run `make install`") from err
    with eval_mode(model):
        attack = torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=restarts, loss="ce",
                                   seed=seed)
        return attack(x, y).detach()


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int = 0) -> torch.Tensor:
    """torchattacks' AutoAttack, standard version (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T and Square (5,000
    queries), each on the examples the ones before left standing; the figure robustness papers report."""
    try:
        import torchattacks
    except ImportError as err:
        raise RuntimeError("AutoAttack needs torchattacks: run `make install`") from err
    with eval_mode(model):
        attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
        return attack(x, y).detach()


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None, *,
                    batch_size: int = 250, seed: int = 0) -> float:
    """Top-1 accuracy on attacked inputs (on the clean ones when `attack` is None)."""
    if len(y) == 0:
        raise ValueError("no examples to attack")
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    with eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = attack(model, xb, yb, generator, until_fooled=True) if attack else xb
            with torch.no_grad():
                correct += (model(x_adv).argmax(dim=1) == yb).sum().item()
    return correct / len(y)
