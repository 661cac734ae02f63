"""The test set's encodings: z_mean, z_log_var and the label of each test digit.

Written to and read from .npz (the shipped model's live in ``assets/``: see
:mod:`cvae.core.shipped`) and exported as CSV.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
import numpy as np

from .files import write_npz
from .latent import encode_dataset


def write_encodings(model, images, labels, path) -> Path:
    """z_mean, z_log_var (float32) and label (uint8) of each image, atomically to .npz."""
    z_mean, z_log_var = encode_dataset(model, images)
    return write_npz(path, z_mean=z_mean.astype(np.float32), z_log_var=z_log_var.astype(np.float32),
                        label=np.asarray(labels, dtype=np.uint8))


def read_encodings(path) -> dict[str, np.ndarray]:
    """{'z_mean': (N,2) float32, 'z_log_var': (N,2) float32, 'label': (N,) int64}."""
    with np.load(path, allow_pickle=False) as f:
        return {"z_mean": f["z_mean"].astype(np.float32), "z_log_var": f["z_log_var"].astype(np.float32),
                "label": f["label"].astype(np.int64)}


def encodings_csv(z_mean, z_log_var, labels=None, indices=None) -> bytes:
    """UTF-8 CSV, one row per test digit: index, label, z1..zd (z_mean), then
    z1_log_var..zd_log_var and z1_std..zd_std. ``labels`` may be None (empty column)."""
    zm = np.asarray(z_mean, dtype=np.float64)
    lv = np.asarray(z_log_var, dtype=np.float64)
    if zm.ndim != 2 or zm.shape != lv.shape:
        raise ValueError(f"z_mean and z_log_var must be (N, d) of one shape; got {zm.shape} and {lv.shape}")
    n, d = zm.shape
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} encodings")
    idx = np.arange(n) if indices is None else np.asarray(indices)
    if len(idx) != n:
        raise ValueError(f"{len(idx)} indices for {n} encodings")
    std = np.exp(0.5 * lv)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "label"] + [f"z{j + 1}" for j in range(d)] + [f"z{j + 1}_log_var" for j in range(d)]
               + [f"z{j + 1}_std" for j in range(d)])
    for i in range(n):
        lab = "" if labels is None else int(labels[i])
        w.writerow([int(idx[i]), lab] + [f"{v:.6g}" for v in zm[i]] + [f"{v:.6g}" for v in lv[i]]
                   + [f"{v:.6g}" for v in std[i]])
    return buf.getvalue().encode("utf-8")
