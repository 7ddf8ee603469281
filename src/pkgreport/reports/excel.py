"""The Excel workbook: a Summary, every finding and one sheet per table, written in memory."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import datetime, time, timezone
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from pkgreport.reports.filters import (
    excel_date_format,
    excel_money_format,
    format_date,
    is_blank,
    to_python,
)
from pkgreport.reports.model import SHEET_NAME_MAX, Column, ReportContext, Table

# Excel's hard limit on rows per sheet (header included).
EXCEL_MAX_ROWS = 1_048_576
# Excel's limit on characters in one cell; longer text is cut rather than dropped.
EXCEL_MAX_CELL_CHARS = 32_767
# Rows above a table: title, description, note; the header is the row after them.
HEADER_ROW = 3
_EXCEL_EPOCH = np.datetime64("1899-12-30T00:00:00", "ns")
_DEFAULT_WIDTHS = {"money": 14, "int": 10, "date": 12, "datetime": 17, "percent": 9, "bool": 9}


def render_workbook(ctx: ReportContext, *, max_sheet_rows: int = EXCEL_MAX_ROWS) -> bytes:
    """The workbook as bytes; the same context always gives the same bytes.

    A table with more rows than a sheet holds (`max_sheet_rows`, injectable for tests) continues
    on sheets named "<sheet> (2)", "<sheet> (3)", ... each saying which rows it holds.
    """
    buffer = io.BytesIO()
    # Never let a cell that looks like a formula, URL or number become one: text stays text.
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": excel_date_format(ctx.date_order),
        },
    )
    workbook.set_properties(
        {"title": ctx.title, "comments": "Written by pkgreport", "created": _created_at(ctx)}
    )
    styles = _Styles(workbook, ctx)
    _write_summary(workbook.add_worksheet("Summary"), ctx, styles)
    used_names: set[str] = {"summary"}
    for number, table in enumerate([ctx.findings, *ctx.tables], start=1):
        _write_table(workbook, table, number, styles, used_names, max_sheet_rows)
    workbook.close()
    return buffer.getvalue()


def _created_at(ctx: ReportContext) -> datetime:
    """The document's creation time: the caller's `generated_at` if it parses, else as_of midnight."""
    if ctx.generated_at:
        try:
            stamp = datetime.fromisoformat(ctx.generated_at)
        except ValueError:
            stamp = None
        if stamp is not None:
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
            return stamp
    return datetime.combine(ctx.as_of, time(0, 0))


class _Styles:
    """Every cell format the workbook uses, created once."""

    def __init__(self, workbook: Workbook, ctx: ReportContext) -> None:
        date_fmt = excel_date_format(ctx.date_order)
        money_fmt = excel_money_format(ctx.currency_symbol)
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.heading = workbook.add_format({"bold": True, "font_size": 12})
        self.bold = workbook.add_format({"bold": True})
        self.note = workbook.add_format({"italic": True, "font_color": "#595959"})
        self.text = workbook.add_format({"num_format": "@"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.highlight = workbook.add_format({"bg_color": "#FFE699"})
        self.by_kind = {
            "text": self.text,
            "id": self.text,
            "money": workbook.add_format({"num_format": money_fmt}),
            "int": workbook.add_format({"num_format": "#,##0"}),
            "date": workbook.add_format({"num_format": date_fmt}),
            "datetime": workbook.add_format({"num_format": date_fmt + " hh:mm"}),
            "percent": workbook.add_format({"num_format": "0%"}),
            "bool": workbook.add_format({"align": "center"}),
        }


def write_text(ws: Worksheet, row: int, col: int, value: Any, fmt: Any = None) -> None:
    """Write `value` as a text cell: never a formula, URL or number, whatever it starts with."""
    text = str(value)
    if len(text) > EXCEL_MAX_CELL_CHARS:
        text = text[: EXCEL_MAX_CELL_CHARS - 1] + "…"
    ws.write_string(row, col, text, fmt)


# ---------------------------------------------------------------------------------------- Summary


def _write_summary(ws: Worksheet, ctx: ReportContext, st: _Styles) -> None:
    order = ctx.date_order
    write_text(ws, 0, 0, ctx.title, st.title)
    period = f"{format_date(ctx.period_start, order)} to {format_date(ctx.period_end, order)}"
    write_text(ws, 1, 0, f"As of {format_date(ctx.as_of, order)}; period {period}")
    row = 2
    if ctx.generated_at:
        write_text(ws, row, 0, f"Generated {ctx.generated_at}", st.note)
    row += 2

    def section(title: str, headers: Sequence[str]) -> None:
        nonlocal row
        write_text(ws, row, 0, title, st.heading)
        row += 1
        for col, header in enumerate(headers):
            write_text(ws, row, col, header, st.bold)
        row += 1

    section("Headline figures", ["Figure", "Value", "Detail"])
    for headline in ctx.headlines:
        write_text(ws, row, 0, headline.label)
        if headline.kind == "money":
            ws.write_number(row, 1, headline.value / 100, st.by_kind["money"])
        else:
            ws.write_number(row, 1, headline.value, st.by_kind["int"])
        write_text(ws, row, 2, headline.detail)
        row += 1
    row += 1

    section("Findings by kind", ["Finding", "Count", "Severity", "Code", "What to do"])
    for kind in ctx.finding_kinds:
        write_text(ws, row, 0, kind.title)
        ws.write_number(row, 1, kind.count, st.by_kind["int"])
        write_text(ws, row, 2, kind.severity)
        write_text(ws, row, 3, kind.code)
        write_text(ws, row, 4, kind.what_to_do)
        row += 1
    if not ctx.finding_kinds:
        write_text(ws, row, 0, "No findings.", st.note)
        row += 1
    row += 1

    if ctx.skipped:
        section("Sections left out", ["Section", "Why"])
        for name, reason in ctx.skipped:
            write_text(ws, row, 0, name)
            write_text(ws, row, 1, reason)
            row += 1
        row += 1

    section("Input files", ["File", "Kind", "Rows", "SHA-256"])
    for item in ctx.inputs:
        write_text(ws, row, 0, item.get("file", ""))
        write_text(ws, row, 1, item.get("kind", ""))
        rows = to_python(item.get("rows"))
        if isinstance(rows, int):
            ws.write_number(row, 2, rows, st.by_kind["int"])
        write_text(ws, row, 3, item.get("sha256", ""), st.text)
        row += 1
    row += 1

    section("Settings", ["Setting", "Value"])
    for name, value in ctx.settings:
        write_text(ws, row, 0, name)
        write_text(ws, row, 1, value, st.text)
        row += 1

    ws.set_column(0, 0, 42)
    ws.set_column(1, 1, 18)
    ws.set_column(2, 2, 40)
    ws.set_column(3, 3, 66)
    ws.set_column(4, 4, 70)


# ----------------------------------------------------------------------------------------- Tables


def _sheet_columns(table: Table) -> list[Column]:
    """The columns written: the table's own, plus the highlight flag when it isn't among them."""
    columns = list(table.columns)
    if table.highlight is not None and table.highlight not in {c.key for c in columns}:
        columns.append(Column(table.highlight, "Flagged", "bool"))
    return columns


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


def _write_table(
    workbook: Workbook,
    table: Table,
    number: int,
    st: _Styles,
    used_names: set[str],
    max_sheet_rows: int,
) -> None:
    columns = _sheet_columns(table)
    total = table.total_row
    capacity = max_sheet_rows - HEADER_ROW - 1 - (1 if total else 0)
    if capacity < 1:
        raise ValueError(f"max_sheet_rows {max_sheet_rows} leaves no room for data")
    n_rows = len(table.frame)
    parts = max(1, -(-n_rows // capacity))
    writers = [_column_values(table.frame[c.key], c.kind) for c in columns]
    names = [_part_name(table.sheet, p, used_names) for p in range(1, parts + 1)]
    for part in range(parts):
        start = part * capacity
        stop = min(n_rows, start + capacity)
        ws = workbook.add_worksheet(names[part])
        write_text(ws, 0, 0, table.title, st.title)
        write_text(ws, 1, 0, table.description)
        notes = [table.note] if table.note else []
        if parts > 1:
            where = f"rows {start + 1:,} to {stop:,} of {n_rows:,}"
            if part + 1 < parts:
                where += f"; continued on sheet '{names[part + 1]}'"
            notes.append(
                f"Too many rows for one Excel sheet: this sheet holds {where}."
                + (" The total row adds up this sheet only." if total else "")
            )
        if n_rows == 0:
            notes.append("No rows.")
        if notes:
            write_text(ws, 2, 0, " ".join(notes), st.note)
        _write_part(ws, table, columns, writers, start, stop, number * 1000 + part, st)


def _write_part(
    ws: Worksheet,
    table: Table,
    columns: list[Column],
    writers: list[Callable[[Worksheet, int, int, int, Any], None]],
    start: int,
    stop: int,
    table_id: int,
    st: _Styles,
) -> None:
    first_data = HEADER_ROW + 1
    n = stop - start
    # An Excel table needs a data row even when there is nothing to show.
    last_data = first_data + max(n, 1) - 1
    last_row = last_data + (1 if table.total_row else 0)
    specs: list[dict[str, Any]] = []
    for idx, column in enumerate(columns):
        spec: dict[str, Any] = {"header": column.title, "format": st.by_kind[column.kind]}
        if table.total_row:
            if column.summed:
                cents_or_count = _column_sum(table.frame[column.key].iloc[start:stop])
                spec["total_function"] = "sum"
                spec["total_value"] = (
                    cents_or_count / 100 if column.kind == "money" else cents_or_count
                )
            elif idx == 0:
                spec["total_string"] = "Total"
        specs.append(spec)
    safe_key = re.sub(r"\W", "_", table.key)
    ws.add_table(
        HEADER_ROW,
        0,
        last_row,
        len(columns) - 1,
        {
            "name": f"tbl_{safe_key}_{table_id}",
            "columns": specs,
            "total_row": table.total_row,
            "style": "Table Style Light 9",
        },
    )
    for col, (column, write) in enumerate(zip(columns, writers)):
        fmt = st.by_kind[column.kind]
        write(ws, first_data, col, start, (stop, fmt))
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
                "criteria": f"=${letter}{first_data + 1}=TRUE",
                "format": st.highlight,
            },
        )


def _column_sum(series: pd.Series) -> int:
    # Sum as Python ints: exact, and no int64 overflow on huge totals.
    return sum(int(v) for v in series.dropna().tolist())


def _auto_width(series: pd.Series, column: Column) -> int:
    title = len(column.title) + 3  # room for the filter button
    if column.kind in _DEFAULT_WIDTHS:
        return max(title, _DEFAULT_WIDTHS[column.kind])
    sample = series.head(500).dropna().astype(str)
    longest = int(sample.str.len().max()) if len(sample) else 0
    return max(8, min(60, max(title, longest + 2)))


def _column_values(series: pd.Series, kind: str) -> Callable[[Worksheet, int, int, int, Any], None]:
    """Convert a frame column once (vectorised) and return a writer for any slice of it."""
    if kind in ("money", "int", "percent"):
        numeric = pd.to_numeric(series, errors="coerce")
        mask = numeric.isna().to_numpy()
        raw = numeric.astype("float64").fillna(0).to_numpy()
        if kind == "money":
            # int cents -> float dollars: one correctly rounded division, the nearest double.
            values = [v / 100 for v in series.where(~mask, 0).astype("int64").tolist()]
        elif kind == "int":
            values = series.where(~mask, 0).astype("int64").tolist()
        else:
            values = raw.tolist()
        return _numeric_writer(values, mask.tolist())
    if kind in ("date", "datetime"):
        stamps = pd.to_datetime(series, errors="coerce")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
        mask = stamps.isna().to_numpy()
        # Excel's serial date: days since 1899-12-30 (what write_datetime computes, vectorised).
        delta = stamps.to_numpy(dtype="datetime64[ns]") - _EXCEL_EPOCH
        serial = (delta / np.timedelta64(1, "D")).astype("float64")
        if kind == "date":
            serial = np.floor(serial)
        return _numeric_writer(np.where(mask, 0.0, serial).tolist(), mask.tolist())
    if kind == "bool":
        values = series.tolist()
        return _bool_writer(values)
    return _text_writer(series.tolist())


def _numeric_writer(values: list[Any], mask: list[bool]) -> Callable[..., None]:
    def write(ws: Worksheet, first_row: int, col: int, start: int, bounds: Any) -> None:
        stop, fmt = bounds
        write_number = ws.write_number
        for offset, i in enumerate(range(start, stop)):
            if not mask[i]:
                write_number(first_row + offset, col, values[i], fmt)

    return write


def _bool_writer(values: list[Any]) -> Callable[..., None]:
    def write(ws: Worksheet, first_row: int, col: int, start: int, bounds: Any) -> None:
        stop, fmt = bounds
        for offset, i in enumerate(range(start, stop)):
            value = values[i]
            if not is_blank(value):
                ws.write_boolean(first_row + offset, col, bool(value), fmt)

    return write


def _text_writer(values: list[Any]) -> Callable[..., None]:
    def write(ws: Worksheet, first_row: int, col: int, start: int, bounds: Any) -> None:
        stop, fmt = bounds
        for offset, i in enumerate(range(start, stop)):
            value = values[i]
            if not is_blank(value):
                write_text(ws, first_row + offset, col, to_python(value), fmt)

    return write
