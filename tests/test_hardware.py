"""cvae.training.hardware without a training: what each precision allows and how it is described,
the cores this process may use, glibc's allocator tuned once, the threads a run's ways and its
whole-batch work get and give back."""

from __future__ import annotations

import os

import pytest
import torch

from cvae.training import hardware
from cvae.training.pace import Way

CPU, GPU = torch.device("cpu"), torch.device("cuda")


def test_what_each_precision_allows_and_its_phrase(monkeypatch):
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    assert hardware.describe_precision("auto", CPU) == ("bfloat16 matrix products (cvae.training.gemm) or PyTorch's "
                                                        "stock float32 layers, whichever is faster at the moment")
    assert hardware.describe_precision("bf16", CPU) == "bfloat16 matrix products (cvae.training.gemm)"
    assert hardware.describe_precision("fp32", CPU) == "float32, PyTorch's stock layers (cpu)"
    assert hardware.describe_precision("auto", GPU) == "float32, PyTorch's stock layers (cuda)"
    assert hardware.matmul_dtypes("fp32", GPU) == hardware.matmul_dtypes("auto", GPU) == [None]
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    assert hardware.describe_precision("auto", CPU).startswith("float32 matrix products (cvae.training.gemm) or ")
    with pytest.raises(ValueError) as e:
        hardware.matmul_dtypes("bf16", GPU)
    assert str(e.value) == "precision bf16 is for training on a CPU (cvae.training.gemm); on cuda use fp32 or auto"


def test_the_cores_this_process_may_use(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert hardware.usable_cores() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert hardware.usable_cores() == 6  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert hardware.usable_cores() == 1


def test_the_allocator_is_tuned_once_and_not_where_there_is_no_glibc(monkeypatch):
    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(hardware, "_MALLOC_TUNED", False)
    monkeypatch.setattr(hardware.ctypes, "CDLL", lambda name: Libc())
    assert hardware.keep_freed_memory() is True
    assert calls == [(-3, 32 << 20), (-1, 64 << 20)]  # M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 64 MiB
    assert hardware.keep_freed_memory() is True and len(calls) == 2  # once per process
    monkeypatch.setattr(hardware, "_MALLOC_TUNED", False)
    Libc.mallopt = lambda self, param, value: 0  # refused
    assert hardware.keep_freed_memory() is False

    def no_libc(name):
        raise OSError("no C library")

    monkeypatch.setattr(hardware.ctypes, "CDLL", no_libc)
    assert hardware.keep_freed_memory() is False


def test_a_way_gets_its_threads_and_whole_batch_work_every_core():
    before = torch.get_num_threads()
    hw = hardware.Hardware(CPU, [], threads=2)
    try:
        with hw.all_cores():  # no way in use yet: nothing to change
            assert torch.get_num_threads() == before
        hw.use(Way(dtype=None, workers=1, threads=1))
        assert torch.get_num_threads() == 1 and hw.step_threads == 1
        with hw.all_cores():
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1  # back to the way's after the whole-batch work
        hw.restore()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_set_up_the_ways_for_the_device_precision_workers_and_batch(monkeypatch):
    from cvae.training.pace import candidate_ways

    tuned = []
    monkeypatch.setattr(hardware, "keep_freed_memory", lambda: tuned.append(1))
    monkeypatch.setattr(hardware, "usable_cores", lambda: 4)
    hw = hardware.set_up("cpu", "fp32", 1, 32)
    assert hw.device == CPU and hw.threads == torch.get_num_threads() and hw.step_threads == 0
    assert hw.ways == candidate_ways([None], 1, 4, 32, CPU) and {w.workers for w in hw.ways} == {1}
    assert tuned == [1]  # the allocator, on a CPU
    assert {w.dtype for w in hardware.set_up("cpu", "bf16", 0, 32).ways} == {torch.bfloat16}
    assert hardware.set_up("cpu", "fp32", 0, 32).ways == candidate_ways([None], 0, 4, 32, CPU)
    assert {w.workers for w in hardware.set_up("cpu", "fp32", 0, 1).ways} == {1}  # one image is not split
    assert max(w.workers for w in hardware.set_up("cpu", "fp32", 0, 32).ways) == 4  # as many as the cores
    tuned.clear()
    monkeypatch.setattr(hardware, "pick_device", lambda name: torch.device(name))
    hw = hardware.set_up("cuda", "auto", 0, 32)
    assert hw.device == GPU and hw.ways == candidate_ways([None], 0, 4, 32, GPU) and tuned == []
