"""The tutorial's convolutional VAE (Chollet's Keras design), ported to PyTorch.

Keras' ``padding="same"`` with stride 2 pads only at the bottom/right (TensorFlow's
rule when the total padding is odd), and its ``Conv2DTranspose(..., padding="same")``
crops the extra row/column at the bottom/right. Both are reproduced here exactly, so
the spatial alignment matches the Keras model, not just the parameter counts.
Weights are initialised like Keras (Glorot-uniform kernels, zero biases).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 28
PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784: the tutorial scales the mean BCE by this


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`CVAE`; stored in every checkpoint."""

    latent_dim: int = 2
    filters: tuple[int, int] = (32, 64)
    dense: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if not (isinstance(self.latent_dim, int) and 1 <= self.latent_dim <= 64):
            raise ValueError(f"latent_dim must be an integer in [1, 64], got {self.latent_dim!r}")
        if len(self.filters) != 2 or not all(1 <= f <= 512 for f in self.filters):
            raise ValueError(f"filters must be two integers in [1, 512], got {self.filters!r}")
        if not (isinstance(self.dense, int) and 1 <= self.dense <= 4096):
            raise ValueError(f"dense must be an integer in [1, 4096], got {self.dense!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filters"] = list(self.filters)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {"latent_dim", "filters", "dense"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def _same_pad_stride2(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow "same" for k=3, s=2 on an even size: total padding 1, all of it
    # after (bottom/right).
    return F.pad(x, (0, 1, 0, 1))


class Encoder(nn.Module):
    """x (B,1,28,28) in [0,1] -> (z_mean, z_log_var), each (B, latent_dim)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        f1, f2 = cfg.filters
        self.conv1 = nn.Conv2d(1, f1, 3, stride=2)
        self.conv2 = nn.Conv2d(f1, f2, 3, stride=2)
        self.flat_dim = f2 * (IMAGE_SIZE // 4) ** 2
        self.dense = nn.Linear(self.flat_dim, cfg.dense)
        self.z_mean = nn.Linear(cfg.dense, cfg.latent_dim)
        self.z_log_var = nn.Linear(cfg.dense, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.conv1(_same_pad_stride2(x)))
        h = F.relu(self.conv2(_same_pad_stride2(h)))
        h = F.relu(self.dense(h.flatten(1)))
        return self.z_mean(h), self.z_log_var(h)


# Tap index for each (output phase, 2x2 kernel offset) of a k=3, s=2 transposed conv;
# 3 points at an appended zero tap. See _deconv_s2_same.
_PHASE_TAPS = torch.tensor([[2, 0], [3, 1]])


def _deconv_s2_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``conv_transpose2d(x, weight, bias, stride=2)[..., :-1, :-1]`` in its sub-pixel form.

    Output row 2i takes input rows i (tap 0) and i-1 (tap 2); row 2i+1 takes row i (tap 1);
    likewise for columns. So the four output phases are one ordinary 2x2 convolution over
    the input padded by one at the top/left, with 4*C_out channels, followed by
    pixel_shuffle. Same parameters, same result (to float rounding), but it runs on the
    ordinary convolution kernels instead of PyTorch's transposed convolution.
    """
    c_in, c_out = weight.shape[:2]
    taps = _PHASE_TAPS.to(weight.device)
    w = F.pad(weight, (0, 1, 0, 1))[:, :, taps[:, None, :, None], taps[None, :, None, :]]
    w = w.permute(1, 2, 3, 0, 4, 5).reshape(c_out * 4, c_in, 2, 2)  # (co, a, b) -> co*4 + 2a + b
    y = F.conv2d(F.pad(x, (1, 0, 1, 0)), w, bias.repeat_interleave(4))
    return F.pixel_shuffle(y, 2)


class Decoder(nn.Module):
    """z (B, latent_dim) -> pixel *logits* (B,1,28,28); apply sigmoid for probabilities."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        f1, f2 = cfg.filters
        self.f2 = f2
        self.side = IMAGE_SIZE // 4
        self.dense = nn.Linear(cfg.latent_dim, f2 * self.side**2)
        self.deconv1 = nn.ConvTranspose2d(f2, f2, 3, stride=2)
        self.deconv2 = nn.ConvTranspose2d(f2, f1, 3, stride=2)
        self.deconv3 = nn.ConvTranspose2d(f1, 1, 3, stride=1, padding=1)
        # NHWC activations run faster on CPU convolution kernels; set by the trainer.
        self.channels_last = False

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dense(z)).view(-1, self.f2, self.side, self.side)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        # Transposed conv k=3, s=2 gives 2n+1; Keras "same" keeps the first 2n.
        h = F.relu(self.deconv1(h)[:, :, :-1, :-1])
        h = F.relu(self.deconv2(h)[:, :, :-1, :-1])
        return self.deconv3(h)

    def reference_forward(self, z: torch.Tensor) -> torch.Tensor:
        """The same maths through the sub-pixel form of the stride-2 transposed convs
        (:func:`_deconv_s2_same`); tests check that both agree. Measured slower on 2 CPU
        cores at batch 32 (README, Performance), so ``forward`` uses the stock layers."""
        h = F.relu(self.dense(z)).view(-1, self.f2, self.side, self.side)
        h = F.relu(_deconv_s2_same(h, self.deconv1.weight, self.deconv1.bias))
        h = F.relu(_deconv_s2_same(h, self.deconv2.weight, self.deconv2.bias))
        # Stride 1, padding 1: a plain convolution with the kernel flipped and transposed.
        return F.conv2d(h, self.deconv3.weight.flip(2, 3).transpose(0, 1), self.deconv3.bias, padding=1)


def _keras_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


@dataclass
class LossParts:
    """Mean over the batch of the per-image loss and its two parts."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    per_image: torch.Tensor = field(repr=False)


def kl_divergence(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, sigma^2) || N(0, I)) per image, summed over latent dims."""
    return -0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=1)


def vae_loss(x: torch.Tensor, logits: torch.Tensor, z_mean: torch.Tensor,
             z_log_var: torch.Tensor) -> LossParts:
    """Per image 784 * mean BCE(x, sigmoid(logits)) + KL; mean over the batch.

    BCE is computed from logits (log-sum-exp form), so it never takes log(0).
    784 * mean over pixels is the sum over pixels.
    """
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = kl_divergence(z_mean, z_log_var)
    per_image = recon + kl
    return LossParts(per_image.mean(), recon.mean(), kl.mean(), per_image)


def reparameterize(z_mean: torch.Tensor, z_log_var: torch.Tensor,
                   generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + exp(0.5 log_var) * eps, eps ~ N(0, I) (drawn here unless given); differentiable
    in mu and log_var."""
    if eps is None:
        eps = torch.randn(z_mean.shape, generator=generator, device=z_mean.device, dtype=z_mean.dtype)
    return z_mean + torch.exp(0.5 * z_log_var) * eps


class CVAE(nn.Module):
    """The tutorial's CVAE: ``CVAE()`` has 69,076 + 65,089 = 134,165 parameters."""

    def __init__(self, latent_dim: int = 2, filters: tuple[int, int] = (32, 64), dense: int = 16):
        super().__init__()
        self.config = ModelConfig(latent_dim=latent_dim, filters=tuple(filters), dense=dense)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        _keras_init(self)
        # Filled in by load_checkpoint: training config, history, versions, path.
        self.meta: dict = {}

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "CVAE":
        return cls(latent_dim=cfg.latent_dim, filters=cfg.filters, dense=cfg.dense)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities in [0, 1], shape (B,1,28,28)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        """Returns (logits, z_mean, z_log_var, z) for one sample of z per image (noise ``eps``
        if given, else drawn with ``generator``)."""
        z_mean, z_log_var = self.encoder(x)
        z = reparameterize(z_mean, z_log_var, generator, eps)
        return self.decoder(z), z_mean, z_log_var, z

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None,
             eps: torch.Tensor | None = None) -> LossParts:
        logits, z_mean, z_log_var, _ = self(x, generator, eps)
        return vae_loss(x, logits, z_mean, z_log_var)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit name must be available."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("--device mps was asked for, but MPS is not available")
    if name not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)
