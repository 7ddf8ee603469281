"""A sheet whose every value is text (a Cliniko export: every cell a shared string) read by
fastexcel straight into Arrow text columns: no Python object per cell, and the typing layer gets
columns of distinct values, as from a CSV file (`csv_arrow`). Tried for a plain sheet of 1 MB of
XML or more (the pre-flight keeps its XML), whole: halves would each parse the whole shared
strings table (`xlsx_sheet._read_kept`).

Only such a sheet is read so, and only when fastexcel itself finds nothing but text in every
column of every row (its strict typing over all rows); anything else gives None and the sheet is
read by python-calamine as before. A text cell reads alike in both (the same text, CRLF and CR
made LF as `xlsx_reading` writes a cell), an empty cell is "" in both, and the rows start at the
sheet's first row in both; a sheet of text holds no number, so no date style or error applies.
`tests/test_xlsx_text.py` reads every workbook both ways.

Imports only the standard library at first (fastexcel and pyarrow when a sheet is read), so a
reader thread can run it before pandas loads (`read_ahead`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pkgreport.errors import PASS_THROUGH

# A value, and the end of a shared string cell's start tag (`<c r="A1" t="s">`, as Excel,
# Cliniko's exporter and xlsxwriter write it): each ends with ">", so no piece splits one.
_VALUE = b"<v>"
_SHARED_STRING_CELL = b' t="s">'


@dataclass(frozen=True)
class TextSheet:
    """A sheet of text as Arrow columns: the header row's cells and the body's columns.

    Rows and columns count from 0 (the sheet's A1). Each column of `body` (pyarrow string
    arrays, empty cells "") holds the rows after the header up to the last row holding a value;
    `offset` blank columns come before the first of them (the sheet's first columns were empty).
    """

    headers: list[str]
    body: list[Any]  # pyarrow.ChunkedArray of string, one per column from `offset`
    header_index: int
    last_index: int
    offset: int
    height: int  # rows from A1 to the sheet's last, as calamine gives them
    may_hold_wrapped: bool  # some body cell holds `="`

    @property
    def width(self) -> int:
        return self.offset + len(self.body)


# Below this many bytes of sheet XML the cells cost little as Python values: read as before.
TEXT_MIN_BYTES = 1 << 20

# Arrow holds a column's text in one buffer of under 2 GiB (fastexcel stops with a panic past
# it): a sheet whose column could hold more (a long shared string repeated down it, as in a
# "shared strings bomb") is read as before.
_COLUMN_TEXT_LIMIT = 2**31 - 1

# Pieces of the sheet's XML looked at for a value that is not a shared string (spread over it).
_SAMPLED_PIECES = 5


def only_shared_strings(pieces: list[bytes]) -> bool:
    """Whether the sheet's values (its XML in pieces cut after a tag) look all shared strings,
    from a few pieces spread over it: in each, as many values as shared string cells (give or
    take the one cell a cut may split between two pieces).

    Only a cheap first look, so that fastexcel does not read a sheet of numbers for nothing (a
    sheet holding numbers, booleans or formulas has them in every piece); fastexcel's typing of
    every cell (`read_text_sheet`) is what decides.
    """
    step = max(1, len(pieces) // _SAMPLED_PIECES)
    return all(
        abs(piece.count(_VALUE) - piece.count(_SHARED_STRING_CELL)) <= 1 for piece in pieces[::step]
    )


def columns_fit(rows: int, longest_text: int | None) -> bool:
    """Whether `rows` cells of the longest shared string (its entry's bytes in the XML, as the
    pre-flight measures it: `xlsx_safety.SheetExtent`) fit a column of Arrow text.

    Each shared string's text is no longer (in UTF-8) than its entry in the XML; a workbook with
    no single shared strings part is read as before (None).
    """
    return longest_text is not None and rows * longest_text <= _COLUMN_TEXT_LIMIT


def open_reader(data: bytes) -> Any | None:
    """fastexcel's reader of the workbook (it gives the sheets' names, as calamine does), or
    None when it cannot open it (python-calamine then opens it, and says why)."""
    try:
        import fastexcel

        return fastexcel.read_excel(data)
    except PASS_THROUGH:
        raise
    except BaseException:  # noqa: BLE001 - fastexcel's errors, and Rust panics: open it as before
        return None


class ReaderAhead:
    """fastexcel's reader of a workbook (`open_reader`), opened by a thread of its own while the
    pre-flight still scans the workbook's worksheet, when its first piece looks all shared
    strings (`sheet_begins`, which the pre-flight calls once every part the reader opens a
    workbook by has passed). fastexcel releases the GIL as it opens it (it parses the shared
    strings), and the scans hold it: the second core opens the workbook meanwhile.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._thread: threading.Thread | None = None
        self._opened: list[Any] = []

    def sheet_begins(self, first_piece: bytes) -> None:
        if self._thread is None and only_shared_strings([first_piece]):
            thread = threading.Thread(target=self._open, daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: the reader is opened when taken
                return
            self._thread = thread

    def _open(self) -> None:
        try:
            self._opened.append(open_reader(self._data))
        except BaseException as exc:  # noqa: BLE001 - raised where the reader is taken
            self._opened.append(exc)

    def reader(self) -> Any | None:
        """The workbook's reader, as `open_reader` gives it: the one opened ahead, if any."""
        if self._thread is None:
            return open_reader(self._data)
        self._thread.join()
        opened = self._opened.pop()
        if isinstance(opened, BaseException):
            raise opened
        return opened

    def close(self) -> None:
        """Wait for a reader opened ahead and nobody took (the sheet is read otherwise)."""
        if self._thread is not None:
            self._thread.join()
        self._opened.clear()


def read_text_sheet(
    reader: Any, sheet_name: str, parse_begins: Callable[[], None] = lambda: None
) -> TextSheet | None:
    """The sheet as Arrow text columns, or None when fastexcel finds a value that is not text
    in some column, cannot read the sheet, or the sheet holds no value (read it as before).
    `reader` is `open_reader`'s; `parse_begins` is called as fastexcel's parse begins (once
    fastexcel and pyarrow are imported)."""
    read = _read_text(reader, sheet_name, parse_begins)
    return None if read is None else _text_sheet(*read)


def _read_text(
    reader: Any, sheet_name: str, parse_begins: Callable[[], None]
) -> tuple[list[Any], int] | None:
    """(the sheet's columns from A1's row down, the first column's position) as fastexcel reads
    the workbook: no columns when the sheet holds no value; None unless every column holds text
    only.

    A sheet whose values start in column A (every export) is read eagerly, straight into
    Arrow: fastexcel then borrows each shared string rather than copying it into a cell of its
    own first, about a third less work on a Cliniko export. Any other sheet is read as a
    sheet whose columns report their place. Either way fastexcel types every column over all
    its rows, strictly."""
    try:
        import fastexcel
        import pyarrow as pa

        _quiet_fastexcel()
        parse_begins()
        typing: dict[str, Any] = {
            "header_row": None,
            "skip_rows": 0,
            "schema_sample_rows": None,
            "dtype_coercion": "strict",
        }
        try:
            batch = reader.load_sheet_eager(sheet_name, use_columns="A:", **typing)
            columns, offset = pa.table(batch).columns, 0
        except fastexcel.ColumnNotFoundError:  # column A is empty, or the sheet holds no value
            sheet = reader.load_sheet(sheet_name, **typing)
            infos = sheet.available_columns()
            if not infos:
                return [], 0  # no value
            offset = infos[0].absolute_index
            if [info.absolute_index for info in infos] != list(range(offset, offset + len(infos))):
                return None
            columns = pa.table(sheet.to_arrow()).columns  # a RecordBatch as a table
        if any(column.type != pa.string() for column in columns):
            return None
        return list(columns), offset
    except PASS_THROUGH:
        raise
    except BaseException:  # noqa: BLE001 - fastexcel's errors, and Rust panics: read it as before
        return None


def _quiet_fastexcel() -> None:
    """fastexcel logs a column it cannot type (one left empty) as a warning, which Python would
    print on stderr; its text is "" all the same. A handler that drops its records, added once."""
    logger = logging.getLogger("fastexcel")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _text_sheet(columns: list[Any], offset: int) -> TextSheet | None:
    """The columns' header row and body, between the first and last rows holding a value."""
    import numpy as np
    import pyarrow.compute as pc

    columns = [pc.fill_null(column, "") for column in columns]
    if not columns:
        return None
    filled = [np.flatnonzero(pc.not_equal(c, "").to_numpy(zero_copy_only=False)) for c in columns]
    if not any(len(rows) for rows in filled):
        return None
    header_index = min(int(rows[0]) for rows in filled if len(rows))
    last_index = max(int(rows[-1]) for rows in filled if len(rows))
    body = [c.slice(header_index + 1, last_index - header_index) for c in columns]
    return TextSheet(
        headers=[c[header_index].as_py() for c in columns],
        body=body,
        header_index=header_index,
        last_index=last_index,
        offset=offset,
        height=len(columns[0]),
        may_hold_wrapped=any(_holds_wrapped(c) for c in body),
    )


def _holds_wrapped(column: Any) -> bool:
    """Whether some value of the column holds `="`: the bytes of its text are searched first,
    all at once (numpy, a few milliseconds for a Cliniko export's columns); only a column whose
    bytes hold it is searched value by value (where a value ending in "=" and the next beginning
    with '"' would also show it there)."""
    import numpy as np
    import pyarrow.compute as pc

    for chunk in column.chunks:
        data = chunk.buffers()[2]
        if data is None:
            continue
        text = np.frombuffer(data, dtype=np.uint8)
        equals = np.flatnonzero(text[:-1] == ord("="))
        if (text[equals + 1] == ord('"')).any():
            return bool(pc.any(pc.match_substring(column, '="')).as_py())
    return False
