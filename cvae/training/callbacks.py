"""What happens around the training loop, as callbacks: progress, the epoch log, checkpoints,
and whoever listens (the CLI, the app's training job).

:func:`cvae.training.loop.train` calls each callback's hooks in order with the run's state
(:class:`cvae.training.loop.Run`). A hook that returns False, or raises
:class:`StopTraining`, stops the run after the current step; the best weights so far are
kept. The film's recorder (:class:`cvae.training.recorder.FilmRecorder`) is one more callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..core.checkpoint import make_folder, save_checkpoint
from ..core.model import CVAE


class StopTraining(Exception):
    """Raise from a callback (or return False) to stop after the current step."""


class Callback:
    """The hooks of a run; each does nothing unless overridden."""

    def on_start(self, run) -> bool | None:
        """Before the first step."""

    def on_step(self, run, event: dict) -> bool | None:
        """After every optimizer step: ``{"kind": "step", epoch, step, steps, loss}``."""

    def on_epoch(self, run, record: dict) -> bool | None:
        """After every epoch's validation: the epoch's record (as in ``run.history``)."""

    def on_end(self, run) -> None:
        """Once, after the run has ended for any reason (``run.stop_reason`` says which)."""


def format_epoch(rec: dict, epochs: int) -> str:
    return (f"Epoch {rec['epoch']}/{epochs} - {rec['seconds']:.0f}s - loss: {rec['loss']:.4f}"
            f" - recon: {rec['recon']:.4f} - kl: {rec['kl']:.4f} - val_loss: {rec['val_loss']:.4f}"
            f" - val_recon: {rec['val_recon']:.4f} - val_kl: {rec['val_kl']:.4f}"
            + (f" - val_loss_raw: {rec['val_loss_raw']:.4f}" if "val_loss_raw" in rec else ""))


class EpochLog(Callback):
    """One Keras-style line per epoch to ``log``."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log

    def on_epoch(self, run, record):
        self.log(format_epoch(record, run.planned_epochs))


class ProgressBar(Callback):
    """A tqdm bar over each epoch's steps, with the running mean loss."""

    def __init__(self):
        from tqdm.auto import tqdm  # only for runs that show a bar

        self.tqdm, self.bar = tqdm, None

    def on_step(self, run, event):
        if self.bar is None:
            self.bar = self.tqdm(total=event["steps"], desc=f"Epoch {event['epoch']}/{run.planned_epochs}", leave=False,
                                 unit="step")
        self.bar.update(1)
        if event["step"] % 50 == 1:
            self.bar.set_postfix(loss=f"{run.epoch_mean_loss:.2f}")
        if event["step"] == event["steps"]:
            self.close()

    def on_end(self, run):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Forward(Callback):
    """Hands the step events (``steps``) or the epoch events (``epochs``) to a plain function;
    ``fn(event) is False`` stops the run. The loop places one of each so that a listener hears
    a step before the snapshot taken after it, and an epoch after its snapshot and checkpoint."""

    def __init__(self, fn: Callable[[dict], bool | None], *, steps: bool = True, epochs: bool = True):
        self.fn, self.steps, self.epochs = fn, steps, epochs

    def on_step(self, run, event):
        return self.fn(event) if self.steps else None

    def on_epoch(self, run, record):
        return self.fn({"kind": "epoch", **record}) if self.epochs else None


class Checkpointer(Callback):
    """Saves the best weights so far to ``out`` (atomically) after every improving epoch, so a
    killed run still leaves its best checkpoint, and once more at the end to record how the run
    ended. The checkpoint holds its config, history, film and ``meta`` (plain JSON values, e.g.
    the command line) with the run's facts."""

    def __init__(self, out: str | Path, meta: dict | None = None, film=None):  # film: a FilmRecorder
        self.out, self.meta, self.film = out, dict(meta or {}), film

    def on_start(self, run):
        make_folder(self.out)  # a folder it cannot write is said now, not after the first epoch

    def on_epoch(self, run, record):
        if run.improved:
            self.save(run)

    def on_end(self, run):
        self.save(run)

    def save(self, run) -> None:
        if run.best_state is None:
            return
        snapshot = CVAE.from_config(run.model.config)
        snapshot.load_state_dict(run.best_state)
        film = self.film.film() if self.film is not None else None
        extra = {**self.meta, "best_epoch": run.best_epoch, "best_val_loss": run.best_val,
                 "train_images": run.n, "train_images_sha256": run.data_digest, "stop_reason": run.stop_reason,
                 "device": str(run.hw.device), "arithmetic": run.step.summary(),
                 "wall_seconds": time.perf_counter() - run.t_start, "latent_spread": run.spread}
        if self.film is not None:
            extra["film_seconds"] = self.film.seconds
        save_checkpoint(snapshot, self.out, train_config=run.cfg.to_dict(), history=run.history, film=film,
                        extra=extra)
