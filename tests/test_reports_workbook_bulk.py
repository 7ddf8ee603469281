"""Table bodies written in bulk: the very bytes of writing each cell through xlsxwriter's API."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from xlsxwriter.exceptions import OverlappingRange
from xlsxwriter.sharedstrings import SharedStrings, SharedStringTable
from xlsxwriter.worksheet import Worksheet

from conftest import HOSTILE_NAMES, make_report_context
from pkgreport.reports import workbook_bulk
from pkgreport.reports.excel import EXCEL_MAX_ROWS, WorkbookInProgress, render_workbook
from pkgreport.reports.model import Column, Table
from pkgreport.reports.workbook_bulk import (
    BULK_RELEASES,
    BulkWorksheet,
    bulk_available,
    fits_bulk,
)


def _both_ways(ctx: object, max_sheet_rows: int = EXCEL_MAX_ROWS) -> tuple[bytes, bytes]:
    return (
        render_workbook(ctx, max_sheet_rows=max_sheet_rows),  # type: ignore[arg-type]
        render_workbook(ctx, max_sheet_rows=max_sheet_rows, bulk=False),  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _bulk_on_the_installed_release(monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparisons below run the bulk path on whatever xlsxwriter is installed, so a new
    # release shows here whether the bulk path still writes its bytes before it is listed.
    monkeypatch.setattr(workbook_bulk, "BULK_RELEASES", (*BULK_RELEASES, _installed_release()))


def _installed_release() -> str:
    return ".".join(xlsxwriter.__version__.split(".")[:2])


def test_a_release_not_checked_against_is_written_through_the_public_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workbook_bulk, "BULK_RELEASES", ())
    assert not bulk_available()
    ctx = make_report_context()
    assert not WorkbookInProgress(ctx, max_sheet_rows=EXCEL_MAX_ROWS, bulk=True).bulk
    bulk, public = _both_ways(ctx)
    assert bulk == public


def test_the_installed_xlsxwriter_is_one_the_bulk_path_was_checked_against() -> None:
    # Users of a release not listed get the public API: the same bytes, slower. Not a failure:
    # the comparisons in this module ran the bulk path on it; once they pass, list it.
    if _installed_release() not in BULK_RELEASES:
        pytest.skip(
            f"xlsxwriter {xlsxwriter.__version__} is not in BULK_RELEASES {BULK_RELEASES}: "
            "add it once this module's comparisons pass on it"
        )
    assert bulk_available()


def test_the_report_context_gives_the_bytes_of_the_public_api() -> None:
    bulk, public = _both_ways(make_report_context())
    assert bulk == public


@pytest.mark.parametrize("max_sheet_rows", [6, 7, 10])
def test_tables_split_over_sheets_give_the_bytes_of_the_public_api(max_sheet_rows: int) -> None:
    bulk, public = _both_ways(make_report_context(), max_sheet_rows)
    assert bulk == public


def _table(columns: tuple[Column, ...], frame: pd.DataFrame, **options: object) -> Table:
    return Table(
        key="t", sheet="Data", title="t", description="d", columns=columns, frame=frame, **options
    )


def test_a_text_too_long_for_the_bulk_path_sends_its_table_through_the_public_api() -> None:
    # 20,000 characters outside the Basic Multilingual Plane: 40,000 UTF-16 units, which
    # xlsxwriter 3.3 cuts to 32,767 (3.2 counts characters and keeps them all).
    long_text = "\U0001f600" * 20_000
    assert not fits_bulk([long_text])
    assert fits_bulk(["x" * 16_383, None, 1.5, True])
    frame = pd.DataFrame({"a": ["short", long_text], "n": [1, 2]})
    columns = (Column("a", "A"), Column("n", "N", "int"))
    bulk, public = _both_ways(make_report_context(tables=(_table(columns, frame),)))
    assert bulk == public


def test_a_non_finite_number_fails_as_through_the_public_api() -> None:
    frame = pd.DataFrame({"p": [0.5, float("inf")]})
    ctx = make_report_context(tables=(_table((Column("p", "P", "percent"),), frame),))
    assert not fits_bulk([0.5, float("inf")])
    message = r"^NAN/INF not supported in write_number\(\) without 'nan_inf_to_errors' Workbook\(\) option$"
    for bulk in (True, False):
        with pytest.raises(TypeError, match=message):
            render_workbook(ctx, bulk=bulk)


# Each column's kind and a strategy for one of its cells (None: a blank).
_TEXTS = st.sampled_from(["", " ", "a", "b & c", "<x>", *HOSTILE_NAMES.values(), "ü\n€"])
_CELLS = {
    "text": st.none() | _TEXTS,
    "id": st.none() | st.sampled_from(["P001", "007", "1e5", "TRUE"]),
    "money": st.none() | st.integers(-(10**12), 10**12),
    "int": st.none() | st.integers(-5, 10**6),
    "percent": st.none() | st.sampled_from([0.0, -0.0, 0.25, 1 / 3, 12.5]),
    "date": st.none() | st.dates(date(1995, 1, 1), date(2035, 12, 31)),
    "bool": st.none() | st.booleans(),
}


@st.composite
def _tables(draw: st.DrawFn) -> Table:
    kinds = draw(st.lists(st.sampled_from(sorted(_CELLS)), min_size=1, max_size=6))
    n_rows = draw(st.integers(0, 24))
    frame = pd.DataFrame(
        {
            f"c{i}": pd.Series(
                draw(st.lists(_CELLS[k], min_size=n_rows, max_size=n_rows)), dtype=object
            )
            for i, k in enumerate(kinds)
        }
    )
    frame["flag"] = pd.Series(
        draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows)), dtype=bool
    )
    columns = tuple(Column(f"c{i}", f"C{i} {k}", k) for i, k in enumerate(kinds))  # type: ignore[arg-type]
    return _table(
        columns,
        frame,
        total_row=draw(st.booleans()),
        highlight=draw(st.sampled_from([None, "flag"])),
    )


@settings(max_examples=60, deadline=None)
@given(
    tables=st.lists(_tables(), min_size=1, max_size=3),
    max_sheet_rows=st.sampled_from([7, 12, EXCEL_MAX_ROWS]),
)
def test_any_table_gives_the_bytes_of_the_public_api(
    tables: list[Table], max_sheet_rows: int
) -> None:
    # Blanks anywhere (so a column's format may first be met below the first row), shared
    # texts between columns and tables, tables split over sheets.
    keyed = tuple(
        Table(**{**vars(t), "key": f"t{i}", "sheet": f"Data {i}"}) for i, t in enumerate(tables)
    )
    bulk, public = _both_ways(make_report_context(tables=keyed), max_sheet_rows)
    assert bulk == public


def _sheet(bulk: bool, extra: Callable[[Worksheet, Any], None]) -> bytes:
    """A sheet with a title, a body of a number, a text and a boolean column (blanks in each) in
    columns B, D and F, and whatever `extra` adds, written through `BulkWorksheet` or cell by
    cell."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = book.add_worksheet("Data", BulkWorksheet)
    ws.write_string(0, 0, "Title", book.add_format({"bold": True}))
    formats = [book.add_format({"num_format": f}) for f in ("0.00", "@", "General")]
    columns = [
        ("money", [2, 0, -1, 1, 0, 2], [1.5, -0.25, 1e17]),
        ("text", [-1, 0, 1, 0, 2, -1], ["b", "a & <c>", None]),
        ("bool", [0, -1, 1, 1, 0, 0], [True, False]),
    ]
    for i, ((kind, codes, values), fmt) in enumerate(zip(columns, formats, strict=True)):
        col = 1 + 2 * i  # columns B, D and F
        if bulk:
            ws.write_body_column(2, col, kind, np.array(codes), values, fmt)
            continue
        write = {"money": ws.write_number, "text": ws.write_string, "bool": ws.write_boolean}
        for row, code in enumerate(codes, 2):
            if code >= 0 and values[code] is not None:
                write[kind](row, col, values[code], fmt)
    extra(ws, book)
    book.close()
    return buffer.getvalue()


@pytest.mark.parametrize(
    "extra",
    [
        lambda ws, book: None,
        # A body row of its own height, a cell between the body's columns, one after them, a
        # comment, and a cell in a format first met there.
        lambda ws, book: ws.set_row(4, 30),
        lambda ws, book: ws.write_string(3, 2, "between"),
        lambda ws, book: ws.write_number(5, 9, 7, book.add_format({"italic": True})),
        lambda ws, book: ws.write_comment(6, 0, "note"),
        lambda ws, book: ws.write_string(40, 0, "below"),
    ],
    ids=["body only", "row height", "cell between", "cell after", "comment", "row below"],
)
def test_a_body_gives_the_bytes_of_its_cells_written_one_by_one(extra) -> None:
    assert _sheet(True, extra) == _sheet(False, extra)


def test_a_cell_written_over_a_body_cell_is_refused() -> None:
    def over(ws: Worksheet, book: Any) -> None:
        ws.write_string(3, 3, "over")

    with pytest.raises(ValueError, match=r"^cell D4 is written over a table body's cell$"):
        _sheet(True, over)


def _shared_strings(writer: type[SharedStrings], strings: list[str]) -> str:
    """The shared-strings part `writer` writes for `strings` (each registered once)."""
    table = SharedStringTable()
    for text in strings:
        table._get_shared_string_index(text)
    table._sort_string_data()  # as the workbook does before writing it
    sst = writer()
    sst.string_table = table
    sst._set_xml_writer(io.StringIO())
    sst._assemble_xml_file()
    return sst.fh.getvalue()


# Texts xlsxwriter writes apart (control characters, literal escapes, non-characters, white
# space at either end, rich strings) beside plain ones and XML's own characters.
_SHARED = st.lists(
    st.sampled_from(
        [
            *("a", "Z", " ", "\t", "\n", "\x00", "\x01", "\x1f", "_", "x", "0", "F"),
            *("&", "<", ">", '"', "\ufffe", "\uffff", "é", "\u3000"),
            *("<r>", "</r>", "_x0041_", "_x00e9_"),
        ]
    ),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(strings=st.lists(_SHARED, max_size=12, unique=True))
def test_the_shared_strings_in_bulk_are_xlsxwriters_own_bytes(strings: list[str]) -> None:
    bulk = _shared_strings(workbook_bulk.BulkSharedStrings, strings)
    assert bulk == _shared_strings(SharedStrings, strings)


def test_the_shared_strings_written_apart_are_found_beside_plain_ones() -> None:
    strings = ["plain", " lead", "trail ", "a\x01b", "_x0041_", "<r><t>x</t></r>", "a & b", ""]
    text = _shared_strings(workbook_bulk.BulkSharedStrings, strings)
    assert text == _shared_strings(SharedStrings, strings)
    assert '<si><t xml:space="preserve"> lead</t></si>' in text
    assert "<si><t>a_x0001_b</t></si><si><t>_x005F_x0041_</t></si>" in text


def _two_ranges(sheet_class: type[Worksheet] | None, second: Callable[[Worksheet], Any]) -> Any:
    """A sheet's table (A1:C5, its first), then `second` on the sheet; what `second` gives."""
    book = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": True})
    ws = book.add_worksheet("Data", sheet_class)
    ws.add_table(0, 0, 4, 2, {"name": "first"})
    try:
        return second(ws)
    finally:
        book.close()


@pytest.mark.parametrize(
    ("second", "refused"),
    [
        (lambda ws: ws.add_table(4, 2, 8, 3, {"name": "second"}), "Table range 'C5:D9'"),
        (lambda ws: ws.merge_range(3, 1, 6, 1, "m"), "Merge range 'B4:B7'"),
    ],
    ids=["table", "merge"],
)
def test_a_range_over_a_first_table_is_refused_as_the_public_api_refuses_it(
    second: Callable[[Worksheet], Any], refused: str
) -> None:
    message = rf"^{re.escape(refused)} overlaps previous table range 'A1:C5'\.$"
    for sheet_class in (BulkWorksheet, None):
        with pytest.raises(OverlappingRange, match=message):
            _two_ranges(sheet_class, second)


def test_a_second_table_beside_the_first_is_written_as_the_public_api_writes_it() -> None:
    def beside(ws: Worksheet) -> dict[tuple[int, int], str]:
        ws.add_table(0, 4, 3, 5, {"name": "second"})
        return dict(ws.table_cells)

    recorded = _two_ranges(BulkWorksheet, beside)
    assert recorded == _two_ranges(None, beside)
    assert recorded[(4, 2)] == "A1:C5"
    assert recorded[(3, 5)] == "E1:F4"
    assert len(recorded) == 15 + 8


def test_text_cells_read_by_arrow_are_those_pandas_factorizes() -> None:
    from pkgreport.reports.workbook_cells import _distinct, _factorized

    texts = pd.Series(["b2", None, "a1", "b2", float("nan"), "c3", "a1"], dtype=object)
    codes, values = _distinct(texts)
    expected_codes, expected_values = _factorized(texts)
    assert codes.tolist() == expected_codes.tolist() == [0, -1, 1, 0, -1, 2, 1]
    assert list(values) == list(expected_values) == ["b2", "a1", "c3"]
    mixed = pd.Series(["b2", 3, "b2"], dtype=object)  # not all text: factorized by pandas
    assert _distinct(mixed)[0].tolist() == [0, 1, 0]


def test_a_package_part_gives_its_text_up_once_read() -> None:
    from pkgreport.reports.workbook_bulk import _PackagePart

    part = _PackagePart()
    part.write("<sheet/>")
    assert part.getvalue() == "<sheet/>"
    assert part.closed
