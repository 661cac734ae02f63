"""A training step as the run sees it (cvae/training/step.py): the optimizer each recipe asks
for, and a run's steps along the ways a pacer takes (one noise stream across them, the KL
weight of the moment). No MNIST: random images, a few seconds in all."""

from __future__ import annotations

import math

import pytest
import torch

from cvae import CVAE, TrainConfig
from cvae.training.pace import Way
from cvae.training.step import BatchStep, WaySteps, make_optimizer, shard_generators

CPU = torch.device("cpu")


# --- the optimizer -----------------------------------------------------------------------------

def _one_update(cfg: TrainConfig, grad: float, device=CPU, start: float = 1.0):
    """The optimizer's first step on a parameter ``start`` with gradient ``grad``: (the optimizer,
    the parameter's change)."""
    p = torch.nn.Parameter(torch.tensor([start]))
    opt = make_optimizer(cfg, [p], device)
    p.grad = torch.tensor([grad])
    opt.step()
    return opt, p.item() - start


def test_adam_is_keras_adam_with_its_epsilon():
    """Adam's first step is lr * g / (|g| + 1e-7): a gradient of 1e-7 moves the weight by half the
    learning rate (torch's own 1e-8 would move it by 10/11 of it)."""
    cfg = TrainConfig(optimizer="adam", lr=0.01)
    opt, moved = _one_update(cfg, 1e-7)
    assert moved == pytest.approx(-0.01 * 1e-7 / (1e-7 + 1e-7), rel=1e-3)
    assert type(opt) is torch.optim.Adam  # no weight decay of any kind
    # A larger gradient: the step is the learning rate, whatever the gradient's size.
    _, moved = _one_update(TrainConfig(optimizer="adam", lr=0.003), 5.0)
    assert moved == pytest.approx(-0.003, rel=1e-5)


def test_adam_with_weight_decay_decays_the_weights_apart_from_the_gradient():
    """AdamW: the weight shrinks by lr * decay * w besides Adam's step (Adam with an L2 term would
    fold the decay into the gradient, where Adam's scaling cancels it)."""
    lr, wd, w0 = 0.01, 0.5, 4.0
    opt, moved = _one_update(TrainConfig(optimizer="adam", lr=lr, weight_decay=wd), 1e-7, start=w0)
    decayed = w0 * (1 - lr * wd)
    assert w0 + moved == pytest.approx(decayed - lr * 0.5, rel=1e-6)
    assert isinstance(opt, torch.optim.AdamW)


def test_rmsprop_is_keras_rmsprop():
    """Keras' RMSprop (rho 0.9, epsilon 1e-7): the first step is lr * g / (sqrt(0.1 g^2) + 1e-7)."""
    lr = 0.001
    for g in (2.0, 1e-7):
        opt, moved = _one_update(TrainConfig(optimizer="rmsprop", lr=lr), g)
        assert moved == pytest.approx(-lr * g / (math.sqrt(0.1 * g * g) + 1e-7), rel=1e-4), g
        assert isinstance(opt, torch.optim.RMSprop)


def test_adam_is_fused_on_cpu_and_cuda_only():
    """One fused kernel per step where torch has one (CPU, CUDA); other devices get the plain
    optimizer, which works on them."""
    for cfg in (TrainConfig(), TrainConfig(weight_decay=0.1)):
        assert make_optimizer(cfg, [torch.nn.Parameter(torch.ones(2))], CPU).defaults["fused"] is True
        assert make_optimizer(cfg, [torch.nn.Parameter(torch.ones(2))], torch.device("cuda")).defaults["fused"]
        assert not make_optimizer(cfg, [torch.nn.Parameter(torch.ones(2))], torch.device("mps")).defaults["fused"]


# --- a run's steps along its ways ----------------------------------------------------------------

def _batch(n: int = 12):
    torch.manual_seed(0)
    model = CVAE()
    x = torch.rand(n, 1, 28, 28)
    x[x < 0.5] = 0.0
    return model, x


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _close(a, b, tol=1e-5):
    return all(((g - w).norm() / w.norm().clamp_min(1e-30)).item() < tol for g, w in zip(a, b))


def test_the_shard_generators_are_seeded_one_past_the_run_seed_each():
    gens = shard_generators(7, 3, CPU)
    assert len(gens) == 3
    for i, g in enumerate(gens):
        assert torch.equal(torch.randn(4, generator=g), torch.randn(4, generator=torch.Generator().manual_seed(8 + i)))
    assert all(g.device == CPU for g in gens)


def test_a_run_that_changes_its_way_goes_on_along_the_same_noise():
    """Two steps on one worker, the second computed another way (the matrix products instead of
    the stock layers): its noise is the next draw of the same stream, as if the way had not
    changed, and each way is built once, at its first step."""
    model, x = _batch()
    seed = 3
    stock, gemm = Way(None, 1, 1), Way(torch.float32, 1, 1)
    steps = WaySteps(model, seed, CPU, (0.0, 0.0, 0.0), max_workers=2)
    try:
        first = steps(stock, x)
        g1 = _grads(model)
        second = steps(gemm, x)
        g2 = _grads(model)
        steps(stock, x)
        assert set(steps.built) == {stock, gemm}
    finally:
        steps.close()
    ref = torch.Generator().manual_seed(seed + 1)
    for got, grads in ((first, g1), (second, g2)):
        model.zero_grad(set_to_none=True)
        want = model.loss(x, generator=ref)
        want.loss.backward()
        assert got[0].item() == pytest.approx(want.loss.item(), rel=1e-5)
        assert got[2].item() == pytest.approx(want.kl.item(), rel=1e-4, abs=1e-6)
        assert _close(grads, _grads(model))
    assert first[0].item() != pytest.approx(second[0].item(), rel=1e-7)  # the noise moved on


def test_a_split_way_draws_each_shard_from_its_own_stream():
    """Two workers: shard i draws from the generator seeded seed + 1 + i; the loss is the batch's."""
    model, x = _batch(10)
    steps = WaySteps(model, 0, CPU, (0.0, 0.0, 0.0), max_workers=2)
    try:
        got = steps(Way(None, 2, 1), x)
    finally:
        steps.close()
    halves = x.tensor_split(2)
    want = sum(model.loss(h, generator=torch.Generator().manual_seed(1 + i)).loss.item() * len(h) / len(x)
               for i, h in enumerate(halves))
    assert got[0].item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("dtype", [None, torch.float32])
def test_the_ways_steps_weight_the_kl_term_as_the_run_says(dtype):
    """The run sets the KL weight before each step: at 0 the gradient is the reconstruction's
    alone; the loss reported is the whole -ELBO either way."""
    model, x = _batch()
    steps = WaySteps(model, 0, CPU, (0.0, 0.0, 0.0), max_workers=1)
    try:
        steps.kl_weight = 0.0
        parts = steps(Way(dtype, 1, 1), x)
        got = _grads(model)
    finally:
        steps.close()
    model.zero_grad(set_to_none=True)
    ref = model.loss(x, generator=torch.Generator().manual_seed(1))
    ref.recon.backward()
    assert _close(got, _grads(model))
    assert parts[0].item() == pytest.approx(ref.loss.item(), rel=1e-5)


def test_the_ways_steps_augment_and_keep_the_free_bits():
    """The run's augmentation and free bits reach every way's step."""
    model, x = _batch()
    steps = WaySteps(model, 0, CPU, (1.0, 10.0, 0.05), max_workers=1, free_bits=0.5)
    try:
        seen = []
        hook = model.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
        try:
            steps(Way(None, 1, 1), x)
        finally:
            hook.remove()
        step = steps.built[Way(None, 1, 1)]
        assert step.free_bits == 0.5
    finally:
        steps.close()
    assert not torch.equal(seen[0], x)  # every image turned or zoomed


def test_closing_the_ways_steps_ends_their_threads():
    model, x = _batch(4)
    steps = WaySteps(model, 0, CPU, (0.0, 0.0, 0.0), max_workers=2)
    steps(Way(None, 2, 1), x)
    pool = steps.built[Way(None, 2, 1)].pool
    steps.close()
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_a_one_worker_step_replaces_the_previous_gradient():
    """Each step's gradient is that batch's alone, not added to the last one's."""
    model, x = _batch()
    for dtype in (None, torch.float32):
        step = BatchStep(model, 1, seed=0, device=CPU, dtype=dtype)
        step(x)
        once = _grads(model)
        step2 = BatchStep(model, 1, seed=0, device=CPU, dtype=dtype)
        step2(x)
        assert _close(_grads(model), once), dtype


# --- the way a step computes ---------------------------------------------------------------------

def _bf16_reference(model, x, gens):
    """The bfloat16 products' gradient of each shard in turn (cvae.training.gemm), summed by share."""
    from cvae.training.gemm import loss_and_grads

    shards = [s for s in x.tensor_split(len(gens)) if len(s)]
    total = None
    for s, g in zip(shards, gens):
        _, grads = loss_and_grads(model, s, g, torch.bfloat16, len(s) / len(x))
        total = list(grads) if total is None else [a + b for a, b in zip(total, grads)]
    return total


@pytest.mark.parametrize("workers", [1, 2])
def test_a_step_in_bfloat16_products_computes_its_gradient_with_them(workers):
    """A way in bfloat16 gives the bfloat16 products' gradient (what cvae.training.gemm computes
    for each shard with its noise), which differs from the stock layers' float32 one by bfloat16's
    rounding: the step did not fall back on the stock layers."""
    model, x = _batch(10)
    steps = WaySteps(model, 2, CPU, (0.0, 0.0, 0.0), max_workers=2)
    try:
        steps(Way(torch.bfloat16, workers, 1), x)
        got = _grads(model)
    finally:
        steps.close()
    want = _bf16_reference(model, x, shard_generators(2, workers, CPU))
    assert _close(got, want, tol=1e-6)
    step = BatchStep(model, workers, seed=2, device=CPU)  # the stock layers, the same noise
    try:
        step(x)
    finally:
        step.close()
    assert not _close(got, _grads(model), tol=1e-4)


def test_a_one_worker_step_leaves_its_gradients_in_the_parameters_layout():
    """A decoder in channels_last: each gradient is laid out like its parameter (the fused
    optimizers read .grad as if it were), on one worker as on two (tests/test_train.py)."""
    model, x = _batch()
    model.decoder.channels_last = True
    step = BatchStep(model, 1, seed=0, device=CPU)
    step(x.contiguous(memory_format=torch.channels_last))
    for name, p in model.named_parameters():
        # The same element at the same place: the strides agree but where a dimension has one entry.
        assert [st for st, n in zip(p.grad.stride(), p.shape) if n > 1] == \
            [st for st, n in zip(p.stride(), p.shape) if n > 1], name


@pytest.mark.parametrize("dtype", [None, torch.float32])
def test_a_step_scores_the_augmented_images_each_way(dtype):
    """Augmentation draws from the shard's generator before the noise of z, on the matrix
    products' way as on the stock layers'; zoom alone (no turn) is augmentation too."""
    from cvae.training.augment import random_affine

    model, x = _batch()
    augment = (1.0, 0.0, 0.2)
    step = BatchStep(model, 1, seed=4, device=CPU, augment=augment, dtype=dtype)
    parts = step(x)
    g = torch.Generator().manual_seed(5)
    xa = random_affine(x, g, *augment)
    assert not torch.equal(xa, x)
    assert parts[0].item() == pytest.approx(model.loss(xa, generator=g).loss.item(), rel=1e-5)


def test_each_way_is_built_once_at_its_first_step():
    """A run's way steps are made at a way's first step and reused: a split way keeps one pool
    of threads for the whole run."""
    model, x = _batch(6)
    split, plain = Way(None, 2, 1), Way(None, 1, 1)
    steps = WaySteps(model, 0, CPU, (0.0, 0.0, 0.0), max_workers=2)
    try:
        steps(split, x)
        first = steps.built[split]
        steps(plain, x)
        steps(split, x)
        assert steps.built[split] is first and len(steps.built) == 2
    finally:
        steps.close()
