"""The XLSX pre-flight's work beside it gives what it gives alone: a big part decompressed by a
thread ahead of its scan (`xlsx_safety._InflatedAhead`) is refused, measured and kept alike, with
the same words; the worksheets are scanned after every other part, so fastexcel's reader can be
opened while they are (`xlsx_text.ReaderAhead`) only once all it opens a workbook by has passed;
and a workbook read ahead already is loaded first without changing the order of the tables."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.inputs import read_ahead, xlsx_safety
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.xlsx_safety import preflight_xlsx
from pkgreport.inputs.xlsx_text import ReaderAhead, open_reader, read_text_sheet
from test_loading_xlsx import BILLION_LAUGHS, SIMPLE, rewrite, table_bytes
from test_xlsx_text import cliniko_rows, text_book

SETTINGS = Settings()
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
TEXT = text_book(cliniko_rows(400))
NUMBERS = table_bytes([["ID", "Amount"], *[[f"a{i}", i * 1.5] for i in range(400)]])


def stored(content: bytes) -> bytes:
    return rewrite(content, {}, zipfile.ZIP_STORED)


def crc_broken(content: bytes) -> bytes:
    """The workbook stored, with one byte of its sheet changed: the CRC no longer matches."""
    data = bytearray(stored(content))
    at = data.find(b"<sheetData>")
    data[at + 3] = ord("X")
    return bytes(data)


def size_lie(content: bytes) -> bytes:
    """The sheet's size in the central directory says 100 bytes fewer than it holds."""
    data = bytearray(content)
    central = data.rfind(b"PK\x01\x02", 0, data.find(SHEET.encode(), data.find(b"PK\x01\x02")))
    size = int.from_bytes(data[central + 24 : central + 28], "little")
    data[central + 24 : central + 28] = (size - 100).to_bytes(4, "little")
    return bytes(data)


def part(content: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(content)).read(name)


WORKBOOKS = {
    "text": TEXT,
    "numbers": NUMBERS,
    "stored": stored(TEXT),
    "crc broken": crc_broken(TEXT),
    "size lie": size_lie(TEXT),
    "cut short": TEXT[: len(TEXT) * 2 // 3],
    "entity bomb in the sheet": rewrite(
        TEXT, {SHEET: part(TEXT, SHEET).replace(b"?>", b"?><!DOCTYPE x []>", 1)}
    ),
    "entity bomb in the shared strings": rewrite(TEXT, {STRINGS: BILLION_LAUGHS}),
    "utf-16 sheet": rewrite(TEXT, {SHEET: part(TEXT, SHEET).decode().encode("utf-16")}),
    "far apart cells": rewrite(
        SIMPLE,
        {SHEET: part(SIMPLE, SHEET).replace(b"</row>", b'<c r="XFD1048576"><v>1</v></c></row>', 1)},
    ),
}


def preflight(content: bytes, ahead: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    """What the pre-flight says of the workbook, its parts read in pieces of 256 bytes, each
    big part (all of them, or none) decompressed by a thread ahead of its scan."""
    monkeypatch.setattr(xlsx_safety, "_CHUNK", 256)
    monkeypatch.setattr(xlsx_safety, "_AHEAD_MIN_BYTES", 0 if ahead else 1 << 62)
    kept: dict[str, list[bytes]] = {}
    threads = threading.active_count()
    archive, extents, problem = preflight_xlsx(content, SETTINGS, kept, 1)
    assert threading.active_count() == threads  # every thread it started has ended
    return archive is None, extents, problem, kept


@pytest.mark.parametrize("name", WORKBOOKS)
def test_parts_decompressed_ahead_are_refused_measured_and_kept_alike(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead = preflight(WORKBOOKS[name], True, monkeypatch)
    assert ahead == preflight(WORKBOOKS[name], False, monkeypatch)
    assert (ahead[2] is None) == (name in ("text", "numbers", "stored", "far apart cells"))


def test_the_refusals_read_as_they_did(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = {name: preflight(WORKBOOKS[name], True, monkeypatch)[2] for name in WORKBOOKS}
    damaged = "not a valid xlsx: the zip archive is damaged ({}); " + xlsx_safety.RESAVE_ADVICE
    assert messages["crc broken"] == damaged.format(f"Bad CRC-32 for file '{SHEET}'")
    assert messages["cut short"].startswith("not a valid xlsx: the zip archive is damaged (")
    assert messages["entity bomb in the sheet"] == (
        f"refused: part {SHEET} declares a DOCTYPE or ENTITY, which Excel never writes (possible "
        "XML entity bomb); do not use this file, export the data again"
    )
    assert messages["utf-16 sheet"] == (
        f"refused: worksheet {SHEET} is written in UTF-16, which Excel never does; "
        + xlsx_safety.RESAVE_ADVICE
    )
    # Measured here, refused where the sheet is chosen (`xlsx_sheet.open_sheet`).
    extents = preflight(WORKBOOKS["far apart cells"], True, monkeypatch)[1]
    assert extents == {SHEET: (1_048_576, 16_384, False, 26)}


def sheet_begins_calls(content: bytes) -> tuple[list[bytes], str | None, dict[str, list[bytes]]]:
    calls: list[bytes] = []
    kept: dict[str, list[bytes]] = {}
    _, _, problem = preflight_xlsx(content, SETTINGS, kept, 1, calls.append)
    return calls, problem, kept


def test_the_worksheet_begins_once_every_other_part_has_passed() -> None:
    names = [m.filename for m in zipfile.ZipFile(io.BytesIO(TEXT)).infolist()]
    assert names.index(SHEET) < names.index(STRINGS)  # the zip holds the sheet first

    calls, problem, kept = sheet_begins_calls(TEXT)
    assert problem is None and calls == [kept[SHEET][0]]

    calls, problem, _ = sheet_begins_calls(WORKBOOKS["entity bomb in the shared strings"])
    assert calls == [] and problem == (
        f"refused: part {STRINGS} declares a DOCTYPE or ENTITY, which Excel never writes "
        "(possible XML entity bomb); do not use this file, export the data again"
    )


def test_a_worksheet_not_kept_never_begins() -> None:
    two_sheets = rewrite(TEXT, {"xl/worksheets/sheet2.xml": part(TEXT, SHEET)})
    calls, problem, kept = sheet_begins_calls(two_sheets)
    assert problem is None and calls == [] and kept == {}


def test_a_reader_opened_ahead_reads_the_sheet_as_one_opened_after() -> None:
    _, _, kept = sheet_begins_calls(TEXT)
    ahead = ReaderAhead(TEXT)
    ahead.sheet_begins(kept[SHEET][0])
    assert ahead._thread is not None
    early = read_text_sheet(ahead.reader(), "Appointments")
    ahead.close()
    late = read_text_sheet(open_reader(TEXT), "Appointments")
    assert early is not None and late is not None
    assert early.headers == late.headers and early.height == late.height
    assert [c.to_pylist() for c in early.body] == [c.to_pylist() for c in late.body]


def test_a_sheet_beginning_with_numbers_opens_no_reader_ahead() -> None:
    _, _, kept = sheet_begins_calls(NUMBERS)
    ahead = ReaderAhead(NUMBERS)
    ahead.sheet_begins(kept[SHEET][0])
    assert ahead._thread is None
    assert list(ahead.reader().sheet_names) == ["Sheet1"]  # opened when taken
    ahead.close()


def test_a_workbook_read_ahead_is_loaded_first_and_the_tables_keep_the_files_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "Appointments.csv").write_text("ID,Patient ID\na1,p1\na2,p2\n")
    (tmp_path / "Cases.xlsx").write_bytes(table_bytes([["ID", "Patient ID"], ["c1", "p1"]]))
    settings = Settings(input_dir=tmp_path)
    in_turn = load_folder(tmp_path, settings)

    read_ahead.start(settings)
    read_ahead._started[tmp_path / "Cases.xlsx"].done.wait(10)
    assert read_ahead.is_done(tmp_path / "Cases.xlsx")
    assert not read_ahead.is_done(tmp_path / "Appointments.csv")  # a CSV is never read ahead
    tables, issues = load_folder(tmp_path, settings)

    names = ["Appointments.csv", "Cases.xlsx"]
    assert [t.file.name for t in tables] == [t.file.name for t in in_turn[0]] == names
    assert issues == in_turn[1]
    for a, b in zip(tables, in_turn[0], strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)
