"""Workbooks read ahead: each file's bytes, pre-flight and sheet parsed in threads that start as
soon as the input folder is known, while this process goes on to import the data libraries.

calamine releases the GIL while it reads a sheet, so the second core does that work beside the
imports. Only the standard library, the settings and the XLSX pre-flight are imported here.
`loading.load_file` takes a file's reading when it was started (with the same settings) and
otherwise reads the file itself: the same code runs either way, so the same table and the same
issues come out. Each large export's SHA-256 (for the summary's list of inputs) is also taken
here, in a thread beside the parse of its bytes (`hash_beside`, `sha256_of`).
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pkgreport.config import Settings
from pkgreport.inputs.xlsx_sheet import XLSX_SUFFIXES, OpenSheet, SheetRefused, open_sheet

# Two readers at once: one per core; a bigger folder's workbooks wait their turn in name order.
_READERS = 2
# A folder holds a handful of exports; past this many workbooks the rest are read when needed,
# so a folder of old workbooks cannot hold every grid in memory at once.
_MOST_FILES = 12


@dataclass
class Reading:
    """One workbook read in a thread: its bytes (or why refused), then its sheet, or the exception."""

    path: Path
    settings: Settings
    done: threading.Event = field(default_factory=threading.Event)
    checked: threading.Event = field(default_factory=threading.Event)  # its pre-flight is over
    # Its pre-flight is over and its sheet is being parsed (by fastexcel, which holds no GIL).
    parsing: threading.Event = field(default_factory=threading.Event)
    data: bytes | None = None
    problem: str | None = None
    sheet: OpenSheet | SheetRefused | None = None
    failed: BaseException | None = None

    def run(self) -> None:
        try:
            self.data, self.problem = read_export_bytes(self.path, self.settings.max_file_bytes)
            if self.data is not None:
                self.sheet = open_sheet(self.data, self.settings, self.checked, self.parsing)
        except BaseException as exc:  # noqa: BLE001 - raised again where the file is loaded
            self.failed = exc
        finally:
            self.checked.set()
            self.parsing.set()
            self.done.set()


_started: dict[Path, Reading] = {}
_lock = threading.Lock()


def start(settings: Settings) -> bool:
    """Start reading the input folder's workbooks (no sub-folders) in the background; whether
    there were any. Never raises: anything odd (no folder, a file that cannot be listed) is left
    for loading to report.
    """
    if settings.input_dir is None:
        return False
    try:
        paths = sorted(settings.input_dir.iterdir(), key=lambda p: p.name)
    except OSError:
        return False
    workbooks = [p for p in paths if p.suffix.lower() in XLSX_SUFFIXES][:_MOST_FILES]
    if not workbooks:
        return False
    waiting: queue.SimpleQueue[Reading] = queue.SimpleQueue()
    with _lock:
        for path in _biggest_first(workbooks):
            reading = Reading(path, settings)
            _started[path] = reading
            waiting.put(reading)
        first = next(iter(_started.values()))
    # The other readers start once the biggest workbook's parse has begun (`_read_all`).
    big = _size(first.path) >= _CHECK_FIRST_BYTES
    for k in range(min(_READERS, len(workbooks))):
        # Daemon threads: a run that stops early (a usage error) never waits for a reader.
        after = first if k and big else None
        threading.Thread(target=_read_all, args=(waiting, after), daemon=True).start()
    return True


def _biggest_first(paths: list[Path]) -> list[Path]:
    """The workbooks by size, biggest first (then by name): the biggest one's reading is the
    longest, so it starts first."""
    return sorted(paths, key=lambda p: (-_size(p), p.name))


def _size(path: Path) -> int:
    """A file's size in bytes; 0 when it cannot be told (its reading reports why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


# A workbook this big has a pre-flight worth waiting for (`wait_for_checks`).
_CHECK_FIRST_BYTES = 4 << 20
# The longest the imports wait for it.
_CHECK_WAIT_SECONDS = 2.0


def wait_for_checks() -> None:
    """Wait for the pre-flight of the biggest workbook being read (when it is big), so the data
    libraries are imported after it rather than beside it.

    The pre-flight holds the GIL for its scans, as the imports do: side by side, each takes about
    twice as long, and calamine's parse of the sheet, which releases the GIL and so runs beside
    the imports, starts that much later.
    """
    with _lock:
        readings = list(_started.values())[:_READERS]
    if readings and _size(readings[0].path) >= _CHECK_FIRST_BYTES:
        readings[0].checked.wait(_CHECK_WAIT_SECONDS)  # the biggest (`start`)


def _read_all(waiting: queue.SimpleQueue[Reading], after: Reading | None = None) -> None:
    """Read the waiting workbooks one by one; given `after`, only once its parse has begun.

    A small workbook's pre-flight and Python work hold the GIL: beside the biggest workbook's
    pre-flight they slow it (about 0.2 s on a Cliniko export of 109,002 appointments), while
    beside fastexcel's read of a sheet of text, which releases the GIL, they cost it little. A
    sheet read by calamine lets them start at once after its pre-flight: its cells become Python
    values, holding the GIL, as it is parsed.
    """
    if after is not None:
        after.parsing.wait(_CHECK_WAIT_SECONDS)
    while True:
        try:
            reading = waiting.get_nowait()
        except queue.Empty:
            return
        reading.run()


def take(path: Path, settings: Settings) -> Reading | None:
    """The finished reading of this file with these settings, once (None when none was started)."""
    with _lock:
        reading = _started.get(path)
        if reading is None or reading.settings != settings:
            return None
        del _started[path]
    reading.done.wait()
    return reading


def is_done(path: Path) -> bool:
    """Whether a reading of this file was started and is over (its sheet, or why not, is ready)."""
    with _lock:
        reading = _started.get(path)
    return reading is not None and reading.done.is_set()


def discard() -> None:
    """Forget the readings nobody took (files that are not exports), so their memory is freed."""
    with _lock:
        _started.clear()


def read_export_bytes(path: Path, max_bytes: int) -> tuple[bytes | None, str | None]:
    """A file's bytes, or None and why it was refused: only regular files, at most `max_bytes`.

    A named pipe would block forever and a device (or a link to /dev/zero) never ends, so the
    file is opened without blocking and checked on the open descriptor before anything is read;
    a link pointing out of the input folder is refused (copy the file in instead). At most one
    byte past the cap is read, so a file growing while it is read cannot exceed it either.
    """
    refused = _refused_link(path)
    if refused is not None:
        return None, refused
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return None, (
            f"could not read the file ({exc.strerror or exc}): check it exists and is not open "
            "in another program"
        )
    with os.fdopen(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, (
                f"refused: not a regular file (a {_file_type(info.st_mode)}); put the exported "
                "file itself in the input folder"
            )
        too_big = (
            f"refused: the file is larger than the limit of {max_bytes:,} bytes (setting "
            "max_file_bytes); split the export into smaller date ranges, or raise the limit"
        )
        if info.st_size > max_bytes:
            return None, too_big
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            return None, f"could not read the file ({exc.strerror or exc}): copy it again"
    if data is None or len(data) > max_bytes:
        return None, too_big
    return data, None


def _refused_link(path: Path) -> str | None:
    """Why a symbolic link may not be read (it points out of the input folder), or None."""
    try:
        if not path.is_symlink():
            return None
        target = path.resolve(strict=True)
        folder = path.parent.resolve(strict=True)
    except (OSError, RuntimeError):
        return "refused: a link that points nowhere readable; put the exported file itself in the input folder"
    if folder not in target.parents:
        return (
            f"refused: a link to {target}, outside the input folder; copy the exported file into "
            "the input folder instead"
        )
    return None


def _file_type(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "folder"),
    )
    return next((label for test, label in kinds if test(mode)), "special file")


# --- each export's SHA-256 beside its parse -------------------------------------------------------

# Below this many bytes a thread costs more than the hash it would take off the parse.
_HASH_BESIDE_MIN_BYTES = 1 << 20
# A file's bytes object (by id, kept alive here) -> the thread hashing it and the hash it makes.
_hashing: dict[int, tuple[bytes, threading.Thread, list[str]]] = {}


def hash_beside(data: bytes) -> None:
    """Start the SHA-256 of a large file's bytes in a thread (hashlib releases the GIL while it
    hashes), so the second core hashes while this one parses; `sha256_of` takes the result."""
    if len(data) < _HASH_BESIDE_MIN_BYTES:
        return
    digest: list[str] = []
    thread = threading.Thread(target=lambda: digest.append(_sha256(data)), daemon=True)
    with _lock:
        _hashing[id(data)] = (data, thread, digest)
    thread.start()


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of a file's bytes: from its `hash_beside` thread when one was started."""
    with _lock:
        started = _hashing.pop(id(data), None)
    if started is None or started[0] is not data:
        return _sha256(data)
    _, thread, digest = started
    thread.join()
    return digest[0] if digest else _sha256(data)


def forget_hash(data: bytes) -> None:
    """Wait for and drop a hash no table took (the file could not be read as a table)."""
    with _lock:
        started = _hashing.pop(id(data), None)
    if started is not None:
        started[1].join()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
