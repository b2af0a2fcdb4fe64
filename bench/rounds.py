"""Retrain rounds and flag latency, through the real app over HTTP (gradio_client), as visitors would use it.

    python bench/rounds.py [--rounds 3] [--flags 40]

Prints one JSON line:
- `round`: wall time of a round with RETRAIN_EVERY=10 and MNIST replay (target: at most 10 s), its accuracies;
- `flag`: latency of /flag requests (target: p99 at most 200 ms for a flag that starts a round), measured with
  RETRAIN_EVERY=2 so that every other flag starts a round and the rest land while one is training;
- `predict_during_rounds`: latency of /predict requests while rounds train.
Latencies are of the HTTP request to the endpoint (`POST /gradio_api/run/<name>`, drawing files uploaded
beforehand, as the page does while a person draws); gradio_client's own protocol adds about 70 ms on top.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gradio_client import Client  # noqa: E402
from PIL import Image  # noqa: E402

import app  # noqa: E402
from services import start_services  # noqa: E402
from config import Config  # noqa: E402
from drawings import client_payload, draw_sketch, fooling_examples  # noqa: E402


def serve(data_dir: Path, every: int):
    config = Config(data_dir=data_dir, retrain_every=every, mnist_data="sample")
    services = start_services(config)
    demo = app.build_demo(config, services)
    _, url, _ = app.launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True)
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
            _, elapsed = call(http, base, "flag", drawing, (int(label["label"]) + 1) % 10)  # a wrong guess: saved
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 10 fooling flags to time")
    parser.add_argument("--flags", type=int, default=40, help="flags to time for latency")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as app.py sets them")
    args = parser.parse_args()
    torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"bench": "rounds", "round": bench_rounds(Path(tmp), args.rounds),
                  "flag": bench_flags(Path(tmp), args.flags)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
