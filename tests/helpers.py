"""Paths shared by the tests (no fixtures here; see conftest.py for those)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# CI clones the repo with ../shared beside it; $CVAE_DATA overrides.
DATA_DIR = Path(os.environ.get("CVAE_DATA") or REPO.parent / "shared" / "mnist")


def has_data() -> bool:
    return (DATA_DIR / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
