"""A burst of deliberately mislabelled flags (real 1s saved as 7s): the gate keeps the poisoned round from being
promoted, and with votes required the poison never reaches training at all."""
import pytest

from outwit.config import Config
from outwit.dadc.collect import Fooling
from outwit.ml.metrics import MNIST
from outwit.services import start_services

POISON = 40


@pytest.fixture
def ones(mnist_sample_train):
    """Real handwritten 1s, as 28×28 images: what a poisoner would save labelled 7."""
    x, y = mnist_sample_train.tensors()
    return [(x[i, 0] * 255).round().byte().numpy() for i in (y == 1).nonzero().flatten()[:POISON].tolist()]


def poison(services, ones) -> list[str]:
    ids = []
    for i, image in enumerate(ones):
        saved = services.collector.save(Fooling(label=7, guess=1, confidence=0.99, model_round=0, drawing=image,
                                                session=f"poisoner-{i % 4}"))
        ids.append(saved.row["id"])
    return ids


def test_the_gate_rejects_a_round_trained_on_poison(tmp_path, ones):
    config = Config(data_dir=tmp_path / "data", retrain_every=POISON, mnist_data="sample", robust_eps=0)
    services = start_services(config)
    try:
        assert services.worker.wait_idle(60)
        poison(services, ones)
        assert services.worker.wait_idle(180)
        base, poisoned = services.worker.history.records[0], services.worker.history.records[-1]
        assert poisoned.round == 1 and poisoned.trained_on["adversarial"] == POISON * 4 // 5
        assert poisoned.status == "rejected" and "MNIST" in poisoned.reason
        assert poisoned.metrics.get(MNIST).top1 < base.metrics.get(MNIST).top1 - config.gate_margin / 100  # it did harm
        assert services.predictor.current.round == 0 and services.worker.status().round == 0
    finally:
        services.stop()


def test_with_votes_required_the_poison_is_voted_out_and_never_trained_on(tmp_path, ones):
    config = Config(data_dir=tmp_path / "data", retrain_every=10, mnist_data="sample", robust_eps=0,
                    votes_required=2)
    services = start_services(config)
    reviews, worker = services.reviews, services.worker
    try:
        assert worker.wait_idle(60)
        for example_id in poison(services, ones):
            for voter in ("validator-a", "validator-b"):
                reviews.vote(example_id, "incorrect", session=voter, digit=1)
        assert worker.wait_idle(60)
        assert reviews.counts()["rejected"] == POISON and reviews.validated_ever() == 0
        assert worker.until_next_round() == 10 and len(worker.history.records) == 1  # no round was triggered

        from outwit.sim.drawings import fooling_examples
        honest = []
        for drawing, digit, probs in fooling_examples(services.predictor.predict, 10):
            example = Fooling(label=digit, guess=int(probs.argmax()), confidence=0.9, model_round=0, drawing=drawing,
                              session="honest")
            honest.append(services.collector.save(example).row)
        for row in honest:
            for voter in ("validator-a", "validator-b"):
                reviews.vote(row["id"], "correct", session=voter)
            worker.notify()
        assert worker.wait_idle(180)
        ran = worker.history.records[-1]
        assert ran.round == 1 and ran.trained_on["adversarial"] == len([r for r in honest if r["split"] == "train"])
    finally:
        services.stop()
