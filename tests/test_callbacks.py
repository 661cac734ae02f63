"""cvae.training.callbacks without a training: the epoch line, the progress bar (a stand-in for
tqdm), the forwarding of events, and the checkpointer against a run's state built here."""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace

import torch

from cvae import load_checkpoint
from cvae.training.callbacks import Callback, Checkpointer, EpochLog, Forward, ProgressBar, StopTraining, format_epoch
from cvae.training.config import TrainConfig
from devkit import random_model

RECORD = {"epoch": 3, "seconds": 12.4, "loss": 160.123456, "recon": 150.5, "kl": 9.62345, "val_loss": 158.00004,
          "val_recon": 149.25, "val_kl": 8.75}


def test_the_epoch_line_as_keras_prints_it():
    assert format_epoch(RECORD, 10) == ("Epoch 3/10 - 12s - loss: 160.1235 - recon: 150.5000 - kl: 9.6235"
                                        " - val_loss: 158.0000 - val_recon: 149.2500 - val_kl: 8.7500")
    assert format_epoch({**RECORD, "val_loss_raw": 158.5}, 10).endswith(" - val_kl: 8.7500 - val_loss_raw: 158.5000")
    lines = []
    assert EpochLog(lines.append).on_epoch(SimpleNamespace(planned_epochs=7), RECORD) is None
    assert lines == [format_epoch(RECORD, 7)]


def test_a_plain_callback_does_nothing_and_stop_training_is_an_exception():
    cb, run = Callback(), SimpleNamespace()
    assert [cb.on_start(run), cb.on_step(run, {}), cb.on_epoch(run, {}), cb.on_end(run)] == [None] * 4
    assert issubclass(StopTraining, Exception)


class FakeTqdm:
    made: list = []

    def __init__(self, **kw):
        self.kw, self.n, self.postfix, self.closed = kw, 0, [], False
        FakeTqdm.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix(self, **kw):
        self.postfix.append((self.n, kw))

    def close(self):
        self.closed = True


def test_the_progress_bar_one_per_epoch_with_the_running_loss_every_50_steps():
    FakeTqdm.made = []
    bar = ProgressBar()
    bar.tqdm = FakeTqdm
    run = SimpleNamespace(planned_epochs=4, epoch_mean_loss=171.456)
    for step in range(1, 121):
        bar.on_step(run, {"kind": "step", "epoch": 2, "step": step, "steps": 120, "loss": 1.0})
    first = FakeTqdm.made[0]
    assert first.kw == {"total": 120, "desc": "Epoch 2/4", "leave": False, "unit": "step"}
    assert first.n == 120 and first.closed and bar.bar is None  # closed at the epoch's last step
    assert first.postfix == [(1, {"loss": "171.46"}), (51, {"loss": "171.46"}), (101, {"loss": "171.46"})]
    bar.on_step(run, {"kind": "step", "epoch": 3, "step": 1, "steps": 120, "loss": 1.0})
    second = FakeTqdm.made[1]
    assert len(FakeTqdm.made) == 2 and second.kw["desc"] == "Epoch 3/4" and not second.closed
    bar.on_end(run)  # a run stopped in the middle of an epoch closes its bar
    assert second.closed and bar.bar is None
    bar.on_end(run)  # and twice is harmless
    assert ProgressBar().bar is None


def test_forward_hands_on_steps_or_epochs_and_what_the_listener_answers():
    heard = []

    def listen(event):
        heard.append(event)
        return False if event.get("stop") else None

    run = SimpleNamespace()
    both, steps, epochs = Forward(listen), Forward(listen, epochs=False), Forward(listen, steps=False)
    step = {"kind": "step", "step": 1}
    assert both.on_step(run, step) is None and both.on_epoch(run, {"epoch": 1}) is None
    assert heard == [step, {"kind": "epoch", "epoch": 1}]
    heard.clear()
    assert steps.on_epoch(run, {"epoch": 2}) is None and epochs.on_step(run, step) is None and heard == []
    assert steps.on_step(run, {"stop": True}) is False and epochs.on_epoch(run, {"stop": True}) is False


class FakeFilm:
    """A film's recorder with two frames of three digits in 2-D."""

    seconds = 2.5

    def film(self):
        import numpy as np

        from cvae.core.film import Film

        return Film(step=np.array([0, 5]), epoch=np.array([0.0, 1.0], np.float32),
                    z=np.zeros((2, 3, 2), np.float16), labels=np.array([1, 7, 9], np.uint8),
                    index=np.arange(3, dtype=np.int32), loss=np.array([np.nan, 160.0], np.float32),
                    val_loss=np.array([np.nan, 158.0], np.float32), manifold=np.zeros((2, 4, 4), np.uint8),
                    manifold_range=np.array([-4, 4, -4, 4], np.float32), steps_per_epoch=5)


def _run(model, best_state, improved=True):
    return SimpleNamespace(
        model=model, best_state=best_state, improved=improved, best_epoch=2, best_val=151.5, n=1024,
        data_digest="ab" * 8, stop_reason="epochs", hw=SimpleNamespace(device=torch.device("cpu")),
        step=SimpleNamespace(summary=lambda: "fp32, 1 core"), t_start=time.perf_counter() - 5.0, spread=[1.5, 0.7],
        cfg=TrainConfig(epochs=3), history=[{"epoch": 1, "val_loss": 160.0}, {"epoch": 2, "val_loss": 151.5}])


def test_the_checkpointer_saves_the_best_weights_with_the_runs_facts(tmp_path):
    model = random_model(1)
    best = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model.decoder.dense.bias.add_(1.0)  # the weights went on changing after the best epoch
    out = tmp_path / "run" / "m.pt"
    cp = Checkpointer(out, meta={"command": "python -m cvae train"}, film=FakeFilm())
    cp.on_epoch(_run(model, best, improved=False), {})
    assert not out.exists()  # an epoch that did not improve saves nothing
    cp.on_epoch(_run(model, best), {})
    saved = load_checkpoint(out)
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0)
    extra = saved.meta["extra"]
    assert extra["command"] == "python -m cvae train" and extra["best_epoch"] == 2 and extra["best_val_loss"] == 151.5
    assert (extra["train_images"], extra["train_images_sha256"], extra["stop_reason"]) == (1024, "ab" * 8, "epochs")
    assert (extra["device"], extra["arithmetic"], extra["latent_spread"]) == ("cpu", "fp32, 1 core", [1.5, 0.7])
    assert 5.0 <= extra["wall_seconds"] < 60 and extra["film_seconds"] == 2.5  # since the run's start
    assert saved.meta["train_config"] == TrainConfig(epochs=3).to_dict()
    assert saved.meta["history"][-1] == {"epoch": 2, "val_loss": 151.5}
    film = saved.meta["film"]  # the recorder's film, stored with the weights
    assert film is not None and film.step.tolist() == [0, 5] and film.labels.tolist() == [1, 7, 9]
    # At the end, once more, improved or not; without a film, no film_seconds.
    out.unlink()
    plain = Checkpointer(out)
    plain.on_end(_run(model, best, improved=False))
    extra = load_checkpoint(out).meta["extra"]
    assert "film_seconds" not in extra and "command" not in extra and extra["stop_reason"] == "epochs"
    assert load_checkpoint(out).meta["film"] is None
    # No best weights yet (stopped before the first validation): nothing is written.
    out.unlink()
    plain.on_end(_run(model, None))
    assert not out.exists()


def test_the_checkpointer_keeps_its_own_copy_of_the_meta(tmp_path):
    meta = {"command": "a"}
    cp = Checkpointer(tmp_path / "m.pt", meta=meta)
    meta["command"] = "b"
    assert cp.meta == {"command": "a"}
    assert Checkpointer(tmp_path / "n.pt").meta == {} and Checkpointer(tmp_path / "n.pt").film is None

