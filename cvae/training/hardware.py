"""The machine a run trains on, set up once: device, arithmetic, threads, memory.

:func:`set_up` picks the device and the arithmetic (PyTorch's float32 layers, or
:mod:`cvae.training.gemm`'s bfloat16 products where the CPU multiplies bfloat16 natively),
decides how many threads split each batch, and tunes glibc's allocator. The returned
:class:`Hardware` switches torch's thread pool between the steps (one core per shard) and
the whole-batch work in between (evaluation, film snapshots: all cores), and puts it back
when the run ends.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..core.model import pick_device
from .gemm import native_bf16


def matmul_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """What ``TrainConfig.precision`` means on ``device``: None for PyTorch's stock layers and
    autograd (float32), or the dtype of :mod:`cvae.training.gemm`'s matrix products."""
    if precision == "bf16":
        if device.type != "cpu":
            raise ValueError(f"precision bf16 is for training on a CPU (cvae.training.gemm); on {device.type} use fp32 or auto")
        return torch.bfloat16
    if precision == "auto" and device.type == "cpu" and native_bf16():
        return torch.bfloat16
    return None


def describe_precision(precision: str, device: torch.device) -> str:
    """One phrase for logs: what ``precision`` does on ``device``."""
    return _describe(matmul_dtype(precision, device), device)


def _describe(dtype: torch.dtype | None, device: torch.device) -> str:
    if dtype is None:
        return f"float32, PyTorch's stock layers ({device.type})"
    return "bfloat16 matrix products (cvae.training.gemm)"


def auto_workers(device: torch.device, batch_size: int, dtype: torch.dtype | None = None) -> int:
    """Threads per batch for ``workers=0``: for the stock layers one per CPU core this process
    may use (at most 8), keeping at least 8 images per shard; 1 on a GPU, and 1 on the
    cvae.training.gemm path (``dtype`` set), whose large products already use every core through
    PyTorch's threads and whose ~130 small ops per step would queue for Python's GIL in
    several threads (one worker is the faster: docs/performance.md)."""
    if device.type != "cpu" or dtype is not None:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, batch_size // 8))


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
    dtype: torch.dtype | None  # cvae.training.gemm's product dtype; None: PyTorch's stock layers
    workers: int  # threads that split each batch
    threads: int  # torch's intra-op threads outside the steps (restored at the end)

    @property
    def arithmetic(self) -> str:
        return _describe(self.dtype, self.device)

    @contextmanager
    def all_cores(self):
        """Whole-batch work (evaluation, a snapshot) between split steps: every core on each op."""
        if self.workers > 1:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            if self.workers > 1:
                torch.set_num_threads(1)

    def restore(self) -> None:
        torch.set_num_threads(self.threads)


def set_up(device: str, precision: str, workers: int, batch_size: int) -> Hardware:
    """Choose the device, arithmetic and workers for a run (``workers`` 0: :func:`auto_workers`),
    tune the allocator, and give each shard one core. Call :meth:`Hardware.restore` at the end."""
    dev = pick_device(device)
    dtype = matmul_dtype(precision, dev)
    hw = Hardware(dev, dtype, workers or auto_workers(dev, batch_size, dtype), torch.get_num_threads())
    if dev.type == "cpu":
        keep_freed_memory()
    if hw.workers > 1:
        torch.set_num_threads(1)  # one core per shard during steps
    return hw
