"""The pacer (cvae.training.pace): each step is computed the way that is fastest now, chosen from
step times the tests control, and chosen again when the machine's load changes. How fast real
runs go alone and beside other programs is measured by benchmarks/busy_train.py
(docs/performance.md), not here."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cvae import TrainConfig, load_checkpoint, train
from cvae.training import hardware, pace
from cvae.training.pace import DRIFT, PROBE_STEPS, RECHECK_S, WINDOW, Pacer, Way, candidate_ways

FAST_IDLE = Way(torch.bfloat16, 1, 2)  # every core on each op: fastest alone, falls off a cliff when shared
SPLIT = Way(None, 2, 1)
SERIAL = Way(None, 1, 1)


class Machine:
    """A step-time source: each way costs what ``cost`` says now; the clock moves only by steps."""

    def __init__(self, cost: dict):
        self.cost, self.now, self.ran, self.switched = dict(cost), 0.0, [], []

    def clock(self) -> float:
        return self.now

    def step(self, way, x):
        self.ran.append(way)
        self.now += self.cost[way]
        return x

    def pacer(self, ways=None) -> Pacer:
        return Pacer(ways or list(self.cost), self.step, self.switched.append, clock=self.clock)

    def run(self, p: Pacer, steps: int) -> None:
        for i in range(steps):
            assert p(i) == i  # every call is one real step of the batch it was given


def probe_len(n_ways: int) -> int:
    return n_ways * (1 + PROBE_STEPS)


def test_it_takes_the_fastest_way_after_timing_each():
    m = Machine({FAST_IDLE: 0.005, SPLIT: 0.012, SERIAL: 0.02})
    p = m.pacer()
    m.run(p, probe_len(3))
    assert set(m.ran) == {FAST_IDLE, SPLIT, SERIAL} and not p.probing
    assert p.current == FAST_IDLE
    step, chosen, medians = p.decisions[-1]
    assert step == probe_len(3) and chosen == FAST_IDLE
    assert medians == pytest.approx({FAST_IDLE: 0.005, SPLIT: 0.012, SERIAL: 0.02})
    m.run(p, 20)
    assert m.ran[-20:] == [FAST_IDLE] * 20


def test_a_busy_neighbour_moves_it_to_the_way_that_survives_and_it_comes_back_when_the_load_goes():
    m = Machine({FAST_IDLE: 0.005, SPLIT: 0.012, SERIAL: 0.02})
    p = m.pacer()
    m.run(p, probe_len(3) + 5)
    assert p.current == FAST_IDLE
    # Another program takes a core: the fast way's barriers now wait for the thread that lost it.
    m.cost.update({FAST_IDLE: 0.15, SPLIT: 0.03, SERIAL: 0.025})
    m.run(p, WINDOW + probe_len(3))
    assert p.current == SERIAL, p.decisions
    assert len(p.decisions) == 2
    # Well within the recheck period: the drift alone started the second probe.
    assert m.now - 0.005 * 5 < RECHECK_S
    # The load goes; the serial way runs as fast as before, but the periodic recheck finds the fast way again.
    m.cost.update({FAST_IDLE: 0.005, SPLIT: 0.012, SERIAL: 0.02})
    m.run(p, int(RECHECK_S / 0.02) + probe_len(3) + 2)
    assert p.current == FAST_IDLE, p.decisions


def test_steady_steps_within_the_drift_do_not_start_a_probe_before_the_recheck():
    m = Machine({FAST_IDLE: 0.01, SERIAL: 0.02})
    p = m.pacer()
    m.run(p, probe_len(2))
    m.cost[FAST_IDLE] = 0.01 * DRIFT * 0.9  # slower, but not by the drift
    m.run(p, int(RECHECK_S / m.cost[FAST_IDLE]) - 1)
    assert len(p.decisions) == 1 and not p.probing
    m.cost[FAST_IDLE] = 0.01 * DRIFT * 1.2
    m.run(p, WINDOW)
    assert p.probing


def test_the_first_step_of_a_way_is_not_timed_and_the_threads_are_set_once_per_switch(monkeypatch):
    monkeypatch.setattr(pace, "PROBE_STEPS", 1)  # one timed step a way: nothing for a median to hide
    m = Machine({FAST_IDLE: 0.01, SERIAL: 0.02})
    slow_start = {"left": 2}

    def step(way, x):  # each way's first step pays a one-off cost (threads waking, kernels chosen)
        m.ran.append(way)
        m.now += m.cost[way] + (1.0 if slow_start["left"] and m.ran.count(way) == 1 else 0.0)
        slow_start["left"] -= m.ran.count(way) == 1
        return x

    p = Pacer([FAST_IDLE, SERIAL], step, m.switched.append, clock=m.clock)
    for i in range(2 * 2):
        p(i)
    assert p.decisions[-1][2] == pytest.approx({FAST_IDLE: 0.01, SERIAL: 0.02})  # the one-off seconds left out
    assert m.switched == [SERIAL, FAST_IDLE]  # the current way is probed last; one switch per change


def test_one_way_is_never_probed():
    m = Machine({SPLIT: 0.01})
    p = m.pacer()
    assert not p.probing
    m.run(p, 50)
    assert p.decisions == [] and m.ran == [SPLIT] * 50 and m.switched == [SPLIT]
    assert p.summary() == SPLIT.describe()


def test_the_summary_says_which_ways_the_steps_took():
    m = Machine({FAST_IDLE: 0.005, SERIAL: 0.02})
    p = m.pacer()
    m.run(p, 100)
    assert p.summary() == f"{FAST_IDLE.describe()} (96% of 100 steps); {SERIAL.describe()} (4%)"


def test_the_summary_of_a_run_stopped_early_names_the_way_its_steps_took():
    m = Machine({FAST_IDLE: 0.005, SPLIT: 0.012, SERIAL: 0.02})
    p = m.pacer()
    assert p.summary() == FAST_IDLE.describe()  # no step yet: the way it would start with
    m.run(p, 1)  # the probe's first step, in a way other than the one it starts with
    assert m.ran == [SPLIT] and p.summary() == SPLIT.describe()


def test_a_pacer_without_a_way_says_so():
    with pytest.raises(ValueError) as info:
        Pacer([], Machine({}).step, print)
    assert str(info.value) == "a pacer needs at least one way to compute a step"


def test_a_pace_exactly_at_the_drift_bounds_is_no_drift():
    # exact binary fractions: measured 0.375 s a step; the bounds 0.375 / 1.5 = 0.25 and 0.375 * 1.5 = 0.5625
    for cost in (0.25, 0.5625):
        m = Machine({FAST_IDLE: 0.375, SERIAL: 1.0})
        p = m.pacer()
        m.run(p, probe_len(2))
        assert p.current == FAST_IDLE and len(p.decisions) == 1
        m.cost[FAST_IDLE] = cost
        m.run(p, WINDOW)
        assert not p.probing, cost
        m.cost[FAST_IDLE] = cost * (1 + 1 / 16) if cost > 0.375 else cost * (1 - 1 / 16)
        m.run(p, WINDOW)
        assert p.probing, cost


def test_the_recheck_comes_at_its_time_to_the_step():
    m = Machine({FAST_IDLE: 0.375, SERIAL: 1.0})
    p = m.pacer()
    m.run(p, probe_len(2))  # chosen at 5.5 s: the recheck is due at 15.5 s
    assert m.now == 5.5
    m.cost[FAST_IDLE] = 0.5  # within the drift; 20 steps reach 15.5 s exactly
    m.run(p, 19)
    assert not p.probing
    m.run(p, 1)
    assert m.now == 5.5 + RECHECK_S and p.probing


def test_candidate_ways():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    bf, fp = torch.bfloat16, None
    # Auto: every core on each op, the batch split over the cores (8 images a shard at least), one thread.
    assert candidate_ways([fp], 0, 2, 32, cpu) == [Way(fp, 1, 2), Way(fp, 2, 1), Way(fp, 1, 1)]
    assert candidate_ways([bf, fp], 0, 4, 32, cpu) == [Way(bf, 1, 4), Way(bf, 4, 1), Way(bf, 1, 1),
                                                       Way(fp, 1, 4), Way(fp, 4, 1), Way(fp, 1, 1)]
    assert candidate_ways([fp], 0, 4, 8, cpu) == [Way(fp, 1, 4), Way(fp, 1, 1)]  # too few images to split
    assert candidate_ways([fp], 0, 1, 32, cpu) == [Way(fp, 1, 1)]
    # Workers given: one way, that split in the first arithmetic allowed, no choice of threads.
    assert candidate_ways([fp], 2, 4, 32, cpu) == [Way(fp, 2, 1)]
    assert candidate_ways([bf, fp], 1, 4, 32, cpu) == [Way(bf, 1, 4)]
    assert candidate_ways([bf, fp], 2, 4, 32, cpu) == [Way(bf, 2, 1)]
    assert candidate_ways([bf, fp], 0, 1, 32, cpu) == [Way(bf, 1, 1), Way(fp, 1, 1)]  # one core: one way each
    # At most 8 shards, of whole images: 16 cores and 256 images split 8 ways; 20 images, 2 ways.
    assert candidate_ways([fp], 0, 16, 256, cpu) == [Way(fp, 1, 16), Way(fp, 8, 1), Way(fp, 1, 1)]
    assert candidate_ways([fp], 0, 4, 20, cpu) == [Way(fp, 1, 4), Way(fp, 2, 1), Way(fp, 1, 1)]
    # A GPU: one way, PyTorch's layers, the batch whole, torch's threads as they are.
    assert candidate_ways([fp], 0, 4, 32, gpu) == [Way(None, 1, torch.get_num_threads())]


def test_each_way_says_how_it_computes_a_step():
    """The words the CLI's summary, the checkpoint's record and the benchmarks print for a way."""
    assert Way(None, 1, 1).describe() == "stock float32 layers, one thread"
    assert Way(None, 1, 2).describe() == "stock float32 layers, 2 threads per op"
    assert Way(None, 2, 1).describe() == "stock float32 layers, batch split over 2 threads"
    assert Way(torch.bfloat16, 1, 4).describe() == "bfloat16 products, 4 threads per op"
    assert Way(torch.float32, 8, 1).describe() == "float32 products, batch split over 8 threads"


def test_auto_precision_offers_both_arithmetics_only_where_bfloat16_is_native(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    assert hardware.matmul_dtypes("auto", cpu) == [torch.bfloat16, None]
    assert hardware.matmul_dtypes("fp32", cpu) == [None]
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    assert hardware.matmul_dtypes("auto", cpu) == [torch.float32, None]  # emulated bfloat16 is slow
    assert hardware.matmul_dtypes("bf16", cpu) == [torch.bfloat16]


def test_the_way_in_use_sets_torchs_threads_and_whole_batch_work_gets_every_core():
    before = torch.get_num_threads()
    hw = hardware.set_up("cpu", "fp32", 0, 32)
    try:
        hw.use(Way(None, 2, 1))
        assert torch.get_num_threads() == 1
        with hw.all_cores():
            assert torch.get_num_threads() == hw.threads == before
        assert torch.get_num_threads() == 1
        hw.use(Way(None, 1, before))
        assert torch.get_num_threads() == before
    finally:
        hw.restore()
    assert torch.get_num_threads() == before


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(256, 1, 28, 28, generator=g) > 0.7).float()
    return x[:192], x[192:]


def test_a_run_that_changes_its_way_trains_the_same_model(monkeypatch):
    """Two ways, alternated every step by the pacer, train bit for bit the model a single way
    trains: the ways share the shards' noise streams (starting them again at each switch would draw
    other noise). Both ways are held to one thread here, so that their arithmetic is the same on
    every CPU and the noise is all that could differ (how much two thread counts round apart
    depends on the CPU: up to 4e-3 in a weight after these steps on an AVX-512 Xeon)."""
    train_x, test_x = _tiny_data()
    monkeypatch.setattr(hardware.Hardware, "use", lambda self, way: torch.set_num_threads(1))
    cfg = TrainConfig(epochs=2, batch_size=32, seed=5, precision="fp32", film=False)
    ref = train(dataclasses.replace(cfg, workers=1), train_x, test_x)  # one way

    monkeypatch.setattr(pace, "PROBE_STEPS", 1)
    monkeypatch.setattr(pace, "RECHECK_S", 0.0)  # a probe after every chosen step: the way keeps changing
    ways = [Way(None, 1, 2), Way(None, 1, 1)]
    monkeypatch.setattr(hardware, "candidate_ways", lambda *a: ways)
    seen = []
    real = pace.Pacer.__call__

    def spy(self, x):
        out = real(self, x)
        seen.append(self._active)
        return out

    monkeypatch.setattr(pace.Pacer, "__call__", spy)
    mixed = train(cfg, train_x, test_x)
    assert set(seen) == set(ways) and sum(a != b for a, b in zip(seen, seen[1:])) >= 4
    for (name, a), b in zip(ref.model.state_dict().items(), mixed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert mixed.history[-1]["val_loss"] == ref.history[-1]["val_loss"]


def test_a_fixed_number_of_workers_is_one_way_and_reproducible(tmp_path):
    """--workers 2 with the default precision (auto): every step the same way, whatever the
    machine's load, so two seeded runs land on the same weights."""
    train_x, test_x = _tiny_data()
    cfg = TrainConfig(epochs=1, batch_size=32, seed=2, workers=2, film=False)
    a, b = train(cfg, train_x, test_x, out=tmp_path / "a.pt"), train(cfg, train_x, test_x)
    used = load_checkpoint(tmp_path / "a.pt").meta["extra"]["arithmetic"]
    assert ";" not in used and "batch split over 2 threads" in used, used
    for (name, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), name
