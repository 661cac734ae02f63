"""The sidebar's "Open a model" through streamlit.testing.v1.AppTest, and the names it gives.

The files are the ones Keras wrote (tests/golden/keras_tutorial/, see tests/test_importer.py);
the runs folder is a temporary one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from cvae.core import shipped
from cvae.core.checkpoint import load_checkpoint
from cvae.core.importer import MAX_IMPORT_MB
from devkit import REPO, data_dir, needs_data
from test_importer import UNTRUSTED, untrusted_file
from ui.explore import FILM_KEY
from ui.models import MODEL_PARAM
from ui.open_model import NAME_KEY, UPLOAD_KEY, run_path, safe_name

APP = str(REPO / "app.py")
GOLDEN = REPO / "tests" / "golden" / "keras_tutorial"
TIMEOUT = 300

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_CHECKPOINT.is_file(), reason="no shipped model in assets/")


@pytest.fixture
def runs(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("CVAE_DATA", str(data_dir()))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def upload(at: AppTest, name: str, data: bytes, model_name: str = "") -> AppTest:
    at.sidebar.file_uploader(key=UPLOAD_KEY).upload(name, data)
    at.run()
    if model_name:
        at.sidebar.text_input(key=NAME_KEY).input(model_name)
    return at.sidebar.button(key="open_model_go").click().run()


def errors(at) -> list[str]:
    return [e.value for e in at.error]


@needs_data
def test_a_keras_file_opens_and_is_explored(runs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not errors(at)
    uploader = at.sidebar.file_uploader(key=UPLOAD_KEY)
    assert uploader.proto.max_upload_size_mb == MAX_IMPORT_MB
    assert any(f"Up to {MAX_IMPORT_MB} MB" in c.value for c in at.sidebar.caption)
    assert any("every tab of this server" in c.value and "replica" in c.value for c in at.sidebar.caption)
    at = upload(at, "vae.keras", (GOLDEN / "vae.keras").read_bytes(), "My tutorial VAE")
    assert not errors(at), errors(at)
    assert not at.exception
    path = runs / "My-tutorial-VAE.pt"
    assert at.sidebar.selectbox(key="model_path").value == str(path)
    assert at.query_params[MODEL_PARAM] == "My-tutorial-VAE"
    assert any("Opened vae.keras" in s.value for s in at.sidebar.success)
    assert "Opened here: My-tutorial-VAE.pt" in at.sidebar.selectbox(key="model_path").options
    # What was written is the model Keras computes with (read back from the runs folder).
    with np.load(GOLDEN / "outputs.npz") as g:
        z, want = g["z_points"], g["decoded"]
    with torch.no_grad():
        got = load_checkpoint(path).decode(torch.from_numpy(z))[:, 0].numpy()
    assert np.abs(got - want).max() <= 1e-5
    # The scatter is of this model's encodings of the test set.
    assert any(c.value.startswith("z_mean of 10,000 test digits (MNIST test set)") for c in at.caption)
    # Publish: the sidebar offers this model's static site.
    assert "Download the site (ZIP)" in [b.label for b in at.get("download_button")]
    at.session_state[FILM_KEY] = True
    at.run()
    assert any("opened from vae.keras" in i.value and "no training film" in i.value for i in at.info)
    # A new session (another tab) lists it, and its link opens it.
    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.query_params[MODEL_PARAM] = "My-tutorial-VAE"
    other.run()
    assert other.sidebar.selectbox(key="model_path").value == str(path)


@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_every_untrusted_file_is_one_sentence_and_the_page_keeps_its_model(runs, tmp_path, case):
    """Each file of the issue's list (tests/test_importer.py's UNTRUSTED) dropped on the uploader:
    one error of one line naming the file and the problem, the shipped model still shown, nothing
    in the runs folder, and nothing run."""
    path, words = untrusted_file(case, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at = upload(at, path.name, path.read_bytes())
    assert not at.exception
    errs = errors(at)
    assert len(errs) == 1 and all(w in errs[0] for w in words), errs
    assert errs[0].startswith(f"{path.name}: ") and len(errs[0].splitlines()) == 1
    assert at.sidebar.selectbox(key="model_path").value == str(shipped.SHIPPED_CHECKPOINT)
    assert not any(s.value.startswith("Opened") for s in at.sidebar.success)
    assert not runs.exists() or not list(runs.iterdir())
    assert not (path.parent / "pwned").exists()


def test_a_name_already_listed_is_refused(runs):
    runs.mkdir(parents=True)
    (runs / "vae.pt").write_bytes(b"taken")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at = upload(at, "vae.weights.h5", (GOLDEN / "vae.weights.h5").read_bytes())
    assert any("already listed" in e for e in errors(at)), errors(at)
    assert (runs / "vae.pt").read_bytes() == b"taken"


@pytest.mark.parametrize("name,want", [
    ("../../etc/passwd", "etc-passwd"),
    ("/etc/passwd", "etc-passwd"),
    ("..", ""),
    ("...", ""),
    ("a/../../b", "a-b"),
    ("C:\\Windows\\x", "C-Windows-x"),
    ("ｍｙ　ｍｏｄｅｌ", "my-model"),  # full-width letters and space
    ("モデル", "モデル"),
    ("nul\x00byte\nline", "nul-byte-line"),
    (".hidden", "hidden"),
    ("model.pt", "model"),
    ("x" * 200, "x" * 60),
])
def test_names_from_the_user_stay_in_the_runs_folder(tmp_path, name, want):
    assert safe_name(name) == want
    if want:
        path = run_path(tmp_path, name)
        assert path.parent == tmp_path and path.name == f"{want}.pt"
    else:
        with pytest.raises(ValueError, match="name"):
            run_path(tmp_path, name)


def test_without_mnist_an_opened_model_has_its_decoder_and_manifold(monkeypatch, tmp_path):
    """No MNIST here: the opened model's page has the decoder and the manifold, and a note where
    the scatter would be."""
    import io

    from devkit import random_model
    from test_app import explorer_data, images, plotly_spec
    from ui.explore import MANIFOLD_TAB, VIEW_KEY

    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "no-mnist-here"))
    monkeypatch.setenv("CVAE_RUNS", str(tmp_path / "runs"))
    model = random_model(5)
    with io.BytesIO() as fh:
        torch.save(model.state_dict(), fh)
        data = fh.getvalue()
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "mine.pt", data)
    assert not at.exception and not errors(at), errors(at)
    assert at.sidebar.selectbox(key="model_path").value == str(tmp_path / "runs" / "mine.pt")
    assert any("MNIST test set is not on this machine" in i.value for i in at.info)
    sent = explorer_data(at)
    assert sent["n_points"] == 0 and sent["bounds"] == [-4.0, 4.0, -4.0, 4.0]
    fallback = [i for i in images(at) if i.caption.startswith("decoded at z")]
    assert len(fallback) == 1
    at.session_state[VIEW_KEY] = MANIFOLD_TAB
    at.run()
    assert not at.exception and not errors(at), errors(at)
    assert plotly_spec(at, "manifold")["layout"]["xaxis"]["tickvals"]
