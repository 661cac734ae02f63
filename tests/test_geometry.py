"""cvae.core.geometry: the decoder's Jacobian against finite differences and torch.func, the
magnification as the area it is, the encoded digits' density against a kernel sum written here."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.func import jvp

from cvae.core import geometry
from devkit import random_model

POINTS = np.array([[0.3, -1.2], [1.0, 0.5], [-1.7, 2.2], [3.0, -3.0]], np.float32)


def _central_differences(model, z: np.ndarray, h: float = 1e-7) -> np.ndarray:
    """(N, 784, 2) by central differences on a float64 copy of the model (a small step: a ReLU's
    kink lies within 1e-5 of two of these points in the random model)."""
    m64 = copy.deepcopy(model).double().eval()
    zt = torch.as_tensor(z, dtype=torch.float64)
    cols = []
    with torch.no_grad():
        for k in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[k] = h
            cols.append(((m64.decode(zt + e) - m64.decode(zt - e)) / (2 * h)).reshape(len(z), -1))
    return torch.stack(cols, -1).numpy()


@pytest.mark.parametrize("which", ["shipped", "random"])
def test_jacobians_are_the_derivative(model, which):
    m = model if which == "shipped" else random_model(1)
    got = geometry.jacobians(m, POINTS, batch_size=3, workers=2)  # two batches, one per thread
    fd = _central_differences(m, POINTS)
    assert got.shape == (4, 784, 2)
    # float32 forward-mode against float64 differences: measured <= 5e-8 (random), 1.8e-6 (shipped)
    np.testing.assert_allclose(got, fd, atol=3e-6)
    # the threads' batches come back in order, each as computed alone
    np.testing.assert_array_equal(geometry.jacobians(m, POINTS, batch_size=3, workers=1), got)
    np.testing.assert_array_equal(geometry.jacobians(m, POINTS[3:], batch_size=3, workers=1), got[3:])
    zt = torch.as_tensor(POINTS)
    for k in range(2):
        e = torch.zeros_like(zt)
        e[:, k] = 1.0
        ref = jvp(m.decode, (zt,), (e,))[1].reshape(4, -1).detach().numpy()
        np.testing.assert_allclose(got[:, :, k], ref, atol=1e-5)


def test_magnification_is_the_area_of_the_image_of_a_unit_square(model):
    j = np.random.default_rng(0).normal(size=(5, 784, 2))
    a, b = j[:, :, 0], j[:, :, 1]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    area = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) * np.sqrt(1 - cos ** 2)
    np.testing.assert_allclose(geometry.magnification_of(j), area, rtol=1e-9)
    g1, g2, m = geometry.magnification(model, (-2.0, 3.0), (-1.0, 2.0), n=5)
    assert m.shape == (5, 5) and g1[0] == -2.0 and g2[-1] == 2.0
    # map[j, i] is at (g1[i], g2[j])
    want = geometry.magnification_of(geometry.jacobians(model, [[g1[3], g2[1]]]))[0]
    assert m[1, 3] == pytest.approx(want, rel=1e-6)
    assert m.max() > 3 * m.min()  # the decoder stretches the plane unevenly


def test_prior_circles():
    c = geometry.prior_circle(2.0)
    np.testing.assert_allclose(np.hypot(c[:, 0], c[:, 1]), 2.0, atol=1e-12)


@pytest.mark.slow  # a kernel sum over the 10,000 encodings at many points
def test_encoded_density_against_a_kernel_sum(enc):
    z = enc["z_mean"].astype(np.float64)
    d = geometry.encoded_density(z)
    h = z.std(0) * len(z) ** (-1 / 6)
    assert d.bandwidth == pytest.approx(tuple(h))
    q = z[::50] + np.random.default_rng(1).normal(size=(200, 2)) * 0.3
    want = np.exp(-0.5 * (((q[:, None] - z[None]) / h) ** 2).sum(-1)).sum(1) / (len(z) * 2 * np.pi * h[0] * h[1])
    np.testing.assert_allclose(d.exact(q), want, rtol=1e-10)
    big = want > 0.01 * want.max()
    np.testing.assert_allclose(d.at(q)[big], want[big], rtol=0.01)  # the table: measured 0.7%
    # levels: the share of test digits whose own (exact) density lies below each
    own = d.exact(z)
    for p, level in d.levels.items():
        assert np.mean(own < level) * 100 == pytest.approx(p, abs=0.3)
    assert d.sparse([10.0, 10.0]) and d.at([[50.0, 0.0]])[0] == 0.0
    densest = z[np.argmax(own)]
    assert not d.sparse(densest)
    np.testing.assert_allclose(d.grid([densest[0]], [densest[1]])[0, 0], own.max(), rtol=1e-9)
