"""The machine a run trains on, set up once: device, arithmetic, threads, memory.

:func:`set_up` picks the device, the arithmetic a step may use (PyTorch's float32 layers, and
:mod:`cvae.training.gemm`'s bfloat16 products where the CPU multiplies bfloat16 natively), the
ways a step may be computed (:func:`cvae.training.pace.candidate_ways`: the run's pacer chooses
among them by their measured speed), and tunes glibc's allocator. The returned :class:`Hardware`
sets torch's thread pool for the way in use (:meth:`Hardware.use`), gives the whole-batch work in
between steps (evaluation, film snapshots) every core, and puts it back when the run ends.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..core.model import pick_device
from .gemm import native_bf16
from .pace import Way, candidate_ways


def matmul_dtypes(precision: str, device: torch.device) -> list[torch.dtype | None]:
    """What ``TrainConfig.precision`` allows on ``device``: None for PyTorch's stock layers and
    autograd (float32), a dtype for :mod:`cvae.training.gemm`'s matrix products in it. ``auto`` on a
    CPU allows the products in bfloat16 where the CPU multiplies it natively, else in float32, and
    the stock layers beside them: the run takes whichever is faster at the moment."""
    if precision == "bf16":
        if device.type != "cpu":
            raise ValueError(f"precision bf16 is for training on a CPU (cvae.training.gemm); on {device.type} use fp32 or auto")
        return [torch.bfloat16]
    if precision == "auto" and device.type == "cpu":
        return [torch.bfloat16 if native_bf16() else torch.float32, None]
    return [None]


def describe_precision(precision: str, device: torch.device) -> str:
    """One phrase for logs: what ``precision`` does on ``device``."""
    dtypes = matmul_dtypes(precision, device)
    if len(dtypes) > 1:
        return (f"{'bfloat16' if dtypes[0] == torch.bfloat16 else 'float32'} matrix products (cvae.training.gemm) "
                "or PyTorch's stock float32 layers, whichever is faster at the moment")
    if dtypes[0] is None:
        return f"float32, PyTorch's stock layers ({device.type})"
    return "bfloat16 matrix products (cvae.training.gemm)"


def usable_cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 32 MiB for reuse (once per process).

    Each training step allocates and frees the same few MiB of activations. By default glibc
    serves the larger ones from fresh memory mappings or returns them to the system when the
    top of its heap is free, so the next step touches new pages, a measurable share of a step
    (docs/performance.md). Raising the mmap and trim thresholds keeps those blocks in the heap (at most 64 MiB held
    free). No effect, and False, where the C library is not glibc (macOS, Windows, musl)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    _MALLOC_TUNED = mallopt(m_mmap_threshold, 32 << 20) == 1 and mallopt(m_trim_threshold, 64 << 20) == 1
    return _MALLOC_TUNED


@dataclass
class Hardware:
    """What :func:`set_up` chose for a run."""

    device: torch.device
    ways: list[Way]  # how a step may be computed; the run's pacer picks one at a time
    threads: int  # torch's intra-op threads outside the steps (restored at the end)
    step_threads: int = 0  # the threads of the way in use

    def use(self, way: Way) -> None:
        """Set torch's threads for ``way``'s steps."""
        if way.threads != torch.get_num_threads():
            torch.set_num_threads(way.threads)
        self.step_threads = way.threads

    @contextmanager
    def all_cores(self):
        """Whole-batch work (evaluation, a snapshot) between steps: every core on each op."""
        narrowed = self.step_threads and self.step_threads != self.threads
        if narrowed:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            if narrowed:
                torch.set_num_threads(self.step_threads)

    def restore(self) -> None:
        torch.set_num_threads(self.threads)


def set_up(device: str, precision: str, workers: int, batch_size: int) -> Hardware:
    """Choose the device and the ways a step may be computed (``workers`` 0: the pacer chooses the
    threads too), and tune the allocator. Call :meth:`Hardware.restore` at the end."""
    dev = pick_device(device)
    threads = torch.get_num_threads()
    ways = candidate_ways(matmul_dtypes(precision, dev), workers, usable_cores(), batch_size, dev)
    if dev.type == "cpu":
        keep_freed_memory()
    return Hardware(dev, ways, threads)
