"""One optimizer step's worth of work: the loss and gradients of a batch, and the optimizer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from ..core.model import CVAE, vae_loss
from .augment import random_affine
from .config import TrainConfig
from .gemm import kl_floor_mask, loss_and_grads


class BatchStep:
    """Loss and gradients of one batch, on one thread or split over several (data parallel).

    Split: each thread takes one shard of the batch, runs the forward pass and
    ``torch.autograd.grad`` on it (scaled by its share of the batch) with its own noise
    generator, and the main thread sums the shard gradients in a fixed order. The result
    is the whole batch's mean loss and gradient, to float rounding, and seeded runs stay
    reproducible. With one intra-op thread per shard, this model's small convolutions use
    two CPU cores better than PyTorch's intra-op threading does (docs/performance.md).
    """

    def __init__(self, model: CVAE, workers: int, seed: int, device: torch.device,
                 augment: tuple[float, float, float] = (0.0, 0.0, 0.0), dtype: torch.dtype | None = None,
                 gens: list[torch.Generator] | None = None, free_bits: float = 0.0):
        self.model = model
        self.dtype = dtype  # None: stock layers + autograd; else cvae.training.gemm with products in this dtype
        self.augment = augment  # (share, degrees, zoom) for random_affine
        self.params = [p for p in model.parameters() if p.requires_grad]
        # One noise generator per shard; ``gens`` (at least ``workers`` of them) shares them with other steps.
        self.gens = (gens or shard_generators(seed, workers, device))[:workers]
        self.kl_weight = 1.0  # the KL term's weight in the gradient (KL annealing); the parts returned are unweighted
        self.free_bits = free_bits  # nats: a dimension's KL term has no gradient under this batch mean
        self.pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="cvae-train") if workers > 1 else None

    def _augmented(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.augment[0] > 0:  # draws from the shard's generator, before the noise of z
            x = random_affine(x, gen, *self.augment).contiguous(memory_format=self.fmt)
        return x

    def _loss(self, x: torch.Tensor, gen: torch.Generator):
        """The batch's loss parts and what the gradient is of: the mean loss, its KL term weighted
        ``kl_weight``, each latent dimension's KL term left out while under ``free_bits``."""
        x = self._augmented(x, gen)
        logits, mu, lv, _ = self.model(x, gen)
        parts = vae_loss(x, logits, mu, lv)
        if self.free_bits > 0:
            kl = (kl_floor_mask(mu.detach(), lv.detach(), self.free_bits)
                  * -0.5 * (1 + lv - mu.square() - lv.exp())).sum(1).mean()
        elif self.kl_weight == 1.0:
            return parts, parts.loss
        else:
            kl = parts.kl
        return parts, parts.recon + self.kl_weight * kl

    @property
    def fmt(self) -> torch.memory_format:
        return torch.channels_last if self.model.decoder.channels_last else torch.contiguous_format

    def _shard(self, x: torch.Tensor, i: int, weight: float):
        if self.dtype is not None:
            parts, grads = loss_and_grads(self.model, self._augmented(x, self.gens[i]), self.gens[i],
                                          self.dtype, weight, kl_weight=self.kl_weight, free_bits=self.free_bits)
            grads = [g for g, p in zip(grads, self.model.parameters()) if p.requires_grad]  # as self.params
        else:
            parts, objective = self._loss(x, self.gens[i])
            grads = torch.autograd.grad(objective * weight, self.params)
        return grads, torch.stack([parts.loss, parts.recon, parts.kl]).detach() * weight

    def __call__(self, x: torch.Tensor, kl_weight: float = 1.0) -> torch.Tensor:
        """Sets every parameter's ``.grad`` (the KL term weighted ``kl_weight`` in it); returns the
        batch's (loss, recon, kl) means."""
        self.kl_weight = kl_weight
        if self.pool is None and self.dtype is not None:
            grads, parts = self._shard(x, 0, 1.0)
            for p, g in zip(self.params, grads):
                p.grad = g
            return parts
        if self.pool is None:
            parts, objective = self._loss(x, self.gens[0])
            for p in self.params:
                p.grad = None
            objective.backward()
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


def shard_generators(seed: int, n: int, device: torch.device) -> list[torch.Generator]:
    """The noise generators of ``n`` shards of a run seeded ``seed``."""
    return [torch.Generator(device=device).manual_seed(seed + 1 + i) for i in range(n)]


class WaySteps:
    """A :class:`BatchStep` for each way a pacer (:class:`cvae.training.pace.Pacer`) may take,
    built at its first step. All of them draw from one set of shard generators, so a run that
    changes its way goes on along the same noise streams instead of starting them again."""

    def __init__(self, model: CVAE, seed: int, device: torch.device, augment: tuple[float, float, float],
                 max_workers: int, free_bits: float = 0.0):
        self.model, self.seed, self.device, self.augment, self.free_bits = model, seed, device, augment, free_bits
        self.gens = shard_generators(seed, max_workers, device)
        self.built: dict = {}
        self.kl_weight = 1.0  # set by the run before each step (KL annealing)

    def __call__(self, way, x: torch.Tensor) -> torch.Tensor:
        step = self.built.get(way)
        if step is None:
            step = self.built[way] = BatchStep(self.model, way.workers, self.seed, self.device, self.augment,
                                               way.dtype, self.gens, self.free_bits)
        return step(x, self.kl_weight)

    def close(self) -> None:
        for step in self.built.values():
            step.close()


def make_optimizer(cfg: TrainConfig, params, device: torch.device) -> torch.optim.Optimizer:
    """The recipe's optimizer with Keras' constants."""
    # One fused kernel per step instead of a dozen small ops per parameter (same maths).
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "adam":
        # Keras' Adam: epsilon 1e-7.
        if cfg.weight_decay > 0:
            return torch.optim.AdamW(params, lr=cfg.lr, eps=1e-7, weight_decay=cfg.weight_decay, **fused)
        return torch.optim.Adam(params, lr=cfg.lr, eps=1e-7, **fused)
    # Keras' RMSprop: rho 0.9, epsilon 1e-7.
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.9, eps=1e-7)
