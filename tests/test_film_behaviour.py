"""The training film's data (cvae/core/film.py) as its callers see it: a film gathered from the
recorder's snapshots, each frame given back, a frame explored as a model, the film stored in a
checkpoint's tensors or an .npz file and read back, and every way a film read from a file (untrusted)
can be wrong, named in one sentence. No training and no MNIST: small films made here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cvae import CVAE
from cvae.core.film import (
    FILM_VERSION,
    MANIFOLD_RANGE,
    Film,
    FilmError,
    flat_weights,
    frame_caption,
)

ARRAYS = ("step", "epoch", "z", "labels", "index", "loss", "val_loss", "manifold", "manifold_range")


def _snap(i: int, m: int = 4, d: int = 2, manifold=True, **kw) -> dict:
    rng = np.random.default_rng(i)
    ev = {"kind": "snapshot", "step": 5 * i, "epoch": i / 2, "z": rng.normal(size=(m, d)).astype(np.float16),
          "labels": np.arange(m, dtype=np.uint8) % 10, "loss": None if i == 0 else 100.0 - i,
          "val_loss": 90.0 - i if i % 2 else None,
          "manifold": np.full((6, 6), 10 * i, np.uint8) if manifold else None,
          "manifold_range": (-3.0, 3.0, -1.0, 2.0), "index": np.arange(m, dtype=np.int32) + 100, "frame": i,
          "steps_per_epoch": 10, "epochs": 2}
    ev.update(kw)
    return ev


def _film(n: int = 3, m: int = 4, d: int = 2, kept: int = 0, **change) -> Film:
    """A valid film of ``n`` frames (``kept`` numbers of weights at frames 0 and n - 1), then ``change``d."""
    film = Film.from_snapshots([_snap(i, m, d) for i in range(n)],
                               {0: np.ones(kept), n - 1: np.full(kept, 2.0)} if kept else None)
    for k, v in change.items():
        setattr(film, k, v)
    return film


def _problem(film: Film, latent_dim=None) -> str:
    with pytest.raises(FilmError) as e:
        film.validate(latent_dim)
    return str(e.value)


# --- gathered from snapshots ---------------------------------------------------------------------

def test_a_film_gathers_its_snapshots_into_arrays():
    snaps = [_snap(i) for i in range(3)]
    film = Film.from_snapshots(snaps)
    assert len(film) == 3
    assert film.step.dtype == np.int64 and film.step.tolist() == [0, 5, 10]
    assert film.epoch.dtype == np.float32 and film.epoch.tolist() == [0.0, 0.5, 1.0]
    assert film.z.dtype == np.float16 and film.z.shape == (3, 4, 2) and np.array_equal(film.z[2], snaps[2]["z"])
    assert film.labels.dtype == np.uint8 and film.labels.tolist() == [0, 1, 2, 3]
    assert film.index.dtype == np.int32 and film.index.tolist() == [100, 101, 102, 103]
    assert film.loss.dtype == np.float32 and np.isnan(film.loss[0]) and film.loss[1:].tolist() == [99.0, 98.0]
    assert film.val_loss.dtype == np.float32 and np.isnan(film.val_loss[0]) and film.val_loss[1] == 89.0
    assert np.isnan(film.val_loss[2])
    assert film.manifold.dtype == np.uint8 and film.manifold.shape == (3, 6, 6) and film.manifold[2, 0, 0] == 20
    assert film.manifold_range.dtype == np.float32 and film.manifold_range.tolist() == [-3.0, 3.0, -1.0, 2.0]
    assert film.steps_per_epoch == 10 and film.info == {}
    assert film.frames_with_weights() == [] and film.weights.shape == (0, 0)


def test_a_film_of_bare_snapshots_takes_the_defaults():
    """Snapshots without their index, range, losses or manifold: the subset in order, the
    central box, no losses and no manifold (a model that is not 2-D)."""
    snaps = [{"step": i, "epoch": float(i), "z": np.zeros((3, 5), np.float32), "labels": [1, 2, 3]} for i in range(2)]
    film = Film.from_snapshots(snaps)
    assert film.index.tolist() == [0, 1, 2] and film.index.dtype == np.int32
    assert tuple(film.manifold_range.tolist()) == MANIFOLD_RANGE
    assert film.manifold.shape == (2, 0, 0) and film.manifold.dtype == np.uint8
    assert np.isnan(film.loss).all() and np.isnan(film.val_loss).all()
    assert film.steps_per_epoch == 0
    assert film.z.dtype == np.float16  # z given in float32: kept in float16
    # One snapshot without a manifold: the film has none.
    film = Film.from_snapshots([_snap(0), _snap(1, manifold=False)])
    assert film.manifold.shape == (2, 0, 0)
    # Manifolds given as plain integers: stored as the film's bytes.
    snaps = [_snap(i) for i in range(2)]
    for i, snap in enumerate(snaps):
        snap["manifold"] = np.full((2, 2), 7 * i)  # int64
    film = Film.from_snapshots(snaps)
    assert film.manifold.dtype == np.uint8 and film.manifold[1].tolist() == [[7, 7], [7, 7]]


def test_no_snapshots_no_film():
    with pytest.raises(FilmError) as e:
        Film.from_snapshots([])
    assert str(e.value) == "no snapshots"


def test_the_weights_kept_are_gathered_in_frame_order():
    snaps = [_snap(i) for i in range(4)]
    film = Film.from_snapshots(snaps, {3: np.full(5, 3.0), 0: np.zeros(5), 2: np.full(5, 2.0)})
    assert film.frames_with_weights() == [0, 2, 3] and film.weight_frames.dtype == np.int32
    assert film.weights.dtype == np.float16 and film.weights[:, 0].tolist() == [0.0, 2.0, 3.0]
    assert Film.from_snapshots(snaps, {}).frames_with_weights() == []


def test_snapshots_that_make_no_film_are_refused():
    with pytest.raises(FilmError, match="the film's steps are negative or out of order"):
        Film.from_snapshots([_snap(1), _snap(0)])


# --- a frame given back ----------------------------------------------------------------------------

def test_each_frame_is_given_back_as_the_snapshot_it_was():
    snaps = [_snap(i) for i in range(3)]
    film = Film.from_snapshots(snaps)
    for i, s in enumerate(snaps):
        got = film.snapshot(i)
        assert got["kind"] == "snapshot" and got["frame"] == i
        assert got["step"] == s["step"] and type(got["step"]) is int
        assert got["epoch"] == s["epoch"] and type(got["epoch"]) is float
        assert np.array_equal(got["z"], s["z"]) and np.array_equal(got["labels"], s["labels"])
        assert got["loss"] == s["loss"] and got["val_loss"] == s["val_loss"]
        assert got["loss"] is None or type(got["loss"]) is float
        assert got["val_loss"] is None or type(got["val_loss"]) is float
        assert np.array_equal(got["manifold"], s["manifold"])
        assert got["manifold_range"] == (-3.0, 3.0, -1.0, 2.0) and all(type(v) is float for v in got["manifold_range"])
    bare = Film.from_snapshots([_snap(0, manifold=False)])
    assert bare.snapshot(0)["manifold"] is None


def test_a_frames_caption_says_where_it_is_in_the_run():
    assert frame_caption({"step": 0, "epoch": 0.0}) == "step 0 · epoch 0.00 · before training"
    assert frame_caption({"step": 1234, "epoch": 1.5, "loss": 160.44}) == "step 1,234 · epoch 1.50 · loss 160.4"
    assert (frame_caption({"step": 20, "epoch": 1.0, "loss": 150.0, "val_loss": 149.96})
            == "step 20 · epoch 1.00 · loss 150.0 · val_loss 150.0")
    assert frame_caption({"step": 20, "epoch": 1.0, "val_loss": 149.0}) == "step 20 · epoch 1.00 · val_loss 149.0"
    assert frame_caption({"step": 3, "epoch": 0.25, "loss": None, "val_loss": None}) == "step 3 · epoch 0.25"
    assert frame_caption({"step": 0, "epoch": 0.0, "loss": 5.0}) == "step 0 · epoch 0.00 · loss 5.0"
    assert frame_caption({"step": 0, "epoch": 0.0, "val_loss": 5.0}) == "step 0 · epoch 0.00 · val_loss 5.0"


# --- a frame as a model ------------------------------------------------------------------------------

def test_a_frame_is_explored_as_the_model_of_its_moment():
    torch.manual_seed(0)
    early, late = CVAE(dense=8), CVAE(dense=8)
    film = Film.from_snapshots([_snap(i) for i in range(3)], {0: flat_weights(early), 2: flat_weights(late)})
    for i, model in ((0, early), (2, late)):
        frame = film.frame_model(i, late)
        assert frame is not late and frame.config == late.config and not frame.training
        assert frame.meta == {"film_frame": i, "step": 5 * i, "epoch": i / 2}
        assert type(frame.meta["step"]) is int and type(frame.meta["epoch"]) is float
        for (k, a), b in zip(model.state_dict().items(), frame.state_dict().values()):
            assert torch.equal(b, a.half().float()), (i, k)
            assert b.dtype == torch.float32
    with pytest.raises(FilmError) as e:
        film.frame_model(1, late)
    assert str(e.value) == "the film keeps no weights for frame 1"
    big = CVAE()
    with pytest.raises(FilmError) as e:
        film.frame_model(2, big)
    total = sum(t.numel() for t in big.state_dict().values())
    assert str(e.value) == f"frame 2's weights hold {flat_weights(late).size:,} numbers; this model has {total:,}"


def test_a_models_flat_weights_are_its_state_in_order_in_float16():
    torch.manual_seed(1)
    model = CVAE(dense=8)
    flat = flat_weights(model)
    want = torch.cat([t.reshape(-1) for t in model.state_dict().values()]).half().numpy()
    assert flat.dtype == np.float16 and np.array_equal(flat, want)


# --- stored and read back ------------------------------------------------------------------------------

def _same(a: Film, b: Film) -> None:
    for k in ARRAYS + ("weight_frames", "weights"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    assert a.steps_per_epoch == b.steps_per_epoch


def test_a_film_in_a_checkpoints_tensors_is_read_back_as_it_was():
    for film in (_film(), _film(kept=7)):
        t = film.to_tensors()
        assert t["version"] == FILM_VERSION and t["steps_per_epoch"] == 10
        assert all(isinstance(v, torch.Tensor) for k, v in t.items() if k not in ("version", "steps_per_epoch"))
        assert ("weights" in t) == ("weight_frames" in t) == bool(len(film.weight_frames))
        back = Film.from_tensors(t, latent_dim=2)
        _same(back, film)
    # The tensors are the film's own copy: changing them changes nothing in the film.
    film = _film()
    t = film.to_tensors()
    t["z"].zero_()
    assert film.z.any()


def test_a_checkpoints_film_that_is_wrong_is_named():
    good = _film(kept=3).to_tensors()
    cases = [
        ("not a table", "the film is not a table of arrays"),
        ({**good, "version": 2}, "film version 2 is not supported (this app reads 1)"),
        ({k: v for k, v in good.items() if k != "version"}, "film version None is not supported (this app reads 1)"),
        ({k: v for k, v in good.items() if k not in ("z", "labels")}, "the film lacks z, labels"),
        ({**good, "z": good["z"].numpy()}, "film field z is not a tensor"),
        ({**good, "loss": good["loss"].to_sparse()}, "film field loss is not a tensor"),
        ({**good, "epoch": good["epoch"].bfloat16()}, "film field epoch is torch.bfloat16"),
        ({**good, "epoch": good["epoch"].to(torch.complex64)}, "film field epoch is torch.complex64"),
        ({**good, "weights": good["weights"].bfloat16()}, "film field weights is torch.bfloat16"),
        ({**good, "steps_per_epoch": 2.0}, "the film's steps_per_epoch is not a count"),
        ({**good, "steps_per_epoch": True}, "the film's steps_per_epoch is not a count"),
        ({k: v for k, v in good.items() if k != "weights"}, "the film holds weight_frames without weights"),
        ({**good, "z": good["z"][:, :, :1]}, "the film's latent space has 1 dimensions, the model 2"),
    ]
    for payload, problem in cases:
        with pytest.raises(FilmError) as e:
            Film.from_tensors(payload, latent_dim=2)
        assert str(e.value) == problem
    # A film stored from a tensor on its way elsewhere (not contiguous) reads the same.
    film = Film.from_tensors({**good, "z": good["z"].transpose(0, 1).contiguous().transpose(0, 1)})
    assert np.array_equal(film.z, good["z"].numpy())


def test_a_film_file_is_read_back_as_it_was(tmp_path):
    film = _film(kept=5)
    film.info = {"run": "a"}
    path = film.save_npz(tmp_path / "f.npz")
    assert path == tmp_path / "f.npz"
    back = Film.load_npz(path, latent_dim=2)
    _same(back, film)
    assert back.info == {"run": "a"}
    # Info given to save_npz is stored instead of the film's own; a film without weights stores none.
    bare = _film()
    Film.load_npz(bare.save_npz(tmp_path / "b.npz", info={"x": 1}))
    assert Film.load_npz(tmp_path / "b.npz").info == {"x": 1}
    with np.load(tmp_path / "b.npz") as f:
        assert "weights" not in f.files and "weight_frames" not in f.files
        assert int(f["version"]) == FILM_VERSION and int(f["steps_per_epoch"]) == 10
    assert Film.load_npz(tmp_path / "b.npz").frames_with_weights() == []


def _write(path, film: Film, **change):
    arrays = {k: getattr(film, k) for k in ARRAYS}
    arrays.update(version=np.array(1), steps_per_epoch=np.array(10), info=np.array(json.dumps({"a": 1})))
    arrays.update(change)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_a_film_files_info_that_is_not_a_table_is_left_out(tmp_path):
    film = _film()
    assert Film.load_npz(_write(tmp_path / "a.npz", film)).info == {"a": 1}
    assert Film.load_npz(_write(tmp_path / "b.npz", film, info=np.array("not json"))).info == {}
    assert Film.load_npz(_write(tmp_path / "c.npz", film, info=np.array("[1, 2]"))).info == {}


def test_a_film_file_that_is_wrong_is_named(tmp_path):
    film = _film()
    p = tmp_path / "x.npz"
    cases = [
        (dict(manifold=None, info=None), f"{p}: not a film (lacks manifold, info)"),
        (dict(version=np.array(2)), f"{p}: film version is not 1"),
        (dict(weights=np.zeros((3, 4), np.float16)), "the film holds weights without weight_frames"),
    ]
    for change, problem in cases:
        _write(p, film, **change)
        with pytest.raises(FilmError) as e:
            Film.load_npz(p)
        assert str(e.value) == problem
    _write(p, film)
    with pytest.raises(FilmError) as e:
        Film.load_npz(p, latent_dim=3)
    assert str(e.value) == "the film's latent space has 2 dimensions, the model 3"
    p.write_bytes(b"not a zip file at all")
    with pytest.raises(FilmError) as e:
        Film.load_npz(p)
    assert str(e.value).startswith(f"{p}: cannot be read as a film: ")
    with pytest.raises(FilmError, match="cannot be read as a film"):
        Film.load_npz(tmp_path / "missing.npz")
    # A pickled array is refused, not unpickled.
    np.savez(p, **{**{k: getattr(film, k) for k in ARRAYS}, "version": np.array(1), "steps_per_epoch": np.array(10),
                   "info": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(FilmError, match="cannot be read as a film"):
        Film.load_npz(p)


def test_a_films_size_is_its_arrays(tmp_path):
    film = _film(kept=9)
    want = sum(getattr(film, k).nbytes for k in ARRAYS) + film.weights.nbytes + film.weight_frames.nbytes
    assert film.nbytes() == want
    bare = _film()
    assert bare.nbytes() == sum(getattr(bare, k).nbytes for k in ARRAYS)


# --- every way a film can be wrong ---------------------------------------------------------------------

def test_a_valid_film_is_valid():
    film = _film(kept=4)
    assert film.validate() is film and film.validate(2) is film


def test_each_fields_type_and_shape_are_checked():
    film = _film(kept=2)
    assert _problem(_film(step=[0, 5, 10])) == "film field step is not an array"
    assert _problem(_film(epoch=film.epoch.astype(np.float64))) == "film field epoch is float64, expected float32"
    assert _problem(_film(z=film.z[0])) == "film field z has 2 dimensions, expected 3"
    for name in ARRAYS:
        a = getattr(film, name)
        wrong = np.nan_to_num(a).astype(np.int16 if a.dtype != np.int16 else np.int32)
        assert _problem(_film(**{name: wrong})) == f"film field {name} is {wrong.dtype}, expected {a.dtype}"
        assert _problem(_film(**{name: a[None]})) == f"film field {name} has {a.ndim + 1} dimensions, expected {a.ndim}"
    for name in ("weight_frames", "weights"):
        a = getattr(film, name)
        assert _problem(_film(kept=2, **{name: a.astype(np.int64)})) == \
            f"film field {name} is int64, expected {a.dtype}"
        assert _problem(_film(kept=2, **{name: a[None]})) == \
            f"film field {name} has {a.ndim + 1} dimensions, expected {a.ndim}"


def _sized(n: int, m: int, d: int) -> Film:
    return Film(step=np.zeros(n, np.int64), epoch=np.zeros(n, np.float32), z=np.zeros((n, m, d), np.float16),
                labels=np.zeros(m, np.uint8), index=np.zeros(m, np.int32), loss=np.zeros(n, np.float32),
                val_loss=np.zeros(n, np.float32), manifold=np.zeros((n, 0, 0), np.uint8),
                manifold_range=np.array(MANIFOLD_RANGE, np.float32), steps_per_epoch=1)


def test_a_films_sizes_are_bounded():
    for n, m, d in ((1, 1, 1), (1000, 1, 1), (1, 10_000, 1), (1, 1, 64)):
        _sized(n, m, d).validate()
    assert _problem(_sized(1001, 1, 1)) == "the film has 1001 snapshots (1..1000 allowed)"
    assert _problem(_sized(0, 1, 1)) == "the film has 0 snapshots (1..1000 allowed)"
    assert _problem(_sized(1, 10_001, 1)) == "the film's subset has 10001 digits (1..10000 allowed)"
    assert _problem(_sized(1, 0, 1)) == "the film's subset has 0 digits (1..10000 allowed)"
    assert _problem(_sized(1, 1, 65)) == "the film's latent space has 65 dimensions (1..64 allowed)"
    assert _problem(_sized(1, 1, 0)) == "the film's latent space has 0 dimensions (1..64 allowed)"


def test_a_films_fields_agree_in_length():
    film = _film()
    for name in ("step", "epoch", "loss", "val_loss"):
        assert _problem(_film(**{name: getattr(film, name)[:2]})) == f"film field {name} has 2 entries for 3 snapshots"
    assert _problem(_film(labels=film.labels[:3])) == "the film's labels or indices do not match its subset"
    assert _problem(_film(index=film.index[:3])) == "the film's labels or indices do not match its subset"
    assert _problem(_film(manifold=film.manifold[:2])) == "the film has 2 manifolds for 3 snapshots"


def test_a_films_manifold_is_bounded():
    for h, w in ((512, 512), (0, 0), (1, 512)):
        _film(manifold=np.zeros((3, h, w), np.uint8)).validate()
    for h, w in ((513, 4), (4, 513), (0, 4), (4, 0)):
        assert _problem(_film(manifold=np.zeros((3, h, w), np.uint8))) == \
            f"the film's manifold is {h}x{w} pixels (at most 512 a side)"


def test_a_films_manifold_range_is_two_ordered_finite_intervals():
    bad = "the film's manifold range is not (z1 lo < hi, z2 lo < hi)"
    for r in ((0, 1, 0), (0, 1, 0, 1, 2), (1, 1, 0, 1), (2, 1, 0, 1), (0, 1, 1, 1), (0, 1, 2, 1),
              (0, np.inf, 0, 1), (np.nan, 1, 0, 1), (0, 1, -np.inf, 1)):
        assert _problem(_film(manifold_range=np.array(r, np.float32))) == bad, r
    _film(manifold_range=np.array((-1, -0.5, 3, 4), np.float32)).validate()


def test_a_films_numbers_are_in_range():
    film = _film()
    assert _problem(_film(step=np.array([-1, 5, 10]))) == "the film's steps are negative or out of order"
    assert _problem(_film(step=np.array([0, 10, 5]))) == "the film's steps are negative or out of order"
    _film(step=np.array([0, 5, 5])).validate()  # two frames of one step (the end of the first epoch)
    for e in ((0, np.nan, 1), (0, np.inf, 1), (0, -0.5, 1)):
        assert _problem(_film(epoch=np.array(e, np.float32))) == "the film's epochs are not finite"
    _film(epoch=np.array((0, 0, 0), np.float32)).validate()
    for v in (np.nan, np.inf, -np.inf):
        z = film.z.copy()
        z[1, 2, 1] = v
        assert _problem(_film(z=z)) == "the film's z values contain NaN or infinite values"
    assert _problem(_film(labels=np.array([0, 1, 10, 3], np.uint8))) == "the film's labels are not digits 0-9"
    _film(labels=np.array([9, 9, 0, 0], np.uint8)).validate()
    assert _problem(_film(index=np.array([0, -1, 2, 3], np.int32))) == "the film's subset indices are negative"
    _film(index=np.array([0, 0, 0, 0], np.int32)).validate()
    for name in ("loss", "val_loss"):
        for v in (np.inf, -np.inf):
            a = getattr(film, name).copy()
            a[2] = v
            assert _problem(_film(**{name: a})) == f"the film's {name} is infinite"
        _film(**{name: np.full(3, np.nan, np.float32)}).validate()  # none recorded yet


def test_a_films_steps_per_epoch_is_a_count():
    for v in (0, 10**9):
        _film(steps_per_epoch=v).validate()
    for v in (-1, 10**9 + 1, 2.0, "10"):
        assert _problem(_film(steps_per_epoch=v)) == "the film's steps_per_epoch is not a count"


def test_a_films_weights_are_checked():
    film = _film(kept=3)
    assert _problem(_film(kept=3, weight_frames=np.array([0], np.int32))) == \
        "the film keeps weights of 2 frames and names 1"
    for frames in ((0, 3), (-1, 2), (2, 0), (1, 1)):
        assert _problem(_film(kept=3, weight_frames=np.array(frames, np.int32))) == \
            "the film's frames with weights are not frames of it, in order", frames
    _film(kept=3, weight_frames=np.array([0, 1], np.int32)).validate()
    assert _problem(_film(kept=3, weights=np.zeros((2, 0), np.float16))) == \
        "a frame's weights hold 0 numbers (1..10,000,000 allowed)"
    _film(kept=3, weights=np.zeros((2, 1), np.float16)).validate()
    one = _film(weight_frames=np.array([0], np.int32), weights=np.zeros((1, 10_000_000), np.float16))
    one.validate()
    one.weights = np.zeros((1, 10_000_001), np.float16)
    assert _problem(one) == "a frame's weights hold 10,000,001 numbers (1..10,000,000 allowed)"
    for v in (np.nan, np.inf):
        w = film.weights.copy()
        w[1, 2] = v
        assert _problem(_film(kept=3, weights=w)) == "the film's weights contain NaN or infinite values"
    # No weights kept: any width of nothing is no weights.
    _film(weights=np.zeros((0, 5), np.float16)).validate()
