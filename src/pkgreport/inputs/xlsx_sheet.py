"""An XLSX file's bytes to its sheet's cells: the pre-flight, then calamine's read of the sheet.

Imports only the standard library and the pre-flight, so a thread started before pandas loads
can open the sheet (`read_ahead`); `xlsx_reading` turns its cells into a table.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pkgreport.config import Settings
from pkgreport.errors import PASS_THROUGH
from pkgreport.inputs.xlsx_safety import (
    RESAVE_ADVICE,
    SheetExtent,
    preflight_xlsx,
    sheet_parts,
    short_message,
)
from pkgreport.inputs.xlsx_split import SPLIT_MIN_BYTES, read_split
from pkgreport.inputs.xlsx_text import (
    TEXT_MIN_BYTES,
    ReaderAhead,
    TextSheet,
    columns_fit,
    only_shared_strings,
    read_text_sheet,
)

# .xls goes through the xlsx pre-flight so a legacy workbook gets the "re-save as .xlsx" message.
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})


@dataclass(frozen=True)
class OpenSheet:
    """The sheet a workbook is read from, parsed by calamine (its cells not yet Python values)."""

    archive: zipfile.ZipFile
    sheet_part: str | None  # the zip member holding the sheet, when workbook.xml names it
    sheet_name: str
    sheet: Any  # python_calamine.CalamineSheet (None when `grid` was read in two halves)
    error_cells: bool  # some cell holds an Excel error (#N/A, ...), which calamine blanks
    grid: list[list[Any]] | None = None  # the cells, when read in halves (`xlsx_split`)
    text: TextSheet | None = None  # the cells as Arrow text, when all are text (`xlsx_text`)

    def size(self) -> tuple[int, int]:
        """(rows, columns) of the cells read already (in halves, or as text): A1 to the last."""
        if self.text is not None:
            return self.text.height, self.text.width
        grid = self.grid or []
        return len(grid), len(grid[0]) if grid else 0

    def cells(self) -> list[list[Any]] | SheetRefused:
        """The sheet's rows of cell values (str, float, int, bool, dates, None), or why not.

        Holds the GIL throughout (every cell becomes a Python object), so it is left to the
        thread that needs the cells rather than done by a reader thread beside it, unless the
        sheet was read in halves: each half's cells were made while the other half was parsed.
        """
        if self.grid is not None:
            return self.grid
        try:
            grid: list[list[Any]] = self.sheet.to_python(skip_empty_area=False)
        except PASS_THROUGH:
            raise
        except BaseException as exc:  # noqa: BLE001 - calamine's errors, and Rust panics
            return _unreadable_sheet(self.sheet_name, exc)
        return grid


@dataclass(frozen=True)
class SheetRefused:
    """Why the workbook's sheet cannot be read: an error about the file (about `value`, if any)."""

    message: str
    value: str | None = None


def open_sheet(
    data: bytes,
    settings: Settings,
    checked: threading.Event | None = None,
    parsing: threading.Event | None = None,
) -> OpenSheet | SheetRefused:
    """The chosen sheet parsed, or why not; never raises for bad input.

    The pre-flight (zip and XML bombs, the sheet's extent) runs before calamine sees the bytes;
    `checked` is set once it is over. calamine (or fastexcel) releases the GIL while it parses the
    sheet; `parsing` is set as that parse begins. A big sheet that may be all text has
    fastexcel's reader opened while the pre-flight scans it (`ReaderAhead`).
    """
    ahead = ReaderAhead(data)
    begins = _Begins(checked, parsing or threading.Event())
    try:
        return _open_sheet(data, settings, ahead, begins)
    finally:
        ahead.close()


@dataclass(frozen=True)
class _Begins:
    """The events `open_sheet` sets: `checked` once the pre-flight is over, or, for a sheet of
    text, once fastexcel's parse begins (the steps before it hold the GIL: they run before the
    data libraries' imports rather than beside them, `read_ahead.wait_for_checks`); `parsing`
    as the parse begins."""

    checked: threading.Event | None
    parsing: threading.Event

    def parse(self) -> None:
        if self.checked is not None:
            self.checked.set()
        self.parsing.set()


def _open_sheet(
    data: bytes, settings: Settings, ahead: ReaderAhead, begins: _Begins
) -> OpenSheet | SheetRefused:
    """`open_sheet`'s work, the reader opened ahead given (`ahead`)."""
    kept: dict[str, list[bytes]] = {}
    keep_min_bytes = min(SPLIT_MIN_BYTES, TEXT_MIN_BYTES)
    archive, sheet_extents, problem = preflight_xlsx(
        data, settings, kept, keep_min_bytes, ahead.sheet_begins
    )
    if problem is not None:
        return SheetRefused(problem)
    assert archive is not None

    # A big sheet that may be all text is read by fastexcel, whose reader gives the sheets'
    # names: the workbook is then opened once, not by calamine as well.
    text_part = _text_candidate(kept, sheet_extents)
    reader = ahead.reader() if text_part is not None else None
    if begins.checked is not None and reader is None:
        begins.checked.set()
    opened = _opened_workbook(data, reader)
    if isinstance(opened, SheetRefused):
        return opened
    workbook, sheet_names = opened
    if not sheet_names:
        return SheetRefused(f"the workbook has no sheets; {RESAVE_ADVICE}")
    sheet_name = _chosen_sheet(sheet_names, settings.sheet)
    if isinstance(sheet_name, SheetRefused):
        return sheet_name

    sheet_part = _sheet_part(archive, sheet_name)
    parts = [sheet_part] if sheet_part in sheet_extents else list(sheet_extents)
    error_cells = any(sheet_extents[part].error_cells for part in parts)
    for part in parts:
        max_row, max_col = sheet_extents[part][:2]
        if max_row * max_col > settings.max_xlsx_cells:
            return _too_many_cells(max_row, max_col, settings)

    if sheet_part is not None and sheet_part in kept:
        text = reader if sheet_part == text_part and workbook is reader else None
        read = _read_kept(
            archive, sheet_part, sheet_name, kept.pop(sheet_part), error_cells, text, begins.parse
        )
        if read is not None:
            rows, columns = read.size()
            if rows * columns > settings.max_xlsx_cells:
                return _too_many_cells(rows, columns, settings)
            return read
    begins.parse()
    if workbook is reader:  # fastexcel's: its sheet was not read as text, calamine reads it
        opened = _opened_workbook(data, None)
        if isinstance(opened, SheetRefused):
            return opened
        workbook = opened[0]
    try:
        sheet = workbook.get_sheet_by_name(sheet_name)
        end_row, end_col = sheet.end or (0, 0)
    except PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's errors, and Rust panics (BaseException)
        return _unreadable_sheet(sheet_name, exc)
    if (end_row + 1) * (end_col + 1) > settings.max_xlsx_cells:
        return _too_many_cells(end_row + 1, end_col + 1, settings)
    return OpenSheet(archive, sheet_part, sheet_name, sheet, error_cells)


def _text_candidate(kept: dict[str, list[bytes]], extents: dict[str, SheetExtent]) -> str | None:
    """The worksheet part to try reading as Arrow text (`xlsx_text`), or None: a plain sheet of
    `TEXT_MIN_BYTES` or more whose XML the pre-flight kept (the workbook's only worksheet),
    with no error cell, whose values look all shared strings and whose columns fit Arrow."""
    for part, sheet_xml in kept.items():
        extent = extents[part]
        if (
            sum(map(len, sheet_xml)) >= TEXT_MIN_BYTES
            and not extent.error_cells
            and only_shared_strings(sheet_xml)
            and columns_fit(extent.rows, extent.longest_text)
        ):
            return part
    return None


def _opened_workbook(data: bytes, reader: Any | None) -> tuple[Any, list[str]] | SheetRefused:
    """(the workbook, its sheets' names): fastexcel's reader when given, else python-calamine's
    workbook; or why the workbook cannot be opened (as calamine says)."""
    if reader is not None:
        try:
            return reader, list(reader.sheet_names)
        except PASS_THROUGH:
            raise
        except BaseException:  # noqa: BLE001 - fastexcel's errors: calamine opens it, or says why
            pass
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        return workbook, list(workbook.sheet_names)
    except PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's errors, and Rust panics (BaseException)
        return SheetRefused(f"could not read the workbook ({short_message(exc)}); {RESAVE_ADVICE}")


def _read_kept(
    archive: zipfile.ZipFile,
    sheet_part: str,
    sheet_name: str,
    sheet_xml: list[bytes],
    error_cells: bool,
    text_reader: Any | None,
    parse_begins: Callable[[], None],
) -> OpenSheet | None:
    """A big plain sheet, its XML kept by the pre-flight: as Arrow text when every value is text
    (`xlsx_text`: given fastexcel's reader, `_text_candidate`), else by calamine, in two halves
    at once when it is big enough to split (`xlsx_split`). None when neither applies (it is
    then read whole, as any sheet).

    A sheet of text is read whole: fastexcel parses each half's copy of the whole shared strings
    table (which holds every id), so on a Cliniko export of 109,002 appointments the halves saved
    under 0.05 s of wall on a quiet machine (0.79 s, and 0.13 s to split, against 0.95 s) while
    `validate` took about 0.25 s more CPU with them: the second core has the data libraries'
    imports and the other workbooks to read (`read_ahead`)."""
    # fastexcel, and calamine's halves, release the GIL as they parse.
    if text_reader is not None:
        text = read_text_sheet(text_reader, sheet_name, parse_begins)
        if text is not None:
            return OpenSheet(archive, sheet_part, sheet_name, None, error_cells, text=text)
    parse_begins()
    size = sum(map(len, sheet_xml))
    grid = (
        read_split(archive, sheet_part, sheet_name, sheet_xml) if size >= SPLIT_MIN_BYTES else None
    )
    if grid is None:
        return None
    return OpenSheet(archive, sheet_part, sheet_name, None, error_cells, grid)


def _unreadable_sheet(sheet_name: str, exc: BaseException) -> SheetRefused:
    return SheetRefused(
        f"could not read sheet {sheet_name!r} ({short_message(exc)}); {RESAVE_ADVICE}"
    )


def _chosen_sheet(sheet_names: list[str], wanted: str | None) -> str | SheetRefused:
    """The first sheet, or the one the sheet setting names (exactly, else ignoring case)."""
    if wanted is None:
        return sheet_names[0]
    matches = [s for s in sheet_names if s == wanted] or [
        s for s in sheet_names if s.casefold() == wanted.casefold()
    ]
    if not matches:
        listed = ", ".join(repr(s) for s in sheet_names)
        return SheetRefused(
            f"no sheet named {wanted!r}; the sheets are {listed}: choose one with the sheet setting",
            wanted,
        )
    return matches[0]


def _too_many_cells(rows: int, columns: int, settings: Settings) -> SheetRefused:
    return SheetRefused(
        f"the sheet spans {rows:,} rows x {columns:,} columns, over the limit of {settings.max_xlsx_cells:,} cells; delete unused rows and columns or split the file"
    )


def _sheet_part(archive: zipfile.ZipFile, sheet_name: str) -> str | None:
    """The zip member holding a sheet (via workbook.xml and its relationships), or None."""
    return sheet_parts(archive).get(sheet_name)
