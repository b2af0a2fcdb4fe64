"""End to end through the page's API with gradio_client: predict, flag, wait for the round, read /status."""
import time
import zipfile
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.config import Config
from outwit.dadc.status import RoundSummary
from outwit.ml.metrics import Accuracy
from outwit.services import start_services
from outwit.sim.drawings import client_payload, draw_sketch, fooling_examples, sketchpad_value
from outwit.ui.panel import ROUND_ORDER, how_it_works, plot_updates, retraining, round_landed, summary_markdown
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One app for the module. Only the round test below saves examples in it; every other test saves nothing."""
    root = tmp_path_factory.mktemp("app")
    config = Config(data_dir=root / "data", retrain_every=10, round_steps=40, mnist_data="sample")
    with running_app(config, measured=True) as (url, services):
        yield Client(url, verbose=False), services, config


@pytest.mark.parametrize("digit", [0, 4, 7])
def test_predict_reads_a_drawn_digit(served, tmp_path, digit):
    client, _, _ = served
    result = client.predict(client_payload(draw_sketch(digit), tmp_path), api_name="/predict")
    assert result["label"] == str(digit)
    assert len(result["confidences"]) == 3 and result["confidences"][0]["confidence"] > 0.5


def test_predict_shows_nothing_for_an_empty_canvas(served, tmp_path):
    client, _, _ = served
    empty = client_payload(sketchpad_value(np.zeros((280, 280), np.uint8)), tmp_path)
    result = client.predict(empty, api_name="/predict")
    assert result is None or result.get("label") is None


def test_bad_flags_get_a_clear_message_and_save_nothing(served, tmp_path):
    client, services, _ = served
    before = services.store.counts().total
    with pytest.raises(AppError, match="Draw a digit first"):
        client.predict(client_payload(sketchpad_value(np.zeros((280, 280), np.uint8)), tmp_path), 3, api_name="/flag")
    with pytest.raises(AppError, match="Pick the digit you drew"):
        client.predict(client_payload(draw_sketch(3), tmp_path), None, api_name="/flag")
    with pytest.raises(AppError, match="already reads this as 3: nothing saved"):
        client.predict(client_payload(draw_sketch(3), tmp_path), 3, api_name="/flag")
    assert services.store.counts().total == before


def test_ten_fooling_flags_make_a_round_that_status_reports(served, tmp_path):
    client, services, config = served
    status = client.predict(api_name="/status")
    assert status["round"] == 0 and status["until_next_round"] == 10
    assert status["mnist"]["dataset"] == "mnist-sample-5k/test" and status["mnist"]["top1"] >= 0.99
    assert services.predictor.wait_settled(60)  # the page's guesses come from the model's int8 copy (serving.py)
    assert client.predict(api_name="/status")["serving"].startswith("int8 (x86): top digit as the float model's")
    examples = fooling_examples(services.predictor.predict, 10)
    for i, (drawing, digit, probs) in enumerate(examples):
        message, saved = client.predict(client_payload(drawing, tmp_path / str(i)), digit, api_name="/flag")
        assert services.store.row(saved)["label"] == digit  # the reply names the saved example, to retract it
        assert message.startswith(f"Saved: you drew {digit}, the model said {int(probs.argmax())}.")
        if i < 9:
            assert f"{i + 1} in all; {9 - i} more until the next retrain" in message
        else:  # the tenth starts a round, and says so
            assert "That makes 10: the model is retraining on them now" in message
    deadline = time.monotonic() + 120
    while ((status := client.predict(api_name="/status"))["round"] == 0 or status["training"]) \
            and time.monotonic() < deadline:  # the round is recorded a moment before the worker says it is done
        time.sleep(0.5)
    assert status["round"] == 1
    assert status["history"][-1]["status"] == "promoted"
    assert 0.9 <= status["mnist"]["top1"] <= 1 and status["adversarial"]["size"] == 2
    assert status["adversarial"]["top1"] is not None
    drawn = Counter(str(digit) for _, digit, _ in examples)
    assert status["examples"] == {"total": 10, "train": 8, "test": 2, "this_round": 0,
                                  "per_digit": {str(d): drawn[str(d)] for d in range(10)}}
    assert status["until_next_round"] == 10 and not status["training"]
    assert (config.data_dir / "rounds" / services.store.shard / "round-0001.safetensors").exists()
    # Each round's examples over the API (the page's round picker is refreshed by the page; a client names one)
    fooled_base = zipfile.ZipFile(client.predict(0, api_name="/round_examples")).namelist()
    assert len([name for name in fooled_base if "/images/" in name]) == 10
    assert zipfile.ZipFile(client.predict(1, api_name="/round_examples")).namelist() == ["round-0001/README.txt"]
    for bad, message in ((7, "Round 7 has no model that served"), ("abc", "a whole number, not 'abc'")):
        with pytest.raises(AppError, match=message):
            client.predict(bad, api_name="/round_examples")


def test_a_restarted_app_resumes_its_round_history_and_counts(tmp_path):
    """An app that made a round and saved more examples stops; a new one over the same data folder carries on."""
    config = Config(data_dir=tmp_path / "data", retrain_every=3, round_steps=10, gate_margin=100, mnist_data="sample")
    first = start_services(config)
    try:
        for drawing, digit, probs in fooling_examples(first.predictor.predict, 4):
            first.store.add(drawing, label=digit, guess=int(probs.argmax()), confidence=0.5, model_round=0)
            first.worker.notify()
            assert first.worker.wait_idle(120)
        before = first.status().to_json()
    finally:
        first.stop()
    assert before["round"] == 1 and before["examples"]["total"] == 4 and before["until_next_round"] == 2
    again = start_services(config)
    try:
        assert again.worker.wait_idle(60)
        after = again.status().to_json()
    finally:
        again.stop()
    for key in ("round", "examples", "until_next_round", "mnist", "adversarial", "history"):
        assert after[key] == before[key], key
    assert again.predictor.current.round == 1


def test_an_unreadable_drawing_gets_a_clear_message_and_saves_nothing(served, tmp_path):
    client, services, _ = served
    before = services.store.counts().total
    huge = sketchpad_value(np.zeros((300, 5000), np.uint8))
    with pytest.raises(AppError, match="can't be read: the image is 5000×300 px"):
        client.predict(client_payload(huge, tmp_path), 3, api_name="/flag")
    with pytest.raises(AppError, match="can't be read"):
        client.predict(client_payload(huge, tmp_path), api_name="/predict")
    assert services.store.counts().total == before


def test_status_and_panel_show_the_serving_model_under_a_gradient_attack(served):
    client, services, config = served
    robust = client.predict(api_name="/status")["robust"]
    assert robust["dataset"] == f"mnist-sample-5k/test, {config.robust_size} images under pgd-20x1@0.1"
    assert robust["size"] == config.robust_size and robust["top1"] <= 0.2  # a standard CNN does not resist 0.1
    panel = summary_markdown(services.status())
    assert f"Accuracy under a gradient attack (`{robust['dataset']}`): **{100 * robust['top1']:.1f}%**" in panel


def test_the_page_reads_well_before_anything_is_saved_and_after(served):
    _, services, config = served
    status = services.status()
    empty = replace(status, worker=replace(status.worker, round=0, until_next_round=7, training=False,
                                           examples=replace(status.worker.examples,
                                                            per_digit={str(d): 0 for d in range(10)})))
    accuracy, digits = plot_updates(empty)
    assert accuracy["caption"] == (f"Round 0 is the model as shipped. Round 1 appears after {config.retrain_every} "
                                   "saved drawings: 7 to go.")
    assert digits["caption"].startswith("No drawings saved yet") and digits["y_lim"] == [0, 5]  # whole numbers
    assert list(digits["value"]["examples"]) == [0] * 10
    accuracy, _ = plot_updates(replace(empty, worker=replace(empty.worker, training=True)))
    assert accuracy["caption"] == ("Round 0 is the model as shipped. Round 1 is training now: it appears here when "
                                   "it lands.")
    counts = {str(d): 0 for d in range(10)} | {"3": 2, "7": 12}
    later = replace(status, worker=replace(status.worker, round=2, examples=replace(status.worker.examples,
                                                                                     per_digit=counts)))
    accuracy, digits = plot_updates(later)
    assert accuracy["caption"] == "" and digits["caption"] == "" and digits["y_lim"] == [0, 12]
    words = how_it_works(config.retrain_every)
    assert f"every {config.retrain_every} saved drawings the model retrains on them" in words
    title, body = words.split("\n", 1)
    assert title == "# Outwit" and body.count(". ") == 1 and body.endswith(".")  # two sentences under the title
    assert "Lower means it is harder to fool" in summary_markdown(status)


def test_a_round_that_lands_is_told_in_a_visitors_words(served):
    _, services, _ = served
    worker = services.status().worker

    def summary(n, status, adversarial):
        held_out = None if adversarial is None else Accuracy(dataset="adversarial/test", size=20, top1=adversarial)
        return RoundSummary(n, status, None, held_out, None, None, 3.0, None)

    base = summary(0, "base", None)
    assert round_landed(replace(worker, round=0, history=[base])) is None  # the model as shipped
    first = replace(worker, round=1, history=[base, summary(1, "promoted", 0.9)])
    assert round_landed(first) == "Round 1 is live: 90.0% on held-out drawings like yours"
    third = replace(worker, round=3, history=[base, summary(1, "promoted", 0.81), summary(2, "rejected", 0.5),
                                              summary(3, "promoted", 0.96)])
    assert round_landed(third) == "Round 3 is live: 96.0% on held-out drawings like yours, up from 81.0%"
    assert summary_markdown(replace(services.status(), worker=third)).startswith(
        "### Round 3 is live: 96.0% on held-out drawings like yours, up from 81.0%\n")
    worse = replace(third, history=[*third.history[:-1], summary(3, "promoted", 0.7)])
    assert round_landed(worse).endswith("down from 81.0%")


def test_a_round_under_way_shows_how_far_it_has_run(served):
    _, services, _ = served
    worker = services.status().worker
    history = [RoundSummary(0, "base", None, None, None, None, 0.0, None),
               RoundSummary(1, "promoted", None, None, None, None, 3.4, None)]
    running = replace(worker, training=True, training_seconds=2.2, history=history)
    assert retraining(running) == "**retraining now…** 2 s in (the last round took 3 s)"
    assert "· **retraining now…** 2 s in" in summary_markdown(replace(services.status(), worker=running))
    assert retraining(replace(running, history=history[:1])) == "**retraining now…** 2 s in"
    idle = replace(running, training=False)
    assert "retraining" not in summary_markdown(replace(services.status(), worker=idle))


def test_the_accuracy_plot_has_one_tick_per_round_in_round_order(served):
    """Rounds as numbers got ticks at 0, 0.5 and 1 ("0, 1, 1" as whole numbers); as text they sort "10" before
    "2" unless the plot is told the order."""
    _, services, _ = served
    status = services.status()
    mnist = Accuracy("mnist-sample-5k/test", 1000, 0.99)
    history = [RoundSummary(r, "base" if r == 0 else "rejected" if r == 3 else "promoted", mnist, None, None, r, 1.0,
                            None) for r in range(12)]
    accuracy, _ = plot_updates(replace(status, worker=replace(status.worker, round=11, history=history)))
    rounds = [str(r) for r in range(12) if r != 3]  # a rejected round never served
    assert list(accuracy["value"]["round"]) == rounds  # one row per round: MNIST alone measured here
    order = [r for r in ROUND_ORDER if r in rounds]  # the plot's order, fixed when the page is built
    assert order == rounds

