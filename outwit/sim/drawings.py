"""Hand-style digits drawn as pen strokes, the way a person draws them on the canvas.

Used by the tests, the benchmarks and the browser test (which replays the same strokes with the mouse); it is not
part of the app, which never imports it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from outwit.ml.strokes import rasterise


def _arc(cx, cy, rx, ry, start, stop, n=24):
    """Points on an ellipse, angles in degrees, 0 = right, 90 = down."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, stop, n)]


# Each digit: a list of strokes; a stroke is a list of (x, y) in a unit box (x right, y down).
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 270, 40)],
    1: [[(0.38, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 190, 380, 20) + [(0.2, 0.95), (0.85, 0.95)]],
    3: [_arc(0.48, 0.28, 0.3, 0.23, 200, 450, 20) + _arc(0.48, 0.73, 0.33, 0.23, 270, 520, 20)[1:]],
    4: [[(0.6, 0.05), (0.15, 0.65), (0.9, 0.65)], [(0.65, 0.35), (0.65, 0.95)]],
    5: [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.5, 0.68, 0.32, 0.27, 230, 500, 24)[1:]],
    6: [[(0.7, 0.05), (0.45, 0.25), (0.25, 0.6)] + _arc(0.5, 0.7, 0.27, 0.25, 180, 540, 30)],
    7: [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
    8: [_arc(0.5, 0.27, 0.25, 0.22, 90, 450, 30) + _arc(0.5, 0.72, 0.3, 0.23, -90, 270, 30)],
    9: [_arc(0.48, 0.3, 0.28, 0.25, 0, 360, 30) + [(0.76, 0.3), (0.7, 0.95)]],
}


def stroke_points(digit: int, canvas: int, size: float = 0.6, offset: tuple[float, float] = (0.0, 0.0),
                  aspect: float = 0.75) -> list[list[tuple[float, float]]]:
    """The digit's strokes in canvas pixels: `size` of the canvas tall, centred, shifted by `offset` (fractions)."""
    height, width = size * canvas, size * canvas * aspect
    x0 = (canvas - width) / 2 + offset[0] * canvas
    y0 = (canvas - height) / 2 + offset[1] * canvas
    return [[(x0 + x * width, y0 + y * height) for x, y in stroke] for stroke in STROKES[digit]]


def draw_alpha(digit: int, canvas: int = 280, brush: float = 18, **placement) -> np.ndarray:
    """(canvas, canvas) uint8 ink (255 = stroke) as the pen leaves it, with round caps and joints."""
    return rasterise(stroke_points(digit, canvas, **placement), canvas, brush)


def sketchpad_value(alpha: np.ndarray, color=(0, 0, 0)) -> dict:
    """What Gradio's Sketchpad hands the server: a white background, one RGBA layer, the composite."""
    h, w = alpha.shape
    layer = np.zeros((h, w, 4), dtype=np.uint8)
    layer[..., :3] = color
    layer[..., 3] = alpha
    background = np.full((h, w, 4), 255, dtype=np.uint8)
    composite = background.copy()
    a = alpha[..., None].astype(np.float32) / 255
    composite[..., :3] = (background[..., :3] * (1 - a) + np.array(color) * a).astype(np.uint8)
    return {"background": background, "layers": [layer], "composite": composite}


def client_payload(value: dict, folder: Path) -> dict:
    """A Sketchpad value as gradio_client sends it: each image a PNG file in `folder`."""
    from gradio_client import handle_file

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, image in (("background", value["background"]), ("layer", value["layers"][0]),
                       ("composite", value["composite"])):
        Image.fromarray(image).save(folder / f"{key}.png")
        files[key] = handle_file(str(folder / f"{key}.png"))
    return {"background": files["background"], "layers": [files["layer"]], "composite": files["composite"]}


def draw_sketch(digit: int, canvas: int = 280, brush: float = 18, **placement) -> dict:
    return sketchpad_value(draw_alpha(digit, canvas, brush, **placement))


def rotated_sketch(digit: int, angle: float, canvas: int = 280, **placement) -> dict:
    """The digit drawn turned by `angle` degrees: a legitimate drawing of it that often fools a model."""
    image = Image.fromarray(draw_alpha(digit, canvas, size=0.5, **placement))
    return sketchpad_value(np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR)))


FOOLING_VARIANTS = [(angle, aspect) for aspect in (0.75, 0.45, 1.0)
                    for angle in (-75, -60, -45, 45, 60, 75, 90, -30, 30, 120, -120)]


def fooling_examples(predict, n: int, start: int = 0) -> list[tuple[dict, int, np.ndarray]]:
    """`n` turned or squeezed digits that `predict` (drawing → probabilities) gets wrong: (drawing, digit, probs).

    Searches a fixed bank of 330 drawings from `start`, so the same call finds the same drawings.
    """
    found, bank = [], 10 * len(FOOLING_VARIANTS)
    for i in range(start, start + bank):
        digit, (angle, aspect) = i % 10, FOOLING_VARIANTS[(i // 10) % len(FOOLING_VARIANTS)]
        drawing = rotated_sketch(digit, angle, aspect=aspect)
        probs = predict(drawing)
        if int(probs.argmax()) != digit:
            found.append((drawing, digit, probs))
            if len(found) == n:
                return found
    raise AssertionError(f"only {len(found)} of the {n} fooling drawings asked for were found")
