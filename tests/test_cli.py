"""The command line: exact messages on stderr, documented exit codes, outputs on stdout or files."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A clinic with one 2-session package booked three times and one pre-paying patient."""
    folder = tmp_path / "exports"
    write(
        folder,
        "appointments.csv",
        "ID,Patient ID,Patient Name,Appointment Start,Patient Case\n"
        "a1,p1,Ann Lee,01/10/2026 09:00,c1\n"
        "a2,p1,Ann Lee,08/10/2026 09:00,c1\n"
        "a3,p1,Ann Lee,15/10/2026 09:00,c1\n",
    )
    write(folder, "cases.csv", "ID,Patient ID,Name,Max Sessions\nc1,p1,Physio 2-pack,2\n")
    write(
        folder, "invoices.csv", "ID,Patient ID,Issue Date,Total Amount\ni1,p2,10/10/2026,$95.00\n"
    )
    write(folder, "payments.csv", "ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\n")
    return folder


def test_validate_says_when_the_exports_make_no_figures(tiny: Path) -> None:
    for name in ("cases.csv", "invoices.csv", "payments.csv"):
        (tiny / name).unlink()
    result = invoke("validate", str(tiny))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == [
        "Left out: Cases: no cases export in the input folder, so package tallies were not "
        "computed",
        "Left out: Credit: no invoices and payments export in the input folder, so account "
        "credit, ageing and the roll-forward were not computed",
        "Result: the exports can be read, but no figures can be computed from them: add the "
        "exports named above (appointments with cases, or invoices with payments)",
    ]


def test_help_lists_every_command_with_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in (
        "validate",
        "cases",
        "credit",
        "rollforward",
        "report",
        "run",
        "init-config",
        "sample-data",
    ):
        assert command in result.output
        sub = invoke(command, "--help")
        assert sub.exit_code == 0, command
        assert "Example" in sub.output, command


def test_validate_clean_folder_exits_0_with_summary(tiny: Path) -> None:
    result = invoke("validate", str(tiny))
    assert result.exit_code == 0, result.output
    assert "Files read: 4" in result.stdout
    assert "Rows per kind: appointments 3, cases 1, invoices 1, payments 1" in result.stdout
    assert "Errors: 0" in result.stdout
    assert result.stdout.rstrip().endswith("Result: the exports can be used")


def test_validate_bad_value_exits_1_naming_file_row_column_value(
    tiny: Path, tmp_path: Path
) -> None:
    write(
        tiny,
        "payments.csv",
        "ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\npay2,p2,03/10/2026,1,7\n",
    )
    result = invoke("validate", str(tiny))
    assert result.exit_code == 1
    # The ragged row is refused with its row number; nothing is silently dropped.
    assert "ERROR: payments.csv, row 3" in result.stdout
    write(
        tiny,
        "payments.csv",
        'ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\npay2,p2,03/10/2026,"1,7"\n',
    )
    out = tmp_path / "issues.csv"
    result = invoke("validate", str(tiny), "--issues-out", str(out))
    assert result.exit_code == 1
    line = next(text for text in result.stdout.splitlines() if "row 3" in text)
    assert line.startswith("  ERROR: payments.csv, row 3, column 'Amount', value '1,7': ")
    assert "Errors: 1" in result.stdout
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "severity,file,row,column,value,message"
    assert rows[1].startswith('error,payments.csv,3,Amount,"1,7",')


def test_validate_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "input folder not found" in result.stdout


def test_cases_prints_the_tally_and_the_as_of_used(tiny: Path) -> None:
    result = invoke("cases", str(tiny))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[
        -1
    ] == "as of 2026-10-15 (latest cancellation)" or result.stderr.splitlines()[-1].startswith(
        "as of 2026-10-"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "case_id,patient_id,case_name,max_sessions,counted,attended,upcoming,"
        "cancelled,dna,remaining,over_booked_by,status,findings"
    )
    assert lines[1].startswith("c1,p1,Physio 2-pack,2,3,")
    assert ",over-booked," in lines[1] and "OVER_BOOKED" in lines[1]


def test_cases_findings_as_json(tiny: Path) -> None:
    result = invoke("cases", str(tiny), "--as-of", "2026-10-31", "--findings", "--format", "json")
    assert result.exit_code == 0
    findings = json.loads(result.stdout)
    over = [f for f in findings if f["code"] == "OVER_BOOKED"]
    assert len(over) == 1 and over[0]["subject_id"] == "c1" and over[0]["appointment_ids"] == "a3"
    assert result.stderr.strip().endswith("as of 2026-10-31 (--as-of)")


def test_credit_money_is_plain_decimals(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "credit.csv"
    result = invoke("credit", str(tiny), "--as-of", "2026-10-31", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("patient_id,patient_name,received,refunded,invoiced,applied,credit,")
    p2 = next(row for row in lines if row.startswith("p2,"))
    # $300 received; the $95 invoice is either paid from it or left open beside the credit.
    assert ",300.00,0.00,95.00," in p2


def test_rollforward_says_its_as_of_date_is_the_period_s_last_day(tiny: Path) -> None:
    # rollforward has no --as-of option: the date comes from --to, and it says so.
    result = invoke("rollforward", str(tiny), "--from", "2026-10-01", "--to", "2026-10-31")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "as of 2026-10-31 (the last day of the period)"


def test_rollforward_rejects_reversed_period(tiny: Path) -> None:
    result = invoke("rollforward", str(tiny), "--from", "2026-10-31", "--to", "2026-10-01")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: --from is after --to: the period must start on or before its last day"
    )


def test_bad_date_option_is_usage_error(tiny: Path) -> None:
    result = invoke("cases", str(tiny), "--as-of", "31/10/2026")
    assert result.exit_code == 2
    assert "'31/10/2026' is not a date: write it as YYYY-MM-DD" in result.stderr


def test_bad_timezone_is_usage_error(tiny: Path) -> None:
    result = invoke("validate", str(tiny), "--timezone", "Sydney")
    assert result.exit_code == 2
    assert "'Sydney' is not an IANA time zone name" in result.stderr


def test_report_writes_three_files_byte_identically(tmp_path: Path) -> None:
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    first = invoke("report", str(SAMPLE), "-o", str(out1), "-q")
    second = invoke("report", str(SAMPLE), "-o", str(out2), "-q")
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    names = [
        "pkgreport-2026-10-31.html",
        "pkgreport-2026-10-31.json",
        "pkgreport-2026-10-31.sha256",
        "pkgreport-2026-10-31.xlsx",
    ]
    assert sorted(p.name for p in out1.iterdir()) == names
    for name in names:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    summary = json.loads((out1 / names[1]).read_text())
    assert summary["settings"]["as_of"] == "2026-10-31"
    assert {f["file"] for f in summary["inputs"]} == {p.name for p in SAMPLE.glob("*.csv")}
    assert all(len(f["sha256"]) == 64 for f in summary["inputs"])


def test_report_never_modifies_inputs(tmp_path: Path) -> None:
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in SAMPLE.iterdir()}
    invoke("report", str(SAMPLE), "-o", str(tmp_path / "out"), "-q")
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in SAMPLE.iterdir()}
    assert before == after


def test_report_leaves_out_sections_without_inputs(tiny: Path, tmp_path: Path) -> None:
    (tiny / "invoices.csv").unlink()
    (tiny / "payments.csv").unlink()
    result = invoke("report", str(tiny), "-o", str(tmp_path / "out"), "--as-of", "2026-10-31")
    assert result.exit_code == 0, result.output
    assert (
        "note: Credit left out: no invoices and payments export in the input folder, so "
        "account credit, ageing and the roll-forward were not computed"
    ) in result.stderr
    summary = json.loads((tmp_path / "out" / "pkgreport-2026-10-31.json").read_text())
    assert "Credit" in summary["skipped_sections"]
    html = (tmp_path / "out" / "pkgreport-2026-10-31.html").read_text()
    assert "no invoices and payments export in the input folder" in html


def test_report_with_input_errors_writes_nothing(tiny: Path, tmp_path: Path) -> None:
    write(tiny, "cases.csv", "ID,Patient ID,Name,Max Sessions\nc1,p1,Physio 2-pack,two\n")
    out = tmp_path / "out"
    result = invoke("report", str(tiny), "-o", str(out))
    assert result.exit_code == 1
    # The bad case row, and the three appointments that point at the case it would have been.
    assert (
        "Error: 4 problem(s) in the inputs must be fixed before figures can be trusted"
        in result.stderr
    )
    assert (
        "ERROR: cases.csv, row 2, column 'Max Sessions', value 'two': Max Sessions is not a "
        "whole number of sessions"
    ) in result.stderr
    assert "c1 is the case whose row was left out for the problems reported on it" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_internal_error_is_one_line_exit_3(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pkgreport import pipeline

    def boom(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pipeline, "compute", boom)
    result = invoke("cases", str(tiny))
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "Internal error: ZeroDivisionError: division by zero. This is a bug in pkgreport, not in "
        "your data; run again with --debug for the traceback and report it."
    )
    debug = invoke("--debug", "cases", str(tiny))
    assert debug.exit_code == 3 and "Traceback (most recent call last)" in debug.stderr


def test_init_config_writes_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "pkgreport.toml"
    assert invoke("init-config", str(path)).exit_code == 0
    assert 'period = "previous-month"' in path.read_text()
    again = invoke("init-config", str(path))
    assert again.exit_code == 2
    assert again.stderr.strip() == f"Error: {path} exists: pass --force to overwrite it"


def test_sample_data_is_deterministic(tmp_path: Path) -> None:
    a = invoke(
        "sample-data", str(tmp_path / "a"), "--patients", "20", "--months", "1", "--seed", "3"
    )
    b = invoke(
        "sample-data", str(tmp_path / "b"), "--patients", "20", "--months", "1", "--seed", "3"
    )
    assert a.exit_code == 0 and b.exit_code == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_sample_data_never_overwrites_or_mixes_with_a_clinic_s_exports(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    real = exports / "Payments-Cliniko-20261101.csv"
    real.write_bytes(b"ID,Patient ID,Payment Date,Amount\r\n1,7,1/10/2026,100.00\r\n")
    (exports / "notes.md").write_text("October exports", "utf-8")
    refused = invoke("sample-data", str(exports), "--patients", "5", "--months", "1")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"Error: {exports} already holds exports (Payments-Cliniko-20261101.csv): made-up sample "
        "data would overwrite them or be read with them; choose an empty folder, or pass --force "
        "to write there anyway"
    )
    assert real.read_bytes() == b"ID,Patient ID,Payment Date,Amount\r\n1,7,1/10/2026,100.00\r\n"
    assert sorted(p.name for p in exports.iterdir()) == [
        "Payments-Cliniko-20261101.csv",
        "notes.md",
    ]
    forced = invoke("sample-data", str(exports), "--patients", "5", "--months", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert {p.name for p in exports.iterdir()} > {"Payments-Cliniko-20261101.csv", "notes.md"}


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pkgreport", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("pkgreport, version ")


def test_copy_of_sample_still_validates(tmp_path: Path) -> None:
    copy = tmp_path / "s"
    shutil.copytree(SAMPLE, copy)
    result = invoke("validate", str(copy))
    assert result.exit_code == 0, result.stdout


@pytest.mark.parametrize("command", [["mapping", "--list"], ["credit", str(SAMPLE), "-q"]])
def test_a_reader_that_stops_early_is_not_a_bug(command: list[str]) -> None:
    """`pkgreport mapping --list | head -1`: exit 0 and nothing on stderr."""
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-m", "pkgreport", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line is written
    stderr = child.stderr.read()
    assert (child.wait(timeout=60), stderr) == (0, b"")


def test_issues_out_writes_a_formula_like_value_as_text(tiny: Path, tmp_path: Path) -> None:
    write(
        tiny,
        "payments.csv",
        "ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\npay2,p2,03/10/2026,=1+2\n",
    )
    out = tmp_path / "issues.csv"
    assert invoke("validate", str(tiny), "--issues-out", str(out)).exit_code == 1
    [row] = [r for r in out.read_text(encoding="utf-8").splitlines() if r.startswith("error,")]
    assert row.startswith("error,payments.csv,3,Amount,'=1+2,")
