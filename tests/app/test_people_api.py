"""Issue 27 over the API, as `gradio_client` and curl call it: API clients are never signed in (REQUIRE_SIGN_IN
refuses their saves and votes, the sandbox still plays); a targeted challenge, its suggestion and the hints; the
strokes a save sends; the round goal and the validators for the admin; an attempt counted per digit and challenge."""
import json

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.config import Config, Secret
from outwit.dadc.store import NO_TARGET
from outwit.sim.drawings import client_payload, draw_sketch, fooling_examples, stroke_points
from outwit.ui.sketchpad import CANVAS
from tests.running_app import hub_sign_in_mock, running_app

PASSWORD = "api-admin"


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    root = tmp_path_factory.mktemp("people-api-signed")
    config = Config(data_dir=root / "data", mnist_data="sample", sign_in="on", require_sign_in=True)
    with hub_sign_in_mock(), running_app(config) as served:
        yield served


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("people-api-open")
    config = Config(data_dir=root / "data", mnist_data="sample", retrain_every=100, votes_required=2,
                    admin_password=Secret(PASSWORD), round_goal="fool it")
    with running_app(config) as served:
        yield served


@pytest.fixture(scope="module")
def fooling(open_app):
    _, services = open_app
    return fooling_examples(services.predictor.predict, 3)


def test_api_clients_are_not_signed_in_so_saves_and_votes_need_a_sign_in(signed, tmp_path):
    url, services = signed
    client = Client(url, verbose=False)
    drawing, digit, _ = fooling_examples(services.predictor.predict, 1)[0]
    payload = client_payload(drawing, tmp_path)
    with pytest.raises(AppError, match="Sign in with Hugging Face to save drawings"):
        client.predict(payload, digit, "Ada", False, api_name="/flag")
    message, _ = client.predict(payload, digit, "Ada", True, api_name="/flag")  # the sandbox plays anyway
    assert message.startswith("Sandbox")
    row = services.store.add(draw_sketch(3), label=8, guess=3, confidence=0.9, model_round=0, session="someone")
    with pytest.raises(AppError, match="Sign in with Hugging Face to vote"):
        client.predict(row["id"], None, "", api_name="/vote_correct")
    assert services.store.counts().added == 1 and not services.reviews.events()


def test_a_targeted_challenge_over_the_api(open_app, fooling, tmp_path):
    url, services = open_app
    client = Client(url, verbose=False)
    drawing, digit, probs = fooling[0]
    read_as = int(probs.argmax())
    message, met_id = client.predict(client_payload(drawing, tmp_path / "a"), digit, "Lin", False, read_as, "",
                                     api_name="/flag")
    assert f"Challenge met: it read your {digit} as a {read_as}!" in message
    other = next(d for d in range(10) if d not in (digit, read_as))
    message, missed_id = client.predict(client_payload(drawing, tmp_path / "b"), digit, "Lin", False, other, "",
                                        api_name="/flag")
    assert f"Not the {other} you aimed for" in message
    assert (services.store.row(met_id)["target"], services.store.row(missed_id)["target"]) == (read_as, NO_TARGET)
    before = services.store.counts().added
    with pytest.raises(AppError, match="another digit"):  # a challenge to read a digit as itself
        client.predict(client_payload(drawing, tmp_path / "c"), digit, "Lin", False, digit, "", api_name="/flag")
    with pytest.raises(AppError, match="0–9, or -1 for none, not 12"):
        client.predict(client_payload(drawing, tmp_path / "d"), digit, "Lin", False, 12, "", api_name="/flag")
    assert services.store.counts().added == before
    drawn, aimed, words = client.predict(api_name="/suggest_challenge")
    assert drawn != aimed and f"draw a {drawn} that the model reads as a {aimed}" in words
    rounds, pairs, board = client.predict(api_name="/rounds")
    rows = [row[1:4] for row in pairs["data"]]  # (other tests of this app count attempts of their own)
    assert [f"a {digit} read as {read_as}", 1, 1] in rows and [f"a {digit} read as {other}", 1, 0] in rows


def test_a_save_keeps_the_strokes_sent_with_it_and_refuses_strokes_it_cannot_read(open_app, fooling, tmp_path):
    url, services = open_app
    client = Client(url, verbose=False)
    drawing, digit, _ = fooling[1]
    pen = json.dumps({"width": CANVAS, "height": CANVAS, "strokes": [
        [[x, y, 10.0 * i] for i, (x, y) in enumerate(stroke)] for stroke in stroke_points(digit, CANVAS)]})
    _, example_id = client.predict(client_payload(drawing, tmp_path / "a"), digit, "", False, -1, pen,
                                   api_name="/flag")
    kept = json.loads(services.store.row(example_id)["strokes"])
    assert len(kept) == len(stroke_points(digit, CANVAS)) and kept[0][2][:2] == [0, 10]
    before = services.store.counts().added
    with pytest.raises(AppError, match="pen strokes sent with the drawing can't be read"):
        client.predict(client_payload(drawing, tmp_path / "b"), digit, "", False, -1, '{"width": 1}',
                       api_name="/flag")
    assert services.store.counts().added == before


def test_hints_the_goal_and_the_validators_over_the_api(open_app, fooling, tmp_path):
    url, services = open_app
    client = Client(url, verbose=False)
    words, gallery = client.predict(api_name="/hints")
    assert "this round" in words and gallery["value"] == []  # nothing from an earlier round yet
    assert "Every validated drawing that fooled an earlier round is read right now" in gallery["label"]
    with pytest.raises(AppError, match="Wrong admin password"):
        client.predict("guess", "fool it with 4s", api_name="/admin_set_goal")
    assert services.reviews.goal() == "fool it"
    assert "every page shows" in client.predict(PASSWORD, "fool it with 4s", api_name="/admin_set_goal")
    assert services.reviews.goal() == "fool it with 4s"
    with pytest.raises(AppError, match="120 printable"):
        client.predict(PASSWORD, "x" * 119 + "\x07", api_name="/admin_set_goal")
    row = services.store.add(draw_sketch(3), label=8, guess=3, confidence=0.9, model_round=0, session="someone")
    for voter, verdict in (("bo", "correct"), ("cy", "incorrect")):
        services.reviews.vote(row["id"], verdict, session=voter, user=voter.title(),
                              digit=3 if verdict == "incorrect" else None)
    words, table = client.predict(PASSWORD, api_name="/admin_validators")
    assert "No validator agreed with the outcome less than 60%" in words  # nothing decided yet: 1 to 1
    assert sorted(row[0] for row in table["data"]) == ["Bo", "Cy"]


def test_an_attempt_is_counted_with_the_digit_read_and_the_challenge_and_a_bad_body_counts_nothing(open_app):
    url, services = open_app
    serving = services.predictor.current.round
    before = services.tries.round(serving)
    assert httpx.post(url + "outwit/tried", content=json.dumps({"guess": 4, "aim": 9})).status_code == 200
    assert httpx.post(url + "outwit/tried", content=json.dumps({"guess": "four", "aim": True})).status_code == 200
    assert httpx.post(url + "outwit/tried", content="not json").status_code == 400
    after = services.tries.round(serving)
    assert after.judged == before.judged + 2  # the second, without a digit: counted, but for no digit
    assert after.digits[4][0] == before.digits[4][0] + 1
    assert after.pairs.get("4>9", [0, 0])[0] == before.pairs.get("4>9", [0, 0])[0] + 1
