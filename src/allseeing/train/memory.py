"""What a long CPU run sets for itself: denormals flushed while it trains, its resident memory kept flat."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import torch


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Flush denormal floats to zero while a run trains, then restore the caller's setting.

    Denormals (tiny Adam moments) take a slow path in CPU arithmetic. The setting is processor state of the calling
    thread (the one running the loop), so it must not outlive the run: code run after ``train()`` on that thread (a
    notebook, the test suite) would otherwise compute with subnormals flushed. torch has no getter: the previous
    setting is read off one subnormal product. Also a decorator (``@flushed_denormals()``).
    """
    before = _flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def _flushing() -> bool:
    return (torch.tensor([1e-39]) * 0.5).item() == 0  # 5e-40 is subnormal in float32


class CpuMemory:
    """Return the heap's free pages to the system every ``every`` steps (glibc only; a no-op elsewhere).

    Batches of varying length (length grouping) allocate activations of varying size; glibc's malloc keeps them in
    a fragmented heap that it never shrinks, and the resident size of a CPU run grew by about 80 MB a step (6 GB
    to 13 GB in 300 steps) until the machine would run out. ``malloc_trim`` releases the free pages in place;
    fixing the mmap threshold instead also stopped the growth but cost a quarter of the speed
    (docs/training.md).
    """

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self.trim = None
        if sys.platform == "linux":
            with suppress(OSError, AttributeError):  # not glibc: nothing to trim
                self.trim = ctypes.CDLL("libc.so.6").malloc_trim

    def after_step(self, step: int) -> None:
        if self.trim is not None and step % self.every == 0:
            self.trim(0)
