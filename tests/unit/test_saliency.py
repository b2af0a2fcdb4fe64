"""What the model sees: Integrated Gradients over the shipped model, checked against what it promises."""
import numpy as np
import pytest

from outwit.ml import checkpoints
from outwit.ml.preprocess import preprocess
from outwit.ml.saliency import explain, heat_picture
from outwit.sim.drawings import draw_sketch
from tests.paths import MODELS


@pytest.fixture(scope="module")
def base():
    return checkpoints.load(MODELS / "base.safetensors")[0]


@pytest.mark.parametrize("digit", [1, 3, 7])
def test_the_map_explains_the_guess_and_adds_up_to_it(base, digit):
    model_input = preprocess(draw_sketch(digit))
    seen = explain(base, model_input)
    assert seen.target == digit  # the guess, explained
    assert seen.convergence < 0.05  # the attributions add up to the logit's change from a black image
    assert seen.model_input.shape == (28, 28) and seen.model_input.max() > 200
    black = model_input[0].numpy() == 0
    assert np.abs(seen.attributions[black]).max() == 0  # a black pixel is the baseline's: it did nothing
    assert seen.attributions[seen.model_input > 64].sum() > 0  # the ink pushed it towards its guess


def test_another_digit_can_be_explained_and_the_picture_is_the_inputs_size_times_eight(base):
    seen = explain(base, preprocess(draw_sketch(7)), target=1)
    assert seen.target == 1
    picture = heat_picture(seen)
    assert picture.shape == (224, 224, 3) and picture.dtype == np.uint8
    reddest = np.unravel_index(np.argmax(seen.attributions), (28, 28))
    r, g, b = picture[reddest[0] * 8, reddest[1] * 8]
    assert r == 255 and r > b  # the strongest push, drawn red
