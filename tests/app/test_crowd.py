"""What keeps a crowd's cost down, through the app as served: the quick guess's plain route, and a panel built once
per change that a page's tick sends only in the parts that changed (bench/crowd.py measures both)."""
import json
import socket
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from outwit.config import Config
from outwit.ml import strokes
from outwit.sim.drawings import stroke_points
from outwit.ui.page import PANEL_TICK_SECONDS
from outwit.ui.panel import panel_handlers, status_panel
from outwit.ui.sketchpad import BRUSH_RADIUS, CANVAS
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config = Config(data_dir=tmp_path_factory.mktemp("app") / "data", retrain_every=100, mnist_data="sample")
    with running_app(config) as (url, services):
        yield url, Client(url, verbose=False), services


def strokes_of(digit: int) -> str:
    """The strokes as the page records them: CSS px of a canvas shown at 400×300 (it fits, centred)."""
    scale, left = 300 / CANVAS, (400 - 300) / 2
    points = [[[left + x * scale, y * scale] for x, y in stroke] for stroke in stroke_points(digit, CANVAS)]
    return json.dumps({"width": 400, "height": 300, "strokes": points})


@pytest.mark.parametrize("digit", [2, 7])
def test_the_quick_guess_route_answers_as_the_label_shows_it(served, digit):
    url, _, services = served
    payload = strokes_of(digit)
    answer = httpx.post(url + "outwit/guess", content=payload, timeout=30).raise_for_status().json()["label"]
    probs = services.predictor.predict(strokes.ink(payload, CANVAS, BRUSH_RADIUS))
    assert answer["label"] == str(digit) == str(int(probs.argmax()))
    assert [c["label"] for c in answer["confidences"]] == [str(d) for d in probs.argsort()[::-1][:3]]
    assert answer["confidences"][0]["confidence"] == pytest.approx(float(probs.max()))


def test_the_quick_guess_route_refuses_what_is_not_strokes_saying_why(served):
    url, _, _ = served
    refused = httpx.post(url + "outwit/guess", content=b"[[[[", timeout=30)
    assert refused.status_code == 400 and "could not read the strokes" in refused.json()["error"]
    empty = json.dumps({"width": 400, "height": 300, "strokes": []})
    assert httpx.post(url + "outwit/guess", content=empty, timeout=30).json() == {"label": None, "readings": ""}


def test_a_tick_sends_only_the_panel_parts_that_changed(served, fooling_payloads):
    _, client, services = served
    with gr.Blocks():
        components = status_panel()
    _, refresh, _, versions = panel_handlers(services, components, read_every=0)  # each tick reads the status
    *parts, seen = refresh(None)
    assert all(part != gr.skip() for part in parts) and seen[0] == services.worker.status().round
    *parts, seen = refresh(seen)
    assert parts[0] == parts[2] == parts[3] == gr.skip()  # nothing changed: nothing sent but the accuracy plot,
    assert parts[1] != gr.skip()  # which draws a new round only when sent twice
    *parts, again = refresh(seen)
    assert parts == [gr.skip()] * 4 and again == seen  # nothing changed: nothing sent
    at = versions()
    payload, digit = fooling_payloads[0]
    client.predict(payload, digit, "", False, api_name="/flag")
    *parts, after = refresh(seen)
    summary, accuracy, digits, gallery = parts
    assert "1 in all" in summary and digits != gr.skip() and gallery["visible"] is True
    assert accuracy["caption"].endswith(": 99 to go.")  # before round 1 its caption counts the saves down
    assert after[1][2] > seen[1][2] and after[1][1] == -(seen[1][1] + 1)  # the new caption's first send
    assert versions()["versions"] != at["versions"] and versions()["round"] == at["round"]  # what a page checks
    # sent as Gradio sends it, its file already in the component's cache (copied once, not per page and send)
    (shown,) = gallery["value"]
    assert Path(shown["image"]["path"]).is_relative_to(components[3].GRADIO_CACHE)
    assert shown["image"]["url"].endswith(shown["image"]["path"]) and shown["caption"].startswith(f"drawn {digit}")
    payload, digit = fooling_payloads[1]
    client.predict(payload, digit, "", False, api_name="/flag")
    *parts, _ = refresh(after)
    assert isinstance(parts[3], list) and parts[3][1] == shown  # the page shows the gallery: a plain value


def test_the_panel_check_route_says_what_the_panel_is_at(served):
    url, _, services = served
    answer = httpx.get(url + "outwit/panel", timeout=30).raise_for_status().json()
    assert answer["round"] == services.worker.status().round and answer["versions"].count(".") == 3


def read_response(connection: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length, however many reads it takes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = int({name.lower(): value for name, value in fields.items()}[b"content-length"])
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_idle_for_a_tick_is_still_open_for_the_next(served):
    """The page's tick comes every 5 s: a connection is kept open longer than that (uvicorn closed it at 5 s, and
    each tick's check raced the close or opened a new connection)."""
    url = httpx.URL(served[0])
    with socket.create_connection((url.host, url.port), timeout=30) as connection:
        connection.sendall(f"GET /outwit/panel HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        assert read_response(connection).startswith(b"HTTP/1.1 200")  # all of it: the body may come in a later read
        connection.settimeout(PANEL_TICK_SECONDS + 1)
        with pytest.raises(socket.timeout):  # nothing comes, not even the close (recv would return b"")
            connection.recv(1)
