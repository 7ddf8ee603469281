"""Loading never hangs, never reads outside the input folder, and says when a folder or file is empty or cut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.discovery import discover_inputs
from pkgreport.inputs.loading import load_file, load_folder

SETTINGS = Settings()
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
APPOINTMENTS = b"appointment_id,patient_id,starts_at\n1,7,2026-10-01 09:00\n2,7,2026-10-08 09:00\n"


def _refusal(name: str, message: str) -> list[Issue]:
    return [Issue("error", name, None, None, None, message)]


# --- an empty folder (item 8) ---------------------------------------------------------------


def test_a_folder_without_exports_is_an_error_saying_what_to_put_in_it(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("notes")
    tables, issues = load_folder(tmp_path, SETTINGS)
    assert tables == []
    assert issues == [
        Issue(
            "info", "README.md", None, None, None, "ignored: not an export (notes or settings file)"
        ),
        Issue(
            "error",
            str(tmp_path),
            None,
            None,
            None,
            f"no exports found in {tmp_path}: put this month's exports in that folder, one file per "
            "kind, each named starting with its kind (appointments, cases, invoices, payments, and "
            "optionally allocations and patients), e.g. Appointments-Cliniko-20261101.csv or "
            "invoices.xlsx (CSV or XLSX); appointments with cases, or invoices with payments, make "
            "a report",
        ),
    ]


# --- cut and empty exports (item 20) --------------------------------------------------------


PAYMENTS = b"payment_id,patient_id,paid_at,amount\n1,7,2026-10-01,100.00\n"


@pytest.mark.parametrize(
    ("last_row", "expected"),
    [
        # Cut inside the last value: every field is there, so only a warning can say it; it
        # names that value, which a message cut to its first characters would never show.
        (
            b"2,7,2026-10-02,95",
            Issue(
                "warning",
                "payments.csv",
                3,
                "amount",
                "95",
                "the file does not end with a line break, so it may have been cut short by a copy or "
                "download that did not finish: check that row 3, the last, is complete (its last "
                "value especially); if it is not, export or copy the file again",
            ),
        ),
        # Cut before the last fields: the row is short, an error.
        (
            b"2,7,2026-10",
            Issue(
                "error",
                "payments.csv",
                3,
                None,
                "2,7,2026-10",
                "row 3 has 3 fields but the header has 4 (comma-separated): a value holds an unquoted "
                "comma or a field is missing; fix the row and export again",
            ),
        ),
    ],
)
def test_a_file_cut_inside_its_last_row_names_that_row(
    tmp_path: Path, last_row: bytes, expected: Issue
) -> None:
    path = tmp_path / "payments.csv"
    path.write_bytes(PAYMENTS + last_row)
    table, issues = load_file(path, "payments", SETTINGS)
    assert issues == [expected]
    if expected.severity == "warning":
        assert table is not None and table.frame["amount"].tolist() == ["100.00", "95"]
    else:
        assert table is None


def test_a_last_row_cut_inside_a_quoted_note_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_bytes(b'payment_id,patient_id,paid_at,amount,notes\n1,7,2026-10-01,100.00,"Pack')
    table, issues = load_file(path, "payments", SETTINGS)
    assert table is None
    assert [(i.severity, i.row) for i in issues] == [("error", 2)]
    assert issues[0].message.startswith("the row starting at row 2 is not valid CSV")


# --- only regular files, bounded (item 23) --------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "payments-x.csv")
    # In a child process with a timeout: a regression would block forever on the open or read.
    code = (
        "import sys; from pathlib import Path; from pkgreport.config import Settings; "
        "from pkgreport.inputs.loading import load_file; "
        f"t, i = load_file(Path({str(tmp_path / 'payments-x.csv')!r}), 'payments', Settings()); "
        "print(t is None, i[0].message)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == (
        "True refused: not a regular file (a named pipe); put the exported file itself in the "
        "input folder\n"
    )


def test_a_link_to_a_device_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "payments.csv").symlink_to("/dev/zero")
    table, issues = load_file(tmp_path / "payments.csv", "payments", SETTINGS)
    assert table is None
    assert issues == _refusal(
        "payments.csv",
        "refused: a link to /dev/zero, outside the input folder; copy the exported file into "
        "the input folder instead",
    )


def test_a_link_to_another_file_of_the_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "appointments-october.csv").write_bytes(APPOINTMENTS)
    (tmp_path / "appointments.csv").symlink_to(tmp_path / "appointments-october.csv")
    table, issues = load_file(tmp_path / "appointments.csv", "appointments", SETTINGS)
    assert table is not None and len(table.frame) == 2 and issues == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_bytes(APPOINTMENTS)
    small = SETTINGS.replace(max_file_bytes=len(APPOINTMENTS) - 1)
    table, issues = load_file(tmp_path / "appointments.csv", "appointments", small)
    assert table is None
    assert issues == _refusal(
        "appointments.csv",
        f"refused: the file is larger than the limit of {len(APPOINTMENTS) - 1:,} bytes (setting "
        "max_file_bytes); split the export into smaller date ranges, or raise the limit",
    )
    exact = SETTINGS.replace(max_file_bytes=len(APPOINTMENTS))
    assert load_file(tmp_path / "appointments.csv", "appointments", exact)[0] is not None


def test_a_cell_over_the_length_limit_is_an_error_naming_the_cell(tmp_path: Path) -> None:
    name = "x" * 5000
    path = tmp_path / "patients.csv"
    path.write_bytes(f"patient_id,patient_name\n1,Ann\n2,{name}\n".encode())
    table, issues = load_file(path, "patients", SETTINGS.replace(max_cell_chars=4999))
    assert table is None
    assert issues == [
        Issue(
            "error",
            "patients.csv",
            3,
            "patient_name",
            "x" * 40 + "...",
            "the cell holds 5,000 characters, over the limit of 4,999 (setting max_cell_chars): "
            "no export field is that long, so the file is damaged; fix the cell or export the "
            "file again",
        )
    ]
    assert load_file(path, "patients", SETTINGS.replace(max_cell_chars=5000))[0] is not None


def test_the_length_limit_counts_characters_not_bytes(tmp_path: Path) -> None:
    # 3,000 characters in 6,000 bytes of UTF-8: the reader's byte count only says when to look.
    path = tmp_path / "patients.csv"
    path.write_bytes(f"patient_id,patient_name\n1,Ann\n2,{'é' * 3000}\n".encode())
    table, issues = load_file(path, "patients", SETTINGS.replace(max_cell_chars=3000))
    assert table is not None and issues == []
    assert table.longest_cell_bytes == 6000
    table, issues = load_file(path, "patients", SETTINGS.replace(max_cell_chars=2999))
    assert table is None
    assert issues == [
        Issue(
            "error",
            "patients.csv",
            3,
            "patient_name",
            "é" * 40 + "...",
            "the cell holds 3,000 characters, over the limit of 2,999 (setting max_cell_chars): "
            "no export field is that long, so the file is damaged; fix the cell or export the "
            "file again",
        )
    ]


# --- the output folder is never read (item 25) ----------------------------------------------


def test_the_output_folder_inside_the_input_folder_is_not_read_or_mentioned(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_bytes(APPOINTMENTS)
    (tmp_path / "reports" / "history").mkdir(parents=True)
    (tmp_path / "old").mkdir()
    found, issues = discover_inputs(tmp_path, tmp_path / "reports")
    assert [p.name for _, p in found] == ["appointments.csv"]
    assert [(i.file, i.severity) for i in issues] == [("old", "warning")]


def test_reports_written_into_the_input_folder_itself_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_bytes(APPOINTMENTS)
    for name in (
        "pkgreport-2026-10-31.xlsx",
        "pkgreport-2026-10-31.html",
        "pkgreport-2026-10-31.json",
        "pkgreport-2026-10-31.log",
        "pkgreport-2026-10-31.sha256",
        ".pkgreport.lock",
    ):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "history").mkdir()
    # Known by their names, so `validate` (which has no output folder) passes over them too.
    for output in (tmp_path, None):
        found, issues = discover_inputs(tmp_path, output)
        assert [p.name for _, p in found] == ["appointments.csv"] and issues == []


# --- wrongly named files: advice from the header (item 10) -----------------------------------

KNOWN = "appointments, cases, invoices, payments, allocations, patients"


def test_an_export_whose_name_names_no_kind_is_read_as_the_kind_its_header_shows(
    tmp_path: Path,
) -> None:
    (tmp_path / "appointments.csv").write_bytes(APPOINTMENTS)
    (tmp_path / "Export-2026.csv").write_text(
        "Invoice Number,Issue Date,Practitioner,Status,Appointment ID,Patient ID,ID\n"
        "101,5/11/2026,Dr A,Paid,1,7,9001\n"
    )
    (tmp_path / "october.csv").write_text(
        "ID,Patient ID,Payment Date,Amount,Payment Method\n1,7,5/11/2026,90.00,Card\n"
    )
    (tmp_path / "list.csv").write_text("ID,Patient ID\n1,7\n")
    tables, issues = load_folder(tmp_path, SETTINGS)
    assert [(t.file.kind, t.file.name) for t in tables] == [
        ("invoices", "Export-2026.csv"),
        ("appointments", "appointments.csv"),
        ("payments", "october.csv"),
    ]
    assert issues == [
        Issue(
            "info",
            "Export-2026.csv",
            None,
            None,
            None,
            "read as invoices: the file name names no kind, and its columns are those of "
            "invoices (name it e.g. 'invoices-Export-2026.csv' to say so)",
        ),
        Issue(
            "warning",
            "list.csv",
            None,
            None,
            None,
            f"ignored: the file name names no kind ({KNOWN}), and its header does not show "
            "which it holds; if it is an export, put its kind in the name, e.g. 'payments-list.csv'",
        ),
        Issue(
            "info",
            "october.csv",
            None,
            None,
            None,
            "read as payments: the file name names no kind, and its columns are those of "
            "payments (name it e.g. 'payments-october.csv' to say so)",
        ),
    ]


def test_validate_does_not_say_can_be_used_plainly_beside_ignored_files(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pkgreport.cli import cli

    for source in SAMPLE.glob("*.csv"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    (tmp_path / "export.csv").write_text("Clinic,Room\nHarbour,1\n")
    (tmp_path / "rooms.csv").write_text("Clinic,Room\nHarbour,2\n")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "Result: the exports read can be used, but 2 file(s) were ignored (export.csv, rooms.csv): "
        "see the warnings, and rename any that should be read"
    )


@pytest.mark.parametrize("command", ["validate", "report"])
def test_validate_and_report_on_an_empty_folder_exit_1_saying_what_to_put_there(
    tmp_path: Path, command: str
) -> None:
    from click.testing import CliRunner

    from pkgreport.cli import cli

    empty = tmp_path / "exports"
    empty.mkdir()
    out = tmp_path / "reports"
    args = [command, str(empty)] + (["-o", str(out), "-q"] if command == "report" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    error = (
        f"ERROR: {empty}: no exports found in {empty}: put this month's exports in that folder, "
        "one file per kind, each named starting with its kind (appointments, cases, invoices, "
        "payments, and optionally allocations and patients), e.g. "
        "Appointments-Cliniko-20261101.csv or invoices.xlsx (CSV or XLSX); appointments with "
        "cases, or invoices with payments, make a report"
    )
    if command == "validate":
        assert result.stdout.splitlines()[-3:] == [
            "First issues:",
            f"  {error}",
            "Result: the exports need fixing before the figures can be trusted",
        ]
    else:
        assert result.stderr == (
            "Error: 1 problem(s) in the inputs must be fixed before figures can be trusted\n"
            f"  {error}\n"
        )
        assert not out.exists()
