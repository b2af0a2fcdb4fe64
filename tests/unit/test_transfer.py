"""Fooling transfer (what fooled one round's model, tried on the others) and the standard attack suite."""
import json

import torch
from torch import nn

from outwit.cli import main
from outwit.dadc.store import AdversarialStore
from outwit.dadc.transfer import Judge, folder_table, reference_judges, transfer_table
from outwit.ml import checkpoints, data
from outwit.ml.attacks import Attack, robust_accuracy
from outwit.ml.references import References
from outwit.sim.drawings import draw_sketch
from tests.paths import MODELS


class Reads(nn.Module):
    """A model that reads every input as one digit."""

    def __init__(self, digit: int):
        super().__init__()
        self.digit = digit

    def forward(self, x):
        return nn.functional.one_hot(torch.full((len(x),), self.digit), 10).float()


def add(store, drawn, label, model_round):
    return store.add(draw_sketch(drawn), label=label, guess=drawn, confidence=0.9, model_round=model_round)


def test_each_rounds_examples_are_tried_on_the_references_and_on_later_rounds_only(tmp_path):
    store = AdversarialStore(tmp_path / "adversarial")
    for _ in range(2):
        add(store, 3, 8, 0)  # a 3 saved as an "8": every model that reads it as 3 is still fooled
    add(store, 5, 5, 1)  # saved against the references alone: round 1's model read it right, so it is left out
    add(store, 4, 9, 1)
    judges = [Judge("reads 5", Reads(5)), Judge("round 1", Reads(8), 1), Judge("round 2", Reads(9), 2)]
    table = transfer_table(store, lambda row: True, judges)
    assert table == [[0, 2, "reads 5", "100.0% (2)"], [0, 2, "round 1", "0.0% (0)"], [0, 2, "round 2", "100.0% (2)"],
                     [1, 1, "reads 5", "100.0% (1)"], [1, 1, "round 2", "0.0% (0)"]]  # round 1: not on its own
    assert transfer_table(store, lambda row: row["round"] == 1, judges)[0][:2] == [1, 1]  # `keep` picks the examples


def test_the_shipped_references_are_the_blogs_network_the_cnns_and_the_vit():
    names = [j.name for j in reference_judges(References(MODELS))]
    assert names == ["blog's small network", "base CNN", "robust CNN", "ViT"]


def test_trainer_evaluate_examples_prints_the_table_of_any_data_folder(tmp_path, capsys):
    store = AdversarialStore(tmp_path / "data" / "adversarial", shard="r1")
    add(store, 3, 8, 0)
    add(store, 7, 1, 0)
    (tmp_path / "data" / "rounds" / "r1").mkdir(parents=True)
    base, meta = checkpoints.load(MODELS / "base.safetensors")
    checkpoints.save(tmp_path / "data" / "rounds" / "r1" / "round-0001.safetensors", base, meta)
    assert main(["evaluate", "--examples", str(tmp_path / "data")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["examples_used"] == 2 and printed["judges"][-1] == "round 1"
    base_row = next(r for r in printed["table"] if r["model"] == "base CNN")
    assert base_row == {"examples from round": 0, "examples": 2, "model": "base CNN", "still fooled": "100.0% (2)"}
    assert folder_table(tmp_path / "data" / "adversarial")["judges"][:4] == printed["judges"][:4]  # a bare folder


def test_autoattack_breaks_what_our_pgd_breaks_on_a_standard_cnn(mnist_sample_test):
    """At ε 0.2 a standard CNN falls to both (APGD-CE, AutoAttack's first stage, breaks all: the rest is skipped)."""
    base, _ = checkpoints.load(MODELS / "base.safetensors")
    x, y = mnist_sample_test.tensors()
    pick = data.fixed_subset(len(y), 8)
    pgd = robust_accuracy(base, x[pick], y[pick], Attack("pgd", 0.2, steps=20, step_size=0.025))
    auto = robust_accuracy(base, x[pick], y[pick], Attack("autoattack", 0.2))
    assert Attack("autoattack", 0.2).name == "autoattack@0.2"
    assert auto <= pgd
