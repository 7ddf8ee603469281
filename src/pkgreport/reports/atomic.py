"""Atomic file writes: a report file is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync, then rename.

    `str` is written as UTF-8. On any failure the temporary file is removed and `path` is left
    as it was (absent, or the previous complete version).
    """
    write_all_atomic({Path(path): data})


def write_all_atomic(files: dict[Path, bytes | str]) -> list[Path]:
    """Stage every file as a temporary file beside its target, then rename them all into place.

    If anything fails while staging, no target is created or changed, so a run that fails
    leaves no partial output. Returns the paths written, in the order given.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            staged.append((Path(path), _stage(Path(path), data)))
        for path, tmp in staged:
            # Same folder: os.replace is only atomic within one file system.
            os.replace(tmp, path)
    except BaseException:
        for _, tmp in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for folder in sorted({path.parent for path, _ in staged}):
        _fsync_dir(folder)
    return [path for path, _ in staged]


def _stage(path: Path, data: bytes | str) -> Path:
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the report the permissions a normal new file would get.
        os.chmod(tmp, 0o666 & ~_current_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _current_umask() -> int:
    # Reading it from /proc avoids briefly changing the process-wide umask (other threads).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
