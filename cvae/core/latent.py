"""The latent maths over a trained model: encode, decode, grids, morphs, bounds, evaluation.

All run under ``torch.inference_mode`` and take/return NumPy arrays where the app
consumes them, so the app never does tensor maths of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .model import CVAE, IMAGE_SIZE

# The tutorial's manifold figure.
GRID_N = 15
GRID_Z1 = (-2.0, 2.0)
GRID_Z2 = (-1.0, 3.0)
MAX_GRID_N = 60


def _as_images(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) if not isinstance(images, torch.Tensor) else images)
    x = x.to(torch.float32)
    if x.ndim == 2:
        x = x.reshape(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    elif x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must be (N,1,28,28), (N,28,28) or (28,28); got {tuple(x.shape)}")
    return x


@torch.inference_mode()
def encode_dataset(model: CVAE, images, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """z_mean and z_log_var, each (N, latent_dim) float32, for images in [0, 1]."""
    x = _as_images(images)
    dev = model.device
    means, log_vars = [], []
    for i in range(0, len(x), batch_size):
        m, lv = model.encode(x[i:i + batch_size].to(dev))
        means.append(m.cpu())
        log_vars.append(lv.cpu())
    if not means:
        empty = np.zeros((0, model.latent_dim), np.float32)
        return empty, empty.copy()
    return torch.cat(means).numpy(), torch.cat(log_vars).numpy()


@torch.inference_mode()
def decode_points(model: CVAE, z, batch_size: int = 2000) -> np.ndarray:
    """Decode latent points (N, latent_dim) -> images (N, 28, 28) float32 in [0, 1]."""
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    if zt.ndim == 1:
        zt = zt.unsqueeze(0)
    if zt.ndim != 2 or zt.shape[1] != model.latent_dim:
        raise ValueError(f"z must have shape (N, {model.latent_dim}); got {tuple(zt.shape)}")
    if not torch.isfinite(zt).all():
        raise ValueError("z contains NaN or infinite values")
    dev = model.device
    out = [model.decode(zt[i:i + batch_size].to(dev)).cpu() for i in range(0, len(zt), batch_size)]
    if not out:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    return torch.cat(out)[:, 0].numpy()


def decode_point(model: CVAE, z1: float, z2: float) -> np.ndarray:
    """One 28x28 digit at (z1, z2) for a 2-D model."""
    return decode_points(model, [[float(z1), float(z2)]])[0]


def grid_points(n: int = GRID_N, z1_range=GRID_Z1, z2_range=GRID_Z2) -> tuple[np.ndarray, np.ndarray]:
    """The grid's z1 values (left to right) and z2 values (top to bottom, i.e. decreasing)."""
    n = int(n)
    if not 1 <= n <= MAX_GRID_N:
        raise ValueError(f"n must be between 1 and {MAX_GRID_N}, got {n}")
    for name, (lo, hi) in (("z1", z1_range), ("z2", z2_range)):
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise ValueError(f"{name} range must be finite with low < high, got ({lo}, {hi})")
    return (np.linspace(z1_range[0], z1_range[1], n, dtype=np.float32),
            np.linspace(z2_range[0], z2_range[1], n, dtype=np.float32)[::-1].copy())


def decode_grid(model: CVAE, n: int = GRID_N, z1_range=GRID_Z1, z2_range=GRID_Z2) -> np.ndarray:
    """The tutorial's manifold: an (n*28, n*28) image in [0, 1]; row 0 is the highest z2."""
    if model.latent_dim != 2:
        raise ValueError("a 2-D grid needs a model with latent_dim 2")
    gx, gy = grid_points(n, z1_range, z2_range)
    zz = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # row-major: row i is gy[i]
    digits = decode_points(model, zz).reshape(n, n, IMAGE_SIZE, IMAGE_SIZE)
    return digits.transpose(0, 2, 1, 3).reshape(n * IMAGE_SIZE, n * IMAGE_SIZE)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 0..255 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


@torch.inference_mode()
def evaluate(model: CVAE, images, batch_size: int = 2000, seed: int = 0) -> dict:
    """The tutorial's val_loss: mean over images of 784*BCE + KL, one z sample per image.

    The noise of z for all images is drawn at once from a generator seeded with ``seed``, so
    the figure is repeatable and the same for every ``batch_size``.
    Returns floats: loss, recon, kl, n.
    """
    x = _as_images(images)
    dev = model.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    eps = torch.randn((len(x), model.latent_dim), generator=gen, device=dev)
    tot = torch.zeros(3, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            parts = model.loss(x[i:i + batch_size].to(dev), eps=eps[i:i + batch_size])
            k = min(batch_size, len(x) - i)
            tot += torch.tensor([parts.loss.item(), parts.recon.item(), parts.kl.item()], dtype=torch.float64) * k
    finally:
        model.train(was_training)
    n = len(x)
    if n == 0:
        raise ValueError("cannot evaluate on zero images")
    loss, recon, kl = (tot / n).tolist()
    return {"loss": loss, "recon": recon, "kl": kl, "n": n}


# A dimension whose z_mean varies less than this over the test digits carries (almost) nothing.
COLLAPSE_SPREAD = 0.1


def spread(z_mean) -> list[float]:
    """The standard deviation of each latent dimension over encoded digits (N, d)."""
    z = np.asarray(z_mean, dtype=np.float64)
    return [float(v) for v in z.std(axis=0)] if len(z) else []


def collapse_message(spreads, threshold: float = COLLAPSE_SPREAD) -> str | None:
    """What to tell a person when a dimension collapsed (its spread under ``threshold``), else None."""
    dims = [(k, v) for k, v in enumerate(spreads) if not v >= threshold]
    if not dims:
        return None
    names = " and ".join(f"z{k + 1} (spread {v:.3f})" for k, v in dims)
    one = len(dims) == 1
    return (f"Posterior collapse in {names}: the encoder sends every digit to about the same value there, so "
            f"{'that dimension carries' if one else 'those dimensions carry'} nothing and the decoder ignores "
            f"{'it' if one else 'them'} (the KL term makes an unused dimension cheapest at the prior). "
            "Train longer, or use the quick recipe (`--recipe quick`).")


def latent_bounds(z_mean: np.ndarray, margin: float = 0.1, step: float = 0.5) -> tuple[float, float, float, float]:
    """Slider ranges (z1 lo, z1 hi, z2 lo, z2 hi) covering every encoding with a margin.

    The margin is a fraction of each axis' span; ends are rounded outwards to ``step``.
    """
    z = np.asarray(z_mean, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) == 0 or not np.isfinite(z[:, :2]).all():
        return (-4.0, 4.0, -4.0, 4.0)
    out = []
    for k in range(2):
        lo, hi = float(z[:, k].min()), float(z[:, k].max())
        pad = max(margin * (hi - lo), step / 2)
        out += [float(np.floor((lo - pad) / step) * step), float(np.ceil((hi + pad) / step) * step)]
    return tuple(out)


def grid_pixel(z1: float, z2: float, n: int, z1_range, z2_range, cell: int = 28) -> tuple[float, float] | None:
    """Where (z1, z2) falls on the manifold image, in its pixels; None when outside the ranges."""
    (a, b), (c, d) = z1_range, z2_range
    if not (a <= z1 <= b and c <= z2 <= d):
        return None
    if n == 1:
        return cell / 2, cell / 2
    fx = (z1 - a) / (b - a) * (n - 1)  # 0 at the first column centre
    fy = (d - z2) / (d - c) * (n - 1)  # 0 at the top row centre (highest z2)
    return (fx + 0.5) * cell, (fy + 0.5) * cell


def manifold_map(n: int, z1_range: Sequence[float], z2_range: Sequence[float], cell: int = 28) -> dict:
    """The affine map from a latent point to the manifold image's pixels, taken from
    :func:`grid_pixel` (the one definition), for the browser's ring."""
    (a, b), (c, d) = z1_range, z2_range
    x0, y0 = grid_pixel(a, c, n, z1_range, z2_range, cell)
    x1, y1 = grid_pixel(b, d, n, z1_range, z2_range, cell)
    sx = (x1 - x0) / (b - a)
    sy = (y1 - y0) / (d - c)
    return {"x": [sx, x0 - sx * a], "y": [sy, y0 - sy * c], "inside": [a, b, c, d], "cell": cell, "side": n * cell}



# Straight-line morphs between two latent points

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
