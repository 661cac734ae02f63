"""The training film: snapshots while training, stored in the checkpoint, replayed, exported.

A short real training on MNIST (1,280 images, 20 steps an epoch, 2 epochs) records the film the
tests check. Under CI=true a missing MNIST fails instead of skipping.
"""

import io
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cvae import CVAE, TrainConfig, load_checkpoint, load_mnist, save_checkpoint

from cvae import train
from cvae.cli import main as cli_main
from cvae.core.film import Film
from cvae.core.latent import encode_dataset
from cvae.core.shipped import SHIPPED_CHECKPOINT, SHIPPED_FILM, replay_for, shipped_film_for
from cvae.draw.film import film_bounds, film_figure, film_gif, live_bounds, live_figure
from cvae.draw.palette import DIGIT_COLORS
from cvae.core.film import FilmError
from cvae.training.recorder import (
    FIRST_EPOCH_FRACTIONS,
    WEIGHT_EPOCHS,
    FilmRecorder,
    film_subset,
    first_epoch_steps,
)
from devkit import DATA_DIR, REPO, cli, require_data

HARNESS = str(REPO / "tests" / "apps" / "film_harness.py")
LIMIT, BATCH = 1280, 64  # 20 steps an epoch
STEPS = LIMIT // BATCH
TOL_FRAME_LOSS = 0.01  # a frame's test loss with its weights in float16: 0.008 off the run's at most (shipped film)
TEST = 3000  # the first 3,000 test digits hold the first 200 of each digit (the film's subset)


@pytest.fixture(scope="module")
def mnist():
    require_data()  # skips without MNIST; fails under CI=true
    train_x, _ = load_mnist("train", DATA_DIR, download=False, limit=LIMIT)
    test_x, test_y = load_mnist("test", DATA_DIR, download=False)
    assert np.array_equal(film_subset(test_y[:TEST]), film_subset(test_y))
    return train_x, test_x[:TEST], test_y[:TEST]  # evaluating 3,000 instead of 10,000: a faster test


def _cfg(**kw):
    # workers fixed: one way of computing a step, so two runs with one seed give the same weights
    return TrainConfig(**{"epochs": 2, "batch_size": BATCH, "lr": 2e-3, "patience": 0, "seed": 0, "workers": 2, **kw})


@pytest.fixture(scope="module")
def run(mnist, tmp_path_factory):
    """One recorded run: (TrainResult, every callback event, checkpoint path)."""
    train_x, test_x, test_y = mnist
    events = []
    out = tmp_path_factory.mktemp("film") / "film.pt"
    res = train(_cfg(), train_x, test_x, test_y=test_y, callback=events.append, out=out)
    return res, events, out


# --- the subset ------------------------------------------------------------------------------

def test_subset_is_the_first_200_of_each_digit_whatever_the_random_state(mnist):
    _, _, test_y = mnist
    np.random.seed(1)
    torch.manual_seed(1)
    a = film_subset(test_y)
    np.random.seed(2)
    torch.manual_seed(2)
    b = film_subset(test_y.numpy())
    assert np.array_equal(a, b) and len(a) == 2000
    y = test_y.numpy()
    assert np.bincount(y[a], minlength=10).tolist() == [200] * 10
    for d in range(10):  # exactly the first 200 test images of each digit, in test-set order
        assert np.array_equal(a[y[a] == d], np.flatnonzero(y == d)[:200])
    assert np.all(np.diff(a) > 0)


def test_snapshot_schedule_is_dense_early_in_the_first_epoch():
    assert first_epoch_steps(938) == [15, 29, 59, 117, 234, 469, 704]  # the fast recipe's epoch
    assert first_epoch_steps(STEPS) == [1, 2, 5, 10, 15]
    assert first_epoch_steps(1) == []  # an epoch of one step: start and end only
    assert len(FIRST_EPOCH_FRACTIONS) >= 5


# --- recording -------------------------------------------------------------------------------

@pytest.mark.slow  # a training of several epochs
def test_snapshots_come_at_the_start_in_the_first_epoch_and_after_every_epoch(run, mnist):
    res, events, _ = run
    _, _, test_y = mnist
    snaps = [e for e in events if e["kind"] == "snapshot"]
    assert [s["step"] for s in snaps] == [0, 1, 2, 5, 10, 15, STEPS, 2 * STEPS]
    assert [round(s["epoch"], 4) for s in snaps] == [0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0]
    # Each one comes right after the step it follows (and, at an epoch's end, before its epoch event).
    kinds = [(e["kind"], e.get("step"), e.get("epoch")) for e in events]
    assert kinds[0] == ("snapshot", 0, 0.0)
    for s in snaps[1:6]:
        i = next(i for i, e in enumerate(events) if e is s)
        assert events[i - 1]["kind"] == "step" and events[i - 1]["step"] == s["step"]
    ends = [i for i, e in enumerate(events) if e["kind"] == "epoch"]
    assert [events[i - 1]["step"] for i in ends] == [STEPS, 2 * STEPS]
    subset = film_subset(test_y)
    for s in snaps:
        assert s["z"].dtype == np.float16 and s["z"].shape == (2000, 2)
        assert s["labels"].dtype == np.uint8 and np.array_equal(s["labels"], test_y.numpy()[subset])
        assert s["manifold"].dtype == np.uint8 and s["manifold"].shape == (112, 112)
        assert pickle.loads(pickle.dumps(s))["step"] == s["step"]  # crosses a process boundary
    assert snaps[0]["loss"] is None and snaps[0]["val_loss"] is None
    assert all(s["loss"] > 0 and s["val_loss"] is None for s in snaps[1:6])
    assert [s["val_loss"] for s in snaps[6:]] == pytest.approx([h["val_loss"] for h in res.history])
    # The clouds move: the start (an untrained encoder) differs from the end.
    assert np.abs(snaps[-1]["z"].astype(float) - snaps[0]["z"].astype(float)).mean() > 0.1
    assert len(res.film) == len(snaps)


def test_the_start_snapshot_is_the_untrained_model_on_the_subset(run, mnist):
    _, events, _ = run
    _, test_x, test_y = mnist
    torch.manual_seed(0)  # train() seeds the model's initial weights with cfg.seed
    z0, _ = encode_dataset(CVAE(), test_x[film_subset(test_y)])
    np.testing.assert_allclose(events[0]["z"].astype(np.float32), z0, rtol=2e-3, atol=2e-3)


def test_the_last_snapshot_is_the_trained_model(run, mnist):
    res, events, _ = run
    _, test_x, test_y = mnist
    assert res.best_epoch == 2
    z, _ = encode_dataset(res.model, test_x[film_subset(test_y)])
    np.testing.assert_allclose(events[-1 if events[-1]["kind"] == "snapshot" else -2]["z"].astype(np.float32),
                               z, rtol=2e-3, atol=2e-3)


def test_every_frame_keeps_the_model_of_its_moment(run, mnist):
    """A frame explored as a model is the model the film encoded at that frame: its weights are
    the run's then, rounded to float16 (the start: the seeded initial model; the end: the model
    trained), and it encodes the film's digits to the film's z at every frame."""
    res, _, _ = run
    _, test_x, test_y = mnist
    film = res.film
    assert film.frames_with_weights() == list(range(len(film)))  # 2 epochs: every frame
    assert film.weights.shape == (len(film), 134_165) and film.weights.dtype == np.float16
    torch.manual_seed(0)
    ends = {0: CVAE(), len(film) - 1: res.model}
    for i, model in ends.items():
        frame = film.frame_model(i, res.model)
        assert frame.meta["film_frame"] == i and frame.meta["step"] == film.step[i]
        for (k, a), b in zip(model.state_dict().items(), frame.state_dict().values()):
            assert torch.equal(b, a.half().float()), (i, k)
    subset = test_x[film_subset(test_y)]
    for i in film.frames_with_weights():
        z, _ = encode_dataset(film.frame_model(i, res.model), subset)
        # float16 weights and float16 z: 8.4e-4 at most measured
        np.testing.assert_allclose(z, film.z[i].astype(np.float32), rtol=1e-3, atol=1e-3, err_msg=f"frame {i}")


def test_a_long_run_keeps_weights_at_the_start_the_first_epoch_and_at_most_16_epoch_ends(mnist):
    _, test_x, test_y = mnist
    for epochs, kept in ((8, set(range(1, 9))), (16, set(range(1, 17))),
                         (40, {1, *range(3, 40, 3), 40}), (1000, {1, *range(65, 1000, 65), 1000})):
        rec = FilmRecorder(test_x, test_y, steps_per_epoch=20, epochs=epochs)
        got = {e for e in range(1, epochs + 1) if rec.keeps_weights_after_epoch(e, last=e == epochs)}
        assert got == kept, epochs
        assert len(got) <= WEIGHT_EPOCHS + 2
        # A run stopped early keeps its last epoch's weights too; epochs without a snapshot keep none.
        assert rec.keeps_weights_after_epoch(epochs // 2 + 1, last=True)
        assert all(rec.due_after_epoch(e) for e in got if e != epochs)
    model = CVAE()
    rec = FilmRecorder(test_x, test_y, steps_per_epoch=20, epochs=40)
    for step, keep in ((0, True), (20, False), (60, True)):
        rec.record(model, step, step / 20, keep_weights=keep)
    film = rec.film()
    assert film.frames_with_weights() == [0, 2] and len(film) == 3


def test_frame_weights_are_read_back_as_written_and_checked(run, tmp_path):
    res, _, out = run
    film = load_checkpoint(out).meta["film"]
    assert np.array_equal(film.weights, res.film.weights) and np.array_equal(film.weight_frames, res.film.weight_frames)
    npz = Film.load_npz(res.film.save_npz(tmp_path / "film.npz"))
    assert np.array_equal(npz.weights, res.film.weights) and npz.frames_with_weights() == res.film.frames_with_weights()
    # A film without weights (an older one) is as valid, stores none, and says so when asked for a frame.
    bare = Film.load_npz(Film(**{k: getattr(res.film, k) for k in
                                 ("step", "epoch", "z", "labels", "index", "loss", "val_loss", "manifold",
                                  "manifold_range", "steps_per_epoch")}).save_npz(tmp_path / "bare.npz"))
    assert bare.frames_with_weights() == [] and "weights" not in np.load(tmp_path / "bare.npz").files
    with pytest.raises(FilmError, match="keeps no weights for frame 0"):
        bare.frame_model(0, res.model)
    # Weights of another architecture: one sentence, no model.
    with pytest.raises(FilmError, match="134,165 numbers; this model has"):
        film.frame_model(0, CVAE(dense=8))


@pytest.mark.slow  # two trainings
def test_recording_changes_nothing_in_the_training(run, mnist):
    res, _, _ = run
    train_x, test_x, test_y = mnist
    plain = train(_cfg(film=False), train_x, test_x, test_y=test_y)
    assert plain.film is None
    for (k, a), b in zip(res.model.state_dict().items(), plain.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_no_labels_no_film_and_the_old_events_are_unchanged(mnist):
    train_x, test_x, _ = mnist
    events = []
    res = train(_cfg(epochs=1, limit=128), train_x, test_x[:500], callback=events.append)
    assert res.film is None and {e["kind"] for e in events} == {"step", "epoch"}
    assert set(events[0]) == {"kind", "epoch", "step", "steps", "loss", "images", "progress"}


# --- the checkpoint --------------------------------------------------------------------------

def test_the_checkpoint_carries_the_film(run):
    res, _, out = run
    model = load_checkpoint(out)
    film = model.meta["film"]
    assert model.meta["film_problem"] is None
    assert isinstance(film, Film) and len(film) == len(res.film)
    assert np.array_equal(film.z, res.film.z) and np.array_equal(film.manifold, res.film.manifold)
    assert np.array_equal(film.step, res.film.step)
    assert film.z.nbytes / len(film) == 8000  # float16: 8 KB a snapshot
    assert model.meta["extra"]["film_seconds"] > 0


def test_a_checkpoint_without_a_film_loads(tmp_path):
    path = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    model = load_checkpoint(path)
    assert model.meta["film"] is None and model.meta["film_problem"] is None
    assert replay_for(model).film is None


def _bad(film: Film, **change) -> dict:
    t = film.to_tensors()
    t.update(change)
    return t


@pytest.mark.parametrize("change, problem", [
    (lambda t, f: t.update(z=torch.from_numpy(f.z.astype(np.float32))), "float32, expected float16"),
    (lambda t, f: t.update(z=torch.from_numpy(f.z[:, :10])), "labels or indices do not match"),
    (lambda t, f: t.update(step=t["step"][:-1]), "entries for"),
    (lambda t, f: t.update(z=torch.full_like(t["z"], float("nan"))), "NaN"),
    (lambda t, f: t.update(z=t["z"][:, :, :1]), "1 dimensions, the model 2"),
    (lambda t, f: t.update(manifold=torch.zeros(len(f), 600, 600, dtype=torch.uint8)), "at most 512"),
    (lambda t, f: t.update(z=t["z"].repeat(126, 1, 1), step=t["step"].repeat(126), epoch=t["epoch"].repeat(126),
                           loss=t["loss"].repeat(126), val_loss=t["val_loss"].repeat(126),
                           manifold=t["manifold"][:, :1, :1].repeat(126, 1, 1)), "snapshots (1..1000"),
    (lambda t, f: t.update(labels=t["labels"] + 10), "not digits"),
    (lambda t, f: t.pop("manifold"), "lacks manifold"),
    (lambda t, f: t.update(version=2), "version 2"),
    (lambda t, f: t.update(steps_per_epoch="many"), "steps_per_epoch"),
    (lambda t, f: t.update(weights=t["weights"].float()), "weights is float32, expected float16"),
    (lambda t, f: t.update(weights=torch.full_like(t["weights"], float("inf"))), "weights contain NaN or infinite"),
    (lambda t, f: t.update(weight_frames=t["weight_frames"] + 1), "not frames of it"),
    (lambda t, f: t.update(weight_frames=t["weight_frames"].flip(0)), "not frames of it"),
    (lambda t, f: t.update(weight_frames=t["weight_frames"][:-1]), "keeps weights of 8 frames and names 7"),
    (lambda t, f: t.pop("weight_frames"), "holds weights without weight_frames"),
])
def test_a_damaged_film_is_named_and_the_model_still_loads(run, tmp_path, change, problem):
    res, _, _ = run
    path = save_checkpoint(res.model, tmp_path / "bad.pt", film=res.film)
    payload = torch.load(path, weights_only=True)
    change(payload["film"], res.film)
    torch.save(payload, path)
    model = load_checkpoint(path)
    assert model.meta["film"] is None
    assert problem in model.meta["film_problem"]
    assert replay_for(model).problem == model.meta["film_problem"]


# --- figures and the GIF ---------------------------------------------------------------------

def test_the_replay_figure_has_one_frame_per_snapshot_on_fixed_axes(run):
    res, _, _ = run
    film = res.film
    fig = film_figure(film)
    assert len(fig.frames) == len(film)
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert len(fig.layout.sliders[0].steps) == len(film)
    assert fig.layout.sliders[0].transition.duration > 0  # smooth transitions
    rng = tuple(fig.layout.xaxis.range) + tuple(fig.layout.yaxis.range)
    assert rng == pytest.approx(film_bounds(film.z))
    for i, frame in enumerate(fig.frames):  # every frame's digits are that snapshot's, coloured by digit
        assert "range" not in (frame.layout.xaxis.to_plotly_json() if frame.layout.xaxis else {})
        for d in (0, 7):
            tr = frame.data[d]
            assert tr.marker.color == DIGIT_COLORS[d]
            np.testing.assert_allclose(tr.x, film.z[i][film.labels == d, 0].astype(float), rtol=1e-3)
    a = np.asarray(fig.frames[0].data[3].x)
    b = np.asarray(fig.frames[-1].data[3].x)
    assert not np.allclose(a, b)


def test_the_gif_has_one_frame_per_snapshot_each_different(run):
    film = run[0].film
    im = Image.open(io.BytesIO(film_gif(film)))
    assert im.format == "GIF" and im.n_frames == len(film)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    assert not np.array_equal(frames[1], frames[-1])
    # The scatter panel holds the digit colours (the palette is exact: no dithering).
    colours = {tuple(c) for c in frames[-1][32:432, 10:410].reshape(-1, 3)}
    assert {tuple(int(DIGIT_COLORS[d][k:k + 2], 16) for k in (1, 3, 5)) for d in range(10)} <= colours


def test_live_view_keeps_its_axes_and_shows_the_latest_snapshot(run):
    film = run[0].film
    snaps = [film.snapshot(i) for i in range(len(film))]
    figs = [live_figure(snaps[:k]) for k in range(1, len(snaps) + 1)]
    ranges = [tuple(f.layout.xaxis.range) + tuple(f.layout.yaxis.range) for f in figs]
    assert ranges[-1] == live_bounds(snaps) and ranges[0] == (-4, 4, -4, 4)  # at least the prior's +-4 box
    for k in range(1, len(snaps)):
        r = ranges[k - 1]
        z = film.z[k].astype(np.float32)  # where this frame's points are (but for 0.5% at each side)
        lo, hi = np.percentile(z, 0.5, axis=0) * 1.05, np.percentile(z, 99.5, axis=0) * 1.05
        fits = r[0] <= lo.min() and hi.max() <= r[1] and r[2] <= lo.min() and hi.max() <= r[3]
        if fits:  # the axes stay put while the clouds fit in them...
            assert ranges[k] == r, k
        else:  # ...and only grow (never shrink) when they leave
            assert ranges[k][1] > r[1] and ranges[k][0] < r[0], k
    assert len(set(ranges)) <= 3
    last = figs[-1]
    np.testing.assert_allclose(last.data[0].x, film.z[-1][film.labels == 0, 0].astype(float), rtol=1e-3)
    assert [t.marker.color for t in last.data[:10]] == list(DIGIT_COLORS)
    assert any(t.type == "image" for t in last.data)
    assert list(last.data[10].x) == pytest.approx([s["epoch"] for s in snaps if s["loss"] is not None])


# --- the page (AppTest on the harness) -------------------------------------------------------

def _harness(env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(HARNESS, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_says_there_is_no_film(tmp_path, monkeypatch):
    path = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    at = _harness({"CVAE_FILM_CKPT": str(path)}, monkeypatch)
    assert any("has no training film" in e.value for e in at.info)
    assert len(at.get("plotly_chart")) == 0 and len(at.get("download_button")) == 0


def test_page_replays_a_film_with_a_gif_download(run, monkeypatch):
    at = _harness({"CVAE_FILM_CKPT": str(run[2])}, monkeypatch)
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and len(at.get("download_button")) == 1
    import json

    spec = json.loads(charts[0].proto.spec)
    assert len(spec["frames"]) == len(run[0].film)
    assert not any("separate run" in c.value for c in at.caption)  # its own film: no note


def test_page_live_view(run, monkeypatch):
    at = _harness({"CVAE_FILM_CKPT": str(run[2]), "CVAE_FILM_LIVE": "3"}, monkeypatch)
    assert len(at.get("plotly_chart")) == 1
    assert any("Snapshot 3: step 2" in c.value for c in at.caption)


# --- the shipped film ------------------------------------------------------------------------

def test_the_shipped_film_is_small_valid_and_for_the_shipped_model():
    path = SHIPPED_FILM
    assert path.is_file(), "assets/film.npz is missing (python -m cvae film RUN.pt --ship)"
    assert path.stat().st_size < 5_000_000  # 16 frames' weights in float16 (4.3 MB) and 0.3 MB of the rest
    film = Film.load_npz(path, latent_dim=2)
    assert film.z.shape[1:] == (2000, 2) and len(film) >= 10
    assert film.frames_with_weights() == list(range(len(film)))  # every frame opens as a model
    assert film.info["separate_run"] is True and film.info["recipe"] == "fast"
    assert film.epoch[0] == 0 and film.epoch[-1] == film.info["epochs"]
    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    assert shipped.meta["film"] is None  # the shipped model has no film of its own...
    replay = replay_for(shipped)
    assert replay.film is not None and replay.shipped
    from ui.film import shipped_note

    assert "separate run of the default recipe" in shipped_note(replay.film)


@pytest.mark.slow  # scores the 10,000 test digits with the film's epoch frames
def test_the_shipped_films_frames_score_the_test_loss_the_run_reported():
    """Each epoch's frame, opened as a model, scores the test loss the run reported at that epoch
    (its weights rounded to float16: the loss moves by 0.01 at most, measured), and encodes the
    film's digits where the film shows them."""
    from cvae.core.latent import evaluate

    require_data()
    film = Film.load_npz(SHIPPED_FILM, latent_dim=2)
    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    test_x, test_y = load_mnist("test", DATA_DIR, download=False)
    seed = film.info["seed"]
    epochs = [i for i in range(len(film)) if not np.isnan(film.val_loss[i])]
    assert len(epochs) == film.info["epochs"]
    for i in (epochs[0], epochs[-1]):
        frame = film.frame_model(i, shipped)
        assert evaluate(frame, test_x, seed=seed)["loss"] == pytest.approx(film.val_loss[i], abs=TOL_FRAME_LOSS), i
        z, _ = encode_dataset(frame, test_x[film.index])
        # float16 weights and z: at most 1.13 x (1e-3 + 1e-3 |z|) over the 16 frames, measured
        np.testing.assert_allclose(z, film.z[i].astype(np.float32), rtol=1.5e-3, atol=1.5e-3)


def test_the_shipped_film_is_shown_only_beside_the_shipped_checkpoint(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copyfile(SHIPPED_CHECKPOINT, copy)
    assert shipped_film_for(copy) is not None  # the same bytes elsewhere: still the shipped model
    other = save_checkpoint(load_checkpoint(SHIPPED_CHECKPOINT), tmp_path / "resaved.pt")
    assert shipped_film_for(other) is None  # another file (here: saved again, new timestamp)
    assert replay_for(load_checkpoint(other)).film is None


def test_page_shows_the_shipped_film_with_its_note(monkeypatch):
    at = _harness({}, monkeypatch)
    assert len(at.get("plotly_chart")) == 1
    assert any("separate run of the default recipe" in c.value for c in at.caption)


# --- the command line ------------------------------------------------------------------------

def test_cli_film_writes_the_gif(run, tmp_path, capsys):
    out = tmp_path / "film.gif"
    assert cli_main(["film", str(run[2]), "--out", str(out)]) == 0
    assert Image.open(out).n_frames == len(run[0].film)
    assert f"{len(run[0].film)} frames" in capsys.readouterr().out


def test_cli_film_without_a_film_fails_clearly(tmp_path):
    path = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    out = tmp_path / "film.gif"
    r = cli("film", path, "--out", out)
    assert r.returncode == 2, r.stderr
    assert "has no training film" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.slow  # a training run
def test_cli_train_records_the_film(small_mnist, tmp_path, capsys):
    """On MNIST's first 1,000 test digits (conftest's small_mnist), whose film subset is all of them."""
    out = tmp_path / "cli.pt"
    args = ["train", "--data-dir", str(small_mnist), "--out", str(out), "--limit", "256", "--epochs", "1",
            "--batch-size", "64", "--no-download", "--quiet"]
    assert cli_main(args) == 0
    film = load_checkpoint(out).meta["film"]
    digits = len(film_subset(load_mnist("test", small_mnist, download=False)[1]))
    assert film is not None and list(film.step) == [0, 1, 2, 3, 4] and film.z.shape[1] == digits == 1000
    assert "Film: 5 snapshots" in capsys.readouterr().out
    assert args[3] == "--out"
    assert cli_main(args[:4] + [str(tmp_path / "off.pt")] + args[5:] + ["--no-film"]) == 0
    assert load_checkpoint(tmp_path / "off.pt").meta["film"] is None
