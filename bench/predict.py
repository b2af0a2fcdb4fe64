"""Latency of preprocess + predict, one image at a time, as a person drawing triggers it.

    python -m bench.predict [--checkpoint models/base.safetensors] [--repeats 300]

Measures the serving model as the app builds it (its int8 copy, serving.py) and, side by side in the same run, its
float32 copy. Prints one JSON line: for each, p50/p99 in ms for an 800×800 and a 280×280 Sketchpad value and each
one's split into preprocess and the model, and how often the int8 copy's top digit is the float model's on the
sample's test split. Targets (p50, as the app serves): 1 ms for the page's 280×280 canvas, 2 ms for 800×800.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from outwit.ml import data
from outwit.ml.checkpoints import load as load_checkpoint
from outwit.ml.preprocess import preprocess
from outwit.ml.serving import Predictor
from outwit.services import calibration_images
from outwit.sim.drawings import draw_sketch


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
    parser.add_argument("--checkpoint", type=Path, default=Path("models/base.safetensors"))
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (one request, one core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.checkpoint)
    calibration = calibration_images(data.load_sample("train"))
    result = {"bench": "predict", "checkpoint": args.checkpoint.name, "arch": meta.arch, "threads": args.threads}
    predictors = {precision: Predictor(model, calibration=calibration, precision=precision)
                  for precision in ("int8", "float32")}
    for precision, predictor in predictors.items():
        predictor.wait_settled()
        figures = result[precision] = {"serving": predictor.serving}
        for canvas, brush in ((800, 50), (280, 18)):
            drawings = [draw_sketch(d, canvas=canvas, brush=brush) for d in range(10)]
            inputs = [preprocess(d) for d in drawings]
            figures[f"sketchpad_{canvas}"] = {
                **measure(predictor.predict, drawings, args.repeats),
                "preprocess_p50_ms": measure(preprocess, drawings, args.repeats)["p50_ms"],
                "model_p50_ms": measure(predictor.predict_tensor, inputs, args.repeats)["p50_ms"]}
    images, labels = data.load_sample("test").tensors()
    top = {precision: predictor.predict_tensor(images).argmax(1) for precision, predictor in predictors.items()}
    result["int8_top_digit_as_float32"] = round(float(np.mean(top["int8"] == top["float32"])), 4)
    result["test_accuracy"] = {precision: round(float(np.mean(t == labels.numpy())), 4) for precision, t in top.items()}
    result["test_split"] = data.load_sample("test").name
    result["ratio_p50_280"] = round(result["float32"]["sketchpad_280"]["p50_ms"]
                                    / result["int8"]["sketchpad_280"]["p50_ms"], 2)
    targets = {"sketchpad_800": 2.0, "sketchpad_280": 1.0}
    result["target_p50_ms"] = targets
    result["meets_target"] = all(result["int8"][k]["p50_ms"] <= target for k, target in targets.items())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
