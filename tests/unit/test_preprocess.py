"""preprocess(): any drawing → the 28×28 MNIST form, the same at training and serving time."""
import numpy as np
import pytest
import torch
from PIL import Image

from outwit.ml.preprocess import EmptyDrawingError, preprocess
from outwit.sim.drawings import draw_alpha, draw_sketch, sketchpad_value


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    img = x[0].numpy()
    total = img.sum()
    return (img.sum(axis=1) @ np.arange(28)) / total, (img.sum(axis=0) @ np.arange(28)) / total


def ink_box(x: torch.Tensor) -> tuple[int, int]:
    rows, cols = np.flatnonzero(x[0].numpy().max(axis=1) > 0.05), np.flatnonzero(x[0].numpy().max(axis=0) > 0.05)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def assert_mnist_form(x: torch.Tensor) -> None:
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min().item() and x.max().item() == pytest.approx(1.0, abs=1e-3)
    cy, cx = centre_of_mass(x)
    assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0
    assert 19 <= max(ink_box(x)) <= 22  # longer side scaled to 20 px; a thin pen gains a 1-px rim each side


@pytest.mark.parametrize("placement", [
    dict(), dict(offset=(0.25, 0.2)), dict(offset=(-0.2, -0.25)), dict(size=0.15), dict(size=0.95),
    dict(brush=45), dict(brush=5), dict(canvas=800, brush=50), dict(aspect=0.4),
])
def test_sketchpad_drawings_land_centred_and_scaled(placement):
    assert_mnist_form(preprocess(draw_sketch(3, **placement)))


def test_shifted_drawings_give_the_same_input():
    centred = preprocess(draw_sketch(5))
    shifted = preprocess(draw_sketch(5, offset=(0.2, -0.15)))
    assert torch.allclose(centred, shifted, atol=0.02)


def test_small_and_large_drawings_give_similar_input():
    small, large = preprocess(draw_sketch(2, size=0.3, brush=9)), preprocess(draw_sketch(2, size=0.9, brush=27))
    assert (small - large).abs().mean().item() < 0.03


def mnist_ink(digits, digit: int, percentiles) -> np.ndarray:
    mass = digits.images[digits.labels == digit].astype(np.float32).sum(axis=(1, 2)) / 255
    return np.percentile(mass, percentiles)


@pytest.mark.parametrize("brush", [2, 3, 5, 8, 12, 18, 30])
def test_stroke_keeps_about_mnist_thickness(brush, mnist_sample_test):
    """A thin pen must not vanish and a thick one not turn into a blob: ink within MNIST's range for that digit."""
    mass = preprocess(draw_sketch(7, brush=brush)).sum().item()
    low, high = mnist_ink(mnist_sample_test, 7, [2, 98])
    assert low <= mass <= high


def test_thin_line_on_large_canvas_survives(mnist_sample_test):
    x = preprocess(draw_sketch(1, canvas=800, brush=4))
    assert x.max().item() == pytest.approx(1.0, abs=1e-3)
    assert x.sum().item() >= mnist_ink(mnist_sample_test, 1, [5])[0]


def test_plain_images_dark_on_light_and_light_on_dark_agree():
    alpha = draw_alpha(4)
    dark_on_light = 255 - alpha
    rgb = np.stack([dark_on_light] * 3, axis=2)
    expected = preprocess(sketchpad_value(alpha))
    for image in (dark_on_light, alpha, rgb, Image.fromarray(rgb), Image.fromarray(alpha, mode="L"),
                  alpha.astype(np.float32) / 255):
        assert torch.allclose(preprocess(image), expected, atol=1e-3)


def test_rgba_with_transparent_background_uses_alpha():
    alpha = draw_alpha(6)
    rgba = np.zeros(alpha.shape + (4,), dtype=np.uint8)
    rgba[..., 3] = alpha  # black strokes on a fully transparent background
    assert torch.allclose(preprocess(rgba), preprocess(sketchpad_value(alpha)), atol=1e-3)
    assert torch.allclose(preprocess(Image.fromarray(rgba, mode="RGBA")), preprocess(rgba), atol=1e-3)


def test_composite_is_used_when_layers_are_missing():
    value = draw_sketch(8)
    expected = preprocess(value)
    value["layers"] = []
    assert torch.allclose(preprocess(value), expected, atol=1e-3)


def test_coloured_brush_counts_as_ink():
    assert torch.allclose(preprocess(sketchpad_value(draw_alpha(9), color=(200, 30, 30))), preprocess(draw_sketch(9)))


def test_mnist_image_is_a_fixed_point(mnist_sample_test):
    """An image already in MNIST form comes back nearly unchanged."""
    for image in mnist_sample_test.images[::100]:
        x = preprocess(image)[0]
        original = torch.from_numpy(image.astype(np.float32) / 255)
        # MNIST's own centring rounds differently: allow a one-pixel shift
        best = min((x - torch.roll(original, (dy, dx), dims=(0, 1))).abs().mean().item()
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        assert best < 0.03


@pytest.mark.parametrize("value", [
    {"background": np.full((280, 280, 4), 255, np.uint8), "layers": [np.zeros((280, 280, 4), np.uint8)],
     "composite": np.full((280, 280, 4), 255, np.uint8)},
    {"background": None, "layers": [], "composite": None},
    np.zeros((280, 280), np.uint8),
    np.full((100, 100, 3), 255, np.uint8),
])
def test_empty_canvas_raises_the_dedicated_error(value):
    with pytest.raises(EmptyDrawingError):
        preprocess(value)


def test_a_speck_is_not_a_digit():
    alpha = np.zeros((280, 280), np.uint8)
    alpha[140:146, 100:106] = 255
    with pytest.raises(EmptyDrawingError):
        preprocess(sketchpad_value(alpha))


@pytest.mark.parametrize("bad", [np.zeros((5,), np.uint8), np.zeros((10, 10, 2), np.uint8),
                                 np.zeros((0, 10), np.uint8)])
def test_malformed_arrays_are_rejected_with_their_shape(bad):
    with pytest.raises(ValueError, match="shape"):
        preprocess(bad)


def test_layers_of_different_sizes_are_refused_in_words():
    small, large = np.zeros((100, 100, 4), np.uint8), np.zeros((280, 280, 4), np.uint8)
    with pytest.raises(ValueError, match=r"its layers differ in size \(100×100 and 280×280 px\)"):
        preprocess({"background": None, "layers": [large, small], "composite": None})


def test_fast_extent_of_rgba_layers_matches_a_plain_threshold():
    """The uint32 reading of an RGBA layer's alpha finds exactly the rows and columns a plain threshold finds."""
    from outwit.ml.preprocess import _ink_extent
    rng = np.random.default_rng(0)
    for _ in range(20):
        layer = np.zeros((64, 48, 4), np.uint8)
        layer[..., :3] = rng.integers(0, 256, (64, 48, 3))  # colour under the ink must not matter
        spots = rng.integers(0, 64 * 48, 5)
        layer.reshape(-1, 4)[spots, 3] = rng.integers(40, 60, 5)  # alpha near the threshold of 51
        alpha = layer[:, :, 3]
        rows, cols = _ink_extent(alpha, 51)
        plain = alpha.copy() > 51
        assert rows.tolist() == np.flatnonzero(plain.any(axis=1)).tolist()
        expected_cols = np.flatnonzero(plain.any(axis=0)).tolist()
        assert cols.tolist() == expected_cols


def test_an_oversized_image_is_refused_with_its_size():
    with pytest.raises(ValueError, match="5000×300 px"):
        preprocess(np.zeros((300, 5000), np.uint8))
    with pytest.raises(ValueError, match="at most 4096"):
        preprocess(sketchpad_value(np.zeros((4100, 10), np.uint8)))
