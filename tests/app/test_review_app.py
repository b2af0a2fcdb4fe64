"""Validation, retraction, the sandbox, display names and the rounds page through the page's API, as two visitors
(two sessions) call it."""
import zipfile

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.config import Config
from outwit.sim.drawings import client_payload, fooling_examples
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews-app")
    config = Config(data_dir=root / "data", retrain_every=50, votes_required=1, mnist_data="sample")
    with running_app(config) as (url, services):
        yield url, services


@pytest.fixture(scope="module")
def fooling(served):
    _, services = served
    return fooling_examples(services.predictor.predict, 4)


def _flag(client, example, folder, name=""):
    drawing, digit, _ = example
    return client.predict(client_payload(drawing, folder), digit, name, False, api_name="/flag")


def test_another_visitor_validates_and_the_author_cannot(served, fooling, tmp_path):
    url, services = served
    ada, bob = Client(url, verbose=False), Client(url, verbose=False)
    message, example_id = _flag(ada, fooling[0], tmp_path / "a", name="Ada")
    assert message.startswith("Saved") and services.store.row(example_id)["user"] == "Ada"
    assert not services.reviews.usable(services.store.row(example_id))  # a vote is required first
    image, question, shown_id = ada.predict("Ada", api_name="/validate_next")
    assert shown_id != example_id  # never one's own
    image, question, shown_id = bob.predict("", api_name="/validate_next")
    assert shown_id == example_id and f"Is this a **{fooling[0][1]}**?" in question and image
    with pytest.raises(AppError, match="somebody else"):
        ada.predict(example_id, None, "Ada", api_name="/vote_correct")
    reply = bob.predict(example_id, None, "", api_name="/vote_correct")
    assert "now **validated**" in reply[0]
    assert services.reviews.usable(services.store.row(example_id))
    with pytest.raises(AppError, match="already"):
        bob.predict(example_id, None, "", api_name="/vote_correct")


def test_an_incorrect_vote_needs_the_right_digit_and_rejects(served, fooling, tmp_path):
    url, services = served
    ada, bob = Client(url, verbose=False), Client(url, verbose=False)
    _, example_id = _flag(ada, fooling[1], tmp_path / "a")
    label = fooling[1][1]
    events = len(services.reviews.events())
    with pytest.raises(AppError, match="which digit"):
        bob.predict(example_id, None, "", api_name="/vote_incorrect")
    with pytest.raises(AppError, match=f"labelled {label}"):
        bob.predict(example_id, label, "", api_name="/vote_incorrect")
    assert len(services.reviews.events()) == events  # refused votes wrote nothing
    bob.predict(example_id, (label + 1) % 10, "", api_name="/vote_incorrect")
    assert services.reviews.status(services.store.row(example_id)) == "rejected"


def test_only_the_author_retracts_and_a_report_hides_it(served, fooling, tmp_path):
    url, services = served
    ada, bob = Client(url, verbose=False), Client(url, verbose=False)
    _, example_id = _flag(ada, fooling[2], tmp_path / "a")
    with pytest.raises(AppError, match="Only the person"):
        bob.predict(example_id, api_name="/retract")
    assert "Retracted" in ada.predict(example_id, api_name="/retract")
    row = services.store.row(example_id)
    assert services.reviews.status(row) == "retracted" and services.store.path_of(row).exists()
    _, other = _flag(ada, fooling[3], tmp_path / "b")
    assert "hidden" in bob.predict(other, "not a digit", api_name="/report")
    assert not services.reviews.shown(services.store.row(other))


def test_the_sandbox_saves_nothing_and_a_bad_name_is_refused(served, fooling, tmp_path):
    url, services = served
    client = Client(url, verbose=False)
    drawing, digit, _ = fooling[0]
    added = services.store.counts().added
    message, saved = client.predict(client_payload(drawing, tmp_path), digit, "", True, api_name="/flag")
    assert message.startswith("Sandbox: you fooled it") and saved == ""
    with pytest.raises(AppError, match="printable"):
        client.predict(client_payload(drawing, tmp_path), digit, "bad\u0007name", False, api_name="/flag")
    assert services.store.counts().added == added


def test_the_rounds_page_lists_rounds_the_leaderboard_and_a_rounds_zip(served, fooling, tmp_path):
    url, services = served
    client, voter = Client(url, verbose=False), Client(url, verbose=False)
    _, example_id = _flag(client, fooling[1], tmp_path / "a", name="Lin")
    voter.predict(example_id, None, "", api_name="/vote_correct")
    assert services.worker.wait_idle(60)
    rounds, pairs, board = client.predict(api_name="/rounds")
    assert rounds["headers"][:4] == ["round", "status", "model", "examples"]
    assert rounds["data"][-1][:3] == [0, "base", "base model"]
    lin = next(row for row in board["data"] if row[1] == "Lin")
    assert lin[2:] == ["display name", 1, 1, 0, 0]  # one validated fooling drawing, not targeted, none rejected
    assert pairs["headers"] == ["round", "challenge", "attempts", "met", "error rate"]
    archive = client.predict(0, api_name="/round_examples")
    listed = zipfile.ZipFile(archive).namelist()
    assert "round-0000/train/metadata.jsonl" in listed and any(n.endswith(".png") for n in listed)


def test_what_the_model_sees_and_the_transfer_table_over_the_api(served, fooling, tmp_path):
    url, services = served
    client = Client(url, verbose=False)
    drawing, digit, probs = fooling[2]
    picture, caption = client.predict(client_payload(drawing, tmp_path / "a"), api_name="/explain")
    assert picture and f"it reads it as **{int(probs.argmax())}**" in caption
    with pytest.raises(AppError, match="Draw a digit first"):
        client.predict(None, api_name="/explain")
    _, example_id = _flag(client, fooling[3], tmp_path / "b", name="Tess")
    Client(url, verbose=False).predict(example_id, None, "", api_name="/vote_correct")  # validated: it counts
    table = client.predict(api_name="/transfer")
    assert table["headers"] == ["examples from round", "examples", "model", "still fooled"]
    assert {row[2] for row in table["data"]} >= {"blog's small network", "base CNN", "robust CNN", "ViT"}
