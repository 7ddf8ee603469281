"""A big sheet read in two halves gives exactly the whole read's cells, and so the same table and
the same issues: every workbook here is read both ways (every sheet split, whatever its size)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from pkgreport.config import Settings
from pkgreport.inputs import read_ahead, xlsx_sheet
from pkgreport.inputs.loading import load_file, load_folder
from pkgreport.inputs.xlsx_safety import preflight_xlsx
from pkgreport.inputs.xlsx_split import read_split, split_rows

SETTINGS = Settings()
SHEET = "xl/worksheets/sheet1.xml"
_HERE = Path(__file__).resolve()
CORPUS = next(
    (
        c
        for c in (_HERE.parents[2] / "shared" / "corpus", _HERE.parents[1] / "shared" / "corpus")
        if (c / "MANIFEST.md").is_file()
    ),
    None,
)


def whole_grid(content: bytes, sheet_name: str) -> list[list[Any]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(content))
    return book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)


def split_grid(content: bytes) -> list[list[Any]] | None:
    """The first sheet read in halves, or None when it is not split (as `open_sheet` decides)."""
    kept: dict[str, bytes] = {}
    archive, _, problem = preflight_xlsx(content, SETTINGS, kept, 0)
    if problem is not None or SHEET not in kept:
        return None
    assert archive is not None
    name = CalamineWorkbook.from_filelike(io.BytesIO(content)).sheet_names[0]
    return read_split(archive, SHEET, name, kept[SHEET])


def read_both_ways(
    tmp_path: Path, content: bytes, monkeypatch: pytest.MonkeyPatch, name: str = "appointments.xlsx"
) -> tuple[Any, Any]:
    """load_file's (table, issues) read whole, then with every sheet split."""
    path = tmp_path / name
    path.write_bytes(content)
    whole = load_file(path, "appointments", SETTINGS)
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        split = load_file(path, "appointments", SETTINGS)
    return whole, split


def assert_same_tables(whole: Any, split: Any) -> None:
    (whole_table, whole_issues), (split_table, split_issues) = whole, split
    assert split_issues == whole_issues
    assert (whole_table is None) == (split_table is None)
    if whole_table is not None:
        assert split_table.frame.equals(whole_table.frame)
        assert split_table.frame.dtypes.equals(whole_table.frame.dtypes)
        assert split_table.longest_cell_bytes == whole_table.longest_cell_bytes


def xlsxwriter_book(fill: Callable[[Any], None]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    fill(book)
    book.close()
    return buffer.getvalue()


def rewrite_sheet(content: bytes, sheet_xml: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = sheet_xml if info.filename == SHEET else source.read(info.filename)
            target.writestr(info.filename, data)
    return out.getvalue()


def mixed_rows(count: int, gap: range = range(0)) -> list[tuple[int, list[object]]]:
    """(row index, values): text, numbers, booleans, dates, blanks; no rows in `gap`."""
    rows: list[tuple[int, list[object]]] = [(0, ["id", "amount", "paid", "when", "note"])]
    for i in range(1, count):
        if i in gap:
            continue
        note = None if i % 7 == 0 else f"note {i % 13}"
        day = dt.datetime(2026, 8, 1) + dt.timedelta(hours=i)
        rows.append((i, [f"A{i}", i * 1.25, i % 2 == 0, day, note]))
    return rows


def by_xlsxwriter(rows: list[tuple[int, list[object]]], first_col: int = 0) -> bytes:
    def fill(book: Any) -> None:
        ws = book.add_worksheet("Appointments")
        when = book.add_format({"num_format": "dd/mm/yyyy hh:mm"})
        for i, values in rows:
            for j, value in enumerate(values):
                if isinstance(value, dt.datetime):
                    ws.write_datetime(i, first_col + j, value, when)
                elif value is not None:
                    ws.write(i, first_col + j, value)

    return xlsxwriter_book(fill)


def by_openpyxl(rows: list[tuple[int, list[object]]]) -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    for i, values in rows:
        for j, value in enumerate(values):
            if value is not None:
                ws.cell(row=i + 1, column=j + 1, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def hand_written(rows: list[bytes], head: bytes = b"") -> bytes:
    """A workbook whose sheet XML is these rows, in a default-namespace `<sheetData>`."""
    base = by_xlsxwriter([(0, ["id"])])
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main">' + head + b"<sheetData>" + b"".join(rows)
    )
    return rewrite_sheet(base, sheet + b'</sheetData><pageMargins left="0.7"/></worksheet>')


def cell(ref: str, value: str, kind: str = "inlineStr") -> bytes:
    if kind == "inlineStr":
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'.encode()
    kind_attr = f' t="{kind}"' if kind else ""
    return f'<c r="{ref}"{kind_attr}><v>{value}</v></c>'.encode()


def row(number: int, *cells: bytes, attrs: str = "") -> bytes:
    return f'<row r="{number}"{attrs}>'.encode() + b"".join(cells) + b"</row>"


def typed_rows(first: int, last: int, column: str = "A") -> list[bytes]:
    """Rows of inline strings, numbers, booleans, strings of formulas and error cells."""
    rows = [row(1, cell("A1", "id"), cell("B1", "n"), cell("C1", "flag"), cell("D1", "f"))]
    for i in range(first, last):
        rows.append(
            row(
                i,
                cell(f"{column}{i}", f"x{i} &amp; y"),
                cell(f"B{i}", str(i * 0.5), ""),
                cell(f"C{i}", str(i % 2), "b"),
                cell(
                    f"D{i}", "#N/A" if i == last - 3 else f"s{i}", "e" if i == last - 3 else "str"
                ),
            )
        )
    return rows


SPLIT = {
    "xlsxwriter": by_xlsxwriter(mixed_rows(400)),
    "xlsxwriter, blank rows across the middle": by_xlsxwriter(mixed_rows(400, range(150, 260))),
    "xlsxwriter, from column C": by_xlsxwriter(mixed_rows(300), first_col=2),
    "openpyxl": by_openpyxl(mixed_rows(400, range(190, 210))),
    "inline strings, numbers, booleans, errors": hand_written(typed_rows(2, 300)),
    "the second half from column B": hand_written(
        typed_rows(2, 20) + [row(i, cell(f"C{i}", "late")) for i in range(400, 700)]
    ),
    "the second half wider": hand_written(
        typed_rows(2, 200) + [row(i, cell(f"G{i}", "wide")) for i in range(300, 500)]
    ),
    "empty row elements across the middle": hand_written(
        typed_rows(2, 100)
        + [row(i, attrs=' spans="1:4"') for i in range(100, 900)]
        + typed_rows(900, 950)[1:]
    ),
    "no values in the first half": hand_written(
        [row(i, attrs=' spans="1:4"') for i in range(1, 800)] + typed_rows(800, 900)[1:]
    ),
    "no values in the second half": hand_written(
        typed_rows(2, 100) + [row(i, attrs=' spans="1:4"') for i in range(100, 1200)]
    ),
    "rows without a reference, cells with one": hand_written(
        [r.replace(b'<row r="', b'<row data-r="') for r in typed_rows(2, 300)]
    ),
    "a dimension that is wrong": hand_written(typed_rows(2, 300), head=b'<dimension ref="A1:B2"/>'),
}

# Sheets that are not plain enough: read whole, never split.
NOT_SPLIT = {
    "rows out of order": hand_written(
        typed_rows(200, 400) + [row(i, cell(f"A{i}", "early")) for i in range(2, 150)]
    ),
    "a row written in both halves": hand_written(typed_rows(2, 300) + typed_rows(2, 300)[1:]),
    "a comment": hand_written(
        [*typed_rows(2, 150), b"<!-- a <row r='9'> -->", *typed_rows(150, 300)[1:]]
    ),
    "cells without a reference": hand_written(
        [r.replace(b'<c r="', b'<c data-r="') for r in typed_rows(2, 300)]
    ),
    "a namespace prefix": rewrite_sheet(
        by_xlsxwriter(mixed_rows(50)),
        b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
        + b"".join(
            f'<x:row r="{i}"><x:c r="A{i}" t="inlineStr"><x:is><x:t>v{i}</x:t></x:is></x:c></x:row>'.encode()
            for i in range(1, 200)
        )
        + b"</x:sheetData></x:worksheet>",
    ),
    "two sheets": xlsxwriter_book(
        lambda book: [book.add_worksheet(n).write_column(0, 0, ["id", *range(300)]) for n in "AB"]
    ),
}


@pytest.mark.parametrize("name", list(SPLIT))
def test_a_split_sheet_reads_as_the_whole_sheet(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = SPLIT[name]
    sheet_name = CalamineWorkbook.from_filelike(io.BytesIO(content)).sheet_names[0]
    grid = split_grid(content)
    assert grid is not None
    assert grid == whole_grid(content, sheet_name)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))


@pytest.mark.parametrize("name", list(NOT_SPLIT))
def test_a_sheet_that_is_not_plain_is_read_whole(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = NOT_SPLIT[name]
    assert split_grid(content) is None
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))


def pieces_of(xml: bytes, size: int) -> list[bytes]:
    """The XML in pieces of about `size` bytes, each cut just after a tag, as the pre-flight
    keeps a sheet."""
    pieces, at = [], 0
    while at < len(xml):
        end = xml.find(b">", at + size)
        end = len(xml) if end < 0 else end + 1
        pieces.append(xml[at:end])
        at = end
    return pieces


@pytest.mark.parametrize(
    "content",
    [
        SPLIT["xlsxwriter"][: len(SPLIT["xlsxwriter"]) * 3 // 5],
        SPLIT["xlsxwriter"][:-30],
        b"id,patient_id\nA1,P1\n",
        b"",
    ],
    ids=["cut short", "end of the archive cut off", "a CSV named .xlsx", "empty"],
)
def test_a_damaged_workbook_is_refused_alike(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, split = read_both_ways(tmp_path, content, monkeypatch)
    assert whole[0] is None and whole[1]
    assert_same_tables(whole, split)


@pytest.mark.parametrize("size", [1, 7, 100, 1_000, 10**9])
def test_the_cut_falls_at_a_row_start(size: int) -> None:
    sheet = (
        b"<worksheet><sheetData>" + b"".join(typed_rows(2, 40)) + b"</sheetData><x/></worksheet>"
    )
    halves = split_rows(pieces_of(sheet, size))
    assert halves is not None
    first, second = (b"".join(bytes(piece) for piece in half) for half in halves)
    assert first.startswith(b'<worksheet><sheetData><row r="1">')
    assert first.endswith(b"</row></sheetData><x/></worksheet>")
    assert second.startswith(b'<worksheet><sheetData><row r="')
    assert second.endswith(b"</row></sheetData><x/></worksheet>")
    assert len(first) - len(b"</sheetData><x/></worksheet>") >= len(sheet) * 42 // 100 - 20
    rows_in = [half.count(b"<row ") for half in (first, second)]
    assert sum(rows_in) == sheet.count(b"<row ") and min(rows_in) > 10
    assert (
        first[: -len(b"</sheetData><x/></worksheet>")] + second[len(b"<worksheet><sheetData>") :]
        == sheet
    )


@pytest.mark.parametrize(
    "sheet",
    [
        b'<worksheet><sheetData r="1"><row r="1"></row><row r="2"></row></sheetData></worksheet>',
        b'<worksheet><sheetData><row r="1"></row><row r="2"></row></sheetData><sheetData/></worksheet>',
        b'<worksheet><sheetData><row r="1"></row></sheetData><sheetData><row r="2"></row></sheetData></worksheet>',
        b'<worksheet><sheetData><row r="1"></row><![CDATA[<row r="2">]]></sheetData></worksheet>',
        b"<worksheet><sheetData></sheetData></worksheet>",
        b"<worksheet><sheetData/></worksheet>",
    ],
)
def test_a_sheet_with_an_unusual_outline_is_not_cut(sheet: bytes) -> None:
    for size in (1, 10**9):
        assert split_rows(pieces_of(sheet, size)) is None


def test_a_sheet_in_pieces_not_cut_after_a_tag_is_not_cut() -> None:
    sheet = b"<worksheet><sheetData>" + b"".join(typed_rows(2, 40)) + b"</sheetData></worksheet>"
    assert split_rows([sheet]) is not None
    at = sheet.index(b"<row", 500) + 2  # inside a row's tag
    assert split_rows([sheet[:at], sheet[at:]]) is None


def corpus_workbooks() -> list[Path]:
    return sorted(CORPUS.glob("*.xlsx")) if CORPUS is not None else []


@pytest.mark.skipif(CORPUS is None, reason="the shared corpus folder is not beside the repository")
@pytest.mark.parametrize("path", corpus_workbooks(), ids=lambda p: p.name)
def test_corpus_workbooks_read_alike_split_and_whole(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = path.read_bytes()
    grid = split_grid(content)
    if grid is not None:
        sheet_name = CalamineWorkbook.from_filelike(io.BytesIO(content)).sheet_names[0]
        assert grid == whole_grid(content, sheet_name)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch, path.name))


def test_a_folder_read_ahead_with_its_sheets_split_loads_as_read_whole_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Appointments.xlsx").write_bytes(SPLIT["openpyxl"])
    (tmp_path / "Cases.xlsx").write_bytes(SPLIT["xlsxwriter, from column C"])
    (tmp_path / "Payments.xlsx").write_bytes(SPLIT["xlsxwriter"][:3000])  # cut short
    settings = Settings(input_dir=tmp_path)
    whole = load_folder(tmp_path, settings)
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        read_ahead.start(settings)
        split = load_folder(tmp_path, settings)
    assert not read_ahead._started
    assert split[1] == whole[1] and [i.file for i in whole[1]] == [
        "Appointments.xlsx",
        "Payments.xlsx",
    ]
    assert [t.file for t in split[0]] == [t.file for t in whole[0]] and len(whole[0]) == 2
    for a, b in zip(split[0], whole[0], strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)


def test_the_read_benchmark_times_a_workbook_whole_and_split(tmp_path: Path) -> None:
    path = tmp_path / "Appointments.xlsx"
    path.write_bytes(SPLIT["xlsxwriter"])
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_xlsx_read.py"
    done = subprocess.run(
        [sys.executable, str(script), str(path), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("whole  median of 1: ") and lines[-2].endswith("(read whole)")
    assert lines[-1].startswith("split  median of 1: ") and lines[-1].endswith("(split in two)")


def test_the_imports_wait_for_the_biggest_workbooks_pre_flight_then_it_loads_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Appointments.xlsx").write_bytes(SPLIT["openpyxl"])
    (tmp_path / "Cases.xlsx").write_bytes(SPLIT["xlsxwriter, from column C"])
    settings = Settings(input_dir=tmp_path)
    whole = load_folder(tmp_path, settings)
    read_ahead.wait_for_checks()  # nothing started: returns at once
    monkeypatch.setattr(read_ahead, "_CHECK_FIRST_BYTES", 0)
    read_ahead.start(settings)
    biggest = max(read_ahead._started.values(), key=lambda r: r.path.stat().st_size)
    read_ahead.wait_for_checks()
    assert biggest.checked.is_set()
    ahead = load_folder(tmp_path, settings)
    assert not read_ahead._started and ahead[1] == whole[1]
    for a, b in zip(ahead[0], whole[0], strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)
