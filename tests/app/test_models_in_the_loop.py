"""Models in the loop over the API and the quick guess's route: the models a visitor chose read the drawing, a save
counts only when every one of them gets it wrong, and the row keeps what each said."""
import json

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.config import Config
from outwit.sim.drawings import FOOLING_VARIANTS, client_payload, rotated_sketch, stroke_points
from outwit.ui.sketchpad import CANVAS
from tests.running_app import running_app

EVERY = ["serving", "seed", "base", "robust", "vit"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    config = Config(data_dir=tmp_path_factory.mktemp("models-in-the-loop") / "data", mnist_data="sample",
                    retrain_every=100)
    with running_app(config) as served:
        yield served


def drawing_where(services, fits):
    """The first drawing of the fixed bank whose readings by every model `fits(digit, {model: guess})`."""
    for i in range(10 * len(FOOLING_VARIANTS)):
        digit, (angle, aspect) = i % 10, FOOLING_VARIANTS[(i // 10) % len(FOOLING_VARIANTS)]
        drawing = rotated_sketch(digit, angle, aspect=aspect)
        read = {r.model: r.guess for r in services.collector.judge(drawing, tuple(EVERY)).chosen}
        if fits(digit, read):
            return drawing, digit, read
    raise AssertionError("no such drawing in the bank")


def test_fool_them_all_saves_only_what_every_chosen_model_gets_wrong(app, tmp_path):
    url, services = app
    client = Client(url, verbose=False)
    drawing, digit, read = drawing_where(services, lambda d, read: all(g != d for g in read.values()))
    message, example_id = client.predict(client_payload(drawing, tmp_path / "all"), digit, "", False, -1, "",
                                            EVERY, api_name="/flag")
    assert message.startswith(f"Saved: you drew {digit}, round 0's model said {read['serving']}, the blog's small "
                              f"network said {read['seed']}, ")
    row = services.store.row(example_id)
    assert [(r["model"], r["guess"]) for r in json.loads(row["judged_by"])] == [(m, read[m]) for m in EVERY]

    drawing, digit, read = drawing_where(services, lambda d, read: read["serving"] == d and read["vit"] != d)
    before = services.store.counts().added
    with pytest.raises(AppError, match=f"This round's model already reads this as {digit}: nothing saved. Draw one "
                                       "that every model you chose gets wrong"):
        client.predict(client_payload(drawing, tmp_path / "both"), digit, "", False, -1, "", ["serving", "vit"],
                       api_name="/flag")
    with pytest.raises(AppError, match="'gpt' is not a model to fool here"):
        client.predict(client_payload(drawing, tmp_path / "gpt"), digit, "", False, -1, "", ["gpt"], api_name="/flag")
    assert services.store.counts().added == before
    message, example_id = client.predict(client_payload(drawing, tmp_path / "vit"), digit, "", False, -1, "",
                                            ["vit"], api_name="/flag")
    assert message.startswith(f"Saved: you drew {digit}, the ViT said {read['vit']}.")
    row = services.store.row(example_id)
    assert (row["guess"], [r["model"] for r in json.loads(row["judged_by"])]) == (digit, ["vit"])


def test_the_guess_is_the_first_chosen_models_and_the_readings_name_each(app, tmp_path):
    url, services = app
    client = Client(url, verbose=False)
    drawing, digit, read = drawing_where(services, lambda d, read: read["serving"] != read["vit"])
    payload = client_payload(drawing, tmp_path)
    assert client.predict(payload, api_name="/predict")["label"] == str(read["serving"])  # the default: as before
    assert client.predict(payload, ["vit"], api_name="/predict")["label"] == str(read["vit"])
    pen = json.dumps({"width": CANVAS, "height": CANVAS, "strokes": [
        [[x, y, 10.0 * i] for i, (x, y) in enumerate(stroke)] for stroke in stroke_points(7, CANVAS)]})
    plain = httpx.post(url + "outwit/guess", content=pen).json()
    assert plain["label"]["label"] == "7" and plain["readings"] == ""  # the serving model alone: no line
    both = httpx.post(url + "outwit/guess?models=vit,robust", content=pen).json()
    assert both["label"]["label"] == "7"  # the robust CNN's (the first in the offered order)
    assert both["readings"].startswith("Read as: robust CNN: **7** (") and " · ViT: **7** (" in both["readings"]
    refused = httpx.post(url + "outwit/guess?models=", content=pen)
    assert refused.status_code == 200 and refused.json() == {"label": None, "readings": "Choose at least one model "
                                                                                        "to fool"}
