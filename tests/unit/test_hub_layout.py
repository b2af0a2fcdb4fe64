"""The dataset repo's layout at scale: the Hub's limits on entries per folder, files per repo and files per commit,
checked over a million examples, a real push of twelve thousand, growth, and a repo of the old loose layout."""
import io
import json
import uuid
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from outwit.config import Config, Secret
from outwit.dadc.store import AdversarialStore
from outwit.hub.layout import HUB_COMMIT_FILES, HUB_FOLDER_ENTRIES, HUB_REPO_FILES, Layout, part_path, part_size, unpack
from outwit.hub.restore import restore_dataset
from outwit.hub.sync import HubLink
from outwit.sim.drawings import rotated_sketch
from outwit.sim.hub_server import REPO, TOKEN, FakeHub, api_for
from outwit.storage import append_jsonl


def folder_entries(paths) -> Counter:
    """Entries (files and subfolders) per folder of a repo holding `paths`."""
    entries = {(str(parent), child) for path in paths for parent, child in _steps(PurePosixPath(path))}
    return Counter(parent for parent, _ in entries)


def _steps(path: PurePosixPath):
    for i in range(len(path.parts)):
        yield PurePosixPath(*path.parts[:i]) if i else PurePosixPath("."), path.parts[i]


def repo_paths(tables: dict[str, int], layout: Layout) -> list[str]:
    """The parts a table of n lines becomes: what the sync writes for it (the push tests below check the sync
    writes exactly these)."""
    return [part_path(table, k) for table, lines in tables.items()
            for k in range(-(-lines // part_size(table, layout)))]


@pytest.mark.parametrize("replicas", [1, 1_000])
def test_a_million_examples_fit_the_hubs_limits(replicas):
    """A million examples, two million review events and a hundred thousand rounds, from one replica or spread
    over a thousand (a Space restarted a thousand times), with each replica's newest checkpoints."""
    layout, tables, checkpoints = Layout(), {}, []
    for r in range(replicas):
        shard, examples = f"replica-{r:04d}", 1_000_000 // replicas
        tables[f"adversarial/train/{shard}/metadata.jsonl"] = examples * 4 // 5
        tables[f"adversarial/test/{shard}/metadata.jsonl"] = examples // 5
        tables[f"reviews/{shard}/reviews.jsonl"] = 2 * examples
        tables[f"rounds/{shard}/rounds.jsonl"] = examples // 10
        checkpoints += [f"rounds/{shard}/round-{n:04d}.safetensors" for n in range(layout.checkpoints)]
    paths = repo_paths(tables, layout) + checkpoints + ["README.md"]
    assert len(paths) == len(set(paths)) < HUB_REPO_FILES
    assert max(folder_entries(paths).values()) < HUB_FOLDER_ENTRIES
    # the loose layout it replaces: two PNGs an example in one folder per replica
    loose = [f"adversarial/train/replica-0000/images/{n}.png" for n in range(800_000 // replicas)]
    assert replicas > 1 or max(folder_entries(loose).values()) >= HUB_FOLDER_ENTRIES


# ---------------------------------------------------------------------------------------------------- real pushes
def png(n: int) -> bytes:
    """A small image that differs for each n."""
    image = Image.new("L", (28, 28))
    image.putdata([(n >> (i % 16) & 1) * 255 for i in range(28 * 28)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_examples(root: Path, shard: str, count: int, start: int = 0) -> None:
    """Examples in the store's on-disk layout, written directly (the store's fsync per file would take minutes)."""
    for seq in range(start, start + count):
        split = "test" if seq % 5 == 4 else "train"
        folder, example_id = root / "adversarial" / split / shard, uuid.uuid4().hex
        row = {"id": example_id, "seq": seq, "file_name": f"images/{example_id}.png",
               "input_file_name": f"inputs/{example_id}.png", "label": seq % 10, "guess": (seq + 1) % 10,
               "confidence": 0.5, "round": 0, "source": "drawn", "session": "", "user": "", "split": split,
               "created": f"2026-11-23T00:00:00.{seq:06d}+00:00", "shard": shard}
        for key in ("file_name", "input_file_name"):
            (folder / row[key]).parent.mkdir(parents=True, exist_ok=True)
            (folder / row[key]).write_bytes(png(seq))
        with open(folder / "metadata.jsonl", "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def start_link(server: FakeHub, root: Path, shard: str, layout: Layout, keep=set,
               restored=None) -> tuple[AdversarialStore, HubLink]:
    config = Config(hf_token=Secret(TOKEN), dataset_repo=REPO, sync_every=60, hub_endpoint=server.endpoint,
                    replica=shard, data_dir=root)
    store = AdversarialStore(config.store_dir, shard=shard)
    link = HubLink(config=config, store=store, api=api_for(server), layout=layout, keep=keep,
                   restored=restored).start()
    assert link.wait_ready(30), link.status()
    link.sync.trigger().result(60)
    return store, link


def push(link: HubLink) -> None:
    link.sync.store.refresh()  # the examples were written behind the store's back
    link.sync.trigger().result(120)


def test_twelve_thousand_examples_go_up_in_packs_within_the_limits_and_load_with_datasets(hub, tmp_path):
    import datasets

    write_examples(tmp_path / "a", "replica-a", 12_000)
    store, link = start_link(hub, tmp_path / "a", "replica-a", Layout(pack_rows=100))
    push(link)
    link.stop(final_push=False)
    files, commits = hub.repo(REPO).files, hub.repo(REPO).commits
    assert max(len(c["added"]) for c in commits) <= HUB_COMMIT_FILES
    assert max(folder_entries(files).values()) < HUB_FOLDER_ENTRIES  # loose, train would hold 19,200 images
    packs = sorted(p for p in files if p.endswith(".parquet"))
    assert packs == sorted(repo_paths({"adversarial/train/replica-a/metadata.jsonl": 9_600,
                                       "adversarial/test/replica-a/metadata.jsonl": 2_400}, Layout(pack_rows=100)))
    assert not [p for p in files if p.endswith(".png")]
    # what a person downloads loads with datasets, by the card's configs
    folder = tmp_path / "download"
    for path, payload in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(payload)
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))  # not an earlier run's
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (9_600, 2_400)
    by_id = {row["id"]: row for row in store.rows()}
    for example in loaded["test"].select(range(0, 2_400, 599)):
        row = by_id[example["id"]]
        assert example["label"] == row["label"] and example["input"].size == (28, 28)
        assert example["image"].tobytes() == Image.open(store.path_of(row)).tobytes()
    # and a fresh replica restores every example, images and all
    fresh = AdversarialStore(tmp_path / "fresh" / "adversarial", shard="reader")
    _, reader = start_link(hub, tmp_path / "fresh", "reader", Layout(pack_rows=100))
    fresh.refresh()
    assert sorted(r["id"] for r in fresh.rows()) == sorted(by_id)
    for row in fresh.rows()[::997]:
        assert fresh.path_of(row).read_bytes() == store.path_of(row).read_bytes()
    reader.stop(final_push=False)


def test_a_full_pack_is_sent_once_and_only_the_growing_one_again(hub, tmp_path):
    write_examples(tmp_path, "replica-a", 10)  # 8 train: packs of 4 and 4; 2 test: a short pack
    store, link = start_link(hub, tmp_path, "replica-a", Layout(pack_rows=4))
    for count, start in ((3, 10), (9, 13)):
        write_examples(tmp_path, "replica-a", count, start)
        push(link)
    commits = len(hub.repo(REPO).commits)
    push(link)
    assert len(hub.repo(REPO).commits) == commits  # nothing new: nothing sent
    link.stop(final_push=False)
    sent = Counter(p for c in hub.repo(REPO).commits for p in c["added"] if p.endswith(".parquet"))
    assert sent["adversarial/train/replica-a/pack-00000.parquet"] == 1
    assert sent["adversarial/train/replica-a/pack-00001.parquet"] == 1
    assert sent["adversarial/test/replica-a/pack-00000.parquet"] == 2  # 2 rows, then 4: full
    on_hub = [row["seq"] for p, b in sorted(hub.repo(REPO).files.items()) if p.endswith(".parquet")
              for row in unpack(b).rows]
    assert sorted(on_hub) == list(range(22))  # each example once


def test_a_torn_line_neither_shifts_nor_loses_a_pack_across_restarts(hub, tmp_path):
    write_examples(tmp_path / "a", "replica-a", 5)
    metadata = tmp_path / "a" / "adversarial" / "train" / "replica-a" / "metadata.jsonl"
    with open(metadata, "a") as f:
        f.write('{"id": "cut-sh')  # a crash mid-append; the next append ends the line first
    store, link = start_link(hub, tmp_path / "a", "replica-a", Layout(pack_rows=3))
    store.add(rotated_sketch(3, 30), label=3, guess=5, confidence=0.6, model_round=0)  # seq 5: train
    push(link)
    link.stop(final_push=False)
    # the same disk restarts (local kept), and a fresh one (rebuilt from the packs): both go on adding
    for root, shard in ((tmp_path / "a", "replica-a"), (tmp_path / "b", "replica-b")):
        store, link = start_link(hub, root, shard, Layout(pack_rows=3))
        if shard == "replica-a":
            store.add(rotated_sketch(4, 30), label=4, guess=1, confidence=0.6, model_round=0)  # seq 6: train
        else:
            write_examples(root, "replica-a", 2, start=7)  # as if replica-a's own rows arrived here
        push(link)
        link.stop(final_push=False)
    on_hub = Counter(row["seq"] for p, b in hub.repo(REPO).files.items() if "/train/replica-a/" in p
                     for row in unpack(b).rows)
    assert on_hub == {seq: 1 for seq in (0, 1, 2, 3, 5, 6, 7, 8)}


def test_an_old_loose_repo_is_restored_then_moved_into_packs(hub, tmp_path):
    old = tmp_path / "old"
    write_examples(old, "gone-replica", 30)
    append_jsonl(old / "reviews" / "gone-replica" / "reviews.jsonl", {"id": "v1", "kind": "vote", "created": "x"})
    append_jsonl(old / "rounds" / "gone-replica" / "rounds.jsonl", {"round": 0, "status": "base"})
    for n in range(1, 14):
        (old / "rounds" / "gone-replica" / f"round-{n:04d}.safetensors").write_bytes(b"weights %d" % n)
    api = api_for(hub)
    api.create_repo(REPO, repo_type="dataset")
    api.upload_folder(repo_id=REPO, repo_type="dataset", folder_path=old)  # as the sync of before wrote it
    keep = {"rounds/gone-replica/round-0002.safetensors"}  # say, the round that serves
    early = restore_dataset(api, REPO, tmp_path / "late")  # a second replica, started before the move
    store, link = start_link(hub, tmp_path / "new", "replica-b", Layout(pack_rows=8), keep=lambda: keep)
    assert store.counts().total == 30  # restored from the loose files
    files = hub.repo(REPO).files
    assert not [p for p in files if p.endswith(".png") or p.endswith("metadata.jsonl")]
    assert "reviews/gone-replica/reviews.jsonl" not in files and "reviews/gone-replica/reviews-00000.jsonl" in files
    assert sorted(row["seq"] for p, b in files.items() if p.endswith(".parquet") for row in unpack(b).rows) \
        == list(range(30))
    checkpoints = sorted(p for p in files if p.endswith(".safetensors"))
    assert checkpoints == sorted(keep | {f"rounds/gone-replica/round-{n:04d}.safetensors" for n in range(4, 14)})
    link.stop(final_push=False)
    # the second replica moves the same tables and finds the loose copies gone: no error, nothing lost
    _, late = start_link(hub, tmp_path / "late", "replica-c", Layout(pack_rows=8), keep=lambda: keep,
                         restored=early)
    assert late.status().last_error is None and late.sync.on_hub.legacy == {}
    assert sorted(row["seq"] for p, b in hub.repo(REPO).files.items() if p.endswith(".parquet")
                  for row in unpack(b).rows) == list(range(30))
    late.stop(final_push=False)


def test_packs_with_the_new_fields_load_beside_old_ones_and_restore_them(hub, tmp_path):
    """An old replica's examples (no identity, target, strokes or judged_by) and a new one's go up; what a person
    downloads loads with `datasets` (the new fields in `extra`), and a fresh replica gets each row back with them."""
    import datasets

    write_examples(tmp_path / "old", "old", 10)
    _, old_link = start_link(hub, tmp_path / "old", "old", Layout(pack_rows=100))
    old_link.stop(final_push=False)
    new = AdversarialStore(tmp_path / "new" / "adversarial", shard="new")
    strokes = json.dumps([[[10, 20], [30, 40], [0, 16]]])
    judged = json.dumps([{"model": "serving", "guess": 3, "confidence": 0.9, "round": 0},
                         {"model": "vit", "guess": 3, "confidence": 0.7}])
    row = new.add(rotated_sketch(3, 0), label=8, guess=3, confidence=0.9, model_round=0, session="hf:ada", user="ada",
                  identity="signed-in", target=3, strokes=strokes, judged_by=judged)
    _, new_link = start_link(hub, tmp_path / "new", "new", Layout(pack_rows=100))
    new_link.stop(final_push=False)
    folder = tmp_path / "download"
    for path, payload in hub.repo(REPO).files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(payload)
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows + loaded["test"].num_rows == 11
    mine = next(r for split in loaded.values() for r in split if r["id"] == row["id"])
    assert json.loads(mine["extra"]) == {"identity": "signed-in", "target": 3, "strokes": strokes, "judged_by": judged}
    fresh = AdversarialStore(tmp_path / "fresh" / "adversarial", shard="reader")
    start_link(hub, tmp_path / "fresh", "reader", Layout(pack_rows=100))[1].stop(final_push=False)
    fresh.refresh()
    back = fresh.row(row["id"])
    assert (back["identity"], back["target"], back["strokes"], back["judged_by"]) == ("signed-in", 3, strokes, judged)
    assert all("target" not in r for r in fresh.rows() if r["shard"] == "old")  # old rows read as they were
