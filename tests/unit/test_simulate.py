"""The shifted pool and the DADC simulation, through the trainer's command line as a person runs them."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from outwit import cli
from outwit.ml.preprocess import preprocess
from outwit.sim import pool, simulate


def test_the_pool_is_an_imagefolder_of_legible_digits_in_both_styles(tmp_path):
    root = pool.make_pool(tmp_path / "pool", per_digit=3, seed=1)
    items = pool.load_pool(root)
    assert len(items) == 30 and sorted({d for _, d in items}) == list(range(10))
    assert {p.name.split("-")[0] for p, _ in items} == {"font", "segments"}
    for path, _ in items:
        image = np.asarray(Image.open(path))
        assert image.shape == (280, 280) and image[0, 0] == 255 and image.min() == 0  # dark ink on white
        assert preprocess(image).shape == (1, 28, 28)  # the app's preprocessing reads it
    again = pool.make_pool(tmp_path / "again", per_digit=3, seed=1)
    assert all(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
               for (a, _), (b, _) in zip(items, pool.load_pool(again)))  # seeded


def test_a_bad_pool_gets_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        pool.load_pool(tmp_path / "missing")
    (tmp_path / "empty" / "3").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        pool.load_pool(tmp_path / "empty")
    assert cli.main(["simulate", "--pool", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_the_split_is_stratified_seeded_and_disjoint(tmp_path):
    items = pool.load_pool(pool.make_pool(tmp_path / "pool", per_digit=10))
    drawn, kept = simulate.split_pool(items, 0.3, seed=0)
    assert len(kept) == 30 and all(sum(d == digit for _, d in kept) == 3 for digit in range(10))
    assert not {p for p, _ in drawn} & {p for p, _ in kept}
    assert simulate.split_pool(items, 0.3, seed=0) == (drawn, kept)


def test_simulate_flags_what_fools_the_model_and_writes_a_csv_and_a_plot(tmp_path, capsys):
    root = pool.make_pool(tmp_path / "pool", per_digit=12)
    work, out = tmp_path / "work", tmp_path / "out"
    code = cli.main(["simulate", "--pool", str(root), "--rounds", "1", "--every", "3", "--steps", "5",
                         "--data", "sample", "--work", str(work), "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    base, first = result["rounds"]
    assert base["round"] == 0 and base["attempts"] == 0 and 0 < base["pool_accuracy"] < 1
    assert first["round"] == 1 and first["status"] in ("promoted", "rejected") and first["fooled"] == 3
    assert first["attempts"] >= 3 and first["fooling_rate"] == round(3 / first["attempts"], 4)
    # the flags went through the app's store: three rows, labelled with the pool's digits, by simulated visitors
    rows = [json.loads(line) for split in ("train", "test")
            for f in (work / "adversarial" / split).glob("*/metadata.jsonl") for line in f.read_text().splitlines()]
    assert len(rows) == 3 and all(r["label"] != r["guess"] and r["user"].startswith("simulated") for r in rows)
    with open(out / "simulation.csv") as f:
        table = list(csv.DictReader(f))
    assert [int(r["round"]) for r in table] == [0, 1] and "pool_accuracy" in table[0]
    assert Image.open(out / "simulation.png").size[0] > 300
