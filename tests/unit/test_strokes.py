"""The quick guess's strokes (strokes.py): as the page records them, they give the editor's ink and guess."""
import json

import numpy as np
import pytest

from outwit.ml import checkpoints
from outwit.ml.serving import Predictor
from outwit.ml.strokes import StrokesError, ink, parse, quickdraw, rasterise
from outwit.sim.drawings import draw_alpha, sketchpad_value, stroke_points
from outwit.ui import sketchpad as ui
from tests.paths import MODELS


@pytest.fixture(scope="module")
def served_model() -> Predictor:
    return Predictor(checkpoints.load(MODELS / "base.safetensors")[0])


def page_payload(digit: int, width: float = 598, height: float = 348) -> str:
    """The digit's strokes as the page records them: CSS px on an element the canvas is fitted into, centred."""
    scale = min(width, height) / ui.CANVAS
    left, top = (width - ui.CANVAS * scale) / 2, (height - ui.CANVAS * scale) / 2
    strokes = [[[left + x * scale, top + y * scale] for x, y in stroke] for stroke in stroke_points(digit, ui.CANVAS)]
    return json.dumps({"width": width, "height": height, "strokes": strokes})


@pytest.mark.parametrize("size", [(598, 348), (280, 280), (390, 600)])
def test_the_recorded_strokes_give_the_editors_ink(size):
    for digit in range(10):
        quick = ink(page_payload(digit, *size), ui.CANVAS, ui.BRUSH_RADIUS).astype(bool)
        editor = draw_alpha(digit, ui.CANVAS, brush=2 * ui.BRUSH_RADIUS).astype(bool)
        assert (quick ^ editor).sum() <= 0.02 * editor.sum(), digit  # rounding of the scaled points only


def test_the_quick_guess_is_the_editors_guess(served_model):
    for digit in range(10):
        quick = served_model.predict(ink(page_payload(digit), ui.CANVAS, ui.BRUSH_RADIUS))
        editor = served_model.predict(sketchpad_value(draw_alpha(digit, ui.CANVAS, brush=2 * ui.BRUSH_RADIUS)))
        assert quick.argmax() == editor.argmax() == digit
        assert np.abs(quick - editor).max() < 0.05


@pytest.mark.parametrize("payload, words", [
    ("not json", "not JSON"),
    ("[1, 2]", "expected"),
    ('{"width": 0, "height": 348, "strokes": []}', "size"),
    ('{"width": 598, "height": 348, "strokes": [[[1, "a"]]]}', "finite number"),
    ('{"width": 598, "height": 348, "strokes": [[[1, NaN]]]}', "finite number"),
    ('{"width": 598, "height": 348, "strokes": [[[1, 2, 3, 4]]]}', "[x, y]"),
    ('{"width": 598, "height": 348, "strokes": [5]}', "list of"),
    (json.dumps({"width": 598, "height": 348, "strokes": [[[1, 2]] * 20_001]}), "points"),
    ("x" * 200_001, "200,000"),
    ("[" * 5000, "nested too deep"),
])
def test_a_payload_not_from_the_page_is_refused_with_a_reason(payload, words):
    with pytest.raises(StrokesError) as err:
        parse(payload)
    assert words in str(err.value)


def test_a_dot_is_a_dot():
    dot = ink('{"width": 280, "height": 280, "strokes": [[[140, 140]]]}', ui.CANVAS, ui.BRUSH_RADIUS)
    assert 0 < (dot > 0).sum() <= np.pi * (ui.BRUSH_RADIUS + 1) ** 2


def test_the_kept_strokes_are_quick_draws_raw_format_in_canvas_pixels_with_times():
    """The page's points, CSS px on a 560×340 element with times in ms since the page opened, become per stroke
    [[x...], [y...], [t...]]: canvas px (the fitted square's offset and scale taken out), ms since the first point."""
    scale, left = 340 / ui.CANVAS, (560 - 340) / 2
    payload = json.dumps({"width": 560, "height": 340, "strokes": [
        [[left + 10 * scale, 20 * scale, 5000.4], [left + 30 * scale, 40 * scale, 5016]],
        [[left + 300 * scale, -5, 5100]]]})  # the pen left the canvas: clamped to its edge
    assert quickdraw(payload, ui.CANVAS) == [[[10, 30], [20, 40], [0, 16]], [[280], [0], [100]]]


@pytest.mark.parametrize("payload", ['{"width": 280, "height": 280, "strokes": [[[1, 2]]]}',
                                     '{"width": 280, "height": 280, "strokes": []}'])
def test_strokes_without_times_or_without_any_are_not_kept(payload):
    with pytest.raises(StrokesError):
        quickdraw(payload, ui.CANVAS)


def test_kept_strokes_are_placed_on_the_editors_own_ink_whatever_its_zoom():
    """The editor shows its canvas at 0.83 of the square the page measures: the points, read as if it filled it,
    are moved and scaled onto the drawing's ink, to within a pixel or two of where the brush went."""
    truth = stroke_points(7, ui.CANVAS)
    drawn = rasterise(truth, ui.CANVAS, 2 * ui.BRUSH_RADIUS)
    width, height, zoom = 598, 348, 0.83
    scale = zoom * min(width, height) / ui.CANVAS
    left, top = (width - ui.CANVAS * scale) / 2, (height - ui.CANVAS * scale) / 2
    payload = json.dumps({"width": width, "height": height, "strokes": [
        [[left + x * scale, top + y * scale, 1000 + 16 * i] for i, (x, y) in enumerate(stroke)] for stroke in truth]})
    unplaced = quickdraw(payload, ui.CANVAS)
    placed = quickdraw(payload, ui.CANVAS, drawn, ui.BRUSH_RADIUS)
    error = lambda kept: max(abs(k - t) for (xs, ys, _), stroke in zip(kept, truth)  # noqa: E731
                             for k, t in [*zip(xs, [x for x, _ in stroke]), *zip(ys, [y for _, y in stroke])])
    assert error(unplaced) > 10 and error(placed) <= 2
