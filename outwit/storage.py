"""The few ways Outwit writes to disk, in one place: whole files atomically, and append-only JSON lines.

A whole file (a checkpoint, a PNG, a card) is written to a temporary name in the same folder, flushed to disk and
renamed over the target, so a reader sees the old file or the new one, never half of one. A JSON-lines file only
grows: each row is flushed to disk before the call returns, and a row cut short by a crash is skipped on reading.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)


def atomic_write(path: str | Path, payload: bytes) -> Path:
    """Write `payload` to `path` through a flushed temporary file and a rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one row and flush it to disk before returning. A line cut short by a crash is ended first, so that
    it never swallows the new row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        torn = False
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + json.dumps(row, sort_keys=True).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of an append-only JSON-lines file; an unreadable line (a write cut short) is skipped, with a warning."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("skipping unreadable line %d of %s (a write cut short?)", number, path)
    return rows


def utc_now(timespec: str = "seconds") -> str:
    """Now, in UTC, as ISO 8601: how every record and file here says when."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)
