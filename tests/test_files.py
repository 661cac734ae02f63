"""cvae.core.files: the one writer every file of the package goes through (tests/test_layers.py
holds the package to it). A failure at any point leaves the previous file whole and no
temporary file behind; what it writes reads back."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from cvae.core import files


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_bytes_and_writer_functions_land_whole(tmp_path):
    path = tmp_path / "sub" / "a.bin"  # the folder is made
    assert files.atomic_write(path, b"one") == path and path.read_bytes() == b"one"
    files.atomic_write(path, lambda fh: fh.write(b"two"))
    assert path.read_bytes() == b"two"
    assert oct(path.stat().st_mode & 0o777) == oct(files.FILE_MODE)
    assert os.listdir(path.parent) == ["a.bin"]


@pytest.mark.parametrize("where", ["writer", "fsync", "replace", "mkstemp"])
def test_a_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch, where):
    path = tmp_path / "a.json"
    files.write_json(path, {"v": 1})

    def write(fh):  # half a file, then the disk is full
        fh.write(b'{"v": 2, "half')
        _enospc()

    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", _enospc)
    elif where == "replace":
        monkeypatch.setattr(files.os, "replace", _enospc)
    elif where == "mkstemp":
        monkeypatch.setattr(files.tempfile, "mkstemp", _enospc)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write(path, write if where == "writer" else b'{"v": 2}')
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["a.json"] and files.temp_files(path) == []


def test_npz_and_json_read_back(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = files.write_npz(tmp_path / "x.npz", a=a, b=np.array([1, 2], np.uint8))
    with np.load(p, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["a"], a)
        assert f["b"].dtype == np.uint8
    files.write_json(tmp_path / "c.json", {"loss": 147.74, "list": [1, 2]})
    assert (tmp_path / "c.json").read_text().endswith("\n")
    assert json.loads((tmp_path / "c.json").read_text()) == {"loss": 147.74, "list": [1, 2]}


def test_temp_files_names_what_a_killed_writer_leaves(tmp_path):
    path = tmp_path / "m.pt"
    left = tmp_path / ".m.pt.abc123.tmp"
    left.write_bytes(b"")
    (tmp_path / ".other.pt.x.tmp").write_bytes(b"")
    assert files.temp_files(path) == [left]


def test_a_folder_is_written_whole_and_read_back(tmp_path):
    out = tmp_path / "site"
    want = {"index.html": b"<p>hi</p>", "data.js": b"x = 1;"}
    assert files.write_folder(out, want) == out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == want
    assert sorted(os.listdir(tmp_path)) == ["site"]  # no temporary folder beside it
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        files.write_folder(out, {"other": b"2"})
    assert {p.name for p in out.iterdir()} == set(want)  # refused: untouched
    files.write_folder(out, {"other": b"2"}, replace=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {"other": b"2"}  # swapped, nothing of the old
    assert sorted(os.listdir(tmp_path)) == ["site"]
    for bad in ("", "a/b", "..", "."):
        with pytest.raises(ValueError, match="not a file name"):
            files.write_folder(tmp_path / "x", {bad: b""})
    (tmp_path / "file").write_bytes(b"f")
    with pytest.raises(FileExistsError, match="is a file"):
        files.write_folder(tmp_path / "file", want, replace=True)


@pytest.mark.parametrize("replace", [False, True], ids=["new", "replacing"])
def test_a_folder_that_fails_half_way_leaves_nothing_and_keeps_the_old(tmp_path, monkeypatch, replace):
    out = tmp_path / "site"
    if replace:
        files.write_folder(out, {"old.txt": b"old"})
    calls = {"n": 0}
    real = os.fsync

    def full_after_one(fd):  # the disk fills up after the first file
        calls["n"] += 1
        if calls["n"] > 1:
            _enospc()
        return real(fd)

    monkeypatch.setattr(os, "fsync", full_after_one)
    with pytest.raises(OSError):
        files.write_folder(out, {"a": b"1", "b": b"2", "c": b"3"}, replace=True)
    monkeypatch.setattr(os, "fsync", real)
    assert sorted(os.listdir(tmp_path)) == (["site"] if replace else [])
    if replace:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == {"old.txt": b"old"}


def test_a_folder_whose_last_rename_fails_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "site"
    files.write_folder(out, {"old.txt": b"old"})
    real = os.replace

    def no_new_folder(src, dst):  # the new folder cannot be put in place (the old one was moved away)
        if str(src).endswith(".tmp") and os.path.isdir(src):
            _enospc()
        return real(src, dst)

    monkeypatch.setattr(os, "replace", no_new_folder)
    with pytest.raises(OSError):
        files.write_folder(out, {"new.txt": b"new"}, replace=True)
    monkeypatch.setattr(os, "replace", real)
    assert sorted(os.listdir(tmp_path)) == ["site"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {"old.txt": b"old"}
