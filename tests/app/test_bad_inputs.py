"""Garbage in, through the API as gradio_client sends it and as raw HTTP to Gradio's routes: each bad input gets a
clear message, changes nothing on disk and leaves the app serving."""
import io
import json

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from outwit.config import Config
from outwit.sim.app_process import uploaded
from outwit.sim.drawings import client_payload, draw_sketch, fooling_examples, sketchpad_value
from outwit.ui.page import MAX_REQUEST
from tests.running_app import running_app


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def layer_png(alpha: np.ndarray) -> bytes:
    """A canvas layer as the page uploads it: black ink in the alpha channel."""
    return png(Image.fromarray(sketchpad_value(alpha)["layers"][0]))


def dot() -> np.ndarray:
    alpha = np.zeros((280, 280), np.uint8)
    yy, xx = np.mgrid[:280, :280]
    alpha[(yy - 140) ** 2 + (xx - 140) ** 2 <= 9 ** 2] = 255  # one tap of the brush
    return alpha


DIGIT = png(Image.fromarray(draw_sketch(3)["layers"][0]))
TRUNCATED = DIGIT[:400]
# (name, the PNG sent as background, layer and composite, the message expected)
BAD_DRAWINGS = [
    ("empty canvas", layer_png(np.zeros((280, 280), np.uint8)), "Draw a digit first: the canvas is empty"),
    ("a single dot", layer_png(dot()), "Draw a digit first: only a speck"),
    ("all black", png(Image.new("RGB", (280, 280), "black")), "a blot, not a digit"),
    ("all white", png(Image.new("RGB", (280, 280), "white")), "a blot, not a digit"),
    ("10,000×10,000", png(Image.new("L", (10_000, 10_000), 255)), "10000×10000 px; at most 800×800"),
    ("not an image", b"GIF89a? no: just some text that claims to be a picture", "the file is not an image"),
    ("truncated PNG", TRUNCATED, "can't be read"),
    ("decompression bomb", png(Image.new("1", (30_000, 30_000), 0)), "decompression bomb"),
]
BAD_LABELS = [(-1, "Pick a digit from 0 to 9, not -1"), (10, "Pick a digit from 0 to 9, not 10"),
              ("seven", "Pick a digit from 0 to 9, not 'seven'"), (None, "Pick the digit you drew")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    config = Config(data_dir=root / "data", retrain_every=1000, mnist_data="sample")
    with running_app(config, measured=True) as (url, services):
        yield url, services, config


@pytest.fixture
def unchanged(served):
    """Every file under the data folder, byte for byte, and the store's counts: the same after the test."""
    _, services, config = served

    def snapshot():
        files = {p: p.read_bytes() for p in config.data_dir.rglob("*") if p.is_file()}
        return files, services.store.counts()

    before = snapshot()
    yield
    assert snapshot() == before
    url = served[0]
    assert Client(url, verbose=False).predict(client_payload(draw_sketch(4), config.data_dir.parent / "ok"),
                                              api_name="/predict")["label"] == "4"  # still serving


def upload(url: str, payload: bytes) -> dict:
    """A drawing whose background, layer and composite are all the one PNG."""
    ref, = uploaded(url, payload)
    return {"background": ref, "layers": [ref], "composite": ref}


def raw_call(url: str, api_name: str, data: list) -> tuple[str, object]:
    """Gradio's HTTP API as curl uses it: POST the inputs, then read the event stream. Returns (event, data)."""
    event_id = httpx.post(url + f"gradio_api/call/{api_name}", json={"data": data}).raise_for_status().json()
    stream = httpx.get(url + f"gradio_api/call/{api_name}/{event_id['event_id']}", timeout=60).text
    event = next(line[len("event: "):] for line in stream.splitlines() if line.startswith("event: "))
    payload = next(line[len("data: "):] for line in stream.splitlines() if line.startswith("data: "))
    return event, json.loads(payload)


@pytest.mark.parametrize("name,payload,message", BAD_DRAWINGS, ids=[c[0] for c in BAD_DRAWINGS])
def test_a_bad_drawing_is_refused_through_the_client(served, unchanged, tmp_path, name, payload, message):
    url, _, _ = served
    (tmp_path / "drawing.png").write_bytes(payload)
    file = handle_file(str(tmp_path / "drawing.png"))
    client = Client(url, verbose=False)
    with pytest.raises(AppError, match=message.replace("(", r"\(")):
        client.predict({"background": file, "layers": [file], "composite": file}, 3, "", False, api_name="/flag")


@pytest.mark.parametrize("name,payload,message", BAD_DRAWINGS, ids=[c[0] for c in BAD_DRAWINGS])
def test_a_bad_drawing_is_refused_over_raw_http(served, unchanged, name, payload, message):
    url, _, _ = served
    event, data = raw_call(url, "flag", [upload(url, payload), 3, "", False, -1, "", ["serving"]])
    assert event == "error" and message in data["error"]
    if data["error"].startswith("That drawing can't be read"):  # a live guess on it: the same message
        event, data = raw_call(url, "predict", [upload(url, payload), ["serving"]])
        assert event == "error" and message in data["error"]
    else:  # no digit (empty, a dot, a blot): the live guess shows nothing
        event, data = raw_call(url, "predict", [upload(url, payload), ["serving"]])
        assert event == "complete" and not data[0]  # an empty label: no guess


@pytest.mark.parametrize("label,message", BAD_LABELS, ids=[repr(c[0]) for c in BAD_LABELS])
def test_a_bad_label_is_refused_both_ways(served, unchanged, tmp_path, label, message):
    url, services, _ = served
    with pytest.raises(AppError, match=message):
        Client(url, verbose=False).predict(client_payload(draw_sketch(3), tmp_path), label, "", False,
                                           api_name="/flag")
    event, data = raw_call(url, "flag", [upload(url, DIGIT), label, "", False, -1, "", ["serving"]])
    assert event == "error" and message in data["error"]


def test_a_flag_with_no_drawing_is_refused_both_ways(served, unchanged):
    url, _, _ = served
    with pytest.raises(AppError, match="Draw a digit first: the canvas is empty"):
        Client(url, verbose=False).predict(None, 3, "", False, api_name="/flag")
    event, data = raw_call(url, "flag", [None, 3, "", False, -1, "", ["serving"]])
    assert event == "error" and "Draw a digit first" in data["error"]


def test_an_oversized_request_is_refused_before_it_is_read(served, unchanged, tmp_path):
    url, _, _ = served
    big = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    (tmp_path / "big.png").write_bytes(png(Image.fromarray(big)))  # ~4 MB of noise: no PNG compresses it
    file = handle_file(str(tmp_path / "big.png"))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client reads the app's limit
        Client(url, verbose=False).predict({"background": file, "layers": [file], "composite": file}, 3, "",
                                           False, api_name="/flag")
    response = httpx.post(url + "gradio_api/upload", files=[("files", ("big.png", (tmp_path / "big.png").read_bytes(),
                                                                        "image/png"))])
    assert response.status_code == 413
    huge_label = {"data": [None, "7" * (MAX_REQUEST + 1), "", False]}
    response = httpx.post(url + "gradio_api/call/flag", json=huge_label)
    assert response.status_code == 413 and "too large" in response.json()["detail"]


def test_a_refusal_quotes_a_few_dozen_characters_of_what_was_sent_and_no_markup(served, unchanged, tmp_path):
    url, services, _ = served
    client = Client(url, verbose=False)
    (drawing, digit, _), = fooling_examples(services.predictor.predict, 1)
    huge = "x" * 100_000
    calls = [((huge,), "/retract"), ((huge, None, ""), "/vote_correct"), ((huge, "not a digit"), "/report"),
             ((client_payload(drawing, tmp_path), digit, "n" * 10_000, False), "/flag"),
             ((huge, 3, ""), "/vote_incorrect")]
    for args, endpoint in calls:
        with pytest.raises(AppError) as refused:
            client.predict(*args, api_name=endpoint)
        message = str(refused.value)
        assert len(message) < 300 and "x" * 50 not in message and "n" * 50 not in message, (endpoint, message)
    with pytest.raises(AppError) as refused:  # shown in a toast, which renders HTML: it must read as text
        client.predict("<img src=x onerror=alert(1)>", api_name="/retract")
    assert "&lt;img src=x" in str(refused.value) and "<img" not in str(refused.value)
