"""A time budget (cvae.training.budget): the run plans its steps from what this machine
measures and ends at the deadline, data loading and the film included; the schedule stretches
over the planned steps. How close to the budget real runs end is measured by
benchmarks/quick_train.py (docs/performance.md), not here: these tests check the plan and
that a real run follows it."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import torch

from cvae import TrainConfig, load_checkpoint, load_mnist, train
from cvae.training import budget as budget_mod
from cvae.training.budget import TimeBudget
from cvae.training.config import lr_factor
from devkit import DATA_DIR, needs_data


class FakeRun(SimpleNamespace):
    def more(self):
        return self.global_step < self.total_steps


def fake_run(**kw) -> FakeRun:
    hw = SimpleNamespace(all_cores=lambda: __import__("contextlib").nullcontext())
    base = dict(global_step=budget_mod.CALIBRATE, total_steps=10_000, steps=100, history=[], step_seconds=0.0,
                hw=hw, test_x=torch.zeros(10, 1, 28, 28), kept=None, cfg=SimpleNamespace(seed=0, recipe="tutorial"))
    base.update(kw)
    return FakeRun(**base)


def test_the_plan_fills_the_time_left_with_steps_and_evaluations(monkeypatch):
    """10 ms a step, 1 s an evaluation, 60 s from now: the steps and the evaluations they bring
    (one per epoch begun) fill what is left after the fixed end."""
    now = 1000.0
    monkeypatch.setattr(budget_mod.time, "perf_counter", lambda: now)
    b = TimeBudget(60.0, started=now)
    b.eval_s = 1.0
    run = fake_run(step_seconds=0.01 * budget_mod.CALIBRATE)
    b._plan(run)
    total = run.total_steps
    epochs = math.ceil(total / run.steps)
    spent = (total - run.global_step) * 0.01 + epochs * (1.0 + budget_mod.SAVE_S) + budget_mod.END_S
    assert 60.0 - (0.01 + 1.0 + budget_mod.SAVE_S) <= spent <= 60.0, (total, spent)  # a step and an epoch short at most
    # Slower steps, fewer of them.
    slow = fake_run(step_seconds=0.02 * budget_mod.CALIBRATE)
    b._plan(slow)
    assert slow.total_steps < total


def test_the_plan_counts_the_time_already_spent(monkeypatch):
    """Loading the data is part of the budget: a run that starts 30 s into a 60 s budget plans half."""
    clock = {"t": 100.0}
    monkeypatch.setattr(budget_mod.time, "perf_counter", lambda: clock["t"])
    fresh, late = TimeBudget(60.0, started=100.0), TimeBudget(60.0, started=70.0)
    for b in (fresh, late):
        b.eval_s = 0.5
    a, z = fake_run(step_seconds=0.12), fake_run(step_seconds=0.12)
    fresh._plan(a)
    late._plan(z)
    assert z.total_steps == pytest.approx(a.total_steps / 2, rel=0.05)


def test_out_of_time_ends_the_epoch_at_the_current_step(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(budget_mod.time, "perf_counter", lambda: clock["t"])
    b = TimeBudget(10.0, started=0.0)
    run = fake_run(global_step=500, total_steps=900)
    clock["t"] = 10.5
    event = {"kind": "step", "progress": 500 / 900}  # as the run made it, from the plan before the cut
    b.on_step(run, event)
    assert run.total_steps == 500 and not run.more()
    assert event["progress"] == 1.0  # what the page's progress bar and the CLI show for the last step


def test_the_schedule_stretches_over_the_planned_steps():
    cfg = TrainConfig(schedule="cosine", warmup=0.05)
    for total in (200, 3000):
        f = [lr_factor(cfg, s, total) for s in range(total)]
        assert f[int(0.05 * total) - 1] == pytest.approx(1.0)  # the warm-up ends at 5% of the plan
        assert f[(int(0.05 * total) + total) // 2] == pytest.approx(0.5, abs=0.01)  # the cosine's middle
        assert f[-1] < 0.01


@needs_data
@pytest.mark.slow  # a 12-second run by design
def test_a_budgeted_run_plans_follows_and_ends_near_its_deadline(tmp_path):
    """A real 12-second run on 320 images: it plans after its first steps, runs about the
    planned steps across several epochs and a partial last one, validates that epoch, saves, and
    ends within the budget (loosely here; the benchmark measures how close). An epoch is 10 steps,
    so even a machine crowded down to 4 steps/s (seen in a loaded CI run) runs several."""
    train_x, _ = load_mnist("train", DATA_DIR, download=False)
    test_x, test_y = load_mnist("test", DATA_DIR, download=False)
    events = []
    t0 = time.perf_counter()
    cfg = TrainConfig.from_recipe("quick", seconds=12, limit=320, seed=1)
    res = train(cfg, train_x, test_x[:500], test_y=test_y[:500], callback=events.append, out=tmp_path / "q.pt",
                started=t0)
    elapsed = time.perf_counter() - t0
    steps = [e for e in events if e["kind"] == "step"]
    assert 0.75 * 12 <= elapsed <= 12 * 1.10 + 1.0, elapsed
    # More than one epoch's worth of the 320 images fits in 12 s; every epoch begun, the last
    # one maybe partial, is validated; the progress reported reaches the end.
    per_epoch = math.ceil(320 / cfg.batch_size)
    assert len(steps) > per_epoch
    assert [h["epoch"] for h in res.history] == list(range(1, math.ceil(len(steps) / per_epoch) + 1))
    assert sum(h["images"] for h in res.history) == sum(e["images"] for e in steps)
    assert steps[-1]["progress"] >= 0.98 and max(e["progress"] for e in steps) <= 1.0  # no step past the plan
    # Its film ends with the last epoch; the checkpoint records the budget and the spread.
    snaps = [e for e in events if e["kind"] == "snapshot"]
    assert snaps[-1]["epoch"] == len(res.history)
    meta = load_checkpoint(tmp_path / "q.pt").meta
    assert meta["train_config"]["seconds"] == 12 and len(meta["extra"]["latent_spread"]) == 2


def _short_budget(monkeypatch, seconds: float, step_s: float, recipe: str = "quick"):
    now = 1000.0
    monkeypatch.setattr(budget_mod.time, "perf_counter", lambda: now)
    events = []
    b = TimeBudget(seconds, started=now, emit=events.append)
    b.eval_s = 1.0
    run = fake_run(step_seconds=step_s * budget_mod.CALIBRATE, cfg=SimpleNamespace(seed=0, recipe=recipe),
                   steps=1875)
    b._plan(run)
    return b, run, events


def test_a_budget_that_fits_too_few_steps_to_spread_says_so_with_the_numbers(monkeypatch):
    """Planned steps under the recipe's SPREAD_STEPS: one event, at the first plan, naming the steps that
    fit, the steps needed and a budget that fits them; the run still goes on with its plan."""
    from cvae.training.config import SPREAD_STEPS

    needed = SPREAD_STEPS["quick"]
    b, run, events = _short_budget(monkeypatch, 30.0, 0.1)  # ~290 steps fit in 30 s at 10 steps/s
    assert run.total_steps < needed and [e["kind"] for e in events] == ["plan"]
    ev = events[0]
    assert ev["steps"] == run.total_steps and ev["needed"] == needed and ev["warning"] == b.warning
    assert f"about {run.total_steps:,} training steps in 30 s" in ev["warning"]
    assert f"needs about {needed:,}" in ev["warning"]
    enough = float(ev["warning"].split("give it about ")[1].split(" s")[0])
    # The budget it names fits the steps needed on this machine's measured pace, and not much more.
    b2, run2, events2 = _short_budget(monkeypatch, enough, 0.1)
    assert needed <= run2.total_steps <= needed + 10 / 0.1 + 1, (enough, run2.total_steps)
    assert events2[0]["warning"] is None
    # Planned again (the machine sped up, still short): no second warning.
    b._plan(run)
    assert len(events) == 1


def test_a_budget_long_enough_or_another_recipe_plans_without_a_warning(monkeypatch):
    from cvae.training.config import SPREAD_STEPS

    _, run, events = _short_budget(monkeypatch, 60.0, 0.01)
    needed = SPREAD_STEPS["quick"]
    assert run.total_steps > needed and events == [dict(kind="plan", steps=run.total_steps, needed=needed,
                                                       seconds=60.0, warning=None)]
    _, run, events = _short_budget(monkeypatch, 30.0, 0.1, recipe="fast")  # no measured need for this recipe
    assert events[0]["warning"] is None and events[0]["needed"] is None


def test_the_pace_is_the_recent_steps_not_the_whole_run(monkeypatch):
    """A machine that got busy a while ago: the plan follows the last seconds of steps, not the average
    since the start (which would promise steps the deadline cannot hold)."""
    clock = {"t": 0.0}
    monkeypatch.setattr(budget_mod.time, "perf_counter", lambda: clock["t"])
    b = TimeBudget(100.0, started=0.0)
    b.eval_s = 0.0
    run = fake_run(global_step=0, step_seconds=0.0)
    for i in range(1, 1001):  # 500 fast steps (10 ms), then 500 slow ones (40 ms)
        dt = 0.01 if i <= 500 else 0.04
        run.global_step, run.step_seconds = i, run.step_seconds + dt
        clock["t"] += dt
        b.on_step(run, {})
    left = 100.0 - clock["t"] - budget_mod.END_S
    assert run.total_steps - 1000 == pytest.approx(left / 0.04, rel=0.05)
