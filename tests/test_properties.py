"""Property-based tests (hypothesis) for the pure functions of the package.

Example counts are modest so the file runs in well under a minute on 2 busy cores.
Run: python -m pytest tests/test_properties.py
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvae import CVAE, decode_grid, decode_points, encode_dataset, kl_divergence, reparameterize, vae_loss
from cvae.core.latent import grid_points, MAX_GRID_N, to_uint8
from cvae.core.model import IMAGE_SIZE

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=None)
def model_for(latent_dim: int, seed: int = 0) -> CVAE:
    torch.manual_seed(seed)
    return CVAE(latent_dim=latent_dim).eval()


def make_images(batch: int, kind: str, seed: int) -> np.ndarray:
    """A batch of images in [0, 1] of a kind that stresses the model differently."""
    rng = np.random.default_rng(seed)
    shape = (batch, 1, IMAGE_SIZE, IMAGE_SIZE)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "ones":
        return np.ones(shape, np.float32)
    if kind == "binary":
        return (rng.random(shape) < 0.2).astype(np.float32)
    if kind == "tiny":  # denormal-ish values just above 0 and just below 1
        return np.where(rng.random(shape) < 0.5, 1e-38, 1 - 1e-7).astype(np.float32)
    return rng.random(shape, dtype=np.float32)


image_batches = st.builds(make_images, st.integers(1, 48),
                          st.sampled_from(["uniform", "zeros", "ones", "binary", "tiny"]),
                          st.integers(0, 2**32 - 1))


# --------------------------------------------------------------------------- encode / decode


@FAST
@given(images=image_batches, latent_dim=st.sampled_from([1, 2, 3, 8]),
       batch_size=st.integers(1, 64), layout=st.sampled_from(["nchw", "nhw"]))
def test_encode_shapes_and_finiteness(images, latent_dim, batch_size, layout):
    model = model_for(latent_dim)
    x = images if layout == "nchw" else images[:, 0]
    z_mean, z_log_var = encode_dataset(model, x, batch_size=batch_size)
    assert z_mean.shape == z_log_var.shape == (len(images), latent_dim)
    assert z_mean.dtype == z_log_var.dtype == np.float32
    assert np.isfinite(z_mean).all() and np.isfinite(z_log_var).all()
    # Batching is an implementation detail: one batch gives the same numbers.
    whole, _ = encode_dataset(model, images, batch_size=len(images))
    np.testing.assert_allclose(z_mean, whole, rtol=1e-4, atol=1e-5)


@FAST
@given(data=st.data(), latent_dim=st.sampled_from([1, 2, 5]), batch=st.integers(1, 40),
       batch_size=st.integers(1, 64))
def test_decode_shapes_and_range(data, latent_dim, batch, batch_size):
    z = data.draw(hnp.arrays(np.float32, (batch, latent_dim),
                             elements=st.floats(-1e4, 1e4, allow_nan=False, width=32)))
    out = decode_points(model_for(latent_dim), z, batch_size=batch_size)
    assert out.shape == (batch, IMAGE_SIZE, IMAGE_SIZE) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    img = to_uint8(out)
    assert img.dtype == np.uint8 and img.shape == out.shape


@FAST
@given(z=hnp.arrays(np.float64, 2, elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_decode_accepts_every_finite_point_and_refuses_the_rest(z):
    """Any float pair decodes to a valid image, or (NaN/inf) is refused with ValueError."""
    model = model_for(2)
    if not np.isfinite(z).all() or np.abs(z).max() > np.finfo(np.float32).max:
        with pytest.raises(ValueError), np.errstate(over="ignore"):  # float64 beyond float32 -> inf
            decode_points(model, z.reshape(1, 2))
        return
    out = decode_points(model, z.reshape(1, 2))
    assert out.shape == (1, IMAGE_SIZE, IMAGE_SIZE)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


# --------------------------------------------------------------------------- the loss


@FAST
@given(images=image_batches, seed=st.integers(0, 10_000))
def test_model_loss_finite_with_nonnegative_parts(images, seed):
    """For any input in [0,1], the model's loss (784*BCE + KL) is finite and both parts are >= 0."""
    model = model_for(2)
    x = torch.from_numpy(images)
    with torch.no_grad():
        parts = model.loss(x, generator=torch.Generator().manual_seed(seed))
    for t in (parts.loss, parts.recon, parts.kl):
        assert torch.isfinite(t)
    assert parts.recon >= 0 and parts.kl >= 0
    assert parts.per_image.shape == (len(images),)
    assert (parts.per_image >= 0).all()
    torch.testing.assert_close(parts.loss, parts.recon + parts.kl, rtol=1e-5, atol=1e-4)


@FAST
@given(data=st.data(), batch=st.integers(1, 16), latent_dim=st.integers(1, 8))
def test_vae_loss_any_logits_and_posterior(data, batch, latent_dim):
    """Any x in [0,1], any finite logits and any reasonable posterior: finite, parts >= 0."""
    floats01 = st.floats(0.0, 1.0, width=32)
    x = torch.from_numpy(data.draw(hnp.arrays(np.float32, (batch, 1, 4, 4), elements=floats01)))
    logits = torch.from_numpy(data.draw(hnp.arrays(np.float32, (batch, 1, 4, 4),
                                                   elements=st.floats(-80, 80, width=32))))
    mean = torch.from_numpy(data.draw(hnp.arrays(np.float32, (batch, latent_dim),
                                                 elements=st.floats(-100, 100, width=32))))
    log_var = torch.from_numpy(data.draw(hnp.arrays(np.float32, (batch, latent_dim),
                                                    elements=st.floats(-30, 30, width=32))))
    parts = vae_loss(x, logits, mean, log_var)
    assert torch.isfinite(parts.loss) and torch.isfinite(parts.per_image).all()
    assert parts.recon >= 0
    # KL is >= 0 in exact maths; allow float rounding of a few ulps of its terms.
    kl = kl_divergence(mean, log_var)
    scale = 1 + mean.square().sum(1) + log_var.abs().sum(1) + log_var.exp().sum(1)
    assert (kl >= -1e-6 * scale).all()


@FAST
@given(latent_dim=st.integers(1, 8), batch=st.integers(1, 32), seed=st.integers(0, 1000))
def test_kl_is_zero_exactly_at_the_prior(latent_dim, batch, seed):
    zeros = torch.zeros(batch, latent_dim)
    assert torch.equal(kl_divergence(zeros, zeros), torch.zeros(batch))
    # and positive anywhere else: every mean at least 0.1 from 0 (in float32, 1 - m^2 - 1 is 0 for
    # |m| < 2.4e-4, so a mean that close to the prior's scores 0: randn + 0.5 drew one now and then)
    gen = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (batch, latent_dim), generator=gen) * 2 - 1
    mean = sign * (0.1 + 2 * torch.rand(batch, latent_dim, generator=gen))
    assert (kl_divergence(mean, zeros) > 0).all()


@FAST
@given(batch=st.integers(1, 32), latent_dim=st.integers(1, 8), seed=st.integers(0, 1000))
def test_reparameterize_shape_and_zero_variance(batch, latent_dim, seed):
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, latent_dim, generator=gen)
    z = reparameterize(mean, torch.full((batch, latent_dim), -200.0), torch.Generator().manual_seed(seed))
    assert z.shape == mean.shape
    torch.testing.assert_close(z, mean)  # sigma = exp(-100) ~ 0: z is the mean


# --------------------------------------------------------------------------- the manifold grid

ranges = st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(1e-3, 100)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, MAX_GRID_N), z1=ranges, z2=ranges)
def test_grid_points_for_any_n_and_ranges(n, z1, z2):
    gx, gy = grid_points(n, z1, z2)
    assert gx.shape == gy.shape == (n,)
    assert np.isclose(gx[0], z1[0], atol=1e-4) and np.isclose(gy[-1], z2[0], atol=1e-4)
    if n > 1:
        assert np.isclose(gx[-1], z1[1], atol=1e-4) and np.isclose(gy[0], z2[1], atol=1e-4)
        assert (np.diff(gx) >= 0).all() and (np.diff(gy) <= 0).all()  # left to right, top to bottom


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 12), z1=ranges, z2=ranges, data=st.data())
def test_decode_grid_for_any_n_and_ranges(n, z1, z2, data):
    model = model_for(2)
    grid = decode_grid(model, n, z1, z2)
    assert grid.shape == (n * IMAGE_SIZE, n * IMAGE_SIZE)
    assert np.isfinite(grid).all() and grid.min() >= 0 and grid.max() <= 1
    # Tile (row i, column j) is the digit at (gx[j], gy[i]).
    gx, gy = grid_points(n, z1, z2)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1))
    tile = grid[i * IMAGE_SIZE:(i + 1) * IMAGE_SIZE, j * IMAGE_SIZE:(j + 1) * IMAGE_SIZE]
    np.testing.assert_allclose(tile, decode_points(model, [[gx[j], gy[i]]])[0], atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_GRID_N + 1)),
       lo=st.floats(allow_nan=True), hi=st.floats(allow_nan=True))
def test_grid_refuses_bad_n_and_ranges(n, lo, hi):
    with pytest.raises(ValueError):
        grid_points(n)
    assume(not (np.isfinite(lo) and np.isfinite(hi) and lo < hi))
    with pytest.raises(ValueError, match="range"):
        grid_points(5, (lo, hi))
    with pytest.raises(ValueError, match="range"):
        grid_points(5, (-2.0, 2.0), (lo, hi))
