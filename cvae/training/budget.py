"""A time budget: train for so many seconds of wall time, data loading and the film included.

:class:`TimeBudget` is a callback. After :data:`CALIBRATE` steps it measures what a step, an
evaluation of the test set and a film snapshot cost on this machine, and sets the run's number
of steps (``run.total_steps``) so that the run ends at the deadline; the learning-rate schedule
(warm-up, cosine) stretches over that number. Every couple of seconds and after every epoch it
measures again and moves the end, so a machine that speeds up or slows down still ends on time. The last epoch may be
partial: it stops where the budget does and is validated like any other.
"""

from __future__ import annotations

import math
import os
import time

from ..core.latent import evaluate
from .callbacks import Callback

CALIBRATE = 12  # steps timed before the first plan (the warm-up's first steps)
REPLAN_S = 2.0  # then the plan is made again this often, from the steps' time so far
PROBE = 500  # test images timed to estimate a whole evaluation
SAVE_S = 0.1  # a checkpoint with its film, written after an improving epoch
END_S = 0.4  # after the last step: restoring the best weights, the run's summary


class TimeBudget(Callback):
    """Ends the run ``seconds`` after ``started`` (``time.perf_counter()``: the command's start,
    so loading the data counts)."""

    def __init__(self, seconds: float, started: float | None = None, film=None):
        self.deadline = (time.perf_counter() if started is None else started) + float(seconds)
        self.film = film  # the run's FilmRecorder, whose snapshots count too
        self.eval_s: float | None = None
        self.plans: list[int] = []  # total steps, as planned after calibration and each epoch
        self._since = (0, 0.0)  # (steps, step seconds) where the timing of steps starts
        self._planned_at = -math.inf

    def on_start(self, run):
        run.total_steps = max(run.total_steps, 1)

    def on_step(self, run, event):
        now = time.perf_counter()
        if now > self.deadline:
            run.total_steps = min(run.total_steps, run.global_step)  # out of time: this epoch ends here
            return
        if run.global_step == 1:  # the first step pays one-off costs (kernels chosen, memory mapped)
            self._since = (run.global_step, run.step_seconds)
        elif run.global_step == CALIBRATE or (run.global_step < CALIBRATE and run.global_step == run.total_steps):
            self._plan(run)
        elif run.global_step > CALIBRATE and now - self._planned_at >= REPLAN_S and run.more():
            self._plan(run)  # the machine may have sped up or slowed down

    def on_epoch(self, run, record):
        self.eval_s = record["seconds"] - record["train_seconds"]  # the evaluation just measured
        if run.more():  # the end lies ahead: move it to where the time now says (not past a run's end)
            self._plan(run)

    def _plan(self, run) -> None:
        n0, s0 = self._since
        step_s = (run.step_seconds - s0) / max(run.global_step - n0, 1)
        if self.eval_s is None:
            n = min(PROBE, len(run.test_x))
            with run.hw.all_cores():
                t0 = time.perf_counter()
                evaluate(run.kept, run.test_x[:n], batch_size=n, seed=run.cfg.seed)
                self.eval_s = (time.perf_counter() - t0) * len(run.test_x) / n
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
