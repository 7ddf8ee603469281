"""The Excel workbook: a Summary, every finding and one sheet per table, written in memory."""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from pkgreport.arrow_text import rows_at
from pkgreport.reports.filters import (
    excel_date_format,
    format_prose_date,
    is_blank,
    to_python,
)
from pkgreport.reports.model import (
    SHEET_NAME_MAX,
    Column,
    ReportContext,
    Table,
    workbook_attention_only,
)
from pkgreport.reports.workbook_bulk import BulkWorkbook, BulkWorksheet, bulk_available
from pkgreport.reports.workbook_cells import CellColumn, cell_column, clip, write_cells
from pkgreport.reports.workbook_styles import Styles

# Excel's hard limit on rows per sheet (header included).
EXCEL_MAX_ROWS = 1_048_576
# Rows above a table: title, description, note; the header is the row after them.
HEADER_ROW = 3
# Excel caps a header or footer at 255 characters, control codes included.
_FOOTER_MAX = 255
_DEFAULT_WIDTHS = {"money": 14, "int": 10, "date": 12, "datetime": 17, "percent": 9, "bool": 9}


def render_workbook(
    ctx: ReportContext, *, max_sheet_rows: int = EXCEL_MAX_ROWS, bulk: bool = True
) -> bytes:
    """The workbook as bytes; the same context always gives the same bytes.

    A table with more rows than a sheet holds (`max_sheet_rows`, injectable for tests) continues
    on sheets named "<sheet> (2)", "<sheet> (3)", ... each saying which rows it holds. Table
    bodies are written in bulk where `workbook_bulk` can (`bulk=False`: cell by cell through
    xlsxwriter's public API; the same bytes).
    """
    with cyclic_gc_paused():
        book = WorkbookInProgress(ctx, max_sheet_rows=max_sheet_rows, bulk=bulk)
        book.write_ahead(ctx)
        return book.finish(ctx)


# Cells of these kinds are numbers (or booleans). The workbook's shared-strings table numbers
# each text in the order it is first written, and nothing else depends on the order cells are
# written in, so the numbers can be written before the text around them.
_NUMBER_KINDS = frozenset({"money", "int", "percent", "date", "datetime", "bool"})


class WorkbookInProgress:
    """The workbook written in two passes: every sheet and the number cells of the tables, the
    Summary and the tables up to the first one left for later (`write_ahead`), then the rest in
    the order of the sheets (`finish`).

    A table left for later (`deferred`) may still change until `finish`, as long as it fills the
    same sheets; everything else must stay as `write_ahead` had it. The workbook's process thus
    starts while the first works out the figures per location (see `publish.py`). Build it with
    the collector paused (`cyclic_gc_paused`).
    """

    def __init__(
        self, ctx: ReportContext, *, max_sheet_rows: int = EXCEL_MAX_ROWS, bulk: bool = True
    ) -> None:
        self.buffer = io.BytesIO()
        self.bulk = bulk and bulk_available()
        sheet_class = BulkWorksheet if self.bulk else None
        book_class = BulkWorkbook if self.bulk else xlsxwriter.Workbook
        # Never let a cell that looks like a formula, URL or number become one: text stays text.
        self.workbook = book_class(
            self.buffer,
            {
                "in_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "default_date_format": excel_date_format(ctx.date_order),
            },
        )
        self.workbook.set_properties(
            {"title": ctx.title, "comments": "Written by pkgreport", "created": _created_at(ctx)}
        )
        self.styles = Styles(self.workbook, ctx)
        self.max_sheet_rows = max_sheet_rows
        self.summary = self.workbook.add_worksheet("Summary")
        used_names: set[str] = {"summary"}
        # Per table: the sheet it was planned under and the worksheets it fills.
        self.planned: list[tuple[str, list[Worksheet]]] = []
        for table in _tables(ctx):
            parts = _parts(_rows_kept(table, ctx.workbook_all_rows_max), max_sheet_rows)
            names = [_part_name(table.sheet, p, used_names) for p in range(1, parts + 1)]
            sheets = [self.workbook.add_worksheet(name, sheet_class) for name in names]
            self.planned.append((table.sheet, sheets))
        # Per table written in the first pass: the table, as kept, its columns and their cells.
        self.written: dict[int, tuple[Table, Table, list[Column], list[CellColumn]]] = {}
        # The Summary and this many tables (from the first) are written whole.
        self.whole: int | None = None

    def write_ahead(self, ctx: ReportContext, deferred: frozenset[str] = frozenset()) -> None:
        """The number cells of every table but the `deferred` ones, then, whole, the Summary and
        the tables before the first deferred one."""
        self.write_numbers(ctx, deferred)
        _write_summary(self.summary, ctx, self.styles)
        self.whole = 0
        for index, table in enumerate(_tables(ctx)):
            if table.key in deferred:
                break
            self.write_table(ctx, index, table)
            self.whole = index + 1

    def write_numbers(self, ctx: ReportContext, deferred: frozenset[str] = frozenset()) -> None:
        """The number cells of every table but those whose key is in `deferred`."""
        for index, table in enumerate(_tables(ctx)):
            if table.key in deferred:
                continue
            kept, columns, cells = _table_cells(table, ctx.workbook_all_rows_max)
            self.written[index] = (table, kept, columns, cells)
            bulk = self.bulk_for(cells)
            for span, ws in zip(self.spans(kept), self.planned[index][1], strict=True):
                for col, column in enumerate(columns):
                    if column.kind in _NUMBER_KINDS:
                        fmt = self.styles.format_for(column)
                        write_cells(
                            ws, HEADER_ROW + 1, col, column.kind, cells[col], span, fmt, bulk=bulk
                        )

    def finish(self, ctx: ReportContext) -> bytes:
        """Everything else, in the order of the sheets; then the workbook's bytes."""
        tables = _tables(ctx)
        if len(tables) != len(self.planned):
            raise ValueError("the context's tables are not those the workbook was started with")
        if self.whole is None:
            _write_summary(self.summary, ctx, self.styles)
        for index, table in enumerate(tables):
            if index < (self.whole or 0):
                self.check_unchanged(index, table)
            else:
                self.write_table(ctx, index, table)
        self.workbook.close()
        return self.buffer.getvalue()

    def bulk_for(self, cells: list[CellColumn]) -> bool:
        """Whether a table with these columns' cells has its body written in bulk."""
        return self.bulk and all(c.fits_bulk for c in cells)

    def check_unchanged(self, index: int, table: Table) -> None:
        if self.written[index][0] is not table:
            raise ValueError(f"table {table.key!r} changed after its numbers were written")

    def write_table(self, ctx: ReportContext, index: int, table: Table) -> None:
        """The table's sheets but the number cells the first pass wrote: title, notes, text
        cells, the Excel table with its header and total row, widths, highlight, printing."""
        number = index + 1
        if index in self.written:
            self.check_unchanged(index, table)
            _, kept, columns, cells = self.written[index]
            written = _NUMBER_KINDS
        else:
            kept, columns, cells = _table_cells(table, ctx.workbook_all_rows_max)
            written = frozenset()
        sheet, sheets = self.planned[index]
        spans = self.spans(kept)
        bulk = self.bulk_for(cells)
        if len(spans) != len(sheets) or sheet != table.sheet:
            raise ValueError(f"table {table.key!r} no longer fills the sheets it was given")
        for part, ((start, stop), ws) in enumerate(zip(spans, sheets, strict=True)):
            write_text(ws, 0, 0, kept.title, self.styles.title)
            write_text(ws, 1, 0, kept.description)
            following = sheets[part + 1].name if part + 1 < len(sheets) else None
            notes = _part_notes(kept, start, stop, following, split=len(sheets) > 1)
            if notes:
                write_text(ws, 2, 0, notes, self.styles.note)
            for col, column in enumerate(columns):
                if column.kind not in written:
                    fmt = self.styles.format_for(column)
                    write_cells(
                        ws,
                        HEADER_ROW + 1,
                        col,
                        column.kind,
                        cells[col],
                        (start, stop),
                        fmt,
                        bulk=bulk,
                    )
            _write_part(ws, kept, columns, start, stop, number * 1000 + part, self.styles)
            _set_up_printing(ws, ctx, header_row=HEADER_ROW)

    def spans(self, kept: Table) -> list[tuple[int, int]]:
        """The rows (start, stop) of each sheet a table fills."""
        capacity = _capacity(kept, self.max_sheet_rows)
        n_rows = len(kept.frame)
        return [
            (start, min(n_rows, start + capacity)) for start in range(0, max(n_rows, 1), capacity)
        ]


def _tables(ctx: ReportContext) -> list[Table]:
    """The tables in the order of their sheets, after the Summary."""
    return [ctx.findings, *ctx.tables]


def _capacity(table: Table, max_sheet_rows: int) -> int:
    capacity = max_sheet_rows - HEADER_ROW - 1 - (1 if table.total_row else 0)
    if capacity < 1:
        raise ValueError(f"max_sheet_rows {max_sheet_rows} leaves no room for data")
    return capacity


def _parts(kept: Table, max_sheet_rows: int) -> int:
    """How many sheets a table fills (one when it has no rows)."""
    return max(1, -(-len(kept.frame) // _capacity(kept, max_sheet_rows)))


def _table_cells(table: Table, all_rows_max: int) -> tuple[Table, list[Column], list[CellColumn]]:
    """The table as its sheets hold it, the columns written and each column's cells."""
    kept = _rows_kept(table, all_rows_max)
    columns = _sheet_columns(kept)
    return kept, columns, [cell_column(_sheet_values(kept, c), c.kind) for c in columns]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while the workbook is built and written.

    xlsxwriter holds a small object for every cell until the file is written. None of them is
    garbage, yet each few hundred allocations set the collector off, and its full passes walk
    them all again: about 15 % of the workbook's time at 600,000 cells. Reference counting still
    frees everything as usual; only the search for reference cycles waits until the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _created_at(ctx: ReportContext) -> datetime:
    """The document's creation time: the caller's `generated_at` if it parses, else as_of midnight."""
    if ctx.generated_at:
        try:
            stamp = datetime.fromisoformat(ctx.generated_at)
        except ValueError:
            stamp = None
        if stamp is not None:
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(UTC).replace(tzinfo=None)
            return stamp
    return datetime.combine(ctx.as_of, time(0, 0))


def write_text(ws: Worksheet, row: int, col: int, value: Any, fmt: Any = None) -> None:
    """Write `value` as a text cell: never a formula, URL or number, whatever it starts with."""
    ws.write_string(row, col, clip(str(value)), fmt)


# ---------------------------------------------------------------------------------------- Summary


def _write_summary(ws: Worksheet, ctx: ReportContext, st: Styles) -> None:
    """The Summary sheet: title and period, then its sections one under another."""
    order = ctx.date_order
    write_text(ws, 0, 0, ctx.title, st.title)
    period = f"{format_prose_date(ctx.period_start, order)} to {format_prose_date(ctx.period_end, order)}"
    write_text(ws, 1, 0, f"As of {format_prose_date(ctx.as_of, order)}; period {period}")
    if ctx.generated_at:
        write_text(ws, 2, 0, f"Generated {ctx.generated_at}", st.note)
    row = 4
    for write_section in (
        _write_headlines,
        _write_finding_kinds,
        _write_skipped,
        _write_inputs,
        _write_settings,
    ):
        row = write_section(ws, row, ctx, st)
    ws.set_column(0, 0, 42)
    ws.set_column(1, 1, 24)
    ws.set_column(2, 2, 28)
    ws.set_column(3, 3, _WHAT_TO_DO_WIDTH)
    _set_up_printing(ws, ctx, pages_tall=1)


def _section_heading(
    ws: Worksheet, row: int, title: str, headers: Sequence[str], st: Styles
) -> int:
    """A section's title and header row; returns the row its first line goes in."""
    write_text(ws, row, 0, title, st.heading)
    for col, header in enumerate(headers):
        write_text(ws, row + 1, col, header, st.bold)
    return row + 2


# Each Summary section is written from `row` down and returns the row the next one starts at
# (after a blank row).


def _write_headlines(ws: Worksheet, row: int, ctx: ReportContext, st: Styles) -> int:
    row = _section_heading(ws, row, "Headline figures", ["Figure", "Value", "Detail"], st)
    for headline in ctx.headlines:
        write_text(ws, row, 0, headline.label)
        if headline.kind == "money":
            ws.write_number(row, 1, headline.value / 100, st.by_kind["money"])
        else:
            ws.write_number(row, 1, headline.value, st.by_kind["int"])
        write_text(ws, row, 2, headline.detail)
        row += 1
    return row + 1


def _write_finding_kinds(ws: Worksheet, row: int, ctx: ReportContext, st: Styles) -> int:
    headers = ["Finding", "Count", "Severity", "What to do"]
    row = _section_heading(ws, row, "Findings by kind", headers, st)
    for kind in ctx.finding_kinds:
        write_text(ws, row, 0, kind.title, st.top)
        ws.write_number(row, 1, kind.count, st.top_int)
        write_text(ws, row, 2, kind.severity, st.top)
        write_text(ws, row, 3, kind.what_to_do, st.wrap)
        fit_wrapped_row(ws, row, kind.what_to_do, _WHAT_TO_DO_WIDTH)
        row += 1
    if not ctx.finding_kinds:
        none = "No findings in the checks that ran." if ctx.unchecked else "No findings."
        write_text(ws, row, 0, none, st.note)
        row += 1
    if ctx.unchecked:
        write_text(ws, row, 0, ctx.unchecked, st.note)
        row += 1
    return row + 1


def _write_skipped(ws: Worksheet, row: int, ctx: ReportContext, st: Styles) -> int:
    if not ctx.skipped:
        return row
    row = _section_heading(ws, row, "Sections left out", ["Section", "Why"], st)
    for name, reason in ctx.skipped:
        write_text(ws, row, 0, name)
        write_text(ws, row, 1, reason)
        row += 1
    return row + 1


def _write_inputs(ws: Worksheet, row: int, ctx: ReportContext, st: Styles) -> int:
    row = _section_heading(ws, row, "Input files", ["File", "Kind", "Rows", "SHA-256"], st)
    for item in ctx.inputs:
        write_text(ws, row, 0, item.get("file", ""))
        write_text(ws, row, 1, item.get("kind", ""))
        rows = to_python(item.get("rows"))
        if isinstance(rows, int):
            ws.write_number(row, 2, rows, st.by_kind["int"])
        write_text(ws, row, 3, item.get("sha256", ""), st.text)
        row += 1
    return row + 1


def _write_settings(ws: Worksheet, row: int, ctx: ReportContext, st: Styles) -> int:
    row = _section_heading(ws, row, "Settings", ["Setting", "Value"], st)
    for name, value in ctx.settings:
        write_text(ws, row, 0, name)
        write_text(ws, row, 1, value, st.text)
        row += 1
    return row


_WHAT_TO_DO_WIDTH = 66  # characters
_ROW_POINTS = 15  # the default row height


def fit_wrapped_row(ws: Worksheet, row: int, text: str, width: int) -> None:
    """A row tall enough for its wrapped text: spreadsheet programs do not grow a row written
    by xlsxwriter, so wrapped lines would print over the next row. Words wrap a little before
    the column's width, hence the margin of a few characters."""
    lines = -(-len(text) // (width - 6))  # ceiling division
    if lines > 1:
        ws.set_row(row, _ROW_POINTS * lines)


def _set_up_printing(
    ws: Worksheet, ctx: ReportContext, *, pages_tall: int = 0, header_row: int | None = None
) -> None:
    as_of = format_prose_date(ctx.as_of, ctx.date_order)
    set_up_printing(ws, ctx.title, as_of, pages_tall=pages_tall, header_row=header_row)


def set_up_printing(
    ws: Worksheet, title: str, as_of: str, *, pages_tall: int = 0, header_row: int | None = None
) -> None:
    """Landscape, one page wide (`pages_tall` 0 = as many as needed), the header row repeated on
    every page, and a footer with the report's title, the sheet (&A), as-of date and page numbers."""
    ws.set_landscape()
    ws.fit_to_pages(1, pages_tall)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    if header_row is not None:
        ws.repeat_rows(header_row)
    # "&" starts a control code in a header or footer: a literal one is doubled.
    title = title.replace("&", "&&")
    ws.set_footer(f"&L{title}&C&A, as of {as_of}&RPage &P of &N"[:_FOOTER_MAX])


# ----------------------------------------------------------------------------------------- Tables


# The highlight flag as a person reads it (a filterable column): a word, not TRUE/FALSE.
FLAG_TITLE = "Needs attention"
FLAG_WORD = "yes"


def _sheet_columns(table: Table) -> list[Column]:
    """The columns written: the table's own, plus the highlight flag when it isn't among them."""
    columns = list(table.columns)
    if table.highlight is not None and table.highlight not in {c.key for c in columns}:
        taken = {c.title.casefold() for c in columns}
        title = FLAG_TITLE if FLAG_TITLE.casefold() not in taken else "Highlighted"
        columns.append(Column(table.highlight, title, "text", width=len(title) + 3))
    return columns


def _sheet_values(table: Table, column: Column) -> pd.Series:
    """A column's values as written; an added highlight flag becomes "yes" or blank."""
    series = table.frame[column.key]
    if column.key == table.highlight and column.kind == "text":
        return series.map(lambda flag: None if is_blank(flag) or not flag else FLAG_WORD)
    return series


def _part_name(base: str, part: int, used: set[str]) -> str:
    if part == 1 and base.casefold() not in used:
        name = base
    else:
        n = part
        while True:
            suffix = f" ({n})"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
            if name.casefold() not in used:
                break
            n += 1
    used.add(name.casefold())
    return name


def _rows_kept(table: Table, all_rows_max: int) -> Table:
    """The table as its sheets hold it: a long table whose every row is in a command's CSV keeps
    only the rows that need attention, and says so above them."""
    if table.attention is None or not workbook_attention_only(table, all_rows_max):
        return table
    needs = table.frame[table.attention].fillna(False).to_numpy(dtype=bool)
    # The text of the rows kept read by Arrow: taken, each one's page would be copied in the
    # workbook's process (`arrow_text.rows_at`).
    kept = rows_at(table.frame, np.flatnonzero(needs)).reset_index(drop=True)
    note = (
        f"This sheet holds the {len(kept):,} of {len(table.frame):,} rows that need attention; "
        f'every row is in the CSV from "{table.all_rows_in} <exports folder>".'
        + (" The total row adds up these rows only." if table.total_row else "")
    )
    return replace(table, frame=kept, note=" ".join(filter(None, [table.note, note])))


def _part_notes(table: Table, start: int, stop: int, following: str | None, *, split: bool) -> str:
    """The note above one sheet's table: the table's own, which rows a split sheet holds, or
    that there are none."""
    n_rows = len(table.frame)
    notes = [table.note] if table.note else []
    if split:
        where = f"rows {start + 1:,} to {stop:,} of {n_rows:,}"
        if following is not None:
            where += f"; continued on sheet '{following}'"
        notes.append(
            f"Too many rows for one Excel sheet: this sheet holds {where}."
            + (" The total row adds up this sheet only." if table.total_row else "")
        )
    if n_rows == 0:
        notes.append("No rows.")
    return " ".join(notes)


def _write_part(
    ws: Worksheet,
    table: Table,
    columns: list[Column],
    start: int,
    stop: int,
    table_id: int,
    st: Styles,
) -> None:
    """Header, total row, table, filter and highlight around one sheet's data rows."""
    first_data = HEADER_ROW + 1
    n = stop - start
    # Real rows (0-based); an Excel table needs a data row even when there is nothing to show.
    last_data = first_data + max(n, 1) - 1
    name = f"tbl_{re.sub(r'[^A-Za-z0-9_]', '_', table.key)}_{table_id}"
    ws.add_table(
        HEADER_ROW,
        0,
        last_data + (1 if table.total_row else 0),
        len(columns) - 1,
        {
            "name": name,
            "columns": _column_specs(table, columns, start, stop, last_data, st),
            "total_row": table.total_row,
            "style": "Table Style Light 9",
        },
    )
    for col, column in enumerate(columns):
        width = column.width or _auto_width(table.frame[column.key], column)
        ws.set_column(col, col, width)
    ws.freeze_panes(HEADER_ROW + 1, 0)
    if table.highlight is not None and n > 0:
        flag_col = [c.key for c in columns].index(table.highlight)
        letter = xl_col_to_name(flag_col)
        ws.conditional_format(
            first_data,
            0,
            last_data,
            len(columns) - 1,
            {
                "type": "formula",
                "criteria": f'=${letter}{first_data + 1}="{FLAG_WORD}"',
                "format": st.highlight,
            },
        )


def _column_specs(
    table: Table, columns: list[Column], start: int, stop: int, last_data: int, st: Styles
) -> list[dict[str, Any]]:
    """Each table column's header, format and total (a SUBTOTAL over the sheet's data rows)."""
    first_data = HEADER_ROW + 1
    specs: list[dict[str, Any]] = []
    for idx, column in enumerate(columns):
        spec: dict[str, Any] = {"header": column.title, "format": st.format_for(column)}
        if table.total_row:
            if column.summed:
                cents_or_count = _column_sum(table.frame[column.key].iloc[start:stop])
                # A plain range, not the structured [Column name]: LibreOffice reads
                # "SUBTOTAL(109,[Sessions paid])" as Err:508 when the name has a space.
                letter = xl_col_to_name(idx)
                spec["total_function"] = (
                    f"=SUBTOTAL(109,{letter}{first_data + 1}:{letter}{last_data + 1})"
                )
                spec["total_value"] = (
                    cents_or_count / 100 if column.kind == "money" else cents_or_count
                )
            elif idx == 0:
                spec["total_string"] = "Total"
        specs.append(spec)
    return specs


def _column_sum(series: pd.Series) -> int:
    # Sum as Python ints: exact, and no int64 overflow on huge totals.
    values = series.dropna().to_numpy()
    if values.dtype.kind in "iu":
        return sum(values.tolist())  # tolist() already gives Python ints
    return sum(int(v) for v in values.tolist())


def _auto_width(series: pd.Series, column: Column) -> int:
    title = len(column.title) + 3  # room for the filter button
    if column.kind in _DEFAULT_WIDTHS:
        return max(title, _DEFAULT_WIDTHS[column.kind])
    # Python-backed text: pandas' default string type (pyarrow's when installed) cannot hold a
    # lone surrogate, which a cell may.
    sample = series.head(500).dropna().astype(pd.StringDtype("python"))
    longest = int(sample.str.len().max()) if len(sample) else 0
    return max(8, min(60, max(title, longest + 2)))
