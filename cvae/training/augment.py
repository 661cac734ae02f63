"""Random small rotations and zooms of training images (data augmentation).

A rotated or zoomed training digit is treated as one more training image: the encoder sees
it and the loss scores its reconstruction. Made from the 60,000 training images only; the
test set is never augmented.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, generator: torch.Generator, p: float, degrees: float,
                  zoom: float) -> torch.Tensor:
    """Each image of ``x`` (B,1,H,W), with probability ``p``, turned by an angle uniform in
    [-degrees, degrees] and scaled by a factor uniform in [1 - zoom, 1 + zoom] about its centre
    (bilinear, zeros outside); the others come back unchanged. Returned contiguous (NCHW).

    The draws come from ``generator`` (on ``x``'s device), so seeded runs repeat.
    """
    if not (0 <= p <= 1 and math.isfinite(degrees) and 0 <= degrees <= 180 and 0 <= zoom < 1):
        raise ValueError(f"bad augmentation: p={p}, degrees={degrees}, zoom={zoom}")
    b = len(x)
    if p == 0 or b == 0:
        return x
    dev, dt = x.device, x.dtype
    angle = (torch.rand(b, generator=generator, device=dev, dtype=dt) * 2 - 1) * math.radians(degrees)
    scale = 1 + (torch.rand(b, generator=generator, device=dev, dtype=dt) * 2 - 1) * zoom
    keep = torch.rand(b, generator=generator, device=dev, dtype=dt) >= p
    angle = torch.where(keep, torch.zeros_like(angle), angle)
    scale = torch.where(keep, torch.ones_like(scale), scale)
    # affine_grid maps output coordinates to input ones: the inverse of "turn by angle, scale up".
    c, s = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(c)
    theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
    plain = x.contiguous()
    grid = F.affine_grid(theta, list(plain.shape), align_corners=False)
    moved = F.grid_sample(plain, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(keep.view(b, 1, 1, 1), plain, moved)
