"""Many replicas, one round runner: three `python app.py` with ROUND_RUNNER=none and `python trainer.py rounds`, all
through a local server that speaks the Hub's HTTP API (outwit/sim/hub_server.py).

    python -m bench.replicas [--sync-every 0.1] [--rest 60] [--rounds 2] [--load 60] [--rate 1]

Three phases: at rest (nobody saves) the Hub requests each process makes a minute; rounds, each made of
`RETRAIN_EVERY` saves spread over the replicas, the last on replica A: the time from that save to the round
published, and serving on A, B and C; under load (`--rate` saves a second, spread over the three, rounds landing
meanwhile) the Hub requests a minute again. Requests are counted by the user agent that names each process's shard,
as API calls (the Hub's "Hub APIs" bucket) and file downloads (its "Resolvers" bucket), and scaled to the Hub's
5-minute windows. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.sim.app_process import REPO as ROOT
from outwit.sim.app_process import AppProcess
from outwit.sim.drawings import client_payload, draw_sketch
from outwit.sim.hub_server import REPO, TOKEN, FakeHub

MODELS = "outwit/model"
NAMES = ("a", "b", "c")
FREE_USER = {"api": 1_000, "resolve": 5_000}  # the Hub's limits a 5-minute window, a free account (Sept. 2025)
AGENT = re.compile(r"outwit-shard/(?P<shard>[\w-]+)")


def settings(hub: FakeHub, sync_every: float, every: int) -> dict:
    return dict(HF_TOKEN=TOKEN, DATASET_REPO=REPO, MODEL_REPO=MODELS, HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0",
                HF_HUB_DISABLE_XET="1", SYNC_EVERY=sync_every, RETRAIN_EVERY=every, ROBUST_EPS=0,
                MNIST_DATA="sample", GATE_MARGIN=10, FLAGS_PER_SESSION=0)


def per_minute(requests: list, seconds: float) -> dict:
    """Requests a minute by process and bucket."""
    counts: Counter = Counter()
    for agent, _, path in requests:
        found = AGENT.search(agent)
        shard = found["shard"] if found else "other"
        owner = "runner" if shard.startswith("runner") else shard.split("-")[0] if shard != "other" else shard
        counts[(owner, "resolve" if "/resolve/" in path else "api")] += 1
    table: dict = {}
    for (owner, bucket), n in sorted(counts.items()):
        table.setdefault(owner, {})[bucket] = round(n * 60 / seconds, 1)
    return table


class Saver:
    """Saves on the replicas: each drawing labelled as a digit the serving model does not read it as."""

    def __init__(self, apps: list[AppProcess], folder: Path):
        self.clients = {app.url: Client(app.url, verbose=False) for app in apps}
        self.drawings = itertools.cycle([(client_payload(draw_sketch(d), folder / str(d)), d) for d in range(10)])

    def save(self, app: AppProcess) -> float:
        payload, digit = next(self.drawings)
        for label in ((digit + 5) % 10, (digit + 6) % 10):
            try:
                self.clients[app.url].predict(payload, label, "", False, api_name="/flag")
                return time.monotonic()
            except AppError as err:
                if "already reads this as" not in str(err):
                    raise
        raise RuntimeError("neither label was taken")


def serving_round(app: AppProcess) -> int:
    return Client(app.url, verbose=False).predict(api_name="/status")["round"]


def published_round(hub: FakeHub) -> int:
    repo = hub.repos.get(("models", MODELS))
    return json.loads(repo.files["config.json"])["round"] if repo and "config.json" in repo.files else 0


def wait(check, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"not within {seconds} s")


def rounds_phase(hub, apps, saver, rounds: int, every: int) -> list[dict]:
    found = []
    for _ in range(rounds):
        target = published_round(hub) + 1
        for i in range(every - 1):
            saver.save(apps[1 + i % 2])  # B and C take all but the last
        saved = saver.save(apps[0])  # the save that completes the round, on A
        found.append({"round": target, **first_seen(hub, apps, target, saved)})
    return found


def first_seen(hub, apps, target: int, since: float, timeout: float = 600) -> dict:
    """Seconds from `since` until the round `target` was published, and until each replica served it."""
    seen: dict = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(apps) + 1 and time.monotonic() < deadline:
        if "published_s" not in seen and published_round(hub) >= target:
            seen["published_s"] = round(time.monotonic() - since, 1)
        for name, app in zip(NAMES, apps):
            if f"serving_on_{name}_s" not in seen and serving_round(app) >= target:
                seen[f"serving_on_{name}_s"] = round(time.monotonic() - since, 1)
        time.sleep(0.1)
    return seen


def load_phase(apps, saver, seconds: float, rate: float) -> int:
    saves, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        saver.save(apps[saves % len(apps)])
        saves += 1
        time.sleep(max(0.0, start + saves / rate - time.monotonic()))
    return saves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sync-every", type=float, default=0.1, help="SYNC_EVERY, minutes (default 0.1)")
    parser.add_argument("--every", type=int, default=10, help="RETRAIN_EVERY (default 10)")
    parser.add_argument("--rest", type=float, default=60, help="seconds measured at rest (default 60)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds timed (default 2)")
    parser.add_argument("--load", type=float, default=60, help="seconds measured under load (default 60)")
    parser.add_argument("--rate", type=float, default=1.0, help="saves a second under load (default 1)")
    args = parser.parse_args()
    hub = FakeHub().start()
    env = settings(hub, args.sync_every, args.every)
    with tempfile.TemporaryDirectory(prefix="outwit-replicas-") as scratch:
        folder = Path(scratch)
        runner_env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        with open(folder / "runner.log", "ab") as out:
            runner = subprocess.Popen([sys.executable, "trainer.py", "rounds", "--dataset-repo", REPO, "--model-repo",
                                       MODELS, "--data-dir", str(folder / "runner"), "--name", "runner"],
                                      cwd=ROOT, env=runner_env, stdout=out, stderr=subprocess.STDOUT)
        apps = [AppProcess(folder / name, folder / f"{name}.log", REPLICA_ID=name, ROUND_RUNNER="none",
                           ROUNDS_IN="thread", **env) for name in NAMES]
        try:
            for app in apps:
                app.start()
            saver = Saver(apps, folder / "drawings")
            wait(lambda: ("models", MODELS) in hub.repos, 120)
            cpu = os.times()
            hub.requests.clear()
            time.sleep(args.rest)
            at_rest = per_minute(list(hub.requests), args.rest)
            rounds = rounds_phase(hub, apps, saver, args.rounds, args.every)
            hub.requests.clear()
            started = time.monotonic()
            saves = load_phase(apps, saver, args.load, args.rate)
            seconds = time.monotonic() - started
            under_load = per_minute(list(hub.requests), seconds)
            bench_cpu = sum(os.times()[:2]) - sum(cpu[:2])
        finally:
            for app in apps:
                app.stop()
            runner.terminate()
            runner.wait(90)
            hub.stop()
    five = {who: {b: round(n * 5) for b, n in buckets.items()} for who, buckets in under_load.items()}
    print(json.dumps({
        "sync_every_min": args.sync_every, "retrain_every": args.every, "rounds": rounds,
        "hub_requests_per_min_at_rest": at_rest,
        "hub_requests_per_min_under_load": under_load, "load": {"saves": saves, "seconds": round(seconds, 1)},
        "under_load_per_5_min": five, "free_user_limits_per_5_min": FREE_USER,
        "bench_cpu_s": round(bench_cpu, 1)}))


if __name__ == "__main__":
    main()
