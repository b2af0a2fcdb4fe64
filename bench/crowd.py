"""A crowd on one process: one real visitor's traffic recorded from Chromium, replayed for N visitors at once.

    python -m bench.crowd [--visitors 25 50 100 200] [--seconds 30] [--baseline DIR] [--arrive-over SECONDS]

Starts `python app.py` on a free port (a temporary data folder, the embedded MNIST sample), opens the page in
Debian's Chromium and records everything it sends while a visitor draws 8 digits in about 80 s, stroke by
stroke, looks at each guess for 4 s while the panel's timer ticks, clears 6 and saves 2 (outwit/sim/traffic.py).
Then replays that traffic for each N in turn from this one asyncio process (outwit/sim/replay.py), a client per
visitor (six connections, as Chromium), visitors arriving at random times over one visit (~80 s: a steady crowd,
each visitor somewhere in their visit; `--arrive-over 20`, as this bench did before: a flash crowd, every first
save within 20 s) and going round the recording, and measures over the next `--seconds`:
- per kind of request, p50/p99 in ms at the server: `guess` is pen-up → guess (the request the page sends when
  the pen lifts), `refresh` the panel's 5-s update (to its result), `save` a save (to its result);
- errors (a save refused because a round changed the model's mind is counted apart), requests per visitor-minute;
- the app's CPU (from /proc) per visitor-minute: the web process, and apart its round process; and this process's
  own CPU and how late its event loop wakes: when its CPU nears one core, the figures are the generator's limits,
  not the app's, and a late wake is in every latency measured meanwhile.
Afterwards the app is stopped as a Space is (SIGTERM) and its data folder read back: every acknowledged save must be
there once. `--baseline DIR` runs the same on another checkout first (`git worktree add DIR <commit>`), for a side
by side in one run (run as its requirements install it: without uvloop and httptools if it does not list them).
Prints one JSON line per app and N as it goes, and a final JSON line with all of them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from outwit.sim.app_process import REPO, AppProcess
from outwit.sim.replay import Tally, Visitor
from outwit.sim.traffic import counts, record
from outwit.storage import read_jsonl

DIGITS = [3, 7, 1, 8, 2, 5, 0, 9]
SAVES = {2, 6}
# Chromium's HTTP/1.1 connections to a host, and how long it keeps a used one idle (5 minutes)
BROWSER = httpx.Limits(max_connections=6, max_keepalive_connections=6, keepalive_expiry=300)
KINDS = ("guess", "editor guess", "refresh", "save", "upload", "accept_blobs", "panel check", "clear", "other")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(samples: list[tuple[float, float]], since: float, until: float) -> dict:
    ms = [took for at, took in samples if since <= at <= until]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def rounds_cpu(app: AppProcess) -> dict[int, float]:
    """CPU seconds of each of the app's child processes (the round process; none in an app that trains in-process)."""
    found = {}
    for pid in app.children():
        try:
            found[pid] = cpu_seconds(pid)
        except FileNotFoundError:  # ended meanwhile
            pass
    return found


def visit_seconds(recording) -> float:
    """How long a visitor's loop of the recording takes (as `Visitor.run` goes round it)."""
    return max(entry.done or entry.start for entry in recording) + 1.0


async def crowd(url: str, recording, visitors: int, seconds: float, app: AppProcess, tally: Tally,
                arrive_over: float) -> dict:
    pid = app.process.pid

    async def arrive(n: int) -> None:
        await asyncio.sleep(random.Random(n).uniform(0, arrive_over))
        # a client per visitor, as each browser has its own connections (six to a host, as Chromium): one
        # shared pool of ~1,000 connections spent 3/4 of this process's time in httpcore's assigning requests
        # to connections, which is quadratic, and held the requests of 200 visitors waiting for seconds
        async with httpx.AsyncClient(base_url=url.rstrip("/"), limits=BROWSER) as client:
            await Visitor(client, recording, tally, seed=n).run()

    lags: list[tuple[float, float]] = []  # this process's own event loop: how late a 10-ms sleep wakes

    async def watch_loop() -> None:
        while True:
            asleep = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((asleep, 1000 * (time.perf_counter() - asleep - 0.01)))

    tasks = [asyncio.create_task(arrive(n)) for n in range(visitors)] + [asyncio.create_task(watch_loop())]
    await asyncio.sleep(arrive_over + 2)
    sent_before, errors_before, retried_before = Counter(tally.sent), Counter(tally.errors), Counter(tally.retried)
    since, app_cpu, own_cpu, children = time.perf_counter(), cpu_seconds(pid), time.process_time(), rounds_cpu(app)
    await asyncio.sleep(seconds)
    until = time.perf_counter()
    app_cpu, own_cpu = cpu_seconds(pid) - app_cpu, time.process_time() - own_cpu
    child_cpu = sum(cpu - children.get(child, 0.0) for child, cpu in rounds_cpu(app).items())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    minutes = visitors * (until - since) / 60
    return {
        "visitors": visitors, "seconds": round(until - since, 1), "arrived_over_seconds": round(arrive_over, 1),
        "latency": {kind: percentiles(tally.latencies[kind], since, until) for kind in KINDS
                    if tally.latencies.get(kind)},
        "errors": dict(tally.errors - errors_before),
        "retried_gets": dict(tally.retried - retried_before),  # as a browser does when a kept-alive connection closed
        "requests_per_visitor_minute": round(sum((tally.sent - sent_before).values()) / minutes, 1),
        "app_cpu_ms_per_visitor_minute": round(1000 * app_cpu / minutes, 1),  # the web process (rounds included
        "app_cpu_cores": round(app_cpu / (until - since), 2),  # when they train in it, as before the round process)
        "rounds_cpu_ms_per_visitor_minute": round(1000 * child_cpu / minutes, 1),  # the round process
        "rounds_cpu_cores": round(child_cpu / (until - since), 2),
        "generator_cpu_cores": round(own_cpu / (until - since), 2),
        # when this process's loop wakes late, every latency measured meanwhile includes it
        "generator_loop_late_ms": {**percentiles(lags, since, until), "max_ms": round(max(
            (late for at, late in lags if since <= at <= until), default=0.0), 1)},
    }


def as_installed(repo: Path, folder: Path) -> dict:
    """The environment that runs `repo`'s app as its own requirements install it: uvloop and httptools (which
    uvicorn uses when it can import them) hidden when it does not list them."""
    if "uvloop" in (repo / "requirements.txt").read_text():
        return {}
    for module in ("uvloop", "httptools"):
        (folder / f"{module}.py").write_text(f"raise ImportError({module + ': not in the requirements'!r})\n")
    return {"PYTHONPATH": str(folder)}


def run(repo: Path, name: str, visitor_counts: list[int], seconds: float, arrive_over: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "hidden").mkdir()
        app = AppProcess(tmp / "data", tmp / "app.log", repo=repo, RETRAIN_EVERY=50, FLAGS_PER_SESSION=0,
                         GATE_MARGIN=100, REPLICA_ID="crowd", **as_installed(repo, tmp / "hidden")).start()
        try:
            recording = record(app.url, DIGITS, SAVES)
            per_minute = 60 / max(entry.start for entry in recording)
            result = {"app": name, "recorded_per_visitor_minute": {k: round(v * per_minute, 1)
                                                                   for k, v in sorted(counts(recording).items())},
                      "crowds": []}
            print(json.dumps({"app": name, "recorded": result["recorded_per_visitor_minute"]}), flush=True)
            tally = Tally()
            for visitors in visitor_counts:
                figures = asyncio.run(crowd(app.url, recording, visitors, seconds, app, tally,
                                            arrive_over or visit_seconds(recording)))
                result["crowds"].append(figures)
                print(json.dumps({"app": name, **figures}), flush=True)
                time.sleep(3)
        finally:
            exit_code = app.stop()
        ids = Counter(row["id"] for path in (tmp / "data" / "adversarial").glob("*/*/metadata.jsonl")
                      for row in read_jsonl(path))
        rounds = [row for path in (tmp / "data" / "rounds").glob("*/rounds.jsonl") for row in read_jsonl(path)]
    result.update(exit_code=exit_code, saves_acknowledged=len(tally.acknowledged),
                  saves_refused_after_a_round=tally.refused,
                  acknowledged_on_disk_once=sum(1 for i in tally.acknowledged if ids[i] == 1),
                  rounds_run=sum(1 for r in rounds if r["status"] in ("promoted", "rejected")))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, nargs="+", default=[25, 50, 100, 200],
                        help="crowd sizes, in turn (default 25 50 100 200)")
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds per crowd (default 30)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure first, side by side")
    parser.add_argument("--arrive-over", type=float, help="seconds over which the visitors arrive (default: one "
                        "visit, ~80 s: a steady crowd, each visitor somewhere in their visit; 20: a flash crowd, "
                        "everyone's first save within the same 20 s)")
    args = parser.parse_args()
    results = []
    if args.baseline:
        results.append(run(args.baseline.resolve(), f"baseline ({args.baseline.name})", args.visitors, args.seconds,
                           args.arrive_over))
    results.append(run(REPO, "this checkout", args.visitors, args.seconds, args.arrive_over))
    print(json.dumps({"crowd": results}), flush=True)


if __name__ == "__main__":
    main()
