"""The Hugging Face Hub as the shared store: restore on start (restore.py), then, in the background, pull what other
replicas added (pull.py) and push what is new here.

The dataset repo holds the data folder in the layout of layout.py: the examples in Parquet packs
(`adversarial/{train,test}/<shard>/pack-NNNNN.parquet`), the rounds (`rounds/<shard>/rounds-NNNNN.jsonl` and
promoted checkpoints), the review events (`reviews/<shard>/reviews-NNNNN.jsonl`: votes, retractions, reports) and
a dataset card. Each app replica writes only its own shard, so replicas never overwrite each other. `DatasetSync`
is a `huggingface_hub.CommitScheduler`: every `sync_every` minutes it first brings in the other shards' new parts,
then sends whatever is new here, in commits of at most 100 files; a flag never makes a commit of its own. When the
Hub is unreachable or refuses, the examples stay on disk and go up on a later tick; a part is marked sent only after
the commit that carries it succeeded.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, CommitScheduler, HfApi
from huggingface_hub._commit_scheduler import PartialFileIO
from huggingface_hub.errors import EntryNotFoundError

from outwit.config import Config
from outwit.dadc.store import AdversarialStore
from outwit.hub.cards import dataset_card
from outwit.hub.layout import CHECKPOINT, Layout, Part, checkpoints_to_drop, chunked, is_table, parts_to_send
from outwit.hub.pull import Pulled, Seen, pull
from outwit.hub.restore import OnHub, restore_dataset
from outwit.storage import atomic_write, utc_now

log = logging.getLogger(__name__)
SYNCED_FILES = ("adversarial/*/*/metadata.jsonl", "reviews/*/reviews.jsonl", "rounds/*/rounds.jsonl",
                "tries/*/tries.jsonl",
                "rounds/*/round-*.safetensors", "README.md")  # what the sync looks at (layout.py says how)
OLD_CARD_MARKS = ("(https://github.com/)", 'path: "adversarial/train/**"')  # cards of older layouts: rewritten once


def hub_api(config: Config, shard: str | None = None) -> HfApi:
    """The client for the Hub; its requests name the replica (`shard`) in their user agent, for the Hub's logs."""
    return HfApi(endpoint=config.hub_endpoint or None, token=config.hf_token.reveal(), library_name="outwit",
                 user_agent={"outwit-shard": shard} if shard else None)


def _loose(rel: str) -> bool:
    """What the sync sends as files (the tables go as parts): checkpoints and the card."""
    return rel == "README.md" or CHECKPOINT.match(rel) is not None


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
    last_pull: str | None = None  # the last time other replicas' examples and reviews were looked for (UTC)
    pulled_rows: int = 0  # rows of other replicas brought in since start


class SyncProgress:
    """What the sync has done so far; written by the link and its scheduler thread, read by requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self.pushed_rows = 0  # the store's own rows on the Hub, as of the last successful push
        self.last_push: str | None = None
        self.last_error: str | None = None
        self.phase = "connecting to the Hub"
        self.last_pull: str | None = None
        self.pulled_rows = 0

    def update(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def snapshot(self) -> tuple[int, str | None, str | None, str, str | None, int]:
        with self._lock:
            return (self.pushed_rows, self.last_push, self.last_error, self.phase, self.last_pull,
                    self.pulled_rows)


def sync_status(config: Config, store: AdversarialStore, link: "HubLink | None") -> SyncStatus:
    if link is None:
        reason = "no HF_TOKEN" if not config.hf_token else "no DATASET_REPO"
        return SyncStatus(enabled=False, repo=None, last_push=None, waiting=0, last_error=None, phase=None,
                          reason=f"local only ({reason}): examples are kept on this machine's disk")
    pushed, last_push, last_error, phase, last_pull, pulled_rows = link.progress.snapshot()
    return SyncStatus(enabled=True, repo=config.dataset_repo, last_push=last_push,
                      waiting=max(0, store.own_rows - pushed), last_error=last_error,
                      phase=None if link.sync is not None else phase, reason=None, last_pull=last_pull,
                      pulled_rows=pulled_rows)


class DatasetSync(CommitScheduler):
    """Pushes what is new in the data folder to the dataset repo in the layout of layout.py, looking under the
    store's own lock (the one its writers hold), in commits of at most `layout.commit_files` files.

    A part is recorded as in the repo only after the commit that carries it succeeded; a failed commit leaves the
    rest for the next tick. `keep`: repo paths of checkpoints to keep beside each replica's newest (the one
    serving). `on_pulled`: called (after the store's refresh) when a pull brought other replicas' rows;
    `before_push`: called before each push's scan (e.g. to write out counts kept in memory). (The scheduler's own
    `lock` is not used.)
    """

    def __init__(self, *, store: AdversarialStore, root: Path, repo_id: str, every: float, hf_api: HfApi,
                 progress: SyncProgress, card: str, on_hub: OnHub | None = None, layout: Layout = Layout(),
                 keep: Callable[[], set[str]] = set, on_pulled: Callable[[Pulled], None] | None = None,
                 before_push: Callable[[], object] | None = None):
        # Everything the scheduler thread reads is set before super().__init__ starts it.
        self.store, self.progress, self.layout, self.keep, self.on_pulled = store, progress, layout, keep, on_pulled
        self.before_push = before_push
        self.on_hub = on_hub or OnHub()
        self.seen = Seen()
        card_path = Path(root) / "README.md"
        if not card_path.exists() or any(mark in card_path.read_text(encoding="utf-8") for mark in OLD_CARD_MARKS):
            atomic_write(card_path, card.encode())
        super().__init__(repo_id=repo_id, repo_type="dataset", folder_path=root, every=every, hf_api=hf_api)

    def push_to_hub(self):
        self.pull()
        if self.before_push:
            self.before_push()
        with self.store.lock:  # the store appends under this lock: a look never catches half a row
            own_rows = self.store.own_rows
            found = self._files()
            tables = {rel: path.stat().st_size for path, rel in found if is_table(rel)}
            files = [(path, rel, path.stat().st_mtime) for path, rel in found if _loose(rel)]
        wanted = self._checkpoints_wanted({rel for _, rel, _ in files} | self.on_hub.checkpoints)
        files = [(path, rel, mtime) for path, rel, mtime in files if self._to_send(path, rel, mtime, wanted)]
        parts = (part for table, end in sorted(tables.items())
                 for part in parts_to_send(table, self.folder_path, end, self.on_hub.table(table), self.layout))
        info = None
        try:
            for batch in chunked(itertools.chain(files, parts), self.layout.commit_files):
                info = self._commit([_add(item) for item in batch], f"Add examples from {self.store.shard}")
                self._record(batch)
            self._delete(self._stale(wanted))
        except Exception as err:
            self.progress.update(last_error=f"{type(err).__name__}: {err}")
            log.warning("push to %s failed; what is left waits for the next tick: %s", self.repo_id, err)
            raise
        self.progress.update(pushed_rows=own_rows, last_push=utc_now(), last_error=None)
        return info

    def pull(self) -> Pulled | None:
        """Bring in what other replicas pushed since the last look; a failure is logged and tried next tick."""
        try:
            pulled = pull(self.api, self.repo_id, self.folder_path, on_hub=self.on_hub, own_shard=self.store.shard,
                          lock=self.store.lock, seen=self.seen)
        except Exception as err:  # noqa: BLE001 - this replica goes on serving what it has; next tick tries again
            self.progress.update(last_error=f"pull: {type(err).__name__}: {err}")
            log.warning("pulling from %s failed; trying again next tick: %s", self.repo_id, err)
            return None
        self.progress.update(last_pull=utc_now(), pulled_rows=self.progress.pulled_rows + pulled.rows)
        if pulled.tables:
            log.info("pulled %d rows of other replicas in %s", pulled.rows, ", ".join(pulled.tables))
            self.store.refresh()
            if self.on_pulled:
                self.on_pulled(pulled)
        return pulled

    def _files(self) -> list[tuple[Path, str]]:
        """The tables, checkpoints and card, found where they live: never a walk past the examples' images."""
        paths = {path for pattern in SYNCED_FILES for path in self.folder_path.glob(pattern) if path.is_file()}
        found = [(path, path.relative_to(self.folder_path).as_posix()) for path in sorted(paths)]
        return [(path, rel) for path, rel in found if is_table(rel) or _loose(rel)]

    def _to_send(self, path: Path, rel: str, mtime: float, wanted: set[str]) -> bool:
        if self.last_uploaded.get(path, self.on_hub.files.get(path)) == mtime:
            return False
        return rel in wanted or not CHECKPOINT.match(rel)

    def _checkpoints_wanted(self, paths: set[str]) -> set[str]:
        """The checkpoints the repo keeps: each replica's newest, and those the app needs (the one serving)."""
        newest = {p for p in paths if CHECKPOINT.match(p)} - set(checkpoints_to_drop(paths, self.layout.checkpoints))
        return newest | (self.keep() & paths)

    def _commit(self, operations: list, message: str):
        return self.api.create_commit(repo_id=self.repo_id, repo_type="dataset", operations=operations,
                                      commit_message=message)

    def _record(self, batch: list) -> None:
        for item in batch:
            if isinstance(item, Part):
                self.on_hub.table(item.table).record(item)
            else:
                path, rel, mtime = item
                self.last_uploaded[path] = mtime
                if CHECKPOINT.match(rel):
                    self.on_hub.checkpoints.add(rel)

    def _stale(self, wanted: set[str]) -> list[tuple[str, bool]]:
        """What the repo no longer needs: old-layout copies of tables whose parts hold as much, and checkpoints
        other than the `wanted`."""
        stale = [(path, False) for path in sorted(self.on_hub.checkpoints - wanted)]
        for table, (lines, paths) in sorted(self.on_hub.legacy.items()):
            if self.on_hub.table(table).lines >= lines:
                stale.extend(paths)
        return stale

    def _delete(self, stale: list[tuple[str, bool]]) -> None:
        """Delete in commits of their own; a path already gone (another replica got there first) is not an error."""
        for batch in chunked(stale, self.layout.commit_files):
            operations = [CommitOperationDelete(path_in_repo=path, is_folder=folder) for path, folder in batch]
            try:
                self._commit(operations, f"Tidy the layout from {self.store.shard}")
            except EntryNotFoundError:
                for operation in operations:  # one at a time, to find those still there
                    with contextlib.suppress(EntryNotFoundError):
                        self._commit([operation], f"Tidy the layout from {self.store.shard}")
            self._forget([path for path, _ in batch])

    def _forget(self, paths: list[str]) -> None:
        self.on_hub.checkpoints.difference_update(paths)
        for table in [t for t, (_, legacy) in self.on_hub.legacy.items() if {p for p, _ in legacy} <= set(paths)]:
            del self.on_hub.legacy[table]


def _add(item) -> CommitOperationAdd:
    if isinstance(item, Part):
        return CommitOperationAdd(path_or_fileobj=item.payload, path_in_repo=item.path_in_repo)
    path, rel, _ = item
    return CommitOperationAdd(path_or_fileobj=PartialFileIO(path, size_limit=path.stat().st_size), path_in_repo=rel)


class HubLink:
    """Restores the dataset repo's examples, then keeps a DatasetSync running; if the Hub cannot be reached at start,
    tries again every `sync_every` minutes while the app serves from local disk. The page shows its state."""

    def __init__(self, *, config: Config, store: AdversarialStore, api: HfApi,
                 restored: OnHub | None = None, on_restored: Callable[[], None] | None = None,
                 keep: Callable[[], set[str]] = set, layout: Layout = Layout(),
                 on_pulled: Callable[[Pulled], None] | None = None, before_push: Callable[[], object] | None = None):
        """`restored`: what start-up already downloaded; None if it could not, and this link should restore.
        `on_restored`: called after a late restore, beside the store's refresh (e.g. the reviews' refresh).
        `keep`, `layout`, `on_pulled`, `before_push`: as for DatasetSync."""
        self.config, self.store, self.api, self._restored = config, store, api, restored
        self.on_restored, self.keep, self.layout, self.on_pulled = on_restored, keep, layout, on_pulled
        self.before_push = before_push
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
                                        card=card, on_hub=self._restored, keep=self.keep,
                                        layout=self.layout, on_pulled=self.on_pulled,
                                        before_push=self.before_push)
                self._ready.set()
                return
            except Exception as err:  # noqa: BLE001 - the app keeps serving from disk; tried again later
                self.progress.update(last_error=f"{type(err).__name__}: {err}",
                                     phase="the Hub could not be reached; trying again")
                log.warning("cannot reach dataset repo %s (%s); trying again in %.1f min",
                            self.config.dataset_repo, err, self.config.sync_every)
            self._stop.wait(self.config.sync_every * 60)
