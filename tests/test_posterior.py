"""cvae.core.posterior: posterior ellipses, samples and nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from cvae.core.posterior import ellipse, mass_within, nearest, sample_posterior


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_ellipse_is_the_k_sigma_outline(k):
    m, lv = np.array([0.5, -1.0]), np.array([np.log(0.04), np.log(0.25)])  # sigma 0.2 and 0.5
    e = ellipse(m, lv, k, n_points=64)
    assert e.shape == (65, 2)
    np.testing.assert_allclose(e[0], e[-1])
    r = ((e[:, 0] - m[0]) / (k * 0.2)) ** 2 + ((e[:, 1] - m[1]) / (k * 0.5)) ** 2
    np.testing.assert_allclose(r, 1.0, atol=1e-9)
    np.testing.assert_allclose(e[:, 0].max() - e[:, 0].min(), 2 * k * 0.2, atol=1e-9)
    assert mass_within(1) == pytest.approx(0.3935, abs=1e-4)
    assert mass_within(2) == pytest.approx(0.8647, abs=1e-4)
    with pytest.raises(ValueError):
        ellipse([0, 0, 0], [0, 0, 0])


def test_posterior_samples_are_seeded_and_follow_the_posterior():
    m, lv = np.array([1.0, -2.0]), np.array([np.log(0.09), np.log(1.0)])
    a = sample_posterior(m, lv, 256, seed=3)
    np.testing.assert_array_equal(a, sample_posterior(m, lv, 256, seed=3))
    assert not np.array_equal(a, sample_posterior(m, lv, 256, seed=4))
    # 256 samples: the mean is within 4 standard errors, the std within 20%.
    np.testing.assert_array_less(np.abs(a.mean(0) - m), 4 * np.array([0.3, 1.0]) / 16)
    np.testing.assert_allclose(a.std(0), [0.3, 1.0], rtol=0.2)
    inside = (((a - m) / [0.3, 1.0]) ** 2).sum(1) <= 4
    assert 0.78 < inside.mean() < 0.95  # 2-sigma ellipse holds 86%
    with pytest.raises(ValueError):
        sample_posterior(m, lv, 0)


def test_nearest_matches_brute_force(enc):
    z = enc["z_mean"]
    q = z[123]
    idx, dist = nearest(q, z, 5, exclude=123)
    brute = np.argsort(np.linalg.norm(z - q, axis=1), kind="stable")
    brute = brute[brute != 123][:5]
    np.testing.assert_array_equal(idx, brute)
    assert np.all(np.diff(dist) >= 0)
    np.testing.assert_allclose(dist, np.linalg.norm(z[idx] - q, axis=1), rtol=1e-6)
    idx2, _ = nearest([0.0, 0.0], [[1, 0], [0, 1], [-1, 0]], 2)
    np.testing.assert_array_equal(idx2, [0, 1])  # ties broken by index
    with pytest.raises(ValueError):
        nearest([0.0], z, 3)
