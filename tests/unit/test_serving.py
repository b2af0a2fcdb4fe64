"""The serving predictor's int8 copy: it takes over from the float copy, gives the same digits, and steps aside
when it cannot be trusted."""
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from model import build_model
from outwit.ml import checkpoints, serving
from outwit.ml.serving import Predictor
from outwit.services import calibration_images
from outwit.sim.drawings import draw_sketch
from tests.paths import MODELS

BASE = MODELS / "base.safetensors"


@pytest.fixture(scope="module")
def base():
    return checkpoints.load(BASE)[0].eval()


@pytest.fixture(scope="module")
def calibration(mnist_sample_train):
    return calibration_images(mnist_sample_train)


def test_the_int8_copy_takes_over_and_reads_the_test_set_as_the_float_model_does(base, calibration,
                                                                                 mnist_sample_test):
    predictor = Predictor(base, {"round": 0}, calibration=calibration)
    assert predictor.wait_settled(60)
    assert predictor.serving.startswith("int8") and "100.0% of 256 calibration images" in predictor.serving
    images, labels = mnist_sample_test.tensors()
    served = predictor.predict_tensor(images)
    with torch.inference_mode():
        exact = torch.softmax(base(images), dim=1).numpy()
    assert not np.allclose(served, exact, atol=1e-4)  # int8 answers, not the float copy
    assert np.mean(served.argmax(1) == exact.argmax(1)) >= 0.995
    assert abs(np.mean(served.argmax(1) == labels.numpy()) - np.mean(exact.argmax(1) == labels.numpy())) <= 0.003
    assert predictor.predict(draw_sketch(4)).argmax() == 4  # a drawing from the page's canvas, end to end


def test_a_swap_serves_the_float_copy_at_once_and_the_new_models_int8_copy_after(base, calibration):
    threes = build_model("cnn").eval()
    threes.load_state_dict(base.state_dict())
    with torch.no_grad():
        threes.head.bias[3] += 100.0  # reads everything as a 3
    predictor = Predictor(base, {"round": 0}, calibration=calibration)
    read, errors, stop = [], [], threading.Event()

    def visitor():  # predictions go on throughout: while copies are built, swapped in and given up
        while not stop.is_set():
            try:
                read.append(int(predictor.predict(draw_sketch(7)).argmax()))
            except Exception as err:  # noqa: BLE001 - any error fails the test below
                errors.append(err)

    thread = threading.Thread(target=visitor)
    thread.start()
    predictor.swap(threes, {"round": 1})
    assert predictor.serving == "float32 until its int8 copy is ready"
    assert predictor.predict(draw_sketch(7)).argmax() == 3
    for _ in range(3):  # swaps faster than the copies are built: only the last model's copy serves
        predictor.swap(base, {"round": 2})
        predictor.swap(threes, {"round": 3})
    assert predictor.wait_settled(60) and predictor.serving.startswith("int8")
    stop.set()
    thread.join()
    assert not errors and read and set(read) <= {7, 3}
    assert predictor.current == (threes, {"round": 3})
    assert {int(predictor.predict(draw_sketch(d)).argmax()) for d in range(10)} == {3}


def test_an_int8_copy_that_disagrees_with_the_float_model_does_not_serve(base, calibration, monkeypatch):
    monkeypatch.setattr(serving, "INT8_AGREEMENT", 1.01)  # no copy can agree that well
    predictor = Predictor(base, {"round": 0}, calibration=calibration)
    assert predictor.wait_settled(60)
    assert predictor.serving.startswith("float32: the int8 copy gave the top digit as the float model's on 100.0%")
    x = calibration[:8]
    with torch.inference_mode():
        assert np.allclose(predictor.predict_tensor(x), torch.softmax(base(x), dim=1).numpy(), atol=1e-5)


def test_a_model_without_an_int8_copy_and_float32_serving_say_so(calibration):
    vit = Predictor(build_model("vit"), calibration=calibration)
    assert vit.wait_settled(60) and vit.serving == "float32: ViT has no int8 copy"
    exact = Predictor(build_model("cnn"), calibration=calibration, precision="float32")
    assert exact.wait_settled(0) and exact.serving == "float32: as configured"
    with pytest.raises(ValueError, match="precision='fp16' is not one of int8, float32"):
        Predictor(build_model("cnn"), precision="fp16")


def test_the_seed_network_has_an_int8_copy_too(calibration):
    seed = checkpoints.load(BASE.parent / "seed.safetensors")[0].eval()
    predictor = Predictor(seed, calibration=calibration)
    assert predictor.wait_settled(60) and predictor.serving.startswith("int8"), predictor.serving


def test_close_calls_are_answered_by_the_float_model(base, calibration):
    """Where the int8 copy's top two digits are close, the float copy answers: on drawings unlike MNIST's (the kind
    that fool the model), the top digit shown is the float model's, though the int8 copy alone differs on some."""
    from outwit.ml.preprocess import preprocess
    from outwit.sim import pool

    rng = np.random.default_rng(3)
    drawings = torch.stack([preprocess(pool.render(i % 10, pool.MIX[i % 3], rng)) for i in range(300)])
    predictor = Predictor(base, calibration=calibration)
    assert predictor.wait_settled(60) and predictor.serving.startswith("int8")
    with torch.inference_mode():
        exact = torch.softmax(base(drawings), dim=1).numpy()
        alone = torch.softmax(predictor._int8(drawings), dim=1).numpy()
    served = predictor.predict_tensor(drawings)
    assert (alone.argmax(1) != exact.argmax(1)).any()  # these drawings do split the two copies
    assert (served.argmax(1) == exact.argmax(1)).all()
    gaps = np.diff(np.sort(alone, axis=1)[:, -2:], axis=1)[:, 0]
    close = gaps < serving.CLOSE_CALL
    assert np.allclose(served[close], exact[close], atol=1e-5) and np.allclose(served[~close], alone[~close])
    assert 0 < close.mean() < 0.3


@pytest.mark.parametrize("swapped_by", ["the main thread", "a daemon thread"])
def test_a_process_that_exits_while_a_copy_is_being_built_exits_cleanly(swapped_by):
    """The builder is not a daemon thread: stopped at exit in the middle of torch code, the process aborted. The
    retrain worker, a daemon, swaps in each promoted round: a thread it starts is a daemon unless told otherwise."""
    swap = ("predictor.swap(model)\n" if swapped_by == "the main thread" else
            "worker = threading.Thread(target=predictor.swap, args=(model,), daemon=True)\n"
            "worker.start(); worker.join()\n")
    script = ("import threading\n"
              "from outwit.ml import checkpoints, data; from outwit.ml.serving import Predictor\n"
              "from outwit.services import calibration_images\n"
              f"model = checkpoints.load({str(BASE)!r})[0]\n"
              "predictor = Predictor(model, calibration=calibration_images(data.load_sample('train')))\n"
              + swap)  # and exit at once, the copy still being built
    done = subprocess.run([sys.executable, "-c", script], cwd=BASE.parent.parent, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-2000:]
