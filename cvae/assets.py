"""The shipped model and the small derived files the app reads offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .latent import encode_dataset

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
SHIPPED_CHECKPOINT = ASSETS_DIR / "cvae_mnist.pt"
SHIPPED_ENCODINGS = ASSETS_DIR / "test_encodings.npz"
SHIPPED_RECORD = ASSETS_DIR / "model_card.json"


def write_encodings(model, images, labels, path) -> Path:
    """z_mean, z_log_var (float32) and label (uint8) of each image, atomically to .npz."""
    z_mean, z_log_var = encode_dataset(model, images)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, z_mean=z_mean.astype(np.float32), z_log_var=z_log_var.astype(np.float32),
                                label=np.asarray(labels, dtype=np.uint8))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_encodings(path=SHIPPED_ENCODINGS) -> dict[str, np.ndarray]:
    """{'z_mean': (N,2) float32, 'z_log_var': (N,2) float32, 'label': (N,) int64}."""
    with np.load(path, allow_pickle=False) as f:
        return {"z_mean": f["z_mean"].astype(np.float32), "z_log_var": f["z_log_var"].astype(np.float32),
                "label": f["label"].astype(np.int64)}
