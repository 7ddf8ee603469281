"""Memory a process holds free, given back to the system before it forks or while it waits."""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa


def release_freed_memory() -> bool:
    """Give the memory that is free but still held back to the system: Arrow's pool (what the
    CSV reader and the id encoding used) and the C heap (glibc's `malloc_trim`; False where
    the C library has none). At 1M rows, after validation, that is about 0.15 GB and 0.25 GB,
    which the engines' peak and the processes forked after them (which inherit this one's
    pages) would otherwise count. About 0.03 s at 1M rows. Called before every fork
    (`reports.second_process.Beside`)."""
    pa.default_memory_pool().release_unused()
    if not sys.platform.startswith("linux"):
        return False
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # musl has none
    if trim is None:
        return False
    trim(0)
    return True
