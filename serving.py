"""The serving model: a fused copy for fast single-image predictions, swapped atomically when a round lands."""
from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from preprocess import preprocess


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy for serving: each BatchNorm folded into its conv, channels-last memory. Same outputs, faster."""
    fused = copy.deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, nn.Sequential):
            for i in range(len(block) - 1):
                if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                    block[i], block[i + 1] = fuse_conv_bn_eval(block[i], block[i + 1]), nn.Identity()
    return fused.to(memory_format=torch.channels_last)


class Predictor:
    """Holds the serving model; `swap` replaces it atomically while predictions go on."""

    def __init__(self, model: nn.Module, meta: dict | None = None):
        self._lock = threading.Lock()
        self._model, self._serving, self._meta = model.eval(), inference_copy(model), dict(meta or {})

    @property
    def current(self) -> tuple[nn.Module, dict]:
        """The serving model (as trained, not the fused copy) and its metadata."""
        with self._lock:
            return self._model, self._meta

    def swap(self, model: nn.Module, meta: dict | None = None) -> None:
        serving = inference_copy(model.eval())  # built outside the lock: predictions never wait for it
        with self._lock:
            self._model, self._serving, self._meta = model, serving, dict(meta or {})

    def predict_tensor(self, inputs: torch.Tensor) -> np.ndarray:
        """(1, 28, 28) or (B, 1, 28, 28) model inputs → probabilities, (10,) or (B, 10)."""
        with self._lock:
            serving = self._serving
        batch = inputs.unsqueeze(0) if inputs.dim() == 3 else inputs
        with torch.inference_mode():
            probs = F.softmax(serving(batch.contiguous(memory_format=torch.channels_last)), dim=1).numpy()
        return probs[0] if inputs.dim() == 3 else probs

    def predict(self, drawing: Any) -> np.ndarray:
        """A drawing → probabilities for the digits 0–9. Raises EmptyDrawingError."""
        return self.predict_tensor(preprocess(drawing))
