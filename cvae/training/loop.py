"""Training with early stopping on the test-set loss, as in the tutorial.

:func:`train` is the loop: epochs of shuffled batches, one optimizer step each, then the test
set's loss. The data sit in memory as one tensor; each step gathers a batch by index (no
per-sample DataLoader). Everything around the loop is a callback
(:mod:`cvae.training.callbacks`): progress, the epoch log, checkpoints, the film, whoever
listens. :class:`Run` holds the run's state and does the arithmetic of one step and one
validation; the machine is set up once (:func:`cvae.training.hardware.set_up`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.data import fingerprint
from ..core.film import Film
from ..core.latent import encode_dataset, evaluate, spread
from ..core.model import CVAE, ModelConfig
from .callbacks import Callback, Checkpointer, EpochLog, Forward, ProgressBar, StopTraining
from .budget import TimeBudget
from .config import TrainConfig, kl_factor, lr_factor
from .hardware import set_up
from .recorder import FilmRecorder
from .pace import Pacer
from .step import WaySteps, make_optimizer

EVAL_BATCH = 250  # 10,000 test images: faster in batches of 250 than of 2,000 (caches)
SPREAD_IMAGES = 2000  # test digits encoded after the run to measure each dimension's spread


@dataclass
class TrainResult:
    model: CVAE
    history: list[dict]
    best_epoch: int | None
    best_val_loss: float | None
    stop_reason: str  # completed | early_stopping | stopped | nan
    message: str
    seconds: float
    film: Film | None = None  # the run's snapshots, None when not recorded
    spread: list[float] | None = None  # z_mean's standard deviation per dimension (SPREAD_IMAGES test digits)


def _cpu_state(model: torch.nn.Module) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


class Run:
    """One run's state: the model and its optimizer, the data on the device, the counters, the
    history and the best epoch so far. Callbacks read it."""

    def __init__(self, cfg: TrainConfig, train_x: torch.Tensor, test_x: torch.Tensor, model: CVAE):
        if cfg.limit is not None:
            train_x = train_x[: cfg.limit]
        if len(train_x) == 0 or len(test_x) == 0:
            raise ValueError("training needs at least one training and one test image")
        self.cfg, self.t_start = cfg, time.perf_counter()
        self.data_digest = fingerprint(train_x)  # which images it trained on, for the checkpoint
        self.n = len(train_x)
        self.batch = min(cfg.batch_size, self.n)
        self.steps = math.ceil(self.n / self.batch)  # per epoch
        self.hw = set_up(cfg.device, cfg.precision, cfg.workers, self.batch)
        self.model = model.to(self.hw.device).train()
        self.model.decoder.channels_last = cfg.channels_last
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.train_x = train_x.to(self.hw.device).contiguous(memory_format=fmt)
        self.test_x = test_x.to(self.hw.device).contiguous(memory_format=fmt)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.opt = make_optimizer(cfg, self.model.parameters(), self.hw.device)
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        # Polyak/EMA averaging: the averaged weights are the ones validated, kept and saved.
        swa = torch.optim.swa_utils
        self.ema = (swa.AveragedModel(self.model, multi_avg_fn=swa.get_ema_multi_avg_fn(cfg.ema))
                    if cfg.ema > 0 else None)
        self.kept = self.ema.module if self.ema is not None else self.model  # validated and kept
        self.way_steps = WaySteps(self.model, cfg.seed, self.hw.device, (cfg.augment, cfg.rotate, cfg.zoom),
                                  max(w.workers for w in self.hw.ways), cfg.free_bits)
        self.step = Pacer(self.hw.ways, self.way_steps, self.hw.use)  # the way that is fastest now
        self.initial_state = _cpu_state(self.model)  # restored if the loss blows up before any epoch ends
        self.history: list[dict] = []
        self.best_state, self.best_val, self.best_epoch, self.improved, self.stale = None, math.inf, None, False, 0
        self.global_step, self.epoch = 0, 0
        self.total_steps = self.steps * cfg.epochs  # a time budget (cvae.training.budget) sets its own
        self.step_seconds = 0.0  # time spent in optimizer steps
        self.stop_reason, self.message = "completed", ""
        self.spread: list[float] | None = None

    @property
    def planned_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps)

    def more(self) -> bool:
        """Another epoch to run (the last one may be partial, under a time budget)."""
        return self.global_step < self.total_steps

    def batches(self):
        """Start epoch ``self.epoch + 1``: its shuffled batches, up to ``total_steps`` in all."""
        self.epoch += 1
        self.t_epoch = time.perf_counter()
        self.sums, self.seen, self.epoch_step = torch.zeros(3, dtype=torch.float64), 0, 0
        self.model.train()
        perm = torch.randperm(self.n, generator=self.gen).to(self.hw.device)
        for s in range(self.steps):
            if self.global_step >= self.total_steps:
                return
            yield self.train_x.index_select(0, perm[s * self.batch:(s + 1) * self.batch])

    def train_step(self, x: torch.Tensor) -> dict:
        """One optimizer step on batch ``x``; returns the step event. StopTraining on a NaN loss."""
        t0 = time.perf_counter()
        factor = lr_factor(self.cfg, self.global_step, self.total_steps)
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = base * factor
        self.way_steps.kl_weight = kl_factor(self.cfg, self.global_step, self.total_steps)
        parts = self.step(x)
        self.opt.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.global_step += 1
        loss, recon, kl = parts.tolist()
        self.step_seconds += time.perf_counter() - t0
        self.epoch_step += 1
        step = self.epoch_step
        if not math.isfinite(loss):
            kept = (f"kept the best weights (epoch {self.best_epoch})" if self.best_epoch
                    else "no epoch had finished, so the weights are the initial ones")
            self.stop(f"training stopped: the loss became {loss} at epoch {self.epoch}, step {step}; {kept}. "
                      "Try a lower learning rate.", "nan")
        self.sums += torch.tensor([loss, recon, kl], dtype=torch.float64) * len(x)
        self.seen += len(x)
        return {"kind": "step", "epoch": self.epoch, "step": step, "steps": self.steps, "loss": loss,
                "images": len(x), "progress": self.global_step / max(self.total_steps, 1)}

    @property
    def epoch_mean_loss(self) -> float:
        return self.sums[0].item() / max(self.seen, 1)

    def validate(self) -> dict:
        """The epoch's record (train means, the test set's loss); tracks the best epoch."""
        train_seconds = time.perf_counter() - self.t_epoch
        with self.hw.all_cores():  # evaluation is one big batch
            val = evaluate(self.kept, self.test_x, batch_size=EVAL_BATCH, seed=self.cfg.seed)
            raw = (evaluate(self.model, self.test_x, batch_size=EVAL_BATCH, seed=self.cfg.seed)["loss"]
                   if self.ema is not None else None)  # what the averaging gains
        tr = (self.sums / max(self.seen, 1)).tolist()
        rec = {"epoch": self.epoch, "seconds": time.perf_counter() - self.t_epoch, "train_seconds": train_seconds,
               "images": self.seen, "loss": tr[0], "recon": tr[1], "kl": tr[2], "val_loss": val["loss"],
               "val_recon": val["recon"], "val_kl": val["kl"], "lr": self.opt.param_groups[0]["lr"]}
        if raw is not None:
            rec["val_loss_raw"] = raw
        self.history.append(rec)
        if not math.isfinite(rec["val_loss"]):
            self.stop(f"training stopped: val_loss became {rec['val_loss']} at epoch {self.epoch}", "nan")
        self.improved = rec["val_loss"] < self.best_val - self.cfg.min_delta or self.best_epoch is None
        if self.improved:
            self.best_val, self.best_epoch, self.stale = rec["val_loss"], self.epoch, 0
            self.best_state = _cpu_state(self.kept)
        else:
            self.stale += 1
        return rec

    def patience_spent(self) -> bool:
        if self.cfg.patience and self.stale >= self.cfg.patience:
            self.stop_reason = "early_stopping"
            self.message = (f"early stopping: val_loss did not improve for {self.cfg.patience} epochs; "
                            f"best {self.best_val:.4f} at epoch {self.best_epoch}")
            return True
        return False

    def stop(self, message: str, reason: str = "stopped"):
        self.stop_reason, self.message = reason, message
        raise StopTraining

    def finish(self) -> None:
        """After the loop: the best weights (or the initial ones after a blow-up), in eval mode."""
        self.way_steps.close()
        self.hw.restore()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.stop_reason == "nan":
            self.model.load_state_dict(self.initial_state)
        if self.stop_reason == "completed" and not self.message:
            n = len(self.history)
            self.message = (f"finished {n} epoch{'' if n == 1 else 's'}; best val_loss {self.best_val:.4f} at epoch "
                            f"{self.best_epoch}" if self.best_epoch else "finished")
        self.model.decoder.channels_last = False  # inference on single points: the plain layout is faster
        self.model.eval()
        if self.history:
            self.spread = spread(encode_dataset(self.model, self.test_x[:SPREAD_IMAGES].contiguous())[0])


class _Hooks:
    """Calls every callback's hook in order; False from any stops the run."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = callbacks

    def __call__(self, name: str, run: Run, *args) -> None:
        for cb in self.callbacks:
            if getattr(cb, name)(run, *args) is False:
                run.stop("training stopped by request")


def train(cfg: TrainConfig, train_x: torch.Tensor, test_x: torch.Tensor, *,
          model: CVAE | None = None, model_config: ModelConfig | None = None,
          callback: Callable[[dict], bool | None] | None = None, out: str | Path | None = None,
          progress: bool = False, log: Callable[[str], None] | None = None,
          meta: dict | None = None, test_y: torch.Tensor | None = None,
          callbacks: list[Callback] = (), started: float | None = None) -> TrainResult:
    """Train a CVAE; returns the model with the best epoch's weights (lowest val_loss).

    ``callback(event)`` gets ``{"kind": "step", epoch, step, steps, loss, images}`` after every
    step and ``{"kind": "epoch", **record}`` after every epoch; returning False (or raising
    StopTraining) stops the run, keeping the best weights so far. With ``test_y`` (the test
    labels) and ``cfg.film`` the run records its film (:class:`FilmRecorder`), whose snapshot
    events (``{"kind": "snapshot", ...}``) also go to ``callback``, and which goes into the
    checkpoint and ``TrainResult.film``. With ``out`` the best model so far is saved after every
    improving epoch (:class:`Checkpointer`; ``meta``, plain JSON values such as the command line,
    goes into its ``extra``). ``progress`` shows a tqdm bar, ``log`` gets a line per epoch;
    ``callbacks`` are more :class:`Callback` objects, called last. With ``cfg.seconds`` the run
    fits that many seconds from ``started`` (``time.perf_counter()``; default: now), epochs
    notwithstanding (:class:`TimeBudget`).
    """
    torch.manual_seed(cfg.seed)
    run = Run(cfg, train_x, test_x, model or CVAE.from_config(model_config or ModelConfig()))
    film = (FilmRecorder(run.test_x, test_y, steps_per_epoch=run.steps, epochs=cfg.epochs, emit=callback)
            if cfg.film and test_y is not None else None)
    listen = callback is not None
    budget = TimeBudget(cfg.seconds, started, film, emit=callback) if cfg.seconds else None
    hooks = _Hooks([cb for cb in (budget, ProgressBar() if progress else None, EpochLog(log) if log else None,
                                  Forward(callback, epochs=False) if listen else None, film,
                                  Checkpointer(out, meta, film) if out is not None else None,
                                  Forward(callback, steps=False) if listen else None, *callbacks) if cb is not None])
    try:
        hooks("on_start", run)
        while run.more():
            for x in run.batches():
                hooks("on_step", run, run.train_step(x))
            hooks("on_epoch", run, run.validate())
            if run.patience_spent():
                break
    except StopTraining:
        if run.stop_reason == "completed":  # raised by a callback itself
            run.stop_reason, run.message = "stopped", "training stopped by request"
    finally:
        run.finish()
    for cb in hooks.callbacks:
        cb.on_end(run)
    return TrainResult(model=run.model, history=run.history, best_epoch=run.best_epoch,
                       best_val_loss=run.best_val if run.best_epoch else None, stop_reason=run.stop_reason,
                       message=run.message, seconds=time.perf_counter() - run.t_start,
                       film=film.film() if film is not None else None, spread=run.spread)
