"""KL annealing (``kl_warmup``: the KL term's weight in the gradient rises from near 0 to 1 over
the first share of the steps) and free bits (``free_bits``: no KL gradient for a latent dimension
under a floor), on every way of computing a step, while the loss a run reports stays the full
-ELBO."""

from __future__ import annotations

import pytest
import torch

from cvae import CVAE, TrainConfig, train
from cvae.training.config import ConfigError, kl_factor
from cvae.training.gemm import loss_and_grads
from cvae.training.step import BatchStep


def test_the_kl_weight_rises_linearly_over_the_warm_up_then_stays_at_one():
    cfg = TrainConfig(kl_warmup=0.2)
    w = [kl_factor(cfg, s, 100) for s in range(100)]
    assert w[0] == pytest.approx(0.05) and w[9] == pytest.approx(0.5) and w[19] == 1.0
    assert all(b > a for a, b in zip(w[:19], w[1:20]))  # rising through the warm-up
    assert set(w[19:]) == {1.0}
    assert {kl_factor(TrainConfig(), s, 100) for s in range(100)} == {1.0}  # off by default
    assert kl_factor(TrainConfig(kl_warmup=0.2), 0, 3) == 1.0  # a warm-up shorter than a step is none


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan")])
def test_a_kl_warm_up_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ConfigError) as e:
        TrainConfig(kl_warmup=bad)
    assert e.value.field == "kl_warmup"


def _batch():
    torch.manual_seed(0)
    model = CVAE()
    x = torch.rand(9, 1, 28, 28)
    x[x < 0.5] = 0.0
    return model, x


def _reference(model, x, seed, kl_weight, weight=1.0):
    """Autograd of weight * (recon + kl_weight * KL), the batch's means, with the step's noise."""
    model.zero_grad(set_to_none=True)
    parts = model.loss(x, generator=torch.Generator().manual_seed(seed))
    ((parts.recon + kl_weight * parts.kl) * weight).backward()
    return parts, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("kl_weight", [0.0, 0.3])
def test_the_matrix_products_weight_the_kl_terms_gradient(kl_weight):
    model, x = _batch()
    want_parts, want = _reference(model, x, 5, kl_weight, weight=0.5)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(5), torch.float32, weight=0.5,
                                  kl_weight=kl_weight)
    # The parts are the unweighted terms: the loss reported is the -ELBO.
    assert parts.loss.item() == pytest.approx(want_parts.loss.item(), rel=1e-6)
    assert parts.kl.item() == pytest.approx(want_parts.kl.item(), rel=1e-6, abs=1e-6)
    for (name, _), g, w in zip(model.named_parameters(), grads, want):
        assert ((g - w).norm() / w.norm().clamp_min(1e-30)).item() < 1e-5, name


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("dtype", [None, torch.float32])
def test_each_way_of_a_step_weights_the_kl_term_and_reports_the_whole_loss(workers, dtype):
    model, x = _batch()
    step = BatchStep(model, workers, seed=0, device=torch.device("cpu"), dtype=dtype)
    try:
        parts = step(x, kl_weight=0.25)
        got = [p.grad.clone() for p in model.parameters()]
    finally:
        step.close()
    # One worker draws its noise from the generator seeded 1 (seed + 1), like the reference.
    if workers == 1:
        want_parts, want = _reference(model, x, 1, 0.25)
        for (name, _), g, w in zip(model.named_parameters(), got, want):
            assert ((g - w).norm() / w.norm().clamp_min(1e-30)).item() < 1e-5, name
        assert parts[0].item() == pytest.approx(want_parts.loss.item(), rel=1e-6)
    # Whatever the split: the weighted gradient differs from the plain one, the loss reported doesn't.
    model.zero_grad(set_to_none=True)
    step = BatchStep(model, workers, seed=0, device=torch.device("cpu"), dtype=dtype)
    try:
        plain = step(x)
        plain_grads = [p.grad.clone() for p in model.parameters()]
    finally:
        step.close()
    assert plain[0].item() == pytest.approx(parts[0].item(), rel=1e-6)
    assert plain[0].item() == pytest.approx((plain[1] + plain[2]).item(), rel=1e-6)
    enc_mean = [n for n, _ in model.named_parameters()].index("encoder.z_mean.weight")
    assert not torch.allclose(plain_grads[enc_mean], got[enc_mean])


def test_a_run_anneals_the_kl_term_over_its_planned_steps(monkeypatch):
    """A 20-step run with kl_warmup 0.5: the weight each step's gradient is computed with is
    (s + 1) / 10 for the first ten steps, then 1."""
    seen = []
    plain_call = BatchStep.__call__

    def spy(self, x, kl_weight=1.0):
        seen.append(kl_weight)
        return plain_call(self, x, kl_weight)

    monkeypatch.setattr(BatchStep, "__call__", spy)
    torch.manual_seed(0)
    train_x = torch.rand(16, 1, 28, 28)
    cfg = TrainConfig(epochs=10, batch_size=8, kl_warmup=0.5, workers=1, precision="fp32", film=False,
                      patience=0)
    train(cfg, train_x, train_x[:8])
    assert seen == pytest.approx([(s + 1) / 10 for s in range(10)] + [1.0] * 10)


# --- free bits ------------------------------------------------------------------------------

def _free_bits_reference(model, x, seed, free_bits):
    """Autograd of recon + the KL terms of the dimensions whose batch-mean KL is >= free_bits,
    written out here from the model's forward pass."""
    model.zero_grad(set_to_none=True)
    logits, mu, lv, _ = model(x, torch.Generator().manual_seed(seed))
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl_bd = -0.5 * (1 + lv - mu.square() - lv.exp())
    keep = (kl_bd.mean(0) >= free_bits).float().detach()
    (recon.mean() + (kl_bd * keep).sum(1).mean()).backward()
    return kl_bd.mean(0).detach(), keep, [p.grad.clone() for p in model.parameters()]


def _floor_between_the_dimensions(model, x):
    with torch.no_grad():
        mu, lv = model.encode(x)
        kl_d = (-0.5 * (1 + lv - mu.square() - lv.exp())).mean(0)
    assert abs(kl_d[0] - kl_d[1]) > 1e-4, kl_d  # the case must tell the dimensions apart
    return float(kl_d.mean())  # one dimension under it, one over


@pytest.mark.parametrize("dtype", [None, torch.float32])
def test_free_bits_leave_out_the_kl_gradient_of_a_dimension_under_the_floor(dtype):
    model, x = _batch()
    floor = _floor_between_the_dimensions(model, x)
    _, keep, want = _free_bits_reference(model, x, 1, floor)
    assert keep.tolist() in ([1.0, 0.0], [0.0, 1.0])
    step = BatchStep(model, 1, seed=0, device=torch.device("cpu"), dtype=dtype, free_bits=floor)
    try:
        parts = step(x)
        got = [p.grad.clone() for p in model.parameters()]
    finally:
        step.close()
    for (name, _), g, w in zip(model.named_parameters(), got, want):
        assert ((g - w).norm() / w.norm().clamp_min(1e-30)).item() < 1e-5, name
    # The loss reported is the whole -ELBO, the floored dimension's KL included.
    full = model.loss(x, generator=torch.Generator().manual_seed(1))
    assert parts[0].item() == pytest.approx(full.loss.item(), rel=1e-6)
    assert parts[2].item() == pytest.approx(full.kl.item(), rel=1e-5, abs=1e-7)
    # The floored dimension's log-variance bias moves by the reconstruction's gradient alone.
    names = [n for n, _ in model.named_parameters()]
    lv_bias = got[names.index("encoder.z_log_var.bias")]
    off = int(keep.argmin())
    model.zero_grad(set_to_none=True)
    logits, mu, lv, _ = model(x, torch.Generator().manual_seed(1))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean().backward()
    recon_only = model.encoder.z_log_var.bias.grad
    assert lv_bias[off].item() == pytest.approx(recon_only[off].item(), rel=1e-4, abs=1e-7)
    assert lv_bias[1 - off].item() != pytest.approx(recon_only[1 - off].item(), rel=1e-3)


def test_no_free_bits_is_the_plain_gradient():
    model, x = _batch()
    a = BatchStep(model, 1, seed=0, device=torch.device("cpu"), dtype=None, free_bits=0.0)
    a(x)
    plain = [p.grad.clone() for p in model.parameters()]
    _, want = _reference(model, x, 1, 1.0)
    for g, w in zip(plain, want):
        assert torch.allclose(g, w, rtol=1e-5, atol=1e-7)


def test_a_run_passes_its_free_bits_to_every_step(monkeypatch):
    seen = set()
    plain_init = BatchStep.__init__

    def spy(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        seen.add(self.free_bits)

    monkeypatch.setattr(BatchStep, "__init__", spy)
    torch.manual_seed(0)
    train_x = torch.rand(16, 1, 28, 28)
    train(TrainConfig(epochs=1, batch_size=8, free_bits=0.75, workers=1, precision="fp32", film=False),
          train_x, train_x[:8])
    assert seen == {0.75}


@pytest.mark.parametrize("bad", [-0.5, float("inf"), 101.0])
def test_free_bits_outside_their_range_are_refused(bad):
    with pytest.raises(ConfigError) as e:
        TrainConfig(free_bits=bad)
    assert e.value.field == "free_bits"
