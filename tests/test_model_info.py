"""What the page says about the model it explores (ui.models), through a harness of its own:
the summary line read from the checkpoint's own record (parameters, epochs, best test loss and
its epoch, batch, learning rate, seed, training images); a file that is not a 2-D checkpoint is
one clear message and the page keeps exploring the last good model (or the shipped one); and
the spread of the test digits along each dimension, with a warning when one collapsed."""

from __future__ import annotations

import numpy as np
import pytest

from cvae import save_checkpoint
from cvae.core.shipped import SHIPPED_CHECKPOINT
from devkit import REPO, random_model

from streamlit.testing.v1 import AppTest

HARNESS = str(REPO / "tests" / "apps" / "model_info_harness.py")


def page(**state) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=120)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def trained(tmp_path, epochs: int, **tc):
    hist = [{"epoch": k + 1, "val_loss": 200.0 - k} for k in range(epochs)]
    return save_checkpoint(random_model(), tmp_path / f"m{epochs}.pt", history=hist, train_config=tc,
                           extra={"best_val_loss": 150.126, "best_epoch": epochs})


def test_the_summary_line_is_the_checkpoints_own_record(tmp_path):
    path = trained(tmp_path, 3, batch_size=64, lr=0.004, seed=7, limit=1000)
    at = page(path=str(path))
    assert f"exploring: {path}" in captions(at)
    line = next(c for c in captions(at) if c.startswith("latent_dim"))
    assert line == ("latent_dim 2 · 134,165 parameters · 3 epochs · best val_loss 150.13 (epoch 3) · "
                    "batch 64, lr 0.004, seed 7, 1000 training images"), line
    one = trained(tmp_path, 1, batch_size=32, lr=0.001, seed=0)
    line = next(c for c in captions(page(path=str(one))) if c.startswith("latent_dim"))
    assert line == "latent_dim 2 · 134,165 parameters · 1 epoch · best val_loss 150.13 (epoch 1) · batch 32, lr 0.001, seed 0"
    bare = save_checkpoint(random_model(), tmp_path / "bare.pt")
    assert next(c for c in captions(page(path=str(bare))) if c.startswith("latent_dim")) == \
        "latent_dim 2 · 134,165 parameters"


@pytest.mark.parametrize("kind", ["not a checkpoint", "3-D", "missing"])
def test_a_file_the_explorer_cannot_show_is_one_message_and_the_last_good_model_stays(tmp_path, kind):
    good = save_checkpoint(random_model(), tmp_path / "good.pt")
    bad = tmp_path / "bad.pt"
    if kind == "not a checkpoint":
        bad.write_bytes(b"not a checkpoint")
    elif kind == "3-D":
        save_checkpoint(random_model(latent_dim=3), bad)
    at = page(path=str(bad))  # no good model yet this session: the shipped one
    (err,) = [e.value for e in at.error]
    assert str(bad) in err and err.endswith(f". Still exploring {SHIPPED_CHECKPOINT.name}.")
    if kind == "3-D":
        assert "a 3-D latent space; the explorer needs 2-D" in err
    if kind == "missing":
        assert "No such file" in err
    assert f"exploring: {SHIPPED_CHECKPOINT}" in captions(at)
    # After a good model in this session, that one stays.
    at = page(path=str(good))
    assert not at.error and f"exploring: {good}" in captions(at)
    at.session_state["path"] = str(bad)
    at.run()
    (err,) = [e.value for e in at.error]
    assert err.endswith(". Still exploring good.pt.") and f"exploring: {good}" in captions(at)


def test_the_shipped_model_itself_unreadable_is_one_message_and_no_model(tmp_path, monkeypatch):
    from cvae.core import shipped

    bad = tmp_path / "cvae_mnist.pt"
    bad.write_bytes(b"x")
    monkeypatch.setattr(shipped, "SHIPPED_CHECKPOINT", bad)
    at = page(path=str(bad))
    (err,) = [e.value for e in at.error]
    assert str(bad) in err and "Still exploring" not in err
    assert "exploring: None" in captions(at)


def test_the_spread_of_each_dimension_and_a_warning_when_one_collapsed():
    rng = np.random.default_rng(0)
    z = np.stack([rng.normal(0, 1.0, 4000), rng.normal(0, 0.05, 4000)], 1)
    at = page(path=str(SHIPPED_CHECKPOINT), z_mean=z.tolist())
    spread = [c for c in at.sidebar.caption if c.value.startswith("Spread of z_mean")]
    assert [c.value for c in spread] == [f"Spread of z_mean over the test digits (standard deviation): "
                                         f"z1 {z[:, 0].std():.2f}, z2 {z[:, 1].std():.2f}"]
    (w,) = at.sidebar.warning
    assert "z2" in w.value and "z1" not in w.value.split("(")[0]
    at = page(path=str(SHIPPED_CHECKPOINT), z_mean=(z * [1, 20]).tolist())
    assert not at.sidebar.warning
