"""A table's body written into its sheet in bulk: the bytes xlsxwriter writes cell by cell.

xlsxwriter keeps a small object per cell until `close()`, then writes each cell's XML with a
few calls; for a large workbook that is most of its time. A `BulkWorksheet` takes a body's
columns whole instead (their distinct values converted once) and, when xlsxwriter writes the
sheet, hands it each row's cells as one string: the same elements, attributes and order, the
same shared strings and style numbers, so the same bytes.

This leans on xlsxwriter's internals (how a sheet's rows are written, the shared-strings
table, the style numbers), so it is used only with the releases it was checked against
(`BULK_RELEASES`; the tests compare its bytes with the public API's); any other release writes
through the public API, cell by cell, as before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

# The xlsxwriter releases whose sheet writing this module mirrors (major.minor).
BULK_RELEASES = ("3.2", "3.3")
# A text of up to this many characters is never cut by xlsxwriter (32,767 UTF-16 units); a
# longer one sends its table through the public API, which cuts it as its release does.
_SAFE_TEXT_CHARS = 32_767 // 2
# How xlsxwriter writes a number cell's value ("%.16G"; an int is formatted as a float).
_NUMBER_TEXT = "%.16G"


def bulk_available() -> bool:
    """Whether this xlsxwriter is one the bulk path was checked against."""
    release = ".".join(xlsxwriter.__version__.split(".")[:2])
    return release in BULK_RELEASES


def fits_bulk(values: list[Any]) -> bool:
    """Whether a column's distinct values are written by the bulk path exactly as the public API
    writes them (else its table goes through the public API): texts too short for xlsxwriter to
    cut, finite numbers."""
    return all(
        len(v) <= _SAFE_TEXT_CHARS if isinstance(v, str) else v is None or math.isfinite(v)
        for v in values
    )


class _RowCells:
    """Stands in a sheet's cell table for the first cell of a body row: writes the whole row."""

    __slots__ = ("body", "index")

    def __init__(self, body: _Body, index: int) -> None:
        self.body, self.index = body, index


class _RowEnd:
    """Stands for the last cell of a body row (so that the row's spans are xlsxwriter's own):
    written with the row's first."""

    __slots__ = ()


_ROW_END = _RowEnd()


class _Body:
    """The columns of one sheet's table body, each as its non-blank rows, a code per row and the
    text of each code's value; rendered to XML, a string per row, when the sheet is written."""

    def __init__(self) -> None:
        # Per column: (column, cell type attribute, format, rows, codes, value texts).
        self.columns: list[tuple[int, str, Any, np.ndarray, np.ndarray, list[str]]] = []
        self.first_row = 0
        self.rows: list[str] = []

    def add(
        self,
        col: int,
        cell_type: str,
        fmt: Any,
        rows: np.ndarray,
        codes: np.ndarray,
        texts: list[str],
    ) -> None:
        self.columns.append((col, cell_type, fmt, rows, codes, texts))

    def row_span(self) -> tuple[int, int]:
        return (
            min(int(c[3][0]) for c in self.columns),
            max(int(c[3][-1]) for c in self.columns) + 1,
        )

    def row_markers(self) -> list[tuple[int, int, int]]:
        """Each row holding cells: (row, its first column, its last column)."""
        first, stop = self.row_span()
        self.first_row = first
        ordered = sorted(self.columns, key=lambda c: c[0])
        present = np.zeros((len(ordered), stop - first), dtype=bool)
        for i, column in enumerate(ordered):
            present[i, column[3] - first] = True
        cols = np.array([c[0] for c in ordered])
        has_cells = present.any(axis=0)
        lowest = cols[present.argmax(axis=0)]
        highest = cols[len(ordered) - 1 - present[::-1].argmax(axis=0)]
        where = np.flatnonzero(has_cells)
        return list(
            zip(
                (where + first).tolist(),
                lowest[where].tolist(),
                highest[where].tolist(),
                strict=True,
            )
        )

    def render(self) -> None:
        """Each row's cells as xlsxwriter writes them. Style numbers are given out as formats
        are first met, row by row and left to right: in that order here too."""
        by_first_cell = sorted(self.columns, key=lambda c: (int(c[3][0]), c[0]))
        styles = {id(c[2]): c[2]._get_xf_index() for c in by_first_cell}
        first, stop = self.row_span()
        cells = []
        for col, cell_type, fmt, rows, codes, texts in sorted(self.columns, key=lambda c: c[0]):
            ends = [f'" s="{styles[id(fmt)]}"{cell_type}><v>{t}</v></c>' for t in texts]
            start = f'<c r="{xl_col_to_name(col)}'
            column = np.full(stop - first, "", dtype=object)
            column[rows - first] = [
                f"{start}{row}{ends[code]}"
                for row, code in zip((rows + 1).tolist(), codes.tolist(), strict=True)
            ]
            cells.append(column.tolist())
        self.rows = ["".join(row) for row in zip(*cells, strict=True)]
        self.columns = []


class BulkWorksheet(Worksheet):
    """A worksheet that also takes a table body's columns whole (`write_body_column`)."""

    def __init__(self) -> None:
        super().__init__()
        self.body: _Body | None = None

    def write_body_column(
        self, first_row: int, col: int, kind: str, codes: np.ndarray, values: list[Any], fmt: Any
    ) -> None:
        """One column from `first_row` down: row i holds `values[codes[i]]` (code -1 and a
        None value: no cell), as `write_number`/`write_string`/`write_boolean` would write it
        (`kind` is the column's kind; `fmt` is not None)."""
        blank = np.array([v is None for v in values] + [True])[codes]
        where = np.flatnonzero(~blank)
        if not len(where):
            return
        codes = np.asarray(codes[where], dtype=np.intp)
        rows = where + first_row
        for row in (int(rows[0]), int(rows[-1])):
            self._check_dimensions(row, col)
        cell_type, texts = self._value_texts(kind, codes, values)
        if self.body is None:
            self.body = _Body()
        self.body.add(col, cell_type, fmt, rows, codes, texts)

    def _value_texts(
        self, kind: str, codes: np.ndarray, values: list[Any]
    ) -> tuple[str, list[str]]:
        if kind == "bool":
            return ' t="b"', ["1" if v else "0" for v in values]
        if kind not in ("text", "id"):
            return "", ["" if v is None else _NUMBER_TEXT % v for v in values]
        # Shared strings are numbered as first written, down the column: so here, and each
        # cell counts once in the table's total.
        strings = self.str_table
        texts = [""] * len(values)
        first_seen = pd.unique(codes)
        for code in first_seen.tolist():
            texts[code] = str(strings._get_shared_string_index(values[code]))
        strings.count += len(codes) - len(first_seen)
        return ' t="s"', texts

    def _write_sheet_data(self) -> None:
        if self.body is not None:
            table = self.table
            for row, first_col, last_col in self.body.row_markers():
                cells = table[row]
                cells[first_col] = _RowCells(self.body, row - self.body.first_row)
                if last_col != first_col:
                    cells[last_col] = _ROW_END
        super()._write_sheet_data()

    def _write_cell(self, row: int, col: int, cell: Any) -> None:
        kind = type(cell)
        if kind is _RowCells:
            body = cell.body
            if not body.rows:
                body.render()
            self.fh.write(body.rows[cell.index])
        elif kind is not _RowEnd:
            super()._write_cell(row, col, cell)
