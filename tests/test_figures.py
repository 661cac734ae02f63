"""cvae.draw.figures and the latent and image helpers they read."""

from __future__ import annotations

import numpy as np

from cvae.core.latent import grid_pixel, latent_bounds
from cvae.draw import figures
from cvae.draw.images import pixelate


def test_latent_bounds_cover_with_margin():
    z = np.array([[-1.2, 0.3], [2.0, 4.1], [0.0, -0.7]], np.float32)
    lo1, hi1, lo2, hi2 = latent_bounds(z)
    assert lo1 < -1.2 and hi1 > 2.0 and lo2 < -0.7 and hi2 > 4.1
    assert latent_bounds(np.full((3, 2), np.nan)) == (-4.0, 4.0, -4.0, 4.0)


def test_pixelate_is_nearest_neighbour():
    img = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    big = pixelate(img, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert set(np.unique(big[:3, :3])) == {0} and set(np.unique(big[:3, 3:])) == {255}


def test_grid_pixel_matches_decode_grid_layout():
    n, r1, r2 = 5, (-2.0, 2.0), (-1.0, 3.0)
    assert grid_pixel(-2.0, 3.0, n, r1, r2) == (14.0, 14.0)  # top-left cell centre
    assert grid_pixel(2.0, -1.0, n, r1, r2) == (4.5 * 28, 4.5 * 28)  # bottom-right
    assert grid_pixel(2.5, 0.0, n, r1, r2) is None


def test_scatter_has_one_trace_per_digit_and_takes_extra_traces():
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2)).astype(np.float32)
    y = np.arange(200) % 10
    star = go.Scatter(x=[0], y=[0], name="star")
    fig = figures.latent_scatter(z, y, extra_traces=[star])
    names = [t.name for t in fig.data]
    assert names == [str(d) for d in range(10)] + ["star"]
    ids = np.concatenate([np.asarray(t.customdata) for t in fig.data[:10]])
    assert sorted(ids.tolist()) == list(range(200))
    for t in fig.data[:10]:
        idx = np.asarray(t.customdata)
        assert (y[idx] == int(t.name)).all()
        # x is z1 and y is z2 of exactly these digits.
        np.testing.assert_array_equal(np.asarray(t.x), z[idx, 0])
        np.testing.assert_array_equal(np.asarray(t.y), z[idx, 1])
