"""A time budget: train for so many seconds of wall time, data loading and the film included.

:class:`TimeBudget` is a callback. After :data:`CALIBRATE` steps it measures what a step, an
evaluation of the test set and a film snapshot cost on this machine, and sets the run's number
of steps (``run.total_steps``) so that the run ends at the deadline; the learning-rate schedule
(warm-up, cosine) stretches over that number. Every couple of seconds (every half second in the
last ten), and after every epoch, it plans again from the pace of the last few seconds of steps,
so a machine that speeds up or slows down (another program starts, the run's pacer changes its
way) still ends on time with its schedule run to the end. The evaluation's cost is timed on a few
hundred test images after calibration, and once more as the end nears in a run that has not yet
validated an epoch (its one evaluation then comes at the end). The last epoch may be partial: it
stops where the budget does and is validated like any other.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque

from ..core.latent import evaluate
from .callbacks import Callback
from .config import SPREAD_STEPS

CALIBRATE = 12  # steps timed before the first plan (the warm-up's first steps)
REPLAN_S = 2.0  # then the plan is made again this often, from the pace of the recent steps
FINAL_S = 10.0  # in the last seconds of the budget
FINAL_REPLAN_S = 0.5  # plan this often, so the schedule ends within a few steps of the deadline
PACE_S = 4.0  # the steps' pace: their time over the last this many seconds of steps (at least CALIBRATE steps)
PROBE = 500  # test images timed to estimate a whole evaluation
SAVE_S = 0.1  # a checkpoint with its film, written after an improving epoch
END_S = 0.4  # after the last step: restoring the best weights, the run's summary


class TimeBudget(Callback):
    """Ends the run ``seconds`` after ``started`` (``time.perf_counter()``: the command's start,
    so loading the data counts)."""

    def __init__(self, seconds: float, started: float | None = None, film=None, emit=None):
        self.started = time.perf_counter() if started is None else started
        self.seconds = float(seconds)
        self.deadline = self.started + self.seconds
        self.film = film  # the run's FilmRecorder, whose snapshots count too
        # emit({"kind": "plan", ...}) after the first plan, and when a later plan first falls short of
        # the steps the recipe needs to spread both latent dimensions (SPREAD_STEPS).
        self.emit = emit
        self.warning: str | None = None
        self.eval_s: float | None = None  # a whole evaluation's seconds: probed, then measured at each epoch's end
        self.probes = 0  # evaluations of PROBE test images timed so far
        self._epoch_measured = False
        self.plans: list[int] = []  # total steps, as planned after calibration and each epoch
        self._marks: deque[tuple[int, float]] = deque()  # (steps, step seconds) after recent steps
        self._planned_at = -math.inf

    def on_start(self, run):
        run.total_steps = max(run.total_steps, 1)

    def on_step(self, run, event):
        self._follow(run)
        # The step's progress as the plan now stands (the run's end may have just moved), for the
        # callbacks after this one: the last step of a run cut by its deadline reports 100%.
        event["progress"] = run.global_step / max(run.total_steps, 1)

    def _follow(self, run) -> None:
        now = time.perf_counter()
        if now > self.deadline:
            run.total_steps = min(run.total_steps, run.global_step)  # out of time: this epoch ends here
            return
        # The first step pays one-off costs (kernels chosen, memory mapped): the pace starts after it.
        self._marks.append((run.global_step, run.step_seconds))
        while len(self._marks) > CALIBRATE and run.step_seconds - self._marks[1][1] >= PACE_S:
            self._marks.popleft()
        every = FINAL_REPLAN_S if self.deadline - now <= FINAL_S else REPLAN_S
        if run.global_step == CALIBRATE or (run.global_step < CALIBRATE and run.global_step == run.total_steps):
            self._plan(run)
        elif run.global_step > CALIBRATE and now - self._planned_at >= every and run.more():
            self._plan(run)  # the machine may have sped up or slowed down

    def on_epoch(self, run, record):
        self.eval_s = record["seconds"] - record["train_seconds"]  # the evaluation just measured
        self._epoch_measured = True
        if run.more():  # the end lies ahead: move it to where the time now says (not past a run's end)
            self._plan(run)

    def _plan(self, run) -> None:
        n0, s0 = self._marks[0] if self._marks else (0, 0.0)
        step_s = (run.step_seconds - s0) / max(run.global_step - n0, 1)
        # The evaluation's cost is probed after calibration, when the machine is often at its busiest
        # (a page that just opened, kernels being chosen), and probed once more as the end nears in
        # a run that has not yet validated an epoch, whose one evaluation then comes at the end: an
        # estimate off by seconds would end the run that much early or late.
        if self.eval_s is None or (self.probes == 1 and not self._epoch_measured
                                   and self.deadline - time.perf_counter() <= FINAL_S + self.eval_s):
            self.eval_s = self._probe(run)
        snap_s = (self.film.seconds / len(self.film.snapshots)) if self.film is not None and self.film.snapshots else 0.0
        pending_first = len(self.film.first_steps - set(range(run.global_step + 1))) if self.film is not None else 0
        left = self.deadline - time.perf_counter() - END_S - pending_first * snap_s
        per_epoch = self.eval_s + snap_s + SAVE_S
        done, n, validated = run.global_step, run.steps, len(run.history)

        def cost(total: int) -> float:  # the seconds from now to the end of a run of ``total`` steps
            evals = max(0, math.ceil(total / n) - validated)
            return (total - done) * step_s + evals * per_epoch

        lo, hi = done, done + int(max(left, 0) / max(step_s, 1e-9)) + 1
        while lo < hi:  # the most steps whose cost fits (cost grows with the steps)
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if cost(mid) <= left else (lo, mid - 1)
        run.total_steps = max(lo, done, 1)
        self.plans.append(run.total_steps)
        self._planned_at = time.perf_counter()
        needed = SPREAD_STEPS.get(run.cfg.recipe)
        short = needed is not None and run.total_steps < needed and self.warning is None
        if short:
            # The budget that would fit ``needed`` steps: the time spent so far, the cost of the
            # steps and evaluations still to come, and the end; rounded up to 10 s.
            more = self._planned_at - self.started + cost(max(needed, done)) + END_S + pending_first * snap_s
            self.warning = short_plan_message(run.total_steps, needed, self.seconds, 10 * math.ceil(more / 10),
                                              run.cfg.recipe)
        if self.emit is not None and (len(self.plans) == 1 or short):
            self.emit({"kind": "plan", "steps": run.total_steps, "needed": needed, "seconds": self.seconds,
                       "warning": self.warning})


    def _probe(self, run) -> float:
        """A whole evaluation's seconds, from the time of one over PROBE test images."""
        n = min(PROBE, len(run.test_x))
        with run.hw.all_cores():
            t0 = time.perf_counter()
            evaluate(run.kept, run.test_x[:n], batch_size=n, seed=run.cfg.seed)
            seconds = (time.perf_counter() - t0) * len(run.test_x) / n
        self.probes += 1
        return seconds


def short_plan_message(fits: int, needed: int, seconds: float, enough: float, recipe: str) -> str:
    """What to tell a person whose time budget fits too few steps for the latent space to spread."""
    return (f"This budget fits about {fits:,} training steps in {seconds:g} s on this machine right now, and the "
            f"{recipe} recipe needs about {needed:,} for both latent dimensions to spread, so the scatter may stay "
            f"a smear: give it about {enough:g} s, or train on from the model this run saves.")


def process_started() -> float:
    """When this process started, on ``time.perf_counter()``'s clock (Linux: from /proc; elsewhere:
    now, which leaves out the interpreter's start and its imports)."""
    now = time.perf_counter()
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
