"""The training film: how the latent space forms while a model trains.

While training, :class:`FilmRecorder` encodes a fixed, label-balanced subset of the test set
(:func:`film_subset`: the first 200 test digits of each class, 2,000 in all) and decodes a
small manifold, at the start, several times during the first epoch (the clouds form there)
and after every epoch. Each recording is a *snapshot*: a plain dict of NumPy arrays and
numbers (picklable, so it can cross a process boundary), the trainer's ``{"kind":
"snapshot", ...}`` callback event. :class:`Film` is the whole run's snapshots as a few arrays:
stored in the checkpoint (float16 z: 8 KB a snapshot) or in an .npz file, checked field by
field when read back, and rendered as a Plotly animation (:func:`film_figure`) or an animated
GIF drawn with Pillow (:func:`film_gif`).

No Streamlit here; Plotly is imported only by the figure builders.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .assets import savez_atomic

FILM_VERSION = 1
SUBSET_PER_DIGIT = 200  # 10 digits x 200 = 2,000 test digits in every snapshot
# Snapshots during the first epoch, as fractions of it: denser at the start, where the blob
# of noise sorts itself into clouds (with the fast recipe, 1/64 of an epoch is 15 steps).
FIRST_EPOCH_FRACTIONS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4)
MAX_EPOCH_SNAPSHOTS = 200  # longer runs record every k-th epoch (and the last), so a film stays small
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
FILM_KEYS = ("version", "step", "epoch", "z", "labels", "index", "loss", "val_loss", "manifold",
             "manifold_range", "steps_per_epoch")


class FilmError(ValueError):
    """A film could not be read: one line saying what is wrong."""


# ---------------------------------------------------------------------------------------------
# Which digits, and when


def film_subset(labels, per_digit: int = SUBSET_PER_DIGIT) -> np.ndarray:
    """Indices (ascending, int64) of the first ``per_digit`` images of each digit 0-9 in
    ``labels``: the same digits for the same labels every time (no random numbers), 200 of
    each class on the MNIST test set. Fewer where a class has fewer images."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64).ravel()
    picks = [np.flatnonzero(y == d)[:per_digit] for d in range(10)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def first_epoch_steps(steps_per_epoch: int) -> list[int]:
    """Steps (1-based, within the first epoch) after which a snapshot is taken, besides the
    start (step 0) and the end of the epoch."""
    out = {max(1, round(f * steps_per_epoch)) for f in FIRST_EPOCH_FRACTIONS}
    return sorted(s for s in out if s < steps_per_epoch)


def epoch_stride(epochs: int) -> int:
    """Record after every ``epoch_stride`` epochs (1 up to MAX_EPOCH_SNAPSHOTS epochs)."""
    return max(1, math.ceil(epochs / MAX_EPOCH_SNAPSHOTS))


# ---------------------------------------------------------------------------------------------
# Recording


def _shrink(images: np.ndarray, cell: int) -> np.ndarray:
    """(N, 28, 28) in [0, 1] -> (N, cell, cell) by area averaging (cell divides 28)."""
    k = images.shape[-1] // cell
    return images.reshape(len(images), cell, k, cell, k).mean(axis=(2, 4))


def small_manifold(model, n: int = MANIFOLD_N, cell: int = MANIFOLD_CELL,
                   box: tuple[float, float, float, float] = MANIFOLD_RANGE) -> np.ndarray | None:
    """The model's manifold as uint8 (n*cell, n*cell), row 0 the highest z2; None unless 2-D."""
    from .latent import IMAGE_SIZE, decode_points, grid_points, to_uint8

    if model.latent_dim != 2:
        return None
    gx, gy = grid_points(n, box[:2], box[2:])
    zz = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    digits = _shrink(decode_points(model, zz), cell) if cell != IMAGE_SIZE else decode_points(model, zz)
    grid = digits.reshape(n, n, cell, cell).transpose(0, 2, 1, 3).reshape(n * cell, n * cell)
    return to_uint8(grid)


class FilmRecorder:
    """Takes the snapshots of one training run (see the module docstring).

    The trainer calls :meth:`add_loss` after every step, asks :meth:`due_in_step` /
    :meth:`due_after_epoch`, and calls :meth:`record` with the weights to film. Recording
    draws no random numbers, so a run is the same with or without its film.
    """

    def __init__(self, images: torch.Tensor, labels, *, steps_per_epoch: int, epochs: int,
                 batch_size: int = 250):
        self.index = film_subset(labels)
        if len(self.index) == 0:
            raise ValueError("the film needs labelled test images")
        idx = torch.as_tensor(self.index, device=images.device)
        # Plain layout: the encoder's inference on 2,000 images is faster so than in channels_last.
        self.x = images.index_select(0, idx).contiguous()
        self.labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)[self.index]
        self.labels = self.labels.astype(np.uint8)
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.first_steps = set(first_epoch_steps(self.steps_per_epoch))
        self.stride = epoch_stride(self.epochs)
        self.snapshots: list[dict] = []
        self.seconds = 0.0  # time spent recording (the film's cost)
        self._sum, self._n = 0.0, 0

    def add_loss(self, loss: float, images: int) -> None:
        self._sum += float(loss) * images
        self._n += images

    def due_in_step(self, epoch: int, step: int) -> bool:
        return epoch == 1 and step in self.first_steps

    def due_after_epoch(self, epoch: int, last: bool = False) -> bool:
        return last or epoch == 1 or epoch % self.stride == 0

    def record(self, model, step: int, epoch: float, val_loss: float | None = None) -> dict:
        """Encode the subset and decode the small manifold with ``model``; returns the event.

        ``loss`` is the mean training loss over the steps since the previous snapshot
        (None at the start); ``val_loss`` the test-set loss when one was just computed."""
        from .latent import encode_dataset

        t0 = time.perf_counter()
        z, _ = encode_dataset(model, self.x, batch_size=self.batch_size)
        layout = model.decoder.channels_last
        model.decoder.channels_last = False  # 64 single digits: the plain layout is ~2x faster
        try:
            manifold = small_manifold(model)
        finally:
            model.decoder.channels_last = layout
        loss = self._sum / self._n if self._n else None
        self._sum, self._n = 0.0, 0
        ev = {"kind": "snapshot", "step": int(step), "epoch": float(epoch),
              "z": z.astype(np.float16), "labels": self.labels,
              "loss": None if loss is None or not math.isfinite(loss) else float(loss),
              "val_loss": None if val_loss is None or not math.isfinite(val_loss) else float(val_loss),
              "manifold": manifold, "manifold_range": MANIFOLD_RANGE,
              "index": self.index.astype(np.int32), "frame": len(self.snapshots),
              "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs}
        self.snapshots.append(ev)
        self.seconds += time.perf_counter() - t0
        return ev

    def film(self) -> "Film | None":
        if not self.snapshots:
            return None
        film = Film.from_snapshots(self.snapshots)
        film.info["record_seconds"] = self.seconds
        return film


# ---------------------------------------------------------------------------------------------
# The film as arrays


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

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def from_snapshots(cls, snapshots: list[dict]) -> "Film":
        """From the trainer's snapshot events (checked like a film read from a file)."""
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
        return self

    # -- storage: checkpoint (tensors) and .npz (arrays) --

    def to_tensors(self) -> dict:
        """For ``torch.save`` inside a checkpoint: tensors and ints only (weights_only loads it)."""
        out = {"version": FILM_VERSION, "steps_per_epoch": int(self.steps_per_epoch)}
        for k in FILM_KEYS:
            if k not in out:
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
        arrays = {}
        for k in FILM_KEYS:
            if k in ("version", "steps_per_epoch"):
                continue
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
        return sum(getattr(self, k).nbytes for k in FILM_KEYS if k not in ("version", "steps_per_epoch"))

    def save_npz(self, path, info: dict | None = None) -> Path:
        """Compressed .npz, written atomically; ``info`` (plain JSON) is stored beside the arrays."""
        arrays = {k: getattr(self, k) for k in FILM_KEYS if k not in ("version", "steps_per_epoch")}
        arrays["version"] = np.array(FILM_VERSION, np.int64)
        arrays["steps_per_epoch"] = np.array(self.steps_per_epoch, np.int64)
        arrays["info"] = np.array(json.dumps(info if info is not None else self.info))
        return savez_atomic(path, **arrays)

    @classmethod
    def load_npz(cls, path, latent_dim: int | None = None) -> "Film":
        """Read a film written by :meth:`save_npz` (no pickles); FilmError if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                names = set(f.files)
                missing = [k for k in FILM_KEYS + ("info",) if k not in names]
                if missing:
                    raise FilmError(f"{path}: not a film (lacks {', '.join(missing)})")
                arrays = {k: f[k] for k in FILM_KEYS + ("info",)}
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


# ---------------------------------------------------------------------------------------------
# Rendering: the shared view (axes, captions), the Plotly animation, the GIF


def _percentile_box(z: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) over z1, z2 holding the 0.5-99.5 percentile range of every frame's points;
    ``z``: (N frames, M points, D) or one frame (M, D). None when no point is finite."""
    a = np.asarray(z, np.float32)
    frames = a.reshape(-1, a.shape[-2], a.shape[-1])[..., :2]
    los, his = [], []
    for f in frames:
        f = f[np.isfinite(f).all(axis=1)]
        if len(f):
            los.append(np.percentile(f, 0.5, axis=0))
            his.append(np.percentile(f, 99.5, axis=0))
    return (np.min(los, axis=0), np.max(his, axis=0)) if los else None


def film_bounds(z: np.ndarray, minimum: float = 1.0) -> tuple[float, float, float, float]:
    """Axes (x lo, x hi, y lo, y hi) for a whole film, square: they hold every frame's points
    (0.5-99.5 percentiles, so a few stray points do not shrink the clouds), so they stay the
    same from frame to frame."""
    box = _percentile_box(z)
    if box is None:
        return (-minimum, minimum, -minimum, minimum)
    lo, hi = box
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * 1.08, minimum)
    return (float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half))


def frame_caption(snap: dict) -> str:
    parts = [f"step {snap['step']:,}", f"epoch {snap['epoch']:.2f}"]
    if snap.get("loss") is not None:
        parts.append(f"loss {snap['loss']:.1f}")
    if snap.get("val_loss") is not None:
        parts.append(f"val_loss {snap['val_loss']:.1f}")
    if snap.get("loss") is None and snap.get("val_loss") is None and snap["step"] == 0:
        parts.append("before training")
    return " · ".join(parts)


def loss_series(film: Film) -> dict:
    """The loss curve's points: training loss (mean since the previous snapshot) and val_loss."""
    ok = ~np.isnan(film.loss)
    vok = ~np.isnan(film.val_loss)
    return {"x": film.epoch[ok].astype(float), "loss": film.loss[ok].astype(float),
            "val_x": film.epoch[vok].astype(float), "val_loss": film.val_loss[vok].astype(float)}


def _loss_range(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return (0.0, 1.0)
    # The first losses of a run are several times the later ones: a log axis shows both.
    lo, hi = float(v.min()), float(v.max())
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.01)
    return (math.log10(lo) - 0.05, math.log10(hi) + 0.05)


def _png_uri(img: np.ndarray) -> str:
    from .plots import png_data_uri

    return png_data_uri(img)


def _scatter_traces(z, labels, go, scattergl: bool = False):
    from .plots import DIGIT_COLORS

    cls = go.Scattergl if scattergl else go.Scatter
    traces = []
    for d in range(10):
        m = labels == d
        # float32: sent as base64 typed arrays, half the bytes of float64 (z is float16 anyway).
        traces.append(cls(x=z[m, 0].astype(np.float32), y=z[m, 1].astype(np.float32), mode="markers", name=str(d),
                          marker=dict(size=4, color=DIGIT_COLORS[d], opacity=0.75),
                          hovertemplate=f"digit {d}<br>z1=%{{x:.2f}}<br>z2=%{{y:.2f}}<extra></extra>"))
    return traces


def _manifold_image(img, go):
    from .plots import pixelate

    scale = max(1, 224 // max(1, img.shape[0]))
    return go.Image(source=_png_uri(pixelate(img, scale)), hoverinfo="skip", name="manifold")


# Where the loss and the manifold go: beside the scatter (replay, in the page's width) or under
# it (live, in the sidebar's narrow column).
_BESIDE = {"loss": (1, 2), "manifold": (2, 2), "manifold_x": "x3"}
_BELOW = {"loss": (2, 1), "manifold": (2, 2), "manifold_x": "x3"}


def _layout(fig, bounds, loss_rng, x_max, manifold: bool, height: int, box=None, where=_BESIDE):
    # constrain="domain": equal scales shrink the plot, never widen the fixed range.
    fig.update_xaxes(range=list(bounds[:2]), title_text="z1", row=1, col=1, zeroline=False, constrain="domain")
    fig.update_yaxes(range=list(bounds[2:]), title_text="z2", row=1, col=1, zeroline=False,
                     scaleanchor="x", scaleratio=1, constrain="domain")
    lr, lc = where["loss"]
    fig.update_xaxes(range=[0, x_max], title_text="epoch", row=lr, col=lc)
    fig.update_yaxes(range=list(loss_rng), type="log", row=lr, col=lc)
    if manifold:
        mr, mc = where["manifold"]
        fig.update_xaxes(visible=False, row=mr, col=mc)
        fig.update_yaxes(visible=False, row=mr, col=mc, scaleanchor=where["manifold_x"])
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), hovermode="closest",
                      legend=dict(title=dict(text="digit", side="left"), itemsizing="constant", orientation="h",
                                  entrywidth=30, x=0, xanchor="left", y=1.0, yanchor="bottom"),
                      uirevision="film", showlegend=True)
    return fig


def _subplots(manifold: bool, box, where=_BESIDE):
    from plotly.subplots import make_subplots

    box_txt = (f"decoded manifold, z1 {box[0]:g}..{box[1]:g}, z2 {box[2]:g}..{box[3]:g}" if box is not None
               else "decoded manifold")
    if where is _BELOW:
        return make_subplots(rows=2, cols=2, row_heights=[0.68, 0.32], specs=[[{"colspan": 2}, None], [{}, {}]],
                             horizontal_spacing=0.12, vertical_spacing=0.12,
                             subplot_titles=("", "loss (log)", "manifold" if manifold else ""))
    if manifold:
        # The scatter's title row holds the digit legend instead.
        return make_subplots(rows=2, cols=2, column_widths=[0.6, 0.4], row_heights=[0.38, 0.62],
                             specs=[[{"rowspan": 2}, {}], [None, {}]], horizontal_spacing=0.08,
                             vertical_spacing=0.16, subplot_titles=("", "loss (-ELBO per image, log)", box_txt))
    return make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.08,
                         subplot_titles=("", "loss (-ELBO per image, log)"))


def film_figure(film: Film, *, height: int = 620, frame_ms: int = 600, transition_ms: int = 450):
    """The replay: the subset's scatter, the loss curve with the frame marked and the small
    manifold, as Plotly animation frames with smooth transitions, a play/pause button and a
    slider over the snapshots. Every frame uses the same axes (:func:`film_bounds`)."""
    import plotly.graph_objects as go

    n = len(film)
    labels = film.labels.astype(np.int64)
    has_m = film.manifold.size > 0
    box = tuple(float(v) for v in film.manifold_range)
    fig = _subplots(has_m, box)
    bounds = film_bounds(film.z)
    series = loss_series(film)
    for t in _scatter_traces(film.z[0].astype(np.float32), labels, go):
        fig.add_trace(t, row=1, col=1)
    fig.add_trace(go.Scatter(x=series["x"], y=series["loss"], mode="lines", name="loss", showlegend=False,
                             line=dict(color="#1f77b4"), hovertemplate="epoch %{x:.2f}<br>loss %{y:.1f}<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=series["val_x"], y=series["val_loss"], mode="markers", name="val_loss",
                             showlegend=False, marker=dict(color="#ff7f0e", size=7),
                             hovertemplate="epoch %{x:.2f}<br>val_loss %{y:.1f}<extra></extra>"), row=1, col=2)

    def marker(i):
        y = film.loss[i] if not np.isnan(film.loss[i]) else film.val_loss[i]
        if np.isnan(y):  # the start: no loss yet; mark the epoch axis at the curve's first value
            y = series["loss"][0] if len(series["loss"]) else 1.0
        return go.Scatter(x=[float(film.epoch[i])], y=[float(y)], mode="markers", name="now", showlegend=False,
                          marker=dict(color="#111111", size=12, symbol="circle-open", line=dict(width=3)),
                          hoverinfo="skip")

    fig.add_trace(marker(0), row=1, col=2)
    moving = list(range(10)) + [12]  # the traces each frame replaces
    if has_m:
        fig.add_trace(_manifold_image(film.manifold[0], go), row=2, col=2)
        moving.append(13)
    frames = []
    for i in range(n):
        data = _scatter_traces(film.z[i].astype(np.float32), labels, go) + [marker(i)]
        if has_m:
            data.append(_manifold_image(film.manifold[i], go))
        frames.append(go.Frame(data=data, traces=moving, name=str(i),
                               layout=dict(title_text=frame_caption(film.snapshot(i)))))
    fig.frames = frames
    anim = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=transition_ms,
                                                                           easing="cubic-in-out"),
                fromcurrent=True, mode="immediate")
    fig.update_layout(
        title=dict(text=frame_caption(film.snapshot(0)), x=0.01, font=dict(size=15)),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.02, xanchor="left", yanchor="top",
                          pad=dict(t=30, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, anim]),
                                   dict(label="❚❚ Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                           transition=dict(duration=0), mode="immediate")])])],
        sliders=[dict(active=0, x=0.2, len=0.8, y=-0.02, yanchor="top", pad=dict(t=30),
                      currentvalue=dict(visible=False),  # the title names the frame
                      transition=dict(duration=transition_ms, easing="cubic-in-out"),
                      steps=[dict(label=f"{film.epoch[i]:.2f}", method="animate",
                                  args=[[str(i)], dict(anim, frame=dict(duration=transition_ms, redraw=True))])
                             for i in range(n)])],
    )
    losses = np.concatenate([series["loss"], series["val_loss"]])
    _layout(fig, bounds, _loss_range(losses), max(1.0, float(film.epoch.max())) * 1.02, has_m, height, box)
    fig.update_layout(margin=dict(l=10, r=10, t=70, b=90))
    return fig


LIVE_MIN_BOUNDS = 4.0  # the live view's axes: at least the prior's +-4 box, grown (never shrunk) to fit


def live_bounds(snapshots: list[dict]) -> tuple[float, float, float, float]:
    """Axes for a run in progress, centred on 0: the prior's +-4 box, grown in whole units
    (never shrunk) only when the clouds of a snapshot so far leave it."""
    box = _percentile_box(np.stack([np.asarray(s["z"], np.float32) for s in snapshots]))
    reach = 0.0 if box is None else float(max(np.abs(box[0]).max(), np.abs(box[1]).max()))
    half = max(LIVE_MIN_BOUNDS, math.ceil(reach * 1.05))
    return (-half, half, -half, half)


def live_figure(snapshots: list[dict], *, height: int = 560):
    """One figure of a run in progress: the latest snapshot's scatter (same axes from frame to
    frame), the loss so far and the small manifold decoded at that moment."""
    import plotly.graph_objects as go

    last = snapshots[-1]
    z = np.asarray(last["z"], np.float32)
    labels = np.asarray(last["labels"]).astype(np.int64)
    man = last.get("manifold")
    box = tuple(last.get("manifold_range") or MANIFOLD_RANGE)
    fig = _subplots(man is not None, box, _BELOW)
    for t in _scatter_traces(z, labels, go, scattergl=True):
        fig.add_trace(t, row=1, col=1)
    xs = [s["epoch"] for s in snapshots if s.get("loss") is not None]
    ys = [s["loss"] for s in snapshots if s.get("loss") is not None]
    vx = [s["epoch"] for s in snapshots if s.get("val_loss") is not None]
    vy = [s["val_loss"] for s in snapshots if s.get("val_loss") is not None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="loss", showlegend=False,
                             line=dict(color="#1f77b4"), marker=dict(size=5)), row=2, col=1)
    fig.add_trace(go.Scatter(x=vx, y=vy, mode="markers", name="val_loss", showlegend=False,
                             marker=dict(color="#ff7f0e", size=7)), row=2, col=1)
    if man is not None:
        fig.add_trace(_manifold_image(np.asarray(man, np.uint8), go), row=2, col=2)
    epochs = max(float(last.get("epochs") or 1), float(last["epoch"]))
    _layout(fig, live_bounds(snapshots), _loss_range(np.array(ys + vy, float)), epochs, man is not None, height, box,
            _BELOW)
    # Narrow (the sidebar): the caption under the chart names the frame; a compact legend.
    fig.update_layout(uirevision="live-film", margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(title=None, font=dict(size=10), entrywidth=26, orientation="h", x=0, y=1.0,
                                  yanchor="bottom"))
    return fig


# -- the GIF, drawn with Pillow (no browser, no Plotly image export) --

GIF_SIZE = (720, 440)
_PANEL = 400  # the scatter's square, pixels
_BG = (255, 255, 255)
_INK = (40, 40, 40)
_FAINT = (200, 200, 200)
_LOSS = (31, 119, 180)
_VAL = (255, 127, 14)


def _hex(c: str) -> tuple[int, int, int]:
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def _palette_image():
    """One fixed palette for every frame (digit colours, greys, the curve colours), so colours
    do not flicker from frame to frame."""
    from PIL import Image

    from .plots import DIGIT_COLORS

    cols = [_BG, _INK, _FAINT, _LOSS, _VAL] + [_hex(c) for c in DIGIT_COLORS]
    # Greys for the manifold, every 4th level, none right beside a digit's grey (digit 7's
    # #7f7f7f): Pillow matches colours approximately and would take the neighbour.
    cols += [(g, g, g) for g in range(0, 256, 4) if all(abs(g - c[0]) > 4 or len(set(c)) > 1 for c in cols)]
    pal = Image.new("P", (1, 1))
    pal.putpalette([v for c in cols for v in c])
    return pal


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def render_frame(film: Film, i: int, bounds=None):
    """Frame ``i`` as an RGB Pillow image: scatter (left), loss curve and manifold (right)."""
    from PIL import Image, ImageDraw

    from .plots import DIGIT_COLORS

    bounds = bounds or film_bounds(film.z)
    W, H = GIF_SIZE
    img = Image.new("RGB", (W, H), _BG)
    d = ImageDraw.Draw(img)
    small, big = _font(12), _font(15)
    # The frame number makes every frame differ (Pillow merges identical neighbours).
    d.text((10, 8), frame_caption(film.snapshot(i)), fill=_INK, font=big)
    d.text((W - 10, 8), f"{i + 1}/{len(film)}", fill=_INK, font=small, anchor="ra")
    x0, y0, side = 10, 32, _PANEL
    d.rectangle([x0, y0, x0 + side, y0 + side], outline=_FAINT)
    z = film.z[i].astype(np.float32)
    px = x0 + (z[:, 0] - bounds[0]) / (bounds[1] - bounds[0]) * side
    py = y0 + side - (z[:, 1] - bounds[2]) / (bounds[3] - bounds[2]) * side
    inside = (px >= x0) & (px <= x0 + side) & (py >= y0) & (py <= y0 + side)
    cols = [_hex(c) for c in DIGIT_COLORS]
    lab = film.labels
    for k in np.flatnonzero(inside):  # in test-set order: no digit is always on top
        d.ellipse([px[k] - 1.6, py[k] - 1.6, px[k] + 1.6, py[k] + 1.6], fill=cols[lab[k]])
    for dg in range(10):  # legend
        ly = y0 + 4 + dg * 15
        d.ellipse([x0 + side - 30, ly + 3, x0 + side - 22, ly + 11], fill=cols[dg])
        d.text((x0 + side - 16, ly), str(dg), fill=_INK, font=small)
    # loss curve (log scale), top right
    lx0, ly0, lw, lh = 430, 32, 280, 120
    d.rectangle([lx0, ly0, lx0 + lw, ly0 + lh], outline=_FAINT)
    d.text((lx0 + 4, ly0 + 2), "loss (log)", fill=_INK, font=small)
    s = loss_series(film)
    lo, hi = _loss_range(np.concatenate([s["loss"], s["val_loss"]]))
    x_max = max(1.0, float(film.epoch.max()))

    def to_px(ep, v):
        return (lx0 + ep / x_max * lw, ly0 + lh - (math.log10(max(v, 1e-3)) - lo) / (hi - lo) * lh)

    pts = [to_px(e, v) for e, v in zip(s["x"], s["loss"])]
    if len(pts) > 1:
        d.line(pts, fill=_LOSS, width=2)
    for e, v in zip(s["val_x"], s["val_loss"]):
        cx, cy = to_px(e, v)
        d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=_VAL)
    now_x = lx0 + float(film.epoch[i]) / x_max * lw
    d.line([(now_x, ly0), (now_x, ly0 + lh)], fill=_INK, width=1)
    d.text((lx0 + lw - 4, ly0 + 2), f"{10 ** hi:.0f}", fill=_INK, font=small, anchor="ra")
    d.text((lx0 + lw - 4, ly0 + lh - 2), f"{10 ** lo:.0f}", fill=_INK, font=small, anchor="rd")
    d.text((lx0, ly0 + lh + 2), "epoch 0", fill=_INK, font=small)
    d.text((lx0 + lw, ly0 + lh + 2), f"{x_max:g}", fill=_INK, font=small, anchor="ra")
    # manifold, bottom right
    if film.manifold.size:
        m = film.manifold[i]
        side_m = min(240, H - (ly0 + lh + 38))
        mimg = Image.fromarray(m, mode="L").resize((side_m, side_m), Image.NEAREST).convert("RGB")
        img.paste(mimg, (lx0 + (lw - side_m) // 2, ly0 + lh + 34))
        d.text((lx0 + 4, ly0 + lh + 18), "decoded manifold", fill=_INK, font=small)
    return img


def film_gif(film: Film, *, frame_ms: int = 500, last_ms: int = 2000) -> bytes:
    """The film as an animated GIF: one frame per snapshot, same axes throughout, looping."""
    from PIL import Image

    bounds = film_bounds(film.z)
    pal = _palette_image()
    frames = [render_frame(film, i, bounds).quantize(palette=pal, dither=Image.Dither.NONE)
              for i in range(len(film))]
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False, disposal=1)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Which film to replay for a model; the shipped film


def _assets_dir() -> Path:
    from .assets import ASSETS_DIR

    return ASSETS_DIR


def shipped_film_path() -> Path:
    """assets/film.npz: the film shipped beside the shipped model (assets/cvae_mnist.pt)."""
    return _assets_dir() / "film.npz"


def file_sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_SHIPPED_CACHE: dict = {}


def shipped_film_for(checkpoint_path) -> Film | None:
    """The shipped film when ``checkpoint_path`` is the very checkpoint it was made for (same
    SHA-256 as recorded in the film), else None. Read once per file version (cached)."""
    film_path = shipped_film_path()
    try:
        if checkpoint_path is None or not film_path.is_file() or not Path(checkpoint_path).is_file():
            return None
        fst, cst = film_path.stat(), Path(checkpoint_path).stat()
    except OSError:
        return None
    key = (str(film_path), fst.st_mtime_ns, fst.st_size, str(Path(checkpoint_path).resolve()), cst.st_mtime_ns,
           cst.st_size)
    if key not in _SHIPPED_CACHE:
        try:
            film = Film.load_npz(film_path)
            ok = film.info.get("checkpoint_sha256") == file_sha256(checkpoint_path)
        except (FilmError, OSError):
            film, ok = None, False
        _SHIPPED_CACHE.clear()
        _SHIPPED_CACHE[key] = film if ok else None
    return _SHIPPED_CACHE[key]


def shipped_note(film: Film) -> str | None:
    """Where a shipped film comes from, for the page (None when it is the model's own run)."""
    info = film.info
    if not info.get("separate_run"):
        return None
    val = info.get("best_val_loss")
    return ("This film comes from a separate run of the default recipe "
            f"(`{info.get('command', 'python -m cvae train')}`"
            + (f", {info['epochs']} epochs, val_loss {val:.1f}" if val is not None and info.get("epochs") else "")
            + "), not from the shipped model itself, which was trained further in several stages and "
              "carries no snapshots of its own. The clouds form the same way; where each one settles differs.")


@dataclass
class Replay:
    """What the replay shows for a model: its film (own, or the shipped one) and why."""

    film: Film | None
    note: str | None = None  # shown above a film that is not the model's own
    problem: str | None = None  # why the model's own film could not be read


def replay_for(model) -> Replay:
    meta = getattr(model, "meta", None) or {}
    if meta.get("film") is not None:
        return Replay(meta["film"])
    problem = meta.get("film_problem")
    shipped = shipped_film_for(meta.get("path"))
    if shipped is not None:
        return Replay(shipped, shipped_note(shipped), problem)
    return Replay(None, None, problem)


def ship_film(checkpoint, out=None, shipped_checkpoint=None, command: str | None = None) -> tuple[Path, Film]:
    """Write ``checkpoint``'s film to assets/film.npz for the shipped model: stamped with the
    shipped checkpoint's SHA-256 (so it is shown only beside that model) and the run's
    provenance (command, epochs, val_loss, wall and film seconds, machine)."""
    from .assets import SHIPPED_CHECKPOINT
    from .checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint)
    film = model.meta.get("film")
    if film is None:
        raise FilmError(f"{checkpoint}: no film to ship ({model.meta.get('film_problem') or 'no snapshots'})")
    shipped_checkpoint = Path(shipped_checkpoint or SHIPPED_CHECKPOINT)
    extra, hist = model.meta["extra"], model.meta["history"]
    same = shipped_checkpoint.is_file() and file_sha256(shipped_checkpoint) == file_sha256(checkpoint)
    info = {"checkpoint_sha256": file_sha256(shipped_checkpoint), "separate_run": not same,
            "source": Path(checkpoint).name, "command": command or extra.get("command"),
            "recipe": model.meta["train_config"].get("recipe"), "seed": model.meta["train_config"].get("seed"),
            "epochs": len(hist), "best_val_loss": extra.get("best_val_loss"),
            "wall_seconds": extra.get("wall_seconds"), "film_seconds": extra.get("film_seconds"),
            "machine": extra.get("machine"), "created": model.meta.get("created"),
            "snapshots": len(film)}
    path = film.save_npz(out or shipped_film_path(), info)
    return path, Film.load_npz(path)
