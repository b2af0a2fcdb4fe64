"""The retrain worker: rounds every N flags, the gate, failures, and resuming after a restart."""
import json

import pytest
import torch

from outwit.dadc.history import History, RoundRecord, load_serving
from outwit.dadc.rounds import Recipe, TrainingSet
from outwit.dadc.store import AdversarialStore
from outwit.dadc.training_sets import mixed_training_set, standard_eval_sets
from outwit.dadc.worker import RetrainWorker
from outwit.ml import checkpoints, data
from outwit.ml.metrics import ADVERSARIAL, MNIST
from outwit.ml.serving import Predictor
from outwit.sim.drawings import fooling_examples
from tests.paths import MODELS

load_checkpoint = checkpoints.load

BASE = MODELS / "base.safetensors"


@pytest.fixture(scope="module")
def mnist_small():
    return data.load_sample("train"), data.load_sample("test")


class Setup:
    def __init__(self, root, mnist_small, training_set=None, every=5, **recipe):
        model, meta = load_checkpoint(BASE)
        self.root = root
        self.predictor = Predictor(model, {"round": 0})
        self.store = AdversarialStore(root / "adversarial")
        self.history = History(root / "rounds" / "local" / "rounds.jsonl", lock=self.store.lock)
        train, test = mnist_small
        self.worker = RetrainWorker(
            store=self.store, predictor=self.predictor, history=self.history,
            training_set=training_set or mixed_training_set(self.store, train, replay=1024),
            eval_sets=standard_eval_sets(self.store, test), every=every,
            # these tests are about the rounds' mechanics: a wide gate, unless a test is about the gate
            recipe=Recipe(**{"steps": 30, "gate_margin": 5.0, **recipe}))

    def flag(self, n, start=0):
        """n fooling flags, one at a time as people make them: the worker sees each before the next."""
        for drawing, digit, probs in fooling_examples(self.predictor.predict, n, start):
            self.store.add(drawing, label=digit, guess=int(probs.argmax()), confidence=float(probs.max()),
                           model_round=self.predictor.current.round)
            self.worker.notify()
            self.settle()

    def settle(self):
        assert self.worker.wait_idle(120), "the worker did not finish"


def test_a_round_starts_after_n_flags_and_its_model_is_swapped_in(tmp_path, mnist_small):
    s = Setup(tmp_path, mnist_small)
    s.worker.start()
    s.settle()
    assert [r.status for r in s.history.records] == ["base"]
    s.flag(4)
    s.settle()
    assert len(s.history.records) == 1 and s.worker.until_next_round() == 1  # four flags: no round yet
    s.flag(1, start=40)
    s.settle()
    s.worker.stop()
    record = s.history.records[-1]
    assert (record.round, record.status) == (1, "promoted")
    assert record.trained_on["adversarial"] == 4 and record.metrics.get(ADVERSARIAL).size == 1
    assert 0.9 <= record.metrics.top1(MNIST) <= 1
    assert s.predictor.current.round == 1
    assert record.checkpoint == "local/round-0001.safetensors"
    model, meta = load_checkpoint(tmp_path / "rounds" / record.checkpoint)
    assert meta.round == 1 and meta.metrics == record.metrics and meta.created == record.created
    assert meta.trained_on["adversarial"] == 4
    assert meta.recipe == record.recipe and meta.recipe["steps"] == 30 and meta.recipe["seed"] == 1  # seed + round
    status = s.worker.status()
    assert status.round == 1 and status.until_next_round == 5 and status.examples.this_round == 0
    assert [h.status for h in status.history] == ["base", "promoted"]


def test_a_failed_round_keeps_the_old_model_and_the_next_flag_retries(tmp_path, mnist_small, caplog):
    calls = []

    def flaky_training_set():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("replay data unavailable")
        return mixed_training_set(s.store, mnist_small[0], replay=1024)()

    s = Setup(tmp_path, mnist_small, training_set=flaky_training_set, every=2)
    s.worker.start()
    s.settle()
    model_before = s.predictor.current.model
    s.flag(2)
    s.settle()
    assert s.history.records[-1].status == "failed"
    assert "replay data unavailable" in s.history.records[-1].error
    assert s.predictor.current.model is model_before and s.predictor.current.round == 0
    assert "replay data unavailable" in s.worker.status().last_error
    assert "retrain round failed" in caplog.text
    s.flag(1, start=30)  # the next trigger tries again
    s.settle()
    s.worker.stop()
    assert s.history.records[-1].status == "promoted" and s.predictor.current.round > 0
    assert s.worker.status().last_error is None


def test_the_gate_refuses_a_model_that_forgets_mnist(tmp_path, mnist_small):
    def shuffled_labels():
        train = mnist_small[0]
        x, y = train.tensors()
        return TrainingSet(x, torch.randperm(10, generator=torch.Generator().manual_seed(0))[y], {"adversarial": 0})

    s = Setup(tmp_path, mnist_small, training_set=shuffled_labels, every=2, steps=40, lr=3e-3, gate_margin=1.0)
    s.worker.start()
    s.settle()
    model_before = s.predictor.current.model
    s.flag(2)
    s.settle()
    s.worker.stop()
    record = s.history.records[-1]
    assert record.status == "rejected" and record.reason.startswith("MNIST ") and " < serving " in record.reason
    assert record.metrics.top1(MNIST) < record.baseline.top1(MNIST) - 0.01
    assert record.checkpoint is None and not list((tmp_path / "rounds").rglob("*.safetensors"))
    assert s.predictor.current.model is model_before
    assert s.worker.until_next_round() == 2  # counting starts again from the rejected round


def test_a_restart_resumes_the_promoted_model_history_and_counts(tmp_path, mnist_small):
    s = Setup(tmp_path, mnist_small, every=3)
    s.worker.start()
    s.settle()
    s.flag(4)
    s.settle()
    s.worker.stop()
    promoted = s.history.records[-1]
    assert promoted.status == "promoted"

    history = History(tmp_path / "rounds" / "local" / "rounds.jsonl")
    assert history.records == s.history.records  # read back as written
    model, meta = load_serving(history, BASE)
    assert meta["round"] == promoted.round
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model(x), s.predictor.current.model(x))
    again = Setup(tmp_path, mnist_small, every=3)
    assert again.store.counts().total == 4
    assert again.worker.until_next_round() == 2
    assert [r.status for r in again.history.records] == ["base", "promoted"]


def test_a_new_replica_carries_on_from_the_newest_promoted_history(tmp_path):
    def write(shard, records):
        (tmp_path / shard).mkdir()
        (tmp_path / shard / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    base = {"round": 0, "status": "base", "flags_total": 0, "started": "2026-01-01T00:00:00+00:00"}
    write("old", [base, {"round": 1, "status": "promoted", "checkpoint": "old/round-0001.safetensors",
                         "flags_total": 10, "started": "2026-01-02T00:00:00+00:00"}])
    write("newer", [base, {"round": 1, "status": "promoted", "checkpoint": "newer/round-0001.safetensors",
                           "flags_total": 10, "started": "2026-01-03T00:00:00+00:00"},
                    {"round": 2, "status": "rejected", "flags_total": 20, "started": "2026-01-04T00:00:00+00:00"}])
    history = History(tmp_path / "mine" / "rounds.jsonl")
    assert history.adopt_latest()
    assert history.serving().checkpoint == "newer/round-0001.safetensors" and history.next_round() == 3
    assert History(tmp_path / "mine" / "rounds.jsonl").records == history.records  # written down
    assert not history.adopt_latest()  # a replica with a history of its own keeps it


def test_history_skips_a_torn_line(tmp_path):
    path = tmp_path / "rounds.jsonl"
    path.write_text(json.dumps({"round": 0, "status": "base", "flags_total": 0}) + "\n" + '{"round": 1, "sta')
    history = History(path)
    assert [r.round for r in history.records] == [0] and history.next_round() == 1


def test_a_history_written_in_the_first_layout_resumes(tmp_path):
    """rounds.jsonl files already on disks and on the Hub: flat metrics, flags_total, train_adversarial."""
    path = tmp_path / "rounds.jsonl"
    rows = [{"round": 0, "status": "base", "started": "2026-11-01T00:00:00+00:00", "seconds": 0, "flags_total": 0,
             "mnist_top1": 0.992, "mnist_dataset": "mnist-sample-5k/test", "adversarial_top1": None,
             "adversarial_size": 0},
            {"round": 1, "status": "promoted", "started": "2026-11-01T01:00:00+00:00", "flags_total": 10,
             "train_adversarial": 8, "replay": 2048, "serving_mnist_top1": 0.992, "error_rate": 0.5,
             "mnist_top1": 0.989, "mnist_dataset": "mnist-sample-5k/test", "adversarial_top1": 0.5,
             "adversarial_size": 2, "checkpoint": "r/round-0001.safetensors", "created": "2026-11-01T01:00:09+00:00",
             "seconds": 7.5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    history = History(path)
    serving = history.serving()
    assert (serving.round, serving.checkpoint, serving.examples_added) == (1, "r/round-0001.safetensors", 10)
    assert serving.metrics.top1(MNIST) == 0.989 and serving.metrics.get(ADVERSARIAL).size == 2
    assert serving.baseline.top1(MNIST) == 0.992 and serving.trained_on == {"adversarial": 8, "replay": 2048}
    assert history.added_at_last_round() == 10 and history.next_round() == 2
    history.append(RoundRecord(round=2, status="rejected", started="2026-11-02T00:00:00+00:00", examples_added=20))
    assert [r.round for r in History(path).records] == [0, 1, 2]  # the old lines and the new one, side by side


@pytest.mark.parametrize("bad", [{"every": 0}, {"gate_margin": -1}, {"steps": 0}])
def test_bad_worker_arguments_are_named(tmp_path, mnist_small, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Setup(tmp_path, mnist_small, **bad)


def test_robust_accuracy_is_measured_on_the_same_subset_every_round(tmp_path, mnist_small):
    from outwit.ml.attacks import Attack
    from outwit.ml.metrics import ROBUST
    store = AdversarialStore(tmp_path)
    build = standard_eval_sets(store, mnist_small[1], robust=Attack("pgd", 0.1, steps=3), robust_size=40)
    first, second = build(), build()
    assert set(first) == {MNIST, ADVERSARIAL, ROBUST} and len(first[ROBUST].labels) == 40
    assert torch.equal(first[ROBUST].inputs, second[ROBUST].inputs)
    assert len(set(first[ROBUST].labels.tolist())) == 10  # a random subset, not the first 40 of one digit
    assert ROBUST not in standard_eval_sets(store, mnist_small[1])()  # off unless asked for


def test_a_round_can_also_train_on_pgd_versions_of_the_adversarial_examples(tmp_path, mnist_small):
    from outwit.ml.attacks import Attack
    s = Setup(tmp_path, mnist_small)
    for drawing, digit, probs in fooling_examples(s.predictor.predict, 6):
        s.store.add(drawing, label=digit, guess=int(probs.argmax()), confidence=float(probs.max()), model_round=0)
    plain = mixed_training_set(s.store, mnist_small[0], replay=64)()
    attacked = mixed_training_set(s.store, mnist_small[0], replay=64, attack=Attack("pgd", 0.2, steps=5),
                                  serving=lambda: s.predictor.current.model)()
    n = plain.description["adversarial"]
    assert attacked.description == {**plain.description, "attacked": n, "attack": "pgd-5x1@0.2"}
    drawn_x, _ = s.store.tensors(s.store.rows("train"))
    adv_part = attacked.inputs[: len(attacked.labels) - 64].view(-1, 2 * n, 1, 28, 28)[0]  # first repeat
    clean, pgd = adv_part[:n], adv_part[n:]
    assert torch.equal(clean, drawn_x)
    assert (pgd - clean).abs().max() <= 0.2 + 1e-6 and not torch.equal(pgd, clean)
    with pytest.raises(ValueError, match="attack needs serving"):
        mixed_training_set(s.store, mnist_small[0], attack=Attack("pgd", 0.2))
