"""What a training run does (cvae.training.config): every option's accepted range, edges
included, and the one sentence a value outside it gets (naming the option, what it must be and
the value given); the named recipes as the docs describe them; a config read back from its
dict is the same run; the learning rate's schedule past the planned end."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from cvae.training.config import (BUDGET_RECIPE, DEFAULT_RECIPE, RECIPES, SPREAD_STEPS, ConfigError, TrainConfig,
                                  lr_factor)
from devkit import REPO

# (field, a value at or inside each edge of its range): all accepted.
GOOD = [
    ("epochs", 1), ("epochs", 10_000), ("batch_size", 1), ("batch_size", 65_536), ("lr", 10.0), ("lr", 1e-9),
    ("optimizer", "rmsprop"), ("schedule", "cosine"), ("warmup", 0.0), ("warmup", 0.99), ("patience", 0),
    ("weight_decay", 1.0), ("augment", 0.0), ("augment", 1.0), ("rotate", 0.0), ("rotate", 180.0),
    ("zoom", 0.0), ("zoom", 0.99), ("ema", 0.0), ("ema", 0.999), ("workers", 0), ("workers", 64),
    ("precision", "fp32"), ("precision", "bf16"), ("limit", 1), ("seconds", 5), ("seconds", 86_400),
    ("seconds", 7.5),
]

# (field, a value just outside its range or of the wrong kind, the words of the message, the range it names).
BAD = [
    ("epochs", 0, "epochs must be", "1..10000"), ("epochs", 10_001, "epochs must be", "1..10000"),
    ("epochs", 2.0, "epochs must be", "1..10000"),
    ("batch_size", 0, "batch size must be", "1..65536"), ("batch_size", 65_537, "batch size must be", "1..65536"),
    ("batch_size", 32.0, "batch size must be", "1..65536"),
    ("lr", 0.0, "learning rate must be", "(0, 10]"), ("lr", -1e-3, "learning rate must be", "(0, 10]"),
    ("lr", 10.001, "learning rate must be", "(0, 10]"), ("lr", math.inf, "learning rate must be", "(0, 10]"),
    ("optimizer", "sgd", "optimizer must be", "adam or rmsprop"),
    ("schedule", "linear", "schedule must be", "constant or cosine"),
    ("warmup", 1.0, "warmup must be", "[0, 1)"), ("warmup", -0.01, "warmup must be", "[0, 1)"),
    ("patience", -1, "patience must be", ">= 0"), ("patience", 1.5, "patience must be", ">= 0"),
    ("weight_decay", -0.01, "weight decay must be", "[0, 1]"), ("weight_decay", 1.01, "weight decay must be", "[0, 1]"),
    ("weight_decay", math.nan, "weight decay must be", "[0, 1]"),
    ("augment", -0.01, "augment (share of images augmented) must be", "[0, 1]"),
    ("augment", 1.01, "augment (share of images augmented) must be", "[0, 1]"),
    ("augment", math.nan, "augment (share of images augmented) must be", "[0, 1]"),
    ("rotate", -0.5, "rotate must be", "0..180 degrees"), ("rotate", 180.5, "rotate must be", "0..180 degrees"),
    ("rotate", math.nan, "rotate must be", "0..180 degrees"),
    ("zoom", 1.0, "zoom must be", "[0, 1)"), ("zoom", -0.01, "zoom must be", "[0, 1)"),
    ("zoom", math.nan, "zoom must be", "[0, 1)"),
    ("ema", 1.0, "ema decay must be", "[0, 1)"), ("ema", -0.1, "ema decay must be", "[0, 1)"),
    ("ema", math.nan, "ema decay must be", "[0, 1)"),
    ("workers", -1, "workers must be", "0..64"), ("workers", 65, "workers must be", "0..64"),
    ("workers", 2.0, "workers must be", "0..64"),
    ("precision", "fp16", "precision must be", "auto, fp32, bf16"),
    ("limit", 0, "limit must be", "a positive number of images"),
    ("limit", 1.5, "limit must be", "a positive number of images"),
    ("seconds", 4.99, "seconds (the time budget) must be", "5..86400"),
    ("seconds", 86_401, "seconds (the time budget) must be", "5..86400"),
    ("seconds", math.inf, "seconds (the time budget) must be", "5..86400"),
    ("seconds", math.nan, "seconds (the time budget) must be", "5..86400"),
    ("seconds", "60", "seconds (the time budget) must be", "5..86400"),
]


@pytest.mark.parametrize("name, value", GOOD, ids=[f"{n}={v}" for n, v in GOOD])
def test_each_option_takes_the_edges_of_its_range(name, value):
    cfg = TrainConfig(**{name: value})
    assert getattr(cfg, name) == value


@pytest.mark.parametrize("name, value, words, allowed", BAD, ids=[f"{n}={v!r}" for n, v, _, _ in BAD])
def test_a_value_outside_its_range_is_one_sentence_naming_the_option_the_range_and_the_value(name, value, words,
                                                                                            allowed):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{name: value})
    msg = str(e.value)
    assert e.value.field == name  # the command line names its option from this
    assert msg.startswith(words) and allowed in msg, msg
    assert msg.endswith((f"got {value}", f"got {value!r}")), msg
    assert "\n" not in msg


def test_weight_decay_needs_adam():
    assert TrainConfig(weight_decay=0.0, optimizer="rmsprop").optimizer == "rmsprop"
    with pytest.raises(ConfigError) as e:
        TrainConfig(weight_decay=0.01, optimizer="rmsprop")
    assert e.value.field == "weight_decay" and str(e.value) == "weight decay needs the adam optimizer (AdamW)"


def test_a_config_is_checked_whatever_the_other_fields():
    """The first bad field is named even when it comes after good ones, and a config made good by
    ``replace`` is checked again."""
    with pytest.raises(ConfigError) as e:
        TrainConfig(epochs=5, batch_size=64, lr=1e-3, seconds=3)
    assert e.value.field == "seconds"
    with pytest.raises(ConfigError):
        replace(TrainConfig(), workers=100)


def test_the_recipes_are_the_ones_the_docs_describe():
    """tutorial: the Keras tutorial's (batch 32, Keras' Adam default 1e-3, early stopping with patience
    2, 30 epochs at most); fast (README): batch 64, Adam 4e-3, a 2% warm-up and a cosine, 8 epochs;
    quick (docs/training.md): batch 32, Adam 6e-3, a warm-up over 30% of the steps then a cosine, one
    minute unless --seconds says otherwise."""
    def run(recipe):
        c = TrainConfig.from_recipe(recipe)
        return (c.epochs, c.seconds, c.batch_size, c.lr, c.optimizer, c.schedule, c.warmup, c.patience)

    assert run("tutorial") == (30, None, 32, 1e-3, "adam", "constant", 0.0, 2)
    assert run("fast") == (8, None, 64, 4e-3, "adam", "cosine", 0.02, 0)
    assert run("quick")[1:] == (60, 32, 6e-3, "adam", "cosine", 0.3, 0)
    assert TrainConfig.from_recipe().recipe == DEFAULT_RECIPE == "fast" and BUDGET_RECIPE == "quick"
    # A bare TrainConfig is the tutorial's run: its defaults are that recipe's values.
    assert TrainConfig() == TrainConfig.from_recipe("tutorial")
    assert sorted(RECIPES) == ["fast", "quick", "tutorial"]


def test_the_steps_a_budget_needs_to_spread_are_the_measured_ones():
    """SPREAD_STEPS is the figure docs/performance.md reports from benchmarks/steps_to_spread.py."""
    row = next(line for line in (REPO / "docs" / "performance.md").read_text().splitlines()
               if line.startswith("| Steps to spread"))
    measured = row.split("|")[4].split()[0]
    assert SPREAD_STEPS == {"quick": int(measured)}


def test_a_recipe_with_overrides():
    cfg = TrainConfig.from_recipe("fast", epochs=3, lr=None, seed=7)
    assert (cfg.recipe, cfg.epochs, cfg.lr, cfg.seed, cfg.batch_size) == ("fast", 3, 4e-3, 7, 64)  # None: the recipe's
    with pytest.raises(ValueError) as e:
        TrainConfig.from_recipe("slow")
    assert str(e.value) == "unknown recipe 'slow'; choose from ['fast', 'quick', 'tutorial']"
    with pytest.raises(ValueError) as e:
        TrainConfig.from_recipe("fast", epoch=3, speed=2)
    msg = str(e.value)
    assert msg.startswith("unknown training options 'epoch', 'speed'; the options are "), msg
    assert ", batch_size, " in msg and msg.endswith(", workers, zoom") and "recipe," not in msg  # every field, recipe aside
    with pytest.raises(ConfigError):  # an override is checked like any value
        TrainConfig.from_recipe("quick", seconds=1)


def test_a_config_read_back_from_its_dict_is_the_same_run():
    cfg = TrainConfig.from_recipe("quick", seconds=30, seed=3, limit=500, augment=0.5, ema=0.99, precision="fp32")
    d = cfg.to_dict()
    assert d["recipe"] == "quick" and d["seconds"] == 30 and d["limit"] == 500
    assert TrainConfig(**d) == cfg


def test_the_learning_rate_stays_at_zero_past_the_planned_end():
    """A budget may plan fewer steps than were run (out of time mid-step): the cosine does not rise again."""
    cfg = TrainConfig(schedule="cosine", warmup=0.1)
    assert [lr_factor(cfg, s, 100) for s in (100, 150, 200)] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    # One planned step: full rate at that step, no division by zero.
    assert lr_factor(TrainConfig(schedule="cosine"), 0, 1) == 1.0
