"""Latency of preprocess + predict, one image at a time, as a person drawing triggers it.

    python bench/predict.py [--checkpoint models/base.safetensors] [--repeats 300]

Prints one JSON line: p50/p99 in ms for an 800×800 and a 280×280 Sketchpad value. Target: p50 ≤ 2 ms.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from serving import Predictor  # noqa: E402
from drawings import draw_sketch  # noqa: E402
from checkpoints import load as load_checkpoint  # noqa: E402


def measure(predictor: Predictor, drawings: list[dict], repeats: int) -> dict:
    for i in range(100):
        predictor.predict(drawings[i % len(drawings)])  # warm-up: caches, CPU clock
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        predictor.predict(drawings[i % len(drawings)])
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "n": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "base.safetensors")
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (one request, one core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.checkpoint)
    predictor = Predictor(model)
    result = {"bench": "predict", "checkpoint": args.checkpoint.name, "arch": meta.arch, "threads": args.threads}
    for canvas, brush in ((800, 50), (280, 18)):
        drawings = [draw_sketch(d, canvas=canvas, brush=brush) for d in range(10)]
        result[f"sketchpad_{canvas}"] = measure(predictor, drawings, args.repeats)
    result["target_p50_ms"] = 2.0
    result["meets_target"] = all(result[k]["p50_ms"] <= 2.0 for k in ("sketchpad_800", "sketchpad_280"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
