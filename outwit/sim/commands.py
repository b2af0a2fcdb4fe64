"""The simulation's commands: `trainer.py make-pool` (a shifted pool of digits unlike MNIST) and `trainer.py simulate`
(the DADC loop with simulated visitors drawing from it, through the services the app starts)."""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from outwit.config import DATA_SOURCES, TUNES, Config
from outwit.services import start_services
from outwit.sim import pool
from outwit.sim.simulate import serving_mnist, simulate, write_csv, write_plot


def add_commands(commands) -> None:
    """`simulate` and `make-pool`, added to the trainer's subcommands."""
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
    s.add_argument("--data", choices=DATA_SOURCES, default="auto", help="MNIST source for replay and evaluation")
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
            mnist_name = serving_mnist(services).dataset
        finally:
            services.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(results, args.out / "simulation.csv")
    png_path = write_plot(results, args.out / "simulation.png", args.pool.name, mnist_name)
    return {"rounds": [asdict(r) for r in results], "pool_ran_out": len(results) - 1 < args.rounds,
            "seconds": round(seconds, 1), "csv": str(csv_path),
            "plot": str(png_path), "pool": str(args.pool), "pool_images": len(items), "mnist": mnist_name}
