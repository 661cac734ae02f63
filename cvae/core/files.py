"""The one way this package writes a file: atomically.

Every checkpoint, .npz, model card, GIF and export goes through :func:`atomic_write`: the
bytes go to a temporary file in the target's folder, are flushed to disk, and the file is
renamed over the target. A crash or a full disk mid-write leaves the old file whole and no
temporary file behind. A folder of files (a static site) is written the same way by
:func:`write_folder`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Files are shared like any other file (mkstemp makes 0600 ones).
FILE_MODE = 0o644


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object] | bytes) -> Path:
    """Write ``path`` atomically; ``write`` is the bytes, or a function that writes to a
    binary file object. Returns the path. OSError (folder not writable, disk full) leaves
    the previous file untouched."""
    path = Path(path)
    folder = path.parent  # "." for a bare file name
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            if isinstance(write, (bytes, bytearray, memoryview)):
                fh.write(write)
            else:
                write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_folder(folder)
    return path


def write_folder(path: str | os.PathLike, files: dict[str, bytes], *, replace: bool = False) -> Path:
    """Write ``files`` ({name: bytes}, names without folders) as the folder ``path``, at once:
    they are written into a temporary folder beside it, flushed, and the folder is renamed into
    place. An existing folder that is not empty is refused (FileExistsError) unless ``replace``;
    then it is swapped out only after the new one is whole. On any error nothing is left."""
    path = Path(path)
    for name in files:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not replace:
        raise FileExistsError(f"{path} exists and is not empty")
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    old = None
    try:
        os.chmod(tmp, 0o755)
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp / name, FILE_MODE)
        _sync_folder(tmp)
        if path.is_dir() and any(path.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)  # an empty folder at ``path`` is replaced too
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old / path.name, path)  # put the old folder back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _sync_folder(parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_npz(path: str | os.PathLike, **arrays) -> Path:
    """Compressed .npz of ``arrays``, atomically."""
    import numpy as np

    return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as indented JSON with a final newline, atomically."""
    return atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def temp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files :func:`atomic_write` may have left for ``path`` (a process killed
    mid-write): ``.NAME.*.tmp`` in its folder."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))
