"""DADC without people: simulated visitors draw digits from a pool, and what the serving model gets wrong is saved
through the services the app starts and the page's own saving path (`outwit.dadc.collect`); a held-out part of the
pool, never drawn, measures progress round by round.

`python trainer.py simulate --pool DIR --rounds K --every N` writes `simulation.csv` and `simulation.png`.
`python trainer.py make-pool --out DIR` writes a shifted pool (`pool.py`) to try it on.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from outwit.dadc.collect import NotFooled
from outwit.ml import training
from outwit.ml.metrics import MNIST, Accuracy
from outwit.ml.preprocess import preprocess
from outwit.services import Services

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
    return training.evaluate(model, x, y, name="")["top1"]


def simulate(services: Services, pool_items: list[tuple[Path, int]], *, rounds: int, users: int = 5,
             held_out: float = 0.3, seed: int = 0, timeout: float = 600) -> list[SimulatedRound]:
    """Run `rounds` rounds of DADC on running `services`; returns one row per round, round 0 first."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1")
    to_draw, kept = split_pool(pool_items, held_out, seed)
    pool_x = torch.stack([preprocess(_image(path)) for path, _ in kept])
    pool_y = torch.tensor([digit for _, digit in kept])
    worker, predictor, collector = services.worker, services.predictor, services.collector
    if not worker.wait_idle(timeout):
        raise RuntimeError(f"the worker did not measure the base model within {timeout:g} s")

    def row(number: int, status: str, attempts: int, fooled: int, seconds: float) -> SimulatedRound:
        """The serving model's figures: on the pool, measured here; on MNIST, as the worker measured it."""
        return SimulatedRound(number, status, attempts, fooled, round(fooled / attempts, 4) if attempts else None,
                              _accuracy(predictor.current.model, pool_x, pool_y), serving_mnist(services).top1, seconds)

    results = [row(0, "base", 0, 0, 0.0)]
    drawings = iter(enumerate(to_draw))
    for _ in range(rounds):
        attempts = fooled = 0
        while worker.until_next_round() > 0:
            index, (path, digit) = next(drawings, (None, (None, None)))
            if path is None:  # every drawing was used: a bigger pool (make-pool --per-digit) runs further
                log.warning("the pool ran out after %d rounds", len(results) - 1)
                return results
            attempts += 1
            user = index % users
            try:
                example = collector.fooling(_image(path), digit, session=f"simulated-session-{user}",
                                            user=f"simulated visitor {user + 1}")
            except NotFooled:
                collector.tried()
                continue
            fooled += 1
            collector.save(example)  # as the page saves
        if not worker.wait_idle(timeout):
            raise RuntimeError(f"round {worker.history.next_round()} did not finish within {timeout:g} s")
        record = worker.history.records[-1]
        results.append(row(record.round, record.status, attempts, fooled, record.seconds))
        log.info("round %d %s: %s", record.round, record.status, results[-1])
    return results


def serving_mnist(services: Services) -> Accuracy:
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
