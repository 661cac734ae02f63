"""What a training run does: the named recipes and :class:`TrainConfig`, checked on creation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

# Named recipes. "tutorial" is the Keras tutorial's (val_loss 151.3 at its best epoch, 12,
# early-stopped at 14). "fast" reaches it in 5 and 6 epochs (seeds 0, 1): batches of 64 at four times
# the learning rate (more images per second than batch 32, about as good per epoch), raised
# linearly over the first 2% of the steps (without it, how a run starts depends a lot on the
# seed), then decayed to zero along a cosine, no early stopping (docs/model-card.md). "quick"
# fits a time budget (one minute unless --seconds says otherwise): batch 32 for more steps in
# the time, a long warm-up (30% of the steps) that gives the encoder time to spread the digits
# before the KL term pulls a dimension to the prior (docs/training.md, posterior collapse), and a
# learning rate high enough to spread them within the few hundred steps a busy laptop fits in a
# minute (Adam 6e-3: at 700 steps 5 of 5 seeds spread, against 3 of 5 at 3e-3), and free bits: no
# KL gradient for a latent dimension whose batch-mean KL is under 1 nat, so a dimension the KL
# term has nearly pulled to the prior is not pulled the rest of the way (without them a seed lost
# z2 at 683 and 762 steps beside a busy program, and with KL annealing at 700; docs/performance.md).
RECIPES: dict[str, dict] = {
    "tutorial": dict(epochs=30, batch_size=32, lr=1e-3, optimizer="adam", schedule="constant",
                     patience=2),
    "fast": dict(epochs=8, batch_size=64, lr=4e-3, optimizer="adam", schedule="cosine",
                 warmup=0.02, patience=0),
    "quick": dict(seconds=60, batch_size=32, lr=6e-3, optimizer="adam", schedule="cosine",
                  warmup=0.3, free_bits=1.0, patience=0),
}
DEFAULT_RECIPE = "fast"
BUDGET_RECIPE = "quick"  # the recipe of a run with a time budget (--seconds) unless another is named
# Optimizer steps a recipe needs before both latent dimensions spread (to at least 0.5 on every seed
# tried: benchmarks/steps_to_spread.py, docs/performance.md). A time budget that fits fewer says so
# before the run gets going (cvae.training.budget).
SPREAD_STEPS = {"quick": 700}
PRECISIONS = ("auto", "fp32", "bf16")


DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A value :class:`TrainConfig` refuses; ``field`` names it (the command line names its option)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _opt(default, help: str | None = None, *, research: bool = False, choices=None, metavar: str | None = None,
         flag: str | None = None):
    """A field of :class:`TrainConfig`; with ``help`` it is also an option of ``python -m cvae train``
    (``--name-with-dashes``, or ``flag`` for a switch), in the research group if ``research``."""
    return field(default=default, metadata={"help": help, "research": research, "choices": choices,
                                            "metavar": metavar, "flag": flag})


@dataclass(frozen=True)
class TrainConfig:
    """What a run does. The one source of the training options: their defaults (the tutorial
    recipe's values), their checks (on creation: a bad value is a ValueError in one sentence) and
    the command line's options and help (``cvae.cli`` builds ``train``'s options from the fields
    that have a help text). Frozen: a config is checked once and never changes after."""

    recipe: str = "tutorial"  # the field defaults below are the tutorial recipe's values
    epochs: int = _opt(30, "most epochs (ignored with --seconds)")
    seconds: float | None = _opt(None, "train for S seconds of wall time, loading the data and the film included: "
                                       "the number of steps and the learning-rate schedule fit it; the quick "
                                       "recipe unless --recipe names another; e.g. 60", metavar="S")
    batch_size: int = _opt(32, "images per optimizer step")
    lr: float = _opt(1e-3, "learning rate")
    seed: int = _opt(0, "seed of the initial weights, the batches and the noise")
    limit: int | None = _opt(None, "train on the first N training images only", metavar="N")
    device: str = _opt("auto", "where to train", choices=DEVICES)
    optimizer: str = _opt("adam", "Keras' Adam or RMSprop", research=True, choices=("adam", "rmsprop"))
    schedule: str = _opt("constant", "the learning rate over the run", research=True, choices=("constant", "cosine"))
    warmup: float = _opt(0.0, "raise the learning rate linearly over this share of all steps first (cosine "
                              "schedule only; e.g. 0.02)", research=True, metavar="FRACTION")
    kl_warmup: float = _opt(0.0, "raise the KL term's weight in the gradient linearly from 0 to 1 over this share "
                                 "of all steps (KL annealing; the loss reported is always the full -ELBO); "
                                 "e.g. 0.2", research=True, metavar="FRACTION")
    free_bits: float = _opt(0.0, "free bits: no gradient from a latent dimension's KL term while its batch mean "
                                 "is under this many nats (it keeps a dimension from collapsing to the prior; "
                                 "the loss reported is always the full -ELBO); e.g. 1", research=True,
                            metavar="NATS")
    patience: int = _opt(2, "early-stopping patience in epochs on val_loss (0: off)", research=True)
    min_delta: float = 0.0  # an epoch must beat the best val_loss by more than this
    weight_decay: float = _opt(0.0, "decoupled weight decay (AdamW); default 0", research=True)
    augment: float = _opt(0.0, "turn and zoom this share of the training images at random in each step (data "
                               "augmentation; see --rotate, --zoom); default 0: off", research=True,
                          metavar="SHARE")
    rotate: float = _opt(8.0, "augmentation: largest turn in degrees (default 8)", research=True, metavar="DEG")
    zoom: float = _opt(0.06, "augmentation: largest change of scale (default 0.06)", research=True, metavar="F")
    ema: float = _opt(0.0, "validate and save an exponential moving average of the weights (e.g. 0.999); "
                           "default off", research=True, metavar="DECAY")
    channels_last: bool = True  # NHWC activations: faster CPU convolutions, same maths
    workers: int = _opt(0, "threads that split each batch on a CPU; default 0: chosen while training from "
                           "the measured pace of each way (one thread, one per core, or every core on "
                           "each op); a number fixes it (and auto precision to the matrix products), and a "
                           "seeded run is then reproducible", research=True)
    precision: str = _opt("auto", "CPU training arithmetic: fp32 = PyTorch's stock layers; bf16 = the layers as "
                                  "bfloat16 matrix products (cvae.training.gemm, about twice as fast where the "
                                  "CPU has native bfloat16); auto (default) = whichever is faster at the moment of "
                                  "the stock layers and the matrix products (in bfloat16 where native, else float32)", research=True,
                          choices=PRECISIONS)
    film: bool = _opt(True, "do not record the training film (snapshots of the latent space; on by default)",
                      flag="--no-film")

    def __post_init__(self) -> None:
        checks = [
            ("epochs", isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000, f"epochs must be 1..10000, got {self.epochs}"),
            ("batch_size", isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
             f"batch size must be 1..65536, got {self.batch_size}"),
            ("lr", math.isfinite(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}"),
            ("optimizer", self.optimizer in ("adam", "rmsprop"), f"optimizer must be adam or rmsprop, got {self.optimizer!r}"),
            ("schedule", self.schedule in ("constant", "cosine"), f"schedule must be constant or cosine, got {self.schedule!r}"),
            ("warmup", 0 <= self.warmup < 1, f"warmup must be in [0, 1), got {self.warmup}"),
            ("kl_warmup", math.isfinite(self.kl_warmup) and 0 <= self.kl_warmup < 1,
             f"kl_warmup must be in [0, 1), got {self.kl_warmup}"),
            ("free_bits", math.isfinite(self.free_bits) and 0 <= self.free_bits <= 100,
             f"free_bits must be 0..100 nats, got {self.free_bits}"),
            ("patience", isinstance(self.patience, int) and self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            ("weight_decay", math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1,
             f"weight decay must be in [0, 1], got {self.weight_decay}"),
            ("weight_decay", self.weight_decay == 0 or self.optimizer == "adam", "weight decay needs the adam optimizer (AdamW)"),
            ("augment", math.isfinite(self.augment) and 0 <= self.augment <= 1,
             f"augment (share of images augmented) must be in [0, 1], got {self.augment}"),
            ("rotate", math.isfinite(self.rotate) and 0 <= self.rotate <= 180, f"rotate must be 0..180 degrees, got {self.rotate}"),
            ("zoom", math.isfinite(self.zoom) and 0 <= self.zoom < 1, f"zoom must be in [0, 1), got {self.zoom}"),
            ("ema", math.isfinite(self.ema) and 0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
            ("workers", isinstance(self.workers, int) and 0 <= self.workers <= 64, f"workers must be 0..64, got {self.workers}"),
            ("precision", self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            ("limit", self.limit is None or (isinstance(self.limit, int) and self.limit >= 1),
             f"limit must be a positive number of images, got {self.limit}"),
            ("seconds", self.seconds is None or (isinstance(self.seconds, (int, float)) and math.isfinite(self.seconds)
                                      and 5 <= self.seconds <= 86_400),
             f"seconds (the time budget) must be 5..86400, got {self.seconds}"),
        ]
        for name, ok, msg in checks:
            if not ok:
                raise ConfigError(msg, name)

    @classmethod
    def from_recipe(cls, recipe: str = DEFAULT_RECIPE, **overrides) -> "TrainConfig":
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
        names = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown training option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                             f"the options are {', '.join(sorted(names - {'recipe'}))}")
        values = dict(RECIPES[recipe])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(recipe=recipe, **values)

    def to_dict(self) -> dict:
        return asdict(self)


def cli_fields() -> list:
    """The fields of :class:`TrainConfig` that are options of ``python -m cvae train``, in order."""
    return [f for f in fields(TrainConfig) if f.metadata.get("help")]


def kl_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """The KL term's weight in the gradient of optimizer step ``step`` of ``total`` (1 after the KL warm-up)."""
    warm = cfg.kl_warmup * total
    return min(1.0, (step + 1) / warm) if warm >= 1 else 1.0


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """The learning rate at optimizer step ``step`` of ``total``, as a share of ``cfg.lr``."""
    if cfg.schedule == "constant":
        return 1.0
    warm = int(cfg.warmup * total)
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
