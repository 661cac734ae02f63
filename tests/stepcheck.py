"""The split-step harness the training tests share: one batch through
:class:`cvae.training.step.BatchStep`, and the same shards' loss through the model's own
autograd as the reference (same noise: shard i draws from a generator seeded ``seed + 1 + i``)."""

from __future__ import annotations

import torch

from cvae.training.step import BatchStep


def split_step(model, x: torch.Tensor, workers: int, *, dtype: torch.dtype | None = None, seed: int = 5,
               augment=(0.0, 0.0, 0.0)) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """BatchStep on ``x``: the (loss, recon, kl) it returns and every parameter's gradient."""
    step = BatchStep(model, workers, seed=seed, device=torch.device("cpu"), augment=augment, dtype=dtype)
    try:
        parts = step(x)
    finally:
        step.close()
    return parts, [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def shard_reference(model, x: torch.Tensor, workers: int, *, seed: int = 5) -> dict:
    """One backward pass over the shards' weighted losses: {"loss", "recon", "grads"}."""
    shards = [s for s in x.tensor_split(workers) if len(s)]
    model.zero_grad(set_to_none=True)
    losses = [model.loss(s, generator=torch.Generator().manual_seed(seed + 1 + i)) for i, s in enumerate(shards)]
    total = sum(lp.loss * len(s) / len(x) for lp, s in zip(losses, shards))
    total.backward()
    recon = sum(lp.recon.item() * len(s) / len(x) for lp, s in zip(losses, shards))
    return {"loss": total.item(), "recon": recon,
            "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()]}
