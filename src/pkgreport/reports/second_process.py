"""One rendering done in a forked second process, so a second core works beside this one."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from pkgreport.memory import release_freed_memory

_LENGTH = struct.Struct("<Q")


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
        # What this process holds free goes back to the system first: reused after the fork, each
        # page of it would be copied, the child keeping the original (about 60 MB at 1M rows
        # when the workbook's process forks).
        release_freed_memory()
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

    def fall_back_to(self, render: Callable[[], bytes]) -> None:
        """What `result()` renders in this process should the child fail (the child keeps the
        function it was started with)."""
        self._render = render

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


class Handover:
    """One object handed to a forked child after the fork: the child waits for it in
    `receive()` while this process works it out, then `send()`s it (a length, then the pickle).

    Make it before the fork; after it, this process calls `parent_side()` and the child
    `child_side()`, each closing the end it does not use, so that the child reads the end of
    the pipe (and fails, to be rendered again here) should this process go away unsent.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe()

    def parent_side(self) -> None:
        _close(self._read_end)
        self._read_end = -1

    def child_side(self) -> None:
        _close(self._write_end)
        self._write_end = -1

    def send(self, value: Any) -> None:
        """Hand `value` over (nothing without a child: the pipe was closed)."""
        if self._write_end < 0:
            return
        message = pickle.dumps(value)
        try:
            with os.fdopen(self._write_end, "wb") as pipe:
                pipe.write(_LENGTH.pack(len(message)) + message)
        except OSError:  # the child is gone: `Beside.result()` sees it and renders here
            pass
        self._write_end = -1

    def receive(self) -> Any:
        read_end, self._read_end = self._read_end, -1
        with os.fdopen(read_end, "rb") as pipe:
            header = pipe.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                raise EOFError("the parent process went away before handing its value over")
            (length,) = _LENGTH.unpack(header)
            return pickle.loads(pipe.read(length))

    def close(self) -> None:
        """Close whatever end is still open (after the fork failed, or when done)."""
        for end in (self._read_end, self._write_end):
            _close(end)
        self._read_end = self._write_end = -1


def _close(end: int) -> None:
    if end >= 0:
        os.close(end)
