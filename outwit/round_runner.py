"""`python trainer.py rounds`: run the rounds outside the Space, on any machine, for replicas that only collect.

The runner is the app without its page: it restores the dataset repo, pulls what the replicas push every
`SYNC_EVERY`, takes the round runner's lease in the model repo (so that two runners started by mistake never both
promote), runs a round every `RETRAIN_EVERY` examples (validated ones, with `VOTES_REQUIRED`), publishes each
promoted round to the model repo (the replicas, with `ROUND_RUNNER=none` or `replica`, swap it in) and pushes its
round history to the dataset repo. Long-lived, it runs until SIGTERM or Ctrl+C and then lets the lease go; with
`--once`, it does one pass (pull, a round if one is due, publish, push) and exits: for a cron job or a Hub webhook.
"""
from __future__ import annotations

import argparse
import signal
import socket
import threading
import uuid
from dataclasses import replace
from pathlib import Path

from outwit.config import Config
from outwit.services import Services, start_services
from outwit.storage import utc_now


def add_command(commands) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    r = commands.add_parser("rounds", formatter_class=fmt,
                            help="run the rounds for replicas that only collect: follow the dataset repo, publish "
                                 "each promoted round to the model repo (HF_TOKEN from the environment)")
    r.add_argument("--dataset-repo", required=True, help="the dataset repo the replicas push to (DATASET_REPO)")
    r.add_argument("--model-repo", required=True, help="where promoted rounds go, and the lease (MODEL_REPO)")
    r.add_argument("--every", type=int, default=None, help="examples per round; unset: RETRAIN_EVERY's")
    r.add_argument("--data-dir", type=Path, default=Path("runner_data"),
                   help="where the runner keeps its copy of the data (restored from the dataset repo at start)")
    r.add_argument("--name", default="", help="the runner's shard name in the dataset; empty: runner-<host>-<id>")
    r.add_argument("--once", action="store_true",
                   help="one pass: pull, run a round if one is due, publish it, push, exit (cron jobs, webhooks)")
    r.add_argument("--timeout", type=float, default=1800, help="--once: seconds the round may take at most")


def rounds_command(args: argparse.Namespace, environ: dict | None = None) -> dict:
    base = Config.from_env(environ)
    if not base.hf_token:
        raise ValueError("HF_TOKEN must be set in the environment: the runner reads and writes both repos")
    name = args.name or f"runner-{socket.gethostname()[:16]}-{uuid.uuid4().hex[:6]}"
    config = replace(base, dataset_repo=args.dataset_repo, model_repo=args.model_repo, data_dir=args.data_dir,
                     retrain_every=args.every or base.retrain_every, replica=name, round_runner="replica",
                     rounds_in="thread")  # no page to keep responsive: rounds compute here, in one process
    started = utc_now()
    services = start_services(config)
    try:
        if args.once:
            return _one_pass(services, args.timeout, started)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        return _summary(services, started)
    finally:
        services.stop()


def _one_pass(services: Services, timeout: float, started: str) -> dict:
    """Pull, take the lease, run a round if one is due and publish it; the stop that follows pushes the rest."""
    services.hub.wait_ready(120)
    if services.hub.sync is not None:
        services.hub.sync.trigger().result(timeout)  # what the replicas pushed since the restore at start
    held = services.follower.lease.refresh()
    if held:
        services.worker.notify()
    services.worker.wait_idle(timeout)
    services.publisher.wait_idle(timeout)
    return {**_summary(services, started), "held_lease": held}


def _summary(services: Services, started: str) -> dict:
    """What this run did (`promoted_here`: the rounds it promoted; the history it carried on from is older)."""
    status = services.status()
    return {"runner": services.store.shard, "round": status.worker.round,
            "promoted_here": [r.round for r in services.worker.history.records
                              if r.status == "promoted" and not r.source and r.started >= started],
            "examples": status.worker.examples.total, "until_next_round": status.worker.until_next_round,
            "published": status.models.last_push if status.models else None}
