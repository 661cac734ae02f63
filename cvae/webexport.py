"""The decoder as a compact, JSON-safe payload for running it in a web browser.

The browser-side decoder (``ui/pad.js``) receives the decoder's weights once,
as float32 little-endian bytes in one base64 string plus each tensor's shape and
offset, and keeps them in memory under ``hash``. The hash is a content hash of the
architecture and the weights, so a retrained model gets a new hash and the browser
fetches it again, while reruns with the same model send only the hash.

:func:`numpy_decode` runs the same forward pass from the payload alone, in the
order the JavaScript does. It is the executable spec of the payload layout; tests
hold it (and the browser) to the PyTorch decoder.

Pure functions: no streamlit, nothing done at import time.
"""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import torch

from .model import CVAE, IMAGE_SIZE

FORMAT = "cvae-decoder/1"
POINTS_FORMAT = "cvae-points/1"
# Order and meaning are fixed by FORMAT; ui/pad.js reads exactly these names.
TENSORS = ("dense.weight", "dense.bias", "deconv1.weight", "deconv1.bias",
           "deconv2.weight", "deconv2.bias", "deconv3.weight", "deconv3.bias")
_LE_F32 = np.dtype("<f4")


def _digest(header: dict, blob: bytes) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(blob)
    return h.hexdigest()[:16]


def decoder_payload(model: CVAE) -> dict:
    """The decoder's weights and architecture as a JSON-serialisable dict.

    Keys: ``format``, ``latent_dim``, ``filters`` ([f1, f2]), ``side`` (7: the
    dense layer's output is viewed as (f2, side, side), channel-major like
    PyTorch), ``image_size`` (28), ``tensors`` ({name: {"shape", "offset"}}, offsets
    in float32 elements, PyTorch layouts: Linear (out, in), ConvTranspose2d
    (in, out, kh, kw)), ``dtype`` ("float32-le"), ``b64`` (all tensors concatenated
    in :data:`TENSORS` order) and ``hash`` (16 hex digits of SHA-256 over the
    header and the bytes).
    """
    dec = model.decoder
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in dec.state_dict().items()}
    missing = [n for n in TENSORS if n not in state]
    if missing:
        raise ValueError(f"decoder has no tensors {missing}; cannot export it for the browser")
    arrays, tensors, offset = [], {}, 0
    for name in TENSORS:
        a = state[name].numpy().astype(_LE_F32, copy=False).ravel()
        tensors[name] = {"shape": list(state[name].shape), "offset": offset}
        arrays.append(a)
        offset += a.size
    blob = np.concatenate(arrays).astype(_LE_F32, copy=False).tobytes()
    cfg = model.config
    header = {
        "format": FORMAT,
        "latent_dim": int(cfg.latent_dim),
        "filters": [int(f) for f in cfg.filters],
        "side": int(dec.side),
        "image_size": IMAGE_SIZE,
        "tensors": tensors,
        "dtype": "float32-le",
        "n_floats": offset,
    }
    return {**header, "b64": base64.b64encode(blob).decode("ascii"), "hash": _digest(header, blob)}


def payload_tensors(payload: dict) -> dict[str, np.ndarray]:
    """Decode a payload's weights back to float32 arrays with their shapes; checks it."""
    if payload.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} payload (format={payload.get('format')!r})")
    blob = base64.b64decode(payload["b64"], validate=True)
    flat = np.frombuffer(blob, dtype=_LE_F32)
    if flat.size != payload["n_floats"]:
        raise ValueError(f"payload holds {flat.size} floats, header says {payload['n_floats']}")
    header = {k: v for k, v in payload.items() if k not in ("b64", "hash")}
    if _digest(header, blob) != payload["hash"]:
        raise ValueError("payload hash does not match its contents")
    out = {}
    for name in TENSORS:
        t = payload["tensors"][name]
        n = int(np.prod(t["shape"]))
        out[name] = flat[t["offset"]:t["offset"] + n].reshape(t["shape"]).astype(np.float32)
    return out


def _deconv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, out_hw: int) -> np.ndarray:
    """ConvTranspose2d as a scatter-add, x (C,H,W), w (C,O,k,k); output cropped to out_hw."""
    c_in, h, wd = x.shape
    k = w.shape[2]
    full = (h - 1) * stride + k
    y = np.zeros((w.shape[1], full, full), np.float64)
    for kh in range(k):
        for kw in range(k):
            # y[o, i*s+kh, j*s+kw] += sum_c x[c,i,j] * w[c,o,kh,kw]
            contrib = np.einsum("chw,co->ohw", x, w[:, :, kh, kw].astype(np.float64))
            y[:, kh:kh + stride * (h - 1) + 1:stride, kw:kw + stride * (wd - 1) + 1:stride] += contrib
    y = y[:, pad:pad + out_hw, pad:pad + out_hw]
    return y + b.astype(np.float64)[:, None, None]


def numpy_decode(payload: dict, z) -> np.ndarray:
    """Decode latent points (N, latent_dim) -> (N, 28, 28) float32 in [0, 1] from the payload alone."""
    t = payload_tensors(payload)
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    if z.shape[1] != payload["latent_dim"]:
        raise ValueError(f"z must have shape (N, {payload['latent_dim']}); got {z.shape}")
    f2, side, size = payload["filters"][1], payload["side"], payload["image_size"]
    out = np.empty((len(z), size, size), np.float32)
    for n, zn in enumerate(z):
        h = np.maximum(t["dense.weight"].astype(np.float64) @ zn + t["dense.bias"], 0).reshape(f2, side, side)
        h = np.maximum(_deconv(h, t["deconv1.weight"], t["deconv1.bias"], 2, 0, 2 * side), 0)
        h = np.maximum(_deconv(h, t["deconv2.weight"], t["deconv2.bias"], 2, 0, 4 * side), 0)
        logits = _deconv(h, t["deconv3.weight"], t["deconv3.bias"], 1, 1, size)[0]
        out[n] = 1.0 / (1.0 + np.exp(-logits))
    return out


def points_payload(z, labels, z1_range, z2_range) -> dict:
    """Encoded points inside the pad's ranges, quantised for a faint map in the browser.

    ``b64`` holds ``n`` uint16 little-endian (x, y) pairs (x: 0 = z1 low, 65535 = z1
    high; y: 0 = z2 high, i.e. top of the pad) followed by ``n`` uint8 labels (255 =
    no label). Quantisation error is range/65535, far below a pixel. Points outside
    the ranges or not finite are left out.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2); got {z.shape}")
    lab = np.full(len(z), 255, np.uint8) if labels is None else np.asarray(labels)
    if lab.shape != (len(z),):
        raise ValueError(f"labels must have shape ({len(z)},); got {lab.shape}")
    (x0, x1), (y0, y1) = (map(float, z1_range)), (map(float, z2_range))
    if not (np.isfinite([x0, x1, y0, y1]).all() and x0 < x1 and y0 < y1):
        raise ValueError(f"ranges must be finite with low < high; got {z1_range}, {z2_range}")
    keep = np.isfinite(z).all(1) & (z[:, 0] >= x0) & (z[:, 0] <= x1) & (z[:, 1] >= y0) & (z[:, 1] <= y1)
    z, lab = z[keep], lab[keep]
    lab = np.where((lab >= 0) & (lab < 255), lab, 255).astype(np.uint8)
    q = np.empty((len(z), 2), "<u2")
    q[:, 0] = np.rint((z[:, 0] - x0) / (x1 - x0) * 65535)
    q[:, 1] = np.rint((y1 - z[:, 1]) / (y1 - y0) * 65535)
    blob = q.tobytes() + lab.tobytes()
    header = {"format": POINTS_FORMAT, "n": int(len(z)), "z1_range": [x0, x1], "z2_range": [y0, y1]}
    return {**header, "b64": base64.b64encode(blob).decode("ascii"), "hash": _digest(header, blob)}
