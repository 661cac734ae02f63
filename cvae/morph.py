"""Straight-line morphs between two latent points."""

from __future__ import annotations

import numpy as np

from .latent import decode_points

MIN_STEPS, MAX_STEPS = 2, 64


def _point(name: str, z) -> np.ndarray:
    p = np.asarray(z, dtype=np.float64).reshape(-1)
    if p.size < 1:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return p


def interpolate(z_start, z_end, steps: int) -> np.ndarray:
    """``steps`` evenly spaced points (steps, d) float32 on the segment, both ends included."""
    a, b = _point("z_start", z_start), _point("z_end", z_end)
    if a.shape != b.shape:
        raise ValueError(f"the endpoints differ in dimension: {a.size} and {b.size}")
    steps = int(steps)
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between {MIN_STEPS} and {MAX_STEPS}, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1.0 - t) * a + t * b).astype(np.float32)


def morph(model, z_start, z_end, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(path (steps, d), decoded digits (steps, 28, 28) in [0, 1]) along the segment."""
    path = interpolate(z_start, z_end, steps)
    return path, decode_points(model, path)
