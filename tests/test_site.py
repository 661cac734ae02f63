"""`python -m cvae site`: what it writes is read back (the decoder's weights decode as PyTorch
does, the encodings are the model's, the digits' sheet holds MNIST's test digits in order), the
page asks for nothing outside its folder, and bad input gets one line, exit 2 and nothing left."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvae import save_checkpoint
from cvae.core import latent
from cvae.core.data import load_mnist
from cvae.core.payloads import payload_tensors
from cvae.core.shipped import SHIPPED_CHECKPOINT, shipped_encodings
from cvae.site import SHEET_COLUMNS, SHEET_LEVELS, site_files, site_zip
from devkit import DATA_DIR, REPO, cli, needs_data, random_model, shipped_site_parts
from webdecode import numpy_decode

SITE_LIMIT = 1_500_000  # bytes: the bound for a site that draws its own scatter


def run_site(*args, cwd=REPO):
    """`python -m cvae site ARGS`, in this process (devkit.cli): what it writes and says is the subject."""
    return cli("site", *args, cwd=cwd)


def site_data(folder: Path) -> dict:
    text = (folder / "data.js").read_text(encoding="utf-8")
    m = re.search(r"globalThis\.CVAE_SITE = (\{.*\});\s*$", text, re.S)
    assert m, "data.js does not set globalThis.CVAE_SITE"
    return json.loads(m.group(1))


def leftovers(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".")]


@needs_data
@pytest.mark.slow  # builds a whole site and scores the 10,000 test digits again
def test_the_shipped_models_site_holds_this_model_and_mnist(tmp_path, model, monkeypatch):
    import cvae.site

    # What the CLI writes and says is the subject here; the site's parts for the shipped model on
    # this MNIST are cvae.site.site_parts' own, computed once per session (devkit) and read back below.
    real, shipped = cvae.site.site_parts, shipped_site_parts()

    def parts(checkpoint, data_dir=None):
        if (Path(checkpoint).resolve(), Path(data_dir).resolve()) == (SHIPPED_CHECKPOINT.resolve(), DATA_DIR.resolve()):
            return shipped
        return real(checkpoint, data_dir)

    monkeypatch.setattr(cvae.site, "site_parts", parts)
    out = tmp_path / "site"
    r = run_site(SHIPPED_CHECKPOINT, "--out", out, "--data-dir", DATA_DIR)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["data.js", "digits.png", "explorer.css", "explorer.js",
                                                     "index.html", "site.css"]
    size = sum(p.stat().st_size for p in out.iterdir())
    assert size <= SITE_LIMIT, f"{size:,} bytes"
    assert f"{size / 1e6:.2f} MB, with the test digits' originals. Serve it with" in r.stdout, r.stdout
    d = site_data(out)
    # The weights decode as PyTorch decodes (the browser's loop, in NumPy, from the file alone).
    z = np.array([[0.0, 0.0], [1.2, -2.5], [-0.7, 1.9]], np.float32)
    want = latent.decode_points(model, z)
    assert np.abs(numpy_decode(d["weights"], z) - want).max() < 1e-5
    names = [f"{L['name']}.weight" for L in d["weights"]["layers"]]
    for name in names:  # the very tensors of this checkpoint
        got = payload_tensors(d["weights"])[name]
        np.testing.assert_array_equal(got, model.decoder.state_dict()[name].numpy())
    # The points are this model's encodings, in test-set order, quantised over the bounds.
    enc = shipped_encodings()
    p = d["points"]
    assert p["n"] == 10_000 and d["bounds"] == list(latent.latent_bounds(enc["z_mean"]))
    blob = np.frombuffer(__import__("base64").b64decode(p["b64"]), np.uint8)
    q = blob[:4 * p["n"]].view("<u2").reshape(-1, 2).astype(np.float64) / 65535
    a, b, c, e = d["bounds"]
    zq = np.stack([a + q[:, 0] * (b - a), e - q[:, 1] * (e - c)], 1)
    assert np.abs(zq - enc["z_mean"]).max() <= max(b - a, e - c) / 65535
    np.testing.assert_array_equal(blob[4 * p["n"]:], enc["label"])
    # The sheet: MNIST's test digits in order, at 16 grey levels.
    images, _ = load_mnist("test", DATA_DIR, download=False)
    sheet = np.asarray(Image.open(out / "digits.png").convert("L"), np.int16)
    assert sheet.shape == (28 * 100, 28 * SHEET_COLUMNS)
    for i in (0, 1, 4321, 9999):
        r0, c0 = divmod(i, SHEET_COLUMNS)
        cell = sheet[28 * r0:28 * r0 + 28, 28 * c0:28 * c0 + 28]
        mnist = images[i, 0].numpy() * 255
        # the nearest of SHEET_LEVELS (16) levels, 17 apart: at most 8 off
        assert np.abs(cell - mnist).max() <= (255 // (SHEET_LEVELS - 1)) // 2 == 8
    # Which model: its line names the file, its size, its test loss.
    line = d["model"]["line"]
    assert line.startswith("cvae_mnist.pt · 134,165 parameters · test loss 147.74")
    # The manifold's ring map is the page's own (cvae.core.latent.manifold_map of the tutorial's grid).
    assert d["manifold"]["map"] == latent.manifold_map(15, (-2.0, 2.0), (-1.0, 3.0))
    # Each test digit's loss: 784·BCE and KL as explain.test_set_terms gives them, to the stored step.
    from cvae.core.explain import test_set_terms

    loss = d["loss"]
    recon = np.frombuffer(__import__("base64").b64decode(loss["recon"]), "<u2") * loss["steps"][0]
    kl = np.frombuffer(__import__("base64").b64decode(loss["kl"]), {1: "u1", 2: "<u2"}[loss["kl_bytes"]]) * loss["steps"][1]
    assert loss["n"] == len(recon) == len(kl) == 10_000 and loss["samples"] == 1
    want_r, want_k = test_set_terms(model, images[:10_000])
    # Half a step, plus float32 rounding: the CLI's process may run the model on other threads than
    # this one, which moves a recon by up to 2.2e-4 nats (measured on an AVX-512 Xeon).
    assert np.abs(recon - want_r).max() <= loss["steps"][0] / 2 + 5e-4
    assert np.abs(kl - want_k).max() <= loss["steps"][1] / 2 + 5e-5
    assert (recon + kl).mean() == pytest.approx(147.74, abs=0.5)  # the model's test loss, as its line says


def test_the_page_asks_for_nothing_outside_its_folder(tmp_path):
    files = site_files(SHIPPED_CHECKPOINT, tmp_path / "no-mnist", hooks=False)
    html = files["index.html"].decode()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    rules = dict((r.split()[0], r.split()[1:]) for r in csp.split(";") if r.strip())
    assert rules["default-src"] == ["'self'"] and rules["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "<script>" not in html and "style=" not in html  # nothing inline: the CSP would refuse it
    for name, data in files.items():
        if name.endswith((".html", ".js", ".css")):
            text = data.decode()
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f"{name} names another host"
            assert "@import" not in text and "url(" not in text
    refs = set(re.findall(r'(?:src|href)="([^"#:]+)"', html))
    assert refs <= set(files), refs - set(files)  # every file the page loads is in the folder


def test_without_mnist_the_shipped_site_leaves_the_originals_out(tmp_path):
    out = tmp_path / "site"
    # As the README says it: a path relative to the project (the shipped encodings, not MNIST's).
    r = run_site("assets/cvae_mnist.pt", "--out", out, "--data-dir", tmp_path / "empty")
    assert r.returncode == 0, r.stderr
    assert "without the test digits' originals (no MNIST here)." in r.stdout, r.stdout
    assert not (out / "digits.png").exists() and site_data(out)["digits"] is None


def test_bad_input_is_one_line_exit_2_and_nothing_left(tmp_path):
    three = tmp_path / "three.pt"
    save_checkpoint(random_model(latent_dim=3), three)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pt"
    save_checkpoint(random_model(seed=3), other)
    cases = [
        ((three, "--out", tmp_path / "a"), "3-D latent space; the explorer shows 2-D ones"),
        ((junk, "--out", tmp_path / "b"), "junk.pt"),
        ((other, "--out", tmp_path / "c", "--data-dir", tmp_path / "no-mnist"), "MNIST"),
        ((tmp_path / "missing.pt", "--out", tmp_path / "d"), "missing.pt"),
    ]
    for args, words in cases:
        r = run_site(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not Path(args[2]).exists()
    assert leftovers(tmp_path) == []


def test_a_folder_with_files_is_kept_unless_forced(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = run_site(SHIPPED_CHECKPOINT, "--out", out, "--data-dir", tmp_path / "empty")
    assert r.returncode == 2 and "exists and is not empty" in r.stderr and "--force" in r.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    r = run_site(SHIPPED_CHECKPOINT, "--out", tmp_path / "file")
    assert r.returncode == 2 and (tmp_path / "file").read_text() == "x"
    r = run_site(SHIPPED_CHECKPOINT, "--out", out, "--data-dir", tmp_path / "empty", "--force")
    assert r.returncode == 0, r.stderr
    assert "notes.txt" not in [p.name for p in out.iterdir()] and (out / "index.html").is_file()
    assert leftovers(tmp_path) == []
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    assert run_site(SHIPPED_CHECKPOINT, "--out", empty, "--data-dir", tmp_path / "empty").returncode == 0


def test_the_zip_holds_the_site_in_one_folder(tmp_path):
    files = site_files(SHIPPED_CHECKPOINT, tmp_path / "empty", hooks=False)
    z = zipfile.ZipFile(io.BytesIO(site_zip(files, folder="cvae-explorer-x")))
    assert sorted(z.namelist()) == sorted(f"cvae-explorer-x/{n}" for n in files)
    for name, data in files.items():
        assert z.read(f"cvae-explorer-x/{name}") == data


def test_a_trained_models_site_says_where_it_came_from(tmp_path, monkeypatch):
    ckpt = tmp_path / "mine.pt"
    model = random_model(seed=5)
    save_checkpoint(model, ckpt, train_config={"recipe": "quick", "batch_size": 32, "lr": 0.003, "seed": 5},
                    extra={"best_val_loss": 161.25, "best_epoch": 3})
    enc = {"z_mean": np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32),
           "label": np.arange(50) % 10, "source": "test"}
    monkeypatch.setattr("cvae.site.encodings_for", lambda *a, **k: enc)  # its encodings, without MNIST
    files = site_files(ckpt, tmp_path / "empty", hooks=False)
    d = json.loads(files["data.js"].decode().split("= ", 1)[1].rstrip().rstrip(";"))
    assert d["model"]["line"].startswith("mine.pt · 134,165 parameters · test loss 161.25 (best epoch 3)")
    assert "recipe quick, batch 32, lr 0.003, seed 5" in d["model"]["line"]
    assert d["points"]["n"] == 50
    w = d["weights"]
    z = np.array([[0.3, -0.4]], np.float32)
    assert np.abs(numpy_decode(w, z) - latent.decode_points(model, torch.tensor(z).numpy())).max() < 1e-5
