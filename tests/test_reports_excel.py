"""The Excel workbook writer (read back with openpyxl) and atomic file writes."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import zipfile
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from conftest import HOSTILE_NAMES, make_report_context
from pkgreport import atomic
from pkgreport.atomic import write_atomic
from pkgreport.errors import OutputError
from pkgreport.reports.excel import WorkbookInProgress, cyclic_gc_paused, render_workbook
from pkgreport.reports.model import Column, Table
from pkgreport.reports.workbook_cells import EXCEL_MAX_CELL_CHARS

MONEY_FMT = "$#,##0.00;-$#,##0.00"


def _load(data: bytes, data_only: bool = False) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=data_only)


def _cell_json(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def workbook_as_json(data: bytes) -> str:
    """Every non-empty cell of every sheet: value, type and number format (the golden form)."""
    wb = _load(data)
    out: dict[str, object] = {}
    for ws in wb.worksheets:
        cells = {
            c.coordinate: [_cell_json(c.value), c.data_type, c.number_format]
            for row in ws.iter_rows()
            for c in row
            if c.value is not None
        }
        out[ws.title] = {
            "freeze_panes": ws.freeze_panes,
            "tables": {name: ref for name, ref in ws.tables.items()},
            "conditional_formats": [
                [str(cf.sqref), [rule.formula for rule in cf.rules]]
                for cf in ws.conditional_formatting
            ],
            "cells": cells,
        }
    # One line per cell so a golden diff points at the cells that changed.
    lines = ["{"]
    for s_index, (title, sheet) in enumerate(out.items()):
        lines.append(f" {json.dumps(title)}: {{")
        for key in ("freeze_panes", "tables", "conditional_formats"):
            lines.append(f"  {json.dumps(key)}: {json.dumps(sheet[key])},")
        lines.append('  "cells": {')
        cell_lines = [
            f"   {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
            for k, v in sheet["cells"].items()
        ]
        lines.append(",\n".join(cell_lines))
        lines.append("  }")
        lines.append(" }" + ("," if s_index < len(out) - 1 else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # stays valid JSON
    return text


def test_workbook_matches_golden(report_context, golden) -> None:
    golden("report.xlsx.json", workbook_as_json(render_workbook(report_context)))


def test_sheets_in_order(report_context) -> None:
    wb = _load(render_workbook(report_context))
    assert wb.sheetnames == [
        "Summary",
        "Findings",
        "Cases",
        "Credit",
        "Ageing",
        "Roll-forward",
        "Validation",
    ]


def test_same_context_same_bytes_and_no_clock(report_context) -> None:
    first = render_workbook(report_context)
    assert render_workbook(make_report_context()) == first
    core = zipfile.ZipFile(io.BytesIO(first)).read("docProps/core.xml").decode()
    assert '<dcterms:created xsi:type="dcterms:W3CDTF">2026-11-20T00:00:00Z' in core
    assert '<dcterms:modified xsi:type="dcterms:W3CDTF">2026-11-20T00:00:00Z' in core
    stamped = render_workbook(make_report_context(generated_at="2026-11-21T09:30:00+11:00"))
    core = zipfile.ZipFile(io.BytesIO(stamped)).read("docProps/core.xml").decode()
    assert "2026-11-20T22:30:00Z" in core  # converted to UTC


@pytest.mark.parametrize(
    ("sheet", "column"),
    [("Findings", "D"), ("Cases", "C"), ("Credit", "B")],
)
def test_hostile_names_are_text_never_formulas(report_context, sheet: str, column: str) -> None:
    ws = _load(render_workbook(report_context))[sheet]
    values = {
        ws[f"{column}{r}"].value: ws[f"{column}{r}"].data_type for r in range(5, ws.max_row + 1)
    }
    hostile = [name for name in HOSTILE_NAMES.values() if name in values]
    assert len(hostile) >= 3
    for name in hostile:
        assert values[name] == "s", name


def test_no_formula_anywhere_but_the_total_rows(report_context) -> None:
    data = render_workbook(report_context)
    archive = zipfile.ZipFile(io.BytesIO(data))
    formulas = []
    for name in archive.namelist():
        if name.startswith("xl/worksheets/sheet"):
            formulas += re.findall(r"<f>(.*?)</f>", archive.read(name).decode())
    assert formulas and all(f.startswith("SUBTOTAL(109,") for f in formulas)
    # No hyperlink part at all: URL-looking text stays text.
    assert not any(
        "hyperlink" in n or (n.endswith(".rels") and b"hyperlink" in archive.read(n))
        for n in archive.namelist()
    )


def test_tab_cr_lf_and_equals_starters_keep_exact_text(report_context) -> None:
    wb = _load(render_workbook(report_context))
    assert wb["Credit"]["B8"].value == "\tTabby Cat"
    assert wb["Credit"]["B8"].data_type == "s"
    assert wb["Validation"]["E6"].data_type == "s"
    # openpyxl leaves the OOXML escape of CR (_x000D_) undone; calamine decodes it as Excel does.
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(render_workbook(report_context)))
    rows = sheet.get_sheet_by_name("Validation").to_python()
    assert rows[5][4] == "=1+1\r\nline two"


def test_money_is_a_number_with_currency_format(report_context) -> None:
    ws = _load(render_workbook(report_context))["Credit"]
    assert [ws[f"F{r}"].value for r in range(5, 9)] == [120.5, 9.99, 40, 0]
    assert {ws[f"F{r}"].number_format for r in range(5, 9)} == {MONEY_FMT}
    assert ws["G5"].value == datetime(2026, 11, 2)
    assert ws["G5"].number_format == "dd/mm/yyyy"


def test_totals_agree_with_the_summary(report_context) -> None:
    wb = _load(render_workbook(report_context), data_only=True)
    summary = {wb["Summary"][f"A{r}"].value: wb["Summary"][f"B{r}"].value for r in range(7, 11)}
    credit = wb["Credit"]
    assert credit["A9"].value == "Total"
    # The cached value of the SUBTOTAL formula, what a viewer without recalculation shows.
    assert credit["F9"].value == summary["Credit liability"] == 170.49
    assert wb["Ageing"]["C11"].value == 170.49
    cases = wb["Cases"]
    assert cases["E9"].value is None  # "Sessions paid" is not summed
    assert cases["K9"].value == 1670  # 900 + 450 + 320


def test_table_frozen_header_autofilter_and_highlight(report_context) -> None:
    ws = _load(render_workbook(report_context))["Cases"]
    assert ws.freeze_panes == "A5"
    table = ws.tables["tbl_cases_2000"]
    assert table.ref == "A4:L9"
    assert table.autoFilter is not None
    assert ws["L4"].value == "Needs attention"
    assert [ws[f"L{r}"].value for r in range(5, 9)] == ["yes", "yes", None, None]
    [cf] = list(ws.conditional_formatting)
    assert str(cf.sqref) == "A5:L8"
    assert cf.rules[0].formula == ['$L5="yes"']
    assert ws.column_dimensions["K"].width > 10


def test_every_sheet_prints_landscape_one_page_wide_with_headers_and_a_footer(
    report_context,
) -> None:
    wb = _load(render_workbook(report_context))
    for ws in wb.worksheets:
        setup = ws.page_setup
        # OOXML's default for fitToWidth and fitToHeight is 1: a missing attribute means 1.
        fit_width, fit_height = (
            1 if v is None else v for v in (setup.fitToWidth, setup.fitToHeight)
        )
        assert (setup.orientation, fit_width) == ("landscape", 1), ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.oddFooter.left.text == "Packages and account credit — Demo Clinic", ws.title
        assert ws.oddFooter.center.text == "&A, as of 20 Nov 2026", ws.title
        assert ws.oddFooter.right.text == "Page &P of &N", ws.title
        if ws.title == "Summary":
            assert fit_height == 1  # the Summary prints on one page
        else:
            assert fit_height == 0
            assert ws.print_title_rows == "$4:$4"  # the header row repeats on every page


def _findings_context(n: int):
    ctx = make_report_context()
    frame = pd.DataFrame(
        {
            "code": ["X"] * n,
            "severity": ["low"] * n,
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "patient_name": ["=1"] * n,
            "subject_id": [f"S{i}" for i in range(n)],
            "amount": pd.array(list(range(1, n + 1)), dtype="Int64"),
            "message": ["m"] * n,
            "source_file": ["f.csv"] * n,
            "source_row": pd.array(list(range(2, n + 2)), dtype="Int64"),
        }
    )
    findings = Table(
        key="findings",
        sheet="Findings",
        title="Findings",
        description="d",
        columns=ctx.findings.columns,
        frame=frame,
        total_row=True,
    )
    return make_report_context(findings=findings)


def test_too_many_rows_continue_on_numbered_sheets() -> None:
    # 10 rows per sheet: title, description, note, header, 5 data rows, total row.
    data = render_workbook(_findings_context(12), max_sheet_rows=10)
    wb = _load(data, data_only=True)
    assert wb.sheetnames[:4] == ["Summary", "Findings", "Findings (2)", "Findings (3)"]
    parts = [wb["Findings"], wb["Findings (2)"], wb["Findings (3)"]]
    assert parts[0]["A3"].value == (
        "Too many rows for one Excel sheet: this sheet holds rows 1 to 5 of 12; continued on "
        "sheet 'Findings (2)'. The total row adds up this sheet only."
    )
    assert parts[2]["A3"].value.startswith(
        "Too many rows for one Excel sheet: this sheet holds rows 11 to 12 of 12."
    )
    ids = [ws[f"C{r}"].value for ws in parts for r in range(5, ws.max_row + 1)]
    data_ids = [v for v in ids if v and v.startswith("P")]
    assert data_ids == [f"P{i:03d}" for i in range(12)]
    assert all(ws.max_row <= 10 for ws in parts)
    # Per-sheet subtotals add up to the grand total of 1 + 2 + ... + 12 = 78 dollars-cents.
    subtotals = [ws[f"F{ws.max_row}"].value for ws in parts]
    assert subtotals == pytest.approx([0.15, 0.40, 0.23])
    assert round(sum(subtotals) * 100) == 78


def test_long_sheet_names_get_a_numbered_suffix_within_31_characters() -> None:
    ctx = _findings_context(3)
    long_name = "A" * 31
    table = Table(
        key="t",
        sheet=long_name,
        title="t",
        description="d",
        columns=(Column("subject_id", "Id", "id"),),
        frame=ctx.findings.frame,
    )
    data = render_workbook(make_report_context(tables=(table,)), max_sheet_rows=5)
    names = _load(data).sheetnames
    assert names[-3:] == [long_name, "A" * 27 + " (2)", "A" * 27 + " (3)"]


def test_empty_table_still_opens() -> None:
    ctx = _findings_context(0)
    wb = _load(render_workbook(ctx))
    ws = wb["Findings"]
    assert ws["A3"].value == "No rows."
    assert ws["A4"].value == "Code"


def test_overlong_text_is_cut_not_dropped() -> None:
    ctx = make_report_context(settings=(("Note", "x" * 40_000),))
    ws = _load(render_workbook(ctx))["Summary"]
    values = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    [long_value] = [v for v in values if v.startswith("xxx")]
    assert len(long_value) == EXCEL_MAX_CELL_CHARS
    assert long_value.endswith("…")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-(10**13), 10**13), min_size=1, max_size=8))
def test_money_cells_are_the_nearest_double_to_the_exact_amount(cents: list[int]) -> None:
    frame = pd.DataFrame({"amount": cents})
    table = Table(
        key="m",
        sheet="Money",
        title="m",
        description="d",
        columns=(Column("amount", "Amount", "money"),),
        frame=frame,
        total_row=True,
    )
    wb = _load(render_workbook(make_report_context(tables=(table,))), data_only=True)
    ws = wb["Money"]
    values = [ws[f"A{r}"].value for r in range(5, 5 + len(cents))]
    assert values == [c / 100 for c in cents]
    assert [round(v * 100) for v in values] == cents
    assert ws[f"A{5 + len(cents)}"].value == sum(cents) / 100


# ------------------------------------------------------------------------------- atomic writes


def test_write_atomic_writes_bytes_and_text(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_atomic(tmp_path / "b.txt", "caf\u00e9")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "café".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"


def cannot_write(path: Path, reason: str) -> str:
    return (
        f"cannot write {path} ({reason}): choose a location you may write to, whose folders are "
        "folders and whose disk has space (anything already there is unchanged)"
    )


def test_failure_mid_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.xlsx"

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OutputError) as raised:
        write_atomic(target, b"x" * 100_000)
    assert str(raised.value) == cannot_write(target, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_complete_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous run")

    def broken_replace(src: object, dst: object) -> None:
        raise PermissionError("locked by another program")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OutputError) as raised:
        write_atomic(target, "new run")
    assert str(raised.value) == cannot_write(target, "locked by another program")
    assert target.read_text() == "previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_all_atomic_is_all_or_nothing(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a.html").write_text("previous a")
    calls = []
    real_fdopen = atomic.os.fdopen

    def fail_on_third(fd: int, mode: str):  # the third file cannot be staged
        calls.append(fd)
        if len(calls) == 3:
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, mode)

    monkeypatch.setattr(atomic.os, "fdopen", fail_on_third)
    files = {tmp_path / "a.html": "new a", tmp_path / "b.xlsx": b"b", tmp_path / "c.json": "{}"}
    with pytest.raises(OutputError) as raised:
        atomic.write_all_atomic(files)
    assert str(raised.value) == cannot_write(tmp_path / "c.json", "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]
    assert (tmp_path / "a.html").read_text() == "previous a"
    monkeypatch.setattr(atomic.os, "fdopen", real_fdopen)
    assert atomic.write_all_atomic(files) == list(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.xlsx", "c.json"]
    assert (tmp_path / "a.html").read_text() == "new a"


def test_text_round_trips_exactly_through_the_xml_escapes() -> None:
    awkward = [
        "_x0041_ literal",
        "a & b < c > d",
        "bell\x07 and\x01",
        "Zoë 😀 ünïcode",
        "  padded  ",
        "x" * 10,
        None,
        "\"quoted\" 'single'",
    ]
    frame = pd.DataFrame({"t": awkward})
    table = Table(
        key="t",
        sheet="Text",
        title="t",
        description="d",
        columns=(Column("t", "Text"),),
        frame=frame,
    )
    data = render_workbook(make_report_context(tables=(table,)))
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Text").to_python()
    assert [r[0] for r in rows[4:12]] == [v if v is not None else "" for v in awkward]
    ws = _load(data)["Text"]
    assert ws["A11"].value is None  # a missing value is an empty cell, not the text "None"
    assert all(ws[f"A{r}"].data_type == "s" for r in (5, 6, 7, 8, 9, 10, 12))


def test_sheet_dimension_covers_every_row(report_context) -> None:
    archive = zipfile.ZipFile(io.BytesIO(render_workbook(report_context)))
    # Cases is the third sheet: header row 4, four data rows, the total row 9, columns A:L.
    assert '<dimension ref="A1:L9"/>' in archive.read("xl/worksheets/sheet3.xml").decode()


def test_data_cells_of_every_kind_with_blanks() -> None:
    frame = pd.DataFrame(
        {
            "t": pd.Series(["a&b", None, "c\td\ud800"], dtype=object),  # a lone surrogate
            "m": pd.array([150, None, -5], dtype="Int64"),
            "d": pd.to_datetime(["2026-01-02", None, "1900-03-01"]),
            "p": [0.5, -0.0, 0.0],  # -0.0 and 0.0 stay distinct values
            "b": pd.Series([True, None, False], dtype=object),
        }
    )
    table = Table(
        key="x",
        sheet="X",
        title="x",
        description="d",
        frame=frame,
        columns=(
            Column("t", "T"),
            Column("m", "M", "money"),
            Column("d", "D", "date"),
            Column("p", "P", "percent"),
            Column("b", "B", "bool"),
        ),
    )
    data = render_workbook(make_report_context(tables=(table,)))
    ws = _load(data)["X"]
    cells = [[(c.value, c.data_type) for c in row] for row in ws.iter_rows(min_row=5, max_row=7)]
    assert cells == [
        [("a&b", "s"), (1.5, "n"), (datetime(2026, 1, 2), "d"), (0.5, "n"), (True, "b")],
        [(None, "n"), (None, "n"), (None, "n"), (0, "n"), (None, "n")],
        [("c\td?", "s"), (-0.05, "n"), (datetime(1900, 3, 1), "d"), (0, "n"), (False, "b")],
    ]
    formats = [ws.cell(5, col).number_format for col in range(1, 6)]
    assert formats == ["@", MONEY_FMT, "dd/mm/yyyy", "0%", "General"]
    # -0.0 is its own value (openpyxl reads both as 0): the sheet's XML keeps the sign.
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet3.xml").decode()
    assert re.findall(r'<c r="D[67]" s="\d+"><v>([^<]*)</v></c>', xml) == ["-0", "0"]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_waits_while_the_workbook_is_built(enabled: bool) -> None:
    # xlsxwriter's objects, one per cell, would set the collector off again and again (about
    # 15 % of a large workbook's time; here about 70 passes for 20,000 cells). It is paused while
    # the workbook is built, then left as it was found: at most the one pass it put off runs.
    rows = 10_000
    frame = pd.DataFrame({"name": [f"n{i}" for i in range(rows)], "cents": range(rows)})
    columns = (Column("name", "Name"), Column("cents", "Amount", "money"))
    table = Table("big", "Big", "Big", "Many rows.", columns, frame)
    ctx = replace(make_report_context(), tables=(table,))
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    gc.callbacks.append(count)
    try:
        render_workbook(ctx)
        assert (len(passes) <= 1, gc.isenabled()) == (True, enabled)
    finally:
        gc.callbacks.remove(count)
        (gc.enable if was_enabled else gc.disable)()


def test_workbook_is_written_through_xlsxwriters_public_api_only() -> None:
    # No private attribute (`fmt._get_xf_index()`, `ZipInfo._compresslevel`) and no rewriting of
    # the archive xlsxwriter wrote: those change in any release.
    import ast

    from pkgreport.reports import excel, workbook_cells

    tree = ast.Module(
        body=[
            node
            for module in (excel, workbook_cells)
            for node in ast.parse(Path(module.__file__).read_text(encoding="utf-8")).body
        ],
        type_ignores=[],
    )
    private = sorted(
        {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        }
    )
    imported = sorted(
        {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
    )
    assert private == []
    assert "zipfile" not in imported


def _credit_with_csv(attention: list[bool]) -> tuple[Table, ...]:
    """The test context's tables, the credit table's every row said to be in a command's CSV."""
    ctx = make_report_context()
    credit = next(t for t in ctx.tables if t.key == "credit")
    frame = credit.frame.assign(holds_credit=attention)
    changed = Table(**{**vars(credit), "frame": frame, "all_rows_in": "pkgreport credit"})
    return tuple(changed if t.key == "credit" else t for t in ctx.tables)


def test_a_long_table_whose_csv_has_every_row_keeps_the_rows_needing_attention() -> None:
    tables = _credit_with_csv([False, True, False, True])  # P004 and P006 need attention
    ws = _load(render_workbook(make_report_context(tables=tables, workbook_all_rows_max=3)))[
        "Credit"
    ]
    assert ws["A3"].value == (
        "This sheet holds the 2 of 4 rows that need attention; every row is in the CSV from "
        '"pkgreport credit <exports folder>". The total row adds up these rows only.'
    )
    assert [ws.cell(row, 1).value for row in range(5, 8)] == ["P004", "P006", "Total"]
    assert ws["F7"].value == "=SUBTOTAL(109,F5:F6)"
    assert list(ws.tables["tbl_credit_3000"].ref.split(":")) == ["A4", "H7"]


def test_a_table_up_to_the_limit_or_without_a_csv_keeps_every_row() -> None:
    tables = _credit_with_csv([False, True, False, True])
    for ctx in (
        make_report_context(tables=tables, workbook_all_rows_max=4),
        make_report_context(workbook_all_rows_max=3),
    ):  # no "all_rows_in"
        ws = _load(render_workbook(ctx))["Credit"]
        assert [ws.cell(row, 1).value for row in range(5, 10)] == [
            "P003",
            "P004",
            "P005",
            "P006",
            "Total",
        ]


def test_summary_rows_are_tall_enough_for_their_wrapped_what_to_do() -> None:
    # Spreadsheet programs do not grow a row xlsxwriter wrote: without a height the wrapped
    # remedy prints over the next finding (seen in LibreOffice's printout).
    import dataclasses

    base = make_report_context()
    long_todo = (
        "Compare the payments and credit of the invoice in the practice system with the "
        "exports: a payment, refund or allocation is missing or was changed after it."
    )
    kinds = (
        dataclasses.replace(base.finding_kinds[0], what_to_do=long_todo),
        *base.finding_kinds[1:],
    )
    ctx = dataclasses.replace(base, finding_kinds=kinds)
    ws = _load(render_workbook(ctx))["Summary"]
    checked = 0
    for row in ws.iter_rows():
        todo = row[3].value if len(row) > 3 else None
        kind = next((k for k in ctx.finding_kinds if k.what_to_do == todo), None)
        if kind is None:
            continue
        lines = -(-len(todo) // 60)
        height = ws.row_dimensions[row[0].row].height
        assert (height or 15) >= 15 * lines, (todo, height)
        assert row[0].alignment.vertical == "top" and row[3].alignment.vertical == "top"
        checked += 1
    assert checked == len(ctx.finding_kinds) > 0
    assert any(len(k.what_to_do) > 60 for k in ctx.finding_kinds)


def test_a_table_left_for_the_second_pass_must_fill_the_sheets_it_was_given() -> None:
    # The workbook's process starts on a context whose tables per location have no rows yet;
    # one that then needs more sheets than planned is refused (the workbook is rendered again
    # by the first process, from the whole context).
    started = _findings_context(0)
    book = WorkbookInProgress(started, max_sheet_rows=10)
    book.write_ahead(started, deferred=frozenset({"findings"}))
    with pytest.raises(
        ValueError, match=r"^table 'findings' no longer fills the sheets it was given$"
    ):
        book.finish(_findings_context(12))


def test_a_table_written_in_the_first_pass_must_not_change() -> None:
    ctx = _findings_context(3)
    book = WorkbookInProgress(ctx)
    book.write_ahead(ctx)
    with pytest.raises(
        ValueError, match=r"^table 'findings' changed after its numbers were written$"
    ):
        book.finish(_findings_context(3))


def test_numbers_written_first_give_the_bytes_of_one_pass_per_table(report_context) -> None:
    # Numbers take no part in the shared-strings table: the order the cells are written in
    # changes nothing. Every table's numbers first, or each table whole in turn:
    with cyclic_gc_paused():
        book = WorkbookInProgress(report_context)
        book.write_numbers(report_context)
        numbers_first = book.finish(report_context)
        book = WorkbookInProgress(report_context)
        table_by_table = book.finish(report_context)
    assert numbers_first == table_by_table == render_workbook(report_context)
