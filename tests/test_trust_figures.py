"""Figures that must agree between outputs: counts, liability, package value at the as-of date."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from click.testing import CliRunner
from markupsafe import escape

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def report(folder: Path, out: Path, *options: str) -> dict:
    result = CliRunner().invoke(cli, ["report", str(folder), "-o", str(out), "-q", *options])
    assert result.exit_code == 0, result.stderr
    return json.loads(next(out.glob("pkgreport-*.json")).read_text(encoding="utf-8"))


def test_excluded_rows_count_is_the_validation_sheet_list(tmp_path: Path) -> None:
    summary = report(SAMPLE, tmp_path)
    sheet = openpyxl.load_workbook(next(tmp_path.glob("*.xlsx")), read_only=True)["Validation"]
    excluded = [row for row in sheet.iter_rows(values_only=True) if row and row[0] == "excluded"]
    # An unavailable block, a deleted payment, an archived appointment: validation's and the
    # engines' exclusions alike.
    assert len(excluded) == 3
    assert summary["counts"]["excluded_rows"] == 3


def _sample_with_a_refund_to_a_patient_without_credit(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    for path in SAMPLE.glob("*.csv"):
        (folder / path.name).write_bytes(path.read_bytes())
    with (folder / "Payments-Cliniko-20261101.csv").open("a", encoding="utf-8") as payments:
        # A patient with no credit left, refunded on the last day: nothing later covers it.
        payments.write("499999999,1000004,31/10/2026 23:00,-$100.00,Cash,Refund,\n")
    return folder


def test_one_liability_definition_in_headline_summary_and_rollforward(tmp_path: Path) -> None:
    plain = report(SAMPLE, tmp_path / "plain")
    summary = report(_sample_with_a_refund_to_a_patient_without_credit(tmp_path), tmp_path / "out")
    totals = summary["totals"]
    assert totals["credit_liability"] == totals["rollforward"]["closing"]
    before = plain["totals"]["credit_liability"]["cents"]
    assert totals["credit_liability"]["cents"] == before - 10000
    assert totals["credit_liability_made_up_of"] == {
        "owed_to_patients": {
            "cents": before,
            "amount": plain["totals"]["credit_liability"]["amount"],
        },
        "patients_owed": plain["totals"]["credit_liability_made_up_of"]["patients_owed"],
        "negative_balances": {"cents": -10000, "amount": "-100.00"},
        "patients_negative": 1,
    }
    assert [f["subject_id"] for f in summary["findings"] if f["code"] == "NEGATIVE_CREDIT"] == [
        "1000004"
    ]
    sheet = openpyxl.load_workbook(next((tmp_path / "out").glob("*.xlsx")), read_only=True)
    rows = [
        r for r in sheet["Summary"].iter_rows(values_only=True) if r and r[0] == "Credit liability"
    ]
    assert rows[0][1] == totals["credit_liability"]["cents"] / 100
    made_up = totals["credit_liability_made_up_of"]
    whole, cents = divmod(made_up["owed_to_patients"]["cents"], 100)
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    assert made_up["patients_owed"] > 1
    assert (
        f'<div class="card-detail">owed to {made_up["patients_owed"]:,} patients as at '
        f"31 Oct 2026 (${whole:,}.{cents:02d}), less $100.00 of negative balances of 1 "
        "patient (Negative credit)</div>"
    ) in html


def test_package_value_follows_the_as_of_date(tmp_path: Path) -> None:
    from datetime import date

    from pkgreport.config import Settings
    from pkgreport.pipeline import run

    september = run(Settings(input_dir=SAMPLE, as_of=date(2026, 9, 30)))
    october = run(Settings(input_dir=SAMPLE, as_of=date(2026, 10, 31)))
    assert september.packages is not None and october.packages is not None
    cases = september.dataset.cases.set_index("case_id")
    bought = cases.loc[september.packages["case_id"], "issue_date"]
    assert (bought.dropna() <= "2026-09-30").all()
    later = set(october.packages["case_id"]) - set(september.packages["case_id"])
    assert later and (cases.loc[sorted(later), "issue_date"] > "2026-09-30").all()
    delivered = september.cases.cases.set_index("case_id")["attended"]
    used = september.packages.set_index("case_id")["used"]
    assert (used == delivered.loc[used.index]).all()
    assert int(september.packages["undelivered"].sum()) != int(
        october.packages["undelivered"].sum()
    )


def _only(tmp_path: Path, *kinds: str) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    for path in SAMPLE.glob("*.csv"):
        if path.name.lower().startswith(kinds):
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


CASE_CHECKS = (
    "over-booked packages, expired packages with sessions left, appointments outside "
    "the package dates, appointments after the package was closed, sessions remaining "
    "differ from the system, packages nearly "
    "used up, packages used up with sessions still booked, patients with several open "
    "packages (no cases export in the input folder, so package tallies were not "
    "computed)"
)
CREDIT_CHECKS = (
    "unapplied account credit, credit held while invoices are open, dormant credit, "
    "negative credit, reported credit disagrees, invoice status disagrees, "
    "invoice balance disagrees with Cliniko's, "
    "over-allocated invoices, allocations to another patient's invoice, allocations "
    "to deleted invoices, package sessions charged again (no invoices and "
    "payments export in the input folder, so account credit, ageing and the "
    "roll-forward were not computed)"
)
ADVICE = ". Add the missing exports to the input folder to run them."


def test_only_appointments_says_no_check_could_run(tmp_path: Path) -> None:
    summary = report(_only(tmp_path, "appointments"), tmp_path / "out")
    from pkgreport.engine.registry import FINDINGS

    assert list(summary["checks_not_run"]) == list(FINDINGS)
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    assert "nothing needs attention" not in html
    assert (
        str(escape(f"19 of 19 checks could not run: {CASE_CHECKS}; {CREDIT_CHECKS}{ADVICE}"))
        in html
    )
    assert '<p class="empty">No findings in the checks that ran.</p>' in html
    sheet = openpyxl.load_workbook(next((tmp_path / "out").glob("*.xlsx")), read_only=True)
    cells = [r[0] for r in sheet["Summary"].iter_rows(values_only=True) if r]
    assert "No findings in the checks that ran." in cells and "No findings." not in cells
    assert f"19 of 19 checks could not run: {CASE_CHECKS}; {CREDIT_CHECKS}{ADVICE}" in cells


def test_only_invoices_and_payments_names_the_package_checks(tmp_path: Path) -> None:
    summary = report(_only(tmp_path, "invoices", "payments"), tmp_path / "out")
    assert set(summary["checks_not_run"]) == {
        "OVER_BOOKED",
        "EXPIRED_WITH_SESSIONS_LEFT",
        "OUTSIDE_CASE_DATES",
        "BOOKED_AFTER_CLOSE",
        "REPORTED_REMAINING_MISMATCH",
        "NEARLY_USED_UP",
        "USED_UP_STILL_BOOKED",
        "SEVERAL_OPEN_PACKAGES",
    }
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    assert f'<p class="skipped">8 of 19 checks could not run: {CASE_CHECKS}{ADVICE}</p>' in html


def test_a_complete_folder_runs_every_check(tmp_path: Path) -> None:
    summary = report(SAMPLE, tmp_path / "out")
    assert summary["checks_not_run"] == {}
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    assert 'class="skipped"' not in html
