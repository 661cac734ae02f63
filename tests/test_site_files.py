"""The static site's parts in process (cvae.site), without MNIST unless a test says so: each test
digit's loss as stored and read back, edges included; the ZIP's entries; the model's line for the
shipped model (under another name too), a trained one and an opened one; what data.js carries
beside the weights; the test hooks only when asked for; the refusals (a 3-D model, encodings
that are not numbers or not of this MNIST) and a folder that is not empty."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time
import zipfile

import numpy as np
import pytest

from cvae import load_checkpoint, load_mnist, save_checkpoint
from cvae.core.data import DataMissingError
from cvae.core import latent
from cvae.core.shipped import SHIPPED_CHECKPOINT, SHIPPED_RECORD, shipped_encodings
from cvae.draw.palette import DIGIT_COLORS, DIGIT_SYMBOLS
from cvae.site import HOOKS_ENV, LOSS_STEPS, SiteError, loss_payload, model_line, site_files, site_zip, write_site
from cvae.web import DIGIT_PX, HINT, PAD_PX, SLIDER_STEP, WEB_DIR
from devkit import DATA_DIR, needs_data, random_model


def read_loss(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """The losses as the page reads them: little-endian integers times their step."""
    recon = np.frombuffer(base64.b64decode(p["recon"]), "<u2") * p["steps"][0]
    kl = np.frombuffer(base64.b64decode(p["kl"]), {1: "u1", 2: "<u2"}[p["kl_bytes"]]) * p["steps"][1]
    return recon, kl


def test_each_digits_loss_reads_back_to_half_a_step():
    rng = np.random.default_rng(0)
    recon, kl = rng.uniform(60, 400, 1000), rng.uniform(0, 25.4, 1000)
    p = loss_payload(recon, kl)
    assert p["n"] == 1000 and p["steps"] == list(LOSS_STEPS) == [0.05, 0.1] and p["samples"] == 1
    assert p["kl_bytes"] == 1  # one byte a digit while every KL fits 25.5 nats
    r, k = read_loss(p)
    assert np.abs(r - recon).max() <= 0.025 + 1e-9 and np.abs(k - kl).max() <= 0.05 + 1e-9


def test_a_kl_over_the_byte_is_stored_in_two_and_reads_back():
    kl = np.array([0.0, 25.5, 25.56, 40.0, 1000.0])
    p = loss_payload(np.full(5, 100.0), kl)
    assert p["kl_bytes"] == 2
    assert read_loss(p)[1] == pytest.approx(np.round(kl / 0.1) * 0.1)
    assert loss_payload([100.0], [25.5])["kl_bytes"] == 1  # 255 steps still fit a byte


def test_losses_past_what_is_stored_are_held_at_its_ends():
    recon = np.array([-1.0, 0.0, 3276.75, 5000.0])
    kl = np.array([-0.5, 0.0, 10.0, 7000.0])  # past two bytes too
    r, k = read_loss(loss_payload(recon, kl))
    assert r.tolist() == pytest.approx([0.0, 0.0, 3276.75, 3276.75])
    assert k.tolist() == pytest.approx([0.0, 0.0, 10.0, 6553.5])
    empty = loss_payload([], [])
    assert empty["n"] == 0 and empty["kl_bytes"] == 1 and empty["recon"] == "" and empty["kl"] == ""


def test_the_zips_entries_are_dated_now_and_compressed():
    files = {"index.html": b"<!doctype html>" + b"x" * 5000, "data.js": b"y" * 5000}
    before = time.localtime()
    z = zipfile.ZipFile(io.BytesIO(site_zip(files)))
    assert sorted(z.namelist()) == ["cvae-explorer/data.js", "cvae-explorer/index.html"]  # the default folder
    for info in z.infolist():
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < 200
        dated = time.mktime(info.date_time + (0, 0, -1))
        assert abs(dated - time.mktime(before)) <= 2, info.date_time


def test_the_shipped_models_line_under_any_name(tmp_path):
    model = load_checkpoint(SHIPPED_CHECKPOINT)
    card = json.loads(SHIPPED_RECORD.read_text(encoding="utf-8"))
    line = model_line(model, SHIPPED_CHECKPOINT)
    assert line == (f"cvae_mnist.pt · 134,165 parameters · test loss {card['test_loss']:.2f} (784·BCE + KL over the "
                    "10,000 MNIST test digits; the tutorial's best is 151.3) · the explorer's shipped model: the Keras "
                    f"tutorial's CVAE ported to PyTorch · {model.meta['created'][:10]}")
    linked = tmp_path / "explorer.pt"  # the same file under another name
    os.link(SHIPPED_CHECKPOINT, linked)
    assert model_line(model, linked) == line.replace("cvae_mnist.pt", "explorer.pt", 1)
    copied = tmp_path / "copy.pt"  # another file: a model like any other
    shutil.copyfile(SHIPPED_CHECKPOINT, copied)
    other = model_line(model, copied)
    assert "shipped" not in other and "trained with `python -m cvae train` (recipe fast, batch 32" in other
    gone = model_line(model, tmp_path / "gone.pt")  # a file that is not there is not the shipped one either
    assert gone.startswith("gone.pt · 134,165 parameters · test loss ") and "shipped" not in gone


def test_a_line_says_where_a_model_was_opened_from_and_nothing_it_does_not_know(tmp_path):
    ckpt = tmp_path / "keras.pt"
    save_checkpoint(random_model(seed=1), ckpt, extra={"imported_from": {"file": "vae.weights.h5",
                                                                         "description": "Keras 3 weights"}})
    model = load_checkpoint(ckpt)
    line = model_line(model, ckpt)
    assert "opened from vae.weights.h5 (Keras 3 weights)" in line
    assert "test loss" not in line and "trained with" not in line
    model.meta.pop("created", None)
    model.meta["extra"] = {"best_val_loss": 150.0, "best_epoch": 4, "imported_from": "not a record"}
    assert model_line(model, ckpt) == "keras.pt · 134,165 parameters · test loss 150.00 (best epoch 4)"
    model.meta = {}  # a model with no record at all
    assert model_line(model, ckpt) == "keras.pt · 134,165 parameters"


def site_data(files: dict) -> dict:
    return json.loads(files["data.js"].decode().split("globalThis.CVAE_SITE = ", 1)[1].rstrip().rstrip(";"))


def test_the_site_carries_the_apps_explorer_settings(tmp_path, monkeypatch):
    """Without MNIST: the shipped encodings, no originals and no losses; the explorer's sizes, words,
    colours, slider step and manifold are the app's."""
    monkeypatch.delenv(HOOKS_ENV, raising=False)
    files = site_files(SHIPPED_CHECKPOINT, tmp_path / "no-mnist")
    assert sorted(files) == ["data.js", "explorer.css", "explorer.js", "index.html", "site.css"]
    d = site_data(files)
    assert d["model"]["name"] == "cvae_mnist.pt" and d["encodings"] == "assets/test_encodings.npz"
    assert d["digits"] is None and d["loss"] is None
    assert (d["step"], d["digit_px"], d["pad_px"], d["hint"]) == (SLIDER_STEP, DIGIT_PX, PAD_PX, HINT)
    assert d["palette"] == list(DIGIT_COLORS) and d["symbols"] == list(DIGIT_SYMBOLS)
    assert d["manifold"] == {"n": latent.GRID_N, "z1_range": list(latent.GRID_Z1), "z2_range": list(latent.GRID_Z2),
                             "map": latent.manifold_map(latent.GRID_N, latent.GRID_Z1, latent.GRID_Z2)}
    assert d["bounds"] == list(latent.latent_bounds(shipped_encodings()["z_mean"])) and d["points"]["n"] == 10_000
    assert files["data.js"].startswith(b"// The model and the encodings this explorer shows")
    for name, source in (("explorer.css", "explorer.css"), ("site.css", "site.css"), ("index.html", "site.html")):
        assert files[name] == (WEB_DIR / source).read_bytes(), name


def test_the_test_hooks_are_bundled_only_when_asked_for(tmp_path, monkeypatch):
    marker = b"timeDecode("  # a hook of hooks.js
    monkeypatch.delenv(HOOKS_ENV, raising=False)
    assert marker not in site_files(SHIPPED_CHECKPOINT, tmp_path, hooks=None)["explorer.js"]
    monkeypatch.setenv(HOOKS_ENV, "1")
    assert marker in site_files(SHIPPED_CHECKPOINT, tmp_path)["explorer.js"]
    assert marker not in site_files(SHIPPED_CHECKPOINT, tmp_path, hooks=False)["explorer.js"]
    monkeypatch.setenv(HOOKS_ENV, "0")
    assert marker not in site_files(SHIPPED_CHECKPOINT, tmp_path)["explorer.js"]


def test_a_model_that_is_not_2d_or_not_trained_is_refused(tmp_path, monkeypatch):
    three = tmp_path / "three.pt"
    save_checkpoint(random_model(latent_dim=3), three)
    with pytest.raises(SiteError, match=r"three\.pt has a 3-D latent space; the explorer shows 2-D ones$"):
        site_files(three, tmp_path)
    nan = tmp_path / "nan.pt"
    save_checkpoint(random_model(seed=2), nan)
    z = np.zeros((10, 2), np.float32)
    z[[2, 7], 1] = np.nan
    monkeypatch.setattr("cvae.site.encodings_for", lambda *a, **k: {"z_mean": z, "label": np.arange(10),
                                                                    "source": "x"})
    with pytest.raises(SiteError, match=r"^2 of the encodings are not finite numbers; is .*nan\.pt trained\?$"):
        site_files(nan, tmp_path)


@needs_data
def test_encodings_of_other_digits_than_this_mnist_are_refused(tmp_path, monkeypatch):
    labels = (np.arange(10_000) + 1) % 10  # not MNIST's test labels
    monkeypatch.setattr("cvae.site.encodings_for", lambda *a, **k: {"z_mean": np.zeros((10_000, 2), np.float32),
                                                                    "label": labels, "source": "elsewhere"})
    with pytest.raises(SiteError, match=r"^the encodings \(elsewhere\) are not of the MNIST test set in this data"):
        site_files(SHIPPED_CHECKPOINT, DATA_DIR)


def test_a_folder_that_is_not_empty_is_refused_before_the_work(tmp_path, monkeypatch):
    out = tmp_path / "site"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    calls = []
    monkeypatch.setattr("cvae.site.site_files", lambda *a, **k: calls.append(a) or {"index.html": b"new"})
    with pytest.raises(FileExistsError, match="site exists and is not empty"):
        write_site(SHIPPED_CHECKPOINT, out)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        write_site(SHIPPED_CHECKPOINT, tmp_path / "file")
    assert calls == [] and (out / "mine.txt").read_text() == "mine" and (tmp_path / "file").read_text() == "x"
    path, files = write_site(SHIPPED_CHECKPOINT, out, force=True)
    assert path == out and sorted(p.name for p in out.iterdir()) == ["index.html"] and files == {"index.html": b"new"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_site(SHIPPED_CHECKPOINT, empty)[0] == empty and (empty / "index.html").read_bytes() == b"new"
    assert write_site(SHIPPED_CHECKPOINT, tmp_path / "new")[0] == tmp_path / "new"


def test_a_kl_byte_holds_up_to_255_steps_and_no_less_than_zero():
    p = loss_payload([100.0, 100.0], [-0.5, 10.0])  # a KL just under zero (rounding) is stored as zero
    assert p["kl_bytes"] == 1 and read_loss(p)[1].tolist() == pytest.approx([0.0, 10.0])
    p = loss_payload([100.0], [25.6])  # 256 steps: two bytes
    assert p["kl_bytes"] == 2 and read_loss(p)[1].tolist() == pytest.approx([25.6])


def test_the_site_written_is_the_checkpoints_from_the_data_folder_given(tmp_path, monkeypatch):
    """Written to disk as site_files makes it, for that checkpoint and that data folder (here one
    without MNIST, while $CVAE_DATA has it: no originals)."""
    monkeypatch.delenv(HOOKS_ENV, raising=False)
    path, files = write_site(SHIPPED_CHECKPOINT, tmp_path / "site", tmp_path / "no-mnist")
    assert sorted(p.name for p in path.iterdir()) == sorted(files) and "digits.png" not in files
    for name, data in files.items():
        assert (path / name).read_bytes() == data
    assert site_data(files)["model"]["name"] == "cvae_mnist.pt"
    assert files == site_files(SHIPPED_CHECKPOINT, tmp_path / "no-mnist")


def test_a_models_site_needs_mnist_in_the_data_folder_given(tmp_path, monkeypatch):
    """Another model's encodings come from MNIST in the data folder given, not from $CVAE_DATA."""
    monkeypatch.setenv("CVAE_DATA", str(DATA_DIR))
    other = save_checkpoint(random_model(seed=3), tmp_path / "other.pt")
    with pytest.raises(DataMissingError):
        site_files(other, tmp_path / "no-mnist")


def test_a_models_site_with_mnist_holds_its_encodings_the_digits_and_their_losses(tmp_path, monkeypatch, small_mnist):
    """A trained model and a data folder of MNIST's first 1,000 test digits ($CVAE_DATA elsewhere):
    the points are this model's encodings of those digits with their labels, the sheet holds the
    digits, each digit's loss is the model's."""
    from PIL import Image

    from cvae.core.explain import test_set_terms
    from cvae.core.latent import encode_dataset

    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "elsewhere"))
    model = random_model(seed=6)
    ckpt = save_checkpoint(model, tmp_path / "mine.pt")
    files = site_files(ckpt, small_mnist, hooks=False)
    d = site_data(files)
    images, labels = load_mnist("test", small_mnist, download=False)
    assert d["encodings"] == "MNIST test set" and d["points"]["n"] == len(labels) == 1000
    z = encode_dataset(model, images)[0]
    blob = np.frombuffer(base64.b64decode(d["points"]["b64"]), np.uint8)
    np.testing.assert_array_equal(blob[4000:], labels.numpy())  # each point's label
    q = blob[:4000].view("<u2").reshape(-1, 2) / 65535
    a, b, c, e = d["bounds"]
    assert d["bounds"] == list(latent.latent_bounds(z))
    np.testing.assert_allclose(np.stack([a + q[:, 0] * (b - a), e - q[:, 1] * (e - c)], 1), z,
                               atol=max(b - a, e - c) / 65535)
    assert d["digits"] == {"file": "digits.png", "columns": 100, "levels": 16}
    sheet = np.asarray(Image.open(io.BytesIO(files["digits.png"])).convert("L"), np.int16)
    assert sheet.shape == (28 * 10, 28 * 100)
    np.testing.assert_allclose(sheet[28:56, 28 * 7:28 * 8], images[107, 0].numpy() * 255, atol=8)
    recon, kl = read_loss(d["loss"])
    want_r, want_k = test_set_terms(model, images)
    assert np.abs(recon - want_r).max() <= 0.025 + 1e-6 and np.abs(kl - want_k).max() <= 0.05 + 1e-6
