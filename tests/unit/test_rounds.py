"""run_round: one round as a plain function call, with no worker, thread, file or HTTP."""
import threading

import pytest
import torch

from outwit.dadc.rounds import EvalSet, Recipe, TrainingSet, decide, evaluate_sets, run_round
from outwit.ml import data
from outwit.ml.metrics import ADVERSARIAL, MNIST, Accuracy, Metrics
from outwit.ml.preprocess import preprocess
from outwit.sim.drawings import rotated_sketch


def turned(angles) -> tuple[torch.Tensor, torch.Tensor]:
    """Turned digits (a shift the base model has not seen): model inputs and labels."""
    drawings = [(rotated_sketch(d, a), d) for a in angles for d in range(10)]
    return torch.stack([preprocess(x) for x, _ in drawings]), torch.tensor([d for _, d in drawings])


@pytest.fixture(scope="module")
def sets():
    """Turned digits to train and judge on, and the MNIST sample."""
    train_x, train_y = turned([-75, 75, -60, 60])
    test_x, test_y = turned([-70, 70])
    mnist_train, mnist_test = data.load_sample("train"), data.load_sample("test")
    replay_x, replay_y = mnist_train.tensors()
    training = TrainingSet(torch.cat([train_x.repeat(8, 1, 1, 1), replay_x[:640]]),
                           torch.cat([train_y.repeat(8), replay_y[:640]]), {"adversarial": 40, "replay": 640})
    return training, {MNIST: EvalSet.of(mnist_test), ADVERSARIAL: EvalSet("turned/test", test_x, test_y)}


def test_a_round_trains_a_copy_measures_it_and_decides(base, sets):
    training, eval_sets = sets
    before = {k: v.clone() for k, v in base.state_dict().items()}
    threads = set(threading.enumerate())
    result = run_round(base, training, eval_sets, Recipe(steps=60, lr=1e-3, gate_margin=1.0))
    assert set(threading.enumerate()) <= threads  # nothing left running: a plain call (others' threads may end)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # the serving model is untouched
    assert result.model is not base and not result.model.training and result.steps == 60
    adversarial = result.metrics.get(ADVERSARIAL)
    assert (adversarial.dataset, adversarial.size) == ("turned/test", 20)
    assert adversarial.top1 >= evaluate_sets(base, eval_sets).top1(ADVERSARIAL) + 0.2  # the round helped
    assert result.baseline.top1(MNIST) >= 0.99 and result.metrics.get(MNIST).dataset == "mnist-sample-5k/test"
    assert result.promoted == (result.metrics.top1(MNIST) >= result.baseline.top1(MNIST) - 0.01)
    assert result.trained_on == {"adversarial": 40, "replay": 640} and result.recipe.steps == 60


def test_the_same_recipe_gives_the_same_model(base, sets):
    training, eval_sets = sets
    first, again = (run_round(base, training, eval_sets, Recipe(steps=5, seed=7)) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    other = run_round(base, training, eval_sets, Recipe(steps=5, seed=8))
    assert not all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                     other.model.state_dict().values()))


def test_a_recorded_baseline_is_used_only_for_the_same_data_set(base, sets):
    training, eval_sets = sets
    recorded = Metrics({MNIST: Accuracy("mnist-sample-5k/test", 1000, 0.5)})
    assert run_round(base, training, eval_sets, Recipe(steps=1), baseline=recorded).baseline.top1(MNIST) == 0.5
    elsewhere = Metrics({MNIST: Accuracy("mnist/test", 10000, 0.5)})
    measured = run_round(base, training, eval_sets, Recipe(steps=1), baseline=elsewhere).baseline
    assert measured.top1(MNIST) >= 0.99 and measured.get(MNIST).dataset == "mnist-sample-5k/test"


def test_the_gate_in_words():
    serving = Metrics({MNIST: Accuracy("m", 1000, 0.99)})
    assert decide(Metrics({MNIST: Accuracy("m", 1000, 0.979)}), serving, 1.0) == (
        False, "MNIST 97.9% < serving 99.0% - 1 points")
    assert decide(Metrics({MNIST: Accuracy("m", 1000, 0.98)}), serving, 1.0)[0]  # exactly at the margin: promoted
    assert decide(Metrics({MNIST: Accuracy("m", 1000, 0.995)}), serving, 0.0)[0]


def test_bad_rounds_are_refused_before_any_training(base, sets):
    training, eval_sets = sets
    with pytest.raises(ValueError, match="must include 'mnist'"):
        run_round(base, training, {ADVERSARIAL: eval_sets[ADVERSARIAL]}, Recipe())
    empty = TrainingSet(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="training_set is empty"):
        run_round(base, empty, eval_sets, Recipe())
    for bad in ({"steps": 0}, {"lr": 0}, {"batch_size": 0}, {"gate_margin": 101}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Recipe(**bad)


def test_an_eval_set_with_an_attack_measures_robust_accuracy_and_names_the_attack(base, sets):
    from outwit.ml.attacks import Attack
    mnist = sets[1][MNIST]
    weak, strong = (EvalSet("mnist-sample-5k/test, 30 images", mnist.inputs[:30], mnist.labels[:30],
                            Attack("pgd", eps, steps=10, step_size=eps / 4)) for eps in (0.01, 0.3))
    metrics = evaluate_sets(base, {MNIST: EvalSet("first 30", mnist.inputs[:30], mnist.labels[:30]), "weak": weak,
                                   "strong": strong})
    assert metrics.get("strong").dataset == "mnist-sample-5k/test, 30 images under pgd-10x1@0.3"
    assert metrics.get("strong").size == 30 and metrics.top1("strong") == 0.0  # a standard CNN at 0.3
    assert metrics.top1(MNIST) >= metrics.top1("weak") > metrics.top1("strong")
