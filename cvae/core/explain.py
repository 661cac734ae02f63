"""The loss of one digit: the tutorial's two terms, their sum (the -ELBO), an importance-weighted
estimate of -log p(x), and where the digit stands among the test digits.

The likelihood is the tutorial's: each grey pixel x in [0, 1] is scored as a Bernoulli with
probability decoder(z), i.e. log p(x|z) = -sum BCE(x, decoder(z)) = -784 * mean BCE. (MNIST's
grey pixels are not binary, so this is the tutorial's objective rather than a normalised density
of grey images.)

- recon: E_q[784 * BCE(x, decoder(z))], the mean over the same K samples z ~ q(z|x) that the
  importance-weighted estimate uses (the tutorial trains on one such sample per step);
- kl: KL(q(z|x) || N(0, I)) in closed form;
- neg_elbo = recon + kl;
- neg_log_px: -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x) (Burda et al.'s
  importance-weighted bound; with K = 1,000 in 2-D it is close to -log p(x));
- slack = neg_elbo - neg_log_px: how much the bound the tutorial trains on overstates the loss.

All in nats per image, seeded, under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .latent import _as_images
from .model import CVAE

K_SAMPLES = 1000  # importance samples for one digit's -log p(x)
TEST_SAMPLES = 1  # samples of q(z|x) per test digit for the test set's -ELBO (as the tutorial's val_loss)
HIST_BINS = 60


@dataclass(frozen=True)
class DigitLoss:
    """One image's loss in nats (see the module's docstring)."""

    recon: float
    kl: float
    neg_elbo: float
    neg_log_px: float
    slack: float
    k: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def _log_normal(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(log_var))) summed over the last dimension."""
    return -0.5 * (((z - mean) ** 2) * torch.exp(-log_var) + log_var + math.log(2 * math.pi)).sum(-1)


def _samples(z_mean: torch.Tensor, z_log_var: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator(device=z_mean.device).manual_seed(int(seed))
    eps = torch.randn((k, z_mean.shape[-1]), generator=gen, device=z_mean.device, dtype=torch.float32)
    return z_mean + torch.exp(0.5 * z_log_var) * eps


@torch.inference_mode()
def digit_loss(model: CVAE, image, k: int = K_SAMPLES, seed: int = 0, batch_size: int = 1000) -> DigitLoss:
    """The loss of one image (28x28 in [0, 1]) under ``model``, from ``k`` samples of q(z|x)
    drawn with a generator seeded with ``seed``."""
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = _as_images(image)
    if len(x) != 1:
        raise ValueError(f"one image at a time, got {len(x)}")
    dev = model.device
    x = x.to(dev)
    was_training = model.training
    model.eval()
    try:
        z_mean, z_log_var = model.encode(x)
        z = _samples(z_mean, z_log_var, k, seed)  # (k, d)
        nll = torch.cat([F.binary_cross_entropy_with_logits(model.decoder(z[i:i + batch_size]),
                                                            x.expand(len(z[i:i + batch_size]), -1, -1, -1),
                                                            reduction="none").flatten(1).sum(1)
                         for i in range(0, k, batch_size)]).double()  # -log p(x|z_k), (k,)
    finally:
        model.train(was_training)
    zd, m, lv = z.double(), z_mean.double(), z_log_var.double()
    log_w = -nll + _log_normal(zd, torch.zeros_like(m), torch.zeros_like(lv)) - _log_normal(zd, m, lv)
    neg_log_px = -(torch.logsumexp(log_w, 0) - math.log(k)).item()
    recon = nll.mean().item()
    kl = (-0.5 * torch.sum(1 + lv - m.square() - lv.exp())).item()
    neg_elbo = recon + kl
    return DigitLoss(recon=recon, kl=kl, neg_elbo=neg_elbo, neg_log_px=neg_log_px, slack=neg_elbo - neg_log_px,
                     k=k, seed=int(seed))


@torch.inference_mode()
def test_set_terms(model: CVAE, images, samples: int = TEST_SAMPLES, seed: int = 0,
                   batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Each image's recon (784·BCE over ``samples`` draws of q(z|x)) and its closed-form KL,
    each (N,) float64; the noise for all images is drawn at once from a generator seeded with
    ``seed``, so every ``batch_size`` gives the same figures (up to float32 rounding)."""
    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    x = _as_images(images)
    dev = model.device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    eps = torch.randn((len(x), samples, model.latent_dim), generator=gen, device=dev)
    recons, kls = [], []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(dev)
            m, lv = model.encode(xb)
            z = (m[:, None] + torch.exp(0.5 * lv)[:, None] * eps[i:i + batch_size]).reshape(-1, m.shape[1])
            target = xb.repeat_interleave(samples, 0)
            nll = F.binary_cross_entropy_with_logits(model.decoder(z), target, reduction="none").flatten(1).sum(1)
            recons.append(nll.double().reshape(len(xb), samples).mean(1).cpu())
            md, lvd = m.double(), lv.double()
            kls.append((-0.5 * torch.sum(1 + lvd - md.square() - lvd.exp(), dim=1)).cpu())
    finally:
        model.train(was_training)
    if not recons:
        return np.zeros(0), np.zeros(0)
    return torch.cat(recons).numpy(), torch.cat(kls).numpy()


def test_set_elbos(model: CVAE, images, samples: int = TEST_SAMPLES, seed: int = 0,
                   batch_size: int = 250) -> np.ndarray:
    """Each image's -ELBO (:func:`test_set_terms`' recon + KL), (N,) float64."""
    recon, kl = test_set_terms(model, images, samples, seed, batch_size)
    return recon + kl


def harder_than(value: float, elbos) -> float:
    """The share (0..100) of ``elbos`` strictly below ``value``: "harder than p% of test digits"."""
    e = np.asarray(elbos, dtype=np.float64)
    if e.size == 0:
        raise ValueError("no test digits to compare with")
    return float(100.0 * np.count_nonzero(e < value) / e.size)


def histogram(elbos, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the test set's -ELBO, over its 0.1%..99.9% range (the far tail of a
    few scribbles would squeeze every other bar into a few columns); values outside land in
    the end bins."""
    e = np.asarray(elbos, dtype=np.float64)
    # The nearest values inside the range (an interpolated 99.9th percentile of a few hundred digits
    # would reach most of the way to one far scribble).
    lo, hi = np.percentile(e, 0.1, method="higher"), np.percentile(e, 99.9, method="lower")
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, int(bins) + 1)
    counts, _ = np.histogram(np.clip(e, lo, hi), edges)
    return counts, edges
