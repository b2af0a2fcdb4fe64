"""The page sends a drawing ahead of its event, in parts (`component_server` → `accept_blobs`), then the event names
it by id. Out of the box Gradio lost it two ways: parts arriving at once overwrote each other, and a second event
with the same id found nothing ("Draw a digit first" for a drawing on screen). The page's BlobStore
(outwit/ui/sketchpad.py) keeps it, and refuses what is no part of a drawing."""
import io
import sys
import threading

import gradio as gr
import httpx
import numpy as np
import pytest
from fastapi import HTTPException
from gradio.components.image_editor import EditorData
from gradio.data_classes import DataWithFiles
from PIL import Image

from outwit.config import Config
from outwit.sim.app_process import uploaded
from outwit.sim.drawings import draw_sketch
from outwit.ui.sketchpad import BlobStore, sketchpad
from tests.app.test_bad_inputs import raw_call
from tests.running_app import running_app


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def parts(digit: int) -> list[tuple[str, int | None, bytes]]:
    """A drawing as the page sends it: (type, index, PNG) for the background, the layer and the composite."""
    sketch = draw_sketch(digit)
    return [("background", None, png(sketch["background"])), ("layer", 0, png(sketch["layers"][0])),
            ("composite", None, png(sketch["composite"]))]


def accept(editor, drawing_id: str, part: tuple[str, int | None, bytes]) -> None:
    kind, index, data = part
    index = "null" if index is None else str(index)  # a form field, as the page sends it
    editor.accept_blobs(DataWithFiles(data={"type": kind, "index": index, "id": drawing_id},
                                      files=[(f"{kind}.png", data)]))  # what Gradio's route hands it


def ink(value: dict | None) -> int:
    return int((value["layers"][0][..., 3] > 0).sum()) if value and value["layers"] else 0


def test_parts_sent_at_once_all_arrive():
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a lost part shows within a few drawings
    try:
        _send_at_once()
    finally:
        sys.setswitchinterval(switch)


def _send_at_once():
    editor = sketchpad("blobs", "blobs")
    drawing = parts(3)
    ids = [f"d{i}" for i in range(40)]
    for drawing_id in ids:
        start = threading.Barrier(3)

        def send(part, drawing_id=drawing_id, start=start):
            start.wait()
            accept(editor, drawing_id, part)

        threads = [threading.Thread(target=send, args=(part,)) for part in drawing]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for drawing_id in ids:
        stored = editor.blob_storage[drawing_id]
        assert stored.background and stored.composite and len(stored.layers) == 1 and stored.layers[0], drawing_id


def test_a_second_event_with_the_same_id_reads_the_same_drawing():
    editor = sketchpad("blobs", "blobs")
    for part in parts(3):
        accept(editor, "twice", part)
    first = editor.preprocess(EditorData(id="twice"))  # the guess
    again = editor.preprocess(EditorData(id="twice"))  # the save, with the same id
    assert ink(first) > 500 and ink(again) == ink(first)
    assert np.array_equal(again["composite"], first["composite"])


def test_an_id_nothing_was_sent_for_is_an_empty_drawing():
    value = sketchpad("blobs", "blobs").preprocess(EditorData(id="never"))
    assert value == {"background": None, "layers": [], "composite": None}


def test_the_store_keeps_the_newest_drawings_only():
    store = BlobStore(limit=3)
    for i in range(5):
        store[f"d{i}"] = i
    assert list(store) == ["d2", "d3", "d4"]
    assert store.pop("d3") == 3 and "d3" in store  # read, not dropped
    store["d2"] = 20  # written again: the newest
    store["d5"] = 5
    assert list(store) == ["d4", "d2", "d5"]


def test_an_oversized_part_is_refused_from_its_header():
    """A part sent ahead is judged like an uploaded file: by its header, before a pixel is decoded."""
    editor = sketchpad("blobs", "blobs")
    big = io.BytesIO()
    Image.new("1", (10_000, 10_000), 0).save(big, format="PNG")  # 100 M pixels: under PIL's own bomb limit
    with pytest.raises(HTTPException, match="10000×10000 px; at most 800×800"):
        accept(editor, "big", ("background", None, big.getvalue()))
    assert editor.blob_storage.get("big") is None and editor.preprocess(EditorData(id="big")) is not None


def blank(side: int) -> bytes:
    return png(np.zeros((side, side, 4), np.uint8))


@pytest.mark.parametrize("kind, index, message", [
    ("layer", "10000000", "at most 2 layers, numbered from 0: layer '10000000' is refused"),
    ("layer", "-1", "layer '-1' is refused"), ("layer", "abc", "layer 'abc' is refused"),
    ("sticker", "null", "one of background, layer, composite, not 'sticker'")])
def test_a_part_that_is_no_part_of_a_drawing_is_refused_over_http_saying_why(served, kind, index, message):
    """Out of the box a layer index of ten million padded a list to ten million entries; -1 and "abc" failed with
    an error and no message."""
    url, editor = served
    form = {"component_id": str(editor), "session_hash": "blobtest", "fn_name": "accept_blobs", "id": "bad",
            "type": kind, "index": index}
    response = httpx.post(url + "gradio_api/component_server/", data=form,
                          files={"file": ("part.png", blank(280), "image/png")})
    assert response.status_code == 400 and message in response.json()["detail"]


def test_a_drawing_past_the_limits_is_refused_before_it_is_decoded(served):
    url, _ = served
    for layers, side, message in ((3, 280, "it has 3 layers; at most 2 are accepted"),
                                  (1, 2048, "the image is 2048×2048 px; at most 800×800 is accepted")):
        ref, = uploaded(url, blank(side))
        drawing = {"background": ref, "layers": [ref] * layers, "composite": ref}
        event, data = raw_call(url, "predict", [drawing, ["serving"]])
        assert event == "error" and message in data["error"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("blobs")
    with running_app(Config(data_dir=root / "data", retrain_every=1000, mnist_data="sample")) as (url, services):
        config = httpx.get(url + "config").raise_for_status().json()
        editor = next(d["inputs"][0] for d in config["dependencies"] if d.get("api_name") == "predict")
        yield url, editor


def send_over_http(url: str, editor: int, drawing_id: str, digit: int) -> None:
    """The page's three `component_server` requests, in parallel as the page sends them."""
    def post(part):
        kind, index, data = part
        form = {"component_id": str(editor), "session_hash": "blobtest", "fn_name": "accept_blobs",
                "id": drawing_id, "type": kind, "index": "null" if index is None else str(index)}
        httpx.post(url + "gradio_api/component_server/", data=form,
                   files={"file": (f"{kind}.png", data, "image/png")}).raise_for_status()

    threads = [threading.Thread(target=post, args=(part,)) for part in parts(digit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def top(data: list) -> str:
    return data[0]["label"] if data and data[0] else ""


def test_over_http_the_guess_and_the_save_both_see_the_drawing(served):
    url, editor = served
    send_over_http(url, editor, "twice", 3)
    event, data = raw_call(url, "predict", [{"id": "twice"}, ["serving"]])
    assert event == "complete" and top(data) == "3"
    event, data = raw_call(url, "predict", [{"id": "twice"}, ["serving"]])  # the save sends the same id next
    assert event == "complete" and top(data) == "3"


def test_the_page_gets_the_stock_editors_props():
    """Gradio builds a component's props for the page from its constructor's signature: one that hid it (an
    `__init__(*args, **kwargs)`) left the page without a canvas."""
    ours, stock = sketchpad("blobs", "blobs").get_config(), gr.Sketchpad().get_config()
    assert set(stock) <= set(ours) and ours["canvas_size"] == [280, 280] and ours["layers"]["disabled"]
