"""The serving model: a fast copy for single-image predictions, swapped atomically when a round lands.

The copy is the float model with each BatchNorm folded into its conv. For a CNN or the seed network given
calibration images, a static int8 copy (eager-mode torch.ao.quantization, the x86 backend, traced and frozen: 2–3×
faster on one core) is built in a background thread and then answers, except close calls, which the float copy
answers. It serves only if its top digit is the float model's on nearly all of the calibration images; otherwise, or
if it cannot be built, the float copy goes on serving alone and `serving` says why.
"""
from __future__ import annotations

import copy
import logging
import threading
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from model import CNN, SeedNet
from outwit.config import PRECISIONS
from outwit.ml.preprocess import preprocess

log = logging.getLogger(__name__)
# torch 2.14 still ships torch.ao.quantization and torch.jit's tracing, each saying it is deprecated on every call;
# the copy is built in a thread, where warnings.catch_warnings is not safe, so these notices are filtered here.
for _notice in (r"torch\.ao\.quantization is deprecated", r"Please use quant_min and quant_max",
                r"`torch\.jit\.\w+` is deprecated", r"torch\.quantize_per_tensor, torch\.quantize_per_channel and"):
    warnings.filterwarnings("ignore", message=_notice)
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.ao\.")  # scales read as constants
INT8_AGREEMENT = 0.99  # share of the calibration images on which the int8 copy must give the float model's top digit
CLOSE_CALL = 0.3  # top-two gap under which the float copy answers: where the int8 copy's top digit differed from
# the float model's (on 1.7% of 1,500 shifted-pool drawings, none of MNIST's test split), the gap was at most 0.19
_BUILDING = threading.Lock()
INT8_ARCHS = (CNN, SeedNet)  # convolutions and linear layers; the ViT's attention stays float


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy for serving: each BatchNorm folded into its conv, channels-last memory. Same outputs, faster."""
    fused = copy.deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, nn.Sequential):
            for i in range(len(block) - 1):
                if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                    block[i], block[i + 1] = fuse_conv_bn_eval(block[i], block[i + 1]), nn.Identity()
    return fused.to(memory_format=torch.channels_last)


def _quantizable(model: nn.Module) -> nn.Module:
    """A float copy ready for eager-mode int8: the input quantized after the normalisation, the logits dequantized
    after the last layer, each conv-BatchNorm-ReLU of a CNN fused into one. (Eager mode, not torch.fx: fx's tracer
    patches every module's __call__ for the whole process while it runs, and predictions and rounds run beside it.)"""
    from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules

    ready = copy.deepcopy(model).eval()
    ready.norm = nn.Sequential(ready.norm, QuantStub())
    last = "head" if isinstance(ready, CNN) else "fc2"
    setattr(ready, last, nn.Sequential(getattr(ready, last), DeQuantStub()))
    if isinstance(ready, CNN):
        for block in ready.features:
            if isinstance(block, nn.Sequential):
                fuse_modules(block, [["0", "1", "2"]], inplace=True)
    return ready


def int8_copy(model: nn.Module, calibration: torch.Tensor) -> tuple[nn.Module | None, str]:
    """A static int8 copy of `model`, its activation ranges observed on `calibration` ((N, 1, 28, 28) in [0, 1]),
    and a sentence on it; None and the reason when it cannot serve."""
    name = type(model).__name__
    if not isinstance(model, INT8_ARCHS):
        return None, f"float32: {name} has no int8 copy"
    engine = torch.backends.quantized.engine
    try:  # one build at a time: TorchScript's type names are shared by the whole process
        from torch.ao.quantization import convert, get_default_qconfig, prepare

        with _BUILDING, torch.no_grad():
            ready = _quantizable(model)
            ready.qconfig = get_default_qconfig(engine)
            prepare(ready, inplace=True)
            ready(calibration)  # the observers record each activation's range
            example = calibration[:1]
            quantized = torch.jit.freeze(torch.jit.trace(convert(ready), example, check_trace=False))
            agree = float((quantized(calibration).argmax(1) == model(calibration).argmax(1)).float().mean())
    except Exception as err:  # noqa: BLE001 (an optimisation: any failure leaves the float copy serving)
        return None, f"float32: the int8 copy of the {name} could not be built ({type(err).__name__}: {err})"
    described = f"top digit as the float model's on {agree:.1%} of {len(calibration)} calibration images"
    if agree < INT8_AGREEMENT:
        return None, f"float32: the int8 copy gave the {described}, under {INT8_AGREEMENT:.0%}"
    return quantized, f"int8 ({engine}): {described}"


class Serving(NamedTuple):
    """The serving model (as trained, not the fused copy that answers) and its metadata."""

    model: nn.Module
    meta: dict

    @property
    def round(self) -> int:
        """The round whose model this is; 0: the model as shipped."""
        return self.meta.get("round", 0)


class Predictor:
    """Holds the serving model; `swap` replaces it atomically while predictions go on.

    With `calibration` images (and precision "int8"), each model's int8 copy is built in the background and takes
    over from the float copy when ready; `wait_settled` waits for that. `build` makes the copy (`int8_copy`, or a
    call that has another process make it: the app's round process, so that the web process's CPU is the crowd's)."""

    def __init__(self, model: nn.Module, meta: dict | None = None, calibration: torch.Tensor | None = None,
                 precision: str = "int8",
                 build: Callable[[nn.Module, torch.Tensor], tuple[nn.Module | None, str]] = int8_copy):
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
        self._build = build
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._calibration, self._precision = (calibration if precision == "int8" else None), precision
        self._install(model.eval(), inference_copy(model), meta)

    def _install(self, model: nn.Module, serving: nn.Module, meta: dict | None) -> None:
        with self._lock:
            self._model, self._exact, self._meta = model, serving, dict(meta or {})
            self._int8: nn.Module | None = None
            self._about = ("float32: as configured" if self._precision == "float32" else
                           "float32: no calibration images" if self._calibration is None else
                           "float32 until its int8 copy is ready")
            self._settled.clear()
        if self._calibration is None:
            self._settled.set()
        else:
            # Not a daemon: one stopped by the exit in the middle of torch code aborts the process (a build: ~0.5 s).
            # Said outright: a thread started by a daemon (the retrain worker, after a round) is one by default.
            threading.Thread(target=self._build_int8, args=(model,), name="int8-copy", daemon=False).start()

    def _build_int8(self, model: nn.Module) -> None:
        with self._lock:
            if self._model is not model:  # swapped out before its turn: the newest model's thread settles
                return
        try:
            quantized, about = self._build(model, self._calibration)
        except Exception as err:  # noqa: BLE001 (e.g. the process that builds it is stopping: the float copy serves)
            quantized, about = None, f"float32: the int8 copy could not be built ({type(err).__name__}: {err})"
        with self._lock:
            if self._model is not model:  # a newer round came meanwhile: its own thread settles it
                return
            if quantized is not None:
                self._int8 = quantized
            self._about = about
            self._settled.set()
        (log.info if quantized is not None else log.warning)("serving round %s: %s", self._meta.get("round", 0), about)

    @property
    def current(self) -> Serving:
        """The serving model (as trained, not the fused copy) and its metadata, read together."""
        with self._lock:
            return Serving(self._model, self._meta)

    @property
    def serving(self) -> str:
        """What answers predictions: "int8 (...)" or "float32: <why>"."""
        with self._lock:
            return self._about

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until the current model's int8 copy is serving or was given up; False on timeout."""
        return self._settled.wait(timeout)

    def swap(self, model: nn.Module, meta: dict | None = None) -> None:
        self._install(model.eval(), inference_copy(model.eval()), meta)  # the fused copy is built outside the lock

    def predict_tensor(self, inputs: torch.Tensor) -> np.ndarray:
        """(1, 28, 28) or (B, 1, 28, 28) model inputs → probabilities, (10,) or (B, 10).

        From the int8 copy when it serves; a close call (its top two digits less than CLOSE_CALL apart) is answered by
        the float copy, so the top digit shown is the float model's (where the two differ, they are close)."""
        with self._lock:
            exact, int8 = self._exact, self._int8
        batch = inputs.unsqueeze(0) if inputs.dim() == 3 else inputs
        with torch.inference_mode():
            if int8 is None:
                probs = F.softmax(exact(batch.contiguous(memory_format=torch.channels_last)), dim=1).numpy()
            else:
                probs = F.softmax(int8(batch), dim=1).numpy()
                top2 = np.sort(probs, axis=1)[:, -2:]
                if (close := top2[:, 1] - top2[:, 0] < CLOSE_CALL).any():
                    redo = batch[torch.from_numpy(close)].contiguous(memory_format=torch.channels_last)
                    probs[close] = F.softmax(exact(redo), dim=1).numpy()
        return probs[0] if inputs.dim() == 3 else probs

    def predict(self, drawing: Any) -> np.ndarray:
        """A drawing → probabilities for the digits 0–9. Raises EmptyDrawingError."""
        return self.predict_tensor(preprocess(drawing))
