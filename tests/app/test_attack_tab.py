"""The machine adversary through the page's API, as a client calls it: attack a drawing, save the result."""
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from outwit.config import Config
from outwit.sim.drawings import client_payload, draw_sketch, sketchpad_value
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack-tab")
    with running_app(Config(data_dir=root / "data", retrain_every=50, mnist_data="sample")) as served_app:
        yield served_app


def _pixels(image_file) -> np.ndarray:
    return np.asarray(Image.open(image_file).convert("L"))[::8, ::8]  # shown 8× larger


def test_an_attack_fools_the_model_within_epsilon_and_can_be_saved_once(served, tmp_path):
    url, services = served
    client = Client(url, verbose=False)
    clean, attacked, change, guess, message = client.predict(client_payload(draw_sketch(7), tmp_path), 7, 0.2,
                                                            api_name="/attack")
    before, after = _pixels(clean).astype(int), _pixels(attacked).astype(int)
    assert np.abs(after - before).max() <= round(0.2 * 255) and (after != before).any()
    assert guess["label"] != "7" and f"now says **{guess['label']}**" in message
    assert _pixels(change).shape == (28, 28)

    added = services.store.counts().added
    reply = client.predict(api_name="/save_attack")
    assert reply.startswith(f"Saved the attacked 7 (the model said {guess['label']})")
    [row] = services.store.latest(1)
    assert (row["label"], row["guess"], row["source"]) == (7, int(guess["label"]), "pgd-40x1@0.2")
    stored = np.asarray(Image.open(services.store.path_of(row, "input_file_name")))
    assert np.array_equal(stored, after.astype(np.uint8))  # what the visitor saw is what is kept
    with pytest.raises(AppError, match="Attack a drawing first"):  # once per attack
        client.predict(api_name="/save_attack")
    assert services.store.counts().added == added + 1


def test_an_attack_that_does_not_fool_cannot_be_saved(served, tmp_path):
    url, services = served
    client = Client(url, verbose=False)
    _, _, _, guess, message = client.predict(client_payload(draw_sketch(0), tmp_path), 0, 0.02, api_name="/attack")
    assert guess["label"] == "0"  # the standard model holds a clear 0 at 0.02
    assert "still says 0: try a larger ε" in message
    added = services.store.counts().added
    with pytest.raises(AppError, match="did not fool the model: nothing saved"):
        client.predict(api_name="/save_attack")
    assert services.store.counts().added == added


@pytest.mark.parametrize("drawing, digit, eps, error", [
    ("empty", 3, 0.1, "Draw a digit first"), ("three", None, 0.1, "Pick the digit you drew"),
    ("three", 3, 0.9, "greater than maximum value 0.3"), ("three", 3, 0.0, "less than minimum value 0.02")])
def test_bad_attack_requests_get_a_clear_message_and_change_nothing(served, tmp_path, drawing, digit, eps, error):
    url, services = served
    client = Client(url, verbose=False)
    value = sketchpad_value(np.zeros((280, 280), np.uint8)) if drawing == "empty" else draw_sketch(3)
    added = services.store.counts().added
    with pytest.raises(AppError, match=error):
        client.predict(client_payload(value, tmp_path), digit, eps, api_name="/attack")
    assert services.store.counts().added == added
