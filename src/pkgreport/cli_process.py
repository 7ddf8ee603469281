"""The command line's process around a command: the data libraries loaded without the cyclic
collector's passes, and the end, as Python's own exit less the teardown of its modules."""

from __future__ import annotations

import atexit
import functools
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector paused while modules load, and what they made frozen after.

    Importing pandas and pkgreport's pipeline makes some 200,000 objects and no garbage: the
    collector's 180 passes over them find nothing and cost about 0.05 s of a small run. Frozen
    (`gc.freeze`), they are left out of every later pass; they are modules, classes and
    functions, kept to the end anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def libraries_loaded_first(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command`, run once pandas and the pipeline are imported (`collector_paused`)."""

    @functools.wraps(command)
    def loaded_first(**kwargs: Any) -> Any:
        with collector_paused():
            import pandas  # noqa: F401

            import pkgreport.pipeline  # noqa: F401
        return command(**kwargs)

    return loaded_first


def exit_without_teardown(code: str | int | None) -> NoReturn:
    """End the process as Python's own exit does, less the teardown of its modules and objects.

    With pandas loaded, that teardown (freeing every module, then every object left) takes
    about 0.08 s after the outputs are written, and writes nothing. Everything of Python's exit
    that can be seen still happens, in its order: the handlers registered with `atexit` run
    (logging's, tempfile's and Dask's among them), then stdout and stderr are flushed, and the
    exit code is the one `sys.exit(code)` gives. The ordinary exit is taken instead whenever
    skipping the teardown could change something: a thread other than this one still to be
    joined, a message for an exit code, stdout or stderr that cannot be flushed (a reader gone:
    Python reports it), or a profiler, tracer or `python -i` waiting for the end.
    """
    status = 0 if code is None else code
    if not isinstance(status, int) or not _teardown_can_be_skipped():
        sys.exit(code)
    atexit._run_exitfuncs()  # what Python's exit runs first (once no other thread is left)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)  # flushed again by Python's exit, which reports the failure as it does
    os._exit(status)


def _teardown_can_be_skipped() -> bool:
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    return (
        threading.current_thread() is threading.main_thread()
        and not any(not t.daemon for t in others)
        and sys.gettrace() is None
        and sys.getprofile() is None
        and not sys.flags.inspect
    )
