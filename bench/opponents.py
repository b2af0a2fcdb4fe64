"""What a choice of models to fool costs the quick guess, one drawing at a time.

    python -m bench.opponents [--repeats 300]

The server's part of a stroke's guess (`POST /outwit/guess`): the strokes drawn into ink, preprocessed once, read
by the serving model (the shipped base CNN, int8 as it serves) and by each chosen reference (float), as
`Collector.judge` does for the page. Per choice: p50/p99 in ms, side by side in one run. Prints one JSON line.
Target: fooling all five models costs a stroke's guess at most 15 ms p50 on one core (the serving model alone is
about 2 ms), so "Fool them all" does not slow the page.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from outwit.dadc.collect import Collector
from outwit.dadc.opponents import SERVING
from outwit.ml import strokes
from outwit.ml.checkpoints import load as load_checkpoint
from outwit.ml.references import MODELS, References
from outwit.ml.serving import Predictor
from outwit.sim.drawings import stroke_points
from outwit.ui.sketchpad import BRUSH_RADIUS, CANVAS

CHOICES = {"serving": (SERVING,), "serving+seed": (SERVING, "seed"), "serving+base": (SERVING, "base"),
           "serving+robust": (SERVING, "robust"), "serving+vit": (SERVING, "vit"),
           "all five": (SERVING, "seed", "base", "robust", "vit")}
TARGET_P50_MS = 15.0


def payload(digit: int) -> str:
    points = [[[x, y, 10.0 * i] for i, (x, y) in enumerate(stroke)] for stroke in stroke_points(digit, CANVAS)]
    return json.dumps({"width": CANVAS, "height": CANVAS, "strokes": points})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (one request, one core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base, _ = load_checkpoint(MODELS / "base.safetensors")
    predictor = Predictor(base, calibration=torch.rand(64, 1, 28, 28))
    predictor.wait_settled(120)
    collector = Collector(store=None, worker=None, predictor=predictor, references=References())
    sent = [payload(d) for d in range(10)]
    result = {"bench": "opponents", "threads": args.threads, "repeats": args.repeats, "serving_copy": predictor.serving}
    for name, keys in CHOICES.items():
        def guess(text, keys=keys):
            return collector.judge(strokes.ink(text, CANVAS, BRUSH_RADIUS), keys)

        for text in sent:
            guess(text)  # warm-up, and each reference loaded
        times = []
        for i in range(args.repeats):
            start = time.perf_counter()
            guess(sent[i % len(sent)])
            times.append((time.perf_counter() - start) * 1000)
        result[name] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                        "p99_ms": round(float(np.percentile(times, 99)), 2)}
    result["target_p50_ms"] = TARGET_P50_MS
    result["meets_target"] = result["all five"]["p50_ms"] <= TARGET_P50_MS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
