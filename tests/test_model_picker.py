"""The model picker (ui.models.model_picker_ui) through AppTest: a run that just finished is picked;
a link is read when a session starts, not after; a picked model whose file went is replaced by
the first in the list; picking writes the URL; with no model at all the page says so; a model
opened from a person's file is labelled so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cvae import CVAE, save_checkpoint
from cvae.core import shipped
from cvae.core.shipped import SHIPPED_CHECKPOINT
from devkit import REPO

from streamlit.testing.v1 import AppTest

HARNESS = str(REPO / "tests" / "apps" / "picker_harness.py")


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    torch.manual_seed(0)
    folder = tmp_path / "runs"
    for k, name in enumerate(("a", "b")):  # b the newer
        save_checkpoint(CVAE(), folder / f"{name}.pt")
        os.utime(folder / f"{name}.pt", (1000 + k, 1000 + k))
    monkeypatch.setenv("CVAE_RUNS", str(folder))
    return folder


def page(link: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=120)
    if link is not None:
        at.query_params["model"] = link
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def picked(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    (cap,) = [c.value for c in at.caption if c.value.startswith("picked: ")]
    return cap.removeprefix("picked: ")


def test_a_link_names_a_run_with_or_without_its_suffix(runs):
    for link in ("b", "b.pt"):
        at = page(link)
        assert picked(at) == str(runs / "b.pt") and at.query_params["model"] == "b"


def test_without_a_link_the_shipped_model_and_the_url_says_so(runs):
    at = page()
    assert picked(at) == str(SHIPPED_CHECKPOINT) and at.query_params["model"] == "shipped"
    box = at.selectbox(key="model_path")
    assert box.label == "Model to explore"
    assert box.options == ["Shipped model", "Trained here: b.pt", "Trained here: a.pt"]


def test_picking_a_model_writes_the_url(runs):
    at = page()
    at.selectbox(key="model_path").set_value(str(runs / "a.pt")).run()
    assert picked(at) == str(runs / "a.pt") and at.query_params["model"] == "a"


def test_a_run_that_just_finished_is_picked(runs):
    at = page("a", _pending_model=str(runs / "b.pt"))
    assert picked(at) == str(runs / "b.pt") and at.query_params["model"] == "b"
    assert "_pending_model" not in at.session_state  # once
    at = page("a", _pending_model=str(runs / "gone.pt"))  # not in the list (deleted meanwhile): the link counts
    assert picked(at) == str(runs / "a.pt")


def test_a_link_to_a_model_not_here_says_so_and_shows_the_shipped_one(runs):
    at = page("nope")
    assert picked(at) == str(SHIPPED_CHECKPOINT) and at.query_params["model"] == "shipped"
    assert [c.value for c in at.caption if "that is not here" in c.value] == [
        "The link names a model, “nope”, that is not here; showing the shipped model instead."]


def test_the_link_is_read_when_the_session_starts_not_after(runs):
    at = page("a")
    assert picked(at) == str(runs / "a.pt")
    at.query_params["model"] = "b"  # the URL changes under a running session (the page writes it)
    at.run()
    assert picked(at) == str(runs / "a.pt") and at.query_params["model"] == "a"


def test_a_picked_model_whose_file_went_gives_way_to_the_first(runs):
    at = page("a")
    assert picked(at) == str(runs / "a.pt")
    (runs / "a.pt").unlink()
    at.run()
    assert picked(at) == str(SHIPPED_CHECKPOINT) and at.query_params["model"] == "shipped"


def test_with_no_model_at_all_the_page_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "none"))
    monkeypatch.setattr(shipped, "SHIPPED_CHECKPOINT", tmp_path / "missing.pt")
    at = page("a")
    assert picked(at) == "None"
    assert [w.value for w in at.warning] == ["No model yet: the shipped one is missing. Train one below."]
    assert [c.value for c in at.caption if "that is not here" in c.value] == [
        "The link names a model, “a”, that is not here; showing the page without a model instead."]
    assert not at.selectbox


def test_a_model_opened_from_a_persons_file_is_labelled_so(runs):
    save_checkpoint(CVAE(), runs / "keras.pt", extra={"imported_from": {"file": "vae.weights.h5",
                                                                       "description": "Keras 3 weights"}})
    at = page("keras")
    assert at.selectbox(key="model_path").options == ["Shipped model", "Opened here: keras.pt", "Trained here: b.pt",
                                                      "Trained here: a.pt"]
    assert picked(at) == str(runs / "keras.pt")
