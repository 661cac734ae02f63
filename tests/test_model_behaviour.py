"""The model's contract beyond its architecture: the sizes a config may ask for, to the edge, and
the sentence each refusal gets; the device asked for; the weights' names a checkpoint stores; the
sampling step and the loss's parts as the callers read them. tests/test_model.py: the layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cvae import CVAE
from cvae.core.model import ModelConfig, pick_device, reparameterize, same_padding, vae_loss
from cvae.core.shipped import SHIPPED_CHECKPOINT


@pytest.mark.parametrize("field, top", [("latent_dim", 64), ("dense", 4096)])
def test_each_size_is_accepted_to_its_edge_and_refused_past_it_by_name(field, top):
    assert getattr(ModelConfig(**{field: top}), field) == top
    for bad in (0, top + 1):
        with pytest.raises(ValueError) as info:
            ModelConfig(**{field: bad})
        assert str(info.value) == f"{field} must be an integer in [1, {top}], got {bad!r}"


@pytest.mark.parametrize("filters", [(0, 64), (32, 513), (32,), (8, 8, 8)])
def test_filters_are_two_in_range(filters):
    assert ModelConfig(filters=(512, 1)).filters == (512, 1)
    with pytest.raises(ValueError) as info:
        ModelConfig(filters=filters)
    assert str(info.value) == f"filters must be two integers in [1, 512], got {tuple(filters)!r}"


def test_a_config_with_an_unknown_key_names_it():
    with pytest.raises(ValueError) as info:
        ModelConfig.from_dict({"latent_dim": 2, "layers": 7, "activation": "tanh"})
    assert str(info.value) == "unknown model config keys: ['activation', 'layers']"


def test_same_padding_takes_a_one_pixel_input_and_defaults_to_a_plain_convolution():
    assert same_padding(1, 3, 1) == same_padding(1, 3, 1, transpose=False)
    assert same_padding(7, 3, 2) == same_padding(7, 3, 2, transpose=False) != same_padding(7, 3, 2, transpose=True)
    for n, k, s in ((0, 3, 1), (5, 0, 1), (5, 3, 0)):
        with pytest.raises(ValueError, match=f"size, kernel and stride must be positive; got {n}, {k}, {s}"):
            same_padding(n, k, s)
    with pytest.raises(ValueError, match="a 'same' transposed convolution needs kernel >= stride; got 2 < 3"):
        same_padding(5, 2, 3, transpose=True)


def test_the_weights_names_are_the_ones_the_shipped_checkpoint_stores():
    """Those of every checkpoint written so far; a name changed would make them all unreadable."""
    stored = torch.load(SHIPPED_CHECKPOINT, map_location="cpu", weights_only=True)["state_dict"]
    assert list(CVAE().state_dict()) == list(stored)


def test_a_model_made_here_has_empty_records():
    assert CVAE().meta == {}


def test_the_sample_is_the_mean_plus_the_spread_times_the_noise():
    z_mean, z_log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, 2.0 * torch.log(torch.tensor(3.0))]])
    eps = torch.tensor([[2.0, -0.5]])
    assert torch.allclose(reparameterize(z_mean, z_log_var, eps=eps), torch.tensor([[2.5, -2.5]]), atol=1e-6)
    # Drawn in the mean's own precision from the generator given.
    z64 = torch.zeros(4, 2, dtype=torch.float64)
    got = reparameterize(z64, z64, generator=torch.Generator().manual_seed(3))
    assert got.dtype == torch.float64
    assert torch.equal(got, torch.randn((4, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64))


def test_the_model_samples_with_the_noise_or_the_generator_it_is_given():
    torch.manual_seed(0)
    model = CVAE().eval()
    x = torch.rand(3, 1, 28, 28)
    eps = torch.randn(3, 2)
    with torch.no_grad():
        z_mean, z_log_var = model.encode(x)
        logits, _, _, z = model(x, eps=eps)
        assert torch.allclose(z, z_mean + torch.exp(0.5 * z_log_var) * eps)
        a = model(x, generator=torch.Generator().manual_seed(9))[3]
        b = model(x, torch.Generator().manual_seed(9))[3]
        assert torch.equal(a, b) and not torch.equal(a, model(x, torch.Generator().manual_seed(10))[3])
        parts = model.loss(x, eps=eps)
        assert torch.equal(parts.loss, vae_loss(x, logits, z_mean, z_log_var).loss)
        assert torch.equal(model.loss(x, torch.Generator().manual_seed(9)).loss,
                           model.loss(x, generator=torch.Generator().manual_seed(9)).loss)
        assert torch.equal(model.decode(z), torch.sigmoid(model.decoder(z)))


def test_the_loss_keeps_each_images_part():
    x = torch.rand(4, 1, 28, 28)
    logits, z_mean, z_log_var = torch.randn(4, 1, 28, 28), torch.randn(4, 2), torch.randn(4, 2)
    parts = vae_loss(x, logits, z_mean, z_log_var)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = -0.5 * torch.sum(1 + z_log_var - z_mean**2 - z_log_var.exp(), dim=1)
    assert parts.per_image.shape == (4,)
    assert torch.allclose(parts.per_image, recon + kl, atol=1e-3) and torch.allclose(parts.loss, parts.per_image.mean())


def test_the_device_asked_for_or_a_sentence_why_not():
    assert pick_device() == pick_device("auto") == pick_device(None) == pick_device("") == pick_device("AUTO")
    assert pick_device("CPU") == torch.device("cpu")
    if not torch.cuda.is_available():
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            assert pick_device() == torch.device("cpu")
            with pytest.raises(ValueError) as info:
                pick_device("mps")
            assert str(info.value) == "--device mps was asked for, but MPS is not available"
        with pytest.raises(ValueError) as info:
            pick_device("Cuda")
        assert str(info.value) == "--device cuda was asked for, but no CUDA device is available"
    with pytest.raises(ValueError) as info:
        pick_device("tpu")
    assert str(info.value) == "unknown device 'tpu'; use auto, cpu, cuda or mps"


def test_the_decoder_in_the_trainers_memory_layout_decodes_the_same():
    torch.manual_seed(1)
    model = CVAE().eval()
    z = torch.randn(5, 2)
    with torch.no_grad():
        plain = model.decode(z)
        model.decoder.channels_last = True  # as the trainer sets it on a CPU
        assert torch.allclose(model.decode(z), plain, atol=1e-6)
