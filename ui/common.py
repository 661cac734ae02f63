"""Small pieces every section of the page uses: one clear message per failing part."""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

import cvae

LOG = logging.getLogger("cvae.app")


@contextmanager
def part(what: str):
    """Failures inside show one clear message where the part would be, never a traceback."""
    try:
        yield
    except (cvae.CheckpointError, cvae.DataMissingError, ValueError, OSError) as exc:
        st.error(f"{what}: {exc}")
    except Exception as exc:  # the page must stay usable; the console keeps the details
        LOG.error("%s failed:\n%s", what, traceback.format_exc())
        st.error(f"{what} failed: {type(exc).__name__}: {exc}")


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size): part of every cache key, so a replaced file is read again."""
    st_ = Path(path).stat()
    return st_.st_mtime_ns, st_.st_size
