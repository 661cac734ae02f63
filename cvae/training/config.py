"""What a training run does: the named recipes and :class:`TrainConfig`, checked on creation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

# Named recipes. "tutorial" is the Keras tutorial's (val_loss 151.3 at its best epoch, 12,
# early-stopped at 14). "fast" reaches it in 5 and 6 epochs (seeds 0, 1): batches of 64 at four times
# the learning rate (more images per second than batch 32, about as good per epoch), raised
# linearly over the first 2% of the steps (without it, how a run starts depends a lot on the
# seed), then decayed to zero along a cosine, no early stopping (docs/model-card.md). "quick"
# fits a time budget (one minute unless --seconds says otherwise): batch 32 for more steps in
# the time, and a long warm-up (30% of the steps) that gives the encoder time to spread the
# digits before the KL term pulls a dimension to the prior (docs/training.md, posterior collapse).
RECIPES: dict[str, dict] = {
    "tutorial": dict(epochs=30, batch_size=32, lr=1e-3, optimizer="adam", schedule="constant",
                     patience=2),
    "fast": dict(epochs=8, batch_size=64, lr=4e-3, optimizer="adam", schedule="cosine",
                 warmup=0.02, patience=0),
    "quick": dict(seconds=60, batch_size=32, lr=3e-3, optimizer="adam", schedule="cosine",
                  warmup=0.3, patience=0),
}
DEFAULT_RECIPE = "fast"
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    recipe: str = "tutorial"  # the field defaults below are the tutorial recipe's values
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | rmsprop
    schedule: str = "constant"  # constant | cosine
    warmup: float = 0.0  # fraction of all steps with a linear warm-up (cosine only)
    patience: int = 2  # early stopping on val_loss; 0 turns it off
    min_delta: float = 0.0  # an epoch must beat the best val_loss by more than this
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when > 0; adam only
    augment: float = 0.0  # share of training images turned/zoomed at random in each step (cvae.training.augment); 0: off
    rotate: float = 8.0  # augmentation: largest turn, degrees
    zoom: float = 0.06  # augmentation: largest change of scale, fraction
    ema: float = 0.0  # > 0: validate and keep an exponential moving average of the weights, this decay per step
    seed: int = 0
    limit: int | None = None  # train on the first N training images
    device: str = "auto"
    channels_last: bool = True  # NHWC activations: faster CPU convolutions, same maths
    workers: int = 0  # threads that split each batch (data parallel, CPU); 0: auto (see auto_workers)
    precision: str = "auto"  # CPU: fp32 (stock layers) | bf16 (cvae.training.gemm products) | auto (bf16 where native)
    film: bool = True  # record the training film (cvae.training.recorder) when the test labels are given
    seconds: float | None = None  # a time budget (cvae.training.budget): steps and schedule fit it; epochs ignored

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000, f"epochs must be 1..10000, got {self.epochs}"),
            (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
             f"batch size must be 1..65536, got {self.batch_size}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}"),
            (self.optimizer in ("adam", "rmsprop"), f"optimizer must be adam or rmsprop, got {self.optimizer!r}"),
            (self.schedule in ("constant", "cosine"), f"schedule must be constant or cosine, got {self.schedule!r}"),
            (0 <= self.warmup < 1, f"warmup must be in [0, 1), got {self.warmup}"),
            (isinstance(self.patience, int) and self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1,
             f"weight decay must be in [0, 1], got {self.weight_decay}"),
            (self.weight_decay == 0 or self.optimizer == "adam", "weight decay needs the adam optimizer (AdamW)"),
            (math.isfinite(self.augment) and 0 <= self.augment <= 1,
             f"augment (share of images augmented) must be in [0, 1], got {self.augment}"),
            (math.isfinite(self.rotate) and 0 <= self.rotate <= 180, f"rotate must be 0..180 degrees, got {self.rotate}"),
            (math.isfinite(self.zoom) and 0 <= self.zoom < 1, f"zoom must be in [0, 1), got {self.zoom}"),
            (math.isfinite(self.ema) and 0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
            (isinstance(self.workers, int) and 0 <= self.workers <= 64, f"workers must be 0..64, got {self.workers}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
             f"limit must be a positive number of images, got {self.limit}"),
            (self.seconds is None or (isinstance(self.seconds, (int, float)) and math.isfinite(self.seconds)
                                      and 5 <= self.seconds <= 86_400),
             f"seconds (the time budget) must be 5..86400, got {self.seconds}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    @classmethod
    def from_recipe(cls, recipe: str = DEFAULT_RECIPE, **overrides) -> "TrainConfig":
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
        values = dict(RECIPES[recipe])
        values.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in fields(cls)}
        return cls(recipe=recipe, **{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """The learning rate at optimizer step ``step`` of ``total``, as a share of ``cfg.lr``."""
    if cfg.schedule == "constant":
        return 1.0
    warm = int(cfg.warmup * total)
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
