"""cvae.training.gemm's entry points as callers use them: which models it takes (check_layout's
refusal and its sentence), whether the CPU multiplies bfloat16 natively (native_bf16, against
stand-ins for torch's CPU checks), which latent dimensions keep a KL gradient (kl_floor_mask, at
the floor and either side), and loss_and_grads' contract (its gradients in the parameters' own
layouts and order, scaled by ``weight``, its KL weighting and free bits against autograd, the
trace it fills). tests/test_gemm.py checks the arithmetic layer by layer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cvae import CVAE
from cvae.training import gemm
from cvae.training.gemm import LAYOUT, check_layout, kl_floor_mask, loss_and_grads, native_bf16


def small_model(seed=0, **kw) -> CVAE:
    torch.manual_seed(seed)
    model = CVAE(**{"latent_dim": 3, "filters": (4, 8), "dense": 5, **kw})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return model


def images(n=5, seed=1) -> torch.Tensor:
    x = torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))
    x[x < 0.5] = 0.0
    return x


def autograd(model, x, seed, kl_weight=1.0, weight=1.0, keep=None):
    model.zero_grad(set_to_none=True)
    parts = model.loss(x, generator=torch.Generator().manual_seed(seed))
    enc = model.encoder(x)
    mu, lv = enc[0], enc[1]
    kl_d = -0.5 * (1 + lv - mu.square() - lv.exp())  # (B, latent)
    if keep is not None:  # free bits: the KL of the dimensions kept only (same noise, same means)
        kl = (kl_d * keep).sum(1).mean()
    else:
        kl = parts.kl
    ((parts.recon + kl_weight * kl) * weight).backward()
    return parts, {n: p.grad.clone() for n, p in model.named_parameters()}


def rel(a, b) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# ---------------------------------------------------------------- check_layout

@pytest.mark.parametrize("config", [{}, {"latent_dim": 5, "filters": (3, 6), "dense": 7}])
def test_any_channel_counts_latent_size_and_width_are_taken(config):
    check_layout(CVAE(**config))  # no error


@pytest.mark.parametrize("part, index, key, value", [
    ("encoder", 0, "stride", 1), ("encoder", 1, "pad", [1, 1]), ("encoder", 2, "activation", "linear"),
    ("decoder", 0, "activation", "linear"), ("decoder", 1, "crop", [1, 0]), ("decoder", 3, "kernel", 5),
    ("decoder", 2, "kind", "conv"),
], ids=["enc-stride", "enc-pad", "enc-dense-act", "dec-dense-act", "dec-crop", "dec-kernel", "dec-kind"])
def test_a_model_declared_otherwise_is_refused_naming_both_layouts(part, index, key, value):
    model = CVAE()
    spec = [dict(layer) for layer in getattr(model, part).spec]
    spec[index][key] = value
    getattr(model, part).spec = spec
    got = [(lay["kind"], lay["activation"]) if lay["kind"] == "dense" else
           (lay["kind"], lay["kernel"], lay["stride"], lay.get("pad") or lay.get("crop"), lay["activation"])
           for lay in spec]
    with pytest.raises(NotImplementedError) as err:
        check_layout(model)
    assert str(err.value) == (f"cvae.training.gemm implements the {part} {LAYOUT[part]}, but the model declares "
                              f"{got}; train with precision fp32")
    with pytest.raises(NotImplementedError):
        loss_and_grads(model, images(2))


def test_the_layout_is_the_models_declaration():
    model = CVAE()
    enc = [(lay["kind"], lay["activation"]) if lay["kind"] == "dense" else
           (lay["kind"], lay["kernel"], lay["stride"], lay["pad"], lay["activation"]) for lay in model.encoder.spec]
    dec = [(lay["kind"], lay["activation"]) if lay["kind"] == "dense" else
           (lay["kind"], lay["kernel"], lay["stride"], lay["crop"], lay["activation"]) for lay in model.decoder.spec]
    assert LAYOUT == {"encoder": enc, "decoder": dec}


# ---------------------------------------------------------------- native_bf16

def cpu_checks(**answers):
    """A stand-in for torch.cpu with only the checks named (each a function answering its value,
    or raising it when it is an exception)."""
    def check(v):
        def f():
            if isinstance(v, BaseException):
                raise v
            return v
        return f
    return SimpleNamespace(**{name: check(v) for name, v in answers.items()})


@pytest.mark.parametrize("answers, want", [
    ({"_is_avx512_bf16_supported": True, "_is_amx_tile_supported": False}, True),
    ({"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": True}, True),
    ({"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False}, False),
    ({"_is_avx512_bf16_supported": 1}, True),
    ({"_is_amx_tile_supported": True}, True),
    ({"_is_amx_tile_supported": 0}, False),
    ({}, False),
    ({"_is_avx512_bf16_supported": RuntimeError("no cpuinfo")}, False),
    ({"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": RuntimeError("no cpuinfo")}, False),
    ({"is_avx512_bf16_supported": True, "amx": True}, False),
], ids=["avx512", "amx", "neither", "truthy", "amx-only", "falsy", "no-checks", "error", "error-second",
        "other-names"])
def test_native_bfloat16_is_either_check_of_the_cpu(monkeypatch, answers, want):
    monkeypatch.setattr(torch, "cpu", cpu_checks(**answers))
    assert native_bf16() is want


def test_native_bfloat16_without_torch_cpu(monkeypatch):
    monkeypatch.delattr(torch, "cpu")
    assert native_bf16() is False


def test_native_bfloat16_asks_torch_on_this_machine():
    cpu = torch.cpu
    want = any(bool(getattr(cpu, n)()) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
               if hasattr(cpu, n))
    assert native_bf16() is want


# ---------------------------------------------------------------- kl_floor_mask

def test_the_kl_floor_keeps_the_dimensions_at_or_above_it():
    """Dimension d's KL is 0.5*(mu^2 + exp(lv) - 1 - lv), averaged over the batch: here 0.5, 2.0
    (1.5 and 2.5) and 0 nats. A floor of 0.5 keeps the first two; of 2.0, the second; above,
    none; a floor of 0 keeps all."""
    mu = torch.tensor([[1.0, 3.0 ** 0.5, 0.0], [-1.0, 5.0 ** 0.5, 0.0]])
    lv = torch.zeros(2, 3)
    kl = (-0.5 * (1 + lv - mu.square() - lv.exp())).mean(0)
    assert kl.tolist() == pytest.approx([0.5, 2.0, 0.0])
    for floor, want in ((0.5, [1.0, 1.0, 0.0]), (2.0, [0.0, 1.0, 0.0]), (2.01, [0.0, 0.0, 0.0]),
                        (0.0, [1.0, 1.0, 1.0]), (0.49, [1.0, 1.0, 0.0])):
        m = kl_floor_mask(mu, lv, floor)
        assert m.shape == (1, 3) and m.dtype == mu.dtype, floor
        assert m.tolist() == [want], floor


def test_the_kl_floor_counts_the_variance_term():
    mu = torch.zeros(4, 2)
    lv = torch.tensor([[2.0, -2.0]] * 4)  # KL per dim: 0.5*(e^2 - 3) = 2.19, 0.5*(e^-2 + 1) = 0.57
    assert kl_floor_mask(mu, lv, 1.0).tolist() == [[1.0, 0.0]]
    assert kl_floor_mask(mu.double(), lv.double(), 1.0).dtype == torch.float64


# ---------------------------------------------------------------- loss_and_grads

def test_the_gradients_are_autograds_in_the_parameters_order_and_layouts():
    model = small_model()
    x = images(5)
    want_parts, want = autograd(model, x, seed=3)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(3))
    assert parts.loss.item() == pytest.approx(want_parts.loss.item(), rel=1e-5)
    assert parts.recon.item() == pytest.approx(want_parts.recon.item(), rel=1e-5)
    assert parts.kl.item() == pytest.approx(want_parts.kl.item(), rel=1e-4)
    assert parts.per_image.shape == (5,)
    assert parts.loss.item() == pytest.approx(parts.per_image.mean().item(), rel=1e-6)
    named = list(model.named_parameters())
    assert len(grads) == len(named)
    for (name, p), g in zip(named, grads):
        assert g.shape == p.shape and g.stride() == p.stride() and g.dtype == torch.float32, name
        assert rel(g, want[name]) < 1e-5, (name, rel(g, want[name]))


def test_a_weight_scales_every_gradient_not_the_loss():
    model = small_model()
    x = images(4)
    p1, g1 = loss_and_grads(model, x, torch.Generator().manual_seed(2))
    p3, g3 = loss_and_grads(model, x, torch.Generator().manual_seed(2), weight=0.25)
    assert p3.loss.item() == p1.loss.item()
    for a, b in zip(g1, g3):
        torch.testing.assert_close(b, 0.25 * a, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kl_weight", [0.0, 0.4, 1.0])
def test_the_kl_weight_weights_the_kl_terms_gradient_only(kl_weight):
    model = small_model()
    x = images(4)
    want_parts, want = autograd(model, x, seed=7, kl_weight=kl_weight, weight=0.5)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(7), weight=0.5, kl_weight=kl_weight)
    assert parts.kl.item() == pytest.approx(want_parts.kl.item(), rel=1e-4)  # the unweighted term
    for (name, _), g in zip(model.named_parameters(), grads):
        assert rel(g, want[name]) < 1e-5, (name, kl_weight)


def test_free_bits_leave_out_the_kl_gradient_of_the_dimensions_under_the_floor():
    model = small_model(seed=4)
    x = images(6, seed=2)
    mu, lv = model.encoder(x)[:2]
    kl = (-0.5 * (1 + lv - mu.square() - lv.exp())).mean(0).detach()
    floor = kl.sort().values[1].item()  # the smallest dimension under it, the others at or above
    keep = (kl >= floor).float()
    assert 0 < keep.sum() < len(keep)
    want_parts, want = autograd(model, x, seed=5, kl_weight=0.5, keep=keep)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(5), kl_weight=0.5, free_bits=floor)
    assert parts.kl.item() == pytest.approx(want_parts.kl.item(), rel=1e-4)  # the whole KL is still reported
    for (name, _), g in zip(model.named_parameters(), grads):
        assert rel(g, want[name]) < 1e-5, name
    _, plain = loss_and_grads(model, x, torch.Generator().manual_seed(5), kl_weight=0.5, free_bits=0.0)
    _, all_kl = autograd(model, x, seed=5, kl_weight=0.5)
    for (name, _), g in zip(model.named_parameters(), plain):
        assert rel(g, all_kl[name]) < 1e-5, name


def test_the_noise_is_the_generators_like_the_model_draws_it():
    model = small_model()
    x = images(3)
    a, _ = loss_and_grads(model, x, torch.Generator().manual_seed(11))
    b, _ = loss_and_grads(model, x, torch.Generator().manual_seed(11))
    c, _ = loss_and_grads(model, x, torch.Generator().manual_seed(12))
    want = model.loss(x, generator=torch.Generator().manual_seed(11))
    assert a.loss.item() == b.loss.item() != c.loss.item()
    assert a.loss.item() == pytest.approx(want.loss.item(), rel=1e-5)


def test_channels_last_images_and_parameters_are_taken():
    model = small_model().to(memory_format=torch.channels_last)
    x = images(4).contiguous(memory_format=torch.channels_last)
    _, want = autograd(model, x, seed=1)
    _, grads = loss_and_grads(model, x, torch.Generator().manual_seed(1))
    for (name, p), g in zip(model.named_parameters(), grads):
        assert g.stride() == p.stride(), name
        assert rel(g, want[name]) < 1e-5, name


def test_the_trace_holds_both_passes_by_name():
    model = small_model()
    x = images(2)
    trace = {}
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(0), trace=trace)
    for name in ("img", "h1", "h2", "mu", "lv", "eps", "z", "a4", "a5", "a6", "logits",  # forward
                 "dlogits", "db7", "dwt3", "dh5", "dz", "dmu", "dlv", "dw1", "db1"):  # backward
        assert isinstance(trace[name], torch.Tensor), name
    assert trace["parts"] is parts
    assert torch.equal(trace["db1"], grads[1]) and torch.equal(trace["img"], x.reshape(2, 28, 28))
    assert "grads" not in trace or not isinstance(trace["grads"], torch.Tensor)


def test_bfloat16_products_give_float32_gradients_near_float32s():
    model = small_model()
    x = images(4)
    _, want = autograd(model, x, seed=2)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(2), dtype=torch.bfloat16)
    for (name, p), g in zip(model.named_parameters(), grads):
        assert g.dtype == torch.float32 and g.stride() == p.stride(), name
        assert rel(g, want[name]) < 0.2, (name, rel(g, want[name]))
    assert gemm.loss_and_grads is loss_and_grads
