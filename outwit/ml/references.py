"""The fixed reference models shipped beside the package (`models/`): what a visitor may choose to fool besides the
serving round, and what the fooling-transfer table tries every example on. Each is read from disk the first time it
is asked for, not at the app's start, and kept.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from outwit.ml import checkpoints

MODELS = Path(__file__).resolve().parents[2] / "models"  # the shipped checkpoints, beside the package
# file stem → the name people see, in the order they are offered and tabled
REFERENCES = {"seed": "blog's small network", "base": "base CNN", "robust": "robust CNN", "vit": "ViT"}


class References:
    """The reference models found in `models_dir`, loaded on first use; thread-safe."""

    def __init__(self, models_dir: str | Path = MODELS):
        self.models_dir = Path(models_dir)
        self._loaded: dict[str, nn.Module] = {}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        """The keys of REFERENCES whose checkpoint is there, in REFERENCES' order."""
        return [key for key in REFERENCES if (self.models_dir / f"{key}.safetensors").exists()]

    def model(self, key: str) -> nn.Module:
        """The reference `key` in eval mode. KeyError for a key that is not one of `available()`. Once loaded, a
        model is answered from memory (each stroke's guess asks for the chosen ones), without looking at the disk."""
        with self._lock:
            if key not in self._loaded:
                if key not in self.available():
                    raise KeyError(key)
                self._loaded[key] = checkpoints.load(self.models_dir / f"{key}.safetensors")[0].eval()
            return self._loaded[key]

    def read(self, key: str, model_input: torch.Tensor) -> np.ndarray:
        """(1, 28, 28) model input → the reference's (10,) probabilities."""
        with torch.inference_mode():
            return F.softmax(self.model(key)(model_input.unsqueeze(0)), dim=1)[0].numpy()
