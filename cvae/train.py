"""Training with early stopping on the test-set loss, as in the tutorial.

The data sit in memory as one tensor; each step gathers a shuffled batch by index
(no per-sample DataLoader). Progress goes to a callback, which can also stop the run,
so the app drives its own progress bar and stop button through the same loop.
"""

from __future__ import annotations

import copy
import ctypes
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from .augment import random_affine
from .checkpoint import save_checkpoint
from .film import Film, FilmRecorder
from .gemm import loss_and_grads, native_bf16
from .latent import evaluate
from .model import CVAE, ModelConfig, pick_device

# Named recipes. "tutorial" is the Keras tutorial's (val_loss 151.3 at its best epoch, 12,
# early-stopped at 14). "fast" reaches it in 5 and 6 epochs (seeds 0, 1): batches of 64 at four times
# the learning rate (more images per second than batch 32, about as good per epoch), raised
# linearly over the first 2% of the steps (without it, how a run starts depends a lot on the
# seed), then decayed to zero along a cosine, no early stopping. See README, Performance.
RECIPES: dict[str, dict] = {
    "tutorial": dict(epochs=30, batch_size=32, lr=1e-3, optimizer="adam", schedule="constant",
                     patience=2),
    "fast": dict(epochs=8, batch_size=64, lr=4e-3, optimizer="adam", schedule="cosine",
                 warmup=0.02, patience=0),
}
DEFAULT_RECIPE = "fast"
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    recipe: str = "tutorial"  # the field defaults below are the tutorial recipe's values
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | rmsprop
    schedule: str = "constant"  # constant | cosine
    warmup: float = 0.0  # fraction of all steps with a linear warm-up (cosine only)
    min_lr_ratio: float = 0.0  # cosine ends at lr * this
    patience: int = 2  # early stopping on val_loss; 0 turns it off
    min_delta: float = 0.0  # an epoch must beat the best val_loss by more than this
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when > 0; adam only
    augment: float = 0.0  # share of training images turned/zoomed at random in each step (cvae.augment); 0: off
    rotate: float = 8.0  # augmentation: largest turn, degrees
    zoom: float = 0.06  # augmentation: largest change of scale, fraction
    ema: float = 0.0  # > 0: validate and keep an exponential moving average of the weights, this decay per step
    seed: int = 0
    limit: int | None = None  # train on the first N training images
    device: str = "auto"
    eval_batch_size: int = 250  # 10,000 test images: 2.4-3.7 s in batches of 250 vs 4.3-4.6 in 2,000 (caches)
    channels_last: bool = True  # NHWC activations: faster CPU convolutions, same maths
    workers: int = 0  # threads that split each batch (data parallel, CPU); 0: auto (see auto_workers)
    precision: str = "auto"  # CPU: fp32 (stock layers) | bf16 (cvae.gemm products) | auto (bf16 where native)
    film: bool = True  # record the training film (cvae.film) when the test labels are given

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000, f"epochs must be 1..10000, got {self.epochs}"),
            (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
             f"batch size must be 1..65536, got {self.batch_size}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}"),
            (self.optimizer in ("adam", "rmsprop"), f"optimizer must be adam or rmsprop, got {self.optimizer!r}"),
            (self.schedule in ("constant", "cosine"), f"schedule must be constant or cosine, got {self.schedule!r}"),
            (0 <= self.warmup < 1, f"warmup must be in [0, 1), got {self.warmup}"),
            (0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (isinstance(self.patience, int) and self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1,
             f"weight decay must be in [0, 1], got {self.weight_decay}"),
            (self.weight_decay == 0 or self.optimizer == "adam", "weight decay needs the adam optimizer (AdamW)"),
            (math.isfinite(self.augment) and 0 <= self.augment <= 1,
             f"augment (share of images augmented) must be in [0, 1], got {self.augment}"),
            (math.isfinite(self.rotate) and 0 <= self.rotate <= 180, f"rotate must be 0..180 degrees, got {self.rotate}"),
            (math.isfinite(self.zoom) and 0 <= self.zoom < 1, f"zoom must be in [0, 1), got {self.zoom}"),
            (math.isfinite(self.ema) and 0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
            (isinstance(self.workers, int) and 0 <= self.workers <= 64, f"workers must be 0..64, got {self.workers}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
             f"limit must be a positive number of images, got {self.limit}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    @classmethod
    def from_recipe(cls, recipe: str = DEFAULT_RECIPE, **overrides) -> "TrainConfig":
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
        values = dict(RECIPES[recipe])
        values.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in fields(cls)}
        return cls(recipe=recipe, **{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


class StopTraining(Exception):
    """Raise from a callback (or return False) to stop after the current step."""


@dataclass
class TrainResult:
    model: CVAE
    history: list[dict]
    best_epoch: int | None
    best_val_loss: float | None
    stop_reason: str  # completed | early_stopping | stopped | nan
    message: str
    seconds: float
    film: Film | None = None  # the run's snapshots (cvae.film), None when not recorded


def _lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return 1.0
    warm = int(cfg.warmup * total)
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def matmul_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """What ``TrainConfig.precision`` means on ``device``: None for PyTorch's stock layers and
    autograd (float32), or the dtype of :mod:`cvae.gemm`'s matrix products."""
    if precision == "bf16":
        if device.type != "cpu":
            raise ValueError(f"precision bf16 is for training on a CPU (cvae.gemm); on {device.type} use fp32 or auto")
        return torch.bfloat16
    if precision == "auto" and device.type == "cpu" and native_bf16():
        return torch.bfloat16
    return None


def describe_precision(precision: str, device: torch.device) -> str:
    """One phrase for logs: what ``precision`` does on ``device``."""
    if matmul_dtype(precision, device) is None:
        return f"float32, PyTorch's stock layers ({device.type})"
    return "bfloat16 matrix products (cvae.gemm)"


def auto_workers(device: torch.device, batch_size: int, dtype: torch.dtype | None = None) -> int:
    """Threads per batch for ``workers=0``: for the stock layers one per CPU core this process
    may use (at most 8), keeping at least 8 images per shard; 1 on a GPU, and 1 on the
    cvae.gemm path (``dtype`` set), whose large products already use every core through
    PyTorch's threads and whose ~130 small ops per step would queue for Python's GIL in
    several threads (measured: 2,909 / 2,463 img/s with one worker against 2,459 / 2,095 with
    two, README, Performance)."""
    if device.type != "cpu" or dtype is not None:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, batch_size // 8))


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 32 MiB for reuse (once per process).

    Each training step allocates and frees the same few MiB of activations. By default glibc
    serves the larger ones from fresh memory mappings or returns them to the system when the
    top of its heap is free, so the next step touches new pages: about 1,600 page faults per
    step of 32 images here, about 13% of a step on the cvae.gemm path (README, Performance).
    Raising the mmap and trim thresholds keeps those blocks in the heap (at most 64 MiB held
    free). No effect, and False, where the C library is not glibc (macOS, Windows, musl)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    _MALLOC_TUNED = mallopt(m_mmap_threshold, 32 << 20) == 1 and mallopt(m_trim_threshold, 64 << 20) == 1
    return _MALLOC_TUNED


class _Step:
    """Loss and gradients of one batch, on one thread or split over several (data parallel).

    Split: each thread takes one shard of the batch, runs the forward pass and
    ``torch.autograd.grad`` on it (scaled by its share of the batch) with its own noise
    generator, and the main thread sums the shard gradients in a fixed order. The result
    is the whole batch's mean loss and gradient, to float rounding, and seeded runs stay
    reproducible. With one intra-op thread per shard, this model's small convolutions use
    two CPU cores better than PyTorch's intra-op threading does (README, Performance).
    """

    def __init__(self, model: CVAE, workers: int, seed: int, device: torch.device,
                 augment: tuple[float, float, float] = (0.0, 0.0, 0.0), dtype: torch.dtype | None = None):
        self.model = model
        self.dtype = dtype  # None: stock layers + autograd; else cvae.gemm with products in this dtype
        self.augment = augment  # (share, degrees, zoom) for random_affine
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.gens = [torch.Generator(device=device).manual_seed(seed + 1 + i) for i in range(workers)]
        self.pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="cvae-train") if workers > 1 else None

    def _augmented(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.augment[0] > 0:  # draws from the shard's generator, before the noise of z
            x = random_affine(x, gen, *self.augment).contiguous(memory_format=self.fmt)
        return x

    def _loss(self, x: torch.Tensor, gen: torch.Generator):
        return self.model.loss(self._augmented(x, gen), generator=gen)

    @property
    def fmt(self) -> torch.memory_format:
        return torch.channels_last if self.model.decoder.channels_last else torch.contiguous_format

    def _shard(self, x: torch.Tensor, i: int, weight: float):
        if self.dtype is not None:
            parts, grads = loss_and_grads(self.model, self._augmented(x, self.gens[i]), self.gens[i],
                                          self.dtype, weight)
            grads = [g for g, p in zip(grads, self.model.parameters()) if p.requires_grad]  # as self.params
        else:
            parts = self._loss(x, self.gens[i])
            grads = torch.autograd.grad(parts.loss * weight, self.params)
        return grads, torch.stack([parts.loss, parts.recon, parts.kl]).detach() * weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Sets every parameter's ``.grad``; returns the batch's (loss, recon, kl) means."""
        if self.pool is None and self.dtype is not None:
            grads, parts = self._shard(x, 0, 1.0)
            for p, g in zip(self.params, grads):
                p.grad = g
            return parts
        if self.pool is None:
            parts = self._loss(x, self.gens[0])
            for p in self.params:
                p.grad = None
            parts.loss.backward()
            return torch.stack([parts.loss, parts.recon, parts.kl]).detach()
        shards = [s for s in x.tensor_split(len(self.gens)) if len(s)]
        n = len(x)
        futures = [self.pool.submit(self._shard, s, i, len(s) / n) for i, s in enumerate(shards) if i]
        results = [self._shard(shards[0], 0, len(shards[0]) / n)] + [f.result() for f in futures]
        for j, p in enumerate(self.params):
            g = results[0][0][j]
            for r in results[1:]:
                g = g + r[0][j]
            if g.stride() != p.stride():
                # autograd.grad hands back the transposed convolutions' weight gradients in
                # channels_last; .backward() would have matched the parameter's layout, and the
                # fused optimizers read .grad as if it had it (scrambled updates otherwise).
                g = torch.empty_like(p).copy_(g)
            p.grad = g
        return sum(r[1] for r in results)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _make_optimizer(cfg: TrainConfig, params, device: torch.device):
    # One fused kernel per step instead of a dozen small ops per parameter (same maths).
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "adam":
        # Keras' Adam: epsilon 1e-7.
        if cfg.weight_decay > 0:
            return torch.optim.AdamW(params, lr=cfg.lr, eps=1e-7, weight_decay=cfg.weight_decay, **fused)
        return torch.optim.Adam(params, lr=cfg.lr, eps=1e-7, **fused)
    # Keras' RMSprop: rho 0.9, epsilon 1e-7.
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.9, eps=1e-7)


def format_epoch(rec: dict, epochs: int) -> str:
    return (f"Epoch {rec['epoch']}/{epochs} - {rec['seconds']:.0f}s - loss: {rec['loss']:.4f}"
            f" - recon: {rec['recon']:.4f} - kl: {rec['kl']:.4f} - val_loss: {rec['val_loss']:.4f}"
            f" - val_recon: {rec['val_recon']:.4f} - val_kl: {rec['val_kl']:.4f}"
            + (f" - val_loss_raw: {rec['val_loss_raw']:.4f}" if "val_loss_raw" in rec else ""))


def train(cfg: TrainConfig, train_x: torch.Tensor, test_x: torch.Tensor, *,
          model: CVAE | None = None, model_config: ModelConfig | None = None,
          callback: Callable[[dict], bool | None] | None = None, out: str | Path | None = None,
          progress: bool = False, log: Callable[[str], None] | None = None,
          meta: dict | None = None, test_y: torch.Tensor | None = None) -> TrainResult:
    """Train a CVAE; returns the model with the best epoch's weights (lowest val_loss).

    ``callback(event)`` gets ``{"kind": "step", epoch, step, steps, loss}`` after every
    step and ``{"kind": "epoch", **record}`` after every epoch; returning False (or
    raising StopTraining) stops the run, keeping the best weights so far.
    With ``test_y`` (the test labels) and ``cfg.film``, it also gets ``{"kind": "snapshot",
    step, epoch, z, labels, loss, val_loss, manifold, ...}`` at the start, several times in the
    first epoch and after every epoch (cvae.film.FilmRecorder; its return value is ignored),
    and the film goes into the checkpoint and ``TrainResult.film``.
    With ``out``, the best model so far is saved (atomically) after every improving
    epoch, so a killed run still leaves its best checkpoint; ``meta`` (plain JSON values,
    e.g. the command line) is stored in the checkpoint's ``extra``.
    """
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    if model is None:
        model = CVAE.from_config(model_config or ModelConfig())
    model = model.to(device).train()
    if cfg.limit is not None:
        train_x = train_x[: cfg.limit]
    if len(train_x) == 0 or len(test_x) == 0:
        raise ValueError("training needs at least one training and one test image")
    model.decoder.channels_last = cfg.channels_last
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    train_x = train_x.to(device).contiguous(memory_format=fmt)
    test_x = test_x.to(device).contiguous(memory_format=fmt)
    n = len(train_x)
    bs = min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    total_steps = steps * cfg.epochs
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    dtype = matmul_dtype(cfg.precision, device)
    workers = cfg.workers or auto_workers(device, bs, dtype)
    opt = _make_optimizer(cfg, model.parameters(), device)
    if device.type == "cpu":
        keep_freed_memory()
    # Polyak/EMA averaging: the averaged weights are the ones validated, kept and saved.
    ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema))
           if cfg.ema > 0 else None)
    kept = ema.module if ema is not None else model  # the weights that are validated and kept
    base_lrs = [g["lr"] for g in opt.param_groups]
    # Restored if the loss blows up before any epoch finishes (never return NaN weights).
    initial_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})

    film = (FilmRecorder(test_x, test_y, steps_per_epoch=steps, epochs=cfg.epochs, batch_size=cfg.eval_batch_size)
            if cfg.film and test_y is not None else None)
    history: list[dict] = []
    best_state, best_val, best_epoch = None, math.inf, None
    stale = 0
    stop_reason, message = "completed", ""
    global_step = 0
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

    def save_best():
        if out is not None and best_state is not None:
            snapshot = CVAE.from_config(model.config)
            snapshot.load_state_dict(best_state)
            save_checkpoint(snapshot, out, train_config=cfg.to_dict(), history=history,
                            film=film.film() if film is not None else None,
                            extra={**(meta or {}), "best_epoch": best_epoch, "best_val_loss": best_val,
                                   "train_images": n, "stop_reason": stop_reason, "device": str(device),
                                   "workers": workers, "arithmetic": describe_precision(cfg.precision, device),
                                   "wall_seconds": time.perf_counter() - t_start,
                                   **({"film_seconds": film.seconds} if film is not None else {})})

    # Created right before the try, whose finally shuts the pool and restores the threads.
    step = _Step(model, workers, cfg.seed, device, (cfg.augment, cfg.rotate, cfg.zoom), dtype)
    threads_before = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # one core per shard during steps

    def snap(epoch_done: float, val_loss: float | None = None) -> None:
        torch.set_num_threads(threads_before)  # one batch of 2,000 images: all cores on each op
        ev = film.record(kept, global_step, epoch_done, val_loss)
        if workers > 1:
            torch.set_num_threads(1)
        if callback is not None:
            callback(ev)

    try:
        if film is not None:
            snap(0.0)
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gen).to(device)
            sums = torch.zeros(3, dtype=torch.float64)
            seen = 0
            if progress:
                bar = tqdm(total=steps, desc=f"Epoch {epoch}/{cfg.epochs}", leave=False, unit="step")
            for s in range(steps):
                factor = _lr_factor(cfg, global_step, total_steps)
                for g, base in zip(opt.param_groups, base_lrs):
                    g["lr"] = base * factor
                idx = perm[s * bs:(s + 1) * bs]
                x = train_x.index_select(0, idx)
                parts = step(x)
                opt.step()
                if ema is not None:
                    ema.update_parameters(model)
                global_step += 1
                loss_v, recon_v, kl_v = parts.tolist()
                if not math.isfinite(loss_v):
                    stop_reason = "nan"
                    message = (f"training stopped: the loss became {loss_v} at epoch {epoch}, step {s + 1}; "
                               + ("kept the best weights (epoch %d)" % best_epoch if best_epoch
                                  else "no epoch had finished, so the weights are the initial ones")
                               + ". Try a lower learning rate.")
                    raise StopTraining
                k = len(idx)
                seen += k
                sums += torch.tensor([loss_v, recon_v, kl_v], dtype=torch.float64) * k
                if film is not None:
                    film.add_loss(loss_v, k)
                if bar is not None:
                    bar.update(1)
                    if s % 50 == 0:
                        bar.set_postfix(loss=f"{sums[0].item() / seen:.2f}")
                if callback is not None and callback({"kind": "step", "epoch": epoch, "step": s + 1,
                                                      "steps": steps, "loss": loss_v}) is False:
                    stop_reason, message = "stopped", "training stopped by request"
                    raise StopTraining
                if film is not None and film.due_in_step(epoch, s + 1):
                    snap(epoch - 1 + (s + 1) / steps)
            if bar is not None:
                bar.close()
                bar = None
            train_seconds = time.perf_counter() - t0
            torch.set_num_threads(threads_before)  # evaluation is one big batch: all cores on each op
            val = evaluate(kept, test_x, batch_size=cfg.eval_batch_size, seed=cfg.seed)
            tr = (sums / max(seen, 1)).tolist()
            rec = {"epoch": epoch, "seconds": time.perf_counter() - t0, "train_seconds": train_seconds,
                   "images": seen, "loss": tr[0], "recon": tr[1],
                   "kl": tr[2], "val_loss": val["loss"], "val_recon": val["recon"], "val_kl": val["kl"],
                   "lr": opt.param_groups[0]["lr"]}
            if ema is not None:  # the raw weights' loss too, to show what the averaging gains
                rec["val_loss_raw"] = evaluate(model, test_x, batch_size=cfg.eval_batch_size, seed=cfg.seed)["loss"]
                rec["seconds"] = time.perf_counter() - t0
            if workers > 1:
                torch.set_num_threads(1)  # back to one core per shard
            history.append(rec)
            if log is not None:
                log(format_epoch(rec, cfg.epochs))
            if not math.isfinite(rec["val_loss"]):
                stop_reason, message = "nan", f"training stopped: val_loss became {rec['val_loss']} at epoch {epoch}"
                raise StopTraining
            if film is not None and film.due_after_epoch(epoch, last=epoch == cfg.epochs):
                snap(float(epoch), rec["val_loss"])
            if rec["val_loss"] < best_val - cfg.min_delta or best_epoch is None:
                best_val, best_epoch, stale = rec["val_loss"], epoch, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in kept.state_dict().items()})
                save_best()
            else:
                stale += 1
            stop_now = callback is not None and callback({"kind": "epoch", **rec}) is False
            if stop_now:
                stop_reason, message = "stopped", "training stopped by request"
                raise StopTraining
            if cfg.patience and stale >= cfg.patience:
                stop_reason = "early_stopping"
                message = (f"early stopping: val_loss did not improve for {cfg.patience} epochs; "
                           f"best {best_val:.4f} at epoch {best_epoch}")
                break
    except StopTraining:
        if stop_reason == "completed":
            stop_reason, message = "stopped", "training stopped by request"
    finally:
        if bar is not None:
            bar.close()
        step.close()
        torch.set_num_threads(threads_before)
    if best_state is not None:
        model.load_state_dict(best_state)
    elif stop_reason == "nan":
        model.load_state_dict(initial_state)
    if not message:
        message = (f"finished {len(history)} epochs; best val_loss {best_val:.4f} at epoch {best_epoch}"
                   if best_epoch else "finished")
    save_best()  # records the final stop_reason in the file
    model.decoder.channels_last = False  # inference on single points: plain layout is faster
    model.eval()
    return TrainResult(model=model, history=history, best_epoch=best_epoch,
                       best_val_loss=best_val if best_epoch else None, stop_reason=stop_reason,
                       message=message, seconds=time.perf_counter() - t_start,
                       film=film.film() if film is not None else None)
