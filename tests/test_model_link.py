"""A link's model name (?model=NAME, ui.models) names a model in the list, the shipped one or a
run in the runs folder, and nothing else: `../`, absolute paths, URL encodings and folder names
never reach a checkpoint outside the runs folder, even one that is there to be found."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cvae import CVAE, save_checkpoint
from cvae.core.shipped import SHIPPED_CHECKPOINT
from devkit import REPO
from ui.models import list_models, model_from_link, model_name

from streamlit.testing.v1 import AppTest


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    """runs/ with two models, and checkpoints beside it and further out that a link must not reach."""
    torch.manual_seed(0)
    folder = tmp_path / "work" / "runs"
    for name in ("a", "b.c"):
        save_checkpoint(CVAE(), folder / f"{name}.pt")
    save_checkpoint(CVAE(), tmp_path / "work" / "secret.pt")
    save_checkpoint(CVAE(), tmp_path / "outside.pt")
    (folder / "sub").mkdir()
    save_checkpoint(CVAE(), folder / "sub" / "deep.pt")
    monkeypatch.setenv("CVAE_RUNS", str(folder))
    return folder


def test_a_name_picks_the_shipped_model_or_a_run_by_its_file_name(runs):
    models = list_models()
    assert model_from_link("shipped", models) == str(SHIPPED_CHECKPOINT)
    for name in ("a", "a.pt"):
        assert model_from_link(name, models) == str(runs / "a.pt")
    assert model_from_link("b.c", models) == str(runs / "b.c.pt")  # a dot in the name is part of it
    for path in models:  # every model in the list is reached by the name its link uses
        assert model_from_link(model_name(path), models) == path


HOSTILE = [
    "../secret", "../secret.pt", "..%2Fsecret", "%2E%2E%2Fsecret", "..%252Fsecret", "..\\secret", "../../outside",
    "sub/deep", "sub/deep.pt", "sub%2Fdeep", "./a", "a/../a", "a/", "runs/a", "", ".", "..", ".pt", "*", "a*",
    "secret", "outside", "deep", "shipped.pt/../secret", "a\x00", "A",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_outside_the_list_names_nothing(runs, name):
    assert model_from_link(name, list_models()) is None


def test_an_absolute_path_names_nothing_even_of_a_model_in_the_list(runs, tmp_path):
    models = list_models()
    for p in (runs / "a.pt", runs / "a", tmp_path / "outside.pt", tmp_path / "work" / "secret", SHIPPED_CHECKPOINT):
        assert model_from_link(str(p), models) is None, p
        assert model_from_link(p.as_uri() if p.is_absolute() else str(p), models) is None, p


def test_the_page_given_a_name_outside_the_runs_folder_explores_the_shipped_model(runs):
    """Through the picker itself: the link is refused in one sentence, the shipped model is
    explored, and the URL is rewritten to name it; a good name is followed."""
    harness = str(REPO / "tests" / "apps" / "picker_harness.py")
    for name in ("../secret", str(runs.parent / "secret.pt"), "%2E%2E%2Fsecret"):
        at = AppTest.from_file(harness, default_timeout=120)
        at.query_params["model"] = name
        at.run()
        assert not at.exception, at.exception
        captions = [c.value for c in at.caption]
        assert f"picked: {SHIPPED_CHECKPOINT}" in captions, captions
        assert any("that is not here" in c and name in c for c in captions), captions
        assert at.query_params["model"] == "shipped"
    at = AppTest.from_file(harness, default_timeout=120)
    at.query_params["model"] = "a"
    at.run()
    assert f"picked: {runs / 'a.pt'}" in [c.value for c in at.caption]
