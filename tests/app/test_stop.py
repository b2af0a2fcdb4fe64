"""A Space stops its app with SIGTERM and then wipes its disk. Whatever the app is doing (idle, saving, training a
round, building the int8 copy, pushing, publishing), the stop must end in exit 0 with every acknowledged example in
the dataset repo: `python app.py` against a local server that speaks the Hub's HTTP API."""
import threading
import time

import pytest
from gradio_client import Client

from outwit.dadc.store import AdversarialStore
from outwit.hub.restore import restore_dataset
from outwit.sim.app_process import AppProcess, alive
from outwit.sim.hub_server import REPO, TOKEN, api_for
from tests.app.test_crash import flag_until

MODEL_REPO = "outwit/model"


def space(hub, tmp_path, **env) -> AppProcess:
    """The app as a Space runs it: the dataset repo and the model repo configured, pushes once a minute."""
    settings = dict(HF_TOKEN=TOKEN, DATASET_REPO=REPO, MODEL_REPO=MODEL_REPO, HF_ENDPOINT=hub.endpoint,
                    HF_HUB_OFFLINE="0", SYNC_EVERY=1, ROBUST_EPS=0, REPLICA_ID="space", FLAGS_PER_SESSION=0)
    return AppProcess(tmp_path / "data", tmp_path / "app.log", **{**settings, **env}).start()


def on_hub(hub, folder) -> set[str]:
    """The ids of the examples in the dataset repo, as a restarted Space would restore them."""
    restore_dataset(api_for(hub), REPO, folder)
    return {row["id"] for row in AdversarialStore(folder / "adversarial").rows()}


def save(client: Client, payloads: list, n: int) -> list[str]:
    return [client.predict(*payloads[i % len(payloads)], "", False, api_name="/flag")[1] for i in range(n)]


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.02)
    pytest.fail(f"{what} did not happen within {seconds:g} s")


def stopped_cleanly(app: AppProcess) -> None:
    code = app.stop(timeout=90)
    log = app.log.read_text(errors="replace")
    assert code == 0 and "terminate called" not in log, log[-3000:]


def test_a_stop_when_idle_pushes_the_examples_saved_since_the_last_push(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, SYNC_EVERY=60)  # no push of its own before the stop
    acked = save(Client(app.url, verbose=False), fooling_payloads, 3)
    stopped_cleanly(app)
    assert set(acked) <= on_hub(hub, tmp_path / "restored")


def test_a_stop_while_visitors_save_pushes_every_acknowledged_example(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, SYNC_EVERY=60)
    acked, errors, stop = [], [], threading.Event()
    visitors = [threading.Thread(target=flag_until, args=(app.url, fooling_payloads[i::2], stop, acked, errors))
                for i in range(2)]
    for visitor in visitors:
        visitor.start()
    wait_for(lambda: len(acked) >= 6, 90, "six saves")
    try:
        stopped_cleanly(app)  # with both visitors' requests in flight
    finally:
        stop.set()
        for visitor in visitors:
            visitor.join(60)
    assert set(acked) <= on_hub(hub, tmp_path / "restored")


def test_a_stop_during_a_round_lets_it_finish_and_pushes_its_examples(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, RETRAIN_EVERY=3, ROUND_TUNE="all", ROUND_STEPS=60)  # a round of some seconds
    client = Client(app.url, verbose=False)
    acked = save(client, fooling_payloads, 3)
    wait_for(lambda: client.predict(api_name="/status")["training"], 60, "the round starting")
    rounds_process = app.children()
    stopped_cleanly(app)
    assert rounds_process and not any(alive(pid) for pid in rounds_process)  # gone with the app
    assert set(acked) <= on_hub(hub, tmp_path / "restored")


def test_a_stop_while_a_new_rounds_int8_copy_is_built(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, RETRAIN_EVERY=3)
    client = Client(app.url, verbose=False)
    acked = save(client, fooling_payloads, 3)

    def building() -> bool:
        status = client.predict(api_name="/status")
        return status["round"] == 1 and status["serving"].startswith("float32 until")

    wait_for(building, 90, "round 1's int8 copy being built")
    stopped_cleanly(app)
    assert set(acked) <= on_hub(hub, tmp_path / "restored")


def test_a_stop_mid_push_finishes_it_then_pushes_the_rest(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, SYNC_EVERY=0.02)  # a push every 1.2 s
    hub.slow_commits(2)
    client = Client(app.url, verbose=False)
    acked = save(client, fooling_payloads, 2)
    hub.commit_started["datasets"].clear()
    wait_for(hub.commit_started["datasets"].is_set, 60, "a push")
    acked += save(client, fooling_payloads, 1)  # saved while that push is on its way
    stopped_cleanly(app)
    assert set(acked) <= on_hub(hub, tmp_path / "restored")


def test_a_stop_mid_publish_publishes_the_round_and_pushes_the_examples(hub, tmp_path, fooling_payloads):
    app = space(hub, tmp_path, RETRAIN_EVERY=3, SYNC_EVERY=60)
    hub.slow_commits(2)
    acked = save(Client(app.url, verbose=False), fooling_payloads, 3)
    wait_for(hub.commit_started["models"].is_set, 90, "round 1 being published")
    stopped_cleanly(app)
    assert "model.safetensors" in hub.repo(MODEL_REPO, kind="models").files
    assert set(acked) <= on_hub(hub, tmp_path / "restored")
