"""The model: shapes, parameter counts, loss, KL, reparameterisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cvae import CVAE, count_parameters, kl_divergence, reparameterize, vae_loss
from cvae.model import ModelConfig, pick_device


def test_parameter_counts_match_the_tutorial():
    m = CVAE()
    assert count_parameters(m.encoder) == 69_076
    assert count_parameters(m.decoder) == 65_089
    assert count_parameters(m) == 134_165


def test_options_change_the_architecture():
    m = CVAE(latent_dim=3, filters=(8, 16), dense=10)
    z_mean, z_log_var = m.encode(torch.rand(2, 1, 28, 28))
    assert z_mean.shape == z_log_var.shape == (2, 3)
    assert m.decode(torch.zeros(5, 3)).shape == (5, 1, 28, 28)
    assert count_parameters(m) != 134_165


@pytest.mark.parametrize("bad", [dict(latent_dim=0), dict(filters=(32,)), dict(dense=-1), dict(latent_dim=1000)])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        CVAE(**bad)


def test_shapes_and_ranges():
    m = CVAE().eval()
    x = torch.rand(7, 1, 28, 28)
    z_mean, z_log_var = m.encode(x)
    assert z_mean.shape == (7, 2) and z_log_var.shape == (7, 2)
    img = m.decode(torch.randn(7, 2) * 5)
    assert img.shape == (7, 1, 28, 28)
    assert img.min() >= 0 and img.max() <= 1
    logits, mu, lv, z = m(x)
    assert logits.shape == (7, 1, 28, 28) and z.shape == (7, 2)


def test_keras_same_padding_alignment():
    """Keras 'same' with stride 2 pads bottom/right only; a symmetric-padding port differs."""
    m = CVAE()
    conv = m.encoder.conv1
    x = torch.rand(1, 1, 28, 28)
    ours = F.relu(conv(F.pad(x, (0, 1, 0, 1))))
    # Output pixel (0, 0) sees input rows/cols 0..2 (no padding at the top/left).
    manual = F.relu((x[0, 0, :3, :3] * conv.weight[:, 0]).sum((1, 2)) + conv.bias)
    assert torch.allclose(ours[0, :, 0, 0], manual, atol=1e-6)
    # Transposed conv 'same': output[:2n] of the full (2n+1) transposed conv.
    h = torch.rand(1, 64, 7, 7)
    full = m.decoder.deconv1(h)
    assert full.shape[-1] == 15


def test_loss_against_a_hand_computed_case():
    x = torch.tensor([0.0, 1.0, 0.25, 0.5]).repeat(196).view(1, 1, 28, 28)
    logits = torch.tensor([0.0, 2.0, -1.0, 0.5]).repeat(196).view(1, 1, 28, 28)
    mu = torch.tensor([[0.5, -1.0]])
    lv = torch.tensor([[0.0, math.log(4.0)]])

    def bce(t, l):
        p = 1 / (1 + math.exp(-l))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    recon = 196 * (bce(0, 0) + bce(1, 2) + bce(0.25, -1) + bce(0.5, 0.5))
    kl = -0.5 * ((1 + 0 - 0.25 - 1) + (1 + math.log(4) - 1 - 4))
    parts = vae_loss(x, logits, mu, lv)
    assert parts.recon.item() == pytest.approx(recon, rel=1e-5)
    assert parts.kl.item() == pytest.approx(kl, rel=1e-5)
    assert parts.loss.item() == pytest.approx(recon + kl, rel=1e-5)
    # 784 * mean BCE over pixels, as the tutorial writes it.
    assert parts.recon.item() == pytest.approx(784 * F.binary_cross_entropy(torch.sigmoid(logits), x).item(), rel=1e-4)


def test_loss_is_a_mean_over_the_batch():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 28, 28)
    logits = torch.randn(4, 1, 28, 28)
    mu, lv = torch.randn(4, 2), torch.randn(4, 2)
    whole = vae_loss(x, logits, mu, lv)
    singles = [vae_loss(x[i:i + 1], logits[i:i + 1], mu[i:i + 1], lv[i:i + 1]).loss for i in range(4)]
    assert whole.loss.item() == pytest.approx(torch.stack(singles).mean().item(), rel=1e-6)


def test_bce_from_logits_is_stable_at_saturation():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 0, 0] = 1.0
    logits = torch.full((1, 1, 28, 28), -200.0)  # sigmoid underflows to 0: log(0) in a naive BCE
    parts = vae_loss(x, logits, torch.zeros(1, 2), torch.zeros(1, 2))
    assert torch.isfinite(parts.loss)
    assert parts.recon.item() == pytest.approx(200.0, rel=1e-4)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert kl_divergence(torch.zeros(3, 2), torch.zeros(3, 2)).abs().max().item() == 0.0
    torch.manual_seed(1)
    kl = kl_divergence(torch.randn(1000, 2), torch.randn(1000, 2))
    assert (kl >= 0).all()


def test_gradients_flow_through_the_sampling_step():
    mu = torch.zeros(4, 2, requires_grad=True)
    lv = torch.zeros(4, 2, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu, lv, g)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(4, 2))
    eps = reparameterize(torch.zeros(4, 2), torch.zeros(4, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(lv.grad, 0.5 * eps)  # d/dlv of exp(0.5 lv) * eps at lv=0
    assert lv.grad.abs().sum() > 0


def test_whole_model_backward_reaches_every_parameter():
    m = CVAE()
    m.loss(torch.rand(3, 1, 28, 28)).loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_keras_initialisation():
    m = CVAE()
    assert all((mod.bias == 0).all() for mod in m.modules() if isinstance(mod, (nn.Linear, nn.Conv2d)))


def test_config_round_trip():
    cfg = ModelConfig(latent_dim=2, filters=(32, 64), dense=16)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"latent_dim": 2, "evil": 1})


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device("auto").type == "cuda"
    else:
        assert pick_device("auto").type in ("cpu", "mps")
    with pytest.raises(ValueError):
        pick_device("tpu")
