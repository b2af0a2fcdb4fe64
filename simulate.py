"""DADC without people: simulated visitors draw digits from a pool, and what the serving model gets wrong is flagged
through the same services the app starts (store, retrain worker, reviews); a held-out part of the pool, never
drawn, measures progress round by round.

`python trainer.py simulate --pool DIR --rounds K --every N` writes `simulation.csv` and `simulation.png`.
`python trainer.py make-pool --out DIR` writes a shifted pool (`pool.py`) to try it on.
"""
from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import data
import pool
import trainer
from config import TUNES, Config
from metrics import MNIST, Accuracy
from preprocess import preprocess
from services import Services, start_services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatedRound:
    round: int  # 0: the base model, before anyone drew
    status: str  # base, promoted, rejected or failed
    attempts: int  # drawings judged by the model this round replaced
    fooled: int  # of them, the ones that fooled it (flagged)
    fooling_rate: float | None  # the simulated model error rate
    pool_accuracy: float  # the serving model after the round, on the held-out part of the pool
    mnist_accuracy: float
    round_seconds: float  # the round's training and evaluation, in the worker


def split_pool(items: list[tuple[Path, int]], held_out: float, seed: int) -> tuple[list, list]:
    """Stratified by digit and seeded: (to draw, in a random order; held out)."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out={held_out!r} must be between 0 and 1")
    rng = np.random.default_rng(seed)
    drawn, kept = [], []
    for digit in range(10):
        mine = [item for item in items if item[1] == digit]
        rng.shuffle(mine)
        cut = round(len(mine) * held_out)
        kept += mine[:cut]
        drawn += mine[cut:]
    order = rng.permutation(len(drawn))
    return [drawn[i] for i in order], kept


def _image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return trainer.evaluate(model, x, y, name="")["top1"]


def simulate(services: Services, pool_items: list[tuple[Path, int]], *, rounds: int, users: int = 5,
             held_out: float = 0.3, seed: int = 0, timeout: float = 600) -> list[SimulatedRound]:
    """Run `rounds` rounds of DADC on running `services`; returns one row per round, round 0 first."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1")
    to_draw, kept = split_pool(pool_items, held_out, seed)
    pool_x = torch.stack([preprocess(_image(path)) for path, _ in kept])
    pool_y = torch.tensor([digit for _, digit in kept])
    worker, predictor, flagger = services.worker, services.predictor, services.flagger
    if not worker.wait_idle(timeout):
        raise RuntimeError(f"the worker did not measure the base model within {timeout:g} s")

    def row(number: int, status: str, attempts: int, fooled: int, seconds: float) -> SimulatedRound:
        """The serving model's figures: on the pool, measured here; on MNIST, as the worker measured it."""
        return SimulatedRound(number, status, attempts, fooled, round(fooled / attempts, 4) if attempts else None,
                              _accuracy(predictor.current[0], pool_x, pool_y), _serving_mnist(services).top1, seconds)

    results = [row(0, "base", 0, 0, 0.0)]
    drawings = iter(enumerate(to_draw))
    for _ in range(rounds):
        attempts = fooled = 0
        while worker.until_next_round() > 0:
            index, (path, digit) = next(drawings, (None, (None, None)))
            if path is None:  # every drawing was used: a bigger pool (make-pool --per-digit) runs further
                log.warning("the pool ran out after %d rounds", len(results) - 1)
                return results
            image = _image(path)
            probs = predictor.predict(image)
            guess = int(probs.argmax())
            attempts += 1
            if guess == digit:
                worker.record_attempt(fooled=False)
                continue
            fooled += 1
            user = index % users
            flagger.flag_example([image, digit, guess, float(probs[guess]), predictor.current[1].get("round", 0),
                                  f"simulated-session-{user}"], username=f"simulated visitor {user + 1}")
            worker.record_attempt(fooled=True)
            worker.notify()  # as the app does: a flag wakes the worker
        if not worker.wait_idle(timeout):
            raise RuntimeError(f"round {worker.history.next_round()} did not finish within {timeout:g} s")
        record = worker.history.records[-1]
        results.append(row(record.round, record.status, attempts, fooled, record.seconds))
        log.info("round %d %s: %s", record.round, record.status, results[-1])
    return results


def _serving_mnist(services: Services) -> Accuracy:
    """The serving model's MNIST accuracy, as the retrain worker measured it (base model, or promoted round)."""
    return services.worker.history.serving().metrics.get(MNIST)


def write_csv(results: list[SimulatedRound], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    return path


def write_plot(results: list[SimulatedRound], path: Path, pool_name: str, mnist_name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r.round for r in results]
    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    axis.plot(rounds, [r.pool_accuracy for r in results], marker="o", label=f"held-out pool ({pool_name})")
    axis.plot(rounds, [r.mnist_accuracy for r in results], marker="s", label=f"MNIST ({mnist_name})")
    axis.set(xlabel="round", ylabel="accuracy", ylim=(0, 1.02), xticks=rounds, title="Simulated DADC")
    axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def add_arguments(commands) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    s = commands.add_parser("simulate", help="run DADC with simulated visitors drawing from a pool of images",
                            formatter_class=fmt)
    s.add_argument("--pool", type=Path, required=True, help="imagefolder pool: DIR/<digit>/*.png")
    s.add_argument("--rounds", type=int, default=5, help="rounds to run")
    s.add_argument("--every", type=int, default=10, help="fooling examples per round (RETRAIN_EVERY)")
    s.add_argument("--steps", type=int, default=80, help="fine-tuning steps per round (ROUND_STEPS)")
    s.add_argument("--tune", choices=TUNES, default="upper", help="what a round trains (ROUND_TUNE)")
    s.add_argument("--held-out", type=float, default=0.3, help="share of the pool never drawn, to measure on")
    s.add_argument("--users", type=int, default=5, help="simulated visitors taking turns")
    s.add_argument("--seed", type=int, default=0, help="how the pool is split and ordered")
    s.add_argument("--model", type=Path, default=Path("models/base.safetensors"), help="the starting model")
    s.add_argument("--data", choices=data.SOURCES, default="auto", help="MNIST source for replay and evaluation")
    s.add_argument("--work", type=Path, default=None, help="data folder for the store and rounds (default: a "
                                                            "temporary one, removed after)")
    s.add_argument("--out", type=Path, default=Path("simulation"), help="folder for simulation.csv and .png")
    m = commands.add_parser("make-pool", help="write a shifted pool of digits unlike MNIST (fonts, seven-segment "
                                              "strokes)", formatter_class=fmt)
    m.add_argument("--out", type=Path, required=True, help="folder to write DIR/<digit>/*.png to")
    m.add_argument("--per-digit", type=int, default=150, help="images per digit")
    m.add_argument("--seed", type=int, default=0, help="random seed")


def make_pool_command(args: argparse.Namespace) -> dict:
    root = pool.make_pool(args.out, per_digit=args.per_digit, seed=args.seed)
    return {"pool": str(root), "images": len(pool.load_pool(root))}


def simulate_command(args: argparse.Namespace) -> dict:
    items = pool.load_pool(args.pool)
    for name, value, low in (("--rounds", args.rounds, 1), ("--every", args.every, 1), ("--users", args.users, 1)):
        if value < low:
            raise ValueError(f"{name}={value} must be at least {low}")
    with tempfile.TemporaryDirectory(prefix="outwit-simulate-") as scratch:
        work = args.work or Path(scratch)
        config = Config(model_path=args.model, data_dir=work, mnist_data=args.data, retrain_every=args.every,
                        round_steps=args.steps, round_tune=args.tune, robust_eps=0.0, replica="simulation")
        services = start_services(config)
        try:
            started = time.perf_counter()
            results = simulate(services, items, rounds=args.rounds, users=args.users, held_out=args.held_out,
                               seed=args.seed)
            seconds = time.perf_counter() - started
            mnist_name = _serving_mnist(services).dataset
        finally:
            services.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(results, args.out / "simulation.csv")
    png_path = write_plot(results, args.out / "simulation.png", args.pool.name, mnist_name)
    return {"rounds": [asdict(r) for r in results], "pool_ran_out": len(results) - 1 < args.rounds,
            "seconds": round(seconds, 1), "csv": str(csv_path),
            "plot": str(png_path), "pool": str(args.pool), "pool_images": len(items), "mnist": mnist_name}
