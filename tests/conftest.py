"""Shared pytest switches and fixtures: `--update-golden` and the report-writer sample context."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

# Let `pytest` work from a plain checkout too; an installed pkgreport (CI's venv) comes first.
try:
    import pkgreport  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

GOLDEN_DIR = Path(__file__).parent / "golden"


def _end_before_arrow_pool_teardown() -> None:
    """Let the test process end without destroying Arrow's thread pools.

    Arrow's thread pool can deadlock in its destructor as a process ends (apache/arrow issues
    45214 and 50482, intermittent): the suite printed its result and the process never exited.
    pkgreport's commands never run that destructor (`cli_process.exit_without_teardown`). Here
    the pools are made now, and glibc is asked to end the process with its exit status
    (`on_exit(_exit)`) before it runs the native destructors registered earlier, theirs among
    them. Python's own exit (pytest's and every `atexit` handler, flushing its output) has run
    by then; the exit status is unchanged. Elsewhere than glibc (no `on_exit`), nothing changes.
    """
    import ctypes

    import pyarrow as pa

    pa.cpu_count()  # makes the CPU pool (its destructor is registered as it is made)
    pa.io_thread_count()  # and the I/O pool
    libc = ctypes.CDLL(None)
    on_exit = getattr(libc, "on_exit", None)
    if on_exit is None:
        return
    on_exit.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    on_exit(ctypes.cast(libc._exit, ctypes.c_void_p), None)


_end_before_arrow_pool_teardown()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """`golden(name, text)`: compare `text` with tests/golden/<name>; rewrite it with --update-golden."""
    update = bool(request.config.getoption("--update-golden"))

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden to create it")
        expected = path.read_text(encoding="utf-8")
        if expected != text:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"golden/{name}",
                    tofile="actual",
                )
            )
            pytest.fail(
                f"output differs from golden/{name} (if intended: pytest --update-golden)\n{diff}"
            )

    return check


def require_program(names: tuple[str, ...], message: str) -> str:
    """The path of the first of `names` installed; else fail (CI must run the test) unless
    PKGREPORT_SKIP_EXTERNAL=1 asks to skip."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("PKGREPORT_SKIP_EXTERNAL") == "1":
        pytest.skip(message + " (skipped: PKGREPORT_SKIP_EXTERNAL=1)")
    pytest.fail(message + "; or set PKGREPORT_SKIP_EXTERNAL=1 to skip it locally")


def pdftotext_program() -> str:
    return require_program(
        ("pdftotext",), "the printing tests need pdftotext: apt-get install -y poppler-utils"
    )


def pdf_pages_text(pdf: Path) -> list[str]:
    """The text of each page of `pdf`, laid out as printed (pdftotext ends each page with \\f)."""
    text = subprocess.run(
        [pdftotext_program(), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return text.split("\f")[:-1]


# Hostile names: formula starters for the workbook, markup for the page.
HOSTILE_NAMES = {
    "P001": '=HYPERLINK("http://x")',
    "P002": "<script>alert(1)</script>",
    "P003": "+1",
    "P004": "@SUM(A1)",
    "P005": "-Minus Smith",
    "P006": "\tTabby Cat",
}


def make_report_context(**changes: object):  # -> ReportContext (imported lazily)
    """A small fixed ReportContext whose figures agree with each other (hand-computed)."""
    import pandas as pd

    from pkgreport.reports.model import (
        ChartData,
        Column,
        FindingKind,
        Headline,
        ReportContext,
        RollRow,
        Table,
    )

    n = HOSTILE_NAMES
    na = pd.NA
    findings = Table(
        key="findings",
        sheet="Findings",
        title="Findings",
        description="Every finding, most serious first, with the record it concerns.",
        columns=(
            Column("code", "Code", "id"),
            Column("severity", "Severity"),
            Column("patient_id", "Patient", "id"),
            Column("patient_name", "Patient name"),
            Column("subject_id", "Record", "id"),
            Column("amount", "Amount", "money"),
            Column("message", "What it means"),
            Column("source_file", "File"),
            Column("source_row", "Row", "int", total=False, secondary=True, grouped=False),
        ),
        frame=pd.DataFrame(
            {
                "code": [
                    "OVER_BOOKED",
                    "OVER_BOOKED",
                    "UNAPPLIED_CREDIT",
                    "UNAPPLIED_CREDIT",
                    "DORMANT_CREDIT",
                ],
                "severity": ["high", "high", "medium", "medium", "low"],
                "patient_id": ["P001", "P002", "P003", "P004", "P005"],
                "patient_name": [n["P001"], n["P002"], n["P003"], n["P004"], n["P005"]],
                "subject_id": ["C001", "C002", "P003", "P004", "P005"],
                "amount": pd.array([na, na, 12050, 999, 4000], dtype="Int64"),
                "message": [
                    "Case C001 has 11 sessions counted against 10 paid for.",
                    "Case C002 has 6 sessions counted against 5 paid for.",
                    "$120.50 of credit is unapplied while invoice INV-7 is open.",
                    "$9.99 of credit is unapplied while invoice INV-9 is open.",
                    "$40.00 of credit has not moved since 01/06/2025.",
                ],
                "source_file": [
                    "cases.csv",
                    "cases.csv",
                    "patients.csv",
                    "patients.csv",
                    "patients.csv",
                ],
                "source_row": pd.array([2, 3, 4, 5, 1096], dtype="Int64"),
            }
        ),
    )
    cases = Table(
        key="cases",
        sheet="Cases",
        title="Cases",
        description="Every case (package) with sessions counted against it.",
        columns=(
            Column("case_id", "Case", "id"),
            Column("patient_id", "Patient", "id"),
            Column("patient_name", "Patient name"),
            Column("case_name", "Package"),
            Column("max_sessions", "Sessions paid", "int", total=False),
            Column("counted", "Sessions counted", "int", total=False),
            Column("remaining", "Remaining", "int", total=False),
            Column("over_booked_by", "Over by", "int"),
            Column("status", "Status"),
            Column("expiry_date", "Expires", "date"),
            Column("package_price", "Price", "money"),
        ),
        frame=pd.DataFrame(
            {
                "case_id": ["C001", "C002", "C003", "C004"],
                "patient_id": ["P001", "P002", "P003", "P004"],
                "patient_name": [n["P001"], n["P002"], n["P003"], n["P004"]],
                "case_name": ["10 x Physio", "5 x Massage", "Pilates 8", "Unlimited gym"],
                "max_sessions": pd.array([10, 5, 8, na], dtype="Int64"),
                "counted": [11, 6, 3, 14],
                "remaining": pd.array([0, 0, 5, na], dtype="Int64"),
                "over_booked_by": [1, 1, 0, 0],
                "status": ["over-booked", "over-booked", "active", "unlimited"],
                "expiry_date": pd.to_datetime(["2027-03-31", "2026-12-31", None, "2026-10-01"]),
                "package_price": pd.array([90000, 45000, 32000, na], dtype="Int64"),
                "over_booked": [True, True, False, False],
            }
        ),
        highlight="over_booked",
        total_row=True,
    )
    credit = Table(
        key="credit",
        sheet="Credit",
        title="Unapplied credit",
        description="Credit each patient holds: received less applied and refunded.",
        columns=(
            Column("patient_id", "Patient", "id"),
            Column("patient_name", "Patient name"),
            Column("received", "Received", "money"),
            Column("applied", "Applied", "money"),
            Column("refunded", "Refunded", "money"),
            Column("credit", "Credit", "money"),
            Column("last_movement", "Last movement", "date"),
        ),
        frame=pd.DataFrame(
            {
                "patient_id": ["P003", "P004", "P005", "P006"],
                "patient_name": [n["P003"], n["P004"], n["P005"], n["P006"]],
                "received": [20000, 999, 5000, 1],
                "applied": [7950, 0, 0, 1],
                "refunded": [0, 0, 1000, 0],
                "credit": [12050, 999, 4000, 0],
                "last_movement": pd.to_datetime(
                    ["2026-11-02", "2026-10-15", "2025-06-01", "2026-11-19"]
                ),
                "dormant": [False, False, True, False],
                "holds_credit": [True, True, True, False],
            }
        ),
        highlight="dormant",
        total_row=True,
        attention="holds_credit",
    )
    ageing_rows = [
        ("0-30", 1, 12050),
        ("31-60", 1, 999),
        ("61-90", 0, 0),
        ("91-180", 0, 0),
        ("181-365", 0, 0),
        ("over 365", 1, 4000),
    ]
    ageing = Table(
        key="ageing",
        sheet="Ageing",
        title="Credit ageing",
        description="Unapplied credit by days since the patient's last movement.",
        columns=(
            Column("bucket", "Age (days)"),
            Column("patients", "Patients", "int"),
            Column("credit", "Credit", "money"),
        ),
        frame=pd.DataFrame(ageing_rows, columns=["bucket", "patients", "credit"]),
        total_row=True,
    )
    roll = [
        RollRow("Oct 2026", 4000, 999, 0, 0, 4999),
        RollRow("Nov 2026", 4999, 20000, 7950, 0, 17049),
    ]
    rollforward = Table(
        key="rollforward",
        sheet="Roll-forward",
        title="Credit roll-forward",
        description="Opening credit, credit created, applied and refunded, and closing credit.",
        columns=(
            Column("month", "Month"),
            Column("opening", "Opening", "money"),
            Column("created", "Created", "money"),
            Column("applied", "Applied", "money"),
            Column("refunded", "Refunded", "money"),
            Column("closing", "Closing", "money"),
        ),
        frame=pd.DataFrame([vars(r) for r in roll]).rename(columns={"label": "month"}),
    )
    validation = Table(
        key="validation",
        sheet="Validation",
        title="Validation",
        description="Warnings about the inputs and rows left out.",
        columns=(
            Column("severity", "Severity"),
            Column("file", "File"),
            Column("row", "Row", "int"),
            Column("column", "Column"),
            Column("value", "Value"),
            Column("message", "Message"),
        ),
        frame=pd.DataFrame(
            {
                "severity": ["warning", "warning"],
                "file": ["appointments.csv", "payments.csv"],
                "row": [7, 12],
                "column": ["Starts", "Notes"],
                "value": ["31/02/2026", "=1+1\r\nline two"],
                "message": [
                    "Not a date; the row was left out. Fix the date and run again.",
                    "A note starting with '=' was kept as text.",
                ],
            }
        ),
        html=False,
    )
    ctx = ReportContext(
        title="Packages and account credit — Demo Clinic",
        as_of=date(2026, 11, 20),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        findings=findings,
        headlines=(
            Headline(
                "Credit liability", 17049, "money", "warn", "Credit patients hold, 4 patients"
            ),
            Headline(
                "Package value undelivered", 20000, "money", "ok", "Sessions paid, not yet used"
            ),
            Headline("Cases over-booked", 2, "int", "bad", "More sessions than paid for"),
            Headline("Findings", 5, "int", "warn", "See the Findings sheet"),
        ),
        finding_kinds=(
            FindingKind(
                "OVER_BOOKED",
                "Cases over-booked",
                2,
                "high",
                "More sessions were counted against the case than the package allows.",
                "Invoice the extra sessions or move them to a new case.",
            ),
            FindingKind(
                "UNAPPLIED_CREDIT",
                "Credit not applied to open invoices",
                2,
                "medium",
                "The patient holds credit while an invoice of theirs is still open.",
                "Apply the credit to the open invoice in Cliniko.",
            ),
            FindingKind(
                "DORMANT_CREDIT",
                "Dormant credit",
                1,
                "low",
                "Credit has not moved for over a year.",
                "Contact the patient: use the credit or refund it.",
            ),
        ),
        tables=(cases, credit, ageing, rollforward, validation),
        charts=ChartData(
            ageing=tuple((b, c) for b, _p, c in ageing_rows),
            utilisation=(
                ("0-25%", 0),
                ("25-50%", 1),
                ("50-75%", 0),
                ("75-100%", 0),
                ("over 100%", 2),
            ),
            rollforward=tuple(roll),
            unlimited=1,
        ),
        skipped=(("Open invoices", "no invoices export in the input folder"),),
        inputs=(
            {"file": "appointments.csv", "kind": "appointments", "rows": 40, "sha256": "a" * 64},
            {"file": "cases.csv", "kind": "cases", "rows": 4, "sha256": "b" * 64},
            {"file": "patients.csv", "kind": "patients", "rows": 6, "sha256": "c" * 64},
        ),
        settings=(
            ("As of", "2026-11-20"),
            ("Allocation", "oldest-first"),
            ("Time zone", "Australia/Sydney"),
        ),
    )
    if changes:
        import dataclasses

        ctx = dataclasses.replace(ctx, **changes)
    return ctx


@pytest.fixture
def report_context():
    return make_report_context()
