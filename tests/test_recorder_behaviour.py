"""The training film's recorder (cvae/training/recorder.py) as a run drives it: which digits it
follows, when it takes a snapshot, what a snapshot holds and the film it gathers. No training and
no MNIST: random images with labels, an untrained model and a stand-in for the run."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from cvae import CVAE
from cvae.core.film import MANIFOLD_RANGE, Film
from cvae.training.recorder import (
    FilmRecorder,
    epoch_stride,
    film_subset,
    first_epoch_steps,
    small_manifold,
)


def _images(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g)


def _model(seed: int = 0, **kw) -> CVAE:
    torch.manual_seed(seed)
    return CVAE(**kw).eval()


class Run:
    """What the recorder reads of a run: the model kept, the step, whether more epochs follow,
    and the hardware's context for whole-batch work (counted here)."""

    def __init__(self, model, step: int = 0, more: bool = True):
        self.kept, self.global_step, self._more = model, step, more
        self.entered = 0
        run = self

        class Hw:
            @contextlib.contextmanager
            def all_cores(self):
                run.entered += 1
                yield

        self.hw = Hw()

    def more(self) -> bool:
        return self._more


# --- which digits, and when ---------------------------------------------------------------------

def test_the_subset_is_the_first_images_of_each_digit_in_order():
    labels = [3, 1, 3, 3, 0, 1, 9, 3, 0, 12, 1]
    got = film_subset(labels, per_digit=2)
    assert got.tolist() == [0, 1, 2, 4, 5, 6, 8]  # two 0s, two 1s, two 3s, the one 9; not 12
    assert got.dtype == np.int64
    # A tensor of labels, or labels in a column, give the same digits.
    assert film_subset(torch.tensor(labels), per_digit=2).tolist() == got.tolist()
    assert film_subset(np.array(labels).reshape(-1, 1), per_digit=2).tolist() == got.tolist()
    assert film_subset(np.array(labels, np.float32), per_digit=2).tolist() == got.tolist()


def test_the_subset_takes_200_of_each_digit_by_default():
    labels = np.tile(np.arange(10), 230)  # 230 of each digit
    got = film_subset(labels)
    assert len(got) == 2000 and np.bincount(labels[got]).tolist() == [200] * 10
    assert got.tolist() == list(range(2000))  # the first 200 of each, in order


def test_the_first_epoch_is_filmed_densely_at_its_start():
    assert first_epoch_steps(938) == [15, 29, 59, 117, 234, 469, 704]
    assert first_epoch_steps(20) == [1, 2, 5, 10, 15]
    assert first_epoch_steps(4) == [1, 2, 3]  # the end of the epoch has its own snapshot
    assert first_epoch_steps(3) == [1, 2]
    assert first_epoch_steps(1) == []


def test_a_long_run_films_every_kth_epoch():
    assert [epoch_stride(e) for e in (0, 1, 200, 201, 400, 401, 1000)] == [1, 1, 1, 2, 2, 3, 5]
    assert epoch_stride(16, 16) == 1 and epoch_stride(17, 16) == 2 and epoch_stride(33, 16) == 3


# --- the small manifold --------------------------------------------------------------------------

def _manifold_by_hand(model, n, cell, box):
    """Each digit decoded on its own at its grid point, row 0 at the top (z2 high), averaged down
    to ``cell`` pixels a side."""
    z1 = np.linspace(box[0], box[1], n)
    z2 = np.linspace(box[3], box[2], n)  # top to bottom
    out = np.zeros((n * cell, n * cell))
    with torch.no_grad():
        for r in range(n):
            for c in range(n):
                img = torch.sigmoid(model.decoder(torch.tensor([[z1[c], z2[r]]], dtype=torch.float32)))
                img = torch.nn.functional.avg_pool2d(img, 28 // cell)[0, 0].numpy()
                out[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = img
    return out * 255


def test_the_small_manifold_is_the_models_digits_over_the_central_box():
    model = _model(3)
    got = small_manifold(model)
    assert got.dtype == np.uint8 and got.shape == (112, 112)  # 8 x 8 digits of 14 pixels
    want = _manifold_by_hand(model, 8, 14, MANIFOLD_RANGE)
    assert np.abs(got.astype(float) - want).max() <= 1.0


def test_the_small_manifold_of_another_size_box_and_cell():
    model = _model(4)
    box = (-1.0, 3.0, 0.5, 2.5)
    got = small_manifold(model, n=3, cell=7, box=box)
    assert got.shape == (21, 21)
    assert np.abs(got.astype(float) - _manifold_by_hand(model, 3, 7, box)).max() <= 1.0
    whole = small_manifold(model, n=2, cell=28, box=box)  # full-size digits, not averaged
    assert whole.shape == (56, 56)
    assert np.abs(whole.astype(float) - _manifold_by_hand(model, 2, 28, box)).max() <= 1.0


def test_a_model_that_is_not_2d_has_no_small_manifold():
    assert small_manifold(_model(0, latent_dim=3)) is None
    assert small_manifold(_model(0, latent_dim=1)) is None


# --- a snapshot ------------------------------------------------------------------------------------

def test_a_snapshot_encodes_the_subset_with_the_model_of_the_moment():
    images = _images(40)
    labels = np.array([i % 12 for i in range(40)])  # 10 and 11 are not digits: not filmed
    rec = FilmRecorder(images, labels, steps_per_epoch=10, epochs=2)
    model = _model(1)
    ev = rec.record(model, 7, 0.7)
    keep = np.array([i for i in range(40) if i % 12 < 10])
    with torch.no_grad():
        z, _ = model.encode(images[keep])
    assert ev["z"].dtype == np.float16 and ev["z"].shape == (len(keep), 2)
    np.testing.assert_allclose(ev["z"].astype(np.float32), z.numpy(), rtol=2e-3, atol=2e-3)
    assert ev["labels"].dtype == np.uint8 and ev["labels"].tolist() == (labels[keep]).tolist()
    assert ev["index"].dtype == np.int32 and ev["index"].tolist() == keep.tolist()
    assert ev["kind"] == "snapshot" and ev["step"] == 7 and isinstance(ev["step"], int)
    assert ev["epoch"] == pytest.approx(0.7) and isinstance(ev["epoch"], float)
    assert ev["frame"] == 0 and ev["steps_per_epoch"] == 10 and ev["epochs"] == 2
    assert ev["manifold_range"] == MANIFOLD_RANGE
    assert np.array_equal(ev["manifold"], small_manifold(model))
    # Labels given as a tensor: the same.
    ev2 = FilmRecorder(images, torch.tensor(labels), steps_per_epoch=10, epochs=2).record(model, 7, 0.7)
    assert ev2["labels"].tolist() == ev["labels"].tolist() and np.array_equal(ev2["z"], ev["z"])


def test_a_snapshot_in_small_batches_is_the_same():
    images, labels = _images(30), np.arange(30) % 10
    model = _model(2)
    a = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1).record(model, 0, 0.0)
    b = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1, batch_size=7).record(model, 0, 0.0)
    np.testing.assert_allclose(a["z"].astype(np.float32), b["z"].astype(np.float32), atol=2e-3)


def test_a_model_not_2d_is_filmed_without_a_manifold():
    images, labels = _images(20), np.arange(20) % 10
    ev = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1).record(_model(0, latent_dim=3), 0, 0.0)
    assert ev["manifold"] is None and ev["z"].shape == (20, 3)


def test_the_decoders_layout_is_left_as_it_was():
    images, labels = _images(20), np.arange(20) % 10
    model = _model(5)
    plain = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1).record(model, 0, 0.0)
    model.decoder.channels_last = True
    ev = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1).record(model, 0, 0.0)
    assert model.decoder.channels_last is True
    assert np.abs(ev["manifold"].astype(int) - plain["manifold"].astype(int)).max() <= 1


def test_no_labelled_images_no_recorder():
    with pytest.raises(ValueError) as e:
        FilmRecorder(_images(5), np.array([10, 11, -1, 12, 99]), steps_per_epoch=5, epochs=1)
    assert str(e.value) == "the film needs labelled test images"


def test_a_snapshots_loss_is_the_mean_training_loss_since_the_last_one():
    images, labels = _images(20), np.arange(20) % 10
    model = _model(0)
    rec = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1)
    assert rec.record(model, 0, 0.0)["loss"] is None  # the start: no step yet
    rec.add_loss(10.0, 2)
    rec.add_loss(torch.tensor(40.0), 1)  # per image: (2 x 10 + 40) / 3
    ev = rec.record(model, 2, 0.4)
    assert ev["loss"] == pytest.approx(20.0) and isinstance(ev["loss"], float)
    assert rec.record(model, 2, 0.4)["loss"] is None  # nothing since
    rec.add_loss(5.0, 4)
    assert rec.record(model, 3, 0.6)["loss"] == pytest.approx(5.0)
    for bad in (float("nan"), float("inf")):
        rec.add_loss(bad, 1)
        assert rec.record(model, 4, 0.8)["loss"] is None
    rec.add_loss(7.0, 1)  # a non-finite loss does not linger
    assert rec.record(model, 5, 1.0)["loss"] == pytest.approx(7.0)


def test_a_first_snapshot_after_steps_has_their_mean_loss():
    """A recorder driven without its start snapshot: the first one has the steps' mean loss."""
    rec = FilmRecorder(_images(10), np.arange(10), steps_per_epoch=5, epochs=1)
    rec.add_loss(3.0, 2)
    rec.add_loss(6.0, 1)
    assert rec.record(_model(0), 3, 0.6)["loss"] == pytest.approx(4.0)


def test_a_snapshots_validation_loss_is_given_or_none():
    images, labels = _images(20), np.arange(20) % 10
    model = _model(0)
    rec = FilmRecorder(images, labels, steps_per_epoch=5, epochs=1)
    assert rec.record(model, 5, 1.0, 151.25)["val_loss"] == 151.25
    assert rec.record(model, 5, 1.0, np.float32(3.5))["val_loss"] == 3.5
    assert type(rec.record(model, 5, 1.0, np.float32(3.5))["val_loss"]) is float
    assert rec.record(model, 5, 1.0)["val_loss"] is None
    assert rec.record(model, 5, 1.0, float("nan"))["val_loss"] is None
    assert rec.record(model, 5, 1.0, float("-inf"))["val_loss"] is None


# --- the film ------------------------------------------------------------------------------------

def test_no_snapshot_no_film():
    assert FilmRecorder(_images(10), np.arange(10), steps_per_epoch=5, epochs=1).film() is None


def test_the_film_gathers_the_snapshots_and_the_weights_kept():
    images, labels = _images(20), np.arange(20) % 10
    rec = FilmRecorder(images, labels, steps_per_epoch=5, epochs=3)
    models = [_model(s) for s in range(3)]
    events = [rec.record(m, 5 * i, float(i), keep_weights=i != 1) for i, m in enumerate(models)]
    assert [e["frame"] for e in events] == [0, 1, 2]
    film = rec.film()
    assert isinstance(film, Film) and len(film) == 3
    assert film.step.tolist() == [0, 5, 10] and film.frames_with_weights() == [0, 2]
    assert np.array_equal(film.z[1], events[1]["z"])
    for i in (0, 2):
        frame = film.frame_model(i, models[0])
        for a, b in zip(models[i].state_dict().values(), frame.state_dict().values()):
            torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    # The time spent recording: positive, what the film says and the budget reads.
    assert 0 < rec.seconds == film.info["record_seconds"]
    before = rec.seconds
    rec.record(models[0], 15, 3.0)
    assert rec.seconds > before
    assert rec.film().frames_with_weights() == [0, 2, 3]  # by default a snapshot keeps the weights


def test_the_time_spent_recording_adds_up(monkeypatch):
    """The film's cost (what the budget plans with and the checkpoint reports): the time of each
    snapshot, summed, on a clock the test moves by 2 s at each reading."""
    import time

    readings = iter(range(1000, 2000, 2))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(readings)))
    rec = FilmRecorder(_images(10), np.arange(10), steps_per_epoch=5, epochs=1)
    model = _model(0)
    rec.record(model, 0, 0.0)
    assert rec.seconds == 2.0
    rec.record(model, 5, 1.0)
    assert rec.seconds == 4.0


# --- driven by a run -------------------------------------------------------------------------------

def _step(epoch, step, steps=20, loss=100.0, images=8):
    return {"kind": "step", "epoch": epoch, "step": step, "steps": steps, "loss": loss, "images": images}


def test_a_run_is_filmed_at_its_start_early_in_its_first_epoch_and_after_its_epochs():
    images, labels = _images(20), np.arange(20) % 10
    heard = []
    rec = FilmRecorder(images, labels, steps_per_epoch=20, epochs=3, emit=heard.append)
    model = _model(0)
    run = Run(model)
    rec.on_start(run)
    assert [(e["step"], e["epoch"], e["loss"]) for e in heard] == [(0, 0.0, None)]
    for s in range(1, 21):
        run.global_step = s
        rec.on_step(run, _step(1, s, loss=float(s)))
    # Snapshots after steps 1, 2, 5, 10, 15 (first_epoch_steps(20)), each with the mean loss since.
    assert [e["step"] for e in heard] == [0, 1, 2, 5, 10, 15]
    assert [e["epoch"] for e in heard[1:]] == pytest.approx([0.05, 0.1, 0.25, 0.5, 0.75])
    assert [e["loss"] for e in heard[1:]] == pytest.approx([1.0, 2.0, 4.0, 8.0, 13.0])
    rec.on_epoch(run, {"epoch": 1, "val_loss": 90.0})
    assert heard[-1]["step"] == 20 and heard[-1]["epoch"] == 1.0 and heard[-1]["val_loss"] == 90.0
    assert heard[-1]["loss"] == pytest.approx(18.0)  # steps 16-20
    for s in range(1, 21):  # the second epoch: no snapshot within it
        run.global_step = 20 + s
        rec.on_step(run, _step(2, s))
    assert len(heard) == 7
    rec.on_epoch(run, {"epoch": 2, "val_loss": 80.0})
    run._more = False
    rec.on_epoch(run, {"epoch": 3, "val_loss": 70.0})
    assert [e["epoch"] for e in heard[-2:]] == [2.0, 3.0] and [e["val_loss"] for e in heard[-2:]] == [80.0, 70.0]
    assert heard == rec.snapshots and run.entered == len(heard)  # each with every core
    assert rec.film().frames_with_weights() == list(range(9))  # a short run keeps every frame's weights


def test_the_film_follows_the_model_the_run_keeps():
    images, labels = _images(20), np.arange(20) % 10
    rec = FilmRecorder(images, labels, steps_per_epoch=20, epochs=1)
    kept = _model(7)
    rec.on_start(Run(kept))
    want = FilmRecorder(images, labels, steps_per_epoch=20, epochs=1).record(kept, 0, 0.0)
    assert np.array_equal(rec.snapshots[0]["z"], want["z"])


def test_a_run_without_a_listener_is_filmed_all_the_same():
    images, labels = _images(20), np.arange(20) % 10
    rec = FilmRecorder(images, labels, steps_per_epoch=4, epochs=1)
    run = Run(_model(0), more=False)
    rec.on_start(run)
    rec.on_epoch(run, {"epoch": 1, "val_loss": 1.0})
    assert [s["epoch"] for s in rec.snapshots] == [0.0, 1.0]


def test_a_long_run_is_filmed_every_kth_epoch_and_keeps_fewer_weights():
    """400 epochs: a snapshot after every 2nd epoch (and the first and the last), weights after
    every 26th (and the first and the last: at most 16 epoch ends and those two)."""
    images, labels = _images(10), np.arange(10)
    rec = FilmRecorder(images, labels, steps_per_epoch=2, epochs=400)
    assert not rec.due_in_step(2, 1) and rec.due_in_step(1, 1) and not rec.due_in_step(1, 2)
    snaps = [e for e in range(1, 401) if rec.due_after_epoch(e, last=e == 400)]
    assert snaps == [1] + list(range(2, 401, 2))
    kept = [e for e in range(1, 401) if rec.keeps_weights_after_epoch(e, last=e == 400)]
    assert kept == [1] + list(range(26, 400, 26)) + [400]
    assert rec.due_after_epoch(77, last=True) and rec.keeps_weights_after_epoch(77, last=True)
    assert not rec.due_after_epoch(77) and not rec.keeps_weights_after_epoch(80)  # not the last unless said
    # Driven by the run: the epochs filmed, the weights of some of them.
    model = _model(0)
    run = Run(model)
    for e in (1, 2, 3, 4, 26, 27):
        rec.on_epoch(run, {"epoch": e, "val_loss": float(e)})
    run._more = False
    rec.on_epoch(run, {"epoch": 29, "val_loss": 29.0})  # stopped early: its last epoch is filmed
    assert [s["epoch"] for s in rec.snapshots] == [1.0, 2.0, 4.0, 26.0, 29.0]
    assert rec.film().frames_with_weights() == [0, 3, 4]


@pytest.mark.parametrize("epochs, kept", [(8, set(range(1, 9))), (16, set(range(1, 17))),
                                          (17, {1, *range(2, 17, 2), 17}), (40, {1, *range(3, 40, 3), 40})])
def test_the_weights_are_kept_at_most_16_epoch_ends_besides_the_first_and_last(epochs, kept):
    rec = FilmRecorder(_images(10), np.arange(10), steps_per_epoch=20, epochs=epochs)
    got = {e for e in range(1, epochs + 1) if rec.keeps_weights_after_epoch(e, last=e == epochs)}
    assert got == kept
    assert all(rec.due_after_epoch(e) or e == epochs for e in got)  # each has its snapshot
