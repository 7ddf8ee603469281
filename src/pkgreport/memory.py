"""Memory a process holds free: Arrow allocating from where what it frees goes back to the
system, and what is free but still held given back before the process forks or while it waits."""

from __future__ import annotations

import ctypes
import os
import sys

# The variable with which Arrow lets its user name the allocator (read when pyarrow loads).
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_returning_allocator() -> str | None:
    """Have Arrow allocate from jemalloc, or, in a build without it, from the C library's heap;
    unless whoever runs pkgreport named an allocator in `ARROW_DEFAULT_MEMORY_POOL`. Returns
    the allocator's name, None when left as named.

    Arrow's own default (mimalloc in the wheels) keeps the pages of what it frees for later:
    at 1M rows the id encoding's working copies (about 0.15 GB) stayed held while pandera's
    process ran beside, where both processes' memory counts at once. jemalloc gives most of
    them back as they are freed, and keeps the loading's peak below the C library's heap,
    which the reading threads fragment; `release_freed_memory` gives back the rest before
    each fork. Called once per command, before anything is read (README, the memory
    paragraph, has the figures)."""
    import pyarrow as pa  # here: the command line imports this module before any command

    if os.environ.get(ARROW_POOL_VARIABLE):
        return None
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without jemalloc (Windows, some Linux on ARM)
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    return pool.backend_name


def release_freed_memory() -> bool:
    """Give the memory that is free but still held back to the system: Arrow's pool (what the
    CSV reader and the id encoding used) and the C heap (glibc's `malloc_trim`; False where
    the C library has none). At 1M rows, after validation, that is about 0.15 GB and 0.25 GB,
    which the engines' peak and the processes forked after them (which inherit this one's
    pages) would otherwise count. About 0.03 s at 1M rows. Called before every fork
    (`reports.second_process.Beside`)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if not sys.platform.startswith("linux"):
        return False
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # musl has none
    if trim is None:
        return False
    trim(0)
    return True
