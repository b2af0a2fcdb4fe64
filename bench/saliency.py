"""What "What does the model see?" costs, beside the guess it explains, one drawing at a time.

    python -m bench.saliency [--repeats 200] [--steps 32]

Per shipped model (the base CNN, the robust CNN, the ViT): p50/p99 in ms of the explanation (preprocess, Captum's
Integrated Gradients with `--steps` points as one batch, the picture) and, side by side in the same run, of the
guess (preprocess and the float model), and the attributions' convergence (how far their sum is from the logit's
change: the map's honesty). Prints one JSON line. The explanation runs only when a visitor asks for it (a click),
never on the pen-up path; its target: p50 ≤ 50 ms on one core, so a click answers at once.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from outwit.ml.checkpoints import load as load_checkpoint
from outwit.ml.preprocess import preprocess
from outwit.ml.saliency import explain, heat_picture
from outwit.sim.drawings import draw_sketch

MODELS = ("base", "robust", "vit")
TARGET_P50_MS = 50.0


def timed(call, items: list, repeats: int) -> tuple[dict, list]:
    for item in items[:10]:
        call(item)  # warm-up
    times, results = [], []
    for i in range(repeats):
        start = time.perf_counter()
        results.append(call(items[i % len(items)]))
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2)}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--steps", type=int, default=32, help="points on Integrated Gradients' path")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (one request, one core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    drawings = [draw_sketch(d) for d in range(10)]
    result = {"bench": "saliency", "steps": args.steps, "threads": args.threads, "repeats": args.repeats}
    for name in MODELS:
        model, _ = load_checkpoint(Path("models") / f"{name}.safetensors")
        model.eval()

        def guess(drawing, model=model):
            with torch.inference_mode():
                return model(preprocess(drawing).unsqueeze(0)).argmax()

        def explained(drawing, model=model):
            seen = explain(model, preprocess(drawing), steps=args.steps)
            heat_picture(seen)
            return seen

        guess_times, _ = timed(guess, drawings, args.repeats)
        explain_times, seen = timed(explained, drawings, args.repeats)
        result[name] = {"explain": explain_times, "guess_float32": guess_times,
                        "explain_over_guess_p50": round(explain_times["p50_ms"] / guess_times["p50_ms"], 1),
                        "convergence_max": round(max(s.convergence for s in seen), 4)}
    result["target_p50_ms"] = TARGET_P50_MS
    result["meets_target"] = all(result[name]["explain"]["p50_ms"] <= TARGET_P50_MS for name in MODELS)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
