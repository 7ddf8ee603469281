"""`pkgreport run` never replaces a good report with one built from less, nor from its own outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
OCT = "pkgreport-2026-10-31"
ADVICE = (
    "is the export folder half-copied, or an export cut short? Put the full exports in the "
    "folder and run again; if the clinic really has less, run with --allow-shrink "
    "(allow_shrink = true in the config file)"
)
LAST = "the last run (as of 2026-10-31)"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def run(exports: Path, out: Path, *extra: str, env: dict[str, str] | None = None):
    return invoke("run", str(exports), "-o", str(out), "--period", "2026-10", "-q", *extra, env=env)


@pytest.fixture
def first_run(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A copy of the sample exports, a good first run on it, and that run's reports."""
    exports = tmp_path / "exports"
    shutil.copytree(SAMPLE, exports)
    out = tmp_path / "reports"
    assert run(exports, out).exit_code == 0
    return exports, out, _reports(out)


def _reports(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.glob("pkgreport-*") if p.suffix != ".log"}


def _history(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "history").iterdir())


def test_a_missing_kind_and_a_header_only_export_stop_the_run(first_run) -> None:
    exports, out, before = first_run
    history = _history(out)
    (exports / "Patients-Cliniko-20261101.csv").unlink()
    payments = exports / "Payments-Cliniko-20261101.csv"
    payments.write_text(payments.read_text().splitlines()[0] + "\n")
    result = run(exports, out)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the inputs shrank since the last run, so nothing was published and the previous "
        "reports are untouched (2 problem(s))\n"
        f"  ERROR: patients: no patients export this time, but {LAST} read 323 rows from "
        f"Patients-Cliniko-20261101.csv: {ADVICE}\n"
        "  ERROR: Payments-Cliniko-20261101.csv: payments has 0 rows, under 50% of the 760 "
        f"rows from Payments-Cliniko-20261101.csv read by {LAST}: {ADVICE}\n"
    )
    assert _reports(out) == before and _history(out) == history
    assert run(exports, out, "--allow-shrink").exit_code == 0
    assert len(_history(out)) == len(history) + 1
    log = (out / f"{OCT}.log").read_text()
    assert "allowed by allow_shrink: patients: no patients export this time" in log


def test_a_kind_whose_file_cannot_be_read_is_reported_by_its_error_not_as_missing(
    first_run,
) -> None:
    exports, out, before = first_run
    (exports / "Payments-Cliniko-20261101.csv").write_bytes(b"ID,Patient ID\n1,\x002\n")
    result = run(exports, out)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "Error: 1 problem(s) in the inputs must be fixed before figures can be trusted",
        (
            "  ERROR: Payments-Cliniko-20261101.csv, row 2, column 'Patient ID', value '\\\\x002': NUL "
            "byte at row 2, column Patient ID: the file is damaged or not a text export; export it "
            "again as 'CSV UTF-8 (Comma delimited)'"
        ),
    ]
    assert _reports(out) == before


def test_far_fewer_rows_stop_the_run_by_the_threshold_setting(first_run) -> None:
    exports, out, _ = first_run
    payments = exports / "Payments-Cliniko-20261101.csv"
    lines = payments.read_text().splitlines(keepends=True)
    payments.write_text("".join(lines[:601]))  # 600 of 760 rows: 79%
    assert run(exports, out).exit_code == 0  # not under the default half
    shutil.copy(SAMPLE / payments.name, payments)
    assert run(exports, out).exit_code == 0  # back to 760 rows: compared with the 600 run
    payments.write_text("".join(lines[:601]))
    result = run(exports, out, env={"PKGREPORT_SHRINK_THRESHOLD": "0.9"})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == (
        f"  ERROR: {payments.name}: payments has 600 rows, under 90% of the 760 rows from "
        f"{payments.name} read by {LAST}: {ADVICE}"
    )
    assert (
        run(
            exports,
            out,
            env={"PKGREPORT_SHRINK_THRESHOLD": "0.9", "PKGREPORT_ALLOW_SHRINK": "true"},
        ).exit_code
        == 0
    )


def test_an_empty_export_folder_stops_the_run_and_keeps_the_reports(
    first_run, tmp_path: Path
) -> None:
    _, out, before = first_run
    history = _history(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(empty, out)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 problem(s) in the inputs must be fixed before figures can be trusted\n"
        f"  ERROR: {empty}: no exports found in {empty}: put this month's exports in that folder, "
        "one file per kind, each named starting with its kind (appointments, cases, invoices, "
        "payments, and optionally allocations and patients), e.g. "
        "Appointments-Cliniko-20261101.csv or invoices.xlsx (CSV or XLSX); appointments with "
        "cases, or invoices with payments, make a report\n"
    )
    assert _reports(out) == before and _history(out) == history


@pytest.mark.parametrize("inside", ["reports", "."])
def test_an_output_folder_inside_the_input_folder_is_not_read_back(
    tmp_path: Path, inside: str
) -> None:
    exports = tmp_path / "exports"
    shutil.copytree(SAMPLE, exports)
    out = exports / inside
    assert run(exports, out).exit_code == 0
    first = _reports(out)
    # Without -q, which leaves only errors: the headline is what this run says.
    second = invoke("run", str(exports), "-o", str(out), "--period", "2026-10")
    assert second.exit_code == 0
    assert second.stderr == "as of 2026-10-31: 95 finding(s), 0 new, 0 resolved\n"
    assert _reports(out) == first and len(_history(out)) == 1
