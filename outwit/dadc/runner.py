"""Where a round computes: in a process of its own (the app), or in the caller's (tools, and tests of the worker).

Under a crowd a round in the web process took about half of that process's CPU and held its GIL for most of it:
every guess waited behind the training loop's Python. `RoundProcess` runs the rounds in a child, `python -m
outwit.dadc.runner`, on the other core and at a lower CPU priority: the worker thread sends the model, tensors and
recipe (pickled over a pipe) and waits for the `RoundResult`. The child keeps the trunk-feature cache across rounds,
as the worker did, and also builds each serving model's int8 copy (`Predictor(build=...)`).

The child runs in a session of its own and ignores SIGINT and SIGTERM: the parent decides when rounds stop, by
closing the pipe (the child exits when it next reads); it also dies with its parent (Linux), so a killed app leaves
no round computing for nobody.
A child that dies is started again for the next call; the call that saw it die raises `RunnerError`.
"""
from __future__ import annotations

import copy
import ctypes
import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from outwit.dadc.rounds import EvalSet, Recipe, RoundResult, TrainingSet, evaluate_sets, on_device, run_round
from outwit.ml.metrics import Metrics
from outwit.ml.serving import int8_copy
from outwit.ml.tuning import TrunkCache, warm_up

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # where model.py is: the child unpickles the networks from it
CALLS = ("evaluate", "warm_up", "run", "int8_saved")  # what the child answers: `InProcess`'s methods
NICE = 10  # the child's CPU priority below the web process's: a round takes the CPU that guesses leave


class RunnerError(RuntimeError):
    """The round process stopped, or answered what cannot be read."""


def round_device() -> torch.device:
    """Where rounds compute: a GPU when torch finds one (a runner on a GPU machine), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class InProcess:
    """Rounds computed by the calling thread, on `device` (default: `round_device()`); evaluations of the serving
    model and its int8 copy stay on the CPU, where it serves."""

    def __init__(self, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else round_device()
        self.cache = TrunkCache()  # MNIST's trunk features, kept across rounds while the trunk stays the same

    def evaluate(self, model: nn.Module, eval_sets: Mapping[str, EvalSet]) -> Metrics:
        return evaluate_sets(model, eval_sets)

    def warm_up(self, model: nn.Module, training_set: TrainingSet, eval_sets: Mapping[str, EvalSet]) -> None:
        """The trunk features a round will use, computed where it will run."""
        training_set, eval_sets = on_device(self.device, training_set, eval_sets)
        warm_up(self.cache, copy.deepcopy(model).to(self.device) if self.device.type != "cpu" else model,
                training_set, eval_sets)

    def run(self, model: nn.Module, training_set: TrainingSet, eval_sets: Mapping[str, EvalSet], recipe: Recipe,
            baseline: Metrics | None) -> RoundResult:
        return run_round(model, training_set, eval_sets, recipe, baseline=baseline, cache=self.cache,
                         device=self.device)

    def int8(self, model: nn.Module, calibration: torch.Tensor) -> tuple[nn.Module | None, str]:
        """The serving model's int8 copy, and a sentence on it (`serving.int8_copy`)."""
        return int8_copy(model, calibration)

    def int8_saved(self, model: nn.Module, calibration: torch.Tensor) -> tuple[bytes | None, str]:
        """As `int8`, the copy saved as TorchScript's bytes (a traced module cannot be pickled)."""
        quantized, about = self.int8(model, calibration)
        if quantized is None:
            return None, about
        saved = io.BytesIO()
        torch.jit.save(quantized, saved)
        return saved.getvalue(), about

    def close(self) -> None:
        pass


class RoundProcess:
    """The same calls as `InProcess`, answered by a child process; one call at a time."""

    def __init__(self, threads: int = 1):
        self.threads = threads  # torch's threads in the child: one leaves the other core to the web process
        self._lock = threading.Lock()
        self._child: tuple[subprocess.Popen, Connection, Connection] | None = None
        self._closed = False
        with self._lock:
            self._start()  # importing torch takes the child a second or two: begun now, beside the app's start

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._child[0].pid if self._child else None

    def evaluate(self, model, eval_sets) -> Metrics:
        return self._call("evaluate", model, dict(eval_sets))

    def warm_up(self, model, training_set, eval_sets) -> None:
        self._call("warm_up", model, training_set, dict(eval_sets))

    def run(self, model, training_set, eval_sets, recipe, baseline) -> RoundResult:
        return self._call("run", model, training_set, dict(eval_sets), recipe, baseline)

    def int8(self, model, calibration) -> tuple[nn.Module | None, str]:
        """Built in the child (0.8 s of CPU a round, which the web process served guesses with), loaded here (ms)."""
        saved, about = self._call("int8_saved", model, calibration)
        return (torch.jit.load(io.BytesIO(saved)) if saved is not None else None), about

    def close(self, timeout: float = 10) -> None:
        """Close the pipe (the child exits once its call under way is answered); kill it after `timeout`."""
        with self._lock:
            self._closed = True
            self._stop_child(timeout)

    def _start(self) -> None:
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "outwit.dadc.runner", str(requests_r), str(answers_w), str(self.threads)],
                pass_fds=(requests_r, answers_w), stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                start_new_session=True)  # a terminal's Ctrl-C goes to the app, which then closes the rounds
        finally:
            os.close(requests_r)
            os.close(answers_w)
        self._child = (process, Connection(requests_w, readable=False), Connection(answers_r, writable=False))
        log.info("rounds compute in process %d", process.pid)

    def _stop_child(self, timeout: float) -> None:
        if self._child is None:
            return
        process, requests, answers = self._child
        self._child = None
        requests.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        answers.close()

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            if self._closed:
                raise RunnerError("the round process was closed")
            if self._child is None or self._child[0].poll() is not None:
                self._stop_child(0)
                self._start()
            process, requests, answers = self._child
            try:
                requests.send_bytes(pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL))
                answer = answers.recv_bytes()
            except (EOFError, OSError) as err:
                code = process.wait()
                self._stop_child(0)
                raise RunnerError(f"the round process stopped during {name!r} (exit code {code})") from err
        try:
            ok, value = pickle.loads(answer)
        except Exception as err:  # noqa: BLE001 - e.g. an exception class that cannot be rebuilt here
            raise RunnerError(f"the round process's answer to {name!r} could not be read: {err}") from err
        if not ok:
            raise value
        return value


# ------------------------------------------------------------------------------------------------ the child
def _die_with_parent() -> None:
    """Linux's PR_SET_PDEATHSIG: SIGKILL when the parent ends, however it ends; elsewhere the pipe's EOF does."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent was gone before the above took effect
        sys.exit(0)


def _answer(runner: InProcess, name: str, args: tuple) -> tuple[bool, Any]:
    try:
        return True, getattr(runner, name)(*args)
    except Exception as err:  # noqa: BLE001 - sent to the parent, which records the round as failed
        try:
            pickle.dumps(err)
            return False, err
        except Exception:  # noqa: BLE001 - an exception that cannot be pickled: its words go instead
            return False, RuntimeError(f"{type(err).__name__}: {err}")


def serve(requests_fd: int, answers_fd: int, threads: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    os.nice(NICE)
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s round process %(levelname)s %(message)s")
    runner = InProcess()
    requests, answers = Connection(requests_fd, writable=False), Connection(answers_fd, readable=False)
    while True:
        try:
            name, args = pickle.loads(requests.recv_bytes())
        except EOFError:
            return
        if name not in CALLS:
            answers.send_bytes(pickle.dumps((False, RunnerError(f"no call named {name!r}"))))
            continue
        answers.send_bytes(pickle.dumps(_answer(runner, name, args), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":  # served from the module by its own name, so that what it pickles names it so
    from outwit.dadc.runner import serve as _serve

    _serve(*map(int, sys.argv[1:4]))
