"""How the command line's process ends: as Python's own exit, less the teardown of its modules."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


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
