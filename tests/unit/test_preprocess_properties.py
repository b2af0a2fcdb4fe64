"""Properties of `preprocess` over generated inputs (hypothesis): whatever arrives, the result is an MNIST-form
image or one of the two refusals; and what a person would call the same drawing gives the same model input."""
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from outwit.ml.preprocess import EmptyDrawingError, preprocess
from outwit.sim.drawings import draw_alpha, sketchpad_value

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.tuples(st.integers(1, 300), st.integers(1, 300))
any_image = st.one_of(
    arrays(np.uint8, shapes),
    arrays(np.uint8, st.tuples(st.integers(1, 120), st.integers(1, 120), st.sampled_from([1, 3, 4]))),
    arrays(np.float32, shapes, elements=st.floats(0, 1, width=32)),
)


def assert_mnist_form(out: torch.Tensor) -> None:
    assert out.shape == (1, 28, 28) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out.max() == 1.0  # the strokes' body is full ink


@SETTINGS
@given(image=any_image)
def test_any_array_becomes_mnist_form_or_a_clear_refusal(image):
    try:
        out = preprocess(image)
    except EmptyDrawingError:
        return
    except ValueError as err:  # only a shape it cannot take
        assert "shape" in str(err)
        return
    assert_mnist_form(out)


@SETTINGS
@given(alpha=arrays(np.uint8, st.tuples(st.integers(8, 280), st.integers(8, 280))))
def test_any_sketchpad_layer_becomes_mnist_form_or_no_digit(alpha):
    try:
        out = preprocess(sketchpad_value(alpha))
    except EmptyDrawingError:
        return
    assert_mnist_form(out)


@SETTINGS
@given(digit=st.integers(0, 9), dx=st.integers(-60, 60), dy=st.integers(-40, 40))
def test_where_on_the_canvas_a_digit_is_drawn_does_not_matter(digit, dx, dy):
    alpha = draw_alpha(digit, size=0.5)
    moved = np.roll(alpha, (dy, dx), axis=(0, 1))  # the digit stays on the canvas: it is 140 px tall, centred
    assert torch.equal(preprocess(sketchpad_value(alpha)), preprocess(sketchpad_value(moved)))


@SETTINGS
@given(digit=st.integers(0, 9), colour=st.tuples(*[st.integers(0, 255)] * 3))
def test_the_ink_colour_does_not_matter_on_a_canvas(digit, colour):
    alpha = draw_alpha(digit)
    assert torch.equal(preprocess(sketchpad_value(alpha)), preprocess(sketchpad_value(alpha, color=colour)))


@SETTINGS
@given(digit=st.integers(0, 9), size=st.floats(0.35, 0.9))
def test_dark_ink_on_light_and_light_on_dark_read_the_same(digit, size):
    ink = draw_alpha(digit, size=size)
    assert torch.allclose(preprocess(255 - ink), preprocess(ink), atol=1e-6)
