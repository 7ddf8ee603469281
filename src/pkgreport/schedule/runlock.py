"""An exclusive lock on the output folder so two scheduled runs never write it at once."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pkgreport.errors import LockError
from pkgreport.result import LOCK_NAME


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def output_lock(
    out_dir: Path, wait_seconds: float = 10.0, poll_seconds: float = 0.2
) -> Iterator[Path]:
    """Hold the folder's lock for the duration; wait up to `wait_seconds`, then fail clearly.

    The lock is an OS file lock, so it is released when the process ends, even by a crash or
    kill: a stale lock file never blocks the next scheduled run.
    """
    from pkgreport.atomic import make_folder, writing

    make_folder(out_dir)
    path = out_dir / LOCK_NAME
    with writing(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                holder = ""
                try:
                    holder = path.read_text(encoding="utf-8").strip()
                except OSError:
                    pass
                raise LockError(
                    f"another pkgreport run is writing {out_dir} ({holder or 'holder unknown'}); "
                    f"waited {wait_seconds:g} s. Let it finish, or give this run another output folder."
                )
            time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
