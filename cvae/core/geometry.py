"""The latent plane's geometry: where the decoder stretches it, where the prior and the encoded
test digits put their mass.

- **Magnification**: at z, J = d decoder(z) / dz is 784 x 2 (the pixel probabilities' change per
  unit of z1 and z2); sqrt(det(J^T J)) is the area of the image of a unit square of the plane in
  pixel space. Large where a small step changes the digit a lot (the borders between classes,
  where a morph jumps), small where the digit barely changes. Exact, by forward-mode
  differentiation along the decoder's declared layers (points and tangents in one batch), on a
  grid.
- **The prior** N(0, I): its k-sigma circles (:func:`prior_circle`).
- **The encoded test digits' density**: a Gaussian kernel density of their z_mean (Scott's
  bandwidth per axis), tabulated on a fine grid; :class:`Density` also holds the density below
  which lie the given percentiles of the test digits' own densities, so "almost no test digit
  is encoded here" (below the 1st) is one comparison.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .model import ACTIVATIONS, CVAE, _apply
from .posterior import ellipse

STRETCH_N = 40  # grid points per axis of the magnification map
JACOBIAN_BATCH = 64  # points per batch: 3 x 64 rows keep a layer's maps in cache (512 is ~20% slower)
DENSITY_N = 240  # grid points per axis of the density's table (cheap: one matrix product)
SPARSE_PERCENTILE = 1.0  # below the density of this share (%) of test digits: "almost none here"
DENSITY_PERCENTILES = (1.0, 10.0, 50.0)  # contours enclosing 99%, 90% and 50% of the test digits


def grid_axes(z1_range, z2_range, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n evenly spaced values on each axis, both ends included, increasing (float64)."""
    n = int(n)
    if n < 2:
        raise ValueError(f"a grid needs n >= 2, got {n}")
    for name, (lo, hi) in (("z1", z1_range), ("z2", z2_range)):
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise ValueError(f"{name} range must be finite with low < high, got ({lo}, {hi})")
    return np.linspace(z1_range[0], z1_range[1], n), np.linspace(z2_range[0], z2_range[1], n)


# The derivative of each activation, from its pre-activation p and its value a.
_SLOPES = {"relu": lambda p, a: (p > 0).to(p.dtype), "sigmoid": lambda p, a: a * (1 - a),
           "linear": lambda p, a: torch.ones_like(p)}


def _forward_with_tangents(model: CVAE, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 784), J (B, 784, d)): forward-mode differentiation along the decoder's
    declared layers. Each layer runs once on the points and their d tangents stacked into one
    batch (a layer is affine: its tangent is its output less its output at zero, the bias);
    each activation scales the tangents by its slope at the points. Feature maps are kept
    channels_last (NHWC): the CPU's transposed convolutions run faster so, same sums."""
    dec = model.decoder
    b, d = z.shape
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    h = torch.cat([z, eye.repeat_interleave(b, 0)])  # rows: the points, then tangent e_k of each point
    last = len(dec.spec) - 1
    for i, layer in enumerate(dec.spec):
        module = getattr(dec, layer["name"])
        pre = _apply(layer, module, h)
        bias = _apply(layer, module, torch.zeros_like(h[:1]))
        p, t = pre[:b], pre[b:].unflatten(0, (d, b))
        a = ACTIVATIONS[layer["activation"]](p)
        t.sub_(bias).mul_(_SLOPES[layer["activation"]](p, a))  # in place: the tangents' rows of pre
        if i == last:
            return a.reshape(b, -1), t.reshape(d, b, -1).permute(1, 2, 0)
        p.copy_(a)  # the points' rows become their activations
        h = pre
        if "reshape" in layer:
            h = h.view(-1, *layer["reshape"]).contiguous(memory_format=torch.channels_last)
    raise ValueError("the decoder has no layers")


def default_workers() -> int:
    """Threads for :func:`jacobians`: as many as the cores hold torch's intra-op thread pools
    (the app's one thread per two cores: one per core), at least one."""
    return max(1, (os.cpu_count() or 1) // torch.get_num_threads())


def jacobians(model: CVAE, z, batch_size: int = JACOBIAN_BATCH, workers: int | None = None) -> np.ndarray:
    """J = d decode(z) / dz at each point: (N, 784, d) float32, exact (forward-mode; checked
    against ``torch.func.jvp`` and finite differences in tests/test_geometry.py).

    The batches are shared among ``workers`` threads (default: :func:`default_workers`); each
    takes the next batch when it is done, so a core taken by another process slows only its
    own share (the threads of one torch pool wait for each other at every operation)."""
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim)
    if not torch.isfinite(zt).all():
        raise ValueError("z contains NaN or infinite values")
    workers = default_workers() if workers is None else workers
    batches = [zt[i:i + batch_size] for i in range(0, len(zt), batch_size)]

    def one(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # per thread: the mode is thread-local
            return _forward_with_tangents(model, batch.to(model.device))[1].cpu()

    was_training = model.training
    model.eval()
    try:
        if workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(min(workers, len(batches))) as pool:
                out = list(pool.map(one, batches))
        else:
            out = [one(batch) for batch in batches]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 784, model.latent_dim), np.float32)


def magnification_of(jac) -> np.ndarray:
    """sqrt(det(J^T J)) of each (784, d) Jacobian, float64."""
    j = np.asarray(jac, dtype=np.float64)
    g = np.einsum("npi,npj->nij", j, j)
    return np.sqrt(np.clip(np.linalg.det(g), 0.0, None))


def magnification(model: CVAE, z1_range, z2_range, n: int = STRETCH_N,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z1 values, z2 values, map (n, n)): map[j, i] is the magnification at (z1[i], z2[j])
    (``workers``: as in :func:`jacobians`)."""
    if model.latent_dim != 2:
        raise ValueError("the magnification map needs a 2-D latent space")
    g1, g2 = grid_axes(z1_range, z2_range, n)
    zz = np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)  # row j: z2 = g2[j]
    return g1, g2, magnification_of(jacobians(model, zz, workers=workers)).reshape(len(g2), len(g1))


def prior_circle(k: float, n_points: int = 120) -> np.ndarray:
    """The prior N(0, I)'s k-sigma circle, a closed outline (n_points + 1, 2)."""
    return ellipse([0.0, 0.0], [0.0, 0.0], k, n_points)


@dataclass(frozen=True)
class Density:
    """A Gaussian kernel density of encoded points (diagonal bandwidth), tabulated on a fine grid
    over the points' range plus four bandwidths (its mass outside is under 1e-3); ``at`` reads
    the table (bilinear), ``levels`` maps a percentile p to the density below which lie p% of the
    points' own densities, read from the same table."""

    centers: np.ndarray  # (N, 2)
    bandwidth: tuple[float, float]
    g1: np.ndarray  # the table's axes
    g2: np.ndarray
    table: np.ndarray  # (len(g2), len(g1)): table[j, i] at (g1[i], g2[j])
    levels: dict

    def at(self, z) -> np.ndarray:
        """The density at points (M, 2) (or one point), float64; 0 outside the table."""
        return _bilinear(self.g1, self.g2, self.table, np.asarray(z, dtype=np.float64).reshape(-1, 2))

    def exact(self, z) -> np.ndarray:
        """The density at points (M, 2) from every kernel (what the table approximates)."""
        return _kde(self.centers, self.bandwidth, np.asarray(z, dtype=np.float64).reshape(-1, 2))

    def grid(self, g1, g2) -> np.ndarray:
        """The density on a grid: out[j, i] at (g1[i], g2[j]), exact."""
        return _kde_grid(self.centers, self.bandwidth, g1, g2)

    def sparse(self, z, percentile: float = SPARSE_PERCENTILE) -> bool:
        """Whether almost no point is encoded at z: its density under the given percentile's."""
        return bool(self.at(z)[0] < self.levels[percentile])


def _kde_grid(centers, bandwidth, g1, g2) -> np.ndarray:
    """A kernel with a diagonal bandwidth is a product over the axes: the grid is one matrix
    product."""
    (h1, h2), c = bandwidth, np.asarray(centers, dtype=np.float64)
    a = np.exp(-0.5 * ((np.asarray(g1, dtype=np.float64)[:, None] - c[:, 0]) / h1) ** 2)  # (n1, N)
    b = np.exp(-0.5 * ((np.asarray(g2, dtype=np.float64)[:, None] - c[:, 1]) / h2) ** 2)  # (n2, N)
    return (b @ a.T) / (len(c) * 2 * np.pi * h1 * h2)


def _bilinear(g1: np.ndarray, g2: np.ndarray, table: np.ndarray, q: np.ndarray) -> np.ndarray:
    f1 = (q[:, 0] - g1[0]) / (g1[1] - g1[0])
    f2 = (q[:, 1] - g2[0]) / (g2[1] - g2[0])
    inside = (f1 >= 0) & (f1 <= len(g1) - 1) & (f2 >= 0) & (f2 <= len(g2) - 1)
    i = np.clip(np.floor(f1).astype(int), 0, len(g1) - 2)
    j = np.clip(np.floor(f2).astype(int), 0, len(g2) - 2)
    u, v = np.clip(f1 - i, 0, 1), np.clip(f2 - j, 0, 1)
    val = ((1 - u) * (1 - v) * table[j, i] + u * (1 - v) * table[j, i + 1]
           + (1 - u) * v * table[j + 1, i] + u * v * table[j + 1, i + 1])
    return np.where(inside, val, 0.0)


def _kde(centers: np.ndarray, bandwidth, q: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """The kernel density at points q, every kernel (float64)."""
    h = np.asarray(bandwidth, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64) / h
    out = [np.exp(-0.5 * (((q[i:i + chunk, None, :] / h) - c[None]) ** 2).sum(-1)).sum(1)
           for i in range(0, len(q), chunk)]
    dens = np.concatenate(out) if out else np.zeros(0)
    return dens / (len(c) * 2 * np.pi * h[0] * h[1])


def encoded_density(z_mean, percentiles=(SPARSE_PERCENTILE, *DENSITY_PERCENTILES[1:]), n: int = DENSITY_N) -> Density:
    """The kernel density of the encoded points (N, 2), Scott's bandwidth sigma * N^(-1/6) per
    axis, tabulated on an n x n grid; its levels at the given percentiles of the points' own
    densities (each point's own kernel included, as a kernel density at its data is)."""
    c = np.asarray(z_mean, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or len(c) < 2 or not np.isfinite(c).all():
        raise ValueError(f"need finite 2-D points (N >= 2, 2); got {c.shape}")
    sd = c.std(axis=0)
    h = tuple(float(max(s, 1e-3) * len(c) ** (-1 / 6)) for s in sd)
    lo, hi = c.min(0) - 4 * np.array(h), c.max(0) + 4 * np.array(h)
    g1, g2 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    table = _kde_grid(c, h, g1, g2)
    own = _bilinear(g1, g2, table, c)
    levels = {float(p): float(np.percentile(own, p)) for p in percentiles}
    return Density(c, h, g1, g2, table, levels)
