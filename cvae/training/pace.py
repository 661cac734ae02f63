"""How each training step is computed, chosen from measured step times while the run goes on.

A step (a batch's loss and gradients) can be computed several ways (:class:`Way`): with
PyTorch's stock layers or :mod:`cvae.training.gemm`'s matrix products (in bfloat16 where the CPU
multiplies it natively, else in float32), and with the batch on one thread, split over one thread per core,
or on one thread that hands each op to torch's intra-op threads (all cores). Which is fastest
depends on the moment. On an idle machine the intra-op threads win for the bfloat16 path. As soon
as another program takes a core, every one of a step's ~130 small parallel ops waits at a barrier
for the thread that lost its core, and the same way runs many times slower than one thread would
(docs/performance.md, "Training on a busy machine").

:class:`Pacer` therefore times a few steps of each way, takes the fastest, and looks again every
:data:`RECHECK_S` seconds, and as soon as the chosen way's recent steps drift by more than
:data:`DRIFT` from what it measured. Every probed step is a real optimizer step of the run; the
ways compute the same loss and gradients (to float rounding, or bfloat16's rounding), so a run
whose way changes trains the same model. Where only one way is allowed (an explicit
``workers``/``precision``, or a GPU) nothing is probed and a seeded run is reproducible bit for bit.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

PROBE_STEPS = 3  # timed steps per way in a probe (after one untimed step: threads wake, kernels are chosen)
WINDOW = 8  # the chosen way's recent steps, whose median is compared with what the probe measured
DRIFT = 1.5  # a median this many times slower (or faster) than measured: look at every way again
RECHECK_S = 10.0  # and look again this often anyway (another way may have become the faster one)


@dataclass(frozen=True)
class Way:
    """One way to compute a step: the products' dtype (None: PyTorch's stock layers and autograd),
    the threads that split the batch (``workers``), and torch's intra-op threads during the step."""

    dtype: torch.dtype | None
    workers: int
    threads: int

    def describe(self) -> str:
        arith = ("stock float32 layers" if self.dtype is None else
                 f"{str(self.dtype).removeprefix('torch.')} products")
        if self.workers > 1:
            return f"{arith}, batch split over {self.workers} threads"
        return f"{arith}, {'one thread' if self.threads == 1 else f'{self.threads} threads per op'}"


def candidate_ways(dtypes: list[torch.dtype | None], workers: int, cores: int, batch_size: int,
                   device: torch.device) -> list[Way]:
    """The ways a run may take. ``workers`` > 0 fixes the way: that split, in the first of
    ``dtypes`` (one way, so a seeded run is reproducible: two ways round differently, and which
    one the pacer takes depends on the machine's load); 0 lets the pacer choose among one thread,
    the batch split over the cores (at least 8 images a shard) and torch's intra-op threads, in
    each dtype. A GPU has one way."""
    if device.type != "cpu":
        return [Way(None, 1, torch.get_num_threads())]
    if workers:
        return [Way(dtypes[0], workers, 1 if workers > 1 else cores)]
    split = max(1, min(cores, 8, batch_size // 8))
    ways = []
    for dt in dtypes:
        for w in ([Way(dt, 1, cores), Way(dt, split, 1), Way(dt, 1, 1)] if cores > 1 else [Way(dt, 1, 1)]):
            if w not in ways and (w.workers == 1 or split > 1):
                ways.append(w)
    return ways


class Pacer:
    """Runs each step the way that is fastest now (see the module's docstring).

    ``step(way, x)`` computes one step ``way``; ``switch(way)`` is called before the first step
    of a way that is not the last one used (it sets torch's thread count); ``clock`` measures a
    step (``time.perf_counter``; a test passes its own). ``decisions`` lists what each probe
    measured and chose: ``(global step, chosen way, {way: median seconds})``.
    """

    def __init__(self, ways: list[Way], step: Callable[[Way, torch.Tensor], torch.Tensor],
                 switch: Callable[[Way], None], clock: Callable[[], float] = time.perf_counter):
        if not ways:
            raise ValueError("a pacer needs at least one way to compute a step")
        self.ways, self._step, self._switch, self.clock = list(ways), step, switch, clock
        self.current = self.ways[0]
        self._active: Way | None = None
        self.steps = 0
        self.decisions: list[tuple[int, Way, dict[Way, float]]] = []
        self._queue: list[tuple[Way, bool]] = []  # the probe under way: (way, timed) per step still to run
        self._timed: dict[Way, list[float]] = {}
        self.counts: dict[Way, int] = {w: 0 for w in self.ways}  # steps run each way
        self._recent: deque[float] = deque(maxlen=WINDOW)
        self._measured = 0.0  # the chosen way's median step in its probe
        self._recheck_at = 0.0
        if len(self.ways) > 1:
            self._start_probe()

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def _start_probe(self) -> None:
        # Each way's first step is not timed (it pays for waking threads and choosing kernels). The
        # way in use goes last, so the run goes on in it without a switch when it is still the fastest.
        order = [w for w in self.ways if w != self.current] + [self.current]
        self._queue = [(w, timed) for w in order for timed in [False] + [True] * PROBE_STEPS]
        self._timed = {w: [] for w in self.ways}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """One step, computed the way the pacer has chosen (or the next way of a probe)."""
        probing = bool(self._queue)
        way, timed = self._queue.pop(0) if probing else (self.current, True)
        if way != self._active:
            self._switch(way)
            self._active = way
        t0 = self.clock()
        out = self._step(way, x)
        seconds = self.clock() - t0
        self.steps += 1
        self.counts[way] += 1
        if len(self.ways) == 1:
            return out
        if probing:
            if timed:
                self._timed[way].append(seconds)
            if not self._queue:
                self._choose()
        elif timed:
            self._watch(seconds)
        return out

    def summary(self) -> str:
        """The ways the steps took, for the run's log and checkpoint: "bfloat16 products, 2 threads
        per op (96% of 1,200 steps); stock float32 layers, one thread (4%)"."""
        used = sorted(((n, w) for w, n in self.counts.items() if n), key=lambda t: -t[0])
        if len(used) <= 1:
            return (used[0][1] if used else self.current).describe()
        total = sum(n for n, _ in used)
        return "; ".join(f"{w.describe()} ({n / total:.0%}" + (f" of {total:,} steps)" if i == 0 else ")")
                         for i, (n, w) in enumerate(used))

    def _choose(self) -> None:
        """The probe is over: the way with the fastest median step."""
        medians = {w: statistics.median(t) for w, t in self._timed.items() if t}
        self.current = min(medians, key=medians.get)
        self._measured = medians[self.current]
        self.decisions.append((self.steps, self.current, medians))
        self._recent.clear()
        self._recheck_at = self.clock() + RECHECK_S

    def _watch(self, seconds: float) -> None:
        """A step of the chosen way: probe again when its pace drifted, or when it is time."""
        self._recent.append(seconds)
        drifted = (len(self._recent) == WINDOW and
                   not self._measured / DRIFT <= statistics.median(self._recent) <= self._measured * DRIFT)
        if drifted or self.clock() >= self._recheck_at:
            self._start_probe()
