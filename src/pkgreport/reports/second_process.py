"""One rendering done in a forked second process, so a second core works beside this one."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Self


class Beside:
    """`render()` started in a forked child; `result()` waits for its bytes.

    Whatever goes wrong in the child (an exception, a crash, a kill), `result()` renders in this
    process instead, so an error surfaces exactly as it would without a second process, and the
    bytes are the same either way (rendering is deterministic). With `fork=False`, without
    `os.fork` (Windows) or when the system refuses a fork, `result()` renders in this process.
    Use as a context manager: leaving the block early (this process failed first) stops the
    child and reaps it.
    """

    def __init__(self, render: Callable[[], bytes], *, fork: bool = True) -> None:
        self._render = render
        self._pid = 0
        self._read_end = -1
        if fork and hasattr(os, "fork"):
            self._start()

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        # Objects left to the collector's permanent generation are never written by it, so the
        # two processes share their pages instead of copying each one the collector visits.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # the child: render, hand the bytes over, never return into the caller
            code = 1
            try:
                os.close(read_end)
                data = self._render()
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    @property
    def started(self) -> bool:
        """Whether a child is rendering (False: `result()` renders in this process)."""
        return bool(self._pid)

    def result(self) -> bytes:
        if not self._pid:
            return self._render()
        with os.fdopen(self._read_end, "rb") as pipe:
            data = pipe.read()
        self._read_end = -1
        if self._reap() != 0:
            return self._render()
        return data

    def _reap(self) -> int:
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        gc.unfreeze()
        return os.waitstatus_to_exitcode(status)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._read_end >= 0:
            os.close(self._read_end)
            self._read_end = -1
        if self._pid:  # this process failed first: its error is the one to report
            os.kill(self._pid, signal.SIGKILL)
            self._reap()
