"""The one atomic writer: a file pkgreport writes is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pkgreport.errors import OutputError

# What a file is written from: text (as UTF-8), bytes, or chunks of bytes streamed in order (a
# demo export of a million rows is never held in memory whole).
Payload = bytes | str | Iterable[bytes]


def write_atomic(path: Path, data: Payload) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync, then rename.

    `str` is written as UTF-8, chunks of bytes in order. On any failure the temporary file is removed and `path` is left
    as it was (absent, or the previous complete version).
    """
    write_all_atomic({Path(path): data})


def write_all_atomic(
    files: dict[Path, Payload], before_renames: Callable[[], None] | None = None
) -> list[Path]:
    """Stage every file as a temporary file beside its target, then rename them all into place.

    If anything fails while staging, no target is created or changed, so a run that fails
    leaves no partial output. `before_renames` runs once everything is staged. Returns the paths
    written, renamed in the order given. A file that cannot be written (read-only folder, a file
    in the path, disk full) raises `OutputError` (exit 2).
    """
    staged = stage_all(files)
    try:
        if before_renames is not None:
            before_renames()
        for path, tmp in staged:
            with writing(path):
                # Same folder: os.replace is only atomic within one file system.
                os.replace(tmp, path)
    except BaseException:
        discard(staged)
        raise
    for folder in sorted({path.parent for path, _ in staged}):
        fsync_folder(folder)
    return [path for path, _ in staged]


def stage_all(files: dict[Path, Payload]) -> list[tuple[Path, Path]]:
    """(target, temporary file) for each file, all written and synced; none left on failure."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            with writing(Path(path)):
                staged.append((Path(path), _stage(Path(path), data)))
    except BaseException:
        discard(staged)
        raise
    return staged


def discard(staged: list[tuple[Path, Path]]) -> None:
    for _, tmp in staged:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an operating-system refusal to write `path` into a message naming it (exit 2)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"cannot write {path} ({reason}): choose a location you may write to, whose folders "
            "are folders and whose disk has space (anything already there is unchanged)"
        ) from None


def make_folder(folder: Path) -> None:
    """Create an output folder (and its parents), or fail with `OutputError` naming it."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"cannot write {folder} (it is a file, not a folder): give a folder for the outputs"
        )
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)


# A temporary file is `.<target name>.<pid>-<random>.tmp`: the writer's process id tells a
# crashed run's leftovers (its process is gone) from another run's file being written now.
_TEMPORARY = re.compile(r"\..+\.(?:(?P<pid>[0-9]+)-)?[A-Za-z0-9_]+\.tmp")


def remove_stale_temporaries(folder: Path, prefix: str = ".") -> list[Path]:
    """Delete temporary files that a killed or crashed run left in `folder` (they hold report
    data, patient names included). Files of a process still running are left alone."""
    removed: list[Path] = []
    try:
        candidates = sorted(folder.glob(f"{prefix}*.tmp"))
    except OSError:
        return removed
    for path in candidates:
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or _alive(match.group("pid")):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid_text: str | None) -> bool:
    """Whether the process that wrote a temporary file may still be writing it."""
    if pid_text is None:
        return False  # written by a version before process ids were recorded: long finished
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process only finds its own temporaries after a failed write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _stage(path: Path, data: Payload) -> Path:
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in _chunks(data):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the report the permissions a normal new file would get.
        os.chmod(tmp, 0o666 & ~_current_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _chunks(data: Payload) -> Iterable[bytes]:
    if isinstance(data, str):
        return [data.encode("utf-8")]
    if isinstance(data, bytes | bytearray | memoryview):
        return [bytes(data)]
    return data


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


def fsync_folder(folder: Path) -> None:
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
