"""Networks and the serving predictor."""
import threading

import numpy as np
import pytest
import torch

from model import build_model, count_parameters
from outwit.ml.preprocess import EmptyDrawingError
from outwit.ml.serving import Predictor, inference_copy
from outwit.sim.drawings import draw_sketch


@pytest.mark.parametrize("arch", ["seed", "cnn", "vit"])
def test_networks_map_a_batch_to_ten_logits(arch):
    model = build_model(arch).eval()
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, 10)


def test_default_cnn_is_small_but_not_tiny():
    assert 100_000 <= count_parameters(build_model("cnn")) <= 300_000
    assert count_parameters(build_model("seed")) == 21_840  # the blog post's network, unchanged


def test_unknown_architecture_is_named_in_the_error():
    with pytest.raises(ValueError, match="'transformer'"):
        build_model("transformer")


def test_normalisation_lives_inside_the_model():
    """Callers pass [0, 1] pixels: a blank image is MNIST's background, not a bright flash."""
    model = build_model("cnn").eval()
    normalised = model.norm(torch.zeros(1, 1, 28, 28))
    assert normalised.mean().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_predictor_gives_probabilities_and_the_empty_error():
    predictor = Predictor(build_model("cnn"))
    probs = predictor.predict(draw_sketch(4))
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5) and (probs >= 0).all()
    with pytest.raises(EmptyDrawingError):
        predictor.predict(np.zeros((280, 280), np.uint8))


def test_swap_is_atomic_while_predictions_run():
    """Every prediction during swaps comes wholly from one model or the other, never a mix or an error."""
    first, second = build_model("seed").eval(), build_model("seed").eval()
    torch.nn.init.constant_(second.fc2.bias, 5.0)
    drawing = draw_sketch(2)
    predictor = Predictor(first)
    expected = [Predictor(m).predict(drawing) for m in (first, second)]
    seen, errors, stop = [], [], threading.Event()

    def predict_loop():
        while not stop.is_set():
            try:
                seen.append(predictor.predict(drawing))
            except Exception as err:  # noqa: BLE001 - any error fails the test below
                errors.append(err)

    threads = [threading.Thread(target=predict_loop) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(200):
        predictor.swap(second if i % 2 == 0 else first, {"round": i})
    stop.set()
    for t in threads:
        t.join()
    assert not errors and seen
    assert all(any(np.allclose(p, e, atol=1e-6) for e in expected) for p in seen)
    assert predictor.current.meta == {"round": 199}


@pytest.mark.parametrize("arch", ["seed", "cnn", "vit"])
def test_serving_copy_computes_what_the_trained_model_computes(arch):
    model = build_model(arch)
    model.train()(torch.rand(32, 1, 28, 28))  # move BatchNorm's running statistics off their defaults
    model.eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(inference_copy(model)(x), model(x), atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == (arch == "cnn")  # original intact
