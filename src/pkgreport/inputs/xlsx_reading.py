"""Reading XLSX exports: the sheet, its cells as text, dates and numbers as written."""

from __future__ import annotations

import datetime as dt
import gc
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.tables import (
    RawTable,
    column_letter,
    file_error,
    finish_columns,
    joined_runs,
    row_error,
)
from pkgreport.inputs.xlsx_safety import NS_MAIN, column_number, xml_segments
from pkgreport.inputs.xlsx_sheet import OpenSheet, SheetRefused, open_sheet
from pkgreport.inputs.xlsx_text import TextSheet

# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------

# A float holds every whole number below 2**53 exactly; above it, a "whole number" cell (an
# 18-digit id a spreadsheet stored as a number) has lost digits.
_EXACT_WHOLE_NUMBERS = 2**53
_MAX_DATE_SERIAL = 2958465  # 9999-12-31, the last day Excel can show


def load_xlsx(
    path: Path,
    kind: str,
    data: bytes,
    settings: Settings,
    opened: OpenSheet | SheetRefused | None = None,
) -> tuple[RawTable | None, list[Issue]]:
    """A workbook's sheet as a table; `opened` is the sheet when it was read ahead (`read_ahead`)."""
    if opened is None:
        opened = open_sheet(data, settings)
    if isinstance(opened, SheetRefused):
        return None, [row_error(path.name, None, None, opened.value, opened.message)]
    if opened.text is not None:
        return _text_to_table(path, kind, data, opened.sheet_name, opened.text)
    # The cells arrive as a list per row (100,000 lists for a big export), which the cycle
    # collector would walk again and again while the table is built; none of them is in a cycle.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        grid = opened.cells()
        if isinstance(grid, SheetRefused):
            return None, [row_error(path.name, None, None, grid.value, grid.message)]
        return _grid_to_table(
            path,
            kind,
            data,
            opened.archive,
            opened.sheet_part,
            opened.sheet_name,
            grid,
            opened.error_cells,
        )
    finally:
        if was_enabled:
            gc.enable()


_BUILTIN_DATE_FORMATS = frozenset(
    [*range(14, 23), *range(27, 37), 45, 46, 47, *range(50, 59), *range(71, 82)]
)
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')


def _date_styles(archive: zipfile.ZipFile) -> frozenset[int]:
    """The style indices (a cell's `s`) whose number format shows a date or a time."""
    from defusedxml import ElementTree as SafeET

    try:
        styles = SafeET.fromstring(archive.read("xl/styles.xml"))
        custom: dict[int, str] = {}
        for fmt in styles.iter(f"{NS_MAIN}numFmt"):
            custom[int(fmt.get("numFmtId", "-1"))] = fmt.get("formatCode", "")
        cell_xfs = styles.find(f"{NS_MAIN}cellXfs")
        date_styles = set()
        for index, xf in enumerate(cell_xfs if cell_xfs is not None else []):
            fmt_id = int(xf.get("numFmtId", "0"))
            code = _FORMAT_LITERALS.sub("", custom.get(fmt_id, "")).lower()
            if fmt_id in _BUILTIN_DATE_FORMATS or (
                fmt_id in custom and any(c in code for c in "dmyhs") and "general" not in code
            ):
                date_styles.add(index)
        return frozenset(date_styles)
    except Exception:  # noqa: BLE001 - without styles we cannot tell a date from a number
        return frozenset()


# A cell's style attribute naming a date style and the end of its start tag; then (the value
# part) an optional cached formula and a value that is negative, has seven or more digits before
# the point, or an exponent: every number past 2,958,465 or below 0 has one of these shapes.
# Starting with the letter s lets the regex engine skip ahead to candidates. "P:" stands for an
# optional namespace prefix.
_DATE_STYLE_ATTRIBUTE = rb"s\s*=\s*(?P<q>[\"'])\s*0*(?:STYLES)\s*(?P=q)[^>]*(?<!/)>"
_UNSTYLED_CELL = rb"<P:c(?![^>]*\ss\s*=)(?:\s[^>]*)?(?<!/)>"  # style 0, the default
_VALUE_BEYOND_DATES = (
    rb"\s*(?:<P:f\b[^>]*/>\s*|<P:f\b[^>]*>[^<]*</P:f>\s*)?"
    rb"<P:v>\s*(?P<value>(?:-|\+?[0-9]{7}|[+-]?[0-9.]*[eE])[^<]*)"
)
_CELL_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s")
_REF_ATTRIBUTE = re.compile(rb"""\sr\s*=\s*["']\s*([A-Z]{1,3})([0-9]{1,7})\s*["']""")


def _date_cell_patterns(styles: frozenset[int]) -> list[re.Pattern[bytes]]:
    """Patterns for a cell in one of these styles whose number may be past the dates Excel shows."""
    indices = b"|".join(str(i).encode() for i in sorted(styles, reverse=True))
    sources = [_DATE_STYLE_ATTRIBUTE.replace(b"STYLES", indices)]
    if 0 in styles:
        sources.append(_UNSTYLED_CELL)
    prefix = rb"(?:[A-Za-z_][\w.-]*:)?"
    return [re.compile((source + _VALUE_BEYOND_DATES).replace(b"P:", prefix)) for source in sources]


def _date_styled(archive: zipfile.ZipFile, sheet_part: str | None) -> list[tuple[int, int, str]]:
    """(row, column, number) of the cells in a date or time format whose number may be out of range.

    Rows and columns count from 0; the number is as the sheet's XML holds it.

    One streaming byte scan of the sheet, and none when the workbook has no date format: a
    number in any other format (every id) is never looked at. The pre-flight has already
    measured the decompressed part and refused DTDs and entities, and no XML parser runs here.
    """
    date_styles = _date_styles(archive)
    if sheet_part is None or not date_styles:
        return []
    patterns = _date_cell_patterns(date_styles)
    cells: list[tuple[int, int, str]] = []
    try:
        with archive.open(sheet_part) as stream:
            # Cut just after a cell's end tag, so no cell is split between two pieces.
            for segment in xml_segments(stream, end=b"c>"):
                for pattern in patterns:
                    for match in pattern.finditer(segment):
                        cell = _cell_holding(segment, match.start())
                        if cell is not None:
                            cells.append((*cell, match["value"].strip().decode("ascii", "replace")))
    except Exception:  # noqa: BLE001 - the reader already accepted the sheet; keep what we found
        return cells
    return cells


def _cell_holding(segment: bytes, match_at: int) -> tuple[int, int] | None:
    """(row, column) of the cell whose start tag begins at, or holds the attribute at, match_at."""
    tag_at = segment.rfind(b"<", 0, match_at + 1)
    tag = segment[tag_at:match_at]  # up to the s attribute; empty when the match is the tag
    in_cell_tag = bool(_CELL_START.match(tag)) and tag[-1:].isspace() and b">" not in tag
    if tag_at < 0 or (tag and not in_cell_tag):
        return None  # an s= outside a cell's start tag: a row's style, text, an attribute ...s=
    ref = _REF_ATTRIBUTE.search(segment, tag_at, segment.find(b">", match_at))
    return (int(ref[2]) - 1, column_number(ref[1]) - 1) if ref else None


_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


def _error_cell_issues(
    name: str,
    archive: zipfile.ZipFile,
    sheet_part: str | None,
    cells: np.ndarray,
    header_index: int,
) -> list[Issue]:
    """One error per cell holding an Excel error (#DIV/0!, #N/A, ...), which the reader blanks."""
    from defusedxml import ElementTree as SafeET

    def advice(value: str) -> str:
        return f"the cell holds the Excel error {value} instead of a value: fix the formula or type the value, then save again"

    generic = file_error(name, advice("#N/A or similar") + " (the workbook has error cells)")
    if sheet_part is None:
        return [generic]
    issues: list[Issue] = []
    try:
        with archive.open(sheet_part) as stream:
            for _, element in SafeET.iterparse(stream):
                if element.tag != f"{NS_MAIN}c":
                    continue
                if element.get("t") == "e":
                    value = element.findtext(f"{NS_MAIN}v") or "#ERROR"
                    match = _CELL_REF.fullmatch(element.get("r") or "")
                    row = int(match.group(2)) if match else None
                    column = None
                    if match:
                        j = column_number(match.group(1).encode()) - 1
                        if 0 <= j < cells.shape[1] and header_index < cells.shape[0]:
                            column = str(cells[header_index, j]).strip() or match.group(1)
                    issues.append(row_error(name, row, column, value, advice(value)))
                element.clear()
    except Exception:  # noqa: BLE001 - the reader already accepted the sheet; keep what we found
        return issues or [generic]
    return issues or [generic]


def _cell_text(value: object) -> str:
    """A cell as canonical text: what a CSV export of the same sheet would most sensibly hold."""
    if type(value) is str:
        return value if "\r" not in value else value.replace("\r\n", "\n").replace("\r", "\n")
    if type(value) is float:
        if value.is_integer() and abs(value) < _EXACT_WHOLE_NUMBERS:
            return str(int(value))
        if value.is_integer():
            # Written as a spreadsheet shows it (1.01754e+18): its last digits are gone, and the
            # id check refuses it rather than inventing them as zeros.
            return f"{value:.15g}"
        return _float_text(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is dt.datetime or type(value) is dt.date or type(value) is dt.time:
        return value.isoformat()
    if type(value) is dt.timedelta:
        # A duration cell ([h]:mm:ss) reads as Excel shows it: hours past 24 keep counting.
        seconds = value.total_seconds()
        sign = "-" if seconds < 0 else ""
        whole, frac = divmod(abs(seconds), 1)
        hours, rest = divmod(int(whole), 3600)
        minutes, secs = divmod(rest, 60)
        text = f"{sign}{hours}:{minutes:02d}:{secs:02d}"
        return text + f"{frac:.6f}".rstrip("0")[1:] if frac else text
    if value is None:
        return ""
    return str(value)


# A binary float this close to a whole cent is that cent with the float's representation error.
_CENT_TOLERANCE = 1e-9


def _float_text(value: float) -> str:
    """The shortest text that reads back as the same float, except near a whole cent.

    Excel stores =0.1+0.2 as 0.30000000000000004 and shows 0.30; a number within 1e-9 of a whole
    cent is written as that cent (0.3), so the strict money parser does not refuse what the user
    sees as 0.30. Only spreadsheet numbers pass here: money typed as text stays strict.
    """
    text = repr(value)
    decimals = text.partition(".")[2]
    if "e" in text or len(decimals) <= 2:
        return text
    cents = round(value * 100)
    if abs(value - cents / 100) <= _CENT_TOLERANCE:
        return repr(cents / 100)
    return text


def _out_of_range_dates(
    grid: list[list[Any]], date_styled: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """(row, column, number) of the date-styled cells holding a date Excel cannot show.

    The reader hands back the raw number for a date after 9999-12-31, and a time of day for a
    negative one (before 1900), which would otherwise pass for a real value.
    """
    out_of_range = {}
    for i, j, number in date_styled:
        value = grid[i][j] if i < len(grid) and j < len(grid[i]) else None
        if type(value) is float and (value > _MAX_DATE_SERIAL or value < 0):
            out_of_range[i, j] = _cell_text(value)
        elif number.startswith("-") and type(value) in (dt.time, dt.date, dt.datetime):
            out_of_range[i, j] = number
    return sorted((i, j, number) for (i, j), number in out_of_range.items())


def _non_blank_span(cells: np.ndarray) -> tuple[int, int] | None:
    """The first and last rows holding a non-blank cell, or None when every cell is "".

    Compares ever larger blocks from each end, so the usual sheet costs a few rows, not every cell.
    """
    top = _first_non_blank_row(cells)
    if top is None:
        return None
    from_bottom = _first_non_blank_row(cells[::-1])
    return top, len(cells) - 1 - (from_bottom or 0)


def _first_non_blank_row(cells: np.ndarray) -> int | None:
    done, size = 0, 1
    while done < len(cells):
        hits = np.flatnonzero((cells[done : done + size] != "").any(axis=1))
        if len(hits):
            return done + int(hits[0])
        done, size = done + size, size * 4
    return None


def _grid_to_table(
    path: Path,
    kind: str,
    data: bytes,
    archive: zipfile.ZipFile,
    sheet_part: str | None,
    sheet_name: str,
    grid: list[list[Any]],
    error_cells: bool = False,
) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    issues: list[Issue] = []
    if not grid:
        return None, [
            file_error(
                name,
                f"sheet {sheet_name!r} is empty: no header row; put the header in the first row",
            )
        ]
    widths = set(map(len, grid))  # in C: one length per row
    width = max(widths)
    if len(widths) > 1:
        grid = [list(r) + [""] * (width - len(r)) for r in grid]
    cells = np.empty((len(grid), width), dtype=object)
    cells[:] = grid
    longest, may_hold_wrapped = _as_text(cells)

    span = _non_blank_span(cells)
    if span is None:
        return None, [
            file_error(
                name,
                f"sheet {sheet_name!r} is empty: no header row; put the header in the first row",
            )
        ]
    header_index, last_index = span
    header_row = header_index + 1

    errors: list[Issue] = []
    for i, j, number in _out_of_range_dates(grid, _date_styled(archive, sheet_part)):
        ref = f"{column_letter(j)}{i + 1}"
        column_name = str(cells[header_index, j]).strip() or column_letter(j)
        errors.append(
            row_error(
                name,
                i + 1,
                column_name,
                number,
                f"date out of range in cell {ref} (after 9999-12-31 or before 1900): type the date again in that cell",
            )
        )
    if error_cells:
        errors.extend(_error_cell_issues(name, archive, sheet_part, cells, header_index))
    if errors:
        return None, errors

    headers = [str(h).strip() for h in cells[header_index]]
    body = cells[header_index + 1 : last_index + 1]
    rows = pd.RangeIndex(header_row + 1, last_index + 2).to_numpy(dtype="int64")
    return finish_columns(
        path,
        kind,
        data,
        [body[:, j] for j in range(width)],
        headers,
        rows,
        header_row,
        issues,
        sheet=sheet_name,
        trailing_blank_header_is_warning=True,
        longest_cell_bytes=longest,
        may_hold_wrapped=may_hold_wrapped,
    )


def _text_to_table(
    path: Path, kind: str, data: bytes, sheet_name: str, sheet: TextSheet
) -> tuple[RawTable | None, list[Issue]]:
    """A sheet of text (`xlsx_text`) as the table `_grid_to_table` makes of its cells: its
    columns hold the same text, those whose values repeat as codes into their distinct values
    (made as for a CSV file's columns, `csv_arrow`), so the typing layer reads each value once."""
    from pkgreport.inputs.csv_arrow import _text_columns

    rows = sheet.last_index - sheet.header_index
    blank = np.empty(rows, dtype=object)
    blank.fill("")
    body = _text_columns(list(sheet.body), cr_in_values=True)
    header_row = sheet.header_index + 1
    return finish_columns(
        path,
        kind,
        data,
        [blank] * sheet.offset + body.columns,
        [""] * sheet.offset + [_cell_text(h).strip() for h in sheet.headers],
        pd.RangeIndex(header_row + 1, sheet.last_index + 2).to_numpy(dtype="int64"),
        header_row,
        [],
        sheet=sheet_name,
        trailing_blank_header_is_warning=True,
        longest_cell_bytes=body.longest_cell_bytes,
        may_hold_wrapped=sheet.may_hold_wrapped,
    )


def _as_text(cells: np.ndarray) -> tuple[int, bool]:
    """Every cell made canonical text in place, in one pass over each column's joined runs of
    cells, which also gives a bound on any cell's length and whether a cell may hold `="`.

    A column whose cells are all `str` without a "\r" (the usual one) is left as it is.
    """
    longest, may_hold_wrapped = 0, False
    for j in range(cells.shape[1]):
        column = cells[:, j]
        try:
            # join type-checks every cell in C (a list, which it takes without copying cells).
            runs = joined_runs(column.tolist())
            as_written = not any("\r" in run for run in runs)
        except TypeError:
            as_written = False
        if not as_written:
            cells[:, j] = list(map(_cell_text, column))
            runs = joined_runs(cells[:, j].tolist())
        longest = max(longest, *map(len, runs), 0)
        may_hold_wrapped = may_hold_wrapped or any('="' in run for run in runs)
    return longest, may_hold_wrapped
