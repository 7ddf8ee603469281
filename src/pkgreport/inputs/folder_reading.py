"""A folder's exports read by a thread, each table handed to validation as soon as it is read
(and the folder's size beforehand, the message once read)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.csv_arrow import wait_before_strings
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.tables import RawTable


class FolderReading:
    """`load_folder` run by a thread, its tables iterated as they come, in the same order.

    Reading a large CSV is mostly pyarrow's (its parse and the distinct values of each column
    release the GIL), typing a table mostly Python's: validating each table while the next is
    read puts the second core to work where it idled. The tables and issues are those of
    `load_folder`: `tables` and `issues` hold them once the iteration has ended or `finish` has
    returned, and `on_read` is then called once with the tables, in the iterating thread.
    """

    def __init__(
        self, folder: Path, settings: Settings, on_read: Callable[[list[RawTable]], None]
    ) -> None:
        self.tables: list[RawTable] = []
        self.issues: list[Issue] = []
        self._on_read = on_read
        self._arrived: queue.SimpleQueue[RawTable | None] = queue.SimpleQueue()
        self._failed: BaseException | None = None
        # Set while the iterating thread waits for a table or has stopped iterating: only then
        # does the reading thread make a file's Python strings (`csv_arrow.wait_before_strings`).
        self._idle = threading.Event()
        self._announced = False
        self._iterated = False
        self._thread = threading.Thread(target=self._read, args=(folder, settings), daemon=True)
        self._thread.start()

    def _read(self, folder: Path, settings: Settings) -> None:
        wait_before_strings(self._idle.wait)
        try:
            tables, issues = load_folder(folder, settings, on_table=self._arrived.put)
            self.tables.extend(tables)
            self.issues.extend(issues)
        except BaseException as exc:  # noqa: BLE001 - raised in the iterating thread by `finish`
            self._failed = exc
        finally:
            self._arrived.put(None)

    def __iter__(self) -> Iterator[RawTable]:
        if self._iterated:
            raise RuntimeError("a folder's reading is iterated once: keep its `tables`")
        self._iterated = True
        try:
            while True:
                self._idle.set()
                table = self._arrived.get()
                if table is None:
                    break
                self._idle.clear()
                yield table
        finally:
            self._idle.set()  # an iteration left unfinished never holds the reading back
        self.finish()

    def error_first(self, error: Exception) -> Exception:
        """`error` once the reading has ended, unless the reading raised: its error, as reading
        the folder before validating would have raised it (validation may fail before then)."""
        try:
            self.finish()
        except Exception as exc:  # noqa: BLE001 - the caller raises the one returned
            return exc
        return error

    def finish(self) -> None:
        """Wait for the reading to end; raise what it raised, as reading first would have."""
        self._idle.set()  # validation no longer types a table beside the reading
        self._thread.join()
        if self._failed is not None:
            raise self._failed
        if not self._announced:
            self._announced = True
            self._on_read(self.tables)


def read_message(tables: list[RawTable]) -> str:
    """The stage message once a folder is read: each file read and its rows."""
    if not tables:
        return "read no files"
    return f"read {len(tables)} file(s): " + ", ".join(
        f"{t.file.name} ({len(t.frame):,} rows)" for t in tables
    )


def files_at_most(folder: Path | None, most_bytes: int) -> bool:
    """Whether the files in the folder add up to at most `most_bytes` (False when it cannot be
    listed: reading it says why)."""
    try:
        sizes = [entry.stat().st_size for entry in os.scandir(folder or "") if entry.is_file()]
    except OSError:
        return False
    return sum(sizes) <= most_bytes
