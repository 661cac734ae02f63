"""The tutorial's convolutional VAE (Chollet's Keras design), ported to PyTorch.

The layers are declared once, by :func:`encoder_spec` and :func:`decoder_spec` (JSON-safe
dicts, in order); :class:`Encoder` and :class:`Decoder` are built from them, and the
browser's decoder (``cvae.core.payloads``, ``cvae/web/decoder.js``) reads the same list.

Keras' ``padding="same"`` is reproduced exactly by :func:`same_padding`: with stride 2 on
an even size the one row/column of padding goes at the bottom/right (TensorFlow's rule
when the total padding is odd), and ``Conv2DTranspose(..., padding="same")`` crops the
extra row/column at the bottom/right. So the spatial alignment matches the Keras model,
not just the parameter counts (tests/test_keras_alignment.py holds it to the real Keras
model's outputs). Weights are initialised like Keras (Glorot-uniform kernels, zero biases).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 28


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


def same_padding(n: int, kernel: int, stride: int, transpose: bool = False) -> tuple[int, int, int]:
    """Keras/TensorFlow ``padding="same"`` along one spatial axis of size ``n``.

    Returns ``(out, before, after)``. For a convolution, ``out = ceil(n / stride)`` and
    ``before``/``after`` are the zero rows (columns) added at the top (left) and bottom
    (right): the total is ``max((out - 1) * stride + kernel - n, 0)``, ``before = total // 2``,
    the rest after. For a transposed convolution, ``out = n * stride`` and ``before``/``after``
    are the rows cropped from the full ``(n - 1) * stride + kernel`` output: ``kernel - stride``
    in all, ``before = (kernel - stride) // 2``.
    """
    if n < 1 or kernel < 1 or stride < 1:
        raise ValueError(f"size, kernel and stride must be positive; got {n}, {kernel}, {stride}")
    if transpose:
        if kernel < stride:
            raise ValueError(f"a 'same' transposed convolution needs kernel >= stride; got {kernel} < {stride}")
        total = kernel - stride
        return n * stride, total // 2, total - total // 2
    out = -(-n // stride)
    total = max((out - 1) * stride + kernel - n, 0)
    return out, total // 2, total - total // 2


def _resolve(layers: list[dict], size: int) -> list[dict]:
    """Fill in each convolution's spatial sizes and its "same" padding (``pad``: zero rows
    added before/after) or crop (``crop``: rows dropped before/after), from ``size`` on."""
    for layer in layers:
        if layer["kind"] in ("conv", "conv_transpose"):
            transpose = layer["kind"] == "conv_transpose"
            if layer["padding"] != "same":
                raise ValueError(f"layer {layer['name']}: only padding 'same' is supported")
            out, before, after = same_padding(size, layer["kernel"], layer["stride"], transpose)
            layer.update({"size_in": size, "size_out": out, ("crop" if transpose else "pad"): [before, after]})
            size = out
        elif "reshape" in layer:
            size = layer["reshape"][-1]
    return layers


def _side(cfg: "ModelConfig") -> int:
    """The side of the smallest feature map (7 for 28x28 images): the encoder's last size."""
    return [layer for layer in encoder_spec(cfg) if "size_out" in layer][-1]["size_out"]


def encoder_spec(cfg: ModelConfig) -> list[dict]:
    """The encoder's layers, in order: x (B,1,28,28) -> (z_mean, z_log_var).

    Keys: ``name`` (the module attribute, so its parameters are ``{name}.weight`` and
    ``{name}.bias``), ``kind`` ("conv", "dense"), ``in``/``out`` (channels or features),
    ``activation``; convolutions add ``kernel``, ``stride``, ``padding`` ("same") and the
    resolved ``size_in``, ``size_out`` and ``pad`` ([before, after] zero rows/columns); the
    first dense layer has ``flatten`` ([C, H, W]: it reads the conv output flattened
    channel-major, as PyTorch does); the two heads (``head: True``) both read the last
    non-head layer's output.
    """
    f1, f2 = cfg.filters
    layers = _resolve([
        {"name": "conv1", "kind": "conv", "in": 1, "out": f1, "kernel": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
        {"name": "conv2", "kind": "conv", "in": f1, "out": f2, "kernel": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
    ], IMAGE_SIZE)
    side = layers[-1]["size_out"]
    return layers + [
        {"name": "dense", "kind": "dense", "in": f2 * side * side, "out": cfg.dense, "activation": "relu",
         "flatten": [f2, side, side]},
        {"name": "z_mean", "kind": "dense", "in": cfg.dense, "out": cfg.latent_dim, "activation": "linear",
         "head": True},
        {"name": "z_log_var", "kind": "dense", "in": cfg.dense, "out": cfg.latent_dim, "activation": "linear",
         "head": True},
    ]


def decoder_spec(cfg: ModelConfig) -> list[dict]:
    """The decoder's layers, in order: z (B, latent_dim) -> image (B,1,28,28).

    Same keys as :func:`encoder_spec`; the dense layer has ``reshape`` ([C, H, W]: its
    output viewed channel-major, as PyTorch does) and transposed convolutions have
    ``crop`` ([before, after] rows/columns dropped from the full output) instead of
    ``pad``. The last layer's ``activation`` ("sigmoid") turns logits into the decoded
    image; :class:`Decoder` itself returns the logits.
    """
    f1, f2 = cfg.filters
    side = _side(cfg)
    layers = _resolve([
        {"name": "dense", "kind": "dense", "in": cfg.latent_dim, "out": f2 * side * side, "activation": "relu",
         "reshape": [f2, side, side]},
        {"name": "deconv1", "kind": "conv_transpose", "in": f2, "out": f2, "kernel": 3, "stride": 2,
         "padding": "same", "activation": "relu"},
        {"name": "deconv2", "kind": "conv_transpose", "in": f2, "out": f1, "kernel": 3, "stride": 2,
         "padding": "same", "activation": "relu"},
        {"name": "deconv3", "kind": "conv_transpose", "in": f1, "out": 1, "kernel": 3, "stride": 1,
         "padding": "same", "activation": "sigmoid"},
    ], side)
    if layers[-1]["size_out"] != IMAGE_SIZE:
        raise ValueError(f"the decoder ends at {layers[-1]['size_out']}x{layers[-1]['size_out']}, "
                         f"not {IMAGE_SIZE}x{IMAGE_SIZE}")
    return layers


ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "linear": lambda t: t}


def _build(layer: dict) -> nn.Module:
    """The PyTorch module of one spec layer. The symmetric part of the padding (crop) is the
    module's own ``padding``; the rest is applied in :func:`_apply`."""
    if layer["kind"] == "dense":
        return nn.Linear(layer["in"], layer["out"])
    sym = min(layer["pad"] if layer["kind"] == "conv" else layer["crop"])
    cls = nn.Conv2d if layer["kind"] == "conv" else nn.ConvTranspose2d
    return cls(layer["in"], layer["out"], layer["kernel"], stride=layer["stride"], padding=sym)


def _apply(layer: dict, module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """One spec layer's pre-activation output."""
    if layer["kind"] == "conv":
        before, after = (p - module.padding[0] for p in layer["pad"])
        if before or after:
            h = F.pad(h, (before, after, before, after))
        return module(h)
    if layer["kind"] == "conv_transpose":
        h = module(h)
        before, after = (c - module.padding[0] for c in layer["crop"])
        if before or after:
            n = h.shape[-1]
            h = h[:, :, before:n - after, before:n - after]
        return h
    if "flatten" in layer:
        h = h.flatten(1)
    return module(h)


class Encoder(nn.Module):
    """x (B,1,28,28) in [0,1] -> (z_mean, z_log_var), each (B, latent_dim); built from
    :func:`encoder_spec`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.spec = encoder_spec(cfg)
        for layer in self.spec:
            self.add_module(layer["name"], _build(layer))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        heads = []
        for layer in self.spec:
            if layer.get("head"):
                heads.append(layer)
                continue
            h = ACTIVATIONS[layer["activation"]](_apply(layer, getattr(self, layer["name"]), h))
        z_mean, z_log_var = (ACTIVATIONS[lay["activation"]](_apply(lay, getattr(self, lay["name"]), h))
                             for lay in heads)
        return z_mean, z_log_var


class Decoder(nn.Module):
    """z (B, latent_dim) -> pixel *logits* (B,1,28,28); built from :func:`decoder_spec`.
    The last layer's activation (sigmoid) is left to :meth:`CVAE.decode`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.spec = decoder_spec(cfg)
        for layer in self.spec:
            self.add_module(layer["name"], _build(layer))
        # NHWC activations run faster on CPU convolution kernels; set by the trainer.
        self.channels_last = False

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        last = len(self.spec) - 1
        for i, layer in enumerate(self.spec):
            h = _apply(layer, getattr(self, layer["name"]), h)
            if i == last:
                return h  # logits
            h = ACTIVATIONS[layer["activation"]](h)
            if "reshape" in layer:
                h = h.view(-1, *layer["reshape"])
                if self.channels_last:
                    h = h.contiguous(memory_format=torch.channels_last)
        return h

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """The last layer's activation: logits -> the decoded image."""
        return ACTIVATIONS[self.spec[-1]["activation"]](logits)


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


def reconstruction_loss(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per image 784 * mean BCE(x, sigmoid(logits)) over its pixels (the tutorial's form),
    which is the sum over pixels; computed from logits (log-sum-exp form), so it never
    takes log(0)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def vae_loss(x: torch.Tensor, logits: torch.Tensor, z_mean: torch.Tensor,
             z_log_var: torch.Tensor) -> LossParts:
    """Per image 784 * mean BCE(x, sigmoid(logits)) + KL; mean over the batch.

    BCE is computed from logits (log-sum-exp form), so it never takes log(0).
    784 * mean over pixels is the sum over pixels.
    """
    recon = reconstruction_loss(x, logits)
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
        return self.decoder.activation(self.decoder(z))

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
