"""What the time-budget tests share: a clock the test moves by hand (conftest.py's ``clock``
fixture puts it in place of the budget module's ``time``; the loop keeps the real one), and a
stand-in for a run."""

from __future__ import annotations

from types import SimpleNamespace


class Clock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def perf_counter(self) -> float:
        return self.t


class FakeRun(SimpleNamespace):
    def more(self):
        return self.global_step < self.total_steps
