"""cvae.core.latent: encoding a dataset, decoding points, the manifold grid, morphs."""

import numpy as np
import pytest

from cvae import CVAE, decode_grid, decode_points, encode_dataset, load_mnist
from cvae.core.latent import collapse_message, grid_points, interpolate, morph, spread
from devkit import DATA_DIR, needs_data


@needs_data
def test_latent_helpers():
    test_x, _ = load_mnist("test", DATA_DIR, download=False, limit=300)
    m = CVAE().eval()
    mu, lv = encode_dataset(m, test_x[:300], batch_size=128)
    assert mu.shape == lv.shape == (300, 2) and mu.dtype == np.float32
    imgs = decode_points(m, mu[:5])
    assert imgs.shape == (5, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1
    grid = decode_grid(m, n=4, z1_range=(-2, 2), z2_range=(-1, 3))
    assert grid.shape == (112, 112)
    gx, gy = grid_points(4, (-2, 2), (-1, 3))
    # Row 0 is the highest z2, column 0 the lowest z1, as in the tutorial's figure.
    assert np.allclose(grid[:28, :28], decode_points(m, [[gx[0], gy[0]]])[0])
    assert gy[0] == 3 and gx[0] == -2
    assert np.allclose(grid[-28:, 28:56], decode_points(m, [[gx[1], gy[-1]]])[0])
    with pytest.raises(ValueError):
        decode_grid(m, n=0)
    with pytest.raises(ValueError):
        decode_points(m, [[float("nan"), 0.0]])


def test_interpolate_is_a_straight_evenly_spaced_line():
    p = interpolate([0.0, 1.0], [3.0, -2.0], 7)
    assert p.shape == (7, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p[0], [0, 1])
    np.testing.assert_allclose(p[-1], [3, -2])
    steps = np.diff(p, axis=0)
    np.testing.assert_allclose(steps, np.tile([[0.5, -0.5]], (6, 1)), atol=1e-6)


@pytest.mark.parametrize("a,b,n", [([0, 0], [1, 1], 1), ([0, 0], [1, 1], 65), ([0, 0], [1, 1, 1], 5),
                                   ([0, np.nan], [1, 1], 5), ([], [], 5)])
def test_interpolate_refuses_bad_input(a, b, n):
    with pytest.raises(ValueError):
        interpolate(a, b, n)


def test_morph_decodes_the_path(model, enc):
    a, b = enc["z_mean"][0], enc["z_mean"][1]
    path, frames = morph(model, a, b, 9)
    assert frames.shape == (9, 28, 28)
    np.testing.assert_allclose(frames[0], decode_points(model, a[None])[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], decode_points(model, b[None])[0], atol=1e-6)
    # The middle frame differs from both ends (it is a morph, not a copy).
    assert np.abs(frames[4] - frames[0]).mean() > 1e-3 and np.abs(frames[4] - frames[-1]).mean() > 1e-3


def test_spread_and_the_collapse_message():
    rng = np.random.default_rng(0)
    z = np.stack([rng.normal(0, 1.3, 5000), rng.normal(0, 0.03, 5000)], axis=1)
    s = spread(z)
    assert s == pytest.approx([1.3, 0.03], rel=0.05)
    msg = collapse_message(s)
    assert msg.startswith("Posterior collapse in z2 (spread 0.030)") and "z1" not in msg
    assert "Train longer" in msg and "--recipe quick" in msg
    assert collapse_message([1.0, 0.5]) is None
    assert collapse_message([0.05, 0.02]).startswith("Posterior collapse in z1 (spread 0.050) and z2 (spread 0.020)")
    assert collapse_message([0.1, 0.099]).startswith("Posterior collapse in z2")  # the threshold is 0.1
    assert collapse_message([float("nan"), 1.0]).startswith("Posterior collapse in z1")  # NaN is not a spread
