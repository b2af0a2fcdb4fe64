"""The checkpoints shipped in models/: accurate on the test split, and right about digits a person draws."""
from pathlib import Path

import pytest

from model import Predictor
from tests.drawing import draw_sketch
from trainer import evaluate, load_checkpoint

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def base():
    return load_checkpoint(MODELS / "base.safetensors")


def test_base_model_describes_itself(base):
    _, meta = base
    assert meta.arch == "cnn" and meta.round == 0
    assert meta.trained_on["mnist"] == "mnist-sample-5k/train"
    assert meta.metrics["mnist_test"]["dataset"] == "mnist-sample-5k/test"


def test_base_model_reaches_99_percent_on_the_sample_test_split(base, mnist_sample_test):
    model, meta = base
    result = evaluate(model, *mnist_sample_test.tensors(), name=mnist_sample_test.name)
    assert result["top1"] >= 0.99
    assert result["top1"] == meta.metrics["mnist_test"]["top1"]  # the recorded figure is the real one


def test_seed_model_is_the_weaker_comparison(mnist_sample_test):
    model, meta = load_checkpoint(MODELS / "seed.safetensors")
    result = evaluate(model, *mnist_sample_test.tensors(), name=mnist_sample_test.name)
    assert meta.arch == "seed" and 0.9 <= result["top1"] < 0.99


@pytest.mark.parametrize("placement", [
    dict(), dict(canvas=800, brush=50), dict(size=0.3, offset=(0.2, -0.2)), dict(size=0.9, brush=24),
    dict(brush=6), dict(aspect=0.5),
])
def test_base_model_reads_drawn_digits(base, placement):
    predictor = Predictor(base[0])
    guesses = [int(predictor.predict(draw_sketch(d, **placement)).argmax()) for d in range(10)]
    assert guesses == list(range(10))
