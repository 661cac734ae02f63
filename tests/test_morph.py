"""cvae.morph: a straight path between two latent points, decoded."""

from __future__ import annotations

import numpy as np
import pytest

from cvae.core.latent import decode_points
from cvae.core.latent import interpolate, morph


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
