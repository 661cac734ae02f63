"""The training film's data: a run's snapshots of its latent space, and their storage.

A *snapshot* (recorded while training by :mod:`cvae.training.recorder`) is a plain dict of
NumPy arrays and numbers: the z_mean of a fixed, label-balanced subset of the test set, the
losses so far and a small decoded manifold. :class:`Film` is the whole run's snapshots as a few
arrays, stored in the checkpoint (tensors; float16 z: 8 KB a snapshot) or in an .npz file, and
checked field by field when read back (a film from a file is untrusted input). Figures and the
GIF are drawn by :mod:`cvae.draw.film`.

A film may also keep the model's weights at some of its frames (``weight_frames``, ``weights``:
every parameter in float16, 268 KB a frame for the tutorial's model), so that a frame can be
explored as a model of its own (:meth:`Film.frame_model`): the explorer puts it beside the model
as a second one. Films recorded without them are as valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .files import write_npz

FILM_VERSION = 1
# The small manifold decoded at each snapshot: MANIFOLD_N x MANIFOLD_N digits over the prior's
# central box, each shrunk to MANIFOLD_CELL pixels (uint8: 12.5 KB a snapshot, ~4 KB compressed).
MANIFOLD_N = 8
MANIFOLD_CELL = 14
MANIFOLD_RANGE = (-2.0, 2.0, -2.0, 2.0)  # z1 lo, z1 hi, z2 lo, z2 hi
# What a film read from a file may hold (it is untrusted input).
MAX_SNAPSHOTS = 1_000
MAX_SUBSET = 10_000
MAX_LATENT = 64
MAX_MANIFOLD_SIDE = 512
MAX_FRAME_PARAMS = 10_000_000  # the numbers in one frame's weights (the tutorial's model: 134,165)
FILM_KEYS = ("version", "step", "epoch", "z", "labels", "index", "loss", "val_loss", "manifold",
             "manifold_range", "steps_per_epoch")
WEIGHT_KEYS = ("weight_frames", "weights")  # optional: a film without weights lacks both


class FilmError(ValueError):
    """A film could not be read: one line saying what is wrong."""



def _opt(v) -> float:
    return float("nan") if v is None else float(v)


@dataclass
class Film:
    """A run's snapshots: N frames of M subset digits in a D-dimensional latent space."""

    step: np.ndarray  # (N,) int64, global optimizer steps, 0 = before training
    epoch: np.ndarray  # (N,) float32, fractional epochs done
    z: np.ndarray  # (N, M, D) float16, z_mean of the subset
    labels: np.ndarray  # (M,) uint8
    index: np.ndarray  # (M,) int32, the subset's test-set indices
    loss: np.ndarray  # (N,) float32, NaN where none
    val_loss: np.ndarray  # (N,) float32, NaN where none
    manifold: np.ndarray  # (N, H, W) uint8; (N, 0, 0) for a model that is not 2-D
    manifold_range: np.ndarray  # (4,) float32: z1 lo, z1 hi, z2 lo, z2 hi
    steps_per_epoch: int
    info: dict = field(default_factory=dict)  # provenance (plain JSON), e.g. for the shipped film
    # The frames whose weights are kept (K,) int32, ascending, and those weights (K, P) float16:
    # the model's state_dict flattened in its order. K = 0 for a film without weights.
    weight_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def from_snapshots(cls, snapshots: list[dict], weights: dict[int, np.ndarray] | None = None) -> "Film":
        """From the trainer's snapshot events (checked like a film read from a file) and the
        weights kept at some of them ({frame: flat float16 weights}, as :func:`flat_weights`)."""
        if not snapshots:
            raise FilmError("no snapshots")
        first = snapshots[0]
        m = [s.get("manifold") for s in snapshots]
        manifold = (np.stack([np.asarray(a, np.uint8) for a in m]) if all(a is not None for a in m)
                    else np.zeros((len(snapshots), 0, 0), np.uint8))
        film = cls(step=np.array([s["step"] for s in snapshots], np.int64),
                   epoch=np.array([s["epoch"] for s in snapshots], np.float32),
                   z=np.stack([np.asarray(s["z"], np.float16) for s in snapshots]),
                   labels=np.asarray(first["labels"], np.uint8),
                   index=np.asarray(first.get("index", np.arange(len(first["labels"]))), np.int32),
                   loss=np.array([_opt(s.get("loss")) for s in snapshots], np.float32),
                   val_loss=np.array([_opt(s.get("val_loss")) for s in snapshots], np.float32),
                   manifold=manifold,
                   manifold_range=np.asarray(first.get("manifold_range", MANIFOLD_RANGE), np.float32),
                   steps_per_epoch=int(first.get("steps_per_epoch", 0)))
        if weights:
            frames = sorted(weights)
            film.weight_frames = np.array(frames, np.int32)
            film.weights = np.stack([np.asarray(weights[i], np.float16) for i in frames])
        film.validate()
        return film

    def snapshot(self, i: int) -> dict:
        """Frame ``i`` as a snapshot event (what the live view draws)."""
        return {"kind": "snapshot", "step": int(self.step[i]), "epoch": float(self.epoch[i]), "z": self.z[i],
                "labels": self.labels, "loss": None if np.isnan(self.loss[i]) else float(self.loss[i]),
                "val_loss": None if np.isnan(self.val_loss[i]) else float(self.val_loss[i]),
                "manifold": self.manifold[i] if self.manifold.size else None,
                "manifold_range": tuple(float(v) for v in self.manifold_range), "frame": i}

    def validate(self, latent_dim: int | None = None) -> "Film":
        """Raise FilmError unless every array has the dtype, shape and range a film has."""
        def need(ok, msg):
            if not ok:
                raise FilmError(msg)

        arrays = {"step": (self.step, np.int64, 1), "epoch": (self.epoch, np.float32, 1),
                  "z": (self.z, np.float16, 3), "labels": (self.labels, np.uint8, 1),
                  "index": (self.index, np.int32, 1), "loss": (self.loss, np.float32, 1),
                  "val_loss": (self.val_loss, np.float32, 1), "manifold": (self.manifold, np.uint8, 3),
                  "manifold_range": (self.manifold_range, np.float32, 1)}
        arrays.update({"weight_frames": (self.weight_frames, np.int32, 1), "weights": (self.weights, np.float16, 2)})
        for name, (a, dtype, ndim) in arrays.items():
            need(isinstance(a, np.ndarray), f"film field {name} is not an array")
            need(a.dtype == dtype, f"film field {name} is {a.dtype}, expected {np.dtype(dtype)}")
            need(a.ndim == ndim, f"film field {name} has {a.ndim} dimensions, expected {ndim}")
        n, m, d = self.z.shape
        need(1 <= n <= MAX_SNAPSHOTS, f"the film has {n} snapshots (1..{MAX_SNAPSHOTS} allowed)")
        need(1 <= m <= MAX_SUBSET, f"the film's subset has {m} digits (1..{MAX_SUBSET} allowed)")
        need(1 <= d <= MAX_LATENT, f"the film's latent space has {d} dimensions (1..{MAX_LATENT} allowed)")
        need(latent_dim is None or d == latent_dim,
             f"the film's latent space has {d} dimensions, the model {latent_dim}")
        for name in ("step", "epoch", "loss", "val_loss"):
            need(len(getattr(self, name)) == n, f"film field {name} has {len(getattr(self, name))} entries "
                                                 f"for {n} snapshots")
        need(len(self.labels) == m and len(self.index) == m, "the film's labels or indices do not match its subset")
        need(self.manifold.shape[0] == n, f"the film has {self.manifold.shape[0]} manifolds for {n} snapshots")
        h, w = self.manifold.shape[1:]
        need(h <= MAX_MANIFOLD_SIDE and w <= MAX_MANIFOLD_SIDE and (h == 0) == (w == 0),
             f"the film's manifold is {h}x{w} pixels (at most {MAX_MANIFOLD_SIDE} a side)")
        need(self.manifold_range.shape == (4,) and bool(np.isfinite(self.manifold_range).all())
             and self.manifold_range[0] < self.manifold_range[1] and self.manifold_range[2] < self.manifold_range[3],
             "the film's manifold range is not (z1 lo < hi, z2 lo < hi)")
        need(bool((self.step >= 0).all()) and bool((np.diff(self.step) >= 0).all()),
             "the film's steps are negative or out of order")
        need(bool(np.isfinite(self.epoch).all()) and bool((self.epoch >= 0).all()), "the film's epochs are not finite")
        need(bool(np.isfinite(self.z).all()), "the film's z values contain NaN or infinite values")
        need(bool((self.labels <= 9).all()), "the film's labels are not digits 0-9")
        need(bool((self.index >= 0).all()), "the film's subset indices are negative")
        for name in ("loss", "val_loss"):
            a = getattr(self, name)
            need(not np.isinf(a).any(), f"the film's {name} is infinite")
        need(isinstance(self.steps_per_epoch, int) and 0 <= self.steps_per_epoch <= 10**9,
             "the film's steps_per_epoch is not a count")
        k, p = self.weights.shape
        need(len(self.weight_frames) == k, f"the film keeps weights of {k} frames and names {len(self.weight_frames)}")
        need(k == 0 or 1 <= p <= MAX_FRAME_PARAMS,
             f"a frame's weights hold {p:,} numbers (1..{MAX_FRAME_PARAMS:,} allowed)")
        need(bool(((self.weight_frames >= 0) & (self.weight_frames < n)).all())
             and bool((np.diff(self.weight_frames) > 0).all()),
             "the film's frames with weights are not frames of it, in order")
        need(bool(np.isfinite(self.weights).all()), "the film's weights contain NaN or infinite values")
        return self

    # -- a frame as a model --

    def frames_with_weights(self) -> list[int]:
        """The frames that can be explored as a model (their weights are kept)."""
        return [int(i) for i in self.weight_frames]

    def frame_model(self, i: int, like):
        """Frame ``i`` as a model of its own: a new model of ``like``'s architecture (a
        :class:`cvae.CVAE`) holding the weights the film kept at that frame. FilmError when
        the frame has none, or they do not fit ``like``."""
        hits = np.flatnonzero(self.weight_frames == i)
        if not len(hits):
            raise FilmError(f"the film keeps no weights for frame {i}")
        flat = self.weights[int(hits[0])]
        shapes = {name: t.shape for name, t in like.state_dict().items()}
        total = sum(int(np.prod(s)) for s in shapes.values())
        if flat.size != total:
            raise FilmError(f"frame {i}'s weights hold {flat.size:,} numbers; this model has {total:,}")
        state, at = {}, 0
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            state[name] = torch.from_numpy(flat[at:at + size].astype(np.float32)).reshape(shape)
            at += size
        model = type(like).from_config(like.config)
        model.load_state_dict(state)
        model.eval()
        model.meta = {"film_frame": int(i), "step": int(self.step[i]), "epoch": float(self.epoch[i])}
        return model

    # -- storage: checkpoint (tensors) and .npz (arrays) --

    def _array_keys(self) -> tuple[str, ...]:
        """The fields stored as arrays: the weights' only when some are kept."""
        own = tuple(k for k in FILM_KEYS if k not in ("version", "steps_per_epoch"))
        return own + (WEIGHT_KEYS if len(self.weight_frames) else ())

    def to_tensors(self) -> dict:
        """For ``torch.save`` inside a checkpoint: tensors and ints only (weights_only loads it)."""
        out = {"version": FILM_VERSION, "steps_per_epoch": int(self.steps_per_epoch)}
        for k in self._array_keys():
            out[k] = torch.from_numpy(np.ascontiguousarray(getattr(self, k)).copy())
        return out

    @classmethod
    def from_tensors(cls, payload, latent_dim: int | None = None) -> "Film":
        """From a checkpoint's ``film`` entry; FilmError says what is wrong with it."""
        if not isinstance(payload, dict):
            raise FilmError("the film is not a table of arrays")
        if payload.get("version") != FILM_VERSION:
            raise FilmError(f"film version {payload.get('version')!r} is not supported (this app reads {FILM_VERSION})")
        missing = [k for k in FILM_KEYS if k not in payload]
        if missing:
            raise FilmError(f"the film lacks {', '.join(missing)}")
        keys = [k for k in FILM_KEYS if k not in ("version", "steps_per_epoch")] + _weight_keys(payload)
        arrays = {}
        for k in keys:
            v = payload[k]
            if not isinstance(v, torch.Tensor) or v.layout != torch.strided:
                raise FilmError(f"film field {k} is not a tensor")
            if v.dtype == torch.bfloat16 or v.is_complex():
                raise FilmError(f"film field {k} is {v.dtype}")
            arrays[k] = v.detach().cpu().contiguous().numpy()
        spe = payload["steps_per_epoch"]
        if not isinstance(spe, int) or isinstance(spe, bool):
            raise FilmError("the film's steps_per_epoch is not a count")
        return cls(**arrays, steps_per_epoch=spe).validate(latent_dim)

    def nbytes(self) -> int:
        return sum(getattr(self, k).nbytes for k in self._array_keys())

    def save_npz(self, path, info: dict | None = None) -> Path:
        """Compressed .npz, written atomically; ``info`` (plain JSON) is stored beside the arrays."""
        arrays = {k: getattr(self, k) for k in self._array_keys()}
        arrays["version"] = np.array(FILM_VERSION, np.int64)
        arrays["steps_per_epoch"] = np.array(self.steps_per_epoch, np.int64)
        arrays["info"] = np.array(json.dumps(info if info is not None else self.info))
        return write_npz(path, **arrays)

    @classmethod
    def load_npz(cls, path, latent_dim: int | None = None) -> "Film":
        """Read a film written by :meth:`save_npz` (no pickles); FilmError if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                names = set(f.files)
                missing = [k for k in FILM_KEYS + ("info",) if k not in names]
                if missing:
                    raise FilmError(f"{path}: not a film (lacks {', '.join(missing)})")
                arrays = {k: f[k] for k in FILM_KEYS + ("info",) + tuple(_weight_keys(names))}
        except (OSError, ValueError, EOFError) as exc:
            if isinstance(exc, FilmError):
                raise
            raise FilmError(f"{path}: cannot be read as a film: {exc}") from None
        if int(arrays.pop("version")) != FILM_VERSION:
            raise FilmError(f"{path}: film version is not {FILM_VERSION}")
        spe = int(arrays.pop("steps_per_epoch"))
        try:
            info = json.loads(str(arrays.pop("info")))
        except json.JSONDecodeError:
            info = {}
        return cls(**arrays, steps_per_epoch=spe, info=info if isinstance(info, dict) else {}).validate(latent_dim)


def _weight_keys(names) -> list[str]:
    """The weights' keys a stored film holds: both or neither (FilmError for one alone)."""
    held = [k for k in WEIGHT_KEYS if k in names]
    if len(held) == 1:
        raise FilmError(f"the film holds {held[0]} without {[k for k in WEIGHT_KEYS if k not in held][0]}")
    return held


def flat_weights(model) -> np.ndarray:
    """Every number of ``model``'s state_dict, in its order, as one float16 vector (what a film
    keeps at a frame; :meth:`Film.frame_model` reads it back)."""
    return np.concatenate([t.detach().float().cpu().reshape(-1).numpy()
                           for t in model.state_dict().values()]).astype(np.float16)


def frame_caption(snap: dict) -> str:
    parts = [f"step {snap['step']:,}", f"epoch {snap['epoch']:.2f}"]
    if snap.get("loss") is not None:
        parts.append(f"loss {snap['loss']:.1f}")
    if snap.get("val_loss") is not None:
        parts.append(f"val_loss {snap['val_loss']:.1f}")
    if snap.get("loss") is None and snap.get("val_loss") is None and snap["step"] == 0:
        parts.append("before training")
    return " · ".join(parts)
