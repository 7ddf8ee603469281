"""End to end on sample_data: every planted finding is found, and nothing else of the exclusive kinds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.demo.generate import PLANTED, PLANTED_CREDIT, PLANTS
from pkgreport.pipeline import RunResult, compute, load_dataset, month_bounds, run

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
# Codes that also occur naturally among the generated patients.
NATURAL = {"UNAPPLIED_CREDIT", "NEARLY_USED_UP"}


@pytest.fixture(scope="module")
def result() -> RunResult:
    return run(Settings(input_dir=SAMPLE))


def test_sample_validates_without_errors(result: RunResult) -> None:
    assert [i for i in result.dataset.issues if i.severity == "error"] == []


def test_default_as_of_is_the_last_activity_not_the_clock(result: RunResult) -> None:
    assert result.as_of == date(2026, 10, 31)
    assert (result.period_start, result.period_end) == (date(2026, 10, 1), date(2026, 10, 31))


@pytest.mark.parametrize("code", sorted(PLANTED))
def test_each_planted_finding_is_found_exactly_where_planted(result: RunResult, code: str) -> None:
    found = set(result.findings.loc[result.findings["code"] == code, "subject_id"])
    assert set(PLANTED[code]) <= found
    if code not in NATURAL:
        assert found == set(PLANTED[code])


def test_planted_appointments_are_named(result: RunResult) -> None:
    for plant in PLANTS:
        if not plant.appointment_ids:
            continue
        rows = result.findings[
            (result.findings["code"] == plant.code)
            & (result.findings["subject_id"] == plant.subject_id)
        ]
        named = {a for ids in rows["appointment_ids"] for a in ids.split(", ") if a}
        assert set(plant.appointment_ids) <= named, plant


def test_recomputed_credit_matches_the_planted_truth(result: RunResult) -> None:
    assert result.credit is not None
    credit = result.credit.patients.set_index("patient_id")["credit"]
    for patient, cents in PLANTED_CREDIT.items():
        assert int(credit.get(patient, 0)) == cents, patient


def test_credit_rolls_forward_from_month_to_month(result: RunResult) -> None:
    monthly = result.monthly
    assert monthly is not None and list(monthly["month"])[-3:] == ["2026-08", "2026-09", "2026-10"]
    closing = monthly["closing"].to_numpy()
    opening = monthly["opening"].to_numpy()
    assert (opening[1:] == closing[:-1]).all()
    assert (
        (monthly["opening"] + monthly["created"] - monthly["applied"] - monthly["refunded"])
        == monthly["closing"]
    ).all()
    # The October closing total is the credit liability on 31 October.
    assert result.credit is not None
    assert closing[-1] == int(result.credit.patients["credit"].sum())


def test_each_month_end_rolls_into_the_next_with_as_of_runs() -> None:
    dataset = load_dataset(Settings(input_dir=SAMPLE))
    closings = {}
    for month_end in (date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)):
        start, end = month_bounds(month_end)
        r = compute(
            dataset, Settings(input_dir=SAMPLE, as_of=month_end, period_start=start, period_end=end)
        )
        assert r.rollforward is not None and r.credit is not None
        total = r.rollforward.iloc[-1]
        assert total["patient_id"] == "TOTAL"
        assert int(total["closing"]) == int(r.credit.patients["credit"].sum())
        closings[month_end] = (int(total["opening"]), int(total["closing"]))
    assert closings[date(2026, 9, 30)][0] == closings[date(2026, 8, 31)][1]
    assert closings[date(2026, 10, 31)][0] == closings[date(2026, 9, 30)][1]


def test_same_inputs_same_results(result: RunResult) -> None:
    again = run(Settings(input_dir=SAMPLE))
    pd.testing.assert_frame_equal(again.findings, result.findings)
    assert again.credit is not None and result.credit is not None
    pd.testing.assert_frame_equal(again.credit.patients, result.credit.patients)


def test_every_row_left_out_of_the_figures_is_listed(result: RunResult) -> None:
    from pkgreport.reports.context import build_context

    table = next(t for t in build_context(result).tables if t.key == "validation")
    excluded = table.frame[table.frame["severity"] == "excluded"]
    listed = dict(zip(excluded["value"], excluded["message"], strict=True))
    # The planted archived appointment and deleted payment (sample_data/README.md).
    assert listed["190000040"] == "appointment archived: not counted toward case 490015"
    assert listed["390000031"].startswith("deleted payment")
