"""The checkpoints shipped in models/: accurate on the test split, and right about digits a person draws."""
from pathlib import Path

import pytest

import checkpoints
from cards import model_card
from drawings import draw_sketch
from metrics import MNIST
from serving import Predictor
from trainer import evaluate

load_checkpoint = checkpoints.load

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def base():
    return load_checkpoint(MODELS / "base.safetensors")


@pytest.mark.parametrize("name", ["base", "seed"])
def test_shipped_models_describe_themselves_in_the_current_format(name):
    payload = (MODELS / f"{name}.safetensors").read_bytes()
    assert checkpoints._read_header(payload)["format"] == checkpoints.CHECKPOINT_FORMAT
    meta = checkpoints.meta_from_bytes(payload)
    assert meta.arch == ("cnn" if name == "base" else "seed") and meta.round == 0
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


def test_seed_model_is_the_weaker_comparison(mnist_sample_test):
    model, meta = load_checkpoint(MODELS / "seed.safetensors")
    result = evaluate(model, *mnist_sample_test.tensors(), name=mnist_sample_test.name)
    assert meta.arch == "seed" and 0.9 <= result["top1"] < 0.99 and result["top1"] == meta.metrics.top1(MNIST)


@pytest.mark.parametrize("placement", [
    dict(), dict(canvas=800, brush=50), dict(size=0.3, offset=(0.2, -0.2)), dict(size=0.9, brush=24),
    dict(brush=6), dict(aspect=0.5),
])
def test_base_model_reads_drawn_digits(base, placement):
    predictor = Predictor(base[0])
    guesses = [int(predictor.predict(draw_sketch(d, **placement)).argmax()) for d in range(10)]
    assert guesses == list(range(10))
