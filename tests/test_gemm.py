"""cvae.training.gemm: the hand-written forward and backward pass the CPU trainer uses.

float32 products must give autograd's gradients of ``model.loss`` (to float rounding);
bfloat16 ones must stay as close to them as PyTorch's own bfloat16 autocast does. Layer by
layer, both must give what the model's own layer gives in float64 on the same inputs, rounded
where the fast path rounds (tests/gemm_reference.py), to within a 0.1% error.
"""

import importlib

import pytest
import torch

from cvae import CVAE, TrainConfig

from cvae import train
from cvae.training.gemm import loss_and_grads
from cvae.training.hardware import matmul_dtypes
from gemm_reference import TORCH_CONVOLUTIONS, layer_references, onednn_bf16_convolutions, rounding_error
from devkit import DATA_DIR, needs_data
from stepcheck import shard_reference, split_step


def _autograd(model, x, seed, autocast=False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        parts = model.loss(x, generator=torch.Generator().manual_seed(seed))
    parts.loss.backward()
    return parts, [p.grad.clone() for p in model.parameters()]


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# Batch 1, an odd batch, the trainer's batch, and a non-default model size (nothing may be
# hard-coded but the 28x28 image).
CASES = {"b32": (dict(), 32), "b1": (dict(), 1), "b7": (dict(), 7),
         "small-b7": (dict(latent_dim=3, filters=(8, 16), dense=5), 7)}


def _case(name):
    config, batch = CASES[name]
    torch.manual_seed(0)
    model = CVAE(**config)
    with torch.no_grad():  # non-zero biases, so every bias path is exercised
        for pname, p in model.named_parameters():
            if pname.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    x = torch.rand(batch, 1, 28, 28)
    x[x < 0.5] = 0.0  # MNIST-like: many exact zeros
    return model, x


# float32: the largest relative error (norm of the difference / norm) over every parameter and
# case, measured against autograd in float32, is 2.4e-6 (decoder.deconv2.bias, batch 32): other
# summation orders. A 0.1% error in any gradient is 400x that.
F32_TOL = 1e-5


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_products_give_autograds_gradients(case, channels_last):
    model, x = _case(case)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want_parts, want = _autograd(model, x, seed=5)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(5), torch.float32, weight=0.25)
    assert parts.loss.item() == pytest.approx(want_parts.loss.item(), rel=1e-6)
    assert parts.recon.item() == pytest.approx(want_parts.recon.item(), rel=1e-6)
    assert parts.kl.item() == pytest.approx(want_parts.kl.item(), rel=1e-6, abs=1e-6)
    for (name, p), g, w in zip(model.named_parameters(), grads, want):
        assert g.shape == p.shape and g.dtype == torch.float32, name
        # The fused optimizers read .grad with the parameter's strides.
        assert g.stride() == p.stride(), name
        assert _rel(g, 0.25 * w) < F32_TOL, (name, _rel(g, 0.25 * w))


# bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%), so its gradients differ
# from float32's by far more than 0.1%; the reference is autograd in float32 and each bound is
# 1.5x the largest error measured over CASES, per parameter, on a CPU with native bfloat16 and
# with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (most laptops: PyTorch's own
# convolutions round more often there; decoder.deconv3.weight 2.9e-3 vs 5.9e-3). A wrong
# index, layout or missing term is O(1); a 0.1% error in any layer is caught by the
# layer-by-layer test below.
BF16_TOL = {
    "encoder.conv1.weight": 0.037, "encoder.conv1.bias": 0.026, "encoder.conv2.weight": 0.028,
    "encoder.conv2.bias": 0.027, "encoder.dense.weight": 0.01, "encoder.dense.bias": 0.0097,
    "encoder.z_mean.weight": 0.014, "encoder.z_mean.bias": 0.013, "encoder.z_log_var.weight": 0.11,
    "encoder.z_log_var.bias": 0.093, "decoder.dense.weight": 0.11, "decoder.dense.bias": 0.093,
    "decoder.deconv1.weight": 0.056, "decoder.deconv1.bias": 0.033, "decoder.deconv2.weight": 0.024,
    "decoder.deconv2.bias": 0.012, "decoder.deconv3.weight": 0.0088, "decoder.deconv3.bias": 0.0004,
}


@pytest.mark.parametrize("case", CASES)
def test_bfloat16_products_stay_within_their_measured_error(case):
    model, x = _case(case)
    want_parts, want = _autograd(model, x, seed=5)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(5), torch.bfloat16)
    assert parts.loss.item() == pytest.approx(want_parts.loss.item(), rel=1e-3)
    assert [n for n, _ in model.named_parameters()] == list(BF16_TOL)
    for (name, p), g, w in zip(model.named_parameters(), grads, want):
        assert g.shape == p.shape and g.dtype == torch.float32 and g.stride() == p.stride(), name
        assert _rel(g, w) < BF16_TOL[name], (name, _rel(g, w))


# Layer by layer, on the fast path's own inputs (tests/gemm_reference.py): the end-to-end
# bfloat16 bounds above are a few percent, the rounding accumulated through the decoder's
# backward pass, so they cannot see a 0.1% mistake in one layer; here each layer's activation,
# parameter gradients and input gradient are recomputed with autograd in float64 from what the
# fast path fed that layer, and rounded where it rounds.
#
# What the fast path computes in float32 (everything with float32 products; the encoder's dense
# layers, the heads, the loss and the float32 sums of a bfloat16 step): relative error at most
# LAYER_TOL. Measured over CASES: 1.3e-6 in float32 (decoder.dense's input gradient, batch 1),
# 1.6e-6 in bfloat16 (the same); over 20 other seeds 5.7e-6 (the KL term of one image, which
# nearly cancels). A 0.1% error is 1e-3.
LAYER_TOL = 1e-5
# What the fast path rounds to bfloat16 equals the rounded reference but for "flips": elements
# rounded the other way because the float32 sums inside a product (in their own order) landed on
# the other side of a rounding boundary (gemm_reference.rounding_error). Measured over CASES
# and 20 other seeds: at most 34 of 401,408 elements (deconv2's input gradient, batch 32) and
# 1 of 288 (deconv3's weight gradient, batch 7), 6.4e-4 of any tensor over 1,000 elements;
# each flip at most one unit in the last place of the tensor's largest element (a6, batch 32: a
# flip before a bias add or inside a scatter is a unit of a partial sum, which can be larger
# than any result, hence FLIP_ULPS = 2); the other elements equal (the bias added in
# float32 after conv2's product: relative error 3.3e-8, float32's rounding of the sum). A 0.1%
# error before the rounding flips 10-18% of the elements (bfloat16's unit is 0.4-0.8%; measured
# with dwt1, dh6, dx5 and dcols2 scaled inside their products); after it (a float32 tensor of
# bfloat16 values scaled) it moves every element by a tenth to a quarter of a unit: a relative
# error of 1e-3 among the elements that did not flip. (Scaling a bfloat16 tensor by 1.001 in
# bfloat16 changes nothing: every element rounds back to itself.)
FLIP_TOL = 0.002  # flips allowed: FLIP_TOL of the elements, plus two (a small tensor's one flip)
FLIP_ULPS = 2.0  # the largest flip, in units in the last place of the tensor's largest element
REST_TOL = 1e-7  # relative error of the elements that did not flip
# Where PyTorch's bfloat16 convolutions are not oneDNN's (CPUs without AVX-512, where the
# trainer's precision "auto" never picks bfloat16), ATen's own kernels round more often: the
# three TORCH_CONVOLUTIONS tensors are then off by up to 7.5e-3 (relative; 10 seeds under
# ONEDNN_MAX_CPU_ISA=AVX2) and are held only to CONV_FALLBACK_TOL there; everything the fast
# path multiplies itself keeps the bounds above (they hold under that emulation too).
CONV_FALLBACK_TOL = 0.015


def _layer_check(case, dtype):
    """``{"layer: tensor": error}`` for every layer of the fast path (the figures quoted above),
    and the failures."""
    model, x = _case(case)
    trace = {}
    _, grads = loss_and_grads(model, x, torch.Generator().manual_seed(5), dtype, weight=0.25, trace=trace)
    names = [n for n, _ in model.named_parameters()]
    checks = layer_references(model, x, trace, dict(zip(names, grads)), dtype, weight=0.25)
    # every parameter's gradient is among them
    assert {"{}: d{}".format(*n.rsplit(".", 1)) for n in names} <= set(checks)
    assert set(TORCH_CONVOLUTIONS) <= set(checks)
    fallback = set() if dtype is torch.float32 or onednn_bf16_convolutions() else set(TORCH_CONVOLUTIONS)
    errors, failures = {}, []
    for name, (got, want, at) in checks.items():
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if at is None or dtype is torch.float32 or name in fallback:
            errors[name] = err = _rel(got, want)
            if err > (CONV_FALLBACK_TOL if name in fallback else LAYER_TOL):
                failures.append(f"{name}: relative error {err:.2e}")
        else:
            errors[name] = flips, n, worst, rest = rounding_error(got, want, at, dtype)
            if flips > FLIP_TOL * n + 2 or worst > FLIP_ULPS or rest > REST_TOL:
                failures.append(f"{name}: {flips} of {n} elements rounded the other way, the largest by "
                                f"{worst:.2f} units; relative error of the others {rest:.2e}")
    return errors, failures


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("case", CASES)
def test_every_layer_gives_autograds_result_on_its_own_inputs(case, dtype):
    _, failures = _layer_check(case, dtype)
    assert not failures, "\n".join(failures)


def test_bfloat16_products_stay_as_close_as_autocast():
    """Per parameter, the bfloat16 gradient is within 1.5x the error of PyTorch's bfloat16
    autocast (the usual mixed precision) relative to float32, and the loss within 0.1%."""
    torch.manual_seed(1)
    model = CVAE()
    x = torch.rand(32, 1, 28, 28)
    want_parts, want = _autograd(model, x, seed=3)
    _, autocast = _autograd(model, x, seed=3, autocast=True)
    parts, grads = loss_and_grads(model, x, torch.Generator().manual_seed(3), torch.bfloat16)
    assert parts.loss.item() == pytest.approx(want_parts.loss.item(), rel=1e-3)
    for (name, _), g, w, a in zip(model.named_parameters(), grads, want, autocast):
        assert g.dtype == torch.float32
        assert _rel(g, w) <= max(1.5 * _rel(a, w), 0.01), (name, _rel(g, w), _rel(a, w))


def test_a_model_declared_otherwise_is_refused():
    """The fast path implements one layer layout; a model whose declaration differs (here a
    stride changed after construction) is refused, not trained on the wrong maths."""
    model = CVAE()
    model.decoder.spec = [dict(layer) for layer in model.decoder.spec]
    model.decoder.spec[1]["crop"] = [1, 0]
    with pytest.raises(NotImplementedError, match="declares"):
        loss_and_grads(model, torch.rand(2, 1, 28, 28))


def test_precision_setting_resolves_per_device(monkeypatch):
    mod = importlib.import_module("cvae.training.hardware")
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert matmul_dtypes("fp32", cpu) == [None]  # the stock layers
    assert matmul_dtypes("bf16", cpu) == [torch.bfloat16]
    assert matmul_dtypes("auto", gpu) == [None] and matmul_dtypes("fp32", gpu) == [None]
    with pytest.raises(ValueError, match="precision bf16 is for training on a CPU"):
        matmul_dtypes("bf16", gpu)
    monkeypatch.setattr(mod, "native_bf16", lambda: True)
    assert matmul_dtypes("auto", cpu) == [torch.bfloat16, None]  # the pacer takes the faster at the moment
    monkeypatch.setattr(mod, "native_bf16", lambda: False)
    assert matmul_dtypes("auto", cpu) == [torch.float32, None]  # emulated bfloat16 is slower than float32
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")


@needs_data
@pytest.mark.slow  # two two-epoch runs on 3,000 images
def test_bfloat16_training_learns_like_float32():
    """Real MNIST, 2 epochs on 3,000 images, the batch split over two threads (one thread per op,
    which keeps its pace on a crowded machine, where every core per op does not): the bfloat16 run's
    test loss is within 0.5% of the float32 run's, and both far below the untrained model's.
    Measured with the fast recipe (batch 64): 206.07 against 206.00 for seed 0 (0.03%) and 207.42
    against 207.46 for seed 1 (0.02%) on an AVX-512 CPU without native bfloat16; 206.42 against
    206.16 (0.13%) on one with it. A wrong product in either precision moves the loss by far more."""
    from cvae import evaluate, load_mnist

    train_x, _ = load_mnist("train", DATA_DIR, download=False, limit=3000)
    test_x, _ = load_mnist("test", DATA_DIR, download=False, limit=1000)
    start = evaluate(CVAE(), test_x)["loss"]
    res = {p: train(TrainConfig.from_recipe("fast", epochs=2, precision=p, seed=0, workers=2), train_x, test_x)
           for p in ("fp32", "bf16")}
    f32, b16 = (res[p].best_val_loss for p in ("fp32", "bf16"))
    assert f32 < 0.5 * start and b16 < 0.5 * start
    assert b16 == pytest.approx(f32, rel=0.005)


def test_the_gemm_step_leaves_frozen_parameters_alone():
    """A parameter that does not require grad gets no gradient, and the others still get theirs."""
    torch.manual_seed(0)
    model = CVAE()
    model.encoder.conv1.weight.requires_grad_(False)
    x = torch.rand(8, 1, 28, 28)
    _, grads = split_step(model, x, 1, dtype=torch.float32)
    names = [n for n, _ in model.named_parameters()]
    got = dict(zip(names, grads))
    assert got["encoder.conv1.weight"] is None
    ref = dict(zip(names, shard_reference(model, x, 1)["grads"]))
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert _rel(got[name], ref[name]) < F32_TOL, (name, _rel(got[name], ref[name]))
