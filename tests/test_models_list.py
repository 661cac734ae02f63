"""The models the picker offers (ui.models.list_models): the shipped model first, then the runs
folder's checkpoints newest first, labelled by file name; a hidden file (a checkpoint being
written) or another kind of file is not offered; $CVAE_RUNS names the runs folder."""

from __future__ import annotations

import os

import pytest

from cvae.core.shipped import SHIPPED_CHECKPOINT
from ui.models import REPO, SHIPPED_NAME, list_models, model_name, runs_dir


def test_the_shipped_model_then_the_runs_newest_first(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ["old.pt", "new.pt", "mid.pt"]:
        (runs / name).write_bytes(b"x")
        os.utime(runs / name, (1000 + {"old": 0, "mid": 50, "new": 100}[name[:-3]],) * 2)
    for other in (".partial.pt", ".new.pt.abc.tmp", "notes.txt", "model.pt.bak"):
        (runs / other).write_bytes(b"x")
    (runs / "folder.pt").mkdir()  # not a file: not offered
    monkeypatch.setenv("CVAE_RUNS", str(runs))
    models = list_models()
    want = [str(SHIPPED_CHECKPOINT), str(runs / "new.pt"), str(runs / "mid.pt"), str(runs / "old.pt")]
    assert list(models) == want
    assert models[str(SHIPPED_CHECKPOINT)] == "Shipped model"
    assert models[str(runs / "new.pt")] == "Trained here: new.pt"
    assert model_name(str(SHIPPED_CHECKPOINT)) == SHIPPED_NAME and model_name(str(runs / "mid.pt")) == "mid"


def test_no_runs_folder_is_the_shipped_model_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "none"))
    assert list(list_models()) == [str(SHIPPED_CHECKPOINT)]


@pytest.mark.parametrize("value", [None, ""])
def test_without_cvae_runs_the_runs_folder_is_beside_the_app(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CVAE_RUNS", raising=False)
    else:
        monkeypatch.setenv("CVAE_RUNS", value)
    assert runs_dir() == REPO / "runs" and (REPO / "app.py").is_file()
