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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dense(z)).view(-1, self.f2, self.side, self.side)
        # Transposed conv k=3, s=2 gives 2n+1; Keras "same" keeps the first 2n.
        h = F.relu(self.deconv1(h)[:, :, :-1, :-1])
        h = F.relu(self.deconv2(h)[:, :, :-1, :-1])
        return self.deconv3(h)


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
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(0.5 log_var) * eps, eps ~ N(0, I); differentiable in mu and log_var."""
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

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Returns (logits, z_mean, z_log_var, z) for one sample of z per image."""
        z_mean, z_log_var = self.encoder(x)
        z = reparameterize(z_mean, z_log_var, generator)
        return self.decoder(z), z_mean, z_log_var, z

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossParts:
        logits, z_mean, z_log_var, _ = self(x, generator)
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
