"""Promoted rounds on the Hub: each one pushed to a model repo with a model card; the latest fetched at start.

Set MODEL_REPO (with HF_TOKEN) to use it. The repo holds `model.safetensors` (the latest promoted round),
`rounds/round-NNNN-<replica>.safetensors` (each of them) and `README.md` (the model card).
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

import trainer
from model import CheckpointMeta
from retrain import History

log = logging.getLogger(__name__)

MODEL_CARD = """---
library_name: pytorch
tags:
- image-classification
- mnist
- adversarial
- dynamic-adversarial-data-collection
---
# Outwit digit model, round {round}

A `{arch}` network ({arch_args}) that reads handwritten digits, retrained by
[Outwit](https://github.com/) on drawings that fooled its earlier rounds.

| | |
| --- | --- |
| round | {round} |
| accuracy on MNIST (`{mnist_dataset}`) | {mnist_top1} |
| accuracy on held-out adversarial examples ({adversarial_size}) | {adversarial_top1} |
| trained on | {trained_on} |
| made | {created} |

`model.safetensors` is the latest promoted round; `rounds/round-NNNN-<replica>.safetensors` keeps each one. A
checkpoint's safetensors metadata describes it (architecture, its arguments, round, metrics, data).

## Load it

```python
from huggingface_hub import hf_hub_download
from trainer import load_checkpoint  # Outwit's trainer.py; the network is in its model.py

model, meta = load_checkpoint(hf_hub_download("{repo_id}", "model.safetensors"))
```

Inputs are (N, 1, 28, 28) floats in [0, 1], white ink on black, as `model.preprocess(drawing)` makes them; the
output is 10 logits.
"""


def model_card(repo_id: str, meta: CheckpointMeta) -> str:
    metrics = meta.metrics
    percent = lambda v: "–" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    return MODEL_CARD.format(
        repo_id=repo_id, round=meta.round, arch=meta.arch, arch_args=json.dumps(meta.arch_args),
        mnist_dataset=metrics.get("mnist_dataset"), mnist_top1=percent(metrics.get("mnist_top1")),
        adversarial_size=f"{metrics.get('adversarial_size', 0)} examples",
        adversarial_top1=percent(metrics.get("adversarial_top1")), trained_on=json.dumps(meta.trained_on),
        created=meta.created)


class ModelPublisher:
    """Pushes each promoted round to the model repo from a daemon thread: one commit with the checkpoint as
    `model.safetensors` and under `rounds/`, and the model card. A failed push is retried every `every` minutes;
    rounds promoted meanwhile go up together, the newest as `model.safetensors`."""

    def __init__(self, *, api: HfApi, repo_id: str, shard: str, every: float):
        self.api, self.repo_id, self.shard, self.every = api, repo_id, shard, every
        self._pending: list[tuple[Path, CheckpointMeta]] = []
        self._lock = threading.Lock()
        self._wake, self._stop, self._idle = threading.Event(), threading.Event(), threading.Event()
        self.last_push: str | None = None
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="model-publisher", daemon=True)

    def start(self) -> "ModelPublisher":
        self._idle.set()
        self._thread.start()
        return self

    def publish(self, checkpoint: Path, meta: CheckpointMeta) -> None:
        with self._lock:
            self._pending.append((Path(checkpoint), meta))
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

    def state(self) -> dict:
        with self._lock:
            waiting = len(self._pending)
        return {"repo": self.repo_id, "last_push": self.last_push, "waiting": waiting, "last_error": self.last_error}

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

    def _push(self, batch: list[tuple[Path, CheckpointMeta]]) -> None:
        newest_path, newest = max(batch, key=lambda item: item[1].round)
        operations = [CommitOperationAdd(path_in_repo=f"rounds/round-{meta.round:04d}-{self.shard}.safetensors",
                                         path_or_fileobj=str(path)) for path, meta in batch]
        operations += [CommitOperationAdd(path_in_repo="model.safetensors", path_or_fileobj=str(newest_path)),
                       CommitOperationAdd(path_in_repo="README.md",
                                          path_or_fileobj=model_card(self.repo_id, newest).encode())]
        try:
            self.api.create_repo(self.repo_id, repo_type="model", exist_ok=True)
            self.api.create_commit(repo_id=self.repo_id, repo_type="model", operations=operations,
                                   commit_message=f"Round {newest.round} from {self.shard}")
        except Exception as err:  # noqa: BLE001 - kept pending, tried again on the next tick
            self.last_error = f"{type(err).__name__}: {err}"
            log.warning("publishing round %d to %s failed; retrying in %.1f min: %s", newest.round, self.repo_id,
                        self.every, err)
            return
        with self._lock:
            self._pending = [item for item in self._pending if item not in batch]
        self.last_push, self.last_error = datetime.now(timezone.utc).isoformat(timespec="seconds"), None
        log.info("published round %d to model repo %s", newest.round, self.repo_id)


def fetch_latest_model(api: HfApi, repo_id: str, folder: Path) -> Path | None:
    """The model repo's `model.safetensors` (the latest promoted round) downloaded into `folder`, or None if the
    repo or the file does not exist yet, or the Hub cannot be reached (logged)."""
    try:
        return Path(hf_hub_download(repo_id, "model.safetensors", local_dir=folder, endpoint=api.endpoint,
                                    token=api.token))
    except (RepositoryNotFoundError, EntryNotFoundError):
        log.info("model repo %s has no model yet: starting from the local model", repo_id)
    except Exception as err:  # noqa: BLE001 - start from the local model; the page still works
        log.warning("could not fetch the latest model from %s, starting from the local model: %s", repo_id, err)
    return None



def adopt_published_model(api: HfApi, repo_id: str, history: History, downloads: Path, flags_total: int) -> bool:
    """Start from the model repo's latest model: unless the history already serves that very checkpoint, it is
    copied beside the history and recorded as promoted (the next round counts flags from `flags_total`).
    Returns whether it was adopted."""
    path = fetch_latest_model(api, repo_id, downloads)
    if path is None:
        return False
    _, meta = trainer.load_checkpoint(path)
    serving = history.serving() or {}
    if serving.get("created") == meta.created:
        return False
    target = history.path.parent / f"round-{meta.round:04d}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    history.append({"round": meta.round, "status": "promoted", "source": f"model repo {repo_id}",
                    "checkpoint": target.relative_to(history.root).as_posix(), "started": meta.created,
                    "created": meta.created, "flags_total": flags_total, "seconds": 0, **meta.metrics})
    log.info("serving round %d from model repo %s", meta.round, repo_id)
    return True
