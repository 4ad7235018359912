"""What a long CPU run sets for itself: denormals flushed while it trains, its resident memory kept flat."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import torch


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Flush denormal floats to zero while a run trains, and restore IEEE arithmetic after it.

    Denormals (tiny Adam moments) take a slow path in CPU arithmetic. The setting is process-wide processor state,
    so it must not outlive the run: code run after ``train()`` in the same process (a notebook, the test suite)
    would otherwise compute with subnormals flushed. torch has no getter; the default is off, so off is restored.
    Also a decorator (``@flushed_denormals()``).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


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
