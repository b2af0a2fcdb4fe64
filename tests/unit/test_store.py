"""The store of adversarial examples: layout, durability, splits, counts, and loading with `datasets`."""
import json
import logging
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from outwit.dadc import store as store_module
from outwit.dadc.identity import hash_session
from outwit.dadc.store import AdversarialStore
from outwit.ml.preprocess import EmptyDrawingError, preprocess
from outwit.sim.drawings import draw_sketch, rotated_sketch


def add(store, digit=3, label=8, **kw):
    return store.add(draw_sketch(digit), label=label, guess=digit, confidence=0.9, model_round=0, **kw)


def test_an_example_is_two_pngs_and_one_metadata_row(tmp_path):
    store = AdversarialStore(tmp_path)
    row = add(store, session="session-abc")
    folder = tmp_path / "train" / "local"
    drawn = np.asarray(Image.open(folder / row["file_name"]))
    model_input = np.asarray(Image.open(folder / row["input_file_name"]))
    assert drawn.shape == (280, 280) and drawn[0, 0] == 255 and drawn.min() == 0  # dark ink on white, as drawn
    assert model_input.shape == (28, 28)
    assert np.abs(model_input / 255 - preprocess(draw_sketch(3))[0].numpy()).max() <= 1 / 255
    # the stored drawing is a faithful copy: preprocessing it again gives the stored model input
    assert np.abs(preprocess(drawn)[0].numpy() - model_input / 255).max() < 0.02
    [stored] = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert stored == row
    assert {"id", "seq", "file_name", "label", "guess", "confidence", "round", "split", "created", "session",
            "user", "shard"} <= set(row)
    assert (row["label"], row["guess"], row["split"], row["seq"], row["user"]) == (8, 3, "train", 0, "")
    assert "session-abc" not in (folder / "metadata.jsonl").read_text()  # only a hash of the session is kept
    assert row["session"] and len(row["session"]) == 16


def test_one_in_five_is_held_out_and_counts_add_up(tmp_path):
    store = AdversarialStore(tmp_path, holdout_every=5)
    splits = [add(store, label=d % 10)["split"] for d in range(12)]
    assert splits == ["train"] * 4 + ["test"] + ["train"] * 4 + ["test"] + ["train"] * 2
    counts = store.counts()
    assert (counts.added, counts.total, counts.train, counts.test) == (12, 12, 10, 2)
    assert counts.per_digit == {d: (2 if d < 2 else 1) for d in range(10)}
    assert [row["seq"] for row in store.rows()] == list(range(12))


def test_the_split_follows_each_row_s_addition_number_not_the_rows_in_use(tmp_path):
    """A row marked later (retracted, voted incorrect) must not move which of the next examples is held out."""
    store = AdversarialStore(tmp_path, holdout_every=5)
    for d in range(3):
        add(store, label=d)
    metadata = tmp_path / "train" / "local" / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows[1:]))  # an early row is no longer read
    again = AdversarialStore(tmp_path, holdout_every=5)
    assert again.own_rows == 3  # the next addition is the fourth, whatever is in use
    assert [add(again)["split"] for _ in range(2)] == ["train", "test"]
    assert [r["seq"] for r in again.rows()] == [1, 2, 3, 4]


def test_a_user_name_is_kept_apart_from_the_session_hash(tmp_path):
    store = AdversarialStore(tmp_path)
    add(store, digit=1, label=7, session="session-xyz", user="  Ada   Lovelace ")
    add(store, digit=1, label=7, session=None, user="ada")
    first, second = store.rows()
    assert first["user"] == "Ada Lovelace" and first["session"] == hash_session("session-xyz")
    assert second["user"] == "ada" and second["session"] == ""  # a name is not a session
    for bad in ("x" * 41, "bell\x07"):
        with pytest.raises(ValueError, match="user="):
            add(store, user=bad)
    assert store.counts().total == 2


def test_a_reopened_store_has_every_example_and_continues_the_split(tmp_path):
    store = AdversarialStore(tmp_path)
    ids = [add(store)["id"] for _ in range(4)]
    again = AdversarialStore(tmp_path)
    assert [r["id"] for r in again.rows()] == ids
    assert add(again)["split"] == "test"  # the fifth, as if nothing had restarted
    x, y = again.tensors(again.rows("train"))
    assert x.shape == (4, 1, 28, 28) and y.tolist() == [8] * 4


def test_bad_input_changes_nothing(tmp_path):
    store = AdversarialStore(tmp_path)
    with pytest.raises(EmptyDrawingError):
        store.add(draw_sketch(1) | {"layers": [np.zeros((280, 280, 4), np.uint8)]}, label=2, guess=1,
                  confidence=0.5, model_round=0)
    with pytest.raises(ValueError, match="label=12"):
        store.add(draw_sketch(1), label=12, guess=1, confidence=0.5, model_round=0)
    assert store.counts().total == 0 and not any(tmp_path.rglob("*.png"))


def test_a_failed_image_write_leaves_no_row(tmp_path, monkeypatch):
    store = AdversarialStore(tmp_path)

    def disk_full(path, image):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_write_png", disk_full)
    with pytest.raises(OSError):
        add(store)
    assert store.counts().total == 0
    assert not (tmp_path / "train" / "local" / "metadata.jsonl").exists()


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    store = AdversarialStore(tmp_path)
    add(store)
    add(store)
    with open(tmp_path / "train" / "local" / "metadata.jsonl", "a") as f:
        f.write('{"id": "cut-sh')  # the process died mid-append
    with caplog.at_level(logging.WARNING, logger="outwit.storage"):
        again = AdversarialStore(tmp_path)
    assert again.counts().total == 2
    assert "line 3" in caplog.text
    add(again)  # the next example after the restart is not swallowed by the torn line
    assert AdversarialStore(tmp_path).counts().total == 3


def test_concurrent_flags_are_all_kept(tmp_path):
    store = AdversarialStore(tmp_path)
    drawing = draw_sketch(5)

    def flag_many():
        for _ in range(10):
            store.add(drawing, label=6, guess=5, confidence=0.7, model_round=0)

    threads = [threading.Thread(target=flag_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = AdversarialStore(tmp_path)
    assert again.counts().total == store.counts().total == 40
    assert len({r["id"] for r in again.rows()}) == 40
    assert (again.counts().train, again.counts().test) == (32, 8)


def test_shards_of_other_writers_are_read_but_never_written(tmp_path):
    AdversarialStore(tmp_path, shard="replica-a").add(rotated_sketch(2, 60), label=2, guess=7, confidence=0.6,
                                                      model_round=1)
    store = AdversarialStore(tmp_path, shard="replica-b")
    add(store)
    assert store.counts().total == 2
    assert len((tmp_path / "train" / "replica-a" / "metadata.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("bad", [{"shard": "../x"}, {"shard": ""}, {"holdout_every": 1}])
def test_bad_store_arguments_are_named(tmp_path, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        AdversarialStore(tmp_path, **bad)


def test_datasets_loads_it_as_an_imagefolder_with_labels_and_splits(tmp_path):
    import datasets
    store = AdversarialStore(tmp_path / "adv")
    for i in range(6):
        store.add(rotated_sketch(i, 45), label=i, guess=(i + 1) % 10, confidence=0.8, model_round=0)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "adv"), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (5, 1)
    assert sorted(loaded["train"]["label"]) == [0, 1, 2, 3, 5] and loaded["test"]["label"] == [4]
    example = loaded["test"][0]
    assert example["image"].size == (280, 280) and example["input"].size == (28, 28)
    assert example["guess"] == 5 and example["split"] == "test"


def test_a_machine_adversary_s_input_is_kept_exactly_beside_the_drawings(tmp_path):
    import datasets
    store = AdversarialStore(tmp_path / "adv", holdout_every=2)
    drawn = add(store, digit=3, label=8)
    attacked = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    row = store.add_input(attacked, source="pgd-40x1@0.1", label=4, guess=9, confidence=0.8, model_round=1,
                          session="s", user="ada")  # named, while the first split's first row has no name
    assert (drawn["source"], row["source"], row["split"], row["user"]) == ("drawn", "pgd-40x1@0.1", "test", "ada")
    assert np.array_equal(np.asarray(Image.open(store.path_of(row, "input_file_name"))), attacked)  # bit for bit
    inputs, labels = store.tensors([row])
    assert torch.equal(inputs[0, 0], torch.from_numpy(attacked).float() / 255) and labels.tolist() == [4]
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "adv"), cache_dir=str(tmp_path / "cache"))
    assert loaded["test"][0]["source"] == "pgd-40x1@0.1" and loaded["test"][0]["input"].size == (28, 28)
    assert loaded["train"][0]["source"] == "drawn"


@pytest.mark.parametrize("kwargs, message", [
    ({"model_input": np.zeros((28, 28), np.float32)}, "uint8"), ({"model_input": np.zeros((20, 20), np.uint8)}, "28"),
    ({"label": 10}, "label=10"), ({"label": "seven"}, "label='seven'"), ({"source": ""}, "source"),
    ({"source": "drawn"}, "source"), ({"user": "x" * 41}, "user")])
def test_a_bad_machine_example_is_refused_and_nothing_is_written(tmp_path, kwargs, message):
    store = AdversarialStore(tmp_path)
    args = {"model_input": np.zeros((28, 28), np.uint8), "source": "fgsm@0.1", "label": 3, "guess": 5,
            "confidence": 0.5, "model_round": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        store.add_input(args.pop("model_input"), **args)
    assert store.counts().added == 0 and not any(tmp_path.rglob("*.png"))
