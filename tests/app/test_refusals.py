"""Requests Gradio refuses before the app runs (or that failed inside it) get a sentence a person understands: out of
the box each answered an error with no message, HTTP 500, or a numpy error."""
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from outwit.config import Config, Secret
from outwit.sim.app_process import uploaded
from tests.app.test_bad_inputs import raw_call
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("refusals")
    config = Config(data_dir=root / "data", mnist_data="sample", admin_password=Secret("s3cret"), robust_eps=0)
    with running_app(config) as (url, _):
        yield url


def blank_layer(url: str, side: int) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side, 4), np.uint8)).save(buffer, format="PNG")
    return uploaded(url, buffer.getvalue())[0]


SERVING = ["serving"]  # /predict's second input: the models to fool


def drawing(**parts) -> dict:
    return {"background": None, "layers": [], "composite": None, **parts}


CASES = {  # api name, inputs (a callable of the url where files are needed), what the message says
    "a file that was not uploaded": ("predict", lambda url: [drawing(background={
        "path": "/etc/hosts", "meta": {"_type": "gradio.FileData"}}), SERVING], "names a file that was not uploaded"),
    "layers as a string": ("predict", lambda url: [drawing(layers="abc"), SERVING], "a drawing is the editor's value"),
    "layers as a dict": ("predict", lambda url: [drawing(layers={"a": 1}), SERVING], "a drawing is the editor's value"),
    "layers of two sizes": ("predict", lambda url: [drawing(layers=[blank_layer(url, 100), blank_layer(url, 280)]),
                                                    SERVING],
                            "its layers differ in size (100×100 and 280×280 px)"),
    "ε as a word": ("attack", lambda url: [None, 3, "abc"], "a number is needed, not 'abc'"),
    "a round as a word": ("admin_roll_back", lambda url: ["s3cret", "abc"], "a number is needed, not 'abc'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_request_gradio_refuses_gets_a_sentence(served, case):
    api_name, inputs, message = CASES[case]
    event, data = raw_call(served, api_name, inputs(served))
    assert event == "error" and data["error"] and message in data["error"], data


def test_an_unknown_endpoint_is_a_404_that_says_where_the_endpoints_are(served):
    response = httpx.post(served + "gradio_api/call/no_such_thing", json={"data": []})
    detail = response.json()["detail"]
    assert response.status_code == 404 and "no endpoint 'no_such_thing'" in detail and "/gradio_api/info" in detail


def test_a_quick_guess_nested_thousands_deep_is_refused_saying_why(served):
    response = httpx.post(served + "outwit/guess", content="[" * 5000)
    assert response.status_code == 400
    assert "nested too deep" in response.json()["error"]
