"""The CVAE's training loss and its gradients as explicit matrix products (CPU training).

PyTorch's CPU convolution kernels run this model's small layers far below what the same
arithmetic reaches as plain matrix products, in float32 and much more so in bfloat16
(docs/performance.md has the figures). So for training this module writes most layers as one matrix product plus strided copies
(im2col for the convolutions, the four-phase scatter for the stride-2 transposed ones)
on channels-last activations, and works out the backward pass by hand (no autograd
graph). Where oneDNN's channels-last convolution called directly (no autograd, no bias,
no layout conversion) is faster within a whole step, it is used instead: the second
transposed convolution both ways and the last layer's backward pass (the largest tensors,
whose im2col copies cost more than the products). The same kernels were slower for the
other layers, so those stay matrix products. With float32 products :func:`loss_and_grads`
returns what ``model.loss(x).loss.backward()`` computes, to float rounding;
tests/test_gemm.py checks that for every parameter (within 1e-5 relative), and that bfloat16
products stay within their measured error and as close to it as PyTorch's
bfloat16 autocast does; and, layer by layer on the inputs this module fed it (``trace``), that
every activation and gradient is what the model's own layer gives in float64, rounded where
this module rounds (tests/gemm_reference.py). The layers implemented here are the model's
declaration (``cvae.core.model.encoder_spec``/``decoder_spec``) as :data:`LAYOUT` spells it out;
:func:`check_layout` refuses a model declared otherwise. The loss itself is the model's
(:func:`cvae.core.model.reconstruction_loss`, :func:`cvae.core.model.kl_divergence`).

``dtype`` is the precision of the matrix products' inputs. ``torch.bfloat16`` rounds
activations, weights and gradients to 8 significant bits (PyTorch's own CPU autocast does
the same); the transposed convolutions' scatter, bias and ReLU run in bfloat16 too, since
their outputs are the next product's bfloat16 inputs. The encoder's dense layers, the last
layer's scatter, the loss and the optimizer's weights stay float32; gradients are summed in
float32 (inside the products, and for the biases), and the stride-2 transposed convolutions'
bias gradients are rounded to bfloat16 once at the end. The trainer's pacer
(:mod:`cvae.training.pace`, ``TrainConfig.precision="auto"``) offers bfloat16 products only where
the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX; elsewhere it is slower), and float32
products elsewhere, each beside PyTorch's stock layers; it takes whichever it measures faster.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..core.model import IMAGE_SIZE, CVAE, LossParts, kl_divergence, reconstruction_loss

# The layout the hand-written products below implement, per layer of the model's declaration
# (cvae.model.encoder_spec / decoder_spec): (kind, kernel, stride, "same" pad or crop
# [before, after], activation). Checked on every call, so a model declared otherwise (or a
# change to the Keras padding rule) stops here instead of training on the wrong maths.
LAYOUT = {
    "encoder": [("conv", 3, 2, [0, 1], "relu"), ("conv", 3, 2, [0, 1], "relu"), ("dense", "relu"),
                ("dense", "linear"), ("dense", "linear")],
    "decoder": [("dense", "relu"), ("conv_transpose", 3, 2, [0, 1], "relu"),
                ("conv_transpose", 3, 2, [0, 1], "relu"), ("conv_transpose", 3, 1, [1, 1], "sigmoid")],
}


def _layout(spec: list[dict]) -> list[tuple]:
    return [(lay["kind"], lay["activation"]) if lay["kind"] == "dense" else
            (lay["kind"], lay["kernel"], lay["stride"], lay.get("pad") or lay.get("crop"), lay["activation"])
            for lay in spec]


def check_layout(model: CVAE) -> None:
    """Raise NotImplementedError unless ``model`` is declared with the layers this module
    implements (any channel counts, latent size and dense width)."""
    for part in ("encoder", "decoder"):
        got = _layout(getattr(model, part).spec)
        if got != LAYOUT[part]:
            raise NotImplementedError(f"cvae.training.gemm implements the {part} {LAYOUT[part]}, "
                                      f"but the model declares {got}; train with precision fp32")


def native_bf16() -> bool:
    """True where this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(cpu, name)()) for name in checks if hasattr(cpu, name))
    except RuntimeError:
        return False


def _fold_s2(y: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W, 3, 3, C) tap products -> (B, 2H, 2W, C), out[2i+ky, 2j+kx] += y[i, j, ky, kx] (+ bias).

    The stride-2 scatter of a 3x3 kernel, cropped to 2H x 2W (Keras "same" drops the last
    row and column), in y's dtype. Kernel rows/columns 0 and 1 land on distinct output
    pixels, (2i+ky, 2j+kx), so they are copied (as runs of 2 taps x C channels); index 2
    lands where the next input row/column's index 0 did, so it is added. No zero fill, no
    crop copy, six passes.
    """
    b_, h, w, _, _, c = y.shape
    out = torch.empty(b_, h, 2, w, 2, c, dtype=y.dtype)
    for a in (0, 1):
        out[:, :, a] = y[:, :, :, a, :2]
    if bias is not None:  # one pass over the whole (contiguous) output
        out += bias
    out[:, :, :, 1:, 0] += y[:, :, :-1, :2, 2].transpose(2, 3)  # kernel column 2, rows 0-1
    out[:, 1:, 0] += y[:, :-1, :, 2, :2]  # kernel row 2, columns 0-1
    out[:, 1:, 0, 1:, 0] += y[:, :-1, :-1, 2, 2]
    return out.view(b_, 2 * h, 2 * w, c)


def _taps_s2(src: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, 2h, 2w, C) -> (B*h*w, 9*C) in ``dtype``, row (i, j) = [src[2i+ky, 2j+kx] for ky, kx],
    zero where 2i+ky or 2j+kx falls outside (the im2col of a stride-2 3x3 window whose
    padding is one row/column at the bottom/right)."""
    b, h2, w2, c = src.shape
    h, w = h2 // 2, w2 // 2
    s0, s1, s2, _ = src.stride()
    if src.stride(3) != 1 or s2 != c:
        src = src.contiguous()
        s0, s1, s2, _ = src.stride()
    out = torch.empty(b, h, w, 3, 3 * c, dtype=dtype)
    # Kernel columns 0-2 x channels are one contiguous run of 3C in both: one copy for all but
    # the last column.
    out[:, :, :-1, :2] = src.as_strided((b, h, w - 1, 2, 3 * c), (s0, 2 * s1, 2 * s2, s1, 1))
    out[:, :-1, :-1, 2] = src[:, 2::2].as_strided((b, h - 1, w - 1, 3 * c), (s0, 2 * s1, 2 * s2, 1))
    # The last column: kernel columns 0-1 from input columns 2w-2, 2w-1; column 2 is outside.
    last = src[:, :, w2 - 2:]
    out[:, :, -1, :2, :2 * c] = last.as_strided((b, h, 2, 2 * c), (s0, 2 * s1, s1, 1))
    out[:, :-1, -1, 2, :2 * c] = last[:, 2::2].reshape(b, h - 1, 2 * c)
    out[:, :, -1, :, 2 * c:] = 0
    out[:, -1, :, 2] = 0  # kernel row 2 below the last row
    return out.view(b * h * w, 9 * c)


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int, transposed: bool = False) -> torch.Tensor:
    """oneDNN's convolution (or transposed convolution), no padding, no bias, on channels-last
    activations: ``x`` (B, H, W, C) -> (B, H', W', C') (a view of a channels-last result)."""
    conv = F.conv_transpose2d if transposed else F.conv2d
    return conv(x.permute(0, 3, 1, 2), w, None, stride=stride).permute(0, 2, 3, 1)


def _conv_back(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, stride: int, transposed: bool = False,
               padding: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dw) of :func:`_conv` (with ``padding``) from dy = d loss / d output; activations
    (B, H, W, C). The bias gradient is left to the caller: asking oneDNN for it doubled the
    call's time here."""
    dx, dw, _ = torch.ops.aten.convolution_backward(
        dy.permute(0, 3, 1, 2), x.permute(0, 3, 1, 2), w, None,
        [stride] * 2, [padding] * 2, [1, 1], transposed, [0, 0], 1, [True, True, False])
    return dx.permute(0, 2, 3, 1), dw


def _relu_back(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The gradient through a ReLU, given its output: grad where out > 0, else 0 (one pass)."""
    return torch.ops.aten.threshold_backward(grad, out, 0)


def _forward(model: CVAE, x: torch.Tensor, generator: torch.Generator | None, dt: torch.dtype) -> dict:
    """The loss's forward pass; returns every tensor the backward pass needs, by name."""
    check_layout(model)
    enc, dec = model.encoder, model.decoder
    bsz = x.shape[0]
    side = IMAGE_SIZE
    f1 = enc.conv1.out_channels
    f2 = enc.conv2.out_channels
    s2 = enc.spec[0]["size_out"]  # 14
    s4 = enc.spec[1]["size_out"]  # 7
    # Weights as matrices whose rows / columns match the channels-last activations.
    w1 = enc.conv1.weight.detach().permute(2, 3, 1, 0).reshape(9, f1)  # (ky, kx) x out
    w2 = enc.conv2.weight.detach().permute(2, 3, 1, 0).reshape(9 * f1, f2)  # (ky, kx, in) x out
    wd = enc.dense.weight.detach().view(-1, f2, s4 * s4).transpose(1, 2).reshape(-1, f2 * s4 * s4)
    wmu, wlv = enc.z_mean.weight.detach(), enc.z_log_var.weight.detach()
    wz = dec.dense.weight.detach().view(f2, s4 * s4, -1).transpose(0, 1).reshape(f2 * s4 * s4, -1)
    bz = dec.dense.bias.detach().view(f2, s4 * s4).t().reshape(-1)
    wt1 = dec.deconv1.weight.detach().permute(0, 2, 3, 1).reshape(f2, 9 * f2)  # in x (ky, kx, out)
    wt3 = dec.deconv3.weight.detach().permute(0, 2, 3, 1).reshape(f1, 9)

    # ---- forward ----
    img = x.detach().reshape(bsz, side, side).float()
    xpad = F.pad(img, (0, 1, 0, 1))  # Keras "same", stride 2: pad bottom/right
    cols1 = xpad.as_strided((bsz, s2, s2, 3, 3),
                            (xpad.stride(0), 2 * xpad.stride(1), 2, xpad.stride(1), 1)).reshape(-1, 9)
    h1 = torch.relu(torch.addmm(enc.conv1.bias.detach(), cols1, w1))  # (B*14*14, f1); K = 9: float32
    cols2 = _taps_s2(h1.view(bsz, s2, s2, f1).to(dt), dt)  # (B*49, 9*f1); cast before the 9-fold copy
    w2d = w2.to(dt)
    h2 = torch.mm(cols2, w2d).float().add_(enc.conv2.bias.detach()).relu_()  # (B*49, f2)
    h2f = h2.view(bsz, -1)
    h3 = torch.relu(torch.addmm(enc.dense.bias.detach(), h2f, wd.t()))
    mu = torch.addmm(enc.z_mean.bias.detach(), h3, wmu.t())
    lv = torch.addmm(enc.z_log_var.bias.detach(), h3, wlv.t())
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    std = torch.exp(0.5 * lv)
    z = mu + std * eps
    a4 = torch.relu(torch.addmm(bz, z, wz.t())).to(dt).view(-1, f2)  # (B*49, f2) channels-last
    wt1d = wt1.to(dt)
    # The transposed convolutions' outputs are summed, biased and rectified in dt: they are
    # the next product's inputs, which would be rounded to dt anyway.
    a5 = _fold_s2(torch.mm(a4, wt1d).view(bsz, s4, s4, 3, 3, f2), dec.deconv1.bias.detach().to(dt))
    a5 = a5.relu_().view(-1, f2)  # (B*14*14, f2)
    # The second transposed convolution is the largest layer; oneDNN's own channels-last
    # kernel beats the tap product + scatter here (no bias inside: its biased form is slow).
    wt2c = dec.deconv2.weight.detach().to(dt)  # (in, out, 3, 3)
    y6 = _conv(a5.view(bsz, s2, s2, f2), wt2c, 2, transposed=True)
    a6 = y6[:, :side, :side].add(dec.deconv2.bias.detach().to(dt)).relu_()
    a6 = a6.view(-1, f1)  # (B*28*28, f1), the 2H+1 output cropped to 2H
    wt3d = wt3.to(dt)
    wt3c = dec.deconv3.weight.detach().to(dt)
    y7 = torch.mm(a6, wt3d).view(bsz, side, side, 3, 3)
    # Stride 1, padding 1: out[r, c] = sum of y7[r+1-ky, c+1-kx, ky, kx] over the taps inside.
    logits = y7[:, :, :, 1, 1].to(torch.float32, copy=True)
    for ky in range(3):
        for kx in range(3):
            if (ky, kx) != (1, 1):
                dy, dx = ky - 1, kx - 1
                logits[:, max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] += \
                    y7[:, max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0), ky, kx]
    logits += dec.deconv3.bias.detach()

    recon_i = reconstruction_loss(img, logits)
    kl_i = kl_divergence(mu, lv)
    per_image = recon_i + kl_i
    parts = LossParts(loss=per_image.mean(), recon=recon_i.mean(), kl=kl_i.mean(), per_image=per_image)

    return locals()  # every name above, for the backward pass


def kl_floor_mask(mu: torch.Tensor, lv: torch.Tensor, free_bits: float) -> torch.Tensor:
    """(1, latent) 1.0 where a latent dimension's KL, averaged over the batch, is at least
    ``free_bits`` nats (its KL term has a gradient), else 0.0."""
    kl_d = (-0.5 * (1 + lv - mu.square() - lv.exp())).mean(0, keepdim=True)
    return (kl_d >= free_bits).to(mu.dtype)


def loss_and_grads(model: CVAE, x: torch.Tensor, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32, weight: float = 1.0, trace: dict | None = None,
                   kl_weight: float = 1.0, free_bits: float = 0.0):
    """The batch's mean loss parts and ``weight`` times the gradient of its mean loss, the KL term
    weighted ``kl_weight`` in that gradient (KL annealing; the parts are the unweighted terms), and
    a latent dimension's KL term left out of it while its batch mean is under ``free_bits`` nats.

    ``x``: (B, 1, 28, 28) in [0, 1], any memory format. Returns ``(LossParts, grads)`` with
    ``grads`` in the order of ``model.parameters()``. The noise of z is drawn like
    :func:`cvae.model.reparameterize` (``torch.randn`` of z_mean's shape with ``generator``),
    so a seeded step draws the same z as the stock path. ``trace``, if a dict, receives every
    intermediate tensor of both passes by its name below (activations, weights as multiplied,
    gradients), so each layer can be checked on its own inputs (tests/test_gemm.py does).
    """
    v = SimpleNamespace(**_forward(model, x, generator, dtype))
    bsz, side, f1, f2, s2, s4, dt = v.bsz, v.side, v.f1, v.f2, v.s2, v.s4, v.dt

    # ---- backward (of weight * mean loss) ----
    g = weight / bsz
    dlogits = (torch.sigmoid(v.logits) - v.img).mul_(g)  # (B, 28, 28)
    db7 = dlogits.sum().reshape(1)
    dh6, dwt3 = _conv_back(dlogits.to(dt).view(bsz, side, side, 1), v.a6.view(bsz, side, side, f1),
                           v.wt3c, 1, transposed=True, padding=1)
    # The gradient of deconv2's uncropped (2H+1) output: zero on the cropped row and column.
    dy6 = torch.empty(bsz, side + 1, side + 1, f1, dtype=dt)
    dy6[:, side] = 0
    dy6[:, :side, side] = 0
    torch.ops.aten.threshold_backward.grad_input(dh6, v.a6.view(bsz, side, side, f1), 0,
                                                 grad_input=dy6[:, :side, :side])
    db6 = dy6.view(-1, f1).sum(0).float()  # accumulated in float32, rounded once to dt
    dx5, dwt2 = _conv_back(dy6, v.a5.view(bsz, s2, s2, f2), v.wt2c, 2, transposed=True)
    dh5 = _relu_back(dx5.reshape(-1, f2), v.a5)
    db5 = dh5.sum(0).float()
    dy5 = _taps_s2(dh5.view(bsz, s2, s2, f2), dt)  # (B*49, 9*f2)
    dwt1 = torch.mm(v.a4.t(), dy5).float()
    dh4 = _relu_back(torch.mm(dy5, v.wt1d.t()), v.a4).float().view(bsz, -1)
    dwz = dh4.t() @ v.z  # (49*f2, latent)
    dbz = dh4.sum(0)
    dz = dh4 @ v.wz
    gk = g * kl_weight  # the KL term's share of the gradient
    if free_bits > 0:  # free bits: a dimension whose mean KL is under the floor feels no KL gradient
        gk = gk * kl_floor_mask(v.mu, v.lv, free_bits)
    dmu = dz + v.mu * gk
    dlv = dz * v.eps * 0.5 * v.std + 0.5 * (v.std.square() - 1) * gk  # exp(lv) = std^2
    dwmu, dbmu = dmu.t() @ v.h3, dmu.sum(0)
    dwlv, dblv = dlv.t() @ v.h3, dlv.sum(0)
    dh3 = _relu_back(dmu @ v.wmu + dlv @ v.wlv, v.h3)
    dwd = dh3.t() @ v.h2f
    dbd = dh3.sum(0)
    dh2 = _relu_back((dh3 @ v.wd).view(-1, f2), v.h2)
    db2 = dh2.sum(0)
    dh2d = dh2.to(dt)
    dw2 = torch.mm(v.cols2.t(), dh2d).float()
    dcols2 = torch.mm(dh2d, v.w2d.t()).view(bsz, s4, s4, 3, 3, f1)
    dh1 = _relu_back(_fold_s2(dcols2).view(-1, f1), v.h1)  # padding cropped; float32 out (h1's dtype)
    db1 = dh1.sum(0)
    dw1 = v.cols1.t() @ dh1

    # Back to the parameters' own layouts, in the order of model.parameters().
    grads = {
        "encoder.conv1.weight": dw1.view(3, 3, 1, f1).permute(3, 2, 0, 1),
        "encoder.conv1.bias": db1,
        "encoder.conv2.weight": dw2.view(3, 3, f1, f2).permute(3, 2, 0, 1),
        "encoder.conv2.bias": db2,
        "encoder.dense.weight": dwd.view(-1, s4 * s4, f2).transpose(1, 2).reshape(-1, f2 * s4 * s4),
        "encoder.dense.bias": dbd,
        "encoder.z_mean.weight": dwmu, "encoder.z_mean.bias": dbmu,
        "encoder.z_log_var.weight": dwlv, "encoder.z_log_var.bias": dblv,
        "decoder.dense.weight": dwz.view(s4 * s4, f2, -1).transpose(0, 1).reshape(f2 * s4 * s4, -1),
        "decoder.dense.bias": dbz.view(s4 * s4, f2).t().reshape(-1),
        "decoder.deconv1.weight": dwt1.view(f2, 3, 3, f2).permute(0, 3, 1, 2),
        "decoder.deconv1.bias": db5,
        "decoder.deconv2.weight": dwt2.float(),
        "decoder.deconv2.bias": db6,
        "decoder.deconv3.weight": dwt3.float(),
        "decoder.deconv3.bias": db7,
    }
    out = []
    for name, p in model.named_parameters():
        gp = grads[name]
        # The fused optimizers read .grad with the parameter's own strides.
        out.append(gp if gp.stride() == p.stride() else torch.empty_like(p).copy_(gp))
    if trace is not None:
        backward = dict(locals())  # this function's tensors; the forward pass's are in v
        trace.update(vars(v))
        trace.update((k, t) for k, t in backward.items() if isinstance(t, torch.Tensor))
    return v.parts, out
