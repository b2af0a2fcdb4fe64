"""What the model sees: Integrated Gradients over the shipped model, checked against what it promises."""
import json

import numpy as np
import pytest
from PIL import Image

from outwit.cli import main
from outwit.ml import checkpoints
from outwit.ml.preprocess import ink_image, preprocess
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


def test_trainer_see_reads_a_drawing_with_each_model_and_writes_what_the_model_sees(tmp_path, capsys):
    drawing = tmp_path / "seven.png"
    Image.fromarray(255 - ink_image(draw_sketch(7))).save(drawing)  # dark ink on white, as the store keeps it
    out = tmp_path / "seen.png"
    assert main(["see", "--image", str(drawing), "--references", "robust,vit", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["guess"]) for r in result["readings"]] == [("base", 7), ("robust CNN", 7), ("ViT", 7)]
    assert result["explained"]["digit"] == 7 and result["explained"]["convergence"] < 0.1
    with Image.open(out) as picture:
        assert picture.size == (224, 224)
    assert main(["see", "--image", str(drawing), "--references", "gpt"]) == 2
    assert "'gpt' is not one of the references there: seed (blog's small network)" in capsys.readouterr().err
    Image.new("RGB", (280, 280), "white").save(tmp_path / "blank.png")
    assert main(["see", "--image", str(tmp_path / "blank.png")]) == 2
    assert "empty" in capsys.readouterr().err
