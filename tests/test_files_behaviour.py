"""cvae.core.files, what a caller relies on beyond a whole file: folders made however deep,
the file being written is the hidden temporary that temp_files() finds (so a job can clean up
after a killed writer), a bare file name lands in the working folder, and a folder being
written is hidden beside its target until it is whole."""

from __future__ import annotations

import os

import pytest

from cvae.core import files


def test_the_folders_are_made_however_deep(tmp_path):
    path = tmp_path / "a" / "b" / "c" / "m.bin"
    files.atomic_write(path, b"x")
    assert path.read_bytes() == b"x"
    out = files.write_folder(tmp_path / "d" / "e" / "site", {"index.html": b"<p>"})
    assert (out / "index.html").read_bytes() == b"<p>"


def test_the_file_being_written_is_the_temporary_that_temp_files_names(tmp_path):
    path = tmp_path / "m.pt"
    seen = []

    def write(fh):
        fh.write(b"half")
        fh.flush()
        left = files.temp_files(path)
        seen.append(left)
        assert len(left) == 1 and left[0].parent == tmp_path and left[0].name.startswith(".m.pt.")
        assert os.path.samestat(os.fstat(fh.fileno()), os.stat(left[0]))  # this very file
        assert not path.exists()
        fh.write(b" and the rest")

    files.atomic_write(path, write)
    assert len(seen) == 1 and path.read_bytes() == b"half and the rest" and files.temp_files(path) == []


def test_a_bare_file_name_is_written_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files.write_json("card.json", {"a": 1})
    assert (tmp_path / "card.json").read_text() == '{\n  "a": 1\n}\n'
    files.write_folder("site", {"a.txt": b"1"})
    assert (tmp_path / "site" / "a.txt").read_bytes() == b"1"
    assert sorted(os.listdir(tmp_path)) == ["card.json", "site"]


def test_a_folder_being_written_is_hidden_beside_its_target(tmp_path, monkeypatch):
    """While its files are written, nothing at the target and only a hidden folder beside it
    (a static server's listing, runs/*.pt, a glob of the parent do not see a half site)."""
    during = []
    real = os.fsync

    def look(fd):
        during.append(sorted(os.listdir(tmp_path)))
        return real(fd)

    monkeypatch.setattr(os, "fsync", look)
    files.write_folder(tmp_path / "site", {"a": b"1", "b": b"2"})
    monkeypatch.setattr(os, "fsync", real)
    assert during and all(len(d) == 1 and d[0].startswith(".site.") for d in during[:2]), during


def test_a_name_that_is_a_path_on_any_system_is_refused(tmp_path):
    for bad in ("a\\b", "..\\x", "sub/x"):
        with pytest.raises(ValueError, match="not a file name"):
            files.write_folder(tmp_path / "site", {"ok": b"1", bad: b"2"})
    assert not (tmp_path / "site").exists() and os.listdir(tmp_path) == []


def test_the_old_folder_waits_hidden_beside_the_target_while_the_new_one_moves_in(tmp_path, monkeypatch):
    """Replacing a folder: at the moment the new one is renamed into place, the old one is a
    hidden folder beside it (the same disk: a rename, never a copy), and afterwards it is gone."""
    out = files.write_folder(tmp_path / "site", {"old.txt": b"old"})
    real = os.replace
    seen = []

    def look(src, dst):
        if str(dst) == str(out):
            names = sorted(os.listdir(tmp_path))
            seen.append((names, [n for n in names if (tmp_path / n / "site" / "old.txt").is_file()]))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", look)
    files.write_folder(out, {"new.txt": b"new"}, replace=True)
    monkeypatch.setattr(os, "replace", real)
    ((beside, olds),) = seen
    assert len(beside) == 2 and all(n.startswith(".site.") for n in beside), beside
    assert len(olds) == 1, beside  # the old site, moved whole into a hidden folder beside the target
    assert sorted(os.listdir(tmp_path)) == ["site"] and os.listdir(out) == ["new.txt"]


def test_an_old_copy_that_cannot_be_deleted_does_not_fail_the_write(tmp_path, monkeypatch):
    out = files.write_folder(tmp_path / "site", {"old.txt": b"old"})
    real = os.unlink

    def stuck(name, *args, **kwargs):
        if str(name).endswith("old.txt"):
            raise PermissionError(13, "Permission denied", str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", stuck)
    assert files.write_folder(out, {"new.txt": b"new"}, replace=True) == out
    monkeypatch.setattr(os, "unlink", real)
    assert os.listdir(out) == ["new.txt"]
