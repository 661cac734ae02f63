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


def savez_atomic(path, **arrays) -> Path:
    """``np.savez_compressed`` to a temporary file beside ``path``, then renamed over it: a
    crash mid-write leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_encodings(model, images, labels, path) -> Path:
    """z_mean, z_log_var (float32) and label (uint8) of each image, atomically to .npz."""
    z_mean, z_log_var = encode_dataset(model, images)
    return savez_atomic(path, z_mean=z_mean.astype(np.float32), z_log_var=z_log_var.astype(np.float32),
                        label=np.asarray(labels, dtype=np.uint8))


def read_encodings(path=SHIPPED_ENCODINGS) -> dict[str, np.ndarray]:
    """{'z_mean': (N,2) float32, 'z_log_var': (N,2) float32, 'label': (N,) int64}."""
    with np.load(path, allow_pickle=False) as f:
        return {"z_mean": f["z_mean"].astype(np.float32), "z_log_var": f["z_log_var"].astype(np.float32),
                "label": f["label"].astype(np.int64)}


def encodings_for(checkpoint, data_dir, load_model) -> dict:
    """The test set's encodings for ``checkpoint``, with ``source`` saying where they came from.

    The shipped model's come from :data:`SHIPPED_ENCODINGS` (offline), unless that file is
    older than the checkpoint and MNIST is there to encode it again; any other model's are
    computed from the MNIST test set (``load_model()`` gives the model only then).
    """
    from .data import has_mnist, load_mnist

    ckpt, enc_file = Path(checkpoint), Path(SHIPPED_ENCODINGS)
    if ckpt == Path(SHIPPED_CHECKPOINT) and enc_file.is_file():
        stale = enc_file.stat().st_mtime_ns < ckpt.stat().st_mtime_ns
        if not (stale and has_mnist(data_dir)):
            return {**read_encodings(enc_file), "source": f"assets/{enc_file.name}"}
    images, labels = load_mnist("test", data_dir, download=False)
    z_mean, z_log_var = encode_dataset(load_model(), images)
    return {"z_mean": z_mean, "z_log_var": z_log_var, "label": labels.numpy(), "source": "MNIST test set"}


def machine_description() -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads{gpu}"


def build_assets(checkpoint, data_dir, assets_dir=ASSETS_DIR, train_command: str | None = None,
                 download: bool = True) -> dict:
    """Copy a checkpoint into assets/ with its test encodings and a model card (JSON)."""
    import json
    import shutil

    from .checkpoint import load_checkpoint, versions
    from .data import load_mnist
    from .latent import evaluate
    from .model import count_parameters

    model = load_checkpoint(checkpoint)
    test_x, test_y = load_mnist("test", data_dir, download=download)
    res = evaluate(model, test_x, seed=0)
    assets_dir = Path(assets_dir)
    assets_dir.mkdir(parents=True, exist_ok=True)
    ck_dst = assets_dir / SHIPPED_CHECKPOINT.name
    if Path(checkpoint).resolve() != ck_dst.resolve():
        tmp = ck_dst.with_name(f".{ck_dst.name}.tmp")
        shutil.copyfile(checkpoint, tmp)
        os.replace(tmp, ck_dst)
    write_encodings(model, test_x, test_y, assets_dir / SHIPPED_ENCODINGS.name)
    meta = model.meta
    hist = meta["history"]
    extra = meta["extra"]
    card = {
        "checkpoint": ck_dst.name,
        "encodings": SHIPPED_ENCODINGS.name,
        "architecture": "Chollet's Keras CVAE, PyTorch port",
        "model_config": model.config.to_dict(),
        "parameters": count_parameters(model),
        "command": train_command or extra.get("command"),
        "train_config": meta["train_config"],
        "seed": meta["train_config"].get("seed"),
        "epochs_run": len(hist),
        "best_epoch": extra.get("best_epoch"),
        "wall_seconds": round(extra.get("wall_seconds") or sum(h.get("seconds", 0) for h in hist), 1),
        "machine": extra.get("machine") or machine_description(),
        "trained_with": meta["versions"],
        "evaluated_with": versions(),
        "test_loss": res["loss"],
        "recon": res["recon"],
        "kl": res["kl"],
        "evaluation": "mean over the 10,000 MNIST test digits of 784*BCE + KL, one z sample per image, seed 0",
        "final_epoch": hist[-1] if hist else None,
        "created": meta["created"],
    }
    if extra.get("init_from"):
        # Fine-tuned from an earlier run (train --init): record that run too.
        card["init_from"] = extra["init_from"]
    tmp = assets_dir / f".{SHIPPED_RECORD.name}.tmp"
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, assets_dir / SHIPPED_RECORD.name)
    return card
