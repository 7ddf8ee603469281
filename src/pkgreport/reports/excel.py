"""The Excel workbook: a Summary, every finding and one sheet per table, written in memory."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time
from itertools import chain, repeat
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
    format_prose_date,
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
# Excel caps a header or footer at 255 characters, control codes included.
_FOOTER_MAX = 255
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
    pending: list[_SheetData] = []
    for number, table in enumerate([ctx.findings, *ctx.tables], start=1):
        _write_table(workbook, ctx, table, number, styles, used_names, max_sheet_rows, pending)
    workbook.close()
    return _splice_sheet_data(buffer.getvalue(), pending)


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
        # Data cells are written as XML directly (see _splice_sheet_data), so their formats need
        # style indices now; assigning them in a fixed order keeps the bytes deterministic.
        # Row numbers are looked up, not added: no thousands separator.
        self.plain_int = workbook.add_format({"num_format": "0"})
        self.xf_index = {kind: fmt._get_xf_index() for kind, fmt in self.by_kind.items()}
        self.plain_int_index = self.plain_int._get_xf_index()

    def format_for(self, column: Column) -> Any:
        if column.kind == "int" and not column.grouped:
            return self.plain_int
        return self.by_kind[column.kind]

    def style_index(self, column: Column) -> int:
        if column.kind == "int" and not column.grouped:
            return self.plain_int_index
        return self.xf_index[column.kind]


def write_text(ws: Worksheet, row: int, col: int, value: Any, fmt: Any = None) -> None:
    """Write `value` as a text cell: never a formula, URL or number, whatever it starts with."""
    ws.write_string(row, col, _clip(str(value)), fmt)


# ---------------------------------------------------------------------------------------- Summary


def _write_summary(ws: Worksheet, ctx: ReportContext, st: _Styles) -> None:
    order = ctx.date_order
    write_text(ws, 0, 0, ctx.title, st.title)
    period = f"{format_prose_date(ctx.period_start, order)} to {format_prose_date(ctx.period_end, order)}"
    write_text(ws, 1, 0, f"As of {format_prose_date(ctx.as_of, order)}; period {period}")
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

    section("Findings by kind", ["Finding", "Count", "Severity", "What to do"])
    for kind in ctx.finding_kinds:
        write_text(ws, row, 0, kind.title)
        ws.write_number(row, 1, kind.count, st.by_kind["int"])
        write_text(ws, row, 2, kind.severity)
        write_text(ws, row, 3, kind.what_to_do, st.wrap)
        row += 1
    if not ctx.finding_kinds:
        write_text(ws, row, 0, "No findings in the checks that ran." if ctx.unchecked
                   else "No findings.", st.note)
        row += 1
    if ctx.unchecked:
        write_text(ws, row, 0, ctx.unchecked, st.note)
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
    ws.set_column(1, 1, 24)
    ws.set_column(2, 2, 28)
    ws.set_column(3, 3, 66)
    _set_up_printing(ws, ctx, pages_tall=1)


def _set_up_printing(ws: Worksheet, ctx: ReportContext, *, pages_tall: int = 0,
                     header_row: int | None = None) -> None:
    """Landscape, one page wide (`pages_tall` 0 = as many as needed), the header row repeated on
    every page, and a footer with the report's title, the sheet (&A), as-of date and page numbers."""
    ws.set_landscape()
    ws.fit_to_pages(1, pages_tall)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    if header_row is not None:
        ws.repeat_rows(header_row)
    # "&" starts a control code in a header or footer: a literal one is doubled.
    title = ctx.title.replace("&", "&&")
    as_of = format_prose_date(ctx.as_of, ctx.date_order)
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


def _write_table(
    workbook: Workbook,
    ctx: ReportContext,
    table: Table,
    number: int,
    st: _Styles,
    used_names: set[str],
    max_sheet_rows: int,
    pending: list[_SheetData],
) -> None:
    columns = _sheet_columns(table)
    total = table.total_row
    capacity = max_sheet_rows - HEADER_ROW - 1 - (1 if total else 0)
    if capacity < 1:
        raise ValueError(f"max_sheet_rows {max_sheet_rows} leaves no room for data")
    n_rows = len(table.frame)
    parts = max(1, -(-n_rows // capacity))
    cells = [_cell_tails(_sheet_values(table, c), c.kind, st.style_index(c)) for c in columns]
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
        name = _write_part(ws, table, columns, start, stop, number * 1000 + part, st)
        _set_up_printing(ws, ctx, header_row=HEADER_ROW)
        if stop > start:
            pending.append(
                _SheetData(
                    len(workbook.worksheets()), name, HEADER_ROW + 1, cells, start, stop,
                    table.total_row,
                )
            )


def _write_part(
    ws: Worksheet,
    table: Table,
    columns: list[Column],
    start: int,
    stop: int,
    table_id: int,
    st: _Styles,
) -> str:
    """Title, header, total row, table, filter and highlight of one sheet; returns the table name.

    xlsxwriter is told the table has one data row: for a real range it builds a dict entry per
    cell (seconds and gigabytes at a million rows). `_splice_sheet_data` writes the rows and
    stretches the table and total row to their real place.
    """
    first_data = HEADER_ROW + 1
    n = stop - start
    # Real rows (0-based); an Excel table needs a data row even when there is nothing to show.
    last_data = first_data + max(n, 1) - 1
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
    name = f"tbl_{re.sub(r'[^A-Za-z0-9_]', '_', table.key)}_{table_id}"
    ws.add_table(
        HEADER_ROW,
        0,
        first_data + (1 if table.total_row else 0),
        len(columns) - 1,
        {
            "name": name,
            "columns": specs,
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
    return name


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
    sample = series.head(500).dropna().astype(str)
    longest = int(sample.str.len().max()) if len(sample) else 0
    return max(8, min(60, max(title, longest + 2)))


# --------------------------------------------------------------------------- fast data rows
#
# xlsxwriter stores every cell as a Python object and serialises it one by one: about 2 GB and
# minutes for a million-row sheet. The table bodies are plain values, so they are rendered
# straight to worksheet XML, column by column, and spliced into the sheets xlsxwriter wrote
# (which hold the titles, headers, total rows, tables, filters and formats around them).
# Text is an inline string (t="inlineStr"): text, never a formula, whatever it starts with.

# Deflate level 1: a third of the time of the default level, for a file about a fifth bigger.
_ZIP_LEVEL = 1
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ESCAPE_LIKE = re.compile(r"(_x[0-9a-fA-F]{4}_)")


@dataclass(frozen=True)
class _Cells:
    """One column's data cells, dictionary-encoded: the XML of row i's cell after `<c r="A1" `
    is ``tails[codes[i]]``; code -1 is a blank (no cell written). Values repeat a lot (codes,
    names, amounts, dates), so each distinct one is converted and escaped once."""

    codes: np.ndarray  # intp, one per frame row
    tails: list[str]


@dataclass(frozen=True)
class _SheetData:
    """Data rows still to be written into worksheet `sheet` (1-based, xlsxwriter's numbering)."""

    sheet: int
    table_name: str
    first_row: int  # 0-based row of the first data row
    cells: list[_Cells]  # per column
    start: int
    stop: int
    total_row: bool

    @property
    def last_row(self) -> int:
        """1-based row of the last data row."""
        return self.first_row + self.stop - self.start


def _encoded(codes: np.ndarray, tails: list[str | None]) -> _Cells:
    """Cells from factorize codes and each unique's tail; a None tail is a blank too."""
    codes = np.asarray(codes, dtype=np.intp)
    none = [i for i, t in enumerate(tails) if t is None]
    if none:
        codes = np.where(np.isin(codes, none), -1, codes)
    return _Cells(codes, [t if t is not None else "" for t in tails])


def _cell_tails(series: pd.Series, kind: str, style: int) -> _Cells:
    """Each value's cell XML (after the reference), converted once per distinct value."""
    head = f's="{style}"><v>'
    if kind in ("money", "int", "percent"):
        numeric = pd.to_numeric(series, errors="coerce")
        blank = numeric.isna().to_numpy()
        if kind == "percent":
            floats = numeric.astype("float64").fillna(0).to_numpy()
            # Factorized by bit pattern: 0.0 and -0.0 are equal but print differently.
            codes, uniques = pd.factorize(floats.view(np.int64))
            texts = [_number(v) for v in uniques.view(np.float64).tolist()]
        else:
            ints = series.where(~numeric.isna(), 0).astype("int64").to_numpy()
            codes, uniques = pd.factorize(ints)
            if kind == "money":
                # int cents -> float dollars: one correctly rounded division, the nearest
                # double; repr() is the shortest text that reads back as exactly that double.
                texts = [_number(v / 100) for v in uniques.tolist()]
            else:
                texts = [str(v) for v in uniques.tolist()]
        codes[blank] = -1
        return _encoded(codes, [head + t + "</v></c>" for t in texts])
    if kind in ("date", "datetime"):
        stamps = pd.to_datetime(series, errors="coerce")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
        blank = stamps.isna().to_numpy()
        # Excel's serial date: days since 1899-12-30 (what write_datetime computes, vectorised).
        delta = stamps.to_numpy(dtype="datetime64[ns]") - _EXCEL_EPOCH
        serial = np.where(blank, 0.0, delta / np.timedelta64(1, "D"))
        if kind == "date":
            codes, uniques = pd.factorize(np.floor(serial).astype("int64"))
            texts = [str(d) for d in uniques.tolist()]
        else:
            codes, uniques = pd.factorize(serial.view(np.int64))
            texts = [_number(v) for v in uniques.view(np.float64).tolist()]
        codes[blank] = -1
        return _encoded(codes, [head + t + "</v></c>" for t in texts])
    if kind == "bool":
        codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
        return _encoded(
            codes,
            [
                None if is_blank(v) else f's="{style}" t="b"><v>{1 if v else 0}</v></c>'
                for v in uniques
            ],
        )
    return _text_tails(series, style)


def _number(value: float) -> str:
    # Shortest text that reads back as exactly this double; whole numbers without ".0".
    text = repr(value)
    return text.removesuffix(".0")


def _text_tails(series: pd.Series, style: int) -> _Cells:
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    head = f's="{style}" t="inlineStr"><is><t xml:space="preserve">'
    end = "</t></is></c>"
    texts = [u if type(u) is str else str(to_python(u)) for u in uniques]
    joined = _SEPARATOR.join(texts)
    if len(texts) > 1 and joined.count(_SEPARATOR) == len(texts) - 1 and (
        max(map(len, texts)) <= EXCEL_MAX_CELL_CHARS
    ):
        # Escaping never spans the separator, so escaping all the texts at once (a few C-level
        # passes over one string) equals escaping each.
        escaped = _xml_text(joined).split(_SEPARATOR)
    else:
        escaped = [_xml_text(_clip(t)) for t in texts]
    return _encoded(codes, [head + t + end for t in escaped])


# Joins the texts of a column for one escaping pass; a noncharacter, so data almost never holds it
# (and when it does the texts are escaped one by one).
_SEPARATOR = "\uffff"


def _xml_text(text: str) -> str:
    """XML escapes, then Excel's: a literal _xHHHH_ keeps its underscore, control characters
    (CR included, which an XML parser would fold away) become _xHHHH_."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "_x" in text:
        text = _ESCAPE_LIKE.sub(r"_x005F\1", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    return text


def _rows_xml(data: _SheetData, letters: list[str], chunk: int = 20_000) -> Iterator[bytes]:
    """The `<row>` elements of one part, in chunks of encoded bytes.

    The pieces of every cell (fixed markup, row number, tail) are zipped from the columns and
    joined once: the per-cell work runs in C. A column with blanks in the chunk gives whole
    cells instead ("" for a blank), built by elementwise `+` on object arrays.
    """
    # Per column: each tail behind the reference's closing quote; the extra last entry is the
    # blank cell (code -1), which writes nothing.
    tails = [np.array([f'" {t}' for t in c.tails] + [""], dtype=object) for c in data.cells]
    offset = data.first_row + 1 - data.start
    for chunk_start in range(data.start, data.stop, chunk):
        chunk_stop = min(data.stop, chunk_start + chunk)
        numbers = np.arange(chunk_start + offset, chunk_stop + offset).astype(str).astype(object)
        pieces: list[Iterable[str]] = [repeat('<row r="'), numbers, repeat('">')]
        for letter, cells, quoted in zip(letters, data.cells, tails):
            codes = cells.codes[chunk_start:chunk_stop]
            values = quoted[codes]
            blank = codes < 0
            if blank.any():
                refs = f'<c r="{letter}' + numbers
                refs[blank] = ""
                pieces.append(refs + values)
            else:
                pieces.extend((repeat(f'<c r="{letter}'), numbers, values))
        pieces.append(repeat("</row>"))
        text = "".join(chain.from_iterable(zip(*pieces)))
        # "replace": a lone surrogate from a mis-decoded export must not abort the workbook.
        yield text.encode("utf-8", "replace")


def _splice_sheet_data(xlsx: bytes, pending: list[_SheetData]) -> bytes:
    """Write the pending data rows into their sheets and stretch their tables to cover them."""
    if not pending:
        return xlsx
    by_sheet = {f"xl/worksheets/sheet{p.sheet}.xml": p for p in pending}
    by_table = {p.table_name: p for p in pending}
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            data = by_sheet.get(info.filename)
            if info.filename.startswith("xl/tables/"):
                target.writestr(info, _stretch_table(body.decode("utf-8"), by_table))
            elif data is None:
                target.writestr(info, body, compresslevel=_ZIP_LEVEL)
            else:
                _write_sheet(target, info, body.decode("utf-8"), data)
    return out.getvalue()


def _write_sheet(target: zipfile.ZipFile, info: zipfile.ZipInfo, xml: str, data: _SheetData) -> None:
    xml = _widen_dimension(xml, data.last_row + (1 if data.total_row else 0), len(data.cells))
    # xlsxwriter put the total row right after the one declared data row: move it below the
    # real last row (its SUBTOTAL ranges already name the real rows).
    total_xml = ""
    declared_total = data.first_row + 2
    if data.total_row:
        begin = xml.index(f'<row r="{declared_total}"')
        end = xml.index("</row>", begin) + len("</row>")
        real = str(data.last_row + 1)
        total_xml = re.sub(
            rf'(<row r="|<c r="[A-Z]+){declared_total}"', lambda m: m.group(1) + real + '"',
            xml[begin:end],
        )
        xml = xml[:begin] + xml[end:]
        at = begin
    else:
        at = xml.index("</sheetData>")
    letters = [xl_col_to_name(c) for c in range(len(data.cells))]
    entry = zipfile.ZipInfo(info.filename, info.date_time)
    entry.compress_type = info.compress_type
    entry.external_attr = info.external_attr
    entry.create_system = info.create_system
    entry._compresslevel = _ZIP_LEVEL  # type: ignore[attr-defined]  # (public in 3.13)
    # A sheet that could pass 4 GB uncompressed needs the zip64 header, known up front.
    large = (data.stop - data.start) * len(data.cells) * 400 > 2**32
    with target.open(entry, "w", force_zip64=large) as handle, ThreadPoolExecutor(1) as writer:
        handle.write(xml[:at].encode("utf-8"))
        # Deflate (zlib releases the GIL) runs beside building the next chunk; one writer thread
        # and waiting for each write before the next keep the bytes in order.
        writing: Future[int] | None = None
        for piece in _rows_xml(data, letters):
            if writing is not None:
                writing.result()
            writing = writer.submit(handle.write, piece)
        if writing is not None:
            writing.result()
        handle.write(total_xml.encode("utf-8"))
        handle.write(xml[at:].encode("utf-8"))


def _stretch_table(xml: str, by_table: dict[str, _SheetData]) -> str:
    """Point a table's range and autofilter at its real last rows."""
    match = re.search(r'<table [^>]*\bname="([^"]+)"', xml)
    data = by_table.get(match.group(1)) if match else None
    if data is None:
        return xml
    last_data = data.last_row
    last = last_data + (1 if data.total_row else 0)
    xml = re.sub(r'(<table [^>]*\bref="[A-Z]+\d+:[A-Z]+)\d+"', rf'\g<1>{last}"', xml, count=1)
    return re.sub(r'(<autoFilter ref="[A-Z]+\d+:[A-Z]+)\d+"', rf'\g<1>{last_data}"', xml, count=1)


def _widen_dimension(xml: str, last_row: int, n_cols: int) -> str:
    """Make the sheet's <dimension> cover the spliced rows (readers use it to size the sheet)."""
    match = re.search(r'<dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"/>', xml)
    if match is None:
        return xml
    end_col = match.group(3) or match.group(1)
    end_row = int(match.group(4) or match.group(2))
    end_row = max(end_row, last_row)
    last_letter = xl_col_to_name(n_cols - 1)
    if (len(last_letter), last_letter) > (len(end_col), end_col):
        end_col = last_letter
    ref = f'{match.group(1)}{match.group(2)}:{end_col}{end_row}'
    return xml[: match.start()] + f'<dimension ref="{ref}"/>' + xml[match.end() :]


def _clip(text: str) -> str:
    if len(text) > EXCEL_MAX_CELL_CHARS:
        return text[: EXCEL_MAX_CELL_CHARS - 1] + "…"
    return text
