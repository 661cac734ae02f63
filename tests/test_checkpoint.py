"""Checkpoints: round trip, metadata, and each kind of bad file."""

import os
import pickle

import pytest
import torch

from cvae import CVAE, CheckpointError, load_checkpoint, save_checkpoint
from devkit import ShellOnLoad


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


def _bad(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def _one_line_error(path):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_empty_file(tmp_path):
    assert "empty" in _one_line_error(_bad(tmp_path, "empty.pt", b""))


def test_truncated_file(tmp_path, model):
    good = save_checkpoint(model, tmp_path / "good.pt").read_bytes()
    msg = _one_line_error(_bad(tmp_path, "trunc.pt", good[: len(good) // 2]))
    assert "truncated" in msg or "corrupt" in msg


def test_random_bytes(tmp_path):
    _one_line_error(_bad(tmp_path, "noise.pt", os.urandom(4096)))


def test_missing_file(tmp_path):
    assert "no such file" in _one_line_error(tmp_path / "nope.pt")


def test_foreign_torch_file(tmp_path):
    p = tmp_path / "foreign.pt"
    torch.save({"hello": [1, 2, 3]}, p)
    assert "not a checkpoint of this app" in _one_line_error(p)


def test_bare_state_dict(tmp_path, model):
    p = tmp_path / "state.pt"
    torch.save(model.state_dict(), p)
    assert "state_dict" in _one_line_error(p)


def test_wrong_shapes(tmp_path, model):
    p = save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["model_config"]["latent_dim"] = 3  # weights are for 2
    torch.save(payload, p)
    msg = _one_line_error(p)
    assert "shape" in msg


def test_nan_weights(tmp_path, model):
    p = save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["state_dict"]["decoder.dense.bias"][0] = float("nan")
    torch.save(payload, p)
    assert "NaN" in _one_line_error(p)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": ShellOnLoad(marker)}, p)
    msg = _one_line_error(p)
    assert "refused" in msg
    assert not marker.exists()
    # A plain pickle file (not a zip) with the same trick.
    p2 = tmp_path / "evil2.pt"
    p2.write_bytes(pickle.dumps(ShellOnLoad(marker)))
    _one_line_error(p2)
    assert not marker.exists()
