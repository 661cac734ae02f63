"""The trainer (cvae.training.loop.train) on a few dozen synthetic images, checked against what
it did: the epoch whose weights it returns is the one with the lowest test loss (an epoch's test
loss set here by the weights planted at its last step), early stopping counts the epochs without
an improvement of more than min_delta, a stop asked for, a loss or a test loss that is not a
number keep the best weights so far (or the initial ones), and the events, records, checkpoint,
log, bar, film and spread it reports match the steps it took. No MNIST: the control flow is the
subject, not the learning."""

from __future__ import annotations

import math
import threading
import time

import pytest
import torch

from cvae import CVAE, TrainConfig, evaluate, load_checkpoint, train
from cvae.core.data import fingerprint
from cvae.core.latent import encode_dataset, spread
from cvae.core.model import ModelConfig
from cvae.training.callbacks import Callback, StopTraining
from cvae.training.config import lr_factor
from budgetclock import Clock

N_TRAIN, N_TEST, BATCH = 40, 24, 16  # 3 steps an epoch: 16, 16 and 8 images
TINY = ModelConfig(filters=(2, 4), dense=4)  # the tutorial's layers, few channels: fast


def tiny() -> CVAE:
    return CVAE.from_config(TINY)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def data():
    return images(N_TRAIN, 1), images(N_TEST, 2)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=BATCH, lr=1e-3, patience=0, seed=0, device="cpu", workers=1,
                precision="fp32", film=False)
    base.update(kw)
    return TrainConfig(**base)


def state_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@pytest.fixture(scope="module")
def ranked(data):
    """Five weights of one model, by their test loss (lowest first), each loss well apart: the
    decoder's output bias moved further and further from the images' mean (0.5)."""
    _, test_x = data
    torch.manual_seed(5)
    model = tiny()
    base = state_of(model)
    states = []
    for shift in (0.0, 0.5, 1.0, 1.5, 2.0):
        s = dict(base, **{"decoder.deconv3.bias": base["decoder.deconv3.bias"] + shift})
        model.load_state_dict(s)
        states.append((evaluate(model, test_x, seed=0)["loss"], s))
    states.sort(key=lambda t: t[0])
    losses = [t[0] for t in states]
    assert all(b - a > 1.0 for a, b in zip(losses, losses[1:])), losses
    return states


class Plant(Callback):
    """Loads ``plan[e]`` into the model at the last step of epoch ``e + 1``: that epoch's test loss
    is then that state's."""

    def __init__(self, model, plan):
        self.model, self.plan = model, plan

    def on_step(self, run, event):
        if event["step"] == event["steps"] and event["epoch"] <= len(self.plan):
            self.model.load_state_dict(self.plan[event["epoch"] - 1])


def planted_run(data, ranked, order, **kw):
    train_x, test_x = data
    model = tiny()
    plan = [ranked[r][1] for r in order]
    res = train(cfg(**kw), train_x, test_x, model=model, callbacks=[Plant(model, plan)])
    return res, plan


def test_the_best_epoch_is_kept_and_early_stopping_waits_its_patience(data, ranked):
    """Test losses of rank 2, 0 (the best), 3, 4, 1: with patience 3 the run stops after epoch 5,
    the third epoch in a row not better than epoch 2, and returns epoch 2's weights."""
    res, plan = planted_run(data, ranked, [2, 0, 3, 4, 1], epochs=10, patience=3)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4, 5]
    assert [h["val_loss"] for h in res.history] == pytest.approx([ranked[r][0] for r in (2, 0, 3, 4, 1)], abs=1e-3)
    assert res.stop_reason == "early_stopping"
    assert res.best_epoch == 2 and res.best_val_loss == res.history[1]["val_loss"]
    assert same_weights(state_of(res.model), plan[1])
    assert res.message == ("early stopping: val_loss did not improve for 3 epochs; "
                           f"best {res.history[1]['val_loss']:.4f} at epoch 2")


def test_an_improvement_resets_the_patience(data, ranked):
    """Ranks 3, 4, 1, 2, 0, then worse and worse: with patience 2, epochs 3 and 5 improve in time,
    so the run goes on to epoch 7 and keeps epoch 5."""
    res, plan = planted_run(data, ranked, [3, 4, 1, 2, 0, 4, 4], epochs=10, patience=2)
    assert len(res.history) == 7 and res.stop_reason == "early_stopping"
    assert res.best_epoch == 5 and same_weights(state_of(res.model), plan[4])


def test_without_patience_every_epoch_runs_and_the_best_is_kept(data, ranked):
    res, plan = planted_run(data, ranked, [1, 0, 4, 3], epochs=4, patience=0)
    assert len(res.history) == 4 and res.stop_reason == "completed"
    assert res.best_epoch == 2 and same_weights(state_of(res.model), plan[1])
    assert res.best_val_loss == res.history[1]["val_loss"]
    assert res.message == f"finished 4 epochs; best val_loss {res.best_val_loss:.4f} at epoch 2"


def test_one_epoch_is_one_epoch_in_the_message(data, ranked):
    res, plan = planted_run(data, ranked, [2], epochs=1)
    assert res.message == f"finished 1 epoch; best val_loss {res.history[0]['val_loss']:.4f} at epoch 1"
    assert res.best_epoch == 1 and same_weights(state_of(res.model), plan[0])


@pytest.mark.parametrize("margin, best", [(0.5, 2), (2.0, 1)], ids=["beats-min-delta", "within-min-delta"])
def test_an_epoch_must_beat_the_best_by_more_than_min_delta(data, ranked, margin, best):
    """Epoch 2 is better than epoch 1 by d: an improvement when min_delta is d/2, not when it is 2d
    (the first epoch counts whatever min_delta)."""
    d = ranked[1][0] - ranked[0][0]
    res, plan = planted_run(data, ranked, [1, 0], epochs=2, min_delta=margin * d)
    assert res.best_epoch == best and same_weights(state_of(res.model), plan[best - 1])
    assert res.best_val_loss == res.history[best - 1]["val_loss"]


def test_an_epoch_only_as_good_as_the_best_is_no_improvement(data, ranked):
    res, plan = planted_run(data, ranked, [1, 1, 0], epochs=3, patience=1)
    assert res.history[0]["val_loss"] == res.history[1]["val_loss"]
    assert res.best_epoch == 1 and res.stop_reason == "early_stopping" and len(res.history) == 2


@pytest.mark.parametrize("min_delta", [1e9, math.inf])
def test_the_first_epoch_is_the_best_so_far_whatever_min_delta(data, ranked, min_delta):
    res, plan = planted_run(data, ranked, [1, 0, 2], epochs=3, min_delta=min_delta, patience=2)
    assert res.best_epoch == 1 and res.stop_reason == "early_stopping" and len(res.history) == 3
    assert same_weights(state_of(res.model), plan[0])


def test_the_events_and_records_are_the_steps_taken(data):
    """40 images in batches of 16: each epoch three steps of 16, 16 and 8 images, their losses
    averaged over images in the epoch's record; progress over all planned steps; the learning rate
    the schedule's at the epoch's last step; the test loss that of the weights at the epoch's end."""
    train_x, test_x = data
    c = cfg(epochs=2, schedule="cosine", warmup=0.4, lr=2e-3, seed=3)  # the test loss's noise is the seed's
    model = tiny()
    events, at_end = [], []

    def listen(ev):
        events.append(ev)
        if ev["kind"] == "epoch":
            at_end.append(evaluate(model, test_x, seed=c.seed))

    t0 = time.perf_counter()
    res = train(c, train_x, test_x, model=model, callback=listen)
    wall = time.perf_counter() - t0
    steps = [e for e in events if e["kind"] == "step"]
    assert [(e["epoch"], e["step"], e["steps"], e["images"]) for e in steps] == [
        (ep, s, 3, n) for ep in (1, 2) for s, n in zip((1, 2, 3), (16, 16, 8))]
    assert [e["progress"] for e in steps] == pytest.approx([k / 6 for k in range(1, 7)])
    assert [e["kind"] for e in events] == ["step"] * 3 + ["epoch"] + ["step"] * 3 + ["epoch"]
    recs = [e for e in events if e["kind"] == "epoch"]
    assert [{k: v for k, v in r.items() if k != "kind"} for r in recs] == res.history
    for ep, rec in enumerate(res.history, 1):
        mine = steps[3 * (ep - 1):3 * ep]
        assert rec["epoch"] == ep and rec["images"] == N_TRAIN
        total = 0.0
        for e in mine:  # summed in float64, in the order of the steps
            total += e["loss"] * e["images"]
        assert rec["loss"] == total / N_TRAIN
        assert rec["loss"] == pytest.approx(rec["recon"] + rec["kl"], rel=1e-5)
        assert rec["lr"] == pytest.approx(c.lr * lr_factor(c, 3 * ep - 1, 6), rel=1e-9)
        assert rec["val_loss"] == pytest.approx(at_end[ep - 1]["loss"], rel=1e-5)
        assert rec["val_recon"] == pytest.approx(at_end[ep - 1]["recon"], rel=1e-5)
        assert rec["val_kl"] == pytest.approx(at_end[ep - 1]["kl"], rel=1e-4, abs=1e-6)
        assert 0 <= rec["train_seconds"] <= rec["seconds"] <= wall
        assert "val_loss_raw" not in rec
    assert sum(r["seconds"] for r in res.history) <= res.seconds <= wall
    assert res.history[0]["lr"] != pytest.approx(res.history[1]["lr"])


def test_a_limit_trains_on_the_first_images_only(data, tmp_path):
    train_x, test_x = data
    res = train(cfg(epochs=1, limit=24), train_x, test_x, model_config=TINY, out=tmp_path / "m.pt",
                meta={"command": "x"})
    assert res.history[0]["images"] == 24
    extra = load_checkpoint(tmp_path / "m.pt").meta["extra"]
    assert extra["train_images"] == 24 and extra["train_images_sha256"] == fingerprint(train_x[:24])
    assert extra["command"] == "x" and extra["best_epoch"] == 1 and extra["stop_reason"] == "completed"


def test_a_batch_larger_than_the_data_is_one_step_of_all_of_it(data):
    train_x, test_x = data
    events = []
    res = train(cfg(epochs=1, batch_size=64), train_x, test_x, model_config=TINY, callback=events.append)
    assert [(e["step"], e["steps"], e["images"]) for e in events if e["kind"] == "step"] == [(1, 1, N_TRAIN)]
    assert res.history[0]["images"] == N_TRAIN


def test_one_image_is_an_epoch_of_one_step(data):
    """The epoch's means are over the images seen, however few."""
    train_x, test_x = data
    events = []
    res = train(cfg(epochs=1), train_x[:1], test_x, model_config=TINY, callback=events.append)
    (step,) = [e for e in events if e["kind"] == "step"]
    assert (step["steps"], step["images"]) == (1, 1) and res.history[0]["images"] == 1
    assert res.history[0]["loss"] == pytest.approx(step["loss"], rel=1e-6)


@pytest.mark.parametrize("n_train, n_test", [(0, N_TEST), (N_TRAIN, 0)])
def test_no_images_to_train_or_test_on_is_refused(data, n_train, n_test):
    train_x, test_x = data
    with pytest.raises(ValueError) as err:
        train(cfg(), train_x[:n_train], test_x[:n_test])
    assert str(err.value) == "training needs at least one training and one test image"


class StopAt(Callback):
    def __init__(self, epoch, step, how):
        self.epoch, self.step, self.how = epoch, step, how

    def on_step(self, run, event):
        if (event["epoch"], event["step"]) == (self.epoch, self.step):
            if self.how == "raise":
                raise StopTraining
            return False


@pytest.mark.parametrize("how", ["false", "raise", "listener"])
def test_a_stop_asked_for_keeps_the_best_epoch_so_far(data, how):
    """Stopped at epoch 2's first step (by a callback's False, its StopTraining, or the listener's
    False): one epoch recorded, its weights returned."""
    train_x, test_x = data
    model = tiny()
    kept = []
    events = []

    def listen(ev):
        events.append(ev)
        if ev["kind"] == "epoch":
            kept.append(state_of(model))
        return not (how == "listener" and ev["kind"] == "step" and (ev["epoch"], ev["step"]) == (2, 1))

    res = train(cfg(epochs=4), train_x, test_x, model=model, callback=listen,
                callbacks=[] if how == "listener" else [StopAt(2, 1, how)])
    assert res.stop_reason == "stopped" and res.message == "training stopped by request"
    assert len(res.history) == 1 and res.best_epoch == 1
    assert same_weights(state_of(res.model), kept[0])
    assert [(e["epoch"], e["step"]) for e in events if e["kind"] == "step"][-1] == (2, 1)


def test_a_callbacks_false_after_an_epoch_stops_the_run(data):
    class Enough(Callback):
        def on_epoch(self, run, record):
            return record["epoch"] < 2

    train_x, test_x = data
    res = train(cfg(epochs=5), train_x, test_x, model_config=TINY, callbacks=[Enough()])
    assert len(res.history) == 2 and res.stop_reason == "stopped"


class Poison(Callback):
    """Fills the weights with NaN after step ``step`` of epoch ``epoch``."""

    def __init__(self, model, epoch, step):
        self.model, self.at = model, (epoch, step)

    def on_step(self, run, event):
        if (event["epoch"], event["step"]) == self.at:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.fill_(math.nan)


def poisoned_run(data, epoch: int, step: int):
    """A 4-epoch run whose weights turn NaN at ``epoch``, ``step`` (Poison); its result and the
    weights it held at the end of each epoch."""
    train_x, test_x = data
    model = tiny()
    kept = []
    res = train(cfg(epochs=4), train_x, test_x, model=model, callbacks=[Poison(model, epoch, step)],
                callback=lambda ev: kept.append(state_of(model)) if ev["kind"] == "epoch" else None)
    return res, kept


def test_a_loss_that_is_not_a_number_stops_the_run_with_the_best_weights(data):
    res, kept = poisoned_run(data, 2, 1)
    assert res.stop_reason == "nan"
    assert res.message == ("training stopped: the loss became nan at epoch 2, step 2; kept the best weights "
                           "(epoch 1). Try a lower learning rate.")
    assert len(res.history) == 1 and res.best_epoch == 1
    assert same_weights(state_of(res.model), kept[0])


def test_a_loss_that_is_not_a_number_before_any_epoch_ends_restores_the_initial_weights(data):
    train_x, test_x = data
    torch.manual_seed(0)
    model = tiny()
    initial = state_of(model)
    res = train(cfg(epochs=2), train_x, test_x, model=model, callbacks=[Poison(model, 1, 1)])
    assert res.stop_reason == "nan"
    assert res.message == ("training stopped: the loss became nan at epoch 1, step 2; no epoch had finished, "
                           "so the weights are the initial ones. Try a lower learning rate.")
    assert res.history == [] and res.best_epoch is None and res.best_val_loss is None and res.spread is None
    assert same_weights(state_of(res.model), initial)


def test_a_test_loss_that_is_not_a_number_stops_the_run_with_the_best_weights(data):
    res, kept = poisoned_run(data, 2, 3)
    assert res.stop_reason == "nan" and res.message == "training stopped: val_loss became nan at epoch 2"
    assert len(res.history) == 2 and math.isnan(res.history[1]["val_loss"])
    assert res.best_epoch == 1 and res.best_val_loss == res.history[0]["val_loss"]
    assert same_weights(state_of(res.model), kept[0])


def test_averaging_validates_and_returns_the_moving_average(data):
    """ema 0.5: the weights returned are the average of the raw weights after each step, and the
    record holds the raw weights' test loss beside the average's."""
    train_x, test_x = data
    model = tiny()
    trail, raw_loss = [], []

    def listen(ev):
        if ev["kind"] == "step":
            trail.append(state_of(model))
            if ev["step"] == ev["steps"]:
                raw_loss.append(evaluate(model, test_x, seed=3)["loss"])

    res = train(cfg(epochs=1, ema=0.5, seed=3), train_x, test_x, model=model, callback=listen)
    want = dict(trail[0])
    for w in trail[1:]:
        want = {k: 0.5 * want[k] + 0.5 * w[k] if w[k].is_floating_point() else w[k] for k in want}
    got = state_of(res.model)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    rec = res.history[0]
    assert rec["val_loss_raw"] == pytest.approx(raw_loss[0], rel=1e-5)
    assert rec["val_loss"] == pytest.approx(evaluate(res.model, test_x, seed=3)["loss"], rel=1e-5)
    assert rec["val_loss"] != pytest.approx(rec["val_loss_raw"], rel=1e-6)


def test_a_run_is_repeatable_from_its_seed(data):
    train_x, test_x = data
    a = train(cfg(epochs=1, seed=3), train_x, test_x, model_config=TINY)
    b = train(cfg(epochs=1, seed=3), train_x, test_x, model_config=TINY)
    c = train(cfg(epochs=1, seed=4), train_x, test_x, model_config=TINY)
    assert same_weights(state_of(a.model), state_of(b.model))
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]
    assert not same_weights(state_of(a.model), state_of(c.model))


def test_the_batches_follow_the_seed_not_only_the_initial_weights(data):
    """The same initial weights, two seeds: the batches (and noise) differ, so do the weights."""
    train_x, test_x = data
    torch.manual_seed(0)
    start = state_of(tiny())
    out = []
    for seed in (0, 1, 1):
        m = tiny()
        m.load_state_dict(start)
        out.append(state_of(train(cfg(epochs=1, seed=seed), train_x, test_x, model=m).model))
    assert same_weights(out[1], out[2]) and not same_weights(out[0], out[1])


def test_the_batches_do_not_depend_on_other_draws_from_torchs_generator(data):
    """A listener that draws random numbers (as an app might) changes nothing in a seeded run."""
    train_x, test_x = data
    quiet = train(cfg(epochs=2), train_x, test_x, model_config=TINY)
    noisy = train(cfg(epochs=2), train_x, test_x, model_config=TINY, callback=lambda ev: torch.rand(3))
    assert same_weights(state_of(quiet.model), state_of(noisy.model))


def test_the_model_returned_is_ready_for_inference_with_its_spread(data):
    train_x, test_x = data
    res = train(cfg(epochs=1), train_x, test_x, model_config=ModelConfig(latent_dim=3, filters=(2, 4), dense=4))
    assert res.model.latent_dim == 3 and not res.model.training
    assert res.model.decoder.channels_last is False
    assert res.spread == spread(encode_dataset(res.model, test_x)[0]) and len(res.spread) == 3


def test_the_threads_are_restored_after_a_run(data):
    train_x, test_x = data
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        live = threading.active_count()
        train(cfg(epochs=1, workers=2), train_x, test_x, model_config=TINY)
        assert torch.get_num_threads() == 2
        assert threading.active_count() == live  # the step's worker threads are gone
        train(cfg(epochs=1, workers=1), train_x, test_x, model_config=TINY)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_log_gets_a_line_an_epoch_and_the_bar_only_when_asked(data, capfd):
    train_x, test_x = data
    lines = []
    train(cfg(epochs=2), train_x, test_x, model_config=TINY, log=lines.append)
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and lines[1].startswith("Epoch 2/2")
    assert "Epoch 1/2" not in capfd.readouterr().err
    train(cfg(epochs=2), train_x, test_x, model_config=TINY, progress=True)
    assert "Epoch 2/2" in capfd.readouterr().err


def test_no_checkpoint_is_written_unless_asked(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_x, test_x = data
    train(cfg(epochs=1), train_x, test_x, model_config=TINY)
    assert list(tmp_path.iterdir()) == []


def test_the_film_is_recorded_with_labels_and_when_asked(data):
    train_x, test_x = data
    test_y = torch.arange(N_TEST) % 10
    events = []
    res = train(cfg(epochs=1, film=True), train_x, test_x, model_config=TINY, test_y=test_y, callback=events.append)
    snaps = [e for e in events if e["kind"] == "snapshot"]
    assert res.film is not None and snaps and len(res.film) == len(snaps)
    assert train(cfg(epochs=1, film=True), train_x, test_x, model_config=TINY).film is None  # no labels
    assert train(cfg(epochs=1, film=False), train_x, test_x, model_config=TINY, test_y=test_y).film is None


def test_a_deadline_ends_the_run_at_that_step_and_validates_the_partial_epoch(data, clock: Clock):
    """A budget of 100 s on a clock the test holds; it passes 100 s after step 5 (epoch 2's
    second step): the run validates epoch 2's 32 images and ends there, completed, its last
    step at 100% of the plan."""
    train_x, test_x = data

    class Jump(Callback):
        def on_step(self, run, event):
            if event["epoch"] == 2 and event["step"] == 1:
                clock.t = 1e6

    events = []
    c = TrainConfig.from_recipe("quick", seconds=100, batch_size=BATCH, seed=0, film=False, device="cpu",
                                workers=1, precision="fp32")
    res = train(c, train_x, test_x, model_config=TINY, started=0.0, callback=events.append, callbacks=[Jump()])
    steps = [e for e in events if e["kind"] == "step"]
    assert len(steps) == 5 and steps[-1]["progress"] == 1.0
    assert [(h["epoch"], h["images"]) for h in res.history] == [(1, N_TRAIN), (2, 2 * BATCH)]
    assert res.stop_reason == "completed"
    assert any(e["kind"] == "plan" for e in events)
