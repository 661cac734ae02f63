"""What a training run reports, checked against what it did: the best epoch it names is the one
whose weights it returns and saves (read back and evaluated again), the test loss is a mean
over images whatever the batches, and `python -m cvae train --seconds S` fits S seconds."""

from __future__ import annotations

import time

import pytest
import torch

from cvae import CVAE, TrainConfig, evaluate, load_checkpoint, load_mnist, train
from cvae.training.callbacks import Callback
from cvae.training.loop import EVAL_BATCH
from devkit import DATA_DIR, needs_data

TEST_N = 301  # test images: one batch of EVAL_BATCH (250) and a short one of 51


@pytest.fixture(scope="module")
def data():
    train_x, _ = load_mnist("train", DATA_DIR, download=False, limit=768)
    test_x, _ = load_mnist("test", DATA_DIR, download=False)
    return train_x, test_x[:TEST_N]


class SpoilEpoch(Callback):
    """Adds noise to the weights after every step of one epoch, so that epoch's test loss is
    the worst of the run and its best epoch is an earlier one."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_step(self, run, event):
        if run.epoch == self.epoch:
            with torch.no_grad():
                for p in run.model.decoder.parameters():
                    p.add_(torch.randn_like(p) * 0.05)


@needs_data
@pytest.mark.slow
def test_the_best_epoch_reported_is_the_one_returned_and_saved(data, tmp_path):
    """A run whose last epoch is its worst: the best epoch it reports has the lowest val_loss,
    and the model it returns and the checkpoint it saved, evaluated again, give that epoch's
    val_loss (not the last epoch's)."""
    train_x, test_x = data
    cfg = TrainConfig(epochs=3, batch_size=64, lr=2e-3, patience=0, seed=0, film=False)
    res = train(cfg, train_x, test_x, out=tmp_path / "m.pt", callbacks=[SpoilEpoch(3)])
    losses = [h["val_loss"] for h in res.history]
    assert len(losses) == 3 and losses[2] > min(losses[:2]) + 5, losses  # the spoiled epoch is clearly worse
    best = min(range(3), key=losses.__getitem__) + 1
    assert res.best_epoch == best and res.best_val_loss == losses[best - 1]
    again = evaluate(res.model, test_x, batch_size=EVAL_BATCH, seed=cfg.seed)["loss"]
    assert again == pytest.approx(losses[best - 1], rel=1e-6)
    saved = load_checkpoint(tmp_path / "m.pt")
    extra = saved.meta["extra"]
    assert extra["best_epoch"] == best and extra["best_val_loss"] == pytest.approx(losses[best - 1], rel=1e-9)
    assert [h["val_loss"] for h in saved.meta["history"]] == losses  # the whole run, its worst epoch included
    assert evaluate(saved, test_x, batch_size=EVAL_BATCH, seed=cfg.seed)["loss"] == pytest.approx(
        losses[best - 1], rel=1e-6)
    for k, v in saved.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k].cpu()), k


@needs_data
def test_the_test_loss_is_a_mean_over_images_whatever_the_batches(data):
    """301 images in batches of 250 (a short last batch of 51), of 7 and all at once: the same
    figure, the mean of each image's own 784*BCE + KL with the same noise."""
    _, test_x = data
    torch.manual_seed(3)
    model = CVAE().eval()
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn((TEST_N, model.latent_dim), generator=gen)  # evaluate's noise, drawn for all images at once
    with torch.no_grad():
        per_image = torch.stack([model.loss(test_x[i:i + 1], eps=eps[i:i + 1]).loss for i in range(TEST_N)])
    want = per_image.double().mean().item()
    for batch in (EVAL_BATCH, 7, TEST_N):
        got = evaluate(model, test_x, batch_size=batch, seed=0)
        assert got["n"] == TEST_N
        assert got["loss"] == pytest.approx(want, rel=1e-5), batch
        assert got["recon"] + got["kl"] == pytest.approx(got["loss"], rel=1e-5)


@needs_data
@pytest.mark.slow
def test_the_cli_trains_for_the_seconds_asked_counted_from_the_process_start(tmp_path, monkeypatch, capsys):
    """`train --seconds 20` in a process that started 3 s before: the budget's deadline is the
    process's start plus 20 s, the run stops at the steps its budget planned (more than one
    epoch's, far fewer than the recipe's 8 epochs), validates every epoch it began, ends by the
    deadline (give or take its last evaluation, whose time the machine's load decides) and
    its checkpoint records the budget."""
    from cvae.cli import main
    from cvae.training import budget, loop

    budgets = []

    class Spy(budget.TimeBudget):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            budgets.append(self)

        def on_end(self, run):
            self.end = (run.global_step, run.total_steps, run.steps)

    called = time.perf_counter()
    monkeypatch.setattr(budget, "process_started", lambda: called - 3.0)
    monkeypatch.setattr(loop, "TimeBudget", Spy)
    out = tmp_path / "q.pt"
    code = main(["train", "--data-dir", str(DATA_DIR), "--no-download", "--quiet", "--no-film", "--device", "cpu",
                 "--limit", "3000", "--seconds", "20", "--out", str(out)])
    ended = time.perf_counter()
    assert code == 0, capsys.readouterr().err
    (b,) = budgets
    assert b.deadline == pytest.approx(called - 3.0 + 20, abs=1e-6)
    done, planned, per_epoch = b.end
    assert done == planned and b.plans and planned <= b.plans[-1]  # it ran the steps it planned, no more
    assert 0 < done < 8 * per_epoch  # a budget's steps, not the default recipe's 8 epochs
    meta = load_checkpoint(out).meta
    hist = meta["history"]
    assert meta["train_config"]["recipe"] == "quick" and meta["train_config"]["batch_size"] == 32  # --seconds: quick
    assert sum(-(-h["images"] // 32) for h in hist) == done  # every step's images were counted
    assert [h["epoch"] for h in hist] == list(range(1, -(-done // per_epoch) + 1))  # every epoch begun, validated
    last_eval = hist[-1]["seconds"] - hist[-1]["train_seconds"]
    assert ended <= b.deadline + last_eval + 1.0, (ended - b.deadline, last_eval)
    assert load_checkpoint(out).meta["train_config"]["seconds"] == 20
    assert "for 20 s" in capsys.readouterr().out
