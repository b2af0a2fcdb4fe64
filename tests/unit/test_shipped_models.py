"""The checkpoints shipped in models/: accurate on the test split, and right about digits a person draws."""
import json
import shutil

import pytest
import torch

from outwit.hub.cards import model_card
from outwit.ml import checkpoints
from outwit.ml.attacks import Attack, robust_accuracy
from outwit.ml.metrics import MNIST, ROBUST, SUITE, percent
from outwit.ml.serving import Predictor
from outwit.ml.training import evaluate
from outwit.sim.drawings import draw_sketch
from tests.paths import MODELS

load_checkpoint, read_meta = checkpoints.load, checkpoints.read_meta



@pytest.fixture(scope="module")
def base():
    return load_checkpoint(MODELS / "base.safetensors")


ARCHS = {"base": "cnn", "seed": "seed", "vit": "vit", "robust": "cnn"}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_shipped_models_describe_themselves_in_the_current_format(name):
    payload = (MODELS / f"{name}.safetensors").read_bytes()
    assert checkpoints._read_header(payload)["format"] == checkpoints.CHECKPOINT_FORMAT
    meta = checkpoints.meta_from_bytes(payload)
    assert meta.arch == ARCHS[name] and meta.round == 0
    assert meta.trained_on["mnist"] == "mnist-sample-5k/train" and meta.recipe["seed"] == 0
    mnist = meta.metrics.get(MNIST)
    assert (mnist.dataset, mnist.size) == ("mnist-sample-5k/test", 1000) and 0.9 < mnist.top1 <= mnist.top5


def test_the_model_card_of_the_base_model_shows_its_accuracy(base):
    _, meta = base
    card = model_card("someone/outwit-digits", meta)
    row = next(line for line in card.splitlines() if line.startswith("| accuracy on MNIST"))
    assert row == "| accuracy on MNIST (`mnist-sample-5k/test`, 1,000 images) | 99.2% |"
    assert "None" not in card


def test_base_model_reaches_99_percent_on_the_sample_test_split(base, mnist_sample_test):
    model, meta = base
    result = evaluate(model, *mnist_sample_test.tensors(), name=mnist_sample_test.name)
    assert result["top1"] >= 0.99
    assert result["top1"] == meta.metrics.top1(MNIST)  # the recorded figure is the real one


@pytest.mark.parametrize("name", ["seed", "vit"])
def test_the_seed_network_and_the_vit_are_the_weaker_comparisons(mnist_sample_test, name):
    model, meta = load_checkpoint(MODELS / f"{name}.safetensors")
    result = evaluate(model, *mnist_sample_test.tensors(), name=mnist_sample_test.name)
    assert 0.9 <= result["top1"] < 0.99 and result["top1"] == meta.metrics.top1(MNIST)
    assert result["top5"] == meta.metrics.get(MNIST).top5 >= 0.99


def test_the_robust_model_keeps_its_accuracy_under_attack_and_noise_does_no_better(mnist_sample_test):
    """Adversarially trained at eps 0.3: clean accuracy as recorded, and most of it left under PGD at 0.3."""
    model, meta = load_checkpoint(MODELS / "robust.safetensors")
    x, y = mnist_sample_test.tensors()
    assert evaluate(model, x, y, name=mnist_sample_test.name)["top1"] == meta.metrics.top1(MNIST) >= 0.98
    assert meta.metrics.get(ROBUST).dataset == "mnist-sample-5k/test under pgd-40x1@0.3"
    assert meta.metrics.top1(ROBUST) >= 0.85 and meta.recipe["adv_train"] == "pgd"
    # past Madry et al.'s 88.4% under AutoAttack at 0.3, as `evaluate --attack autoattack --record` measured it
    assert meta.metrics.top1(SUITE) > 0.884 and "autoattack@0.3" in meta.metrics.get(SUITE).dataset
    pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))[:100]
    pgd = robust_accuracy(model, x[pick], y[pick], Attack("pgd", 0.3, steps=20, step_size=0.0375))
    noise = robust_accuracy(model, x[pick], y[pick], Attack("noise", 0.3))
    base, _ = load_checkpoint(MODELS / "base.safetensors")
    assert pgd >= 0.8 and noise >= pgd  # no gradient masking
    assert robust_accuracy(base, x[pick], y[pick], Attack("pgd", 0.3, steps=20, step_size=0.0375)) == 0.0


@pytest.mark.parametrize("placement", [
    dict(), dict(canvas=800, brush=50), dict(size=0.3, offset=(0.2, -0.2)), dict(size=0.9, brush=24),
    dict(brush=6), dict(aspect=0.5),
])
def test_base_model_reads_drawn_digits(base, placement):
    predictor = Predictor(base[0])
    guesses = [int(predictor.predict(draw_sketch(d, **placement)).argmax()) for d in range(10)]
    assert guesses == list(range(10))


def test_the_model_card_of_the_robust_model_shows_its_accuracy_under_attack():
    card = model_card("someone/outwit-robust", load_checkpoint(MODELS / "robust.safetensors")[1])
    assert "| accuracy under a gradient attack (`mnist-sample-5k/test under pgd-40x1@0.3`) | 94.4% |" in card
    suite = "mnist-sample-5k/test, 300 images, the worst of fgsm@0.3, pgd-40x1@0.3, apgd-100x1@0.3, autoattack@0.3"
    assert f"| accuracy under the standard attack suite, worst case (`{suite}`) | 89.7% |" in card
    base_card = model_card("someone/outwit-digits", load_checkpoint(MODELS / "base.safetensors")[1])
    assert "| accuracy under a gradient attack (not measured) | – |" in base_card
    assert "| accuracy under the standard attack suite, worst case (not measured) | – |" in base_card


def test_evaluate_records_the_attack_suites_worst_case_in_the_checkpoint_for_its_card(tmp_path, capsys):
    from outwit.cli import main

    checkpoint = tmp_path / "seed.safetensors"
    shutil.copy(MODELS / "seed.safetensors", checkpoint)
    weights = load_checkpoint(checkpoint)[0].state_dict()
    args = ["evaluate", "--checkpoint", str(checkpoint), "--eps", "0.2,0.3", "--limit", "8", "--steps", "5",
            "--apgd-steps", "5", "--record"]
    assert main([*args, "--attack", "pgd"]) == 2  # the suite's worst case needs AutoAttack: nothing written
    assert "give --attack autoattack" in capsys.readouterr().err and SUITE not in read_meta(checkpoint).metrics.sets
    assert main([*args, "--attack", "autoattack"]) == 0
    result = json.loads(capsys.readouterr().out)
    worst = result["robustness"]["attacks"]["0.3"]["worst"]
    model, meta = load_checkpoint(checkpoint)
    suite = meta.metrics.get(SUITE)
    assert (suite.top1, suite.size) == (worst, 8) and result["recorded"]["top1"] == worst
    assert suite.dataset.endswith("8 images, the worst of fgsm@0.3, pgd-5x1@0.3, apgd-5x1@0.3, autoattack@0.3")
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # the weights as they were
    card = model_card("someone/outwit-seed", meta)
    assert f"| accuracy under the standard attack suite, worst case (`{suite.dataset}`) | {percent(worst)} |" in card
