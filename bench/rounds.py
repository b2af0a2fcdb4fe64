"""Retrain rounds and flag latency, through the real app over HTTP (gradio_client), as visitors would use it.

    python -m bench.rounds [--rounds 3] [--flags 40]
    python -m bench.rounds --compare [--examples 60] [--repeats 3]

Prints one JSON line:
- `round`: wall time of a round with RETRAIN_EVERY=10 and MNIST replay (target: at most 10 s), its accuracies;
- `flag`: latency of /flag requests (target: p99 at most 200 ms for a flag that starts a round), measured with
  RETRAIN_EVERY=2 so that every other flag starts a round and the rest land while one is training;
- `predict_during_rounds`: latency of /predict requests while rounds train.
`--compare` prints instead today's round and the fast one side by side on the same data: their times, the ratio
(target: the fast one at least 3× faster and at most 5 s) and both rounds' accuracies.
Latencies are of the HTTP request to the endpoint (`POST /gradio_api/run/<name>`, drawing files uploaded
beforehand, as the page does while a person draws); gradio_client's own protocol adds about 70 ms on top.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from gradio_client import Client
from PIL import Image

from outwit.config import Config
from outwit.dadc.rounds import Recipe, evaluate_sets, run_round
from outwit.dadc.store import AdversarialStore
from outwit.dadc.training_sets import mixed_training_set, standard_eval_sets
from outwit.ml import data
from outwit.ml.checkpoints import load as load_checkpoint
from outwit.ml.metrics import ADVERSARIAL, MNIST, ROBUST
from outwit.ml.serving import Predictor
from outwit.ml.tuning import TrunkCache, warm_up
from outwit.services import robust_attack, start_services
from outwit.sim.drawings import client_payload, draw_sketch, fooling_examples
from outwit.ui.page import build_demo, launch


def serve(data_dir: Path, every: int):
    config = Config(data_dir=data_dir, retrain_every=every, mnist_data="sample")
    services = start_services(config)
    demo = build_demo(config, services)
    _, url, _ = launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True)
    services.worker.wait_idle(60)
    return demo, services, Client(url, verbose=False)


def upload_raw(http: httpx.Client, base: str, value: dict, folder: Path) -> dict:
    """Upload the drawing's PNGs once; the payload then refers to them, as the page's requests do."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"background": value["background"], "layer": value["layers"][0], "composite": value["composite"]}
    for name, image in names.items():
        Image.fromarray(image).save(folder / f"{name}.png")
    files = [("files", (f"{n}.png", open(folder / f"{n}.png", "rb"), "image/png")) for n in names]
    paths = http.post(f"{base}/gradio_api/upload", files=files).raise_for_status().json()
    ref = {name: {"path": path, "meta": {"_type": "gradio.FileData"}} for name, path in zip(names, paths)}
    return {"background": ref["background"], "layers": [ref["layer"]], "composite": ref["composite"]}


def call(http: httpx.Client, base: str, name: str, *inputs) -> tuple[object, float]:
    started = time.perf_counter()
    response = http.post(f"{base}/gradio_api/run/{name}", json={"data": list(inputs)}, timeout=60)
    elapsed = (time.perf_counter() - started) * 1000
    return response.raise_for_status().json()["data"][0], elapsed


def percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(max(ms), 1), "n": len(ms)}


def bench_rounds(tmp: Path, rounds: int) -> dict:
    demo, services, client = serve(tmp / "rounds", every=10)
    try:
        for r in range(rounds):
            examples = fooling_examples(services.predictor.predict, 10, start=r * 7)
            for i, (drawing, digit, _) in enumerate(examples):
                client.predict(client_payload(drawing, tmp / "up" / str(i)), digit, api_name="/flag")
            deadline = time.monotonic() + 120
            while client.predict(api_name="/status")["round"] <= r and time.monotonic() < deadline:
                if services.worker.status().history[-1].status == "rejected":
                    break
                time.sleep(0.2)
        history = [h for h in services.worker.status().history if h.status != "base"]
    finally:
        services.worker.stop()
        demo.close()
    seconds = [h.seconds for h in history]
    return {"every": 10, "rounds": len(history), "seconds": seconds, "max_seconds": max(seconds),
            "statuses": [h.status for h in history], "mnist_top1": [h.mnist.top1 for h in history],
            "adversarial_top1": [h.adversarial.top1 for h in history], "target_seconds": 10.0,
            "meets_target": max(seconds) <= 10.0}


def bench_flags(tmp: Path, flags: int) -> dict:
    demo, services, client = serve(tmp / "flags", every=2)
    base, http = client.src.rstrip("/"), httpx.Client()
    drawings = [upload_raw(http, base, draw_sketch(d % 10, offset=(0.01 * (d % 7), 0)), tmp / "up" / str(d))
                for d in range(flags)]
    starting, during, predicts, stop = [], [], [], threading.Event()

    def predict_loop():
        with httpx.Client() as prober_http:
            probe = upload_raw(prober_http, base, draw_sketch(4), tmp / "probe")
            while not stop.is_set():
                _, elapsed = call(prober_http, base, "predict", probe, False)
                if services.worker.status().training:
                    predicts.append(elapsed)
                time.sleep(0.05)

    prober = threading.Thread(target=predict_loop, daemon=True)
    prober.start()
    try:
        for i, drawing in enumerate(drawings):
            label, _ = call(http, base, "predict", drawing, False)
            services.worker.wait_idle(60) if i % 2 else None  # so that this flag starts a round from idle
            training = services.worker.status().training
            wrong = (int(label["label"]) + 1) % 10  # a wrong guess: saved
            _, elapsed = call(http, base, "flag", drawing, wrong, "", False, None)  # no name, no sandbox, the state
            (starting if (i + 1) % 2 == 0 and not training else during).append(elapsed)
            time.sleep(0.3)  # people take a moment between flags; the next lands while the round trains
    finally:
        stop.set()
        prober.join(10)
        http.close()
        services.worker.stop()
        demo.close()
    return {"every": 2, "starting_a_round": percentiles(starting), "while_training": percentiles(during),
            "predict_during_rounds": percentiles(predicts) if predicts else None, "target_p99_ms": 200.0,
            "meets_target": bool(np.percentile(starting, 99) <= 200.0)}


def bench_compare(tmp: Path, examples: int, repeats: int) -> dict:
    """Today's round (every layer, ROUND_STEPS steps) and the fast one (the layers above the fixed trunk, over
    trunk features cached once), side by side on the same data: one store of fooling drawings, one training set,
    one set of evaluation sets, both from the base model, run alternately `repeats` times each (the median time
    counts)."""
    config = Config(data_dir=tmp / "compare", mnist_data="auto")
    model, _ = load_checkpoint(config.model_path)
    store = AdversarialStore(config.store_dir)
    for drawing, digit, probs in fooling_examples(Predictor(model).predict, examples):
        store.add(drawing, label=digit, guess=int(probs.argmax()), confidence=float(probs.max()), model_round=0)
    mnist_train = data.load_digits(config.mnist_data, config.data_dir, "train")
    mnist_test = data.load_digits(config.mnist_data, config.data_dir, "test")
    training_set = mixed_training_set(store, mnist_train)()
    eval_sets = standard_eval_sets(store, mnist_test, robust=robust_attack(config.robust_eps),
                                   robust_size=config.robust_size)()
    baseline = evaluate_sets(model, eval_sets)
    cache = TrunkCache()
    started = time.perf_counter()
    warm_up(cache, model, training_set, eval_sets)
    cache_seconds = time.perf_counter() - started
    recipes = {"today": Recipe(steps=config.round_steps, tune="all"),
               "fast": Recipe(steps=config.round_steps, tune="upper")}
    runs = {name: [] for name in recipes}
    for _ in range(repeats):
        for name, recipe in recipes.items():
            runs[name].append(run_round(model, training_set, eval_sets, recipe, baseline=baseline, cache=cache))
    summary = {name: _summary(results) for name, results in runs.items()}
    ratio = summary["today"]["seconds"] / summary["fast"]["seconds"]
    return {"examples": {"train": store.counts().train, "test": store.counts().test},
            "mnist": mnist_test.name, "base": _accuracies(baseline), **summary,
            "ratio": round(ratio, 2), "trunk_cache_seconds": round(cache_seconds, 2),
            "target": {"ratio": 3.0, "seconds": 5.0},
            "meets_target": ratio >= 3.0 and summary["fast"]["seconds"] <= 5.0}


def _accuracies(metrics) -> dict:
    return {name: metrics.top1(name) for name in (MNIST, ADVERSARIAL, ROBUST) if metrics.get(name)}


def _summary(results: list) -> dict:
    last = results[-1]
    return {"seconds": round(float(np.median([r.seconds for r in results])), 2),
            "all_seconds": [r.seconds for r in results], "steps": last.steps, "promoted": last.promoted,
            **_accuracies(last.metrics)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 10 fooling flags to time")
    parser.add_argument("--flags", type=int, default=40, help="flags to time for latency")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as app.py sets them")
    parser.add_argument("--compare", action="store_true", help="only today's round against the fast one")
    parser.add_argument("--examples", type=int, default=60, help="--compare: fooling drawings (1 in 5 held out)")
    parser.add_argument("--repeats", type=int, default=3, help="--compare: rounds of each kind, alternately")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.compare:
            result = {"bench": "rounds-compare", "threads": args.threads,
                      **bench_compare(Path(tmp), args.examples, args.repeats)}
        else:
            result = {"bench": "rounds", "round": bench_rounds(Path(tmp), args.rounds),
                      "flag": bench_flags(Path(tmp), args.flags)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
