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

import io
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell
from xlsxwriter.worksheet import Worksheet

from pkgreport.memory import release_freed_memory

# A body of this many cells, once written into its sheet's XML, and an XML part of this many
# characters, before it is zipped, first give back the memory the writing let go: the C heap
# keeps what is freed, and writing the 1M-row month's workbook let it hold about 60 MB more
# than it used (`memory.release_freed_memory`, a few milliseconds each, about 20 times).
RELEASE_CELLS = 50_000
RELEASE_CHARS = 1_000_000
# The xlsxwriter releases whose sheet writing this module mirrors (major.minor).
BULK_RELEASES = ("3.2", "3.3")
# A text of up to this many characters is never cut by xlsxwriter (32,767 UTF-16 units); a
# longer one sends its table through the public API, which cuts it as its release does.
_SAFE_TEXT_CHARS = 32_767 // 2
# How xlsxwriter writes a number cell's value ("%.16G"; an int is formatted as a float).
_NUMBER_TEXT = "%.16G"
# The shared strings joined for the bulk writer are parted by this character; any string that
# holds it is a control character xlsxwriter escapes, written one by one.
_PART = "\x00"
# What makes xlsxwriter write a shared string other than as `<si><t>text</t></si>` with `&`,
# `<` and `>` escaped: a literal `_xHHHH_` or a control character it escapes, a non-character,
# leading or trailing white space (`xml:space`), or a rich string's `<r>`. Matched in the
# joined strings, the parting characters looked at, not taken.
_WRITTEN_APART = re.compile(
    r"_x[0-9a-fA-F]{4}_|[\x01-\x08\x0b-\x1f\ufffe\uffff]|(?<=\x00)\s|\s(?=\x00)|(?<=\x00)<r>"
)


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


class _Cell:
    """One body cell in a sheet's cell table, written as xlsxwriter writes its own (when a body
    row holds more than the body's cells)."""

    __slots__ = ("cell_type", "format", "text")

    def __init__(self, cell_type: str, fmt: Any, text: str) -> None:
        self.cell_type, self.format, self.text = cell_type, fmt, text


class _Body:
    """The columns of one sheet's table body, each as its non-blank rows, a code per row and the
    text of each code's value; rendered to XML, a string per row, as the sheet is written."""

    def __init__(self) -> None:
        # Per column: (column, cell type attribute, format, rows, codes, value texts).
        self.columns: list[tuple[int, str, Any, np.ndarray, np.ndarray, list[str]]] = []

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

    def row_extents(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row holding cells (ascending), its first column and its last."""
        first, stop = self.row_span()
        ordered = sorted(self.columns, key=lambda c: c[0])
        present = np.zeros((len(ordered), stop - first), dtype=bool)
        for i, column in enumerate(ordered):
            present[i, column[3] - first] = True
        cols = np.array([c[0] for c in ordered])
        where = np.flatnonzero(present.any(axis=0))
        lowest = cols[present.argmax(axis=0)][where]
        highest = cols[len(ordered) - 1 - present[::-1].argmax(axis=0)][where]
        return where + first, lowest, highest

    def render(self, rows: np.ndarray) -> list[str]:
        """The cells of each row in `rows` (those holding cells, ascending) as xlsxwriter
        writes them. Style numbers are given out as formats are first met, row by row and left
        to right: in that order here too."""
        by_first_cell = sorted(self.columns, key=lambda c: (int(c[3][0]), c[0]))
        styles = {id(c[2]): c[2]._get_xf_index() for c in by_first_cell}
        first = int(rows[0])
        cells = []
        for col, cell_type, fmt, at, codes, texts in sorted(self.columns, key=lambda c: c[0]):
            ends = [f'" s="{styles[id(fmt)]}"{cell_type}><v>{t}</v></c>' for t in texts]
            start = f'<c r="{xl_col_to_name(col)}'
            column = np.full(int(rows[-1]) - first + 1, "", dtype=object)
            column[at - first] = [
                f"{start}{row}{ends[code]}"
                for row, code in zip((at + 1).tolist(), codes.tolist(), strict=True)
            ]
            cells.append(column[rows - first].tolist())
        self.columns = []
        return ["".join(row) for row in zip(*cells, strict=True)]


class _TableCells(dict[tuple[int, int], str]):
    """Stands in for a sheet's record of its tables' cells while xlsxwriter adds the first
    table: given each cell of the range with the range's name, it keeps the name alone;
    looked up, it holds none."""

    __slots__ = ("cell_range",)

    def __init__(self) -> None:
        super().__init__()
        self.cell_range = ""

    def __setitem__(self, cell: tuple[int, int], cell_range: str) -> None:
        self.cell_range = cell_range


class BulkWorksheet(Worksheet):
    """A worksheet that also takes a table body's columns whole (`write_body_column`)."""

    def __init__(self) -> None:
        super().__init__()
        self.body: _Body | None = None
        self._spans: dict[int, str] | None = None
        # The tables whose cells xlsxwriter's record of them (`table_cells`) does not hold yet.
        self._unrecorded: list[str] = []

    def add_table(self, *args: Any, **kwargs: Any) -> Any:
        """xlsxwriter's `add_table`. It records every cell of the table's range (`table_cells`),
        to refuse a later table or merged range over it: for a sheet's first table (nothing to
        overlap yet) only the range is kept, and its cells are recorded once another table or
        merged range comes (the 1M-row month's tables: 0.09 s of CPU against 0.15 s, and no
        dictionary entry per cell)."""
        cells: dict[tuple[int, int], str] = self.table_cells  # type: ignore[has-type]
        if cells or self.merged_cells or self._unrecorded:
            self._record_tables()
            return super().add_table(*args, **kwargs)
        unrecorded = _TableCells()
        self.table_cells: dict[tuple[int, int], str] = unrecorded
        try:
            return super().add_table(*args, **kwargs)
        finally:
            self.table_cells = cells
            if unrecorded.cell_range:
                self._unrecorded.append(unrecorded.cell_range)

    def merge_range(self, *args: Any, **kwargs: Any) -> Any:
        self._record_tables()
        return super().merge_range(*args, **kwargs)

    def _record_tables(self) -> None:
        """Each cell of the tables added as a range alone, recorded as xlsxwriter records it."""
        cells: dict[tuple[int, int], str] = self.table_cells  # type: ignore[has-type]
        for cell_range in self._unrecorded:
            first, _, last = cell_range.partition(":")
            first_row, first_col = xl_cell_to_rowcol(first)
            last_row, last_col = xl_cell_to_rowcol(last or first)
            for row in range(first_row, last_row + 1):
                for col in range(first_col, last_col + 1):
                    cells[(row, col)] = cell_range
        self._unrecorded = []

    def write_body_column(
        self, first_row: int, col: int, kind: str, codes: np.ndarray, values: list[Any], fmt: Any
    ) -> None:
        """One column from `first_row` down: row i holds `values[codes[i]]` (code -1 and a
        None value: no cell), as `write_number`/`write_string`/`write_boolean` would write it
        (`kind` is the column's kind; `fmt` is not None). Each column of a sheet is written
        once; a cell outside the sheet is left out, as those methods leave it."""
        blank = np.array([v is None for v in values] + [True])[codes]
        where = np.flatnonzero(~blank)
        where = where[(where < self.xls_rowmax - first_row) & (first_row + where >= 0)]
        if not len(where) or not 0 <= col < self.xls_colmax:
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
        body = self.body
        if body is not None and not self._rows_plain(body):
            # A body row holds another cell, settings of its own (`set_row`) or a comment: its
            # cells go into the sheet's cell table for xlsxwriter to write one by one.
            table = self.table
            for col, cell_type, fmt, rows, codes, texts in body.columns:
                for row, code in zip(rows.tolist(), codes.tolist(), strict=True):
                    if col in table[row]:
                        cell = xl_rowcol_to_cell(row, col)
                        raise ValueError(f"cell {cell} is written over a table body's cell")
                    table[row][col] = _Cell(cell_type, fmt, texts[code])
            self.body = None
        super()._write_sheet_data()

    def _rows_plain(self, body: _Body) -> bool:
        """Whether the body's rows hold nothing but its cells: no other cell, no settings of
        their own (`set_row`), no comment."""
        first, stop = body.row_span()
        settings = getattr(self, "row_info", None)
        if settings is None:  # xlsxwriter 3.2
            settings = getattr(self, "set_rows", {})
        return not any(
            first <= row < stop for keyed in (self.table, settings, self.comments) for row in keyed
        )

    def _write_rows(self) -> None:
        """The rows above the body and below it as xlsxwriter writes them; the body's rows
        here, each with xlsxwriter's own row element for a row without settings."""
        body = self.body
        if body is None:
            super()._write_rows()
            return
        rows, lowest, highest = body.row_extents()
        super()._calculate_spans()  # the rows around the body
        spans = self._with_body_spans(rows, lowest, highest)
        lowest_row: int = self.dim_rowmin  # type: ignore[has-type]
        highest_row: int = self.dim_rowmax  # type: ignore[has-type]
        self._spans = spans
        try:
            if lowest_row < rows[0]:
                self.dim_rowmax = int(rows[0]) - 1
                super()._write_rows()
            self._write_body_rows(body, rows, spans)
            if highest_row > rows[-1]:
                self.dim_rowmin, self.dim_rowmax = int(rows[-1]) + 1, highest_row
                super()._write_rows()
        finally:
            self.dim_rowmin, self.dim_rowmax = lowest_row, highest_row
            self._spans = None

    def _calculate_spans(self) -> None:
        spans = getattr(self, "_spans", None)
        if spans is not None:
            self.row_spans = spans  # the whole sheet's, body included
        else:
            super()._calculate_spans()

    def _with_body_spans(
        self, rows: np.ndarray, lowest: np.ndarray, highest: np.ndarray
    ) -> dict[int, str]:
        """The spans of each block of 16 rows ("first:last" column, from 1), body included."""
        blocks, starts = np.unique(rows // 16, return_index=True)
        low = np.minimum.reduceat(lowest, starts)
        high = np.maximum.reduceat(highest, starts)
        spans = dict(self.row_spans)
        for block, first, last in zip(blocks.tolist(), low.tolist(), high.tolist(), strict=True):
            if block in spans:
                before = [int(n) - 1 for n in spans[block].split(":")]
                first, last = min(first, before[0]), max(last, before[1])
            spans[block] = f"{first + 1}:{last + 1}"
        return spans

    def _write_body_rows(self, body: _Body, rows: np.ndarray, spans: dict[int, str]) -> None:
        # xlsxwriter's element for a row without settings, with a stand-in number and spans.
        fh: Any = self.fh  # type: ignore[has-type]
        self.fh = io.StringIO()
        try:
            self._write_row(-2, "\x00")
            element = self.fh.getvalue()
        finally:
            self.fh = fh
        head, rest = element.split('r="-1"')
        middle, tail = rest.split('spans="\x00"')
        n_cells = sum(len(column[3]) for column in body.columns)
        fh.write(
            "".join(
                f'{head}r="{row + 1}"{middle}spans="{spans[row // 16]}"{tail}{cells}</row>'
                for row, cells in zip(rows.tolist(), body.render(rows), strict=True)
            )
        )
        if n_cells >= RELEASE_CELLS:
            release_freed_memory()  # the body's cells and rows, let go (see RELEASE_CELLS)

    def _write_cell(self, row: int, col: int, cell: Any) -> None:
        if type(cell) is _Cell:
            style = cell.format._get_xf_index()
            self.fh.write(
                f'<c r="{xl_rowcol_to_cell(row, col)}" s="{style}"{cell.cell_type}>'
                f"<v>{cell.text}</v></c>"
            )
        else:
            super()._write_cell(row, col, cell)


class BulkWorkbook(xlsxwriter.Workbook):
    """A workbook whose shared-strings table is written in bulk (`BulkSharedStrings`)."""

    def _get_packager(self) -> Packager:
        return _BulkPackager()


class _PackagePart(io.StringIO):
    """One XML part of the package, written in memory. xlsxwriter writes every part, then reads
    each once to zip it, and keeps them all until the last is zipped: this one gives its text
    up as it is read (about 26 MB of parts at 1M rows, the peak of the workbook's process), and
    a large one first gives back what zipping the one before let go (see RELEASE_CELLS)."""

    def getvalue(self) -> str:
        text = super().getvalue()
        self.close()
        if len(text) >= RELEASE_CHARS:
            release_freed_memory()
        return text


class _BulkPackager(Packager):
    def _filename(self, xml_filename: str) -> Any:
        # xlsxwriter's own (3.2 and 3.3), with a part given up once read.
        if not self.in_memory:
            return super()._filename(xml_filename)
        part = _PackagePart()
        self.filenames.append((part, xml_filename, False))
        return part

    def _write_shared_strings_file(self) -> None:
        # xlsxwriter's own (3.2 and 3.3), with the bulk writer of the strings.
        sst = BulkSharedStrings()
        sst.string_table = self.workbook.str_table
        if not self.workbook.str_table.count:
            return
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


class BulkSharedStrings(SharedStrings):
    """The shared-strings table written as xlsxwriter writes it, string by string, but in one
    pass over the strings joined: those xlsxwriter writes as they are (`&`, `<`, `>` escaped)
    are escaped together; only the others (`_WRITTEN_APART`) go through its own writer."""

    def _write_sst_strings(self) -> None:
        strings: list[Any] = self.string_table.string_array
        try:
            joined = _PART + _PART.join(strings) + _PART
        except TypeError:  # not all text: xlsxwriter writes them
            super()._write_sst_strings()
            return
        if joined.count(_PART) != len(strings) + 1:  # a string holds the parting character
            super()._write_sst_strings()
            return
        escaped = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        elements = [f"<si><t>{text}</t></si>" for text in escaped[1:-1].split(_PART)]
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        starts = np.cumsum(lengths + 1) - lengths  # each string's first character in `joined`
        found = [m.start() for m in _WRITTEN_APART.finditer(joined)]
        apart = np.unique(np.searchsorted(starts, np.array(found, dtype=np.int64), "right") - 1)
        fh: Any = self.fh  # type: ignore[has-type]
        try:
            for index in apart.tolist():
                self.fh = io.StringIO()
                self._write_si(strings[index])
                elements[index] = self.fh.getvalue()
        finally:
            self.fh = fh
        fh.write("".join(elements))
