"""Bring a dataset repo's data into the data folder at start, and learn what the repo holds for the sync.

The repo holds the layout of layout.py: each table as numbered parts, checkpoints and the card as files. Repos
written before that layout hold the data folder as it is on disk (loose PNGs, whole JSON-lines files): those are
restored the same way, and the sync then moves them into parts and deletes the loose copies.

Nothing newer on disk is overwritten: the tables only grow, so a local table with at least as many lines as the
repo's holds all of it and more (rows written after the last push, before a crash); it is kept and goes up next.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from outwit.hub.layout import CHECKPOINT, Sent, is_examples, is_table, jsonl, read_span, table_of_part, unpack
from outwit.storage import atomic_write

log = logging.getLogger(__name__)
SYNCED = ["adversarial/train/**", "adversarial/test/**", "reviews/**", "rounds/**", "tries/**", "README.md"]


@dataclass
class OnHub:
    """What the repo holds, as the restore found it; the sync keeps it up to date."""

    files: dict[Path, float] = field(default_factory=dict)  # loose files the same here as there: local mtimes
    tables: dict[str, Sent] = field(default_factory=dict)  # each table's parts in the repo
    checkpoints: set[str] = field(default_factory=set)  # repo paths
    legacy: dict[str, tuple[int, list[tuple[str, bool]]]] = field(default_factory=dict)
    # a table in the old layout: its lines there, and its (path, is folder) to delete once its parts hold as much

    def table(self, name: str) -> Sent:
        return self.tables.setdefault(name, Sent())


def restore_dataset(api: HfApi, repo_id: str, root: Path) -> OnHub:
    """Bring the dataset repo's data into the data folder `root`; a repo that does not exist restores nothing.

    The repo is downloaded beside the data (`root/.hub-restore`), merged in, then removed."""
    staging = root / ".hub-restore"
    try:
        try:
            api.snapshot_download(repo_id, repo_type="dataset", local_dir=staging, allow_patterns=SYNCED)
        except RepositoryNotFoundError:
            log.info("dataset repo %s does not exist yet: nothing to restore", repo_id)
            return OnHub()
        on_hub = merge(staging, root)
        log.info("restored %d tables and %d files from dataset repo %s", len(on_hub.tables) + len(on_hub.legacy),
                 len(on_hub.files), repo_id)
        return on_hub
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # merged (or failed): the data must not sit on disk twice


def restore_or_none(api: HfApi, repo_id: str, root: Path) -> OnHub | None:
    """restore_dataset, or None when the Hub cannot be reached: the app then starts from local disk."""
    try:
        return restore_dataset(api, repo_id, root)
    except Exception as err:  # noqa: BLE001 - unreachable, 5xx, 429...: serve locally, sync retries later
        log.warning("could not restore from dataset repo %s, starting from local disk: %s", repo_id, err)
        return None


def merge(staging: Path, root: Path) -> OnHub:
    on_hub = OnHub()
    parts: dict[str, dict[int, Path]] = defaultdict(dict)
    for remote in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = remote.relative_to(staging).as_posix()
        if any(name.startswith(".") for name in rel.split("/")):
            continue  # the download's own cache
        if found := table_of_part(rel):
            parts[found[0]][found[1]] = remote
        elif is_table(rel):
            on_hub.legacy[rel] = (count_lines(remote), _legacy_paths(rel))
        elif CHECKPOINT.match(rel) or rel == "README.md":
            local = _merge_file(remote, root / rel)
            on_hub.files[local] = local.stat().st_mtime
            if rel != "README.md":
                on_hub.checkpoints.add(rel)
    for table in sorted(set(parts) | set(on_hub.legacy)):
        legacy_lines = on_hub.legacy.get(table, (0, []))[0]
        if table in parts and _parts_lines(parts[table]) >= legacy_lines:
            on_hub.tables[table] = _merge_parts(table, [parts[table][k] for k in sorted(parts[table])], root)
        else:  # only the old layout, or more there: merged as it is; the sync packs it all again
            _merge_legacy(table, staging, root)
            on_hub.tables[table] = Sent()
    return on_hub


def _legacy_paths(table: str) -> list[tuple[str, bool]]:
    if is_examples(table):
        folder = table.rsplit("/", 1)[0]
        return [(f"{folder}/images", True), (f"{folder}/inputs", True), (table, False)]
    return [(table, False)]


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _parts_lines(parts: dict[int, Path]) -> int:
    last = parts[max(parts)]
    if last.suffix == ".parquet":
        return sum(read_span(last))
    return sum(count_lines(p) for p in parts.values())


def _consecutive(counts: list[int]) -> list[tuple[int, int]]:
    """Spans (first line, lines) of parts of `counts` lines each, one after another from line 0."""
    spans, first = [], 0
    for count in counts:
        spans.append((first, count))
        first += count
    return spans


def _merge_parts(table: str, parts: list[Path], root: Path) -> Sent:
    """Rebuild `table` from its parts unless the local one holds at least as much; what the repo holds, in the
    local file's numbering of lines."""
    local = root / table
    local_lines = count_lines(local) if local.exists() else 0
    if not is_examples(table):
        spans = _consecutive([count_lines(part) for part in parts])
        if local_lines < sum(spans[-1]):
            atomic_write(local, b"".join(p.read_bytes() for p in parts))
        return Sent(spans)
    spans = [read_span(p) for p in parts]
    if local_lines >= sum(spans[-1]):
        return Sent(spans)
    rows: list[dict] = []
    counts = []
    for part in parts:  # one pack in memory at a time; images first: a row never points at a missing file
        packed = unpack(part)
        for name, payload in packed.images.items():
            image = local.parent / name
            if not image.exists():
                image.parent.mkdir(parents=True, exist_ok=True)
                image.write_bytes(payload)
        rows.extend(packed.rows)
        counts.append(len(packed.rows))
    os.sync()  # the images reach the disk before the rows that name them
    atomic_write(local, jsonl(rows))
    return Sent(_consecutive(counts))  # the rebuilt file has no unreadable lines: its numbering counts rows


def _merge_legacy(table: str, staging: Path, root: Path) -> None:
    """The old layout: the table and, for examples, its images, copied over unless the local copy is longer."""
    folder = (staging / table).parent
    if is_examples(table):
        for remote in folder.rglob("*.png"):
            _merge_file(remote, root / remote.relative_to(staging))
    _merge_file(staging / table, root / table)


def _merge_file(remote: Path, local: Path) -> Path:
    """Copy `remote` over `local` unless `local` is longer (an append-only file with rows not yet pushed)."""
    if local.exists() and local.stat().st_size > remote.stat().st_size:
        return local.resolve()
    if not local.exists() or local.read_bytes() != remote.read_bytes():
        atomic_write(local, remote.read_bytes())
    return local.resolve()
