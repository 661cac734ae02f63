"""The browser's forward pass in NumPy, from the payload alone (test-only).

It loops over ``payload["layers"]`` exactly as ``cvae/web/decoder.js`` does (dense with a
channel-major reshape; transposed convolutions as a scatter-add cropped by the declared
"same" crop), so the payload's layout is checked without a browser.
"""

from __future__ import annotations

import numpy as np

from cvae.core.payloads import payload_tensors

ACT = {"relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "linear": lambda a: a}


def _conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, crop: int, out: int) -> np.ndarray:
    """x (C, H, W), w (C, O, k, k): the full (H-1)*s+k output, cropped to ``out`` from ``crop``."""
    c_in, h, _ = x.shape
    k = w.shape[2]
    full = (h - 1) * stride + k
    y = np.zeros((w.shape[1], full, full), np.float64)
    for kh in range(k):
        for kw in range(k):
            contrib = np.einsum("chw,co->ohw", x, w[:, :, kh, kw].astype(np.float64))
            y[:, kh:kh + stride * (h - 1) + 1:stride, kw:kw + stride * (h - 1) + 1:stride] += contrib
    return y[:, crop:crop + out, crop:crop + out] + b.astype(np.float64)[:, None, None]


def numpy_decode(payload: dict, z) -> np.ndarray:
    """Latent points (N, latent_dim) -> (N, size, size) float32 in [0, 1]."""
    t = payload_tensors(payload)
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    size = payload["image_size"]
    out = np.empty((len(z), size, size), np.float32)
    for n, h in enumerate(z):
        for L in payload["layers"]:
            w, b = t[f"{L['name']}.weight"], t[f"{L['name']}.bias"]
            if L["kind"] == "dense":
                h = w.astype(np.float64) @ h + b
                if "reshape" in L:
                    h = h.reshape(L["reshape"])
            else:
                h = _conv_transpose(h, w, b, L["stride"], L["crop"][0], L["size_out"])
            h = ACT[L["activation"]](h)
        out[n] = h[0]
    return out
