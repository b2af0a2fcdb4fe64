"""The page's API, driven with gradio_client as a program (or the browser) would."""
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

import app
from config import Config
from model import Predictor
from tests.drawing import draw_sketch, sketchpad_value
from trainer import load_checkpoint

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model, meta = load_checkpoint(MODELS / "base.safetensors")
    demo = app.build_demo(Config(), Predictor(model))
    _, url, _ = demo.launch(server_port=None, prevent_thread_lock=True, quiet=True)
    yield Client(url, verbose=False)
    demo.close()


def upload(value: dict, folder: Path) -> dict:
    """A Sketchpad value as the client sends it: each image a PNG file."""
    files = {}
    for key in ("background", "composite"):
        Image.fromarray(value[key]).save(folder / f"{key}.png")
        files[key] = handle_file(str(folder / f"{key}.png"))
    Image.fromarray(value["layers"][0]).save(folder / "layer.png")
    return {**files, "layers": [handle_file(str(folder / "layer.png"))]}


@pytest.mark.parametrize("digit", [0, 4, 7])
def test_predict_endpoint_reads_a_drawn_digit(client, tmp_path, digit):
    result = client.predict(upload(draw_sketch(digit), tmp_path), api_name="/predict")
    assert result["label"] == str(digit)
    assert len(result["confidences"]) == 3 and result["confidences"][0]["confidence"] > 0.5


def test_predict_endpoint_shows_nothing_for_an_empty_canvas(client, tmp_path):
    import numpy as np
    blank = sketchpad_value(np.zeros((280, 280), np.uint8))
    result = client.predict(upload(blank, tmp_path), api_name="/predict")
    assert result is None or result.get("label") is None
