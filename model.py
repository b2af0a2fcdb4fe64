"""Networks, the one preprocessing function, prediction and checkpoint (de)serialisation.

Pure: no files, no network, no Gradio. Callers hand in arrays and bytes.
"""
from __future__ import annotations

import copy
import json
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CHECKPOINT_FORMAT = "outwit-checkpoint/1"


# ---------------------------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class SeedConfig:
    """The network of the original DADC blog post, kept for comparison."""

    hidden: int = 50
    dropout: float = 0.5


@dataclass(frozen=True)
class CNNConfig:
    """The default: BatchNorm conv blocks, about 140k parameters."""

    channels: tuple[int, int, int] = (32, 64, 128)
    dropout: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


class Normalize(nn.Module):
    """Callers pass pixels in [0, 1]; the MNIST normalisation lives inside the model."""

    def forward(self, x):
        return (x - MNIST_MEAN) / MNIST_STD


class SeedNet(nn.Module):
    def __init__(self, config: SeedConfig):
        super().__init__()
        self._config = config
        self.norm = Normalize()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(config.dropout)
        self.fc1 = nn.Linear(320, config.hidden)
        self.fc2 = nn.Linear(config.hidden, 10)
        self.dropout = config.dropout

    def forward(self, x):  # (B, 1, 28, 28) in [0, 1]
        x = self.norm(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (B, 10, 12, 12)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # (B, 20, 4, 4)
        x = F.relu(self.fc1(x.flatten(1)))  # (B, 50)
        x = F.dropout(x, self.dropout, training=self.training)
        return self.fc2(x)  # (B, 10) logits


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self._config = config
        c1, c2, c3 = config.channels
        self.norm = Normalize()
        self.features = nn.Sequential(
            _conv_block(1, c1), _conv_block(c1, c1), nn.MaxPool2d(2),  # (B, c1, 14, 14)
            _conv_block(c1, c2), _conv_block(c2, c2), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            _conv_block(c2, c3),  # (B, c3, 7, 7)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c3, 10)

    def forward(self, x):  # (B, 1, 28, 28) in [0, 1]
        x = self.features(self.norm(x))
        x = x.mean(dim=(2, 3))  # (B, c3) global average pool
        return self.head(self.dropout(x))  # (B, 10) logits


ARCHITECTURES: dict[str, tuple[type, type]] = {"seed": (SeedNet, SeedConfig), "cnn": (CNN, CNNConfig)}


def build_model(arch: str, **arch_args: Any) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch={arch!r} is not one of {sorted(ARCHITECTURES)}")
    net_cls, config_cls = ARCHITECTURES[arch]
    return net_cls(config_cls(**arch_args))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- preprocessing
class EmptyDrawingError(ValueError):
    """The drawing has no ink, or only a speck: there is nothing to classify."""


INK_THRESHOLD = 0.2  # ink level (0..1) that counts as a stroke when finding the bounding box
SPECK_FRACTION = 0.04  # a drawing whose ink box is smaller than this share of the canvas is a speck
MIN_STROKE_WIDTH = 1.8  # px in the 20-px box; MNIST's strokes: median 2.5, 5th percentile 1.7
MAX_SIDE = 4096  # px; a bigger image is refused rather than processed (a canvas is 280 or 800)
BOX, SIZE = 20, 28  # MNIST: the longer side scaled to 20 px, placed by centre of mass in 28×28


def _to_ink(drawing: Any) -> np.ndarray:
    """Any accepted drawing → (H, W) ink, white on black: uint8 (0–255) or float32 (0–1).

    A Sketchpad's alpha comes back as uint8 untouched, so that a big canvas is cropped before it is converted.
    """
    if isinstance(drawing, dict):
        layers = [np.asarray(layer) for layer in (drawing.get("layers") or []) if layer is not None]
        layers = [layer for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
        for layer in layers:
            _check_size(layer.shape)
        if layers:  # strokes live in the layers' alpha channel
            return layers[0][:, :, 3] if len(layers) == 1 else np.maximum.reduce([l[:, :, 3] for l in layers])
        drawing = drawing.get("composite")
        if drawing is None:
            raise EmptyDrawingError("the drawing has no layers and no composite image")
    if isinstance(drawing, Image.Image):
        drawing = np.asarray(drawing.convert("RGBA") if drawing.mode in ("P", "LA", "PA") else drawing)
    image = np.asarray(drawing)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) or 0 in image.shape:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    _check_size(image.shape)
    if image.ndim == 3 and image.shape[2] == 4 and image[:, :, 3].min() < (250 if image.dtype == np.uint8 else 0.99):
        return image[:, :, 3]  # strokes on a transparent background
    image = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    gray = image if image.ndim == 2 else image[:, :, :3].mean(axis=2)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = gray - background if background < 0.5 else background - gray  # light ink on dark, or dark on light
    span = ink.max()
    return np.clip(ink / span, 0.0, 1.0) if span > 0 else np.zeros_like(gray)


def _check_size(shape: tuple) -> None:
    if max(shape[:2]) > MAX_SIDE:
        raise ValueError(f"the image is {shape[1]}×{shape[0]} px; at most {MAX_SIDE}×{MAX_SIDE} is accepted")


def ink_image(drawing: Any) -> np.ndarray:
    """The drawing's ink as (H, W) uint8, white (255) on black: what `preprocess` starts from."""
    ink = _to_ink(drawing)
    return ink.copy() if ink.dtype == np.uint8 else (ink * 255).round().astype(np.uint8)


def _ink_extent(ink: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the rows and of the columns that hold ink above `threshold`.

    Row and column maxima, not a full boolean mask: a big canvas is read about once and nothing its size is
    written, which keeps the model's weights in cache for the prediction that follows. The alpha plane of an
    RGBA array is a strided view; read as whole little-endian uint32 pixels (alpha in the top byte) the
    same maxima come from memory in order.
    """
    base = ink.base
    if (ink.dtype == np.uint8 and ink.strides[1] == 4 and isinstance(base, np.ndarray) and base.dtype == np.uint8
            and base.ndim == 3 and base.shape[2] == 4 and base.flags.c_contiguous and sys.byteorder == "little"
            and base.shape[:2] == ink.shape):
        ink, threshold = base.view(np.uint32)[:, :, 0], (int(threshold) << 24) | 0xFFFFFF
    rows = np.flatnonzero(ink.max(axis=1) > threshold)
    if rows.size == 0:
        return rows, rows
    return rows, np.flatnonzero(ink[rows[0] : rows[-1] + 1].max(axis=0) > threshold)


def _scale(crop: np.ndarray, side: int) -> np.ndarray:
    """Area-average the crop so that its longer side is `side` px, keeping the aspect ratio."""
    height, width = crop.shape
    factor = side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)


def _stroke_width(crop: np.ndarray) -> float:
    """The strokes' mean width in px once the crop is scaled to the 20-px box: 2.55 × area / boundary length.

    (A stroke of length L has about 2.55 L boundary steps on the pixel grid, averaged over directions.)
    Measured on a subsampled mask: cheap on a big canvas, and strokes wider than the stride survive it.
    """
    stride = max(1, max(crop.shape) // 160)
    m = crop[::stride, ::stride] > 0.5
    boundary = (np.count_nonzero(m[1:] != m[:-1]) + np.count_nonzero(m[:, 1:] != m[:, :-1])
                + np.count_nonzero(m[[0, -1]]) + np.count_nonzero(m[:, [0, -1]]))
    return 2.55 * np.count_nonzero(m) / max(1, boundary) * stride * BOX / max(crop.shape)


def _box(crop: np.ndarray) -> np.ndarray:
    """The crop at MNIST scale with MNIST-like strokes: a pen thinner than MNIST's is widened, not lost."""
    box = _scale(crop, BOX)
    missing = MIN_STROKE_WIDTH - _stroke_width(crop)
    if missing > 0:  # a rim on each side of every stroke (grey-level dilation), as strong as the width missing
        p = np.pad(box, 2)
        neighbours = np.maximum.reduce([p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
        box = np.maximum(p[1:-1, 1:-1], min(1.0, missing / 2) * neighbours)
    body = np.percentile(box[box > 0.05], 75)  # the strokes' body, not one crossing, sets full ink
    return np.clip(box / body, 0.0, 1.0)


def preprocess(drawing: Any) -> torch.Tensor:
    """A drawing (Sketchpad value, numpy array or PIL image) → (1, 28, 28) float tensor in MNIST form.

    What MNIST's makers did: white ink on black, crop to the ink's bounding box, scale the longer side to 20 px
    with anti-aliasing (area averaging) keeping the aspect ratio, then place by centre of mass in 28×28.
    Raises EmptyDrawingError for an empty canvas or a speck.
    """
    ink = _to_ink(drawing)
    full = 255.0 if ink.dtype == np.uint8 else 1.0
    rows, cols = _ink_extent(ink, INK_THRESHOLD * full)
    if rows.size == 0:
        raise EmptyDrawingError("the canvas is empty")
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 < max(3.0, SPECK_FRACTION * min(ink.shape)):
        raise EmptyDrawingError("only a speck was drawn")
    box = _box(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / full)
    new_h, new_w = box.shape
    total = box.sum()
    cy = (box.sum(axis=1) @ np.arange(new_h)) / total
    cx = (box.sum(axis=0) @ np.arange(new_w)) / total
    top = int(np.clip(round(SIZE / 2 - 0.5 - cy), 0, SIZE - new_h))
    left = int(np.clip(round(SIZE / 2 - 0.5 - cx), 0, SIZE - new_w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = box
    return torch.from_numpy(out).unsqueeze(0)  # (1, 28, 28)


# ---------------------------------------------------------------------------------------------- prediction
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


# ---------------------------------------------------------------------------------------------- checkpoints
@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself: enough to rebuild and judge the model with nothing else."""

    arch: str
    arch_args: dict = field(default_factory=dict)
    round: int = 0
    metrics: dict = field(default_factory=dict)
    trained_on: dict = field(default_factory=dict)
    created: str = ""


def model_arch_args(model: nn.Module) -> tuple[str, dict]:
    for name, (net_cls, _) in ARCHITECTURES.items():
        if type(model) is net_cls:
            return name, json.loads(json.dumps(asdict(model._config)))  # as a checkpoint stores them
    raise ValueError(f"{type(model).__name__} is not a known architecture")


def checkpoint_to_bytes(model: nn.Module, meta: CheckpointMeta) -> bytes:
    tensors = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    header = {"format": CHECKPOINT_FORMAT, "outwit": json.dumps(asdict(meta), sort_keys=True)}
    return save_safetensors(tensors, metadata=header)


def checkpoint_from_bytes(data: bytes) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model a checkpoint describes; returns it in eval mode with its metadata."""
    header = _read_header(data)
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not an Outwit checkpoint (format={header.get('format')!r})")
    meta = CheckpointMeta(**json.loads(header["outwit"]))
    model = build_model(meta.arch, **meta.arch_args)
    model.load_state_dict(load_safetensors(data), strict=True)
    return model.eval(), meta


def _read_header(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError("checkpoint is truncated")
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or 8 + size > len(data):
        raise ValueError("checkpoint header is truncated")
    return json.loads(data[8 : 8 + size]).get("__metadata__", {})
