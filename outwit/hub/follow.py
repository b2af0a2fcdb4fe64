"""Serve the newest round: a process that does not run rounds (ROUND_RUNNER=none, or a replica that does not hold the
round runner's lease) follows the model repo, and with ROUND_RUNNER=replica takes its turn at the lease.

Every `every` minutes one thread asks the model repo for its head (one API call); when it moved, it reads the
published round's description (`config.json`) and the lease (lease.py), and when that round is newer than the one
serving here, downloads it and hands it to `adopt` (the worker swaps it in, as it does a round of its own).
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Callable

from huggingface_hub import HfApi
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

from outwit.hub.lease import LeaseState, RunnerLease, head_of, read_lease
from outwit.ml import checkpoints

log = logging.getLogger(__name__)

Adopt = Callable[[bytes, checkpoints.CheckpointMeta, LeaseState | None], bool]


class ModelFollower:
    """`serving_created`: the serving model's checkpoint timestamp (None: the model as shipped). `lease`: this
    process's side of the round runner's lease, taken or renewed each tick; `on_lease(held)` is told when that
    changes (the worker then runs rounds, or stops)."""

    def __init__(self, *, api: HfApi, repo_id: str, every: float, adopt: Adopt,
                 serving_created: Callable[[], str | None], lease: RunnerLease | None = None,
                 on_lease: Callable[[bool], None] | None = None):
        self.api, self.repo_id, self.every, self.adopt = api, repo_id, every, adopt
        self.serving_created, self.lease, self.on_lease = serving_created, lease, on_lease
        self._head: str | None = None
        self._held = False
        self.last_error: str | None = None
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-follower", daemon=True)

    def start(self) -> "ModelFollower":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following; a held lease is let go, so that another runner takes over at once."""
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        if self.lease is not None:
            self.lease.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None
            except Exception as err:  # noqa: BLE001 - the model serving here goes on; tried again next tick
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("following model repo %s failed; trying again in %.1f min: %s", self.repo_id,
                            self.every, err)
            self._wake.wait(self.every * 60)

    def tick(self) -> bool:
        """One look: adopt a newer published round, then take or renew the lease. Returns whether it adopted."""
        adopted = self._follow()
        if self.lease is not None:
            held = self.lease.refresh()
            if held != self._held:
                self._held = held
                log.info("%s %s the round runner's lease", self.lease.holder, "holds" if held else "does not hold")
                if self.on_lease:
                    self.on_lease(held)
        return adopted

    def _follow(self) -> bool:
        head = head_of(self.api, self.repo_id)
        if head is None or head == self._head:
            return False
        with tempfile.TemporaryDirectory() as folder:
            try:
                config = json.loads(Path(self._download(checkpoints.HUB_CONFIG, head, folder)).read_text())
            except (RepositoryNotFoundError, EntryNotFoundError):
                self._head = head  # nothing published yet
                return False
            serving = self.serving_created()
            if serving is not None and config.get("created", "") <= serving:
                self._head = head
                return False
            payload = Path(self._download(checkpoints.HUB_WEIGHTS, head, folder)).read_bytes()
        meta = checkpoints.meta_from_bytes(payload)
        adopted = self.adopt(payload, meta, read_lease(self.api, self.repo_id, head))
        self._head = head
        return adopted

    def _download(self, filename: str, revision: str, folder: str) -> str:
        return self.api.hf_hub_download(self.repo_id, filename, revision=revision, local_dir=folder)
