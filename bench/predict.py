"""Latency of preprocess + predict, one image at a time, as a person drawing triggers it.

    python bench/predict.py [--checkpoint models/base.safetensors] [--repeats 300]

Prints one JSON line: p50/p99 in ms for an 800×800 and a 280×280 Sketchpad value, and each one's split into
preprocess and the model. Targets (p50): 1 ms for the page's 280×280 canvas, 2 ms for 800×800.
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

from preprocess import preprocess  # noqa: E402
from serving import Predictor  # noqa: E402
from drawings import draw_sketch  # noqa: E402
from checkpoints import load as load_checkpoint  # noqa: E402


def measure(call, drawings: list, repeats: int) -> dict:
    for i in range(100):
        call(drawings[i % len(drawings)])  # warm-up: caches, CPU clock
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(drawings[i % len(drawings)])
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
        inputs = [preprocess(d) for d in drawings]
        result[f"sketchpad_{canvas}"] = {**measure(predictor.predict, drawings, args.repeats),
                                         "preprocess_p50_ms": measure(preprocess, drawings, args.repeats)["p50_ms"],
                                         "model_p50_ms": measure(predictor.predict_tensor, inputs, args.repeats)["p50_ms"]}
    targets = {"sketchpad_800": 2.0, "sketchpad_280": 1.0}
    result["target_p50_ms"] = targets
    result["meets_target"] = all(result[k]["p50_ms"] <= target for k, target in targets.items())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
