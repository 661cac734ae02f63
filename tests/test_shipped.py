"""The shipped model in assets/: quality bar, encodings and record match the checkpoint; and what
`python -m cvae encode` and `ship` write reads back as the model computes it."""

import json

import numpy as np
import pytest

from cvae import count_parameters, encode_dataset, evaluate, load_checkpoint, load_mnist
from cvae.cli import main
from cvae.core.encodings import read_encodings
from cvae.core.shipped import SHIPPED_CHECKPOINT, SHIPPED_ENCODINGS, SHIPPED_RECORD, build_assets
from devkit import DATA_DIR, require_data

# Test loss (784*BCE + KL, one z per image, seed 0): the bar the shipped model must meet. It
# measures 147.74 (147.67-147.75 over z seeds 0-5; docs/model-card.md).
QUALITY_BAR = 148.0


@pytest.fixture(scope="module")
def card():
    return json.loads(SHIPPED_RECORD.read_text())


@pytest.fixture(scope="module")
def test_set():
    require_data()
    return load_mnist("test", DATA_DIR, download=False)


@pytest.fixture(scope="module")
def scored(model, test_set):
    """The shipped model's evaluation of the 10,000 test digits (seed 0), computed once here."""
    return evaluate(model, test_set[0], seed=0)


def test_assets_are_small_and_hold_no_images():
    files = [SHIPPED_CHECKPOINT, SHIPPED_ENCODINGS, SHIPPED_RECORD]
    # the model 0.55 MB, its encodings 0.15 MB, the film 4.2 MB (its 16 frames' weights in float16)
    assert sum(f.stat().st_size for f in SHIPPED_CHECKPOINT.parent.iterdir() if f.is_file()) < 5_500_000
    for f in files:
        assert f.is_file(), f
    enc = np.load(SHIPPED_ENCODINGS)
    assert set(enc.files) == {"z_mean", "z_log_var", "label"}  # no pixels in there


def test_shipped_model_is_the_tutorial_architecture(model):
    assert model.latent_dim == 2
    assert count_parameters(model) == 134_165


@pytest.mark.slow  # scores the 10,000 test digits
def test_shipped_model_meets_the_quality_bar(scored, card):
    res = scored
    assert res["n"] == 10_000
    assert res["loss"] <= QUALITY_BAR, res
    assert res["loss"] == pytest.approx(card["test_loss"], abs=0.05)


def test_shipped_encodings_equal_what_the_checkpoint_computes(model, test_set):
    x, y = test_set
    enc = read_encodings(SHIPPED_ENCODINGS)
    mu, lv = encode_dataset(model, x)
    # Written on another CPU: measured 1.5e-6 (z_mean) and 1.9e-6 (z_log_var) here, 1.9e-6 on AVX2.
    np.testing.assert_allclose(enc["z_mean"], mu, rtol=0, atol=1e-5)
    np.testing.assert_allclose(enc["z_log_var"], lv, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(enc["label"], y.numpy())


def _same_as_the_model(enc: dict, model, test_set) -> None:
    """Encodings read from disk are the model's, column for column, with the test set's labels."""
    x, y = test_set
    mu, lv = encode_dataset(model, x)
    np.testing.assert_array_equal(enc["z_mean"], mu)
    np.testing.assert_array_equal(enc["z_log_var"], lv)
    np.testing.assert_array_equal(enc["label"], y.numpy())


@pytest.mark.slow  # encodes the 10,000 test digits
def test_cli_encode_writes_what_the_model_encodes(model, test_set, tmp_path, capsys):
    out = tmp_path / "enc.npz"
    assert main(["encode", str(SHIPPED_CHECKPOINT), "--data-dir", str(DATA_DIR), "--out", str(out),
                 "--no-download"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    _same_as_the_model(read_encodings(out), model, test_set)


@pytest.mark.slow  # ships the model: encodes all 10,000 test digits and scores them
def test_ship_writes_a_checkpoint_encodings_and_card_that_read_back(model, test_set, scored, tmp_path):
    folder = tmp_path / "assets"
    card = build_assets(SHIPPED_CHECKPOINT, DATA_DIR, folder, train_command="python -m cvae train --x", download=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [SHIPPED_CHECKPOINT.name, SHIPPED_ENCODINGS.name, SHIPPED_RECORD.name])  # no temporary file left
    assert (folder / SHIPPED_CHECKPOINT.name).read_bytes() == SHIPPED_CHECKPOINT.read_bytes()
    _same_as_the_model(read_encodings(folder / SHIPPED_ENCODINGS.name), load_checkpoint(folder / "cvae_mnist.pt"),
                       test_set)
    on_disk = json.loads((folder / SHIPPED_RECORD.name).read_text())
    assert on_disk == json.loads(json.dumps(card))
    assert on_disk["test_loss"] == pytest.approx(scored["loss"], abs=1e-9)
    assert on_disk["command"] == "python -m cvae train --x"


def test_record_matches_the_checkpoint(model, card):
    meta = model.meta
    assert card["parameters"] == count_parameters(model)
    assert card["model_config"] == model.config.to_dict()
    assert card["train_config"] == meta["train_config"]
    assert card["epochs_run"] == len(meta["history"])
    assert card["best_epoch"] == min(meta["history"], key=lambda h: h["val_loss"])["epoch"]
    assert card["command"].startswith("python -m cvae train")
    assert card["trained_with"] == meta["versions"]
    for key in ("seed", "wall_seconds", "machine", "test_loss", "recon", "kl"):
        assert card[key] is not None, key
