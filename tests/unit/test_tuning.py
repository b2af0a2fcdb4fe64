"""The fast round: only the layers above a fixed trunk are trained, over trunk features cached across rounds."""
import pytest
import torch

from model import build_model
from outwit.config import Config, ConfigError
from outwit.dadc.rounds import EvalSet, Recipe, Replay, TrainingSet, evaluate_sets, run_round
from outwit.ml import data
from outwit.ml.metrics import ADVERSARIAL, MNIST
from outwit.ml.tuning import TrunkCache, trunk_features
from tests.unit.test_rounds import turned


@pytest.fixture(scope="module")
def sets():
    """Turned digits to learn and to judge on, with MNIST replay named as a fixed set."""
    train_x, train_y = turned([-75, 75])
    test_x, test_y = turned([-70, 70])
    mnist_train, mnist_test = data.load_sample("train"), data.load_sample("test")
    images, labels = mnist_train.tensors()
    pick = torch.arange(0, 4000, 4)  # 1,000 replayed images
    training = TrainingSet(torch.cat([train_x.repeat(16, 1, 1, 1), images[pick]]),
                           torch.cat([train_y.repeat(16), labels[pick]]), {"adversarial": 20, "replay": 1000},
                           replay=Replay(mnist_train.name, images, pick))
    return training, {MNIST: EvalSet.of(mnist_test), ADVERSARIAL: EvalSet("turned/test", test_x, test_y)}


def test_the_cnn_is_its_upper_layers_over_its_trunk(base):
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(base.eval()(x), base.upper(base.trunk(x)), atol=1e-5)


def test_an_upper_round_keeps_the_trunk_and_learns_the_examples(base, sets):
    training, eval_sets = sets
    trunk_before = {k: v.clone() for k, v in base.features[: base.TRUNK].state_dict().items()}
    result = run_round(base, training, eval_sets, Recipe(steps=80, tune="upper"))
    assert result.recipe.tune == "upper" and result.recipe.learning_rate == 3e-3 and result.steps == 80
    for name, tensor in result.model.features[: base.TRUNK].state_dict().items():
        assert torch.equal(tensor, trunk_before[name]), name  # weights and BatchNorm statistics alike
    assert any(not torch.equal(a, b) for a, b in zip(result.model.head.parameters(), base.head.parameters()))
    with torch.no_grad():
        unique, labels = training.inputs[:20], training.labels[:20]
        learnt = (result.model(unique).argmax(dim=1) == labels).float().mean()
        assert learnt >= 0.9 and learnt > (base(unique).argmax(dim=1) == labels).float().mean() + 0.3
    base_metrics = evaluate_sets(base, eval_sets)
    assert result.metrics.top1(ADVERSARIAL) > base_metrics.top1(ADVERSARIAL) + 0.2  # held-out turned digits
    assert result.promoted and result.metrics.top1(MNIST) >= base_metrics.top1(MNIST) - 0.01


def test_cached_features_are_the_trunks_own_and_follow_its_weights(base, sets):
    _, eval_sets = sets
    mnist = eval_sets[MNIST]
    cache = TrunkCache()
    first = cache.features(base, mnist.dataset, mnist.inputs)
    assert torch.equal(first, trunk_features(base, mnist.inputs))
    assert cache.features(base, mnist.dataset, mnist.inputs) is first  # computed once
    assert evaluate_sets(base, {MNIST: mnist}, cache) == evaluate_sets(base, {MNIST: mnist})
    changed = build_model("cnn")  # another trunk: its own features, never the cached ones
    assert not torch.equal(cache.features(changed, mnist.dataset, mnist.inputs), first)


def test_without_a_trunk_or_a_named_replay_every_layer_is_trained_and_the_recipe_says_so(base, sets):
    training, eval_sets = sets
    vit = build_model("vit")
    assert run_round(vit, training, eval_sets, Recipe(steps=2, tune="upper")).recipe.tune == "all"
    unnamed = TrainingSet(training.inputs, training.labels, training.description)
    assert run_round(base, unnamed, eval_sets, Recipe(steps=2, tune="upper")).recipe.tune == "all"


def test_round_tune_is_checked_at_start():
    assert Config.from_env({"ROUND_TUNE": "all"}).round_tune == "all"
    with pytest.raises(ConfigError, match="ROUND_TUNE='some' must be one of upper, all"):
        Config.from_env({"ROUND_TUNE": "some"})
    with pytest.raises(ValueError, match="tune='some'"):
        Recipe(tune="some")
