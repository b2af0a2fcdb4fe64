"""DADC, simulated: held-out pool and MNIST accuracy before and after 5 rounds of 10, time per round, and the fooling
rate (the simulated model error rate) per round.

    python -m bench.dadc [--rounds 5] [--every 10] [--per-digit 300] [--tune all upper]

Makes a shifted pool (`trainer.py make-pool`: seven-segment and typeset digits) and runs `trainer.py simulate` on
it as a person would, in a temporary folder, once for each kind of round (`--tune`: today's, training every layer,
and the fast one, training the layers above a fixed trunk), on the same pool. Prints one JSON line. Target: the
held-out pool accuracy rises by at least 20 points while MNIST accuracy drops by at most 0.5 point.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def trainer(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "trainer.py"), *args], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds to run")
    parser.add_argument("--every", type=int, default=10, help="fooling examples per round")
    parser.add_argument("--per-digit", type=int, default=300, help="pool images per digit (30%% held out)")
    parser.add_argument("--data", default="auto", help="MNIST source: auto, sample or mnist")
    parser.add_argument("--out", type=Path, default=None, help="keep <tune>/simulation.csv and .png here")
    parser.add_argument("--tune", nargs="+", choices=("all", "upper"), default=["all", "upper"],
                        help="round kinds to run on the same pool, one after the other (ROUND_TUNE)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pool = Path(tmp) / "pool"
        trainer("make-pool", "--out", str(pool), "--per-digit", str(args.per_digit))
        runs = {tune: trainer("simulate", "--pool", str(pool), "--rounds", str(args.rounds), "--every",
                              str(args.every), "--data", args.data, "--tune", tune,
                              "--out", str((args.out or Path(tmp) / "out") / tune))
                for tune in args.tune}
    first = next(iter(runs.values()))
    summaries = {tune: _summary(run) for tune, run in runs.items()}
    print(json.dumps({"bench": "dadc", "pool_images": first["pool_images"], "mnist": first["mnist"],
                      "rounds": args.rounds, "every": args.every, **summaries}))


def _summary(run: dict) -> dict:
    rounds = run["rounds"]
    first, last = rounds[0], rounds[-1]
    played = rounds[1:]
    return {
        "pool_ran_out": run["pool_ran_out"],
        "pool_accuracy": {"before": first["pool_accuracy"], "after": last["pool_accuracy"],
                          "gain_points": round(100 * (last["pool_accuracy"] - first["pool_accuracy"]), 1)},
        "mnist_accuracy": {"before": first["mnist_accuracy"], "after": last["mnist_accuracy"],
                           "change_points": round(100 * (last["mnist_accuracy"] - first["mnist_accuracy"]), 2)},
        "round_seconds": [r["round_seconds"] for r in played],
        "fooling_rate": [r["fooling_rate"] for r in played],
        "statuses": [r["status"] for r in played],
        "total_seconds": run["seconds"],
    }


if __name__ == "__main__":
    main()
