"""Checkpoints: round trip, metadata, atomic writes. Each kind of bad file: test_robustness.py."""

import os

import pytest
import torch

from cvae import CVAE, load_checkpoint, save_checkpoint


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CVAE().eval()


def test_round_trip_gives_identical_outputs(tmp_path, model):
    path = save_checkpoint(model, tmp_path / "m.pt", train_config={"epochs": 3, "limit": None},
                           history=[{"epoch": 1, "loss": 200.0, "val_loss": 190.0, "seconds": 1.5}])
    loaded = load_checkpoint(path)
    assert not loaded.training
    x = torch.rand(5, 1, 28, 28)
    z = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        for a, b in zip(loaded.encode(x), model.encode(x)):
            assert torch.equal(a, b)
    assert loaded.meta["train_config"] == {"epochs": 3, "limit": None}
    assert loaded.meta["history"][0]["val_loss"] == 190.0
    assert loaded.meta["versions"]["torch"] == str(torch.__version__)
    assert loaded.meta["path"] == str(path)


def test_config_travels_in_the_file(tmp_path):
    m = CVAE(latent_dim=3, filters=(8, 16), dense=12)
    loaded = load_checkpoint(save_checkpoint(m, tmp_path / "small.pt"))
    assert loaded.config == m.config


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, model):
    target = tmp_path / "m.pt"
    save_checkpoint(model, target)
    save_checkpoint(CVAE(), target)  # overwrite
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]
