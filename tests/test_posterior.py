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


def test_bad_points_and_settings_are_refused_with_the_reason():
    m, lv = [0.0, 0.0], [0.0, 0.0]
    for bad_m, bad_lv, words in [([0.0, 0.0], [0.0], "one point of one dimension"), ([], [], "one point"),
                                 ([np.nan, 0.0], lv, "NaN or infinite"), (m, [0.0, np.inf], "NaN or infinite")]:
        with pytest.raises(ValueError, match=words):
            sample_posterior(bad_m, bad_lv, 4)
    with pytest.raises(ValueError, match="an ellipse needs a 2-D latent point, got 3-D"):
        ellipse([0, 0, 0], [0, 0, 0])
    for k in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="k must be positive"):
            ellipse(m, lv, k)
    with pytest.raises(ValueError, match="n_points must be >= 8, got 7"):
        ellipse(m, lv, 1.0, n_points=7)
    assert ellipse(m, lv, 1.0, n_points=8).shape == (9, 2)  # the fewest points: an octagon, closed
    with pytest.raises(ValueError, match="only the 2-D case"):
        mass_within(1.0, dim=3)
    for n in (0, 257):
        with pytest.raises(ValueError, match=f"n must be between 1 and 256, got {n}"):
            sample_posterior(m, lv, n)
    assert sample_posterior(m, lv, 1).shape == (1, 2) and sample_posterior(m, lv, 256).shape == (256, 2)


def test_the_default_ellipse_is_one_sigma_in_100_segments():
    m, lv = np.array([0.0, 1.0]), np.array([0.0, np.log(4.0)])  # sigma 1 and 2
    e = ellipse(m, lv)
    assert e.shape == (101, 2)
    np.testing.assert_allclose(e[0], [1.0, 1.0], atol=1e-12)  # starts on the z1 axis, one sigma out
    np.testing.assert_allclose(e[25], [0.0, 3.0], atol=1e-12)  # a quarter round: one sigma up z2
    np.testing.assert_array_equal(e[-1], e[0])  # closed exactly


def test_samples_and_their_decodings():
    from cvae.core.latent import decode_points
    from cvae.core.posterior import decode_samples, std
    from devkit import random_model

    np.testing.assert_allclose(std([0.0, np.log(0.25)]), [1.0, 0.5])
    model = random_model(seed=1)
    z, imgs = decode_samples(model, [0.5, -0.5], [np.log(0.01), np.log(0.04)], 3, seed=2)
    np.testing.assert_array_equal(z, sample_posterior([0.5, -0.5], [np.log(0.01), np.log(0.04)], 3, seed=2))
    np.testing.assert_array_equal(imgs, decode_points(model, z))
    assert z.dtype == np.float32 and imgs.shape == (3, 28, 28)
    # The default seed is 0.
    np.testing.assert_array_equal(sample_posterior([0, 0], [0, 0], 5), sample_posterior([0, 0], [0, 0], 5, seed=0))


def test_nearest_skips_the_query_and_points_that_are_not_numbers():
    P = np.array([[0.0, 0.0], [np.nan, 0.0], [3.0, 4.0], [1.0, 0.0], [np.inf, 1.0]])
    idx, dist = nearest([0.0, 0.0], P, k=10)  # more asked than there are usable points
    assert idx.tolist() == [0, 3, 2] and dist.tolist() == [0.0, 1.0, 5.0]
    idx, _ = nearest([0.0, 0.0], P, k=2, exclude=0)
    assert idx.tolist() == [3, 2]
    assert nearest([0.0, 0.0], P, k=1, exclude=99)[0].tolist() == [0]  # an index not in the set excludes nothing
    assert nearest([0.0, 0.0], P, k=1, exclude=-1)[0].tolist() == [0]
    assert nearest([0.0, 0.0], P)[0].tolist() == [0, 3, 2]  # five asked by default; three are numbers
    with pytest.raises(ValueError, match="z contains NaN"):
        nearest([np.nan, 0.0], P)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        nearest([0.0, 0.0], P, k=0)
    with pytest.raises(ValueError, match=r"points must be \(N, 2\); got \(5,\)"):
        nearest([0.0, 0.0], P[:, 0])


def test_a_point_as_the_encoder_returns_it_one_row_is_one_point():
    """encode gives (1, d) rows: they are the point they hold, for samples, outlines and neighbours."""
    m, lv = np.array([[0.5, -1.0]]), np.array([[np.log(0.04), np.log(0.25)]])
    np.testing.assert_array_equal(sample_posterior(m, lv, 8, seed=1), sample_posterior(m[0], lv[0], 8, seed=1))
    np.testing.assert_array_equal(sample_posterior(m, lv[0], 8, seed=1), sample_posterior(m[0], lv, 8, seed=1))
    np.testing.assert_array_equal(ellipse(m, lv, 2.0), ellipse(m[0], lv[0], 2.0))


def test_a_one_dimensional_latent_point_is_sampled():
    """latent_dim may be 1 (ModelConfig allows 1 to 64): its posterior is one mean and one variance."""
    z = sample_posterior([0.5], [np.log(0.01)], 200, seed=0)
    assert z.shape == (200, 1)
    assert abs(z.mean() - 0.5) < 4 * 0.1 / np.sqrt(200) and 0.08 < z.std() < 0.12


def test_the_refusals_are_one_sentence_each():
    for bad in (([np.nan, 0.0], [0.0, 0.0]), ([0.0, 0.0], [0.0, -np.inf])):
        with pytest.raises(ValueError, match=r"^z_mean or z_log_var contains NaN or infinite values$"):
            sample_posterior(*bad, 4)
    with pytest.raises(ValueError, match=r"^z contains NaN or infinite values$"):
        nearest([0.0, np.inf], [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"^only the 2-D case has this closed form$"):
        mass_within(1.0, dim=1)


def test_the_defaults_five_neighbours_and_seed_0():
    from cvae.core.posterior import decode_samples
    from devkit import random_model

    P = np.arange(16, dtype=np.float64).reshape(8, 2)
    idx, dist = nearest([0.0, 0.0], P)
    assert idx.tolist() == [0, 1, 2, 3, 4]  # five of the eight
    # An exclude past the last index, even just past it, excludes nothing.
    assert nearest([0.0, 0.0], P, k=1, exclude=len(P))[0].tolist() == [0]
    model = random_model(seed=1)
    z, imgs = decode_samples(model, [0.5, -0.5], [0.0, 0.0], 3)
    z0, imgs0 = decode_samples(model, [0.5, -0.5], [0.0, 0.0], 3, seed=0)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(imgs, imgs0)
