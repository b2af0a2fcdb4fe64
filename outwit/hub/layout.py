"""How the data folder is laid out in the dataset repo, so that a million examples keep within the Hub's limits.

The Hub asks for fewer than 10,000 entries per folder, fewer than 100,000 files per repo and about 100 files per
commit. On disk each example is two PNGs and a JSON line; in the repo every append-only JSON-lines file of the data
folder (a "table") travels as numbered parts of a fixed number of its lines:

    adversarial/{split}/{shard}/metadata.jsonl  ->  adversarial/{split}/{shard}/pack-00000.parquet, pack-00001, ...
        1,000 examples a pack, both images inside as `datasets` Image structs: `datasets.load_dataset` reads them
    reviews/{shard}/reviews.jsonl               ->  reviews/{shard}/reviews-00000.jsonl, ...   (10,000 lines a part)
    rounds/{shard}/rounds.jsonl                 ->  rounds/{shard}/rounds-00000.jsonl, ...
    tries/{shard}/tries.jsonl                   ->  tries/{shard}/tries-00000.jsonl, ...  (drawings judged per round)
    rounds/{shard}/round-NNNN.safetensors          as they are: the latest 10 promoted of each replica

A part once full never changes; only the last, growing part of each table is sent again. A million examples in one
replica's shard are 1,000 packs (800 in the train folder); the checks are in tests/unit/test_hub_layout.py.
"""
from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

# The Hub's limits (https://huggingface.co/docs/hub/repositories-recommendations), and ours under them.
HUB_FOLDER_ENTRIES, HUB_REPO_FILES, HUB_COMMIT_FILES = 10_000, 100_000, 100

TABLE = re.compile(r"^(?:adversarial/(?:train|test)/[^/]+/metadata"
                   r"|(?:reviews|rounds|tries)/[^/]+/(?:reviews|rounds|tries))\.jsonl$")
PART = re.compile(r"^(?:(?P<examples>adversarial/(?:train|test)/[^/]+)/pack-(?P<pack>\d{5,})\.parquet"
                  r"|(?P<log>(?P<kind>reviews|rounds|tries)/[^/]+/(?P=kind))-(?P<part>\d{5,})\.jsonl)$")
CHECKPOINT = re.compile(r"^rounds/(?P<shard>[^/]+)/round-(?P<round>\d+)\.safetensors$")

# The columns of a pack besides the two images; a row's other keys, if any, travel as JSON in `extra`.
COLUMNS = {"id": pa.string(), "seq": pa.int64(), "label": pa.int64(), "guess": pa.int64(),
           "confidence": pa.float64(), "round": pa.int64(), "source": pa.string(), "session": pa.string(),
           "user": pa.string(), "split": pa.string(), "created": pa.string(), "shard": pa.string()}
IMAGES = {"image": "file_name", "input": "input_file_name"}  # column: the row's key for its path
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
DTYPES = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64"}
FEATURES = {"image": {"_type": "Image"}, "input": {"_type": "Image"},  # what `datasets` reads back
            **{name: {"dtype": DTYPES[kind], "_type": "Value"} for name, kind in COLUMNS.items()},
            "extra": {"dtype": "string", "_type": "Value"}}
SCHEMA = pa.schema([("image", IMAGE), ("input", IMAGE), *COLUMNS.items(), ("extra", pa.string())],
                   metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})})


@dataclass(frozen=True)
class Layout:
    """The sizes of the layout: lines a part holds, files a commit carries, checkpoints kept per replica."""

    pack_rows: int = 1_000
    log_lines: int = 10_000
    commit_files: int = HUB_COMMIT_FILES
    checkpoints: int = 10

    def __post_init__(self):
        for name in ("pack_rows", "log_lines", "commit_files", "checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least 1")


def is_table(rel: str) -> bool:
    return TABLE.match(rel) is not None


def shard_of(table: str) -> str:
    """The shard (replica) that writes `table`: "adversarial/train/r1/metadata.jsonl" and "reviews/r1/..." -> "r1"."""
    return table.split("/")[2 if is_examples(table) else 1]


def is_examples(table: str) -> bool:
    return table.startswith("adversarial/")


def part_size(table: str, layout: Layout) -> int:
    return layout.pack_rows if is_examples(table) else layout.log_lines


def part_path(table: str, k: int) -> str:
    """The repo path of part `k` of `table` (a data-folder path such as "reviews/r1/reviews.jsonl")."""
    folder, name = table.rsplit("/", 1)
    if is_examples(table):
        return f"{folder}/pack-{k:05d}.parquet"
    return f"{folder}/{name.removesuffix('.jsonl')}-{k:05d}.jsonl"


def table_of_part(path: str) -> tuple[str, int] | None:
    """(table, k) for a repo path that is a part; None for any other path."""
    match = PART.match(path)
    if match is None:
        return None
    if match["examples"]:
        return f"{match['examples']}/metadata.jsonl", int(match["pack"])
    return f"{match['log']}.jsonl", int(match["part"])


@dataclass
class Sent:
    """What of one table is in the repo: its parts, each as (first line, lines) of the local file."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    offsets: tuple[int, int] | None = None  # the last part's first and end byte in the local file, once known

    @property
    def lines(self) -> int:
        return sum(self.spans[-1]) if self.spans else 0

    def next_part(self, size: int) -> tuple[int, int, int | None]:
        """(k, first line, its byte offset if known) of the part to write next: the last part again while it is
        short, else a new one."""
        if not self.spans:
            return 0, 0, 0
        known = self.offsets
        if self.spans[-1][1] < size:
            return len(self.spans) - 1, self.spans[-1][0], known[0] if known else None
        return len(self.spans), self.lines, known[1] if known else None

    def record(self, part: "Part") -> None:
        """`part` is in the repo now."""
        del self.spans[part.k:]
        self.spans.append((part.first, part.lines))
        self.offsets = (part.offset, part.end)


@dataclass(frozen=True)
class Part:
    """One part to send: its repo path, its bytes, and where it sits in its table."""

    table: str
    k: int
    first: int  # its first line
    lines: int
    offset: int  # the byte offsets of its first line and of the line after its last in the local file
    end: int
    path_in_repo: str
    payload: bytes


def parts_to_send(table: str, data_root: Path, end: int, sent: Sent, layout: Layout) -> Iterator[Part]:
    """The parts of `table` that the repo lacks or holds short, from the local file's first `end` bytes (what
    was whole when the caller looked, under the writers' lock). Built one at a time: a pack holds its images."""
    size = part_size(table, layout)
    k, first, offset = sent.next_part(size)
    with open(data_root / table, "rb") as f:
        if offset is None:
            offset = _skip_lines(f, first)
        f.seek(offset)
        while True:
            chunk, used = _read_lines(f, size, end - offset)
            if k < len(sent.spans) and len(chunk) <= sent.spans[k][1]:
                sent.offsets = (offset, offset + used)  # the short last part has not grown: nothing to send
                return
            if not chunk:
                return
            payload = pack(chunk, (data_root / table).parent, first) if is_examples(table) else b"".join(chunk)
            yield Part(table, k, first, len(chunk), offset, offset + used, part_path(table, k), payload)
            if len(chunk) < size:
                return
            k, first, offset = k + 1, first + len(chunk), offset + used


def _skip_lines(f, lines: int) -> int:
    for _ in range(lines):
        f.readline()
    return f.tell()


def _read_lines(f, count: int, limit: int) -> tuple[list[bytes], int]:
    """Up to `count` whole lines within the next `limit` bytes, and the bytes they take."""
    lines, used = [], 0
    while len(lines) < count:
        line = f.readline(max(0, limit - used))
        if not line.endswith(b"\n"):
            break  # the end of what was whole (or of the file)
        lines.append(line)
        used += len(line)
    return lines, used


# ---------------------------------------------------------------------------------------------------- packs
def pack(lines: Sequence[bytes], folder: Path, first_line: int) -> bytes:
    """A Parquet file of the examples on `lines` of `folder`'s metadata.jsonl, with both their images.

    Its schema metadata carries the lines it covers, so that a restore knows the local numbering even when a line
    that could not be read (a torn write) was left out."""
    records = []
    for number, line in enumerate(lines, start=first_line):
        try:
            row = json.loads(line)
            record = {column: {"bytes": (folder / row[key]).read_bytes(), "path": row[key]}
                      for column, key in IMAGES.items()}
        except (json.JSONDecodeError, KeyError, OSError) as err:  # a torn line, a file removed by hand
            log.warning("line %d of %s/metadata.jsonl is not a whole example, not packed: %s", number, folder, err)
            continue
        record.update({name: row.get(name) for name in COLUMNS})
        extra = {k: v for k, v in row.items() if k not in COLUMNS and k not in IMAGES.values()}
        record["extra"] = json.dumps(extra, sort_keys=True) if extra else None
        records.append(record)
    schema = SCHEMA.with_metadata({**SCHEMA.metadata,
                                   b"outwit": json.dumps({"first_line": first_line, "lines": len(lines)}).encode()})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), buffer, compression="zstd")
    return buffer.getvalue()


@dataclass(frozen=True)
class Unpacked:
    rows: list[dict]  # the metadata rows, as the store wrote them
    images: dict[str, bytes]  # path within the folder -> PNG bytes
    first_line: int
    lines: int


def pack_span(schema: pa.Schema, rows: int) -> tuple[int, int]:
    """(first line, lines) of the local metadata.jsonl that a pack covers; a pack without that note: `rows` lines."""
    span = json.loads((schema.metadata or {}).get(b"outwit", b"{}") or b"{}")
    return span.get("first_line", 0), span.get("lines", rows)


def read_span(path: Path) -> tuple[int, int]:
    """A pack file's span, from its footer alone (no image is read)."""
    metadata = pq.read_metadata(path)
    return pack_span(metadata.schema.to_arrow_schema(), metadata.num_rows)


def unpack(payload: bytes | Path) -> Unpacked:
    table = pq.read_table(payload if isinstance(payload, Path) else io.BytesIO(payload))
    rows, images = [], {}
    for record in table.to_pylist():
        row = {name: record[name] for name in COLUMNS if record.get(name) is not None}
        for column, key in IMAGES.items():
            row[key] = record[column]["path"]
            images[record[column]["path"]] = record[column]["bytes"]
        row.update(json.loads(record["extra"]) if record.get("extra") else {})
        rows.append(row)
    return Unpacked(rows, images, *pack_span(table.schema, len(rows)))


def jsonl(rows: Iterable[dict]) -> bytes:
    """Rows as the store's append_jsonl writes them."""
    return b"".join(json.dumps(row, sort_keys=True).encode() + b"\n" for row in rows)


# ---------------------------------------------------------------------------------------------------- commits
def chunked(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def checkpoints_to_drop(paths: Iterable[str], keep: int) -> list[str]:
    """The checkpoints among `paths` beyond each replica's newest `keep` (the repo's history keeps the others)."""
    by_shard: dict[str, list[tuple[int, str]]] = {}
    for path in paths:
        if match := CHECKPOINT.match(path):
            by_shard.setdefault(match["shard"], []).append((int(match["round"]), path))
    return [path for rounds in by_shard.values() for _, path in sorted(rounds)[:-keep]]
