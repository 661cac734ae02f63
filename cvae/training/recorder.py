"""What the training film records, and when: the trainer's film collaborator.

:class:`FilmRecorder` encodes a fixed, label-balanced subset of the test set
(:func:`film_subset`: the first 200 test digits of each class, 2,000 in all) and decodes a
small manifold, at the start, several times during the first epoch (the clouds form there)
and after every epoch. Each recording is a snapshot event (``{"kind": "snapshot", ...}``) that
:class:`cvae.core.film.Film` gathers into the run's film. The model's weights are kept too (in
float16, beside the events: the live page does not need them), at the start, at every snapshot
of the first epoch and at most WEIGHT_EPOCHS epochs' ends (and the last), so that those frames
can be explored as models of their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from ..core.film import MANIFOLD_CELL, MANIFOLD_N, MANIFOLD_RANGE, Film, flat_weights
from ..core.latent import IMAGE_SIZE, decode_points, encode_dataset, grid_points, to_uint8
from .callbacks import Callback

SUBSET_PER_DIGIT = 200  # 10 digits x 200 = 2,000 test digits in every snapshot
# Snapshots during the first epoch, as fractions of it: denser at the start, where the blob
# of noise sorts itself into clouds (with the fast recipe, 1/64 of an epoch is 15 steps).
FIRST_EPOCH_FRACTIONS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4)
MAX_EPOCH_SNAPSHOTS = 200  # longer runs record every k-th epoch (and the last), so a film stays small
# Epoch ends whose weights a film keeps (268 KB each in float16 for the tutorial's model): every
# epoch up to 16, else every k-th (and the last). With the first epoch's 9 frames: <= 7 MB a film.
WEIGHT_EPOCHS = 16


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


def epoch_stride(epochs: int, most: int = MAX_EPOCH_SNAPSHOTS) -> int:
    """Record after every ``epoch_stride`` epochs (1 up to ``most`` epochs)."""
    return max(1, math.ceil(epochs / most))


# Recording


def _shrink(images: np.ndarray, cell: int) -> np.ndarray:
    """(N, 28, 28) in [0, 1] -> (N, cell, cell) by area averaging (cell divides 28)."""
    k = images.shape[-1] // cell
    return images.reshape(len(images), cell, k, cell, k).mean(axis=(2, 4))


def small_manifold(model, n: int = MANIFOLD_N, cell: int = MANIFOLD_CELL,
                   box: tuple[float, float, float, float] = MANIFOLD_RANGE) -> np.ndarray | None:
    """The model's manifold as uint8 (n*cell, n*cell), row 0 the highest z2; None unless 2-D."""
    if model.latent_dim != 2:
        return None
    gx, gy = grid_points(n, box[:2], box[2:])
    zz = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    digits = _shrink(decode_points(model, zz), cell) if cell != IMAGE_SIZE else decode_points(model, zz)
    grid = digits.reshape(n, n, cell, cell).transpose(0, 2, 1, 3).reshape(n * cell, n * cell)
    return to_uint8(grid)


class FilmRecorder(Callback):
    """Takes the snapshots of one training run (see the module docstring), as a callback of the
    training loop: at the start, at :func:`first_epoch_steps`, and after every
    :func:`epoch_stride`-th epoch and the last. Each snapshot event goes to ``emit`` (the run's
    listener) as it is taken. Recording draws no random numbers, so a run is the same with or
    without its film.
    """

    def __init__(self, images: torch.Tensor, labels, *, steps_per_epoch: int, epochs: int,
                 batch_size: int = 250, emit: Callable[[dict], object] | None = None):
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
        # A multiple of the snapshots' stride: the epochs whose weights are kept have a snapshot.
        self.weight_stride = self.stride * epoch_stride(math.ceil(self.epochs / self.stride), WEIGHT_EPOCHS)
        self.emit = emit
        self.snapshots: list[dict] = []
        self.weights: dict[int, np.ndarray] = {}  # frame -> the model's weights then (flat float16)
        self.seconds = 0.0  # time spent recording (the film's cost)
        self._sum, self._n = 0.0, 0

    # The training loop's hooks

    def on_start(self, run) -> None:
        self._snap(run, 0.0)

    def on_step(self, run, event: dict) -> None:
        self.add_loss(event["loss"], event["images"])
        if self.due_in_step(event["epoch"], event["step"]):
            self._snap(run, event["epoch"] - 1 + event["step"] / event["steps"])

    def on_epoch(self, run, record: dict) -> None:
        last = not run.more()
        if self.due_after_epoch(record["epoch"], last=last):
            self._snap(run, float(record["epoch"]), record["val_loss"],
                       self.keeps_weights_after_epoch(record["epoch"], last=last))

    def _snap(self, run, epoch: float, val_loss: float | None = None, keep: bool = True) -> None:
        with run.hw.all_cores():  # one batch of 2,000 images: every core on each op
            event = self.record(run.kept, run.global_step, epoch, val_loss, keep_weights=keep)
        if self.emit is not None:
            self.emit(event)

    def add_loss(self, loss: float, images: int) -> None:
        self._sum += float(loss) * images
        self._n += images

    def due_in_step(self, epoch: int, step: int) -> bool:
        return epoch == 1 and step in self.first_steps

    def due_after_epoch(self, epoch: int, last: bool = False) -> bool:
        return last or epoch == 1 or epoch % self.stride == 0

    def keeps_weights_after_epoch(self, epoch: int, last: bool = False) -> bool:
        """Whether the snapshot after ``epoch`` keeps the model's weights (see WEIGHT_EPOCHS); each
        such epoch has a snapshot, the weights' stride being a multiple of the snapshots'."""
        return last or epoch == 1 or epoch % self.weight_stride == 0

    def record(self, model, step: int, epoch: float, val_loss: float | None = None, *,
               keep_weights: bool = True) -> dict:
        """Encode the subset and decode the small manifold with ``model``; returns the event.
        With ``keep_weights``, the model's weights at this frame go into the film too.

        ``loss`` is the mean training loss over the steps since the previous snapshot
        (None at the start); ``val_loss`` the test-set loss when one was just computed."""
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
        if keep_weights:
            self.weights[len(self.snapshots)] = flat_weights(model)
        self.snapshots.append(ev)
        self.seconds += time.perf_counter() - t0
        return ev

    def film(self) -> "Film | None":
        if not self.snapshots:
            return None
        film = Film.from_snapshots(self.snapshots, self.weights)
        film.info["record_seconds"] = self.seconds
        return film

