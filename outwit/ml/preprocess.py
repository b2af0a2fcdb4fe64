"""The one path from a drawing to what a network sees: MNIST's 28×28 form. Pure: arrays in, a tensor out.

The trainer, the app, the store and the tests all call `preprocess`, so what a model sees at training and at
serving time is the same by construction.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from PIL import Image


class EmptyDrawingError(ValueError):
    """The drawing has no ink, only a speck or dot, or a blot that fills its box: there is no digit to classify."""


INK_THRESHOLD = 0.2  # ink level (0..1) that counts as a stroke when finding the bounding box
SPECK_FRACTION = 0.1  # a drawing whose ink box is smaller than this share of the canvas is a speck or one dot
BLOT_SIDE, BLOT_FILL = 0.25, 0.85  # an ink box this share of the canvas on each side, this full: a blot
# (in MNIST, boxes that big are at most 74% inked: a thin 1 fills its box, but its box is narrow)
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
        if len({layer.shape[:2] for layer in layers}) > 1:
            sizes = " and ".join(sorted({f"{layer.shape[1]}×{layer.shape[0]}" for layer in layers}))
            raise ValueError(f"its layers differ in size ({sizes} px): they must be the canvas's size, all of them")
        if layers:  # strokes live in the layers' alpha channel
            return layers[0][:, :, 3] if len(layers) == 1 else np.maximum.reduce([layer[:, :, 3] for layer in layers])
        drawing = drawing.get("composite")
        if drawing is None:
            raise EmptyDrawingError("the canvas is empty (no layers and no composite image)")
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
    check_side(width=shape[1], height=shape[0])


def check_side(width: int, height: int) -> None:
    """ValueError for an image bigger than MAX_SIDE either way (the app asks before decoding an upload)."""
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"the image is {width}×{height} px; at most {MAX_SIDE}×{MAX_SIDE} is accepted")


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


def _fill(crop: np.ndarray, threshold: float) -> float:
    """The share of the crop that is ink, on a subsampled grid (cheap on a big canvas)."""
    stride = max(1, max(crop.shape) // 64)
    return float(np.mean(crop[::stride, ::stride] > threshold))


def _box(crop: np.ndarray) -> np.ndarray:
    """The crop at MNIST scale with MNIST-like strokes: a pen thinner than MNIST's is widened, not lost."""
    box = _scale(crop, BOX)
    missing = MIN_STROKE_WIDTH - _stroke_width(crop)
    if missing > 0:  # a rim on each side of every stroke (grey-level dilation), as strong as the width missing
        p = np.pad(box, 2)
        neighbours = np.maximum.reduce([p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
        box = np.maximum(p[1:-1, 1:-1], min(1.0, missing / 2) * neighbours)
    strokes = box[box > 0.05]
    if strokes.size == 0:  # hairlines that vanish at MNIST scale
        raise EmptyDrawingError("the strokes are too faint to read")
    body = np.percentile(strokes, 75)  # the strokes' body, not one crossing, sets full ink
    return np.clip(box / body, 0.0, 1.0)


def preprocess(drawing: Any) -> torch.Tensor:
    """A drawing (Sketchpad value, numpy array or PIL image) → (1, 28, 28) float tensor in MNIST form.

    What MNIST's makers did: white ink on black, crop to the ink's bounding box, scale the longer side to 20 px
    with anti-aliasing (area averaging) keeping the aspect ratio, then place by centre of mass in 28×28.
    Raises EmptyDrawingError for an empty canvas, a speck or a blot.
    """
    ink = _to_ink(drawing)
    full = 255.0 if ink.dtype == np.uint8 else 1.0
    rows, cols = _ink_extent(ink, INK_THRESHOLD * full)
    if rows.size == 0:
        raise EmptyDrawingError("the canvas is empty")
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 < max(3.0, SPECK_FRACTION * min(ink.shape)):
        raise EmptyDrawingError("only a speck was drawn")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if min(crop.shape) >= BLOT_SIDE * max(ink.shape) and _fill(crop, full / 2) > BLOT_FILL:
        raise EmptyDrawingError("the ink fills its box: a blot, not a digit")
    box = _box(crop.astype(np.float32) / full)
    new_h, new_w = box.shape
    total = box.sum()
    cy = (box.sum(axis=1) @ np.arange(new_h)) / total
    cx = (box.sum(axis=0) @ np.arange(new_w)) / total
    top = int(np.clip(round(SIZE / 2 - 0.5 - cy), 0, SIZE - new_h))
    left = int(np.clip(round(SIZE / 2 - 0.5 - cx), 0, SIZE - new_w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = box
    return torch.from_numpy(out).unsqueeze(0)  # (1, 28, 28)
