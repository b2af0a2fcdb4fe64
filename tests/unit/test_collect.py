"""The one saving path (`outwit.dadc.collect`): what every way of saving a fooling example goes through, and Gradio's
flag callback over it (`flagging.py`)."""
import threading

import gradio as gr
import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from flagging import OutwitFlagger
from outwit.config import Config
from outwit.dadc.collect import Collector, Fooling, NotFooled, Stopping
from outwit.ml.preprocess import EmptyDrawingError
from outwit.services import start_services
from outwit.sim.drawings import draw_sketch, fooling_examples


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    config = Config(data_dir=tmp_path_factory.mktemp("collect") / "data", retrain_every=1000, mnist_data="sample",
                    robust_eps=0)
    services = start_services(config)
    assert services.worker.wait_idle(60)
    yield services
    services.stop()


@pytest.fixture(scope="module")
def fooling(services):
    """Drawings the serving model gets wrong: (drawing, the digit drawn, its probabilities)."""
    return fooling_examples(services.predictor.predict, 4)


def test_a_fooling_drawing_is_saved_counted_as_a_fooled_attempt_and_brings_the_round_closer(services, fooling):
    collector, worker = services.collector, services.worker
    drawing, digit, probs = fooling[0]
    before = worker.status()
    example = collector.fooling(drawing, digit, session="visitor-1", user="Ada")
    assert (example.label, example.guess, example.model_round) == (digit, int(probs.argmax()), 0)
    saved = collector.save(example)
    row, now = saved.row, saved.status
    assert (row["label"], row["guess"], row["source"], row["user"], row["round"]) == (digit, example.guess, "drawn",
                                                                                     "Ada", 0)
    assert services.store.row(row["id"]) == row
    assert now.examples.total == before.examples.total + 1
    assert (now.error_rate.attempts, now.error_rate.flags) == (before.error_rate.attempts + 1,
                                                               before.error_rate.flags + 1)
    assert now.until_next_round == before.until_next_round - 1 and not saved.starts_round


def test_a_drawing_the_model_reads_right_is_refused_and_counts_as_an_attempt_that_did_not_fool(services):
    collector, worker = services.collector, services.worker
    before = worker.status()
    seven = draw_sketch(7)
    assert collector.judge(seven).guess == 7
    with pytest.raises(NotFooled, match="already reads this as 7"):
        collector.fooling(seven, 7)
    collector.tried()  # what the page does when such a drawing is cleared
    now = worker.status()
    assert now.examples.total == before.examples.total
    assert (now.error_rate.attempts, now.error_rate.flags) == (before.error_rate.attempts + 1, before.error_rate.flags)


def test_a_machine_adversary_s_input_is_saved_but_is_no_person_s_attempt(services):
    collector, worker = services.collector, services.worker
    before = worker.status()
    attacked = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    saved = collector.save(Fooling(label=4, guess=9, confidence=0.8, model_round=0, model_input=attacked,
                                   source="pgd-40x1@0.1", session="visitor-2"))
    assert saved.row["source"] == "pgd-40x1@0.1" and saved.status.examples.total == before.examples.total + 1
    assert saved.status.error_rate.attempts == before.error_rate.attempts  # the error rate counts drawings only


def test_a_bad_example_is_refused_with_nothing_saved_or_counted(services, fooling):
    collector, worker = services.collector, services.worker
    before = worker.status()
    drawing, digit, probs = fooling[1]
    for bad in (Fooling(label=12, guess=1, confidence=0.5, model_round=0, drawing=drawing),
                Fooling(label=digit, guess=1, confidence=0.5, model_round=0, drawing=drawing, user="bell\x07")):
        with pytest.raises(ValueError):
            collector.save(bad)
    with pytest.raises(EmptyDrawingError):
        collector.save(Fooling(label=3, guess=1, confidence=0.5, model_round=0,
                               drawing=draw_sketch(1) | {"layers": [np.zeros((280, 280, 4), np.uint8)]}))
    assert worker.status().examples == before.examples and worker.status().error_rate == before.error_rate


def sketchpad_files(drawing: dict, folder) -> dict:
    """A Sketchpad's value as the page sends it (each image an uploaded PNG): what Gradio hands a flag callback."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, image in (("background", drawing["background"]), ("layer", drawing["layers"][0]),
                       ("composite", drawing["composite"])):
        Image.fromarray(image).save(folder / f"{key}.png")
        files[key] = {"path": handle_file(str(folder / f"{key}.png"))["path"], "meta": {"_type": "gradio.FileData"}}
    return {"background": files["background"], "layers": [files["layer"]], "composite": files["composite"]}


def test_the_flag_callback_saves_a_drawing_as_gradio_hands_it_the_digit_being_the_flag_option(services, fooling,
                                                                                              tmp_path):
    store = services.store
    flagger = OutwitFlagger(services.collector)
    flagger.setup([gr.Sketchpad(type="numpy"), gr.Label()], tmp_path / "flagged")
    drawing, digit, probs = fooling[2]
    total = store.counts().total
    assert flagger.flag([sketchpad_files(drawing, tmp_path / "upload"), None], flag_option=str(digit),
                        username="Grace") == total + 1
    row = store.latest(1)[0]
    assert (row["label"], row["guess"], row["user"]) == (digit, int(probs.argmax()), "Grace")
    assert not (tmp_path / "flagged").exists()  # examples go to the store, nowhere else


@pytest.mark.parametrize("option, drawing, message", [
    (None, "fooling", "flag_option=None"), ("12", "fooling", "flag_option='12'"),
    ("7", "seven", "already reads this as 7")])
def test_the_flag_callback_refuses_what_is_no_fooling_example_and_saves_nothing(services, fooling, tmp_path, option,
                                                                                drawing, message):
    flagger = OutwitFlagger(services.collector)
    flagger.setup([gr.Sketchpad(type="numpy")], tmp_path)
    value = fooling[3][0] if drawing == "fooling" else draw_sketch(7)
    total = services.store.counts().total
    with pytest.raises(ValueError, match=message):
        flagger.flag([value], flag_option=option)
    assert services.store.counts().total == total


def test_a_closed_collector_refuses_saves_after_those_under_way_finish(services, fooling, monkeypatch):
    """What a stopping app does before its last push: no save may land after the push has looked."""
    collector = Collector(store=services.store, worker=services.worker, predictor=services.predictor)
    drawing, digit, _ = fooling[0]
    example = collector.fooling(drawing, digit)
    writing, release = threading.Event(), threading.Event()
    add = services.store.add

    def slow_add(*args, **kwargs):
        writing.set()
        release.wait(30)
        return add(*args, **kwargs)

    monkeypatch.setattr(services.store, "add", slow_add)
    saved = []
    under_way = threading.Thread(target=lambda: saved.append(collector.save(example)))
    under_way.start()
    assert writing.wait(30)
    assert not collector.close(timeout=0.2)  # one is under way: close waits for it
    total = services.store.counts().total
    with pytest.raises(Stopping, match="stopping"):
        collector.save(example)
    release.set()
    under_way.join(30)
    assert collector.close(timeout=30) and saved and services.store.row(saved[0].row["id"])
    assert services.store.counts().total == total + 1  # the one under way, and no other
