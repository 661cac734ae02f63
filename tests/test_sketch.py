"""cvae.draw.sketch: a drawn canvas becomes a centred 28x28 MNIST-like digit."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvae.draw.sketch import canvas_to_ink, center_of_mass, decode_data_url, DrawingError, preprocess_drawing
from cvae.core.latent import encode_dataset
from devkit import DATA_DIR, SEVEN, data_url, needs_data, stroke_canvas


def test_empty_drawing_is_a_clear_error():
    for blank in (np.zeros((280, 280), np.uint8), np.full((280, 280, 3), 255, np.uint8),
                  np.zeros((280, 280, 4), np.uint8)):
        with pytest.raises(DrawingError, match="empty"):
            preprocess_drawing(blank)


def test_bad_canvases_are_refused():
    for bad in (np.zeros((5, 5, 2)), np.zeros((3,)), np.array([["a"]]), np.full((4, 4), np.nan),
                np.zeros((0, 10))):
        with pytest.raises(DrawingError):
            preprocess_drawing(bad)


def test_tall_stroke_fits_20_high_and_is_centred_by_mass():
    x = preprocess_drawing(stroke_canvas([(140, 40), (140, 240)], width=24))
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    rows = np.flatnonzero((x > 0.05).any(axis=1))
    cols = np.flatnonzero((x > 0.05).any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side is scaled to 20
    assert cols[-1] - cols[0] + 1 <= 5  # aspect kept: a thin bar stays thin
    cy, cx = center_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_wide_stroke_keeps_its_aspect():
    x = preprocess_drawing(stroke_canvas([(30, 100), (250, 100)], width=20))
    cols = np.flatnonzero((x > 0.05).any(axis=0))
    rows = np.flatnonzero((x > 0.05).any(axis=1))
    assert cols[-1] - cols[0] + 1 == 20
    assert rows[-1] - rows[0] + 1 <= 4


def test_position_size_and_ink_style_do_not_matter():
    base = preprocess_drawing(stroke_canvas(SEVEN))
    # Same digit drawn small in a corner.
    small = preprocess_drawing(stroke_canvas([(x // 3 + 10, y // 3 + 150) for x, y in SEVEN], width=7))
    # Dark ink on paper, RGB.
    paper = preprocess_drawing(np.repeat(stroke_canvas(SEVEN, ink=0, ground=255)[..., None], 3, axis=2))
    # Black strokes on a transparent ground (RGBA, ink only in alpha).
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = stroke_canvas(SEVEN)
    transparent = preprocess_drawing(rgba)
    # Floats in [0, 1].
    floats = preprocess_drawing(stroke_canvas(SEVEN).astype(np.float32) / 255)
    for other in (paper, transparent, floats):
        np.testing.assert_allclose(other, base, atol=1e-5)
    # Scaled up 3x from a small drawing: same place and size, a little softer.
    assert np.corrcoef(small.ravel(), base.ravel())[0, 1] > 0.75
    np.testing.assert_allclose(center_of_mass(small), center_of_mass(base), atol=0.6)
    for axis in (0, 1):
        assert abs(np.ptp(np.flatnonzero((small > 0.05).any(axis=axis))) - np.ptp(np.flatnonzero((base > 0.05).any(axis=axis)))) <= 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 199), st.integers(0, 199)), min_size=1, max_size=6),
       st.integers(1, 30), st.integers(60, 200))
def test_any_stroke_becomes_a_fitted_centred_digit(points, width, side):
    canvas = stroke_canvas([(x * side // 200, y * side // 200) for x, y in points], size=side, width=width)
    assume(canvas.max() > 0.05 * 255)  # PIL draws nothing for a 1-px dot on the edge
    x = preprocess_drawing(canvas)
    assert x.shape == (28, 28) and np.isfinite(x).all() and 0 <= x.min() and x.max() == pytest.approx(1.0)
    ink = x > 0.05
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21
    cy, cx = center_of_mass(x)
    assert abs(cy - 14) <= 3.5 and abs(cx - 14) <= 3.5  # centred unless that would push ink out


def test_ink_reading():
    grey = stroke_canvas(SEVEN)
    np.testing.assert_allclose(canvas_to_ink(grey), grey / 255.0, atol=1e-6)
    np.testing.assert_allclose(canvas_to_ink(255 - grey), grey / 255.0, atol=1e-6)  # inverted on paper


def test_data_url_round_trip_and_garbage():
    arr = stroke_canvas(SEVEN)
    back = decode_data_url(data_url(arr))
    assert back.shape == (280, 280, 4)
    np.testing.assert_array_equal(back[..., 0], arr)
    for bad in ("", "hello", "data:text/plain;base64,aGVsbG8=", "data:image/png;base64,@@@",
                "data:image/png;base64," + base64.b64encode(b"not a png").decode(), 42):
        with pytest.raises(DrawingError):
            decode_data_url(bad)


@needs_data
def test_redrawn_mnist_digits_come_back_as_mnist(model):
    """A real test digit drawn large and off-centre on a canvas comes back close to itself,
    and encodes close to where the original does: the preprocessing matches MNIST's."""
    from cvae import load_mnist

    x, _ = load_mnist("test", DATA_DIR)
    x = np.asarray(x[:40], dtype=np.float32).reshape(-1, 28, 28)
    redrawn = []
    for img in x:
        big = np.asarray(Image.fromarray((img * 255).astype(np.uint8)).resize((224, 224), Image.Resampling.BILINEAR))
        canvas = np.zeros((320, 320), np.uint8)
        canvas[70:294, 10:234] = big  # off-centre
        redrawn.append(preprocess_drawing(canvas))
    redrawn = np.stack(redrawn)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(x, redrawn)]
    assert np.median(corr) > 0.9, corr
    zo, _ = encode_dataset(model, x)
    zr, _ = encode_dataset(model, redrawn)
    spread = np.linalg.norm(zo - zo.mean(0), axis=1).mean()
    assert np.median(np.linalg.norm(zo - zr, axis=1)) < 0.25 * spread
