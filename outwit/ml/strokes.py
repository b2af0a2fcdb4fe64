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


def parse(payload: str) -> tuple[float, float, list[list[tuple[float, ...]]]]:
    """'{"width": W, "height": H, "strokes": [[[x, y, t], ...], ...]}' → (W, H, strokes), each point (x, y) or
    (x, y, t): t, when the page sent it, in ms since the drawing's first point. Raises StrokesError."""
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
        if not all(isinstance(p, list) and len(p) in (2, 3) for p in stroke):
            raise StrokesError("each point is [x, y] or [x, y, t]")
        parsed.append([tuple(_number(v) for v in point) for point in stroke])
    return width, height, [s for s in parsed if s]


def ink(payload: str, canvas: int, brush_radius: float) -> np.ndarray:
    """The strokes as (canvas, canvas) uint8 ink, 255 where the brush passed, as the editor's layer holds it."""
    width, height, strokes = parse(payload)
    scale = min(width, height) / canvas  # CSS px per canvas px: the canvas fits the element, centred
    left, top = (width - canvas * scale) / 2, (height - canvas * scale) / 2
    return rasterise([[((p[0] - left) / scale, (p[1] - top) / scale) for p in stroke] for stroke in strokes],
                     canvas, 2 * brush_radius)


def quickdraw(payload: str, canvas: int, drawn: np.ndarray | None = None,
              brush_radius: float = 0.0) -> list[list[list[int]]]:
    """The strokes in Quick, Draw!'s raw format, as a row keeps them: per stroke [[x...], [y...], [t...]], x and y
    in canvas px (0 to `canvas`, top left), t in ms since the drawing's first point. Raises StrokesError, also for
    points without times (the page sends them with).

    `drawn`: the editor's own ink of them, (canvas, canvas), ink > 0, with a round brush of `brush_radius` canvas
    px. The editor shows its canvas a little inside the element the page measures (about 0.83 of the fitted square
    in Chromium, Gradio 6.31; a guess does not mind, it re-centres and re-sizes): the scale and offset are then
    taken from the ink, whose extent is the points' extent and the brush's radius on each side."""
    width, height, strokes = parse(payload)
    if not strokes:
        raise StrokesError("no strokes")
    if any(len(p) != 3 for stroke in strokes for p in stroke):
        raise StrokesError("each point of a kept drawing is [x, y, t], t in ms")
    scale = min(width, height) / canvas
    left, top = (width - canvas * scale) / 2, (height - canvas * scale) / 2
    points = [[((p[0] - left) / scale, (p[1] - top) / scale) for p in stroke] for stroke in strokes]
    if drawn is not None:
        points = _fitted(points, drawn, brush_radius)
    start = min(p[2] for stroke in strokes for p in stroke)
    clamp = lambda v: max(0, min(canvas, round(v)))  # noqa: E731 - the pen may leave the canvas mid-stroke
    times = [[max(0, round(p[2] - start)) for p in stroke] for stroke in strokes]
    return [[[clamp(x) for x, _ in placed], [clamp(y) for _, y in placed], ts] for placed, ts in zip(points, times)]


def _fitted(points: list[list[tuple[float, float]]], ink: np.ndarray, radius: float) -> list:
    """`points` moved and scaled (the same in x and y) so that their extent, widened by `radius`, is the ink's."""
    rows, cols = np.nonzero(ink > 0)
    xs = [x for stroke in points for x, _ in stroke]
    ys = [y for stroke in points for _, y in stroke]
    spans = [(max(xs) - min(xs), cols.max() - cols.min() + 1 - 2 * radius) if len(cols) else (0, 0),
             (max(ys) - min(ys), rows.max() - rows.min() + 1 - 2 * radius) if len(rows) else (0, 0)]
    measured = [(mine, inked) for mine, inked in spans if mine >= 10 and inked > 0]  # a dot, a bar: no scale in it
    if not measured:
        return points
    scale = sum(inked for _, inked in measured) / sum(mine for mine, _ in measured)
    centre = ((max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2)
    target = ((cols.max() + cols.min()) / 2, (rows.max() + rows.min()) / 2)
    return [[(target[0] + (x - centre[0]) * scale, target[1] + (y - centre[1]) * scale) for x, y in stroke]
            for stroke in points]


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
