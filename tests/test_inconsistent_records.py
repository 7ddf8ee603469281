"""Records that disagree (over-allocation, another patient's invoice, a deleted invoice) are
findings naming both records, not errors that stop the run; unreadable values stay errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "exports"
    out.mkdir()
    files = {
        "appointments.csv": "ID,Patient ID,Appointment Start\na1,p1,01/10/2026 09:00\n",
        "invoices.csv": (
            "ID,Patient ID,Issue Date,Total Amount,Deleted At\n"
            "i1,p1,01/10/2026,90.00,\ni2,p2,01/10/2026,50.00,\n"
            "i3,p1,02/10/2026,40.00,05/10/2026\n"
        ),
        "payments.csv": (
            "ID,Patient ID,Payment Date,Amount\npay1,p1,03/10/2026,200.00\n"
            "pay2,p2,03/10/2026,50.00\n"
        ),
        "allocations.csv": (
            "Invoice ID,Payment ID,Amount\ni1,pay1,100.00\ni2,pay1,30.00\ni3,pay1,40.00\n"
        ),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return out


OTHER = (
    "Allocation of $30.00 from payment pay1 (patient p1, payments.csv row 2) to invoice i2 "
    "(patient p2, invoices.csv row 3), allocations.csv row 3: a payment can only pay its own "
    "patient's invoices, so it was not applied and the $30.00 stays with patient p1. Move the "
    "allocation in the practice system to one of patient p1's invoices or to account credit."
)
OVER = (
    "Allocations to invoice i1 (invoices.csv row 2) add up to $100.00, more than its total "
    "$90.00 (allocations: allocations.csv row 2): correct the "
    "allocations so the excess goes back to credit."
)
DELETED = (
    "Allocation of $40.00 from payment pay1 (patient p1, payments.csv row 2) to invoice i3 "
    "(patient p1, invoices.csv row 4), allocations.csv row 4: the invoice was deleted or "
    "archived on 2026-10-05, so the allocation was not applied and the $40.00 stays with "
    "patient p1. Remove the allocation in the practice system, or restore the invoice."
)


def test_validate_lists_inconsistent_records_apart_from_errors(folder: Path) -> None:
    result = invoke("validate", str(folder))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "Errors: 0   Warnings: 0   Inconsistent records: 3" in lines
    start = lines.index(
        "Inconsistent records (reported as findings; the figures are still computed):"
    )
    assert lines[start + 1 : start + 4] == [
        f"  INCONSISTENT: allocations.csv, row 3: {OTHER}",
        f"  INCONSISTENT: invoices.csv, row 2: {OVER}",
        f"  INCONSISTENT: allocations.csv, row 4: {DELETED}",
    ]
    assert lines[-1] == "Result: the exports can be used"


def test_validate_labels_errors_and_inconsistent_records_together(folder: Path) -> None:
    (folder / "payments.csv").write_text(
        "ID,Patient ID,Payment Date,Amount\npay1,p1,03/10/2026,200.00\npay2,p2,03/10/2026,fifty\n",
        encoding="utf-8",
    )
    result = invoke("validate", str(folder), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["errors"] == 1
    assert [(r["code"], r["file"], r["row"]) for r in summary["inconsistent_records"]] == [
        ("ALLOCATION_OTHER_PATIENT", "allocations.csv", 3),
        ("ALLOCATION_TO_DELETED_INVOICE", "allocations.csv", 4),
    ]


def test_report_runs_and_carries_the_findings(folder: Path, tmp_path: Path) -> None:
    result = invoke("report", str(folder), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    found = {f["code"]: f for f in summary["findings"]}
    assert found["OVER_ALLOCATED_INVOICE"]["message"] == OVER
    assert found["ALLOCATION_OTHER_PATIENT"]["message"] == OTHER
    assert found["ALLOCATION_TO_DELETED_INVOICE"]["message"] == DELETED
    assert found["ALLOCATION_OTHER_PATIENT"]["amount"] == {"cents": 3000, "amount": "30.00"}


def test_credit_figures_leave_set_aside_allocations_with_the_payer(folder: Path) -> None:
    result = invoke("credit", str(folder), "-q", "--format", "json")
    patients = {p["patient_id"]: p for p in json.loads(result.stdout)}
    # pay1 ($200) pays i1's $100 allocation (over its $90 total); the $30 and $40 allocations are
    # not applied, so p1 keeps $100 of credit and p2's own payment pays i2.
    assert patients["p1"]["credit"]["cents"] == 10000
    assert patients["p2"]["credit"]["cents"] == 0
    assert patients["p2"]["open_outstanding"]["cents"] == 0


@pytest.mark.parametrize("where", ["fixture", "sample_data", "no credit inputs"])
def test_validate_finds_the_records_the_full_run_finds(folder: Path, where: str) -> None:
    """`validate` runs only the credit engine; its records are those of every engine's run."""
    import pandas as pd

    from pkgreport import pipeline
    from pkgreport.config import Settings

    if where == "sample_data":
        folder = Path(__file__).resolve().parents[1] / "sample_data"
    elif where == "no credit inputs":
        for name in ("invoices.csv", "payments.csv"):
            (folder / name).unlink()
    dataset = pipeline.load_dataset(Settings(input_dir=folder))
    full = pipeline.compute(dataset, Settings(input_dir=folder)).findings
    expected = full.loc[full["code"].isin(pipeline.RECORD_FINDINGS)].reset_index(drop=True)
    found = pipeline.inconsistent_records(dataset, Settings(input_dir=folder))
    pd.testing.assert_frame_equal(found, expected, check_dtype=False, check_index_type=False)
    assert len(found) == {"fixture": 3, "sample_data": len(expected), "no credit inputs": 0}[where]
