"""Pull what the other replicas added: the other half of the sync, so that N replicas count, show and vote as one app.

Each replica pushes only its own shard (sync.py). On each tick, before it pushes, a replica asks the repo for its
head (one API call); when that moved, it lists the repo's tables' parts and downloads only those of other shards that
are new or have grown since it last looked (a part once full never changes), and merges them into its data folder:
the part's rows (and, for packs, its images) replace the copy's tail from that part on. The caller then re-reads
the store and the reviews.

A table is pulled only while the local copy holds nothing the repo lacks: a shard of this machine's own, left by a
process that stopped before it pushed everything, is this replica's to push, never overwritten.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from outwit.hub.layout import is_examples, jsonl, shard_of, table_of_part, unpack
from outwit.hub.restore import OnHub, count_lines
from outwit.storage import atomic_write

log = logging.getLogger(__name__)
PULLED = ("adversarial/", "reviews/", "tries/")  # the tables read live; other replicas' round histories come with
# the restore at start (a new replica carries on from the newest), and rounds from elsewhere through the model repo


@dataclass
class Pulled:
    """What one pull brought: the tables it changed, and their new rows."""

    tables: list[str] = field(default_factory=list)
    rows: int = 0
    requests: int = 0  # calls to the Hub it made (API and downloads)


@dataclass
class Seen:
    """What the last pull saw of the repo: its head, and each part's blob id."""

    head: str | None = None
    parts: dict[str, str] = field(default_factory=dict)


def pull(api: HfApi, repo_id: str, root: Path, *, on_hub: OnHub, own_shard: str, lock: threading.Lock,
         seen: Seen) -> Pulled:
    """Bring other shards' new or grown parts of `repo_id` into the data folder `root`; update `on_hub` and
    `seen`. `lock`: the store's, held around each table's rewrite, as the push holds it around its scan."""
    pulled = Pulled(requests=1)
    try:
        head = api.repo_info(repo_id, repo_type="dataset").sha
    except RepositoryNotFoundError:
        return pulled  # nothing pushed yet by anyone
    if head is not None and head == seen.head:
        return pulled
    changed: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)  # table -> k -> (path, blob id)
    pulled.requests += 1  # one listing of the whole repo (a page per 1,000 files on the Hub)
    for entry in api.list_repo_tree(repo_id, recursive=True, repo_type="dataset", revision=head):
        found = table_of_part(entry.path)
        if found is None or not found[0].startswith(PULLED) or shard_of(found[0]) == own_shard:
            continue
        table, k = found
        if entry.path not in seen.parts and k < len(on_hub.table(table).spans) - 1:
            seen.parts[entry.path] = entry.blob_id  # a full part the restore at start brought: it never changes
        if seen.parts.get(entry.path) != entry.blob_id:
            changed[table][k] = (entry.path, entry.blob_id)
    staging = root / ".hub-pull"  # downloads land beside the data, and go once merged
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for table, parts in sorted(changed.items()):
            if _pull_table(api, repo_id, head, root, staging, table, parts, on_hub, lock, pulled):
                seen.parts.update({path: blob for path, blob in parts.values()})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seen.head = head
    return pulled


def _pull_table(api: HfApi, repo_id: str, head: str | None, root: Path, staging: Path, table: str,
                parts: dict[int, tuple[str, str]], on_hub: OnHub, lock: threading.Lock, pulled: Pulled) -> bool:
    """Merge the changed `parts` of `table`, and every later part, into the local copy. False: left alone."""
    local = root / table
    sent = on_hub.table(table)
    if local.exists() and count_lines(local) > sent.lines:
        return False  # rows here the repo lacks: this replica pushes them (see the module's note)
    first = min(min(parts), len(sent.spans))  # a part never seen before the last known one: from there
    paths = {k: path for k, (path, _) in parts.items() if k >= first}
    if set(range(first, max(paths) + 1)) - set(paths):  # a later part unchanged since it was seen: fetched again
        log.info("parts of %s missing between %d and %d: pulled at the next change", table, first, max(paths))
        return False
    downloaded = []
    for k in sorted(paths):
        pulled.requests += 1
        downloaded.append(Path(api.hf_hub_download(repo_id, paths[k], repo_type="dataset", revision=head,
                                                   local_dir=staging)))
    keep, before = sum(lines for _, lines in sent.spans[:first]), sent.lines
    rows, counts = _rows_of(table, downloaded, local.parent)
    with lock:
        kept = _first_lines(local, keep) if keep else b""
        atomic_write(local, kept + b"".join(rows))
        sent.spans[first:] = []
        for count in counts:
            sent.spans.append((sent.lines, count))
        sent.offsets = None
    pulled.tables.append(table)
    pulled.rows += max(0, keep + len(rows) - before)
    return True


def _rows_of(table: str, parts: list[Path], folder: Path) -> tuple[list[bytes], list[int]]:
    """The lines of `parts` as the local table holds them, and how many each part gave; a pack's images are written
    into `folder` first, so that a row never names a missing file."""
    if not is_examples(table):
        chunks = [part.read_bytes().splitlines(keepends=True) for part in parts]
        return [line for chunk in chunks for line in chunk], [len(chunk) for chunk in chunks]
    rows, counts = [], []
    for part in parts:
        packed = unpack(part)
        for name, payload in packed.images.items():
            image = folder / name
            if not image.exists():
                atomic_write(image, payload)
        rows.extend(jsonl([row]) for row in packed.rows)
        counts.append(len(packed.rows))
    os.sync()  # the images reach the disk before the rows that name them
    return rows, counts


def _first_lines(path: Path, lines: int) -> bytes:
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(lines))
