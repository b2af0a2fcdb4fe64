"""The Hugging Face Hub as the shared store: restore on start, push what is new in the background.

The dataset repo mirrors the data folder: the examples' imagefolder (`adversarial/{train,test}/<shard>/...`), the
rounds (`rounds/<shard>/rounds.jsonl` and promoted checkpoints), the review events (`reviews/<shard>/reviews.jsonl`:
votes, retractions, reports) and a dataset card. Each app replica writes only
its own shard, so replicas never overwrite each other. `DatasetSync` is a
`huggingface_hub.CommitScheduler`: every `sync_every` minutes one commit carries whatever is new; a flag never
makes a commit of its own. When the Hub is unreachable or refuses, the examples stay on disk and go up on a later
tick; a file is marked sent only after the commit that carries it succeeded.
"""
from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from huggingface_hub import CommitOperationAdd, CommitScheduler, HfApi, snapshot_download
from huggingface_hub._commit_scheduler import PartialFileIO
from huggingface_hub.errors import RepositoryNotFoundError

from cards import dataset_card
from config import Config
from flagging import SPLITS, AdversarialStore
from storage import atomic_write, utc_now

log = logging.getLogger(__name__)
SYNCED = [f"adversarial/{split}/**" for split in SPLITS] + ["reviews/**", "rounds/**", "README.md"]
OLD_CARD_PLACEHOLDER = "(https://github.com/)"  # cards written before they had real links: rewritten once


def hub_api(config: Config) -> HfApi:
    return HfApi(endpoint=config.hub_endpoint or None, token=config.hf_token.reveal(), library_name="outwit")


def restore_dataset(api: HfApi, repo_id: str, root: Path) -> dict[Path, float]:
    """Bring the dataset repo's files into the data folder `root`; returns the files now the same here as on the
    Hub, with their mtimes, so that the sync does not send them again. A repo that does not exist restores nothing.

    The repo is downloaded beside the data (`root/.hub-restore`) and merged in, never over newer local data: the
    files are append-only, so a local file at least as long as the Hub's holds everything the Hub has and more
    (rows written after the last push, before a crash); it is kept, and goes up on the next push.
    """
    staging = root / ".hub-restore"
    try:
        try:
            snapshot_download(repo_id, repo_type="dataset", local_dir=staging, allow_patterns=SYNCED,
                              endpoint=api.endpoint, token=api.token)
        except RepositoryNotFoundError:
            log.info("dataset repo %s does not exist yet: nothing to restore", repo_id)
            return {}
        return _merge(staging, root, repo_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # merged (or failed): the data must not sit on disk twice


def _merge(staging: Path, root: Path, repo_id: str) -> dict[Path, float]:
    on_hub = {}
    for remote in staging.rglob("*"):
        if not remote.is_file() or not _synced(staging, remote):
            continue
        local = root / remote.relative_to(staging)
        if local.exists() and local.stat().st_size > remote.stat().st_size:
            continue  # more here than on the Hub: keep it, push it
        if not local.exists() or local.read_bytes() != remote.read_bytes():
            atomic_write(local, remote.read_bytes())
        on_hub[local.resolve()] = local.stat().st_mtime
    log.info("restored %d files from dataset repo %s", len(on_hub), repo_id)
    return on_hub


def restore_or_none(api: HfApi, repo_id: str, root: Path) -> dict[Path, float] | None:
    """restore_dataset, or None when the Hub cannot be reached: the app then starts from local disk."""
    try:
        return restore_dataset(api, repo_id, root)
    except Exception as err:  # noqa: BLE001 - unreachable, 5xx, 429...: serve locally, sync retries later
        log.warning("could not restore from dataset repo %s, starting from local disk: %s", repo_id, err)
        return None


def _synced(root: Path, path: Path) -> bool:
    """What the sync carries: the examples, the rounds, the reviews, the card; no dot-files (downloads' caches,
    temporaries)."""
    parts = path.relative_to(root).parts
    if any(p.startswith(".") for p in parts):
        return False
    if parts[0] == "adversarial":
        return len(parts) > 2 and parts[1] in SPLITS
    return parts == ("README.md",) or parts[0] in ("rounds", "reviews")


@dataclass(frozen=True)
class SyncStatus:
    """The dataset sync as the page and `/status` show it; built by `sync_status` alone."""

    enabled: bool
    repo: str | None
    last_push: str | None  # the last successful push (UTC)
    waiting: int  # examples saved here and not on the Hub yet
    last_error: str | None
    phase: str | None  # before the first sync runs: what the link is doing
    reason: str | None  # local only: why


class SyncProgress:
    """What the sync has done so far; written by the link and its scheduler thread, read by requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self.pushed_rows = 0  # the store's own rows on the Hub, as of the last successful push
        self.last_push: str | None = None
        self.last_error: str | None = None
        self.phase = "connecting to the Hub"

    def update(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def snapshot(self) -> tuple[int, str | None, str | None, str]:
        with self._lock:
            return self.pushed_rows, self.last_push, self.last_error, self.phase


def sync_status(config: Config, store: AdversarialStore, link: "HubLink | None") -> SyncStatus:
    if link is None:
        reason = "no HF_TOKEN" if not config.hf_token else "no DATASET_REPO"
        return SyncStatus(enabled=False, repo=None, last_push=None, waiting=0, last_error=None, phase=None,
                          reason=f"local only ({reason}): examples are kept on this machine's disk")
    pushed, last_push, last_error, phase = link.progress.snapshot()
    return SyncStatus(enabled=True, repo=config.dataset_repo, last_push=last_push,
                      waiting=max(0, store.own_rows - pushed), last_error=last_error,
                      phase=None if link.sync is not None else phase, reason=None)


class DatasetSync(CommitScheduler):
    """Pushes the store's new files to the dataset repo, scanning under the store's own lock.

    (The scheduler's own `lock` is not used: the store's is the one its writers hold.)
    """

    def __init__(self, *, store: AdversarialStore, root: Path, repo_id: str, every: float, hf_api: HfApi,
                 progress: SyncProgress, card: str, already_on_hub: dict[Path, float] | None = None):
        # Everything the scheduler thread reads is set before super().__init__ starts it.
        self.store, self.progress = store, progress
        self._on_hub = {Path(p).resolve(): mtime for p, mtime in (already_on_hub or {}).items()}
        card_path = Path(root) / "README.md"
        if not card_path.exists() or OLD_CARD_PLACEHOLDER in card_path.read_text(encoding="utf-8"):
            atomic_write(card_path, card.encode())
        # push_to_hub below picks the files itself (`_synced`), so no allow_patterns here
        super().__init__(repo_id=repo_id, repo_type="dataset", folder_path=root, every=every, hf_api=hf_api)

    def push_to_hub(self):
        with self.store.lock:  # the store appends under this lock: a scan never catches half a row
            own_rows = self.store.own_rows
            files = [(path, path.relative_to(self.folder_path).as_posix(), path.stat())
                     for path in sorted(self.folder_path.rglob("*")) if path.is_file()]
            files = [(path, rel, st) for path, rel, st in files if _synced(self.folder_path, path)
                     and self.last_uploaded.get(path, self._on_hub.get(path)) != st.st_mtime]
        if not files:
            self.progress.update(pushed_rows=own_rows, last_push=utc_now(), last_error=None)
            return None
        operations = [CommitOperationAdd(path_or_fileobj=PartialFileIO(path, size_limit=st.st_size), path_in_repo=rel)
                      for path, rel, st in files]
        try:
            info = self.api.create_commit(repo_id=self.repo_id, repo_type="dataset", operations=operations,
                                          commit_message=f"Add examples from {self.store.shard}")
        except Exception as err:
            self.progress.update(last_error=f"{type(err).__name__}: {err}")
            log.warning("push to %s failed; %d files wait for the next tick: %s", self.repo_id, len(files), err)
            raise
        for path, _, st in files:  # only now are they on the Hub
            self.last_uploaded[path] = st.st_mtime
        self.progress.update(pushed_rows=own_rows, last_push=utc_now(), last_error=None)
        return info


class HubLink:
    """Restores the dataset repo's examples, then keeps a DatasetSync running; if the Hub cannot be reached at start,
    tries again every `sync_every` minutes while the app serves from local disk. The page shows its state."""

    def __init__(self, *, config: Config, store: AdversarialStore, api: HfApi,
                 restored: dict[Path, float] | None = None, on_restored: Callable[[], None] | None = None):
        """`restored`: what start-up already downloaded; None if it could not, and this link should restore.
        `on_restored`: called after a late restore, beside the store's refresh (e.g. the reviews' refresh)."""
        self.config, self.store, self.api, self._restored = config, store, api, restored
        self.on_restored = on_restored
        self.sync: DatasetSync | None = None
        self.progress = SyncProgress()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-link", daemon=True)

    def start(self) -> "HubLink":
        self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self, final_push: bool = True) -> None:
        """Stop trying; with `final_push`, push what waits (the scheduler also does so at interpreter exit)."""
        self._stop.set()
        if self.sync is not None:
            if final_push:
                try:
                    self.sync.trigger().result(timeout=120)
                except Exception as err:  # noqa: BLE001 - logged; the files stay on disk for the next start
                    log.warning("final push failed: %s", err)
            self.sync.stop()

    def status(self) -> SyncStatus:
        return sync_status(self.config, self.store, self)

    def _run(self) -> None:
        card = dataset_card(self.config.dataset_repo, endpoint=self.config.hub_endpoint or None,
                            space_id=self.config.space_id or None)
        while not self._stop.is_set():
            try:
                if self._restored is None:
                    self.progress.update(phase="restoring examples from the Hub")
                    self._restored = restore_dataset(self.api, self.config.dataset_repo, self.config.data_dir)
                    self.store.refresh()
                    if self.on_restored:
                        self.on_restored()
                self.sync = DatasetSync(store=self.store, root=self.config.data_dir, repo_id=self.config.dataset_repo,
                                        every=self.config.sync_every, hf_api=self.api, progress=self.progress,
                                        card=card, already_on_hub=self._restored)
                self._ready.set()
                return
            except Exception as err:  # noqa: BLE001 - the app keeps serving from disk; tried again later
                self.progress.update(last_error=f"{type(err).__name__}: {err}",
                                     phase="the Hub could not be reached; trying again")
                log.warning("cannot reach dataset repo %s (%s); trying again in %.1f min",
                            self.config.dataset_repo, err, self.config.sync_every)
            self._stop.wait(self.config.sync_every * 60)
