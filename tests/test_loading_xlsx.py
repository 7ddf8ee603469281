"""Loading XLSX workbooks: pre-flight refusals (bombs, encryption, damage), cell text, sheets, headers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xlsxwriter

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.loading import _load_bytes, _overlong_cells, load_file
from pkgreport.inputs.parsing import unwrap_excel_text
from pkgreport.inputs.tables import RawTable, _unwrapped

SETTINGS = Settings()


def workbook_bytes(fill: Callable[[xlsxwriter.Workbook], None], **options: object) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, **options})
    fill(book)
    book.close()
    return buffer.getvalue()


def table_bytes(
    rows: list[list[object]], sheet: str = "Sheet1", first_row: int = 0, first_col: int = 0
) -> bytes:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet(sheet)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:
                    ws.write(first_row + i, first_col + j, value)

    return workbook_bytes(fill)


def load(
    tmp_path: Path, content: bytes, settings: Settings = SETTINGS, name: str = "appointments.xlsx"
) -> tuple[RawTable | None, list[Issue]]:
    path = tmp_path / name
    path.write_bytes(content)
    return load_file(path, "appointments", settings)


def loaded(
    tmp_path: Path, content: bytes, settings: Settings = SETTINGS
) -> tuple[RawTable, list[Issue]]:
    table, issues = load(tmp_path, content, settings)
    assert table is not None, [str(i) for i in issues]
    return table, issues


def refused(tmp_path: Path, content: bytes, settings: Settings = SETTINGS) -> Issue:
    start = time.perf_counter()
    table, issues = load(tmp_path, content, settings)
    assert time.perf_counter() - start < 10
    assert table is None
    assert (
        len(issues) == 1 and issues[0].severity == "error" and issues[0].file == "appointments.xlsx"
    )
    return issues[0]


def rewrite(
    content: bytes, changes: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """The workbook with some parts replaced or added."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            target.writestr(info.filename, changes.pop(info.filename, source.read(info.filename)))
        for name, data in changes.items():
            target.writestr(name, data)
    return out.getvalue()


SIMPLE = table_bytes([["id", "patient_id"], ["A1", "P1"]])


# ---------------------------------------------------------------------------------------------
# cell values to canonical text
# ---------------------------------------------------------------------------------------------


def with_stored_number(rows: list[list[object]], number: float) -> bytes:
    """A workbook whose cell holding 7777.5 stores `number` with all 17 digits, as Excel does
    (xlsxwriter itself writes 16 significant digits, which would hide the float's error)."""
    content = table_bytes(rows)
    sheet = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")
    assert sheet.count(b"<v>7777.5</v>") == 1
    stored = sheet.replace(b"<v>7777.5</v>", f"<v>{number!r}</v>".encode())
    return rewrite(content, {"xl/worksheets/sheet1.xml": stored})


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.1 + 0.2, "0.3"),  # Excel's =0.1+0.2, shown as 0.30
        (1.1 * 3, "3.3"),  # 3.3000000000000003
        (-(0.1 + 0.2), "-0.3"),
        (1234567.89 + 2e-10, "1234567.89"),
        (0.305, "0.305"),  # a real third decimal stays, for the money parser to refuse
        (0.3000001, "0.3000001"),  # 1e-7 from a cent: not a float's error
        (1 / 3, "0.3333333333333333"),
    ],
)
def test_a_number_within_a_billionth_of_a_cent_is_read_as_that_cent(
    tmp_path: Path, number: float, text: str
) -> None:
    table, issues = loaded(tmp_path, with_stored_number([["id", "amount"], ["1", 7777.5]], number))
    assert table.frame["amount"].tolist() == [text] and issues == []


def test_an_excel_float_amount_is_accepted_as_its_cents_and_text_stays_strict(
    tmp_path: Path,
) -> None:
    from pkgreport.inputs.validation import validate_tables

    rows = [
        ["ID", "Patient ID", "Payment Date", "Amount"],
        ["p1", "7", "2026-10-01", 7777.5],
        ["p2", "7", "2026-10-02", "0.30000000000000004"],
    ]
    path = tmp_path / "payments.xlsx"
    path.write_bytes(with_stored_number(rows, 0.1 + 0.2))
    table, _ = load_file(path, "payments", SETTINGS)
    dataset = validate_tables([table], SETTINGS)
    assert dataset.payments["amount"].tolist() == [30]
    assert [(i.severity, i.row, i.value) for i in dataset.issues] == [
        ("error", 3, "0.30000000000000004")
    ]


def test_cell_values_become_canonical_text(tmp_path: Path) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet("Appointments")
        date = book.add_format({"num_format": "yyyy-mm-dd"})
        stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        ws.write_row(
            0,
            0,
            [
                "id",
                "int",
                "float",
                "tiny",
                "date",
                "stamp",
                "bool",
                "blank",
                "formula",
                "note",
                "zero",
            ],
        )
        ws.write_string(1, 0, "00042")
        ws.write_number(1, 1, 123)
        ws.write_number(1, 2, 1234.5)
        ws.write_number(1, 3, 1 / 3)
        ws.write_datetime(1, 4, dt.datetime(2021, 1, 1), date)
        ws.write_datetime(1, 5, dt.datetime(2026, 7, 21, 3, 45), stamp)
        ws.write_boolean(1, 6, True)
        ws.write_formula(1, 8, "=B2*2", None, 246)
        ws.write_string(1, 9, "ABC\r\nDEF\rGHI")
        ws.write_number(1, 10, -0.0)
        ws.write_row(2, 0, ["2", 1e16, -7.25, 1e-05])
        ws.write_boolean(2, 6, False)

    table, issues = loaded(tmp_path, workbook_bytes(fill))
    assert issues == []
    assert table.frame.values.tolist() == [
        [
            "00042",
            "123",
            "1234.5",
            "0.3333333333333333",
            "2021-01-01",
            "2026-07-21T03:45:00",
            "true",
            "",
            "246",
            "ABC\nDEF\nGHI",
            "0",
            "appointments.xlsx",
            2,
        ],
        [
            "2",
            # A whole number past 15 digits has lost digits in the sheet: written as it shows.
            "1e+16",
            "-7.25",
            "1e-05",
            "",
            "",
            "false",
            "",
            "",
            "",
            "",
            "appointments.xlsx",
            3,
        ],
    ]
    assert str(table.frame["source_row"].dtype) == "int64"
    assert (table.file.sheet, table.file.rows, table.file.encoding, table.file.delimiter) == (
        "Appointments",
        2,
        None,
        None,
    )


def test_1904_date_system_gives_the_same_dates(tmp_path: Path) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["date", "stamp"])
        ws.write_datetime(
            1, 0, dt.datetime(2021, 1, 2), book.add_format({"num_format": "dd/mm/yyyy"})
        )
        ws.write_datetime(
            1, 1, dt.datetime(1971, 1, 1, 4, 14), book.add_format({"num_format": "d mmm yyyy h:mm"})
        )

    for options in ({}, {"date_1904": True}):
        table, _ = loaded(tmp_path, workbook_bytes(fill, **options))
        assert table.frame.values.tolist()[0][:2] == ["2021-01-02", "1971-01-01T04:14:00"]


def test_out_of_range_date_cell_is_an_error_with_row_and_column(tmp_path: Path) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["id", "starts_at", "count"])
        ws.write_row(1, 0, ["A1", "x", 2994626])  # a big plain number is fine
        ws.write_string(2, 0, "A2")
        ws.write_number(2, 1, 2994626, book.add_format({"num_format": "yyyy-mm-dd"}))

    issue = refused(tmp_path, workbook_bytes(fill))
    assert (issue.row, issue.column, issue.value) == (3, "starts_at", "2994626")
    assert "date out of range in cell B3" in issue.message


def test_excel_error_cells_are_errors_not_blanks(tmp_path: Path) -> None:
    # calamine reads an error cell (#DIV/0!) as "", which would pass for a missing value.
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["id", "total"])
        ws.write_row(1, 0, ["A1", 5])
        ws.write_string(2, 0, "A2")
        ws.write_formula(2, 1, "=1/0", None, "#DIV/0!")
        ws.write_formula(3, 0, "=NA()", book.add_format({"bold": True}), "#N/A")
        ws.write_formula(4, 27, "=NA()", None, "#N/A")

    table, issues = load(tmp_path, workbook_bytes(fill))
    assert table is None
    assert [(i.severity, i.row, i.column, i.value) for i in issues] == [
        ("error", 3, "total", "#DIV/0!"),
        ("error", 4, "id", "#N/A"),
        ("error", 5, "AB", "#N/A"),
    ]
    assert "holds the Excel error #DIV/0! instead of a value" in issues[0].message


# ---------------------------------------------------------------------------------------------
# where the table is: header row, trailing and blank rows and columns, sheets
# ---------------------------------------------------------------------------------------------


def test_header_found_after_leading_empty_rows_and_columns(tmp_path: Path) -> None:
    content = table_bytes(
        [["id", "patient_id"], ["A1", "P1"], ["A2", "P2"]], first_row=2, first_col=2
    )
    table, issues = loaded(tmp_path, content)
    assert list(table.frame.columns) == ["id", "patient_id", "source_file", "source_row"]
    assert table.frame.values.tolist() == [
        ["A1", "P1", "appointments.xlsx", 4],
        ["A2", "P2", "appointments.xlsx", 5],
    ]
    assert issues == []


def test_trailing_empty_rows_and_columns_are_dropped(tmp_path: Path) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["id", "patient_id"])
        ws.write_row(1, 0, ["A1", "P1"])
        ws.write_blank(40, 9, None, book.add_format({"bold": True}))
        ws.write_string(30, 6, "")

    table, issues = loaded(tmp_path, workbook_bytes(fill))
    assert table.frame.values.tolist() == [["A1", "P1", "appointments.xlsx", 2]]
    assert issues == []


def test_blank_rows_inside_the_table_are_dropped_with_a_warning(tmp_path: Path) -> None:
    content = table_bytes([["id"], ["A1"], [None], ["A2"], [None], [None], ["A3"]])
    table, issues = loaded(tmp_path, content)
    assert [r[-1] for r in table.frame.values.tolist()] == [2, 4, 7]
    assert [(i.severity, i.row, i.message) for i in issues] == [
        ("warning", 3, "blank row(s) 3, 5, 6 skipped")
    ]


def test_values_beside_the_table_without_a_header_are_dropped_with_a_warning(
    tmp_path: Path,
) -> None:
    content = table_bytes([["id", "patient_id", None], ["A1", "P1", None], ["A2", "P2", "a note"]])
    table, issues = loaded(tmp_path, content)
    assert list(table.frame.columns) == ["id", "patient_id", "source_file", "source_row"]
    assert [(i.severity, i.row, i.value) for i in issues] == [("warning", 3, "a note")]
    assert "column 3 (C) has no header" in issues[0].message


def test_blank_header_inside_the_table_is_an_error(tmp_path: Path) -> None:
    issue = refused(tmp_path, table_bytes([["id", None, "age"], ["1101", "John", 30]]))
    assert (issue.row, issue.value) == (
        2,
        "John",
    ) and "column 2 (B) has a blank header" in issue.message


def test_duplicate_headers_are_an_error(tmp_path: Path) -> None:
    issue = refused(tmp_path, table_bytes([["id", "name", "id "], ["1", "a", "2"]]))
    assert (issue.row, issue.column) == (
        1,
        "id",
    ) and "duplicate header 'id' (columns 1, 3)" in issue.message


def test_empty_sheet_has_no_header_row(tmp_path: Path) -> None:
    issue = refused(tmp_path, workbook_bytes(lambda book: book.add_worksheet("Empty")))
    assert "sheet 'Empty' is empty: no header row" in issue.message


def test_sheet_is_the_first_or_the_one_named(tmp_path: Path) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("First").write_row(0, 0, ["one"])
        second = book.add_worksheet("Second")
        second.write_column(0, 0, ["two", "x"])

    content = workbook_bytes(fill)
    table, _ = loaded(tmp_path, content)
    assert (table.frame.columns[0], table.file.sheet) == ("one", "First")
    table, _ = loaded(tmp_path, content, SETTINGS.replace(sheet="Second"))
    assert (table.frame.columns[0], table.file.sheet, table.frame.values.tolist()) == (
        "two",
        "Second",
        [["x", "appointments.xlsx", 2]],
    )
    issue = refused(tmp_path, content, SETTINGS.replace(sheet="Third"))
    assert (
        issue.value == "Third"
        and "no sheet named 'Third'; the sheets are 'First', 'Second'" in issue.message
    )


def test_cell_count_is_capped(tmp_path: Path) -> None:
    content = table_bytes([["a", "b", "c", "d"]] + [[1, 2, 3, 4]] * 3)
    loaded(tmp_path, content, SETTINGS.replace(max_xlsx_cells=16))
    issue = refused(tmp_path, content, SETTINGS.replace(max_xlsx_cells=15))
    assert "4 rows x 4 columns, over the limit of 15 cells" in issue.message


def test_far_apart_cells_are_refused_before_the_reader_allocates_a_grid(tmp_path: Path) -> None:
    # calamine would allocate 1,048,576 x 16,384 cells (and abort the process) for this sheet.
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet()
        ws.write("A1", "id")
        ws.write("XFD1048576", "x")

    content = workbook_bytes(fill)
    issue = refused(tmp_path, content)
    assert "1,048,576 rows x 16,384 columns" in issue.message
    # The same cell written in an unusual attribute order is caught by the precise scan.
    sheet = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")
    odd = sheet.replace(b'<c r="XFD1048576" t="s">', b'<c t="s" r="XFD1048576">')
    assert odd != sheet
    issue = refused(tmp_path, rewrite(content, {"xl/worksheets/sheet1.xml": odd}))
    assert "1,048,576 rows x 16,384 columns" in issue.message


SHEET_HEAD = (
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = b"</sheetData></worksheet>"


def _inline(text: str, ref: str = "") -> bytes:
    attrs = f' t="inlineStr" r="{ref}"' if ref else ' t="inlineStr"'
    return f"<c{attrs}><is><t>{text}</t></is></c>".encode()


def test_cells_without_references_are_counted_into_the_bound(tmp_path: Path) -> None:
    # Cells with no r attribute take the next column; 20,000 of them on row 1,048,576 make a
    # grid of 21 billion cells, so the file is refused before the reader sees it.
    far_row = b'<row r="1048576">' + b"<c/>" * 20_000 + _inline("x") + b"</row>"
    sheet = SHEET_HEAD + b'<row r="1">' + _inline("id", "A1") + b"</row>" + far_row + SHEET_TAIL
    issue = refused(tmp_path, rewrite(SIMPLE, {"xl/worksheets/sheet1.xml": sheet}))
    assert "1,048,576 rows x 20,00" in issue.message and "over the limit" in issue.message


def test_unusual_but_valid_cell_markup_still_loads(tmp_path: Path) -> None:
    # Attribute order and missing references push the scan onto its precise path; a small
    # sheet written that way is not refused.
    rows = [
        b'<row r="1">' + _inline("id", "A1") + _inline("patient_id", "B1") + b"</row>",
        b"<row>" + _inline("A1") + _inline("P1") + b"</row>",
        b'<row r="3"><c s="0" r="A3" t="inlineStr"><is><t>A2</t></is></c>'
        + _inline("P2", "B3")
        + b"</row>",
    ]
    sheet = SHEET_HEAD + b"".join(rows) + SHEET_TAIL
    table, issues = loaded(tmp_path, rewrite(SIMPLE, {"xl/worksheets/sheet1.xml": sheet}))
    assert table.frame.values.tolist() == [
        ["A1", "P1", "appointments.xlsx", 2],
        ["A2", "P2", "appointments.xlsx", 3],
    ]
    assert issues == []


# A workbook whose style 1 is a date and time format, with the sheet's XML written by the test.
DATED = workbook_bytes(
    lambda book: book.add_worksheet().write_datetime(
        0, 0, dt.datetime(2026, 8, 1), book.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    )
)
DATED_HEADER = b'<row r="1">' + b"".join(
    _inline(h, f"{c}1") for h, c in zip(["id", "starts_at", "note"], "ABC", strict=True)
)
OUT_OF_RANGE = "date out of range in cell B3 (after 9999-12-31 or before 1900): type the date again in that cell"


def dated_sheet(*rows: bytes) -> bytes:
    sheet = SHEET_HEAD + DATED_HEADER + b"</row>" + b"".join(rows) + SHEET_TAIL
    return rewrite(DATED, {"xl/worksheets/sheet1.xml": sheet})


# 18-digit ids stored as numbers beside date-styled cells: a styled empty cell, a styled text
# cell, a styled row, and a date before and after.
IDS_BESIDE_DATES = (
    b'<row r="2" s="1" customFormat="1"><c r="A2"><v>123456789012345680</v></c>'
    b'<c r="B2" s="1"><v>46235.5</v></c><c r="C2" s="1"/></row>'
    b'<row r="3"><c r="A3" s="1" t="inlineStr"><is><t>x</t></is></c>'
    b'<c r="B3" s="1"><f>B2+1</f><v>46236.5</v></c><c r="C3"><v>-123456789012345680</v></c></row>'
)


def test_an_id_in_a_number_cell_beside_date_cells_is_never_taken_for_a_date(
    tmp_path: Path,
) -> None:
    table, issues = loaded(tmp_path, dated_sheet(IDS_BESIDE_DATES))
    assert issues == []
    assert table.frame.values.tolist() == [
        # Past 2**53 the ids read as a spreadsheet shows them, for the id check to refuse.
        ["1.23456789012346e+17", "2026-08-01T12:00:00", "", "appointments.xlsx", 2],
        ["x", "2026-08-02T12:00:00", "-1.23456789012346e+17", "appointments.xlsx", 3],
    ]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        (b'<c r="B3" s="1"><v>2994626</v></c>', "2994626"),
        (b"<c s='1' r='B3'><v>2994626</v></c>", "2994626"),
        (b'<c r="B3" s="1"><f>B2*100</f><v>2994626</v></c>', "2994626"),
        (b'<c r="B3" s="1"><v>2.994626E6</v></c>', "2994626"),
        (b'<c r="B3" s = "1" >\n  <v>-1</v></c>', "-1"),
        # The reader turns a negative date into a time of day (18:00), which would pass.
        (b'<c r="B3" s="1"><v>-100.25</v></c>', "-100.25"),
    ],
)
def test_out_of_range_date_is_found_in_any_cell_markup_beside_ids(
    tmp_path: Path, cell: bytes, value: str
) -> None:
    second = IDS_BESIDE_DATES.split(b'<row r="3">')[0]
    third = b'<row r="3"><c r="A3"><v>123456789012345680</v></c>' + cell + b"</row>"
    issue = refused(tmp_path, dated_sheet(second, third))
    assert (issue.row, issue.column, issue.value, issue.message) == (
        3,
        "starts_at",
        value,
        OUT_OF_RANGE,
    )


def test_a_default_style_that_is_a_date_applies_to_cells_without_a_style(tmp_path: Path) -> None:
    styles = zipfile.ZipFile(io.BytesIO(DATED)).read("xl/styles.xml")
    date_first = styles.replace(
        b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        b'<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        1,
    )
    assert date_first != styles
    third = b'<row r="3">' + _inline("a", "A3") + b'<c r="B3"><v>2994626</v></c></row>'
    issue = refused(tmp_path, rewrite(dated_sheet(third), {"xl/styles.xml": date_first}))
    assert (issue.row, issue.column, issue.value, issue.message) == (
        3,
        "starts_at",
        "2994626",
        OUT_OF_RANGE,
    )


def test_the_sheet_is_scanned_for_dates_only_when_the_workbook_has_a_date_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def book_with(seen: object, num_format: str | None) -> bytes:
        def fill(book: xlsxwriter.Workbook) -> None:
            ws = book.add_worksheet()
            ws.write_row(0, 0, ["id", "count", "seen"])
            ws.write_row(1, 0, [200000001, 2])
            ws.write(
                1, 2, seen, book.add_format({"num_format": num_format}) if num_format else None
            )

        return workbook_bytes(fill)

    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(
        self: zipfile.ZipFile, name: str | zipfile.ZipInfo, *args: object, **kwargs: object
    ) -> object:
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    sheet_opened = []
    for seen, num_format, text in [
        (46235, None, "46235"),
        (dt.datetime(2026, 8, 1), "d/m/yy", "2026-08-01"),
    ]:
        opened.clear()
        table, issues = loaded(tmp_path, book_with(seen, num_format))
        assert (table.frame.values.tolist(), issues) == (
            [["200000001", "2", text, "appointments.xlsx", 2]],
            [],
        )
        sheet_opened.append(opened.count("xl/worksheets/sheet1.xml"))
    # The same sheet is read once more, to look for dates, only when a date format exists.
    assert sheet_opened[1] == sheet_opened[0] + 1


# ---------------------------------------------------------------------------------------------
# pre-flight: not a workbook, encrypted, legacy, damaged, bombs
# ---------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    assert refused(tmp_path, b"").message.startswith("not a valid xlsx (empty file)")


def test_password_protected_workbook(tmp_path: Path) -> None:
    ole = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 500
        + "EncryptionInfo".encode("utf-16-le")
        + b"\x00" * 100
    )
    assert "password protected" in refused(tmp_path, ole).message


def test_legacy_xls(tmp_path: Path) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500 + "Workbook".encode("utf-16-le")
    assert (
        "legacy .xls" in refused(tmp_path, ole).message
        and "re-save it as .xlsx" in refused(tmp_path, ole).message
    )


@pytest.mark.parametrize(
    "content", [b"id,patient_id\n1,2\n", b"PK\x03\x04" + b"\x00" * 40, SIMPLE[: len(SIMPLE) // 2]]
)
def test_not_a_zip_or_a_damaged_zip(tmp_path: Path, content: bytes) -> None:
    assert refused(tmp_path, content).message.startswith("not a valid xlsx")


def test_zip_without_a_workbook(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    assert "no workbook inside" in refused(tmp_path, out.getvalue()).message


def test_damaged_member_data_is_refused(tmp_path: Path) -> None:
    content = bytearray(rewrite(SIMPLE, {}, zipfile.ZIP_STORED))
    at = content.find(b"<sheetData>")
    content[at : at + 11] = b"<sheetDaXa>"  # the CRC no longer matches
    assert "damaged" in refused(tmp_path, bytes(content)).message


def test_compression_ratio_bomb_is_refused(tmp_path: Path) -> None:
    bomb = rewrite(SIMPLE, {"xl/media/padding.bin": b"\x00" * (8 << 20)})
    issue = refused(tmp_path, bomb)
    assert "part xl/media/padding.bin compresses" in issue.message and "zip bomb" in issue.message


def test_total_uncompressed_size_is_capped(tmp_path: Path) -> None:
    issue = refused(tmp_path, SIMPLE, SETTINGS.replace(max_xlsx_uncompressed_bytes=1000))
    assert "unpacks to" in issue.message and "over the limit of 1,000" in issue.message


def test_declared_sizes_that_lie_are_caught_while_decompressing(tmp_path: Path) -> None:
    content = bytearray(
        rewrite(SIMPLE, {"xl/worksheets/sheet1.xml": b"<x>" + b" " * 200_000 + b"</x>"})
    )
    # Patch the central directory's uncompressed size of the sheet to 100 bytes.
    central = content.rfind(
        b"PK\x01\x02", 0, content.find(b"xl/worksheets/sheet1.xml", content.find(b"PK\x01\x02"))
    )
    content[central + 24 : central + 28] = (100).to_bytes(4, "little")
    issue = refused(tmp_path, bytes(content))
    assert "damaged" in issue.message and "CRC" in issue.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>&lol3;</t></si></sst>"""


@pytest.mark.parametrize(
    "part,data",
    [
        ("xl/sharedStrings.xml", BILLION_LAUGHS),
        ("[Content_Types].xml", BILLION_LAUGHS),
        ("docProps/core.xml", BILLION_LAUGHS.decode().encode("utf-16")),
    ],
)
def test_xml_entity_bombs_are_refused_before_parsing(
    tmp_path: Path, part: str, data: bytes
) -> None:
    issue = refused(tmp_path, rewrite(SIMPLE, {part: data}))
    assert f"part {part} declares a DOCTYPE or ENTITY" in issue.message


def test_utf16_worksheet_is_refused_because_its_cells_cannot_be_bounded(tmp_path: Path) -> None:
    sheet = zipfile.ZipFile(io.BytesIO(SIMPLE)).read("xl/worksheets/sheet1.xml")
    utf16 = sheet.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    issue = refused(tmp_path, rewrite(SIMPLE, {"xl/worksheets/sheet1.xml": utf16}))
    assert "worksheet xl/worksheets/sheet1.xml is written in UTF-16" in issue.message


def test_xml_comments_are_not_mistaken_for_a_doctype(tmp_path: Path) -> None:
    core = zipfile.ZipFile(io.BytesIO(SIMPLE)).read("docProps/core.xml")
    table, _ = loaded(
        tmp_path, rewrite(SIMPLE, {"docProps/core.xml": core + b"<!-- saved by a tool -->"})
    )
    assert table.frame.values.tolist() == [["A1", "P1", "appointments.xlsx", 2]]


def test_reader_failure_is_an_issue_not_a_traceback(tmp_path: Path) -> None:
    broken = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row><c r="!!"><v>1</v></c></row></sheetData></worksheet>'
    issue = refused(tmp_path, rewrite(SIMPLE, {"xl/worksheets/sheet1.xml": broken}))
    assert "could not read" in issue.message and "save it again" in issue.message


# --- the one pass over a sheet's cells (issue 11) -------------------------------------------


def test_the_run_pass_unwraps_and_bounds_as_the_per_cell_work_does() -> None:
    # ="…" cells in a later run, a "=" and a '"' split over two cells at a run's edge, text
    # without any, and a column holding a non-text value.
    wrapped = ["x"] * 1023 + ["="] + ['"a'] + ["b"] * 2000 + [' ="15583""7" ', '="1"', "c" * 3000]
    columns = [
        np.array(wrapped, dtype=object),
        np.array(["plain"] * 3000, dtype=object),
        np.array(['="1"', 5], dtype=object),
    ]
    out, bound = _unwrapped(columns, [0, 1])
    for got, column in zip(out, columns, strict=True):
        assert got.tolist() == unwrap_excel_text(column).tolist()
    assert out[0][-3:].tolist() == ['15583"7', "1", "c" * 3000]
    assert bound is not None and bound >= max(len(c) for c in wrapped)
    assert bound < 1_000_000  # so the default cap needs no cell measured
    out, bound = _unwrapped(columns, [0, 1, 2])
    assert [a.tolist() for a in out] == [unwrap_excel_text(c).tolist() for c in columns]
    assert bound is None


@pytest.mark.parametrize("cap", [2999, 3000, 1_000_000])
def test_a_sheets_bound_finds_the_same_overlong_cells_as_measuring_each(
    tmp_path: Path, cap: int
) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet("Sheet1")
        ws.write_row(0, 0, ["ID", "Notes"])
        for i in range(1, 2500):
            ws.write_string(i, 0, f'="{i}"')
            ws.write_string(i, 1, "é" * (3000 if i == 2000 else 20))

    path = tmp_path / "appointments.xlsx"
    path.write_bytes(workbook_bytes(fill))
    settings = SETTINGS.replace(max_cell_chars=cap)
    table, issues = _load_bytes(path, "appointments", path.read_bytes(), settings)
    assert table is not None and issues == []
    assert table.frame["ID"].iat[0] == "1"
    measured = _overlong_cells(dataclasses.replace(table, longest_cell_bytes=None), cap)
    assert _overlong_cells(table, cap) == measured
    assert [i.row for i in measured] == ([2001] if cap < 3000 else [])
    assert load_file(path, "appointments", settings)[1] == measured


def test_the_sheets_one_pass_makes_text_bounds_cells_and_unwraps_only_when_needed(
    tmp_path: Path,
) -> None:
    rows: list[list[object]] = [
        ["ID", "Notes", "Amount"],
        ["a1", "line one\r\nline two", 12.5],
        ["a2", "x" * 5000, 7],
    ]
    table, issues = loaded(tmp_path, table_bytes(rows))
    assert issues == []
    assert table.frame.drop(columns=["source_file"]).values.tolist() == [
        ["a1", "line one\nline two", "12.5", 2],
        ["a2", "x" * 5000, "7", 3],
    ]
    assert table.longest_cell_bytes is not None and 5000 <= table.longest_cell_bytes < 6000

    # ="…" beside the table, under no header, is not unwrapped: the warning quotes it as written.
    def fill(book: xlsxwriter.Workbook) -> None:
        ws = book.add_worksheet("Sheet1")
        ws.write_string(0, 0, "ID")
        ws.write_string(1, 0, "a1")
        ws.write_string(1, 2, '="7"')

    table, issues = loaded(tmp_path, workbook_bytes(fill))
    assert table.frame["ID"].tolist() == ["a1"]
    assert [i.value for i in issues] == ['="7"']
