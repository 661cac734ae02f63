"""A float64 reference for every layer of cvae.training.gemm's fast path, on the fast path's own inputs.

tests/test_gemm.py compares the fast path with autograd end to end; in bfloat16 that leaves a
few percent of rounding error (accumulated through the decoder's backward pass), enough to hide
a 0.1% mistake in one layer. Here each layer is recomputed on its own: from the tensors the fast
path fed it (``loss_and_grads(..., trace=...)``: its activations, the gradient that reached the
layer), with the model's own layer (``cvae.model._apply`` on its module, so the padding and crop
are the declaration's) in float64 and autograd for every gradient, and rounded where the fast
path's docstring says it rounds:

- a matrix product (or oneDNN convolution) with ``dtype`` inputs has ``dtype`` inputs (weights and
  activations rounded) and a ``dtype`` output, summed exactly then rounded once;
- a stride-2 transposed convolution's scatter (forward, and the encoder's second convolution's
  input gradient) adds each tap's rounded product into a ``dtype`` sum, one tap group at a time
  in the order of ``cvae.training.gemm._fold_s2`` (:data:`S2_GROUPS`), with the bias after the first;
- the last layer's nine taps are rounded products summed in float32; bias gradients are sums of
  the upstream gradient, rounded to ``dtype`` for the stride-2 transposed convolutions.

What is left between the fast path and this reference is float32 rounding, and the order of the
float32 sums inside the products, which now and then rounds a ``dtype`` result the other way
(:func:`rounding_error` tells those flips apart).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from cvae.training.gemm import native_bf16
from cvae.core.model import _apply, kl_divergence, reconstruction_loss, reparameterize

F64 = torch.float64

# The stride-2 3x3 scatter's taps (kernel row, column) in the groups cvae.training.gemm._fold_s2 adds, in
# its order: rows/columns 0-1 (copied: one per output pixel), then column 2, row 2, the corner.
# Each output pixel gets at most one tap from each group.
S2_GROUPS = (((0, 0), (0, 1), (1, 0), (1, 1)), ((0, 2), (1, 2)), ((2, 0), (2, 1)), ((2, 2),))
# The last (stride-1) layer's taps in the order cvae.training.gemm sums them: the centre, then row-major.
S1_GROUPS = (((1, 1),),) + tuple(((ky, kx),) for ky in range(3) for kx in range(3) if (ky, kx) != (1, 1))

# What cvae.training.gemm takes from PyTorch's own convolution with bfloat16 tensors and whose rounding
# depends on the CPU (see onednn_bf16_convolutions): the second transposed convolution's
# output and the two weight gradients oneDNN computes.
TORCH_CONVOLUTIONS = ("decoder.deconv2: a6", "decoder.deconv2: dweight", "decoder.deconv3: dweight")


def onednn_bf16_convolutions() -> bool:
    """Whether PyTorch runs bfloat16 convolutions with oneDNN on this CPU (AVX-512 and newer):
    each output summed in float32 and rounded once, as the reference assumes. Elsewhere (AVX2
    only; ``ONEDNN_MAX_CPU_ISA=AVX2`` shows it) ATen's own kernels add a transposed convolution's
    taps and the weight gradient's images in bfloat16, one rounding each."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # the check's private name may change
        return native_bf16()


def rnd(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` rounded to ``dtype`` (as the fast path stores it), back in float64."""
    return t.to(dtype).to(F64)


def _f64(t: torch.Tensor, grad: bool = False) -> torch.Tensor:
    return t.detach().to(F64).requires_grad_(grad)


def _chan(bias: torch.Tensor) -> torch.Tensor:
    """A convolution's bias, to add to a (B, C, H, W) output."""
    return bias.view(-1, 1, 1)


def _nchw(t: torch.Tensor, bsz: int, side: int) -> torch.Tensor:
    """A channels-last activation of the fast path, (B*H*W, C) or (B, H, W, C), as (B, C, H, W)."""
    return t.reshape(bsz, side, side, -1).permute(0, 3, 1, 2)


class _Layer(nn.Module):
    """One of the model's layers (spec entry + module), called with weights passed in."""

    def __init__(self, spec: dict, module: nn.Module):
        super().__init__()
        self.spec, self.m = spec, module

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return _apply(self.spec, self.m, h)


class _Model:
    """The model's layers in float64, with weights (rounded as asked) passed in."""

    def __init__(self, model):
        self.spec = {(part, lay["name"]): lay for part in ("encoder", "decoder")
                     for lay in getattr(model, part).spec}
        self.module = {key: getattr(getattr(model, key[0]), key[1]) for key in self.spec}

    def weight(self, key: tuple[str, str], dt: torch.dtype = F64, grad: bool = False) -> torch.Tensor:
        return rnd(self.module[key].weight.detach(), dt).requires_grad_(grad)

    def bias(self, key: tuple[str, str], dt: torch.dtype = F64) -> torch.Tensor:
        return rnd(self.module[key].bias.detach(), dt)

    def pre(self, key, h, w, b=None, taps=None) -> torch.Tensor:
        """The layer's pre-activation output on ``h`` with weight ``w`` (only the kernel ``taps``
        if given) and bias ``b`` (none if not given), in float64."""
        if taps is not None:
            mask = torch.zeros(w.shape[-2:], dtype=F64)
            for tap in taps:
                mask[tap] = 1
            w = w * mask
        if b is None:
            b = torch.zeros(self.module[key].bias.shape, dtype=F64)
        return functional_call(_Layer(self.spec[key], self.module[key]), {"m.weight": w, "m.bias": b}, (h,))

    def scatter(self, key, h, w, groups, tap_dt, sum_dt, bias=None, grad_out=None):
        """Sum over the kernel's tap ``groups``, in order, of the layer's (or, with ``grad_out``,
        its input gradient's) contribution of that group, each rounded to ``tap_dt``, the running
        sum rounded to ``sum_dt`` after each addition; ``bias`` after the first group."""
        out = None
        for i, taps in enumerate(groups):
            if grad_out is None:
                part = self.pre(key, h, w, taps=taps)
            else:
                hg = _f64(h, grad=True)
                (part,) = torch.autograd.grad((self.pre(key, hg, w, taps=taps) * grad_out).sum(), hg)
            part = rnd(part.detach(), tap_dt)
            out = part if out is None else rnd(out + part, sum_dt)
            if i == 0 and bias is not None:
                out = rnd(out + bias, sum_dt)
        return out


def layer_references(model, x: torch.Tensor, trace: dict, grads: dict, dt: torch.dtype,
                     weight: float) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``{"layer: tensor": (fast path's value, reference, at)}`` in float64 and the model's layout,
    for every activation, every gradient passed between layers and every parameter's gradient.
    ``at`` is the reference's value where it was last rounded to ``dt`` (for
    :func:`rounding_error`), None for what the fast path keeps in float32.

    ``trace``: what ``loss_and_grads(model, x, ..., dtype=dt, weight=weight, trace=trace)``
    recorded; ``grads``: its gradients by parameter name. Each reference is computed from the
    fast path's input to that layer, so an error shows in the layer that makes it.
    """
    t = trace
    m = _Model(model)
    bsz = x.shape[0]
    enc_sides = [lay["size_out"] for lay in model.encoder.spec if "size_out" in lay]  # 14, 7
    s2, s4 = enc_sides
    side = model.decoder.spec[-1]["size_out"]  # 28
    g = weight / bsz
    f32 = torch.float32
    conv1, conv2, dense = ("encoder", "conv1"), ("encoder", "conv2"), ("encoder", "dense")
    heads = ("encoder", "z_mean"), ("encoder", "z_log_var")
    ddense, deconv1, deconv2, deconv3 = (("decoder", n) for n in ("dense", "deconv1", "deconv2", "deconv3"))
    out = {}

    def check(name, got, want, at=None):
        out[name] = (_f64(got), want.detach(), None if at is None else at.detach())

    def check_grad(layer, param, want, at=None):
        check(f"{layer}: d{param}", grads[f"{layer}.{param}"], want, at)

    def relu_back(grad, activation):  # the fast path's own mask: where its activation is > 0
        return torch.where(activation.to(F64) > 0, grad, 0)

    img = _f64(x).reshape(bsz, 1, side, side)

    # ---------------------------------------------------------------- forward, layer by layer
    h1 = torch.relu(m.pre(conv1, img, m.weight(conv1), m.bias(conv1)))
    check("encoder.conv1: h1", _nchw(t["h1"], bsz, s2), h1)
    h1_in = rnd(_nchw(t["h1"], bsz, s2).to(F64), dt)  # conv2's input: conv1's output rounded
    y2 = rnd(m.pre(conv2, h1_in, m.weight(conv2, dt)), dt)
    check("encoder.conv2: h2", _nchw(t["h2"], bsz, s4), torch.relu(y2 + _chan(m.bias(conv2))), at=y2)
    h2_in = _nchw(t["h2"], bsz, s4).to(F64)
    check("encoder.dense: h3", t["h3"], torch.relu(m.pre(dense, h2_in, m.weight(dense), m.bias(dense))))
    h3_in = _f64(t["h3"])
    check("encoder.z_mean: mu", t["mu"], m.pre(heads[0], h3_in, m.weight(heads[0]), m.bias(heads[0])))
    check("encoder.z_log_var: lv", t["lv"], m.pre(heads[1], h3_in, m.weight(heads[1]), m.bias(heads[1])))
    check("reparameterize: z", t["z"], reparameterize(_f64(t["mu"]), _f64(t["lv"]), eps=_f64(t["eps"])))
    a4 = rnd(torch.relu(m.pre(ddense, _f64(t["z"]), m.weight(ddense), m.bias(ddense))), dt)
    a4 = a4.view(-1, *m.spec[ddense]["reshape"])
    check("decoder.dense: a4", _nchw(t["a4"], bsz, s4), a4, at=a4)
    a4_in = _nchw(t["a4"], bsz, s4).to(F64)
    y5 = m.scatter(deconv1, a4_in, m.weight(deconv1, dt), S2_GROUPS, dt, dt, bias=_chan(m.bias(deconv1, dt)))
    check("decoder.deconv1: a5", _nchw(t["a5"], bsz, s2), torch.relu(y5), at=y5)
    a5_in = _nchw(t["a5"], bsz, s2).to(F64)
    y6 = rnd(rnd(m.pre(deconv2, a5_in, m.weight(deconv2, dt)), dt) + _chan(m.bias(deconv2, dt)), dt)
    check("decoder.deconv2: a6", _nchw(t["a6"], bsz, side), torch.relu(y6), at=y6)
    a6_in = _nchw(t["a6"], bsz, side).to(F64)
    logits = m.scatter(deconv3, a6_in, m.weight(deconv3, dt), S1_GROUPS, dt, f32)
    logits = rnd(logits + _chan(m.bias(deconv3)), f32)
    check("decoder.deconv3: logits", t["logits"].reshape(bsz, 1, side, side), logits)
    img_l, logits_in = img, _f64(t["logits"]).reshape(bsz, 1, side, side)
    recon, kl = reconstruction_loss(img_l, logits_in), kl_divergence(_f64(t["mu"]), _f64(t["lv"]))
    check("loss: recon", t["parts"].recon, recon.mean())
    check("loss: kl", t["parts"].kl, kl.mean())
    check("loss: loss", t["parts"].loss, (recon + kl).mean())

    # ---------------------------------------------------------------- backward, layer by layer
    # d(weight * mean loss) / d logits
    lg = _f64(logits_in, grad=True)
    (dlogits,) = torch.autograd.grad(g * reconstruction_loss(img_l, lg).sum(), lg)
    check("loss: dlogits", t["dlogits"].reshape(bsz, 1, side, side), dlogits)

    # deconv3: its products take the logits' gradient rounded to dt; its bias gradient sums it unrounded.
    up = rnd(t["dlogits"].reshape(bsz, 1, side, side).to(F64), dt)
    a6g, w = _f64(a6_in, grad=True), m.weight(deconv3, dt, grad=True)
    da6, dw = torch.autograd.grad((m.pre(deconv3, a6g, w) * up).sum(), (a6g, w))
    check("decoder.deconv3: dh6", _nchw(t["dh6"], bsz, side), rnd(da6, dt), at=rnd(da6, dt))
    check_grad("decoder.deconv3", "weight", rnd(dw, dt), at=rnd(dw, dt))
    check_grad("decoder.deconv3", "bias", _f64(t["dlogits"]).sum().reshape(1))

    # deconv2: the gradient that reaches its output through its ReLU
    up = relu_back(_nchw(t["dh6"], bsz, side).to(F64), _nchw(t["a6"], bsz, side))
    a5g, w = _f64(a5_in, grad=True), m.weight(deconv2, dt, grad=True)
    da5, dw = torch.autograd.grad((m.pre(deconv2, a5g, w) * up).sum(), (a5g, w))
    check("decoder.deconv2: dx5", _nchw(t["dx5"], bsz, s2), rnd(da5, dt), at=rnd(da5, dt))
    check_grad("decoder.deconv2", "weight", rnd(dw, dt), at=rnd(dw, dt))
    db = rnd(up.sum((0, 2, 3)), dt)
    check_grad("decoder.deconv2", "bias", db, at=db)

    # deconv1
    up = relu_back(_nchw(t["dx5"], bsz, s2).to(F64), _nchw(t["a5"], bsz, s2))
    a4g, w = _f64(a4_in, grad=True), m.weight(deconv1, dt, grad=True)
    da4, dw = torch.autograd.grad((m.pre(deconv1, a4g, w) * up).sum(), (a4g, w))
    check("decoder.deconv1: dh4", _nchw(t["dh4"], bsz, s4), relu_back(rnd(da4, dt), a4_in), at=rnd(da4, dt))
    check_grad("decoder.deconv1", "weight", rnd(dw, dt), at=rnd(dw, dt))
    db = rnd(up.sum((0, 2, 3)), dt)
    check_grad("decoder.deconv1", "bias", db, at=db)

    # decoder.dense (float32): the upstream gradient is already through its ReLU
    up = _nchw(t["dh4"], bsz, s4).to(F64).reshape(bsz, -1)
    zg, w, b = _f64(t["z"], grad=True), m.weight(ddense, grad=True), m.bias(ddense).requires_grad_()
    dz, dw, db = torch.autograd.grad((m.pre(ddense, zg, w, b) * up).sum(), (zg, w, b))
    check("decoder.dense: dz", t["dz"], dz)
    check_grad("decoder.dense", "weight", dw)
    check_grad("decoder.dense", "bias", db)

    # the two heads, the reparameterisation and the KL term (float32)
    h3g = _f64(h3_in, grad=True)
    wb = [m.weight(k, grad=True) for k in heads] + [m.bias(k).requires_grad_() for k in heads]
    mu, lv = (m.pre(k, h3g, wk, bk) for k, wk, bk in zip(heads, wb[:2], wb[2:]))
    loss = (reparameterize(mu, lv, eps=_f64(t["eps"])) * _f64(t["dz"])).sum() + g * kl_divergence(mu, lv).sum()
    dmu, dlv, dh3, dwmu, dwlv, dbmu, dblv = torch.autograd.grad(loss, (mu, lv, h3g, *wb))
    check("encoder.z_mean: dmu", t["dmu"], dmu)
    check("encoder.z_log_var: dlv", t["dlv"], dlv)
    check_grad("encoder.z_mean", "weight", dwmu)
    check_grad("encoder.z_mean", "bias", dbmu)
    check_grad("encoder.z_log_var", "weight", dwlv)
    check_grad("encoder.z_log_var", "bias", dblv)
    check("encoder.dense: dh3", t["dh3"], relu_back(dh3, t["h3"]))

    # encoder.dense (float32)
    up = _f64(t["dh3"])
    h2g, w, b = _f64(h2_in, grad=True), m.weight(dense, grad=True), m.bias(dense).requires_grad_()
    dh2, dw, db = torch.autograd.grad((m.pre(dense, h2g, w, b) * up).sum(), (h2g, w, b))
    check("encoder.conv2: dh2", _nchw(t["dh2"], bsz, s4), relu_back(dh2, _nchw(t["h2"], bsz, s4)))
    check_grad("encoder.dense", "weight", dw)
    check_grad("encoder.dense", "bias", db)

    # conv2: its products take the gradient rounded to dt; its input gradient is a stride-2 scatter
    dh2_in = _nchw(t["dh2"], bsz, s4).to(F64)
    up = rnd(dh2_in, dt)
    h1g, w = _f64(h1_in, grad=True), m.weight(conv2, dt, grad=True)
    (dw,) = torch.autograd.grad((m.pre(conv2, h1g, w) * up).sum(), w)
    check_grad("encoder.conv2", "weight", rnd(dw, dt), at=rnd(dw, dt))
    check_grad("encoder.conv2", "bias", dh2_in.sum((0, 2, 3)))
    dh1 = m.scatter(conv2, h1_in, m.weight(conv2, dt), S2_GROUPS, dt, dt, grad_out=up)
    check("encoder.conv1: dh1", _nchw(t["dh1"], bsz, s2), relu_back(dh1, _nchw(t["h1"], bsz, s2)), at=dh1)

    # conv1 (float32: nine taps of one channel)
    up = _nchw(t["dh1"], bsz, s2).to(F64)
    w, b = m.weight(conv1, grad=True), m.bias(conv1).requires_grad_()
    dw, db = torch.autograd.grad((m.pre(conv1, img, w, b) * up).sum(), (w, b))
    check_grad("encoder.conv1", "weight", dw)
    check_grad("encoder.conv1", "bias", db)
    return out


def _unit(at: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The unit in the last place of ``dtype`` at ``at`` (the spacing above |at|)."""
    _, exponent = torch.frexp(at)  # at = m * 2^exponent, 0.5 <= |m| < 1: the unit is eps * 2^(exponent-1)
    return torch.ldexp(torch.full_like(at, torch.finfo(dtype).eps), exponent - 1).clamp_min(torch.finfo(dtype).tiny)


def rounding_error(got: torch.Tensor, want: torch.Tensor, at: torch.Tensor, dtype: torch.dtype):
    """How ``got`` differs from ``want``, a reference rounded to ``dtype`` where its value was ``at``.

    An element more than a quarter of a unit in the last place (of ``dtype`` at ``at``) away was
    rounded the other way (a "flip"; the float32 sums inside a product land on the other side of
    a rounding boundary now and then); a 0.1% error in a tensor that is not rounded afterwards
    moves every element by less than that. Returns ``(flips, size, worst, rest)``: the number of
    flipped elements, the number of elements, the largest flip in units in the last place of the
    tensor's largest element, and the relative error (norm of the difference / norm of ``want``)
    of all the other elements.
    """
    diff = (got - want).abs()
    flip = diff > _unit(at, dtype) / 4
    worst = (diff.max() / _unit(at.abs().max(), dtype)).item() if flip.any() else 0.0
    rest = (diff[~flip].norm() / want.norm().clamp_min(1e-30)).item()
    return int(flip.sum()), flip.numel(), worst, rest
