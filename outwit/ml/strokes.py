"""The page's quick guess: the brush strokes a page script recorded, turned back into the canvas's ink.

The Sketchpad hands a drawing to the server only after it has PNG-encoded and uploaded its layers twice (~600 ms in
Chromium). The page also records each stroke's pointer positions (CSS pixels on the canvas element) and sends them,
a few hundred bytes, the moment the pen lifts; `ink` draws them at the canvas's size with the brush's radius. The
editor fits the square canvas into its element, centred: one scale and one offset, both of which preprocessing
takes out again (it re-centres and re-sizes the ink), so the guess is the editor's. The editor's own value still
follows and stays the authority: a save reads the real drawing.
"""
from __future__ import annotations

import json
import math

import numpy as np
from PIL import Image, ImageDraw

MAX_CHARS = 200_000  # a payload longer than this is not from our page
MAX_POINTS = 20_000
MAX_STROKES = 500


class StrokesError(ValueError):
    """Not a strokes payload the page sends."""


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StrokesError(f"expected a finite number, got {value!r:.40}")
    return float(value)


def parse(payload: str) -> tuple[float, float, list[list[tuple[float, float]]]]:
    """'{"width": W, "height": H, "strokes": [[[x, y], ...], ...]}' → (W, H, strokes). Raises StrokesError."""
    if not isinstance(payload, str) or len(payload) > MAX_CHARS:
        raise StrokesError("the strokes are not a string of at most 200,000 characters")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as err:
        raise StrokesError(f"the strokes are not JSON: {err.msg}") from None
    except RecursionError:  # "[[[[..." thousands deep: no page sends that
        raise StrokesError("the strokes are nested too deep: a stroke is a list of [x, y] points") from None
    if not isinstance(data, dict) or not isinstance(data.get("strokes"), list):
        raise StrokesError('expected {"width": W, "height": H, "strokes": [[[x, y], ...], ...]}')
    width, height = _number(data.get("width")), _number(data.get("height"))
    if not (0 < width <= 10_000 and 0 < height <= 10_000):
        raise StrokesError(f"the canvas's size must be between 0 and 10,000 px, got {width:g}×{height:g}")
    strokes, points = data["strokes"], 0
    if len(strokes) > MAX_STROKES:
        raise StrokesError(f"at most {MAX_STROKES} strokes")
    parsed = []
    for stroke in strokes:
        if not isinstance(stroke, list):
            raise StrokesError("each stroke is a list of [x, y] points")
        points += len(stroke)
        if points > MAX_POINTS:
            raise StrokesError(f"at most {MAX_POINTS:,} points")
        if not all(isinstance(p, list) and len(p) == 2 for p in stroke):
            raise StrokesError("each point is [x, y]")
        parsed.append([(_number(x), _number(y)) for x, y in stroke])
    return width, height, [s for s in parsed if s]


def ink(payload: str, canvas: int, brush_radius: float) -> np.ndarray:
    """The strokes as (canvas, canvas) uint8 ink, 255 where the brush passed, as the editor's layer holds it."""
    width, height, strokes = parse(payload)
    scale = min(width, height) / canvas  # CSS px per canvas px: the canvas fits the element, centred
    left, top = (width - canvas * scale) / 2, (height - canvas * scale) / 2
    return rasterise([[((x - left) / scale, (y - top) / scale) for x, y in stroke] for stroke in strokes],
                     canvas, 2 * brush_radius)


def rasterise(strokes: list[list[tuple[float, float]]], canvas: int, brush: float) -> np.ndarray:
    """(canvas, canvas) uint8 ink, 255 where a pen `brush` px wide passed, with round caps and joints."""
    image = Image.new("L", (canvas, canvas), 0)
    pen = ImageDraw.Draw(image)
    r = brush / 2
    for stroke in strokes:
        if len(stroke) > 1:
            pen.line(stroke, fill=255, width=round(brush), joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round caps; a single point is a dot
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(image)
