"""The time budget's plan (cvae.training.budget), driven through its callbacks against a clock the
test controls: the first plan times an evaluation of a few hundred test images and counts a whole
one per epoch; the film's snapshots still to come count; the plan is the most steps that fit, not
one fewer; it is made again every 2 s and every half second in the last 10 s, from the pace of the
last seconds of steps; a run shorter than the calibration is planned at its last step; a budget
with no time left ends the run where it is; the warning about too few steps names whole numbers,
the recipe, and a budget that does fit; and the process's start, which a budget counts from."""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from cvae.core.model import CVAE
from cvae.training import budget as budget_mod
from cvae.training.budget import CALIBRATE, END_S, FINAL_S, REPLAN_S, SAVE_S, TimeBudget, process_started
from budgetclock import Clock, FakeRun
from devkit import REPO

IMPORTED = time.perf_counter()  # this test process started before this module was imported




def make_run(**kw) -> FakeRun:
    base = dict(global_step=0, total_steps=100_000, steps=100, history=[], step_seconds=0.0,
                hw=SimpleNamespace(all_cores=contextlib.nullcontext), test_x=torch.zeros(10, 1, 28, 28), kept=None,
                cfg=SimpleNamespace(seed=0, recipe="tutorial"))
    base.update(kw)
    return FakeRun(**base)


def steps(clock: Clock, b: TimeBudget, run: FakeRun, n: int, dt: float) -> None:
    """``n`` steps of ``dt`` seconds each, as the loop reports them."""
    for _ in range(n):
        clock.t += dt
        run.step_seconds += dt
        run.global_step += 1
        b.on_step(run, {})


def spent(total: int, *, done: int, validated: int, per_epoch_steps: int, step_s: float, eval_s: float,
          snap_s: float = 0.0, pending: int = 0) -> float:
    """The seconds from now to the end of a run of ``total`` steps: its steps, an evaluation, a film
    snapshot and a save for each epoch still to begin or finish, the film's first-epoch snapshots to
    come, and the end."""
    epochs = math.ceil(total / per_epoch_steps) - validated
    return (total - done) * step_s + epochs * (eval_s + snap_s + SAVE_S) + pending * snap_s + END_S


def assert_most_that_fit(total: int, avail: float, **kw) -> None:
    assert spent(total, **kw) <= avail + 1e-6, (total, spent(total, **kw), avail)
    assert spent(total + 1, **kw) > avail - 1e-6, (total, spent(total + 1, **kw), avail)  # one more would not fit


@pytest.mark.parametrize("step_s, eval_s", [(0.01, 1.0), (1.0, 0.0), (0.05, 0.3)],
                         ids=["fast steps", "steps slower than an evaluation", "between"])
def test_the_first_plan_is_the_most_steps_that_fit(clock, step_s, eval_s):
    b = TimeBudget(60.0, started=0.0)
    b.eval_s = eval_s
    run = make_run()
    steps(clock, b, run, CALIBRATE, step_s)
    assert b.plans == [run.total_steps]
    assert_most_that_fit(run.total_steps, 60.0 - clock.t, done=CALIBRATE, validated=0, per_epoch_steps=100,
                         step_s=step_s, eval_s=eval_s)


def timed_evaluations(monkeypatch, clock: Clock, per_image: list[float]) -> list[tuple]:
    """The budget's evaluations cost ``per_image[0]`` seconds an image on the test's clock (the test
    may change it as the run goes on); returns the list of (model, images, clock at the call)."""
    calls = []
    real = budget_mod.evaluate

    def timed_evaluate(model, images, **kw):
        calls.append((model, len(images), clock.t))
        clock.t += per_image[0] * len(images)
        return real(model, images, **kw)

    monkeypatch.setattr(budget_mod, "evaluate", timed_evaluate)
    return calls


def test_the_first_plan_times_an_evaluation_of_a_few_hundred_test_images_and_counts_a_whole_one(clock, monkeypatch):
    """Evaluating costs 1 ms an image here: the plan times one of at most 500 images (not the whole
    test set, which would eat the budget), of the model being trained, and counts 2 s for each
    evaluation of the 2,000 test images."""
    calls = timed_evaluations(monkeypatch, clock, [0.001])
    model = CVAE()
    b = TimeBudget(60.0, started=0.0)
    run = make_run(test_x=torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)), kept=model)
    steps(clock, b, run, CALIBRATE, 0.01)
    assert [(m, n) for m, n, _ in calls] == [(model, 500)]
    assert b.eval_s == pytest.approx(2.0)
    assert_most_that_fit(run.total_steps, 60.0 - clock.t, done=CALIBRATE, validated=0, per_epoch_steps=100,
                         step_s=0.01, eval_s=2.0)
    # A test set under 500 images is timed whole.
    calls.clear()
    b, run = TimeBudget(60.0, started=clock.t), make_run(test_x=torch.rand(200, 1, 28, 28), kept=model)
    steps(clock, b, run, CALIBRATE, 0.01)
    assert [(m, n) for m, n, _ in calls] == [(model, 200)] and b.eval_s == pytest.approx(0.2)


@pytest.mark.parametrize("validated", [False, True], ids=["no epoch validated yet", "an epoch validated"])
def test_the_evaluation_is_probed_again_as_the_end_nears_in_a_run_with_no_epoch_measured(clock, monkeypatch,
                                                                                      validated):
    """The first probe ran at 4 ms an image (a busy start); evaluating now costs 1 ms. In a run that
    has not validated an epoch, its one evaluation comes at its end: as the end nears (within
    FINAL_S plus the estimate) the budget times an evaluation once more, plans the steps that now
    fit and ends at its deadline, not 3 s early. A run that has validated an epoch measured a whole
    evaluation there and probes no more."""
    per_image = [0.004]
    calls = timed_evaluations(monkeypatch, clock, per_image)
    b = TimeBudget(60.0, started=0.0)
    run = make_run(steps=100_000, test_x=torch.rand(1000, 1, 28, 28), kept=CVAE())
    steps(clock, b, run, CALIBRATE, 0.01)
    assert b.eval_s == pytest.approx(4.0) and b.probes == 1
    per_image[0] = 0.001
    if validated:  # an epoch ended here: its evaluation measured 1 s
        run.history.append({})
        b.on_epoch(run, {"seconds": 2.0, "train_seconds": 1.0})
    while run.more():
        steps(clock, b, run, 1, 0.01)
    if validated:
        assert b.probes == 1 and len(calls) == 1
        return
    assert b.probes == 2 and b.eval_s == pytest.approx(1.0)
    # Probed at the first plan with FINAL_S + 4 s or less to go (plans come every REPLAN_S before that).
    assert FINAL_S + 4.0 - REPLAN_S - 0.02 <= 60.0 - calls[1][2] <= FINAL_S + 4.0
    # The run's steps end where its evaluation (1 s), its save and its end reach the deadline.
    assert clock.t + 1.0 + SAVE_S + END_S == pytest.approx(60.0, abs=0.02)


class FakeFilm:
    """A FilmRecorder's numbers: 4 snapshots so far in 2 s (0.5 s each), first-epoch snapshots at
    the steps given."""

    def __init__(self, first_steps):
        self.seconds, self.snapshots, self.first_steps = 2.0, [{}] * 4, set(first_steps)


def test_the_films_snapshots_count_in_the_plan(clock):
    """Three first-epoch snapshots after step 12 still to come, and one snapshot per epoch: the plan
    leaves their time, and plans fewer steps than without a film."""
    film = FakeFilm({2, 6, 12, 25, 50, 75})
    with_film, without = TimeBudget(60.0, started=0.0, film=film), TimeBudget(60.0, started=0.0)
    runs = []
    for b in (with_film, without):
        b.eval_s = 1.0
        runs.append(make_run())
        clock.t = 0.0
        steps(clock, b, runs[-1], CALIBRATE, 0.01)
    assert_most_that_fit(runs[0].total_steps, 60.0 - clock.t, done=CALIBRATE, validated=0, per_epoch_steps=100,
                         step_s=0.01, eval_s=1.0, snap_s=0.5, pending=3)
    assert runs[0].total_steps < runs[1].total_steps


def simulate(clock: Clock, step_s, *, seconds: float, per_epoch: int, eval_s: float, total: int | None = None):
    """The loop's calls to a TimeBudget; ``step_s(i)`` seconds for step i. Returns the budget, the run
    and the clock's time at each plan with the steps done then."""
    run = make_run(total_steps=total or per_epoch * 1000, steps=per_epoch)
    b = TimeBudget(seconds, started=0.0)
    b.eval_s = eval_s
    b.on_start(run)
    at = []
    while run.more():
        t_epoch = clock.t
        for _ in range(run.steps):
            if run.global_step >= run.total_steps:
                break
            n = len(b.plans)
            steps(clock, b, run, 1, step_s(run.global_step + 1))
            if len(b.plans) > n:
                at.append((clock.t, run.global_step))
        train_s = clock.t - t_epoch
        clock.t += eval_s + SAVE_S
        run.history.append({"epoch": len(run.history) + 1})
        b.on_epoch(run, {"seconds": clock.t - t_epoch, "train_seconds": train_s})
    return b, run, at


def test_the_plan_is_made_again_every_two_seconds_and_every_half_second_in_the_last_ten(clock):
    """60 s, 10 ms a step, 1,000-step epochs (about 10.6 s with the evaluation): plans within an epoch
    come 2 s apart until the last 10 s, then half a second apart."""
    b, run, at = simulate(clock, lambda i: 0.01, seconds=60.0, per_epoch=1000, eval_s=0.5)
    early = [t for t, _ in at if 1.0 < t < b.deadline - 10.5]
    late = [t for t, _ in at if t > b.deadline - 10.0]
    # 2 s apart (plus the plans at epochs' ends): about 24 in 48 s.
    assert 0.4 * 48 / 2 <= len(early) <= 48 / 2 + 6, len(early)
    gaps = [b2 - a for a, b2 in zip(early, early[1:])]
    assert sum(g < 1.99 for g in gaps) <= 5, gaps  # only at an epoch's end does a plan come sooner
    # Half a second apart in the last 10 s (the run ends about an evaluation early): about 18.
    assert 14 <= len(late) <= 21, len(late)


def test_the_pace_is_the_last_seconds_of_steps_not_the_last_few(clock):
    """Every tenth step is slow (210 ms, the rest 10 ms: 30 ms on average), as when another program
    wakes up now and then: every plan after the first seconds follows the average pace, not the
    last dozen steps (which hold one or two slow ones)."""
    b, run, at = simulate(clock, lambda i: 0.21 if i % 10 == 0 else 0.01, seconds=100.0, per_epoch=100_000,
                          eval_s=0.0)
    later = [(t, done, total) for (t, done), total in zip(at, b.plans) if t > 6.0]
    assert len(later) > 20
    for t, done, total in later:
        left = b.deadline - t - END_S - SAVE_S
        assert (total - done) * 0.03 == pytest.approx(left, rel=0.1), (t, done, total)


@pytest.mark.parametrize("first_total", [2, 5])
def test_a_run_shorter_than_the_calibration_is_planned_at_its_last_step(clock, first_total):
    """A run whose epochs hold fewer steps than the calibration's dozen (two or five batches of data,
    one epoch) is planned at its last step, from the pace of the steps after the first, and goes
    on to fill its budget."""
    b = TimeBudget(30.0, started=0.0)
    b.eval_s = 0.5
    run = make_run(total_steps=first_total, steps=first_total)
    b.on_start(run)
    steps(clock, b, run, first_total, 0.01)
    assert b.plans == [run.total_steps]
    assert_most_that_fit(run.total_steps, 30.0 - clock.t, done=first_total, validated=0, per_epoch_steps=first_total,
                         step_s=0.01, eval_s=0.5)
    assert run.more()


@pytest.mark.parametrize("done", [1, CALIBRATE])
def test_a_plan_with_no_time_left_ends_the_run_at_its_step(clock, done):
    """The deadline is not past but what is left is less than the run's end needs: the plan made at
    step ``done`` (a one-step run's only step, or the calibration's end) runs no more steps."""
    b = TimeBudget(10.0, started=0.0)
    b.eval_s = 0.5
    run = make_run(total_steps=done, steps=done)
    steps(clock, b, run, done - 1, 0.01)
    clock.t = 10.0 - END_S / 2
    steps(clock, b, run, 1, 0.01)
    assert b.plans == [done] and run.total_steps == done and not run.more()


def test_a_budget_counts_from_its_creation_unless_told_when_the_run_started(clock):
    clock.t = 100.0
    b = TimeBudget(30.0)
    run = make_run(global_step=5, total_steps=900)  # before the first plan
    clock.t = 129.0
    b.on_step(run, {})
    assert run.total_steps == 900
    clock.t = 130.5  # past 100 + 30 s
    b.on_step(run, {})
    assert run.total_steps == 5 and not run.more()


def plan_once(clock: Clock, seconds: float, *, recipe: str = "quick", film=None):
    """The first plan of a ``seconds`` budget at 100 ms a step (1 s evaluations, 1,875-step epochs),
    and the events it emits."""
    clock.t = 0.0
    events = []
    b = TimeBudget(seconds, started=0.0, film=film, emit=events.append)
    b.eval_s = 1.0
    run = make_run(steps=1875, cfg=SimpleNamespace(seed=0, recipe=recipe))
    steps(clock, b, run, CALIBRATE, 0.1)
    return b, run, events


def test_the_warning_names_whole_steps_and_a_budget_that_fits_them_with_the_film(clock):
    """With the film's snapshots to come (30 at 0.5 s: 15 s), the budget the warning names still fits
    the steps needed; the steps it names are a whole number, as in the plan event."""
    film = FakeFilm(range(13, 43))
    b, run, events = plan_once(clock, 60.0, film=film)
    needed = budget_mod.SPREAD_STEPS["quick"]
    ev = events[0]
    assert isinstance(ev["steps"], int) and ev["steps"] == run.total_steps < needed
    fits = re.search(r"about ([\d,]+) training steps in 60 s", ev["warning"]).group(1)
    assert int(fits.replace(",", "")) == run.total_steps
    enough = float(re.search(r"give it about ([\d.]+) s", ev["warning"]).group(1))
    _, run2, events2 = plan_once(clock, enough, film=FakeFilm(range(13, 43)))
    assert needed <= run2.total_steps <= needed + 10 / 0.1 + 1 and events2[0]["warning"] is None


def test_a_budget_that_fits_exactly_the_steps_needed_has_no_warning(clock):
    needed = budget_mod.SPREAD_STEPS["quick"]
    lo, hi = 30.0, 200.0  # budgets that fit fewer and more than ``needed``
    for _ in range(60):
        mid = (lo + hi) / 2
        total = plan_once(clock, mid)[1].total_steps
        if total == needed:
            break
        lo, hi = (mid, hi) if total < needed else (lo, mid)
    b, run, events = plan_once(clock, mid)
    assert run.total_steps == needed and events[0]["warning"] is None and b.warning is None
    b, run, events = plan_once(clock, mid - 0.1)  # one step fewer
    assert run.total_steps == needed - 1 and events[0]["warning"] is not None


def test_the_warning_names_the_recipe_whose_need_was_measured(clock, monkeypatch):
    monkeypatch.setitem(budget_mod.SPREAD_STEPS, "fast", 5000)
    b, run, events = plan_once(clock, 60.0, recipe="fast")
    assert "the fast recipe needs about 5,000" in events[0]["warning"] and events[0]["needed"] == 5000


# A child Python that imports the budget module without torch (its heavy neighbours stubbed): a
# fraction of a second.
CHILD = """
import sys, time, types
time.sleep(1.0)
for name in ("cvae", "cvae.core", "cvae.training"):
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [name.replace(".", "/")]
for name, attrs in (("cvae.core.latent", ["evaluate"]), ("cvae.core.checkpoint", ["make_folder", "save_checkpoint"]),
                    ("cvae.core.model", ["CVAE"])):
    sys.modules[name] = types.ModuleType(name)
    for attr in attrs:
        setattr(sys.modules[name], attr, None)
from cvae.training.budget import process_started
assert "torch" not in sys.modules
print(time.time() - (time.perf_counter() - process_started()))
"""


def test_the_process_start_is_when_python_started():
    """A child Python that sleeps a second before it asks: its start is before the sleep, about when
    this test launched it (the clock ticks of /proc are 10 ms). This process's start is before this
    module's import."""
    assert process_started() < IMPORTED
    launched = time.time()
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    started = float(r.stdout)
    assert launched - 0.05 <= started <= launched + 0.9, (started - launched)


def test_without_proc_the_process_start_is_now(monkeypatch):
    def no_proc(*a, **kw):
        raise OSError("no /proc here")

    monkeypatch.setattr(budget_mod, "open", no_proc, raising=False)
    before = time.perf_counter()
    assert before <= process_started() <= time.perf_counter()
