"""The encoder's posterior q(z|x) = N(z_mean, diag(exp(z_log_var))) and latent neighbours."""

from __future__ import annotations

import numpy as np

from .latent import decode_points

MAX_SAMPLES = 256


def _posterior(z_mean, z_log_var) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(z_mean, dtype=np.float64).reshape(-1)
    lv = np.asarray(z_log_var, dtype=np.float64).reshape(-1)
    if m.shape != lv.shape or m.size < 1:
        raise ValueError(f"z_mean and z_log_var must be one point of one dimension; got {m.shape} and {lv.shape}")
    if not (np.isfinite(m).all() and np.isfinite(lv).all()):
        raise ValueError("z_mean or z_log_var contains NaN or infinite values")
    return m, lv


def std(z_log_var) -> np.ndarray:
    """sigma = exp(0.5 * log_var)."""
    return np.exp(0.5 * np.asarray(z_log_var, dtype=np.float64))


def ellipse(z_mean, z_log_var, k: float = 1.0, n_points: int = 100) -> np.ndarray:
    """Closed outline (n_points + 1, 2) of the k-standard-deviation ellipse of a 2-D
    diagonal Gaussian: semi-axes k*sigma1 and k*sigma2 along z1 and z2.

    For a 2-D Gaussian the 1- and 2-sigma ellipses hold 39% and 86% of the mass.
    """
    m, lv = _posterior(z_mean, z_log_var)
    if m.size != 2:
        raise ValueError(f"an ellipse needs a 2-D latent point, got {m.size}-D")
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"k must be positive, got {k}")
    n_points = int(n_points)
    if n_points < 8:
        raise ValueError(f"n_points must be >= 8, got {n_points}")
    s = np.exp(0.5 * lv)
    t = np.linspace(0.0, 2.0 * np.pi, n_points + 1)
    t[-1] = 0.0  # close the outline exactly
    return np.stack([m[0] + k * s[0] * np.cos(t), m[1] + k * s[1] * np.sin(t)], axis=1)


def mass_within(k: float, dim: int = 2) -> float:
    """Probability mass of a dim-D Gaussian within its k-sigma ellipse (dim 2 only: 1 - exp(-k^2/2))."""
    if dim != 2:
        raise ValueError("only the 2-D case has this closed form")
    return float(1.0 - np.exp(-0.5 * k * k))


def sample_posterior(z_mean, z_log_var, n: int, seed: int = 0) -> np.ndarray:
    """n samples (n, d) float32 of z = mu + sigma * eps, from a generator seeded with ``seed``."""
    m, lv = _posterior(z_mean, z_log_var)
    n = int(n)
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be between 1 and {MAX_SAMPLES}, got {n}")
    eps = np.random.default_rng(int(seed)).standard_normal((n, m.size))
    return (m + np.exp(0.5 * lv) * eps).astype(np.float32)


def decode_samples(model, z_mean, z_log_var, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(samples (n, d), their decodings (n, 28, 28))."""
    z = sample_posterior(z_mean, z_log_var, n, seed)
    return z, decode_points(model, z)


def nearest(z, points, k: int = 5, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the k points nearest to z in latent space,
    nearest first (ties by lower index). ``exclude`` drops one index (the query itself)."""
    q = np.asarray(z, dtype=np.float64).reshape(-1)
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != q.size:
        raise ValueError(f"points must be (N, {q.size}); got {P.shape}")
    if not np.isfinite(q).all():
        raise ValueError("z contains NaN or infinite values")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    d = np.sqrt(((P - q) ** 2).sum(axis=1))
    d = np.where(np.isfinite(d), d, np.inf)
    if exclude is not None and 0 <= exclude < len(d):
        d[exclude] = np.inf
    order = np.lexsort((np.arange(len(d)), d))
    order = order[np.isfinite(d[order])][:k]
    return order, d[order]
