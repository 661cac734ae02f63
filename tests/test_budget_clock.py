"""The time budget (cvae.training.budget) against a clock the test controls: a machine that
slows down or speeds up mid-run is re-planned so that the run still ends at its deadline by
its own plan; a deadline that passes mid-epoch or exactly at an epoch's end stops a real run
there, with its last epoch (partial or whole) validated, saved and reported, and no empty
epoch after it."""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch

from cvae import TrainConfig, load_checkpoint, load_mnist, train
from cvae.training import budget as budget_mod
from cvae.training.budget import TimeBudget
from cvae.training.callbacks import Callback
from budgetclock import Clock, FakeRun
from devkit import DATA_DIR, needs_data




def simulate(clock: Clock, step_s, *, seconds=30.0, steps=1000, eval_s=0.5) -> dict:
    """The loop's calls to a TimeBudget, with ``step_s(now)`` seconds a step and ``eval_s`` an
    evaluation: what the run did and when it ended."""
    run = FakeRun(global_step=0, total_steps=steps * 5, steps=steps, history=[], step_seconds=0.0,
                  hw=SimpleNamespace(all_cores=contextlib.nullcontext), test_x=torch.zeros(10, 1, 28, 28),
                  kept=None, cfg=SimpleNamespace(seed=0, recipe="tutorial"))
    b = TimeBudget(seconds, started=0.0)
    b.eval_s = eval_s
    b.on_start(run)
    last_step_at = 0.0
    while run.more():
        t_epoch = clock.t
        for _ in range(run.steps):
            if run.global_step >= run.total_steps:
                break
            dt = step_s(clock.t)
            clock.t += dt
            run.step_seconds += dt
            run.global_step += 1
            last_step_at = clock.t
            b.on_step(run, {})
        train_s = clock.t - t_epoch
        clock.t += eval_s + budget_mod.SAVE_S
        run.history.append({"epoch": len(run.history) + 1})
        b.on_epoch(run, {"seconds": clock.t - t_epoch, "train_seconds": train_s})
    return {"end": clock.t, "last_step_at": last_step_at, "steps": run.global_step, "plans": b.plans,
            "epochs": len(run.history), "deadline": b.deadline}


@pytest.mark.parametrize("case", ["slows down", "speeds up"])
def test_a_machine_that_changes_speed_mid_run_is_replanned_to_end_on_time(clock, case):
    """10 ms a step, 40 ms after 5 s (or the other way round), 1,000 steps an epoch, a 30 s
    budget: the plan follows the machine within the epoch, every step runs before the deadline
    (the plan ends the run, not the deadline's cut), and the run ends within a step and an
    evaluation of the deadline."""
    fast, slow = 0.01, 0.04
    step_s = (lambda t: fast if t < 5 else slow) if case == "slows down" else (lambda t: slow if t < 5 else fast)
    r = simulate(clock, step_s)
    first = r["plans"][0]
    assert r["epochs"] == math.ceil(r["steps"] / 1000)
    if case == "slows down":
        assert r["steps"] < 0.5 * first  # re-planned well below the first plan
    else:
        assert r["steps"] > 1.5 * first
    assert len(r["plans"]) > r["epochs"] + 1  # re-planned within epochs, not only at their ends
    assert r["last_step_at"] <= r["deadline"], r  # no step needed the deadline's cut
    assert r["deadline"] - (slow + 0.5 + budget_mod.SAVE_S + budget_mod.END_S) <= r["end"] <= r["deadline"] + 0.3, r


class JumpClock(Callback):
    """Moves the budget's clock past the deadline after step ``at - 1``."""

    def __init__(self, clock: Clock, at: int):
        self.clock, self.at = clock, at

    def on_step(self, run, event):
        if run.global_step == self.at - 1:
            self.clock.t = 1e6


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("cut", [15, 20], ids=["mid-epoch", "at-an-epoch-end"])
def test_a_deadline_stops_the_run_at_that_step_and_its_last_epoch_is_validated(clock, cut, tmp_path):
    """640 images in batches of 64 (10 steps an epoch); the deadline passes at step 15 (mid-epoch
    2) or step 20 (epoch 2's end). The run stops at that step; epoch 2, partial or whole, is
    validated, reported as it ran and saved; no third epoch is begun."""
    train_x, _ = load_mnist("train", DATA_DIR, download=False, limit=640)
    test_x, _ = load_mnist("test", DATA_DIR, download=False)
    cfg = TrainConfig.from_recipe("quick", seconds=100, limit=640, batch_size=64, seed=0, film=False, device="cpu")
    events = []
    res = train(cfg, train_x, test_x[:200], started=0.0, callback=events.append, out=tmp_path / "m.pt",
                callbacks=[JumpClock(clock, cut)])
    steps = [e for e in events if e["kind"] == "step"]
    assert len(steps) == cut
    assert [(h["epoch"], h["images"]) for h in res.history] == [(1, 640), (2, 64 * (cut - 10))]
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2]
    assert res.stop_reason == "completed" and res.best_epoch in (1, 2)
    saved = load_checkpoint(tmp_path / "m.pt").meta
    assert [(h["epoch"], h["images"]) for h in saved["history"]] == [(1, 640), (2, 64 * (cut - 10))]
    assert saved["extra"]["stop_reason"] == "completed"
