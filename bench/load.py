"""Load: concurrent visitors on loopback, predicting and flagging while rounds retrain, for a bounded time.

    python -m bench.load [--users 16] [--seconds 60] [--every 20]

Starts `python app.py` as its own process on a free port (a temporary data folder, the embedded MNIST sample),
then runs `--users` gradio_client visitors in threads: each draws (a /predict per stroke's end), and one drawing in
three is flagged with a digit the model did not guess, so a flag is accepted (unless a round landed between its
/predict and its /flag and reads the drawing as that digit: refused, rightly, and counted apart from errors as
`refused_after_a_round`) and a round starts every `--every` flags; each visitor also reads /status as an open page
would. Beside them a probe calls /predict over plain HTTP ten times a second: the server's own latency, without the
client's. Afterwards the app is stopped as a Space is (SIGTERM) and the disk is read back: every flag acknowledged
to a client must be there exactly once.

Prints one JSON line: per endpoint the calls, errors, throughput and p50/p99 latency; flags acknowledged and found;
rounds run during the load.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
from gradio_client import Client

from outwit.sim.app_process import AppProcess
from outwit.sim.drawings import client_payload, draw_sketch

TIMEOUT = 60  # seconds a visitor waits for one answer before counting it as an error


def drawings(folder: Path, n: int = 30) -> list[dict]:
    rng = random.Random(0)
    return [client_payload(draw_sketch(i % 10, offset=(rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1))),
                           folder / str(i)) for i in range(n)]


def visitor(url: str, bank: list[dict], deadline: float, seed: int, timings: dict, errors: Counter,
            acked: list, lock: threading.Lock) -> None:
    rng, client = random.Random(seed), Client(url, verbose=False)

    def timed(endpoint: str, *args):
        started = time.perf_counter()
        try:
            result = client.submit(*args, api_name=endpoint).result(timeout=TIMEOUT)
        except Exception as err:  # noqa: BLE001 - counted per endpoint and reported (a timeout too)
            changed = endpoint == "/flag" and "The model already reads this as" in str(err)
            key = "refused after a round" if changed else f"{endpoint}: {type(err).__name__}: {str(err)[:80]}"
            with lock:
                errors[key] += 1
            return None
        with lock:
            timings[endpoint].append(1000 * (time.perf_counter() - started))
        return result

    while time.monotonic() < deadline:
        payload = rng.choice(bank)
        guess = timed("/predict", payload)
        if rng.random() < 1 / 3 and guess and guess.get("label") is not None:
            flagged = timed("/flag", payload, (int(guess["label"]) + 1) % 10, "", False)
            if flagged:
                with lock:
                    acked.append(flagged[1])
        if rng.random() < 0.2:
            timed("/status")


def probe(url: str, payload: dict, deadline: float, timings: dict, lock: threading.Lock) -> None:
    """The server's own latency under the load, without gradio_client's polling (it waits in 50 ms sleeps for
    each event): the drawing uploaded once, then /predict over plain HTTP, ten times a second."""
    with httpx.Client(timeout=60) as http:
        files = [("files", (f"{i}.png", Path(ref["path"]).read_bytes(), "image/png"))
                 for i, ref in enumerate([payload["background"], payload["layers"][0], payload["composite"]])]
        paths = http.post(url + "gradio_api/upload", files=files).raise_for_status().json()
        refs = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in paths]
        body = {"data": [{"background": refs[0], "layers": [refs[1]], "composite": refs[2]}, False]}
        while time.monotonic() < deadline:
            started = time.perf_counter()
            http.post(url + "gradio_api/run/predict", json=body).raise_for_status()
            with lock:
                timings["/predict over plain HTTP (probe)"].append(1000 * (time.perf_counter() - started))
            time.sleep(0.1)


def measured(url: str, timeout: float = 300) -> None:
    """Wait for the start-up measurement of the serving model (MNIST, under PGD): it takes a core for a while."""
    client, deadline = Client(url, verbose=False), time.monotonic() + timeout
    while client.predict(api_name="/status")["mnist"] is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the serving model was not measured in time")
        time.sleep(0.5)


def on_disk(data_dir: Path) -> Counter:
    ids = Counter()
    for metadata in (data_dir / "adversarial").glob("*/*/metadata.jsonl"):
        ids.update(json.loads(line)["id"] for line in metadata.read_text(encoding="utf-8").splitlines())
    return ids


def summary(ms: list[float], seconds: float) -> dict:
    return {"calls": len(ms), "per_second": round(len(ms) / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if ms else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=16, help="concurrent visitors (default 16)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they keep at it (default 60)")
    parser.add_argument("--every", type=int, default=20, help="flags per round (default 20)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app = AppProcess(tmp / "data", tmp / "app.log", RETRAIN_EVERY=args.every, FLAGS_PER_SESSION=0,
                         GATE_MARGIN=100, REPLICA_ID="load").start()
        try:
            bank = drawings(tmp / "drawings")
            measured(app.url)  # as a visitor after the first minute finds it: the base model measured
            timings, errors, acked, lock = defaultdict(list), Counter(), [], threading.Lock()
            started = time.monotonic()
            threads = [threading.Thread(target=visitor, args=(app.url, bank, started + args.seconds, seed, timings,
                                                              errors, acked, lock)) for seed in range(args.users)]
            threads.append(threading.Thread(target=probe, args=(app.url, bank[0], started + args.seconds, timings,
                                                                lock)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            app.stop()
        ids = on_disk(tmp / "data")
        rounds = [json.loads(line) for path in (tmp / "data" / "rounds").glob("*/rounds.jsonl")
                  for line in path.read_text().splitlines()]
    ran = [r for r in rounds if r["status"] in ("promoted", "rejected")]
    result = {
        "users": args.users, "seconds": round(elapsed, 1),
        "endpoints": {name: summary(ms, elapsed) for name, ms in sorted(timings.items())},
        "refused_after_a_round": errors.pop("refused after a round", 0), "errors": dict(errors),
        "flags_acknowledged": len(acked), "flags_on_disk": sum(ids.values()),
        "acknowledged_found_once": sum(1 for i in acked if ids[i] == 1),
        "nothing_lost": all(ids[i] == 1 for i in acked) and max(ids.values(), default=1) == 1,
        "rounds_run": len(ran), "round_seconds": [r["seconds"] for r in ran],
    }
    print(json.dumps(result), flush=True)
    os._exit(0)  # a client job that timed out may still wait on its stream; do not wait for it at exit


if __name__ == "__main__":
    main()
