"""MNIST through torchvision, held in memory as float tensors in [0, 1]."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataMissingError(RuntimeError):
    """MNIST is not on disk and could not be downloaded. The message is for people."""


def default_data_dir() -> Path:
    """Per-user cache directory ($XDG_CACHE_HOME or ~/.cache)/cvae-latent-explorer/mnist."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cvae-latent-explorer" / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $CVAE_DATA, else the per-user cache directory."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("CVAE_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def has_mnist(data_dir: str | os.PathLike | None = None) -> bool:
    raw = resolve_data_dir(data_dir) / "MNIST" / "raw"
    return all((raw / f).is_file() for f in RAW_FILES)


def missing_message(root: Path, reason: str = "") -> str:
    raw = root / "MNIST" / "raw"
    why = f" ({reason})" if reason else ""
    return (
        f"MNIST was not found in {raw} and could not be downloaded{why}. "
        f"It needs these four files there: {', '.join(RAW_FILES)} "
        "(uncompressed, as torchvision.datasets.MNIST stores them). "
        "Either connect to the internet and run again (it downloads them once, about 11 MB), "
        "copy the four files into that folder, or point --data-dir (or the CVAE_DATA "
        "environment variable) at a folder that holds MNIST/raw/."
    )


@functools.lru_cache(maxsize=4)
def _load_split(root: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST  # torchvision is slow to import; only here

    root_path = Path(root)
    try:
        ds = MNIST(root=root, train=train, download=False)
    except RuntimeError as first:
        if not download:
            raise DataMissingError(missing_message(root_path, "downloading is turned off")) from first
        try:
            root_path.mkdir(parents=True, exist_ok=True)
            ds = MNIST(root=root, train=train, download=True)
        except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
            raise DataMissingError(missing_message(root_path, f"{type(exc).__name__}: {exc}")) from exc
    images = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)  # pixel/255, not binarised
    labels = ds.targets.to(torch.int64)
    return images, labels


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N,1,28,28) float32 in [0,1] and labels (N,) int64 for split 'train' or 'test'.

    Loaded once per process (cached); ``limit`` keeps the first N images.
    Raises DataMissingError with a paragraph for people when the files are missing.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    root = resolve_data_dir(data_dir)
    images, labels = _load_split(str(root.resolve()), split == "train", download)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def fingerprint(images: torch.Tensor) -> str:
    """16 hex digits of SHA-256 over the images' float32 bytes: which data a run trained on
    (stored in its checkpoint), comparable with the fingerprint of a split."""
    x = images.detach().to("cpu", torch.float32).contiguous()
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]
