"""Promoted rounds on the Hub: each one pushed to a model repo with a model card; the latest fetched at start.

Set MODEL_REPO (with HF_TOKEN) to use it. The repo holds the layout the Hub's model libraries use, so a round loads
without a copy of this repository: `model.safetensors` (the latest promoted round), `config.json` (its
description) and `model.py` (the networks); `rounds/round-NNNN-<replica>.safetensors` (each round) and `README.md`
(the model card). This module only talks to the Hub: what it fetches, the caller records.
"""
from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

from outwit.hub.cards import model_card
from outwit.hub.lease import LeaseLost, RunnerLease
from outwit.ml import checkpoints
from outwit.storage import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishStatus:
    repo: str
    last_push: str | None
    waiting: int  # promoted rounds not on the Hub yet
    last_error: str | None


class ModelPublisher:
    """Pushes each promoted round to the model repo from a daemon thread: one commit with the Hub layout of the
    newest, each round under `rounds/`, and the model card. A failed push is retried every `every` minutes;
    rounds promoted meanwhile go up together, the newest as `model.safetensors`.

    `card_links`: keyword arguments for `cards.model_card` (endpoint, space_id, dataset_repo). `lease`: the
    round runner's lease (ROUND_RUNNER=replica, `trainer.py rounds`): each push is then made with it, and a round
    whose runner lost the lease is never published.
    """

    def __init__(self, *, api: HfApi, repo_id: str, shard: str, every: float, card_links: dict | None = None,
                 lease: RunnerLease | None = None):
        self.api, self.repo_id, self.shard, self.every, self.lease = api, repo_id, shard, every, lease
        self.card_links = dict(card_links or {})
        self._pending: list[tuple[Path, checkpoints.CheckpointMeta, int | None]] = []
        self._lock = threading.Lock()  # guards the pending list and the figures below
        self._last_push: str | None = None
        self._last_error: str | None = None
        self._wake, self._stop, self._idle = threading.Event(), threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-publisher", daemon=True)

    def start(self) -> "ModelPublisher":
        self._idle.set()
        self._thread.start()
        return self

    def publish(self, checkpoint: Path, meta: checkpoints.CheckpointMeta, counted: int | None = None) -> None:
        """`counted`: the round trigger's count when the round started (the lease carries it to followers)."""
        with self._lock:
            self._pending.append((Path(checkpoint), meta, counted))
        self.push_now()

    def push_now(self) -> None:
        """Do not wait for the next tick: push what is pending now."""
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)

    def status(self) -> PublishStatus:
        with self._lock:
            return PublishStatus(repo=self.repo_id, last_push=self._last_push, waiting=len(self._pending),
                                 last_error=self._last_error)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every * 60)
            self._wake.clear()
            with self._lock:
                batch = list(self._pending)
            if batch:
                self._push(batch)
            if self._stop.is_set():
                return
            if not self._wake.is_set():
                self._idle.set()

    def _operations(self, batch: list) -> list[CommitOperationAdd]:
        newest_path, newest, _ = max(batch, key=lambda item: item[1].round)
        operations = [CommitOperationAdd(path_in_repo=f"rounds/round-{meta.round:04d}-{self.shard}.safetensors",
                                         path_or_fileobj=str(path)) for path, meta, _ in batch]
        operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=payload)
                       for name, payload in checkpoints.hub_files(newest_path.read_bytes()).items()]
        card = model_card(self.repo_id, newest, **self.card_links)
        return operations + [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode())]

    def _push(self, batch: list) -> None:
        _, newest_meta, counted = max(batch, key=lambda item: item[1].round)
        newest = newest_meta.round
        message = f"Round {newest} from {self.shard}"
        try:
            if self.lease is not None:
                self.lease.commit(self._operations(batch), message, round=newest, created=newest_meta.created,
                                  counted=counted)
            else:
                self.api.create_repo(self.repo_id, repo_type="model", exist_ok=True)
                self.api.create_commit(repo_id=self.repo_id, repo_type="model", operations=self._operations(batch),
                                       commit_message=message)
        except LeaseLost as err:  # another runner's rounds are the app's now: these are never published
            with self._lock:
                self._pending = [item for item in self._pending if item not in batch]
                self._last_error = f"not published: {err}"
            log.error("round %d is not published: %s", newest, err)
            return
        except Exception as err:  # noqa: BLE001 - kept pending, tried again on the next tick
            with self._lock:
                self._last_error = f"{type(err).__name__}: {err}"
            log.warning("publishing round %d to %s failed; retrying in %.1f min: %s", newest, self.repo_id,
                        self.every, err)
            return
        with self._lock:
            self._pending = [item for item in self._pending if item not in batch]
            self._last_push, self._last_error = utc_now(), None
        log.info("published round %d to model repo %s", newest, self.repo_id)


def fetch_published(api: HfApi, repo_id: str) -> tuple[bytes, checkpoints.CheckpointMeta] | None:
    """The model repo's latest promoted round (the checkpoint's bytes) with its description; None if the repo or
    the model does not exist yet, or the Hub cannot be reached (logged: the app starts from its local model)."""
    try:
        with tempfile.TemporaryDirectory() as folder:  # nothing is left behind: the caller keeps what it adopts
            payload = Path(api.hf_hub_download(repo_id, checkpoints.HUB_WEIGHTS, local_dir=folder)).read_bytes()
        return payload, checkpoints.meta_from_bytes(payload)
    except (RepositoryNotFoundError, EntryNotFoundError):
        log.info("model repo %s has no model yet: starting from the local model", repo_id)
    except Exception as err:  # noqa: BLE001 - start from the local model; the page still works
        log.warning("could not fetch the latest model from %s, starting from the local model: %s", repo_id, err)
    return None
