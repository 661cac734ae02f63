"""The model's sections and caches (ui.models): the summary, opened, shows the encoder's and the
decoder's layer tables with their parameters; the training curves, opened, are the checkpoint's
own history (or a sentence when it has none); closed, neither is drawn. The manifold and a test
digit are the model's and MNIST's; the torch thread count follows $CVAE_TORCH_THREADS or half the
cores; the data folder follows $CVAE_DATA."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from cvae import decode_grid, load_mnist, save_checkpoint
from cvae.core.latent import to_uint8
from cvae.core.shipped import SHIPPED_CHECKPOINT
from devkit import DATA_DIR, REPO, needs_data, random_model
from ui import models
from ui.common import file_stamp

from streamlit.testing.v1 import AppTest

HARNESS = str(REPO / "tests" / "apps" / "model_info_harness.py")


def page(path, **state) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=120)
    at.session_state["path"] = str(path)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at) -> list[dict]:
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "type", None) == "plotly_chart":
            out.append(json.loads(node.proto.spec))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return out


def test_the_summary_opened_shows_each_parts_layers_and_parameters():
    at = page(SHIPPED_CHECKPOINT, summary_open=True)
    assert [m.value for m in at.markdown] == ["**Encoder**: 69,076 parameters", "**Decoder**: 65,089 parameters"]
    enc, dec = (c.value for c in at.code)
    assert enc.startswith('Model: "encoder"') and "Total params: 69,076" in enc and "conv2d" in enc.lower()
    assert dec.startswith('Model: "decoder"') and "Total params: 65,089" in dec
    closed = page(SHIPPED_CHECKPOINT)
    assert not closed.code and not closed.markdown and not charts(closed) and not closed.info


def test_the_curves_opened_are_the_checkpoints_history(tmp_path):
    hist = [{"epoch": k + 1, "loss": 210.0 - 5 * k, "val_loss": 200.0 - 4 * k} for k in range(3)]
    path = save_checkpoint(random_model(), tmp_path / "m.pt", history=hist)
    at = page(path, curves_open=True)
    (fig,) = charts(at)
    val = next(t for t in fig["data"] if t["name"] == "val_loss")
    loss = next(t for t in fig["data"] if t["name"] == "loss")
    assert list(val["x"]) == [1, 2, 3] and list(val["y"]) == [200.0, 196.0, 192.0]
    assert list(loss["y"]) == [210.0, 205.0, 200.0]
    assert not at.info
    bare = save_checkpoint(random_model(), tmp_path / "bare.pt")
    at = page(bare, curves_open=True)
    assert not charts(at) and [i.value for i in at.info] == ["This checkpoint carries no training history."]


def test_a_collapsed_dimension_is_a_warning_with_its_sign():
    z = np.stack([np.linspace(-2, 2, 1000), np.full(1000, 0.01)], 1)
    at = page(SHIPPED_CHECKPOINT, z_mean=z.tolist())
    (w,) = at.sidebar.warning
    assert w.value.startswith("Posterior collapse in z2") and w.icon == ":material/warning:"


def test_the_manifold_is_the_models_decoded_grid(tmp_path):
    path = save_checkpoint(random_model(seed=4), tmp_path / "m.pt")
    img = models.manifold_image(str(path), file_stamp(path), 5, (-2.0, 2.0), (-1.0, 3.0))
    model = models.load_model(str(path), file_stamp(path))
    assert img.dtype == np.uint8 and img.shape == (5 * 28, 5 * 28)
    np.testing.assert_array_equal(img, to_uint8(decode_grid(model, 5, (-2.0, 2.0), (-1.0, 3.0))))


@needs_data
def test_a_test_digit_is_mnists_at_that_index():
    images, labels = load_mnist("test", DATA_DIR, download=False)
    for i in (0, 4321):
        img, label = models.test_digit(str(DATA_DIR), i)
        assert label == int(labels[i]) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, to_uint8(images[i, 0].numpy()))


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    models.configure_torch_threads.clear()
    yield
    models.configure_torch_threads.clear()
    torch.set_num_threads(before)


@pytest.mark.parametrize("value, want", [("3", 3), ("1", 1), ("0", 1), ("-2", 1), ("many", 1),
                                         ("", max(1, (os.cpu_count() or 2) // 2)),
                                         (None, max(1, (os.cpu_count() or 2) // 2))])
def test_torch_threads_follow_the_setting_or_half_the_cores(threads, monkeypatch, value, want):
    if value is None:
        monkeypatch.delenv("CVAE_TORCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("CVAE_TORCH_THREADS", value)
    assert models.configure_torch_threads() == want and torch.get_num_threads() == want


def test_half_the_cores_is_at_least_one(threads, monkeypatch):
    monkeypatch.delenv("CVAE_TORCH_THREADS", raising=False)
    monkeypatch.setattr(models.os, "cpu_count", lambda: 1)
    assert models.configure_torch_threads() == 1
    models.configure_torch_threads.clear()
    monkeypatch.setattr(models.os, "cpu_count", lambda: None)  # unknown: as two cores
    assert models.configure_torch_threads() == 1
    models.configure_torch_threads.clear()
    monkeypatch.setattr(models.os, "cpu_count", lambda: 8)
    assert models.configure_torch_threads() == 4


def test_the_data_folder_follows_cvae_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "mnist-here"))
    assert models.data_dir() == str(tmp_path / "mnist-here")


def test_the_summary_line_of_an_opened_model_and_of_a_file_replaced_under_it(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(random_model(), path, extra={"imported_from": {"file": "vae.weights.h5",
                                                                   "description": "Keras 3 weights"}})
    at = page(path)
    line = next(c.value for c in at.caption if c.value.startswith("latent_dim"))
    assert line == "latent_dim 2 · 134,165 parameters · opened from vae.weights.h5 (Keras 3 weights)"
    # The same name, another model (a run saved over it): the page reads the new one.
    save_checkpoint(random_model(), path, history=[{"epoch": 1, "loss": 200.0, "val_loss": 190.0}] * 2)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    at.run()
    line = next(c.value for c in at.caption if c.value.startswith("latent_dim"))
    assert line == "latent_dim 2 · 134,165 parameters · 2 epochs"


def test_a_run_saved_over_by_an_opened_model_is_labelled_again(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("CVAE_RUNS", str(runs))
    path = save_checkpoint(random_model(), runs / "x.pt")
    assert models.list_models()[str(path)] == "Trained here: x.pt"
    save_checkpoint(random_model(), path, extra={"imported_from": {"file": "a.h5", "description": "Keras"}})
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert models.list_models()[str(path)] == "Opened here: x.pt"


def test_a_missing_file_is_named_with_the_systems_reason(tmp_path):
    gone = tmp_path / "gone.pt"
    at = page(gone)
    assert [e.value for e in at.error] == [f"{gone}: No such file or directory. Still exploring cvae_mnist.pt."]


def test_a_file_replaced_under_its_name_is_checked_and_summarised_again(tmp_path):
    path = save_checkpoint(random_model(), tmp_path / "m.pt")
    at = page(path, summary_open=True)
    assert not at.error and "Total params: 65,089" in at.code[1].value
    save_checkpoint(random_model(latent_dim=3), path)  # saved over by a 3-D model
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    at.run()
    (err,) = [e.value for e in at.error]
    assert "a 3-D latent space; the explorer needs 2-D" in err


def test_the_summary_follows_a_file_saved_over(tmp_path):
    path = save_checkpoint(random_model(), tmp_path / "m.pt")
    at = page(path, summary_open=True)
    assert "Total params: 69,076" in at.code[0].value
    save_checkpoint(random_model(dense=32), path)  # another 2-D model, a wider dense layer in the encoder
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    at.run()
    assert not at.error and "Total params: 69,076" not in at.code[0].value
