"""The one home of checkpoints: bytes, files, and the Hub's model-repo layout.

A checkpoint is a safetensors file: the network's weights, and in its metadata a description of itself
(architecture and its arguments, round, metrics, the data and the recipe it was trained with), so loading it needs
nothing else. Files are written atomically (`storage.atomic_write`): nothing ever loads a half-written one.

On the Hub a model repo holds the layout the Hub's model libraries use: `model.safetensors` (the checkpoint),
`config.json` (its description, readable without safetensors) and `model.py` (the networks, which need only
torch), so a published round loads without a copy of this repository.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch.nn as nn
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import model as networks
from outwit.ml.metrics import Metrics
from outwit.storage import atomic_write, utc_now

CHECKPOINT_FORMAT = "outwit-checkpoint/2"
_EARLIER_FORMATS = ("outwit-checkpoint/1",)  # metrics in an older layout, the recipe inside trained_on
HUB_WEIGHTS, HUB_CONFIG, HUB_CODE = "model.safetensors", "config.json", "model.py"


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about itself: enough to rebuild and judge the model with nothing else."""

    arch: str
    arch_args: dict = field(default_factory=dict)
    round: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    trained_on: dict = field(default_factory=dict)  # the data: names and sizes
    recipe: dict = field(default_factory=dict)  # how: steps, learning rate, batch size, seed, ...
    created: str = ""

    def to_json(self) -> dict:
        return {"arch": self.arch, "arch_args": self.arch_args, "round": self.round,
                "metrics": self.metrics.to_json(), "trained_on": self.trained_on, "recipe": self.recipe,
                "created": self.created}

    @classmethod
    def from_json(cls, raw: dict) -> "CheckpointMeta":
        trained_on = dict(raw.get("trained_on") or {})
        recipe = raw.get("recipe") or trained_on.pop("recipe", {})
        return cls(arch=raw["arch"], arch_args=dict(raw.get("arch_args") or {}), round=int(raw.get("round", 0)),
                   metrics=Metrics.from_json(raw.get("metrics")), trained_on=trained_on, recipe=dict(recipe),
                   created=raw.get("created", ""))


def describe(model: nn.Module, *, round: int, metrics: Metrics, trained_on: dict, recipe: dict) -> CheckpointMeta:
    """The description of `model` as trained now."""
    arch, arch_args = networks.model_arch_args(model)
    return CheckpointMeta(arch=arch, arch_args=arch_args, round=round, metrics=metrics, trained_on=trained_on,
                          recipe=recipe, created=utc_now())


# ---------------------------------------------------------------------------------------------- bytes
def to_bytes(model: nn.Module, meta: CheckpointMeta) -> bytes:
    tensors = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    header = {"format": CHECKPOINT_FORMAT, "outwit": json.dumps(meta.to_json(), sort_keys=True)}
    return save_safetensors(tensors, metadata=header)


def from_bytes(data: bytes) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model a checkpoint describes; returns it in eval mode with its metadata."""
    meta = meta_from_bytes(data)
    model = networks.build_model(meta.arch, **meta.arch_args)
    model.load_state_dict(load_safetensors(data), strict=True)
    return model.eval(), meta


def meta_from_bytes(data: bytes) -> CheckpointMeta:
    """The description alone, without building the network."""
    header = _read_header(data)
    if header.get("format") not in (CHECKPOINT_FORMAT, *_EARLIER_FORMATS):
        raise ValueError(f"not an Outwit checkpoint (format={header.get('format')!r})")
    return CheckpointMeta.from_json(json.loads(header["outwit"]))


def _read_header(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError("checkpoint is truncated")
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or 8 + size > len(data):
        raise ValueError("checkpoint header is truncated")
    return json.loads(data[8 : 8 + size]).get("__metadata__", {})


# ---------------------------------------------------------------------------------------------- files
def save(path: str | Path, model: nn.Module, meta: CheckpointMeta) -> Path:
    """Write atomically: a temporary file in the same folder, flushed, then renamed."""
    return atomic_write(path, to_bytes(model, meta))


def load(path: str | Path) -> tuple[nn.Module, CheckpointMeta]:
    return from_bytes(Path(path).read_bytes())


def read_meta(path: str | Path) -> CheckpointMeta:
    return meta_from_bytes(Path(path).read_bytes())


# ---------------------------------------------------------------------------------------------- the Hub's layout
def hub_files(checkpoint: bytes) -> dict[str, bytes]:
    """A checkpoint as a model repo holds it: the weights, `config.json` and the networks' code."""
    meta = meta_from_bytes(checkpoint)
    config = {"format": CHECKPOINT_FORMAT, **meta.to_json(),
              "inputs": "(N, 1, 28, 28) float32 in [0, 1], white ink on black (MNIST's form)",
              "outputs": "(N, 10) logits for the digits 0-9"}
    return {HUB_WEIGHTS: checkpoint, HUB_CONFIG: (json.dumps(config, indent=2) + "\n").encode(),
            HUB_CODE: Path(networks.__file__).read_bytes()}


def load_hub_folder(folder: str | Path) -> tuple[nn.Module, CheckpointMeta]:
    """A model repo downloaded to `folder` (e.g. by `huggingface_hub.snapshot_download`)."""
    return load(Path(folder) / HUB_WEIGHTS)
