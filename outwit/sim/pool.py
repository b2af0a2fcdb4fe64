"""A shifted pool: digits unlike MNIST's handwriting, made here, for simulating DADC without people.

Two styles, both drawn on a 280×280 canvas as dark ink on white, like a drawing saved from the page:
- `font`: a digit typeset in one of the fonts matplotlib ships (DejaVu, STIX, Computer Modern: serifs, slab
  ones, open 4s, crossed 7s), thickened by a random stroke, slanted and turned;
- `segments`: a seven-segment-display digit drawn with a pen whose corners wobble, with random thickness and slant.

Written in the imagefolder layout (`<dir>/<digit>/<style>-<n>.png`) that `simulate --pool` reads.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANVAS = 280
STYLES = ("font", "segments")
MIX = ("segments", "font", "segments")  # the styles in turn: two seven-segment digits for each typeset one
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf",
         "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf",
         "cmb10.ttf")
# Seven segments as (x0, y0, x1, y1) in a unit box: top, upper right, lower right, bottom, lower left, upper left,
# middle; and which of them each digit lights.
SEGMENTS = {"a": (0, 0, 1, 0), "b": (1, 0, 1, 0.5), "c": (1, 0.5, 1, 1), "d": (0, 1, 1, 1), "e": (0, 0.5, 0, 1),
            "f": (0, 0, 0, 0.5), "g": (0, 0.5, 1, 0.5)}
LIT = {0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc", 5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg",
       9: "abcdfg"}


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _font_digit(digit: int, rng: np.random.Generator) -> Image.Image:
    font = ImageFont.truetype(str(_font_dir() / FONTS[rng.integers(len(FONTS))]), size=int(rng.integers(120, 200)))
    image = Image.new("L", (CANVAS, CANVAS), 0)
    pen = ImageDraw.Draw(image)
    stroke = int(rng.integers(0, 5))
    pen.text((CANVAS / 2, CANVAS / 2), str(digit), fill=255, font=font, anchor="mm", stroke_width=stroke,
             stroke_fill=255)
    return image


def _segment_digit(digit: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("L", (CANVAS, CANVAS), 0)
    pen = ImageDraw.Draw(image)
    height = rng.uniform(0.45, 0.7) * CANVAS
    width = height * rng.uniform(0.45, 0.7)
    x0, y0 = (CANVAS - width) / 2, (CANVAS - height) / 2
    corners: dict[tuple[float, float], tuple[float, float]] = {}

    def at(x: float, y: float) -> tuple[float, float]:  # each corner wobbles once, shared by its segments
        if (x, y) not in corners:
            jitter = rng.normal(0, 0.03 * CANVAS, 2)
            corners[(x, y)] = (x0 + x * width + jitter[0], y0 + y * height + jitter[1])
        return corners[(x, y)]

    thickness = int(rng.integers(10, 26))
    for name in LIT[digit]:
        x_a, y_a, x_b, y_b = SEGMENTS[name]
        start, end = at(x_a, y_a), at(x_b, y_b)
        pen.line([start, end], fill=255, width=thickness)
        for x, y in (start, end):
            pen.ellipse((x - thickness / 2, y - thickness / 2, x + thickness / 2, y + thickness / 2), fill=255)
    return image


def _slant_and_turn(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    shear = math.tan(math.radians(rng.uniform(-25, 25)))
    centre = CANVAS / 2
    image = image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * centre, 0, 1, 0),
                            resample=Image.Resampling.BILINEAR)
    image = image.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR, center=(centre, centre))
    dx, dy = rng.integers(-40, 41, 2)
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, int(dx), 0, 1, int(dy)))


def render(digit: int, style: str, rng: np.random.Generator) -> np.ndarray:
    """One digit in `style`: (280, 280) uint8, dark ink (0) on white (255)."""
    if style not in STYLES:
        raise ValueError(f"style={style!r} must be one of {STYLES}")
    if not 0 <= digit <= 9:
        raise ValueError(f"digit={digit!r} must be 0-9")
    ink = (_font_digit if style == "font" else _segment_digit)(digit, rng)
    ink = np.asarray(_slant_and_turn(ink, rng))
    if ink.max() == 0:  # moved off the canvas entirely: draw it again, unmoved
        ink = np.asarray((_font_digit if style == "font" else _segment_digit)(digit, rng))
    return 255 - ink


def make_pool(out: str | Path, *, per_digit: int = 150, seed: int = 0, styles: tuple[str, ...] = MIX) -> Path:
    """Write `per_digit` images of each digit (styles in turn) to `out/<digit>/`; returns `out`."""
    if per_digit < 1:
        raise ValueError(f"per_digit={per_digit!r} must be at least 1")
    out = Path(out)
    rng = np.random.default_rng(seed)
    for digit in range(10):
        (out / str(digit)).mkdir(parents=True, exist_ok=True)
        for n in range(per_digit):
            style = styles[n % len(styles)]
            Image.fromarray(render(digit, style, rng), mode="L").save(out / str(digit) / f"{style}-{n:04d}.png")
    return out


def load_pool(root: str | Path) -> list[tuple[Path, int]]:
    """(image, digit) for each image of an imagefolder pool (`root/<digit>/*.png|jpg`), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"pool {root} is not a folder")
    items = [(path, int(folder.name)) for folder in sorted(root.iterdir())
             if folder.is_dir() and folder.name in {str(d) for d in range(10)}
             for path in sorted(folder.iterdir()) if path.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if not items:
        raise ValueError(f"pool {root} has no images in digit folders (0/ ... 9/)")
    return items
