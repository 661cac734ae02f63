"""The model: shapes, parameter counts, loss, KL, reparameterisation."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from cvae import CVAE, count_parameters, kl_divergence, reparameterize, vae_loss
from cvae.core.model import decoder_spec, encoder_spec, ModelConfig, pick_device, same_padding


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


@pytest.mark.parametrize("n,k,s,transpose,want", [
    # Worked by hand from TensorFlow's rule (out = ceil(n/s); total = max((out-1)s + k - n, 0),
    # before = total // 2) and its transpose (out = n s; crop k - s, before = (k - s) // 2).
    (28, 3, 2, False, (14, 0, 1)),  # the encoder: the odd padding goes bottom/right
    (14, 3, 2, False, (7, 0, 1)),
    (7, 3, 1, False, (7, 1, 1)),
    (5, 4, 2, False, (3, 1, 2)),
    (27, 3, 2, False, (14, 1, 1)),
    (6, 1, 2, False, (3, 0, 0)),  # no padding needed: never negative
    (7, 3, 2, True, (14, 0, 1)),  # the decoder: crop the last row/column of 15
    (14, 3, 2, True, (28, 0, 1)),
    (28, 3, 1, True, (28, 1, 1)),
    (5, 5, 2, True, (10, 1, 2)),
    (5, 2, 2, True, (10, 0, 0)),
])
def test_same_padding_is_kerass_rule(n, k, s, transpose, want):
    assert same_padding(n, k, s, transpose) == want


def test_same_padding_refuses_what_keras_cannot_express():
    with pytest.raises(ValueError):
        same_padding(0, 3, 2)
    with pytest.raises(ValueError):
        same_padding(7, 1, 2, transpose=True)


def _conv_response(encoder, layer: str, impulse: torch.Tensor) -> torch.Tensor:
    """The output of ``encoder.<layer>`` when the encoder runs and that layer's input
    (before any padding) is ``impulse``: conv1 reads the image; for conv2, conv1's output
    is replaced by the impulse through a forward hook."""
    got = {}
    hooks = [getattr(encoder, layer).register_forward_hook(lambda m, i, o: got.setdefault("out", o.detach()))]
    x = impulse.view(1, 1, 28, 28) if layer == "conv1" else torch.zeros(1, 1, 28, 28)
    if layer == "conv2":
        hooks.append(encoder.conv1.register_forward_hook(lambda m, i, o: impulse.view(1, 1, 14, 14)))
    try:
        encoder(x)
    finally:
        for h in hooks:
            h.remove()
    return got["out"][0, 0]


def test_encoder_convolutions_align_like_keras():
    """Impulse responses of conv1 and conv2 as the encoder runs them. With Keras' "same",
    output (i, j) of a stride-2 3x3 convolution reads input rows 2i..2i+2 and columns
    2j..2j+2 (the zero row/column is added after the last one), so an impulse at input
    (r, c) shows kernel tap (r - 2i, c - 2j). A port that pads the top/left, or both sides,
    reads other taps."""
    m = CVAE(filters=(1, 1))
    taps = torch.arange(1.0, 10.0).view(3, 3)
    with torch.no_grad():
        for conv in (m.encoder.conv1, m.encoder.conv2):
            conv.weight.copy_(taps.view(1, 1, 3, 3))
            conv.bias.zero_()
    for layer, n in (("conv1", 28), ("conv2", 14)):
        for r, c in [(0, 0), (2, 1), (n - 1, n - 1), (n - 2, 4)]:
            impulse = torch.zeros(n, n)
            impulse[r, c] = 1.0
            out = _conv_response(m.encoder, layer, impulse)
            want = torch.zeros(n // 2, n // 2)
            for i in range(n // 2):
                for j in range(n // 2):
                    if 0 <= r - 2 * i <= 2 and 0 <= c - 2 * j <= 2:
                        want[i, j] = taps[r - 2 * i, c - 2 * j]
            assert out.shape == want.shape and torch.equal(out, want), \
                (layer, r, c, out.nonzero().tolist(), want.nonzero().tolist())


def test_decoder_aligns_like_keras():
    """A one-channel decoder whose dense layer lights a single pixel of the 7x7 map, with
    all-ones kernels: the lit region of the 28x28 logits is where Keras puts it. Each
    stride-2 transposed convolution sends input row i to output rows 2i..2i+2 and Keras
    keeps the first 2n rows; the stride-1 one sends row i to rows i-1..i+1. So pixel (0, 0)
    lights rows/columns 0..7, pixel (6, 6) lights 23..27, pixel (3, 0) rows 11..19, columns
    0..7 (worked by hand)."""
    m = CVAE(latent_dim=1, filters=(1, 1), dense=1)
    dec = m.decoder
    with torch.no_grad():
        for layer in (dec.deconv1, dec.deconv2, dec.deconv3):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
        dec.dense.weight.zero_()
    for (r, c), (rows, cols) in {(0, 0): ((0, 7), (0, 7)), (6, 6): ((23, 27), (23, 27)),
                                 (3, 0): ((11, 19), (0, 7))}.items():
        with torch.no_grad():
            dec.dense.bias.zero_()
            dec.dense.bias[r * 7 + c] = 1.0
        logits = dec(torch.zeros(1, 1))[0, 0]
        assert logits.shape == (28, 28)
        lit = logits.nonzero()
        assert (lit[:, 0].min().item(), lit[:, 0].max().item()) == rows, (r, c)
        assert (lit[:, 1].min().item(), lit[:, 1].max().item()) == cols, (r, c)
        box = logits[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1]
        assert (box > 0).all(), (r, c)  # one connected block, no holes


def test_the_spec_is_json_and_matches_the_modules():
    """Names are the module attributes (so state_dict keys are {name}.weight/.bias), shapes
    follow from in/out/kernel, the sizes chain from 28 down to 7 and back, and the spec
    survives JSON unchanged (the browser reads it)."""
    for cfg in (ModelConfig(), ModelConfig(latent_dim=3, filters=(8, 16), dense=5)):
        m = CVAE.from_config(cfg)
        for part, spec in ((m.encoder, encoder_spec(cfg)), (m.decoder, decoder_spec(cfg))):
            assert json.loads(json.dumps(spec)) == spec
            state = part.state_dict()
            assert sorted(state) == sorted(f"{lay['name']}.{w}" for lay in spec for w in ("weight", "bias"))
            for lay in spec:
                w = state[f"{lay['name']}.weight"]
                if lay["kind"] == "dense":
                    assert w.shape == (lay["out"], lay["in"])
                elif lay["kind"] == "conv":
                    assert w.shape == (lay["out"], lay["in"], lay["kernel"], lay["kernel"])
                else:
                    assert w.shape == (lay["in"], lay["out"], lay["kernel"], lay["kernel"])
        enc, dec = encoder_spec(cfg), decoder_spec(cfg)
        assert [lay["name"] for lay in dec] == ["dense", "deconv1", "deconv2", "deconv3"]
        assert [(lay["size_in"], lay["size_out"]) for lay in enc if "size_in" in lay] == [(28, 14), (14, 7)]
        assert [(lay["size_in"], lay["size_out"]) for lay in dec if "size_in" in lay] == [(7, 14), (14, 28), (28, 28)]
        assert dec[0]["reshape"] == [cfg.filters[1], 7, 7] == enc[2]["flatten"]
        assert dec[-1]["activation"] == "sigmoid" and dec[-1]["out"] == 1


def test_loss_against_a_hand_computed_case():
    x = torch.tensor([0.0, 1.0, 0.25, 0.5]).repeat(196).view(1, 1, 28, 28)
    logits = torch.tensor([0.0, 2.0, -1.0, 0.5]).repeat(196).view(1, 1, 28, 28)
    mu = torch.tensor([[0.5, -1.0]])
    lv = torch.tensor([[0.0, math.log(4.0)]])

    def bce(t, logit):
        p = 1 / (1 + math.exp(-logit))
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


def _glorot_limit(layer: dict) -> float:
    """Keras' glorot_uniform limit sqrt(6 / (fan_in + fan_out)) for a layer of the declaration:
    Dense (in, out); Conv2D and Conv2DTranspose k*k*in + k*k*out (Keras swaps in and out for the
    transposed kernel, which leaves the sum as it is)."""
    k2 = layer.get("kernel", 1) ** 2
    return math.sqrt(6.0 / (k2 * (layer["in"] + layer["out"])))


def test_keras_initialisation():
    """Every layer, the transposed convolutions included: weights uniform on [-limit, limit] with
    Keras' Glorot limit, biases zero. Pooled over 20 seeds so the small heads (32 weights) have
    enough samples; the spread's tolerance is 5 standard errors of a uniform sample's."""
    cfg = ModelConfig()
    layers = {f"encoder.{lay['name']}": lay for lay in encoder_spec(cfg)}
    layers |= {f"decoder.{lay['name']}": lay for lay in decoder_spec(cfg)}
    pooled = {name: [] for name in layers}
    for seed in range(20):
        torch.manual_seed(seed)
        state = CVAE().state_dict()
        assert {k.rsplit(".", 1)[0] for k in state} == set(layers)
        for name in layers:
            assert (state[f"{name}.bias"] == 0).all(), name
            pooled[name].append(state[f"{name}.weight"].flatten())
    for name, lay in layers.items():
        w = torch.cat(pooled[name]).double()
        limit, n = _glorot_limit(lay), len(w)
        assert w.abs().max() <= limit, (name, w.abs().max().item(), limit)
        assert w.abs().max() >= 0.98 * limit, (name, w.abs().max().item(), limit)  # not a narrower law
        rel = 5 * 0.5 * math.sqrt(0.8 / n)  # uniform: var(s^2)/sigma^4 = 4/5 / n
        assert w.std().item() == pytest.approx(limit / math.sqrt(3), rel=rel), name
        assert abs(w.mean().item()) <= 5 * limit / math.sqrt(3 * n), name


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
