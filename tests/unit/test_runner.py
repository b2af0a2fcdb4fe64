"""Rounds computed in a process of their own: the same results as in this one, errors brought back as they were
raised, a child that dies replaced, and no child left behind."""
import os
import signal

import pytest
import torch

from outwit.dadc.rounds import EvalSet, Recipe, Replay, TrainingSet
from outwit.dadc.runner import NICE, InProcess, RoundProcess, RunnerError
from outwit.ml import data
from outwit.ml.metrics import ADVERSARIAL, MNIST
from outwit.ml.serving import Predictor
from outwit.sim.app_process import alive


class Exits:
    """Unpickled, it ends the process that unpickles it: a child that dies in the middle of a call."""

    def __reduce__(self):
        return os._exit, (3,)


@pytest.fixture(scope="module")
def sets():
    mnist_train, mnist_test = data.load_sample("train"), data.load_sample("test")
    x, y = (t[:600] for t in mnist_train.tensors())  # a small replay set: its trunk features are soon computed
    pick = torch.arange(300)
    adversarial_x, adversarial_y = x[300:310], (y[300:310] + 1) % 10  # ten "fooling" examples
    training = TrainingSet(torch.cat([adversarial_x.repeat(4, 1, 1, 1), x[pick]]),
                           torch.cat([adversarial_y.repeat(4), y[pick]]), {"adversarial": 10, "replay": 300},
                           replay=Replay(mnist_train.name, x, pick))
    test_x, test_y = mnist_test.tensors()
    return training, {MNIST: EvalSet(mnist_test.name, test_x[:200], test_y[:200], fixed=True),
                      ADVERSARIAL: EvalSet("adversarial/test", adversarial_x[:3], adversarial_y[:3])}


@pytest.fixture(scope="module")
def child():
    runner = RoundProcess()
    yield runner
    runner.close()


@pytest.mark.parametrize("tune", ["upper", "all"])
def test_the_child_computes_what_this_process_computes(base, sets, child, tune):
    training, eval_sets = sets
    recipe = Recipe(steps=8, tune=tune, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(child.threads)  # the same threads: the same sums in the same order
    try:
        here = InProcess()
        here.warm_up(base, training, eval_sets)
        expected = here.run(base, training, eval_sets, recipe, None)
    finally:
        torch.set_num_threads(threads)
    child.warm_up(base, training, eval_sets)
    got = child.run(base, training, eval_sets, recipe, None)
    assert got.metrics == expected.metrics and got.baseline == expected.baseline
    assert (got.promoted, got.reason, got.recipe, got.trained_on) == (expected.promoted, expected.reason, recipe,
                                                                       expected.trained_on)
    for (name, a), (_, b) in zip(got.model.state_dict().items(), expected.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert child.evaluate(base, eval_sets) == InProcess().evaluate(base, eval_sets)


def test_an_error_in_the_child_comes_back_as_it_was_raised(base, sets, child):
    training, eval_sets = sets
    pid = child.pid
    with pytest.raises(ValueError, match="must include 'mnist'"):
        child.run(base, training, {ADVERSARIAL: eval_sets[ADVERSARIAL]}, Recipe(steps=1), None)
    empty = TrainingSet(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="training_set is empty"):
        child.run(base, empty, eval_sets, Recipe(steps=1), None)
    assert child.pid == pid and alive(pid)  # an error is an answer: the child goes on


def test_a_child_that_dies_is_an_error_for_its_call_and_replaced_for_the_next(base, sets):
    training, eval_sets = sets
    runner = RoundProcess()
    try:
        first = runner.pid
        with pytest.raises(RunnerError, match=r"stopped during 'evaluate' \(exit code 3\)"):
            runner.evaluate(Exits(), eval_sets)
        assert not alive(first)
        assert runner.evaluate(base, eval_sets).top1(MNIST) > 0.9  # a new child answers
        second = runner.pid
        assert second != first
        os.kill(second, signal.SIGKILL)  # killed while idle: the next call starts another, and is answered
        os.waitpid(second, 0)
        assert runner.evaluate(base, eval_sets).top1(MNIST) > 0.9 and runner.pid not in (first, second)
    finally:
        runner.close()


def test_close_ends_the_child_and_later_calls_are_refused(base, sets):
    runner = RoundProcess()
    pid = runner.pid
    runner.close()
    assert not alive(pid) and runner.pid is None
    with pytest.raises(RunnerError, match="closed"):
        runner.evaluate(base, sets[1])


def test_the_child_ends_when_its_parent_says_not_on_a_signal(base, sets):
    runner = RoundProcess()
    try:
        assert os.getsid(runner.pid) != os.getsid(0)  # a terminal's Ctrl-C reaches the app alone
        assert runner.evaluate(base, sets[1]).top1(MNIST) > 0.9  # running
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, runner.pid) == min(19, mine + NICE)  # guesses come first
        os.kill(runner.pid, signal.SIGINT)
        os.kill(runner.pid, signal.SIGTERM)  # e.g. sent to every process of the container
        assert runner.evaluate(base, sets[1]).top1(MNIST) > 0.9
    finally:
        runner.close()


def test_the_int8_copy_built_in_the_child_serves_here_as_one_built_here(base, sets, child):
    calibration = sets[1][MNIST].inputs[:128]
    quantized, about = child.int8(base, calibration)
    here, about_here = InProcess().int8(base, calibration)
    assert about == about_here and about.startswith("int8")
    assert torch.equal(quantized(calibration), here(calibration))
    predictor = Predictor(base, {"round": 0}, calibration=calibration, build=child.int8)
    assert predictor.wait_settled(60) and predictor.serving == about
    assert predictor.predict_tensor(calibration[:4]).argmax(1).tolist() == base(calibration[:4]).argmax(1).tolist()


def test_an_int8_copy_that_cannot_be_built_leaves_the_float_copy_serving(base, sets):
    runner = RoundProcess()
    runner.close()
    predictor = Predictor(base, {"round": 0}, calibration=sets[1][MNIST].inputs[:64], build=runner.int8)
    assert predictor.wait_settled(60)
    assert predictor.serving == "float32: the int8 copy could not be built (RunnerError: the round process was closed)"


def test_rounds_compute_on_a_gpu_when_torch_finds_one_and_come_back_on_the_cpu(base, sets, monkeypatch):
    """This machine has no GPU: the CPU path runs here, through the same moves a GPU's would make."""
    assert InProcess().device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert InProcess().device.type == "cuda"  # a runner on a GPU machine picks it by itself
    monkeypatch.undo()
    training, eval_sets = sets
    runner = InProcess("cpu")
    runner.warm_up(base, training, eval_sets)
    result = runner.run(base, training, eval_sets, Recipe(steps=4, seed=1), None)
    assert all(p.device.type == "cpu" for p in result.model.parameters())  # saved, pickled and served from here
    assert all(p.device.type == "cpu" for p in base.parameters())  # the serving model stays where it serves
