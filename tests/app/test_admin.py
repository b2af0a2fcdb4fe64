"""Admin actions behind ADMIN_PASSWORD, a brake on guessing it, and the per-session flag limit."""
import logging
import time

import httpx
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.config import Config, Secret
from outwit.dadc.store import AdversarialStore, FlagLimitError
from outwit.sim.drawings import client_payload, draw_sketch, fooling_examples
from outwit.ui.admin_tab import password_matches
from tests.running_app import running_app

PASSWORD = "correct horse battery staple"
ADMIN_ENDPOINTS = {"/admin_start_round", "/admin_roll_back", "/admin_hide"}


def endpoints(url: str) -> set[str]:
    return set(httpx.get(url + "gradio_api/info").json()["named_endpoints"])


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin")
    config = Config(data_dir=root / "data", retrain_every=1000, round_steps=10, mnist_data="sample",
                    admin_password=Secret(PASSWORD), flags_per_session=4, robust_eps=0)
    with running_app(config, measured=True) as (url, services):
        yield url, services, root


def test_without_a_password_there_is_no_admin_tab_and_no_endpoint(tmp_path):
    config = Config(data_dir=tmp_path / "data", mnist_data="sample")
    with running_app(config) as (url, _):
        assert not ADMIN_ENDPOINTS & endpoints(url)
        assert "admin-password" not in httpx.get(url + "config").text


def test_the_password_check_takes_equal_and_unequal_strings_of_any_length():
    secret = Secret(PASSWORD)
    assert password_matches(secret, PASSWORD)
    for wrong in ("", None, PASSWORD[:-1], PASSWORD + " ", PASSWORD.upper(), "é" * 500):
        assert not password_matches(secret, wrong)


def test_a_wrong_password_does_nothing(admin_app, tmp_path):
    url, services, _ = admin_app
    assert ADMIN_ENDPOINTS <= endpoints(url)
    drawing, digit, _ = fooling_examples(services.predictor.predict, 1)[0]
    client = Client(url, verbose=False)
    _, example_id = client.predict(client_payload(drawing, tmp_path), digit, "", False, api_name="/flag")
    records, events = len(services.worker.history.records), len(services.reviews.events())
    for call in (("/admin_start_round", "guess"), ("/admin_roll_back", "", 0), ("/admin_hide", None, example_id, "")):
        with pytest.raises(AppError, match="Wrong admin password: nothing was done"):
            client.predict(*call[1:], api_name=call[0])
    assert services.worker.wait_idle(30)
    assert len(services.worker.history.records) == records and len(services.reviews.events()) == events
    assert services.reviews.status(services.store.row(example_id)) == "validated"



def test_guessing_the_password_is_braked_and_logged_once_per_burst(tmp_path, caplog):
    config = Config(data_dir=tmp_path / "data", mnist_data="sample", admin_password=Secret(PASSWORD), robust_eps=0)
    with running_app(config) as (url, _), caplog.at_level(logging.WARNING, logger="outwit.ui.admin_tab"):
        client = Client(url, verbose=False)

        def start_round(password: str) -> str:
            try:
                return client.predict(password, api_name="/admin_start_round")
            except AppError as refused:
                return str(refused)

        assert [start_round(f"guess {i}") for i in range(6)] == ["Wrong admin password: nothing was done"] * 6
        braked = "Too many wrong admin passwords from here: try again in 1 s. Nothing was done."
        assert start_round("guess 7") == braked and start_round(PASSWORD) == braked  # not even checked meanwhile
        assert len([r for r in caplog.records if r.getMessage().startswith("admin actions")]) == 2  # not one each
        for _ in range(100):  # once the wait is over the right password works again
            if (reply := start_round(PASSWORD)) != braked:
                break
            time.sleep(0.05)
        assert reply.startswith(("A round starts now", "A round is already running"))

def test_an_admin_hides_an_example_starts_a_round_and_rolls_back(admin_app, tmp_path):
    url, services, _ = admin_app
    client, worker = Client(url, verbose=False), services.worker
    drawing, digit, _ = fooling_examples(services.predictor.predict, 1, start=40)[0]
    _, example_id = client.predict(client_payload(drawing, tmp_path), digit, "", False, api_name="/flag")

    assert "Hidden" in client.predict(PASSWORD, example_id, "not a digit", api_name="/admin_hide")
    row = services.store.row(example_id)
    assert services.reviews.status(row) == "hidden" and not services.reviews.usable(row)
    assert not services.reviews.shown(row)
    with pytest.raises(AppError, match="already hidden"):
        client.predict(PASSWORD, example_id, "", api_name="/admin_hide")
    with pytest.raises(AppError, match="There is no example"):
        client.predict(PASSWORD, "no-such-id", "", api_name="/admin_hide")

    serving_before = worker.status().round
    assert worker.until_next_round() > 0  # far from a round on its own
    assert "starts now" in client.predict(PASSWORD, api_name="/admin_start_round")
    assert worker.wait_idle(120)
    ran = worker.history.records[-1]
    assert ran.round > serving_before and ran.status in ("promoted", "rejected")
    assert ran.trained_on["adversarial"] == len([r for r in services.store.rows("train")
                                                 if services.reviews.usable(r)])  # the hidden one left out

    with pytest.raises(AppError, match="has no model to roll back to"):
        client.predict(PASSWORD, 99, api_name="/admin_roll_back")
    message = client.predict(PASSWORD, 0, api_name="/admin_roll_back")
    record = worker.history.records[-1]
    assert f"round {record.round} serves the model of round 0" in message
    assert record.status == "promoted" and record.source == "rollback to round 0" and record.checkpoint is None
    assert worker.status().round == record.round
    from outwit.ml.checkpoints import load
    base, _ = load(services.config.model_path)
    served, meta = services.predictor.current
    assert meta["round"] == record.round
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), served.state_dict().values()))


def test_a_session_may_save_only_so_many_examples(admin_app, tmp_path):
    url, services, _ = admin_app
    client = Client(url, verbose=False)  # a new session
    examples = fooling_examples(services.predictor.predict, 5, start=80)
    for i, (drawing, digit, _) in enumerate(examples[:4]):
        client.predict(client_payload(drawing, tmp_path / str(i)), digit, "", False, api_name="/flag")
    before = services.store.counts().total
    with pytest.raises(AppError, match="as many as one session may"):
        client.predict(client_payload(examples[4][0], tmp_path / "5"), examples[4][1], "", False, api_name="/flag")
    assert services.store.counts().total == before
    other = Client(url, verbose=False)  # another visitor is not held back
    other.predict(client_payload(examples[4][0], tmp_path / "6"), examples[4][1], "", False, api_name="/flag")
    assert services.store.counts().total == before + 1


def test_the_limit_counts_from_the_rows_so_a_restart_does_not_reset_it(tmp_path):
    store = AdversarialStore(tmp_path, session_limit=2)
    for _ in range(2):
        store.add(draw_sketch(1), label=7, guess=1, confidence=0.9, model_round=0, session="s1")
    with pytest.raises(FlagLimitError):
        store.add(draw_sketch(1), label=7, guess=1, confidence=0.9, model_round=0, session="s1")
    again = AdversarialStore(tmp_path, session_limit=2)
    with pytest.raises(FlagLimitError):
        again.add(draw_sketch(1), label=7, guess=1, confidence=0.9, model_round=0, session="s1")
    again.add(draw_sketch(1), label=7, guess=1, confidence=0.9, model_round=0, session="s2")
    assert again.counts().total == 3 and len(list(tmp_path.rglob("images/*.png"))) == 3
