"""Workbooks read ahead in threads give exactly what reading them in turn gives: the same tables,
the same issues with the same words, for good and bad workbooks alike, and never a hung run."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs import read_ahead
from pkgreport.inputs.loading import load_file, load_folder
from pkgreport.inputs.tables import RawTable


def workbook(rows: list[list[object]], sheet: str = "Sheet1") -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = book.add_worksheet(sheet)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            ws.write(i, j, value)
    book.close()
    return buffer.getvalue()


APPOINTMENTS = workbook(
    [
        ["ID", "Patient ID", "Appointment Start", "Notes"],
        ["a1", "p1", "01/10/2026 09:00", "first\r\nvisit"],
        ["a2", "p2", "02/10/2026 10:00", 3.5],
    ]
)
CASES = workbook([["ID", "Patient ID", "Max Sessions"], ["c1", "p1", 10]])

BAD_WORKBOOKS = {
    "cut short": APPOINTMENTS[: len(APPOINTMENTS) // 2],
    "a CSV named .xlsx": b"ID,Patient ID\na1,p1\n",
    "empty": b"",
}


def loaded(folder: Path, settings: Settings, ahead: bool) -> tuple[list[RawTable], list[Issue]]:
    if ahead:
        read_ahead.start(settings)
    tables, issues = load_folder(folder, settings)
    assert not read_ahead._started  # every reading taken or dropped: nothing held after loading
    return tables, issues


def assert_same(
    first: tuple[list[RawTable], list[Issue]], second: tuple[list[RawTable], list[Issue]]
) -> None:
    assert first[1] == second[1]
    assert [t.file for t in first[0]] == [t.file for t in second[0]]
    for a, b in zip(first[0], second[0], strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)


@pytest.mark.parametrize("bad", [None, *BAD_WORKBOOKS])
def test_a_folder_read_ahead_loads_as_read_in_turn(tmp_path: Path, bad: str | None) -> None:
    (tmp_path / "Appointments.xlsx").write_bytes(
        APPOINTMENTS if bad is None else BAD_WORKBOOKS[bad]
    )
    (tmp_path / "Cases.xlsx").write_bytes(CASES)
    settings = Settings(input_dir=tmp_path)
    ahead = loaded(tmp_path, settings, ahead=True)
    assert_same(ahead, loaded(tmp_path, settings, ahead=False))
    assert len(ahead[0]) == (2 if bad is None else 1)


def test_a_cut_short_workbook_read_ahead_is_the_same_clear_message(tmp_path: Path) -> None:
    (tmp_path / "Appointments.xlsx").write_bytes(BAD_WORKBOOKS["cut short"])
    settings = Settings(input_dir=tmp_path)
    _, issues = loaded(tmp_path, settings, ahead=True)
    assert issues == [
        Issue(
            "error",
            "Appointments.xlsx",
            None,
            None,
            None,
            "not a valid xlsx: the zip archive is damaged (File is not a zip file); open it in "
            "Excel and save it again as an Excel Workbook (.xlsx)",
        )
    ]


def test_a_missing_sheet_read_ahead_names_the_sheets(tmp_path: Path) -> None:
    (tmp_path / "Appointments.xlsx").write_bytes(APPOINTMENTS)
    settings = Settings(input_dir=tmp_path, sheet="Bookings")
    ahead = loaded(tmp_path, settings, ahead=True)
    assert_same(ahead, loaded(tmp_path, settings, ahead=False))
    assert ahead[1] == [
        Issue(
            "error",
            "Appointments.xlsx",
            None,
            None,
            "Bookings",
            "no sheet named 'Bookings'; the sheets are 'Sheet1': choose one with the sheet setting",
        )
    ]


def test_the_biggest_workbook_is_read_first_and_the_others_once_its_parse_has_begun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = workbook([["ID", "Patient ID", "Amount"], *([f"p{i}", f"x{i}", i] for i in range(400))])
    (tmp_path / "Payments.xlsx").write_bytes(big)
    (tmp_path / "Cases.xlsx").write_bytes(CASES)
    settings = Settings(input_dir=tmp_path)
    in_turn = loaded(tmp_path, settings, ahead=False)
    entered: list[tuple[int, bool]] = []  # each reading's size, and whether those before parse
    parsing: list[object] = []
    real = read_ahead.open_sheet

    def open_sheet(data: bytes, *args: object) -> object:
        entered.append((len(data), all(e.is_set() for e in parsing)))  # type: ignore[attr-defined]
        parsing.append(args[-1])
        return real(data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(read_ahead, "open_sheet", open_sheet)
    monkeypatch.setattr(read_ahead, "_CHECK_FIRST_BYTES", 0)
    ahead = loaded(tmp_path, settings, ahead=True)
    assert entered == [(len(big), True), (len(CASES), True)]
    assert_same(ahead, in_turn)


def test_a_reading_is_used_once_and_only_with_the_settings_it_was_started_with(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Appointments.xlsx"
    path.write_bytes(APPOINTMENTS)
    settings = Settings(input_dir=tmp_path)
    read_ahead.start(settings)
    assert read_ahead.take(path, settings.replace(sheet="Sheet1")) is None
    reading = read_ahead.take(path, settings)
    assert reading is not None and reading.data == APPOINTMENTS and reading.failed is None
    assert read_ahead.take(path, settings) is None
    read_ahead.discard()


def test_a_reader_that_fails_in_its_thread_fails_as_it_would_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the reader raises (here a fault put in its place) gives the same issue."""
    (tmp_path / "Appointments.xlsx").write_bytes(APPOINTMENTS)
    settings = Settings(input_dir=tmp_path)

    def fails(
        data: bytes, settings: Settings, checked: object = None, parsing: object = None
    ) -> None:
        raise RuntimeError("the reader stopped")

    monkeypatch.setattr(read_ahead, "open_sheet", fails)
    monkeypatch.setattr("pkgreport.inputs.xlsx_reading.open_sheet", fails)
    ahead = loaded(tmp_path, settings, ahead=True)
    assert_same(ahead, loaded(tmp_path, settings, ahead=False))
    assert ahead[1] == [
        Issue(
            "error",
            "Appointments.xlsx",
            None,
            None,
            None,
            "could not read the file (RuntimeError: the reader stopped); open it and export it "
            "again as CSV UTF-8 or .xlsx",
        )
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_validate_with_a_named_pipe_for_a_workbook_does_not_wait(tmp_path: Path) -> None:
    import subprocess

    os.mkfifo(tmp_path / "Appointments.xlsx")
    (tmp_path / "Cases.xlsx").write_bytes(CASES)
    done = subprocess.run(
        [sys.executable, "-m", "pkgreport", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[5] == (
        "  ERROR: Appointments.xlsx: refused: not a regular file (a named pipe); put the exported "
        "file itself in the input folder"
    )


@pytest.mark.parametrize("where", ["empty", "missing"])
def test_validate_of_an_empty_or_missing_folder_says_so(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "exports"
    if where == "empty":
        folder.mkdir()
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    problem = {
        "empty": f"no exports found in {folder}: put this month's exports in that folder, one "
        "file per kind, each named starting with its kind (appointments, cases, invoices, "
        "payments, and optionally allocations and patients), e.g. "
        "Appointments-Cliniko-20261101.csv or invoices.xlsx (CSV or XLSX); appointments with "
        "cases, or invoices with payments, make a report",
        "missing": "input folder not found: check the path you gave",
    }[where]
    assert (result.exit_code, result.output) == (
        1,
        "Files read: 0\n"
        "Rows per kind: \n"
        "Errors: 1   Warnings: 0   Inconsistent records: 0\n"
        "First issues:\n"
        f"  ERROR: {folder}: {problem}\n"
        "Result: the exports need fixing before the figures can be trusted\n",
    )
    assert not read_ahead._started


# --- each export's SHA-256 beside its parse ---------------------------------------------------


def test_a_large_export_hashed_beside_its_parse_gets_the_digest_of_its_bytes(
    tmp_path: Path,
) -> None:
    # Over a MiB: hashed in a thread while the rows are parsed.
    rows = "".join(
        f"{190000000 + i},100{i % 7},{i % 28 + 1:02d}/10/2026 09:00\n" for i in range(40_000)
    )
    content = ("ID,Patient ID,Appointment Start\n" + rows).encode()
    assert len(content) > 1 << 20
    path = tmp_path / "appointments.csv"
    path.write_bytes(content)
    table, _ = load_file(path, "appointments", Settings(input_dir=tmp_path))
    assert table is not None
    assert table.file.sha256 == hashlib.sha256(content).hexdigest()
    assert read_ahead._hashing == {}


def test_a_hash_no_table_took_is_forgotten_and_one_never_started_is_made_here() -> None:
    data = b"x" * (1 << 20)
    read_ahead.hash_beside(data)
    read_ahead.forget_hash(data)
    assert read_ahead._hashing == {}
    assert read_ahead.sha256_of(data) == hashlib.sha256(data).hexdigest()
    read_ahead.hash_beside(data)
    assert read_ahead.sha256_of(data) == hashlib.sha256(data).hexdigest()
    assert read_ahead._hashing == {}
