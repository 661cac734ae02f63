"""The decoder and the encodings as compact, JSON-safe payloads for the web browser.

The browser-side decoder (``cvae/web/decoder.js``) receives the decoder once: its layer list
(:func:`cvae.model.decoder_spec`, the one declaration of the architecture) and its
weights as float32 little-endian bytes in one base64 string, each tensor with its shape
and offset. It keeps them under ``hash``, a content hash of the header and the bytes, so
a retrained model gets a new hash and reruns with the same model send only the hash.
The browser's forward pass loops over ``layers``; nothing about the architecture is
written in JavaScript.

Pure functions: no streamlit, nothing done at import time.
"""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import torch

from .model import CVAE, IMAGE_SIZE, decoder_spec

FORMAT = "cvae-decoder/2"
POINTS_FORMAT = "cvae-points/1"
_LE_F32 = np.dtype("<f4")


def digest(header: dict, blob: bytes = b"") -> str:
    """16 hex digits of SHA-256 over a JSON header and a blob: the payloads' content hash."""
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(blob)
    return h.hexdigest()[:16]


def tensor_names(layers: list[dict]) -> list[str]:
    """The payload's tensors in order: each layer's weight, then its bias."""
    return [f"{layer['name']}.{part}" for layer in layers for part in ("weight", "bias")]


def decoder_payload(model: CVAE) -> dict:
    """The decoder's layer list and weights as a JSON-serialisable dict.

    Keys: ``format``, ``latent_dim``, ``image_size``, ``layers`` (``decoder_spec``: kind,
    in/out, kernel, stride, crop, reshape, activation per layer), ``tensors`` ({name:
    {"shape", "offset"}}, offsets in float32 elements, PyTorch layouts: Linear (out, in),
    ConvTranspose2d (in, out, kh, kw)), ``dtype`` ("float32-le"), ``n_floats``, ``b64``
    (all tensors concatenated in :func:`tensor_names` order) and ``hash``.
    """
    layers = decoder_spec(model.config)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.decoder.state_dict().items()}
    names = tensor_names(layers)
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(f"decoder has no tensors {missing}; cannot export it for the browser")
    arrays, tensors, offset = [], {}, 0
    for name in names:
        a = state[name].numpy().astype(_LE_F32, copy=False).ravel()
        tensors[name] = {"shape": list(state[name].shape), "offset": offset}
        arrays.append(a)
        offset += a.size
    blob = np.concatenate(arrays).astype(_LE_F32, copy=False).tobytes()
    header = {
        "format": FORMAT,
        "latent_dim": int(model.config.latent_dim),
        "image_size": IMAGE_SIZE,
        "layers": layers,
        "tensors": tensors,
        "dtype": "float32-le",
        "n_floats": offset,
    }
    return {**header, "b64": base64.b64encode(blob).decode("ascii"), "hash": digest(header, blob)}


def payload_tensors(payload: dict) -> dict[str, np.ndarray]:
    """Decode a payload's weights back to float32 arrays with their shapes; checks it."""
    if payload.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} payload (format={payload.get('format')!r})")
    blob = base64.b64decode(payload["b64"], validate=True)
    flat = np.frombuffer(blob, dtype=_LE_F32)
    if flat.size != payload["n_floats"]:
        raise ValueError(f"payload holds {flat.size} floats, header says {payload['n_floats']}")
    header = {k: v for k, v in payload.items() if k not in ("b64", "hash")}
    if digest(header, blob) != payload["hash"]:
        raise ValueError("payload hash does not match its contents")
    out = {}
    for name in tensor_names(payload["layers"]):
        t = payload["tensors"][name]
        n = int(np.prod(t["shape"]))
        out[name] = flat[t["offset"]:t["offset"] + n].reshape(t["shape"]).astype(np.float32)
    return out


def points_payload(z, labels, z1_range, z2_range) -> dict:
    """Encoded points inside the ranges, quantised for a faint map in the browser.

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
    return {**header, "b64": base64.b64encode(blob).decode("ascii"), "hash": digest(header, blob)}
