"""cvae.core.geometry without MNIST or the shipped encodings: the encoded digits' density on a few
hundred points against a kernel sum written here, the grid's axes and refusals, the Jacobians'
edges (no points, points that are not numbers, a model left in the mode it was in)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cvae.core import geometry
from devkit import random_model

POINTS2 = np.array([[0.3, -1.2], [1.0, 0.5]], np.float32)


def _points(n: int = 400) -> np.ndarray:
    """Two clusters of unequal spread on each axis."""
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal((-1.0, 0.5), (0.4, 0.9), size=(n // 2, 2)),
                           rng.normal((1.5, -1.0), (0.7, 0.3), size=(n - n // 2, 2))])


def _kernel_sum(z, h, q):
    return np.exp(-0.5 * (((q[:, None] - z[None]) / h) ** 2).sum(-1)).sum(1) / (len(z) * 2 * np.pi * h[0] * h[1])


def test_the_density_is_the_kernel_sum_with_scotts_bandwidth_tabulated():
    z = _points()
    d = geometry.encoded_density(z)
    h = z.std(0) * len(z) ** (-1 / 6)
    assert d.bandwidth == pytest.approx(tuple(h), rel=1e-12)
    q = z[::4] + np.random.default_rng(1).normal(size=(100, 2)) * 0.3
    want = _kernel_sum(z, h, q)
    np.testing.assert_allclose(d.exact(q), want, rtol=1e-10)
    np.testing.assert_allclose(d.exact(q[7]), want[7:8], rtol=1e-10)  # one point, flat
    big = want > 0.01 * want.max()
    np.testing.assert_allclose(d.at(q)[big], want[big], rtol=0.01)  # the table, bilinear
    # The table spans the points' range and four bandwidths more, on a DENSITY_N grid, exact at its nodes.
    assert d.table.shape == (geometry.DENSITY_N, geometry.DENSITY_N)
    assert d.g1[0] == pytest.approx(z[:, 0].min() - 4 * h[0]) and d.g1[-1] == pytest.approx(z[:, 0].max() + 4 * h[0])
    assert d.g2[0] == pytest.approx(z[:, 1].min() - 4 * h[1]) and d.g2[-1] == pytest.approx(z[:, 1].max() + 4 * h[1])
    np.testing.assert_allclose(d.table[17, 101], _kernel_sum(z, h, np.array([[d.g1[101], d.g2[17]]]))[0], rtol=1e-10)
    np.testing.assert_allclose(d.at([[d.g1[101], d.g2[17]]]), d.table[17, 101], rtol=1e-12)
    np.testing.assert_allclose(d.grid(d.g1[100:103], d.g2[17:19]), d.table[17:19, 100:103], rtol=1e-10)
    # Outside the table: nothing; its last row and column still read.
    assert d.at([[d.g1[0] - 1e-6, 0.0]])[0] == 0 and d.at([[0.0, d.g2[-1] + 1e-6]])[0] == 0
    assert d.at([[d.g1[-1], d.g2[-1]]])[0] == pytest.approx(d.table[-1, -1], rel=1e-9)


def test_the_levels_are_percentiles_of_the_points_own_densities():
    z = _points()
    d = geometry.encoded_density(z)
    assert sorted(d.levels) == [1.0, 10.0, 50.0]
    own = d.at(z)
    for p, level in d.levels.items():
        assert level == np.percentile(own, p)
    assert d.sparse([6.0, 6.0]) and not d.sparse(z[np.argmax(own)])
    assert d.sparse(z[np.argmax(own)], percentile=50.0) is False
    least = z[np.argmin(own)]
    assert d.sparse(least) and d.sparse(least, percentile=50.0)
    other = geometry.encoded_density(z, percentiles=(5.0,), n=50)
    assert list(other.levels) == [5.0] and other.table.shape == (50, 50)


def test_points_on_a_line_get_the_smallest_bandwidth_across_it():
    z = np.stack([np.linspace(-1, 1, 64), np.full(64, 0.25)], 1)
    d = geometry.encoded_density(z)
    assert d.bandwidth[1] == pytest.approx(1e-3 * 64 ** (-1 / 6))
    assert d.at([[0.0, 0.25]])[0] > 0 and np.isfinite(d.table).all()


@pytest.mark.parametrize("z", [np.zeros((5, 3)), np.zeros((1, 2)), np.zeros(4), np.array([[0.0, 1.0], [np.nan, 0.0]])])
def test_the_density_refuses_what_is_not_two_or_more_finite_points(z):
    with pytest.raises(ValueError, match=r"need finite 2-D points \(N >= 2, 2\); got"):
        geometry.encoded_density(z)


def test_grid_axes_both_ends_included_and_refusals():
    g1, g2 = geometry.grid_axes((-2, 3), (1, 2), 6)
    assert g1.tolist() == [-2, -1, 0, 1, 2, 3] and g2[0] == 1 and g2[-1] == 2 and len(g2) == 6
    assert [len(a) for a in geometry.grid_axes((0, 1), (0, 1), 2)] == [2, 2]
    with pytest.raises(ValueError, match="a grid needs n >= 2, got 1"):
        geometry.grid_axes((0, 1), (0, 1), 1)
    for r1, r2, name in [((1, 1), (0, 1), "z1"), ((0, 1), (2, 1), "z2"), ((0, np.inf), (0, 1), "z1"),
                         ((0, 1), (np.nan, 1), "z2")]:
        with pytest.raises(ValueError, match=f"{name} range must be finite with low < high"):
            geometry.grid_axes(r1, r2, 5)


def test_jacobians_of_no_points_of_bad_points_and_the_mode_kept():
    m = random_model(1)
    none = geometry.jacobians(m, np.zeros((0, 2)))
    assert none.shape == (0, 784, 2) and none.dtype == np.float32  # as any other answer
    with pytest.raises(ValueError, match=r"^z contains NaN or infinite values$"):
        geometry.jacobians(m, [[0.0, np.inf]])
    m.train()
    geometry.jacobians(m, [[0.0, 0.0]])
    assert m.training
    # 70 points, the default batch of 64 and two threads: the same as one thread, in order.
    z = np.random.default_rng(0).normal(size=(70, 2))
    np.testing.assert_array_equal(geometry.jacobians(m, z, workers=2), geometry.jacobians(m, z, workers=1))
    with pytest.raises(ValueError, match=r"^the magnification map needs a 2-D latent space$"):
        geometry.magnification(random_model(latent_dim=3), (0, 1), (0, 1))


def test_default_workers_share_the_cores_among_torchs_thread_pools(monkeypatch):
    monkeypatch.setattr(geometry.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert geometry.default_workers() == 4
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert geometry.default_workers() == 5 and isinstance(geometry.default_workers(), int)  # whole threads
    monkeypatch.setattr(torch, "get_num_threads", lambda: 32)
    assert geometry.default_workers() == 1  # at least one
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(geometry.os, "cpu_count", lambda: None)  # unknown: one core
    assert geometry.default_workers() == 1


def test_no_query_points_no_densities_and_the_prior_circle_in_120_segments():
    d = geometry.encoded_density(_points(50))
    assert d.exact(np.zeros((0, 2))).shape == (0,) and d.at(np.zeros((0, 2))).shape == (0,)
    c = geometry.prior_circle(1.0)
    assert c.shape == (121, 2)  # closed: the last point is the first
    np.testing.assert_array_equal(c[-1], c[0])
    np.testing.assert_allclose(c[30], [0.0, 1.0], atol=1e-12)  # a quarter round in 120 segments


def test_the_table_is_read_bilinearly_up_to_its_edges_and_zero_outside():
    """A table of x + 10 y on the nodes x = 0..3, y = 0..2: bilinear reading gives x + 10 y exactly."""
    g1, g2 = np.arange(4.0), np.arange(3.0)
    d = geometry.Density(np.zeros((2, 2)), (1.0, 1.0), g1, g2, g1[None, :] + 10 * g2[:, None], {1.0: 0.0})
    inside = np.array([[0, 0], [3, 2], [3, 0], [0, 2], [1.5, 0.5], [3, 1.25], [0.25, 2], [2.5, 1.75], [0.5, 0]])
    np.testing.assert_allclose(d.at(inside), inside[:, 0] + 10 * inside[:, 1], rtol=0, atol=1e-12)
    outside = np.array([[3.0001, 1], [-1e-9, 1], [1, 2.0001], [1, -1e-9], [-5, -5], [9, 9]])
    assert d.at(outside).tolist() == [0.0] * 6


def test_two_points_have_a_density():
    d = geometry.encoded_density([[0.0, 0.0], [1.0, 2.0]])
    assert d.bandwidth == pytest.approx((0.5 * 2 ** (-1 / 6), 1.0 * 2 ** (-1 / 6)))


def test_the_magnification_of_float32_jacobians_in_float64_never_nan():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=784), rng.normal(size=784)
    nearly = np.stack([a, a + 1e-3 * b], 1)[None]  # nearly parallel columns: a small area of large sides
    want = geometry.magnification_of(nearly)
    got = geometry.magnification_of(nearly.astype(np.float32))
    assert got.dtype == np.float64 and want[0] > 0.5
    np.testing.assert_allclose(got, want, rtol=1e-4)  # float32 products of the columns would give 0 here
    parallel = np.stack([a, 3 * a], 1)[None]  # no area; rounding makes det(J^T J) -1e-9 here
    assert geometry.magnification_of(parallel).tolist() == [0.0]
    # Areas scale with the product of the scales: a tenth of the Jacobian, a hundredth of the area.
    np.testing.assert_allclose(geometry.magnification_of(0.1 * nearly), 0.01 * want, rtol=1e-9)


def test_the_magnification_map_uses_the_threads_it_is_given(monkeypatch):
    m = random_model(1)
    want = geometry.magnification(m, (-1, 1), (-1, 1), n=3, workers=1)[2]

    def no_default():
        raise AssertionError("workers were given")

    monkeypatch.setattr(geometry, "default_workers", no_default)
    np.testing.assert_array_equal(geometry.magnification(m, (-1, 1), (-1, 1), n=3, workers=1)[2], want)


def test_jacobians_whatever_torchs_default_dtype():
    m = random_model(1)
    want = geometry.jacobians(m, POINTS2)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = geometry.jacobians(m, POINTS2)
    finally:
        torch.set_default_dtype(old)
    np.testing.assert_array_equal(got, want)


def test_the_batches_are_shared_among_the_threads_asked_for(monkeypatch):
    pools = []

    class Pool(geometry.ThreadPoolExecutor):
        def __init__(self, n):
            pools.append(n)
            super().__init__(n)

    monkeypatch.setattr(geometry, "ThreadPoolExecutor", Pool)
    m, z = random_model(1), np.random.default_rng(0).normal(size=(7, 2))
    for batch_size, workers, pool in [(7, 3, []), (3, 1, []), (3, 2, [2]), (3, 3, [3]), (3, 8, [3]), (2, 3, [3]), (4, 3, [2])]:
        want = geometry.jacobians(m, z, batch_size=batch_size, workers=1)
        pools.clear()
        np.testing.assert_array_equal(geometry.jacobians(m, z, batch_size=batch_size, workers=workers), want)
        assert pools == pool, (batch_size, workers)  # one batch or one thread: no pool; never more threads than batches


def test_a_decoder_without_layers_is_refused():
    m = random_model(1)
    m.decoder.spec = []
    with pytest.raises(ValueError, match=r"^the decoder has no layers$"):
        geometry.jacobians(m, POINTS2)
