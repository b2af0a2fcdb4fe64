"""Pretraining wall time and the accuracy it reaches, for the three architectures, with the trainer's defaults.

    python -m bench.train [--epochs N]

Prints one JSON line. Runs `trainer.py pretrain` as a person would, writing to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pretrain(arch: str, out: Path, extra: list[str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "trainer.py"), "pretrain", "--arch", arch, "--quiet",
                           "--out", str(out), *extra], cwd=ROOT, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_seconds": round(time.perf_counter() - started, 1), "train_seconds": result["train_seconds"],
            "steps": result["steps"], "dataset": result["dataset"], "top1": result["top1"], "top5": result["top5"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=float, default=None, help="override the trainer's default epochs")
    args = parser.parse_args()
    extra = [] if args.epochs is None else ["--epochs", str(args.epochs)]
    with tempfile.TemporaryDirectory() as tmp:
        result = {"bench": "train", **{arch: pretrain(arch, Path(tmp) / f"{arch}.safetensors", extra)
                                       for arch in ("cnn", "seed", "vit")}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
