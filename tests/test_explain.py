"""cvae.core.explain: the loss of one digit against computations written here in plain PyTorch
(torch.distributions, and a numerical integral of p(x|z) p(z) over the plane)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from cvae.core import explain
from cvae.core.latent import decode_points, evaluate
from devkit import random_model


def _digit(model, z=(0.3, -0.8)) -> torch.Tensor:
    """A grey digit in [0, 1] (decoded by the shipped model: no data set needed)."""
    return torch.as_tensor(decode_points(model, np.array([z], np.float32)))[0]


def _reference(model, x: torch.Tensor, k: int, seed: int) -> dict:
    """The same quantities from torch.distributions, in float64, with the same noise."""
    with torch.no_grad():
        m, lv = model.encode(x.reshape(1, 1, 28, 28))
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn((k, 2), generator=gen)
        z = m + torch.exp(0.5 * lv) * eps
        logits = model.decoder(z).double().reshape(k, 784)
    m, lv, z = m.double()[0], lv.double()[0], z.double()
    q = Normal(m, torch.exp(0.5 * lv))
    log_px_z = Bernoulli(logits=logits, validate_args=False).log_prob(x.double().reshape(1, 784)).sum(1)
    log_w = log_px_z + Normal(0.0, 1.0).log_prob(z).sum(1) - q.log_prob(z).sum(1)
    recon = float(-log_px_z.mean())
    kl = float(kl_divergence(q, Normal(torch.zeros(2, dtype=torch.float64), 1.0)).sum())
    log_px = float(torch.logsumexp(log_w, 0) - math.log(k))
    return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "neg_log_px": -log_px}


@pytest.mark.parametrize("which", ["shipped", "random"])
def test_digit_loss_matches_torch_distributions(model, which):
    m = model if which == "shipped" else random_model(3)
    x = _digit(model)
    got = explain.digit_loss(m, x, k=1000, seed=5)
    ref = _reference(m, x, 1000, 5)
    for name, want in ref.items():
        # float32 logits summed over 784 pixels: measured <= 1.2e-4 nats.
        assert getattr(got, name) == pytest.approx(want, abs=5e-4), name
    assert got.slack == pytest.approx(got.neg_elbo - got.neg_log_px, abs=1e-12)
    assert (got.k, got.seed) == (1000, 5)


def test_digit_loss_is_seeded(model):
    x = _digit(model)
    a, b = explain.digit_loss(model, x, seed=1), explain.digit_loss(model, x, seed=1)
    assert a == b
    c = explain.digit_loss(model, x, seed=2)
    assert c.neg_log_px != a.neg_log_px and c.kl == a.kl
    # one batch or many: the same samples
    assert explain.digit_loss(model, x, seed=1, batch_size=64).neg_log_px == pytest.approx(a.neg_log_px, abs=1e-9)


def _quadrature_neg_log_px(model, x: torch.Tensor, n: int = 72, width: float = 6.0) -> float:
    """-log of the integral of p(x|z) p(z) over a box of +-``width`` posterior sigmas, by the
    midpoint rule on an n x n grid (the posterior of the shipped model sits inside it)."""
    with torch.no_grad():
        m, lv = model.encode(x.reshape(1, 1, 28, 28))
    m, s = m[0].double(), torch.exp(0.5 * lv[0].double())
    axes = [torch.linspace(-width, width, n + 1, dtype=torch.float64) for _ in range(2)]
    mids = [(a[1:] + a[:-1]) / 2 for a in axes]
    g1, g2 = torch.meshgrid(m[0] + s[0] * mids[0], m[1] + s[1] * mids[1], indexing="ij")
    z = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)
    with torch.no_grad():
        logits = torch.cat([model.decoder(z[i:i + 1024].float()) for i in range(0, len(z), 1024)]).double()
    log_px_z = Bernoulli(logits=logits.reshape(len(z), 784), validate_args=False).log_prob(
        x.double().reshape(1, 784)).sum(1)
    log_f = log_px_z + Normal(0.0, 1.0).log_prob(z).sum(1)
    cell = float((2 * width / n) ** 2 * s[0] * s[1])
    return -float(torch.logsumexp(log_f, 0) + math.log(cell))


@pytest.mark.needs_data
@pytest.mark.slow  # a numerical integral over the plane for a few digits
def test_importance_weighted_estimate_is_the_integral(model, mnist_dir):
    """-log p(x) of test digit #0 by numerical integration over the plane: the estimate within
    its spread over seeds, below the -ELBO (the bound), and the quadrature itself converged."""
    from cvae.core.data import load_mnist

    x = load_mnist("test", mnist_dir)[0][0, 0]
    quad = _quadrature_neg_log_px(model, x, n=48)
    assert _quadrature_neg_log_px(model, x, n=32, width=8.0) == pytest.approx(quad, abs=2e-3)  # converged
    ests = [explain.digit_loss(model, x, seed=s) for s in range(3)]
    for e in ests:
        # measured: 91.809 +- 0.013 (5 seeds) against the integral's 91.811
        assert e.neg_log_px == pytest.approx(quad, abs=0.04)
        assert e.neg_elbo > quad
    # the slack (0.19 nats here) is the bound's gap, not the estimate's noise
    assert np.mean([e.slack for e in ests]) > 0.15


def test_test_set_elbos_mean_is_the_tutorials_val_loss(model):
    """With one sample per digit and one seed, the test set's -ELBOs average to what
    :func:`cvae.core.latent.evaluate` (the tutorial's val_loss) reports for the same noise."""
    x = torch.as_tensor(decode_points(model, np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)))
    e = explain.test_set_elbos(model, x, samples=1, seed=7, batch_size=16)
    assert e.shape == (40,)
    assert e.mean() == pytest.approx(evaluate(model, x, seed=7)["loss"], abs=1e-3)
    # The same noise whatever the batches: equal up to float32 rounding, which a batch's size moves
    # on some CPUs (1.5e-7 relative measured on AVX-512); noise drawn per batch moves them by whole units.
    np.testing.assert_allclose(explain.test_set_elbos(model, x, samples=1, seed=7, batch_size=40), e, rtol=5e-7)
    # several samples: each digit's value is its recon averaged over them, plus its KL
    e4 = explain.test_set_elbos(model, x[:3], samples=4, seed=0)
    with torch.no_grad():
        m, lv = model.encode(x[:3, None])
        eps = torch.randn((3, 4, 2), generator=torch.Generator().manual_seed(0))
        z = (m[:, None] + torch.exp(0.5 * lv)[:, None] * eps).reshape(-1, 2)
        probs = model.decode(z).double().reshape(3, 4, 784).clamp(1e-12, 1 - 1e-12)
    xx = x[:3].double().reshape(3, 1, 784)
    recon = -(xx * probs.log() + (1 - xx) * (1 - probs).log()).sum(2).mean(1)
    kl = kl_divergence(Normal(m.double(), torch.exp(0.5 * lv.double())), Normal(0.0, 1.0)).sum(1)
    np.testing.assert_allclose(e4, (recon + kl).numpy(), atol=2e-3)


def test_harder_than_and_histogram():
    e = np.arange(100, dtype=float)
    assert explain.harder_than(50.0, e) == 50.0
    assert explain.harder_than(49.5, e) == 50.0
    assert explain.harder_than(-1, e) == 0.0
    assert explain.harder_than(1e9, e) == 100.0
    with pytest.raises(ValueError):
        explain.harder_than(1.0, [])
    tail = np.concatenate([e, [1e6]])
    counts, edges = explain.histogram(tail, bins=10)
    assert counts.sum() == len(tail) and len(edges) == 11
    assert edges[-1] < 1000  # the one far scribble does not set the axis


def test_the_loss_of_one_digit_its_defaults_refusals_and_the_mode_kept():
    m = random_model(3).train()
    x = _digit(m)
    d = explain.digit_loss(m, x.numpy())
    assert m.training  # left in the mode it was in
    assert (d.k, d.seed) == (explain.K_SAMPLES, 0) == (1000, 0)
    assert d.to_dict() == {"recon": d.recon, "kl": d.kl, "neg_elbo": d.neg_elbo, "neg_log_px": d.neg_log_px,
                           "slack": d.slack, "k": 1000, "seed": 0}
    assert d == explain.digit_loss(m, x, k=1000, seed=0)
    assert d.neg_elbo == d.recon + d.kl and d.kl > 0 and d.slack >= 0
    # Batches of any size draw the same samples: 1,000 in batches of 300 (the last one short).
    assert explain.digit_loss(m, x, batch_size=300).neg_log_px == pytest.approx(d.neg_log_px, abs=1e-9)
    one = explain.digit_loss(m, x, k=1, seed=4)
    assert one.k == 1 and np.isfinite(one.neg_log_px) and one.recon != d.recon  # one sample is enough
    with pytest.raises(ValueError, match=r"^k must be >= 1, got 0$"):
        explain.digit_loss(m, x, k=0)
    with pytest.raises(ValueError, match=r"^one image at a time, got 2$"):
        explain.digit_loss(m, torch.stack([x, x]))


def test_the_test_sets_terms_defaults_and_edges():
    m = random_model(3).train()
    x = torch.as_tensor(decode_points(m, np.random.default_rng(2).normal(size=(7, 2)).astype(np.float32)))
    recon, kl = explain.test_set_terms(m, x)
    assert m.training and recon.shape == kl.shape == (7,) and recon.dtype == kl.dtype == np.float64
    r0, k0 = explain.test_set_terms(m, x, samples=1, seed=0, batch_size=250)
    np.testing.assert_array_equal(recon, r0)
    np.testing.assert_array_equal(kl, k0)
    np.testing.assert_array_equal(explain.test_set_elbos(m, x), recon + kl)
    # The closed-form KL of each digit, as torch.distributions has it.
    with torch.no_grad():
        mu, lv = m.encode(x[:, None])
    want = kl_divergence(Normal(mu.double(), torch.exp(0.5 * lv.double())), Normal(0.0, 1.0)).sum(1)
    np.testing.assert_allclose(kl, want.numpy(), rtol=1e-9)
    r3, _ = explain.test_set_terms(m, x, batch_size=3)  # three batches, the same noise
    np.testing.assert_allclose(r3, recon, rtol=5e-7)
    assert explain.test_set_terms(m, x, seed=1)[0].tolist() != recon.tolist()
    empty = explain.test_set_terms(m, x[:0])
    assert empty[0].shape == empty[1].shape == (0,)
    with pytest.raises(ValueError, match=r"^samples must be >= 1, got 0$"):
        explain.test_set_terms(m, x, samples=0)


def test_the_histogram_of_equal_values_and_its_default_bins():
    counts, edges = explain.histogram(np.full(5, 80.0))
    assert len(counts) == explain.HIST_BINS == 60 and counts.sum() == 5
    assert edges[0] == 80.0 and edges[-1] == 81.0  # one nat wide when every value is the same
    e = np.arange(1000, dtype=float)
    counts, edges = explain.histogram(np.concatenate([e, [-1e6, 1e6]]), bins=10)
    # Over the values nearest inside 0.1%..99.9% of the 1,002 (the 3rd lowest, the 1,000th):
    assert edges[0] == 1.0 and edges[-1] == 998.0
    assert counts[0] == 102 and counts[-1] == 102 and counts.sum() == 1002  # the ones outside in the end bins
    assert explain.harder_than(3.0, [1.0, 2.0, 3.0, 4.0]) == 50.0  # strictly below
    with pytest.raises(ValueError, match=r"^no test digits to compare with$"):
        explain.harder_than(1.0, np.zeros(0))


def test_at_most_batch_size_images_at_once_and_any_default_dtype():
    m = random_model(3)
    x = torch.as_tensor(decode_points(m, np.random.default_rng(2).normal(size=(7, 2)).astype(np.float32)))
    seen, encode = [], m.encode

    def counting(images):
        seen.append(len(images))
        return encode(images)

    m.encode = counting
    e = explain.test_set_elbos(m, x, batch_size=3)
    assert seen == [3, 3, 1] and e.shape == (7,)
    m.encode = encode
    # A caller's torch.set_default_dtype(torch.float64) changes nothing: the noise is drawn in float32.
    want = explain.digit_loss(m, x[0], k=50)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = explain.digit_loss(m, x[0], k=50)
    finally:
        torch.set_default_dtype(old)
    assert got == want


def test_harder_than_float32_values_by_their_exact_values():
    # The float32 nearest 100.1 is 100.09999847: below 100.1, so the digit is harder than it.
    assert explain.harder_than(100.1, np.float32([100.1, 200.0])) == 50.0
