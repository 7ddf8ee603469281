"""Figures per location and per practitioner: attribution rules, and ties to the totals."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.engine.breakdown import (
    LOCATION_COLUMNS,
    UNASSIGNED,
    by_location,
    by_practitioner,
    case_frame,
    case_owners,
    patient_businesses,
)
from pkgreport.pipeline import run
from pkgreport.reports.summary import build_summary

AS_OF = date(2026, 10, 31)
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


INVOICES = pd.DataFrame(
    {
        "invoice_id": ["i1", "i2", "i3", "i4", "i5"],
        "patient_id": ["p1", "p1", "p2", "p2", "p3"],
        "issue_date": [
            _day("2026-09-01"),
            _day("2026-10-01"),
            _day("2026-10-05"),
            _day("2026-10-05"),
            _day("2026-10-20"),
        ],
        "business": ["North", "South", "North", np.nan, "  "],
    }
)


def test_credit_goes_to_the_business_of_the_latest_invoice_naming_one() -> None:
    owners = patient_businesses(INVOICES)
    # p1: the later invoice (South); p2: the tie's later row names no business, so North;
    # p3: no invoice names a business, so p3 is left out (unassigned by the caller).
    assert owners.to_dict() == {"p1": "South", "p2": "North"}


def test_a_package_belongs_to_its_latest_counted_appointment() -> None:
    tally = pd.DataFrame(
        {
            "case_id": ["c1", "c1", "c1", "c2"],
            "appointment_id": ["a1", "a2", "a3", "a4"],
            "starts_at": [
                _day("2026-10-01"),
                _day("2026-10-08"),
                _day("2026-11-08"),
                _day("2026-10-02"),
            ],
            "number": pd.array([1, 2, pd.NA, pd.NA], dtype="Int64"),
            "counted": [True, True, False, False],
        }
    )
    appointments = pd.DataFrame(
        {
            "appointment_id": ["a1", "a2", "a3", "a4"],
            "business": ["North", "South", "East", "West"],
            "practitioner": ["Ann", "Bo", "Cy", "Di"],
        }
    )
    owners = case_owners(tally, appointments)
    assert owners.to_dict("index") == {"c1": {"business": "South", "practitioner": "Bo"}}


def test_a_package_whose_latest_appointment_is_a_group_one_belongs_to_that_appointment() -> None:
    # A group appointment is one row per attendee, all with its id, business and practitioner.
    tally = pd.DataFrame(
        {
            "case_id": ["c1", "c1", "c2"],
            "appointment_id": ["a1", "g1", "g1"],
            "number": pd.array([1, 2, 1], dtype="Int64"),
            "counted": [True, True, True],
        }
    )
    appointments = pd.DataFrame(
        {
            "appointment_id": ["a1", "g1", "g1", "g1"],
            "patient_id": ["p1", "p1", "p2", "p3"],
            "business": ["North", "South", "South", "South"],
            "practitioner": ["Ann", "Bo", "Bo", "Bo"],
        }
    )
    owners = case_owners(tally, appointments)
    assert owners.to_dict("index") == {
        "c1": {"business": "South", "practitioner": "Bo"},
        "c2": {"business": "South", "practitioner": "Bo"},
    }


def _location_inputs() -> dict[str, object]:
    patients = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "credit": [5000, -300, 700]})
    credit_invoices = pd.DataFrame(
        {
            "invoice_id": ["i1", "i2", "i3", "i4", "i5"],
            "issue_date": INVOICES["issue_date"],
            "outstanding": [0, 1200, 400, 0, 90],
        }
    )
    cases = pd.DataFrame(
        {
            "case_id": ["c1", "c2"],
            "over_booked_by": [1, 0],
            "status": ["over-booked", "active"],
            "expiry_date": [_day("2027-01-01"), _day("2026-11-29")],
            "upcoming": [2, 1],
        }
    )
    tally = pd.DataFrame(
        {
            "case_id": ["c1", "c2"],
            "appointment_id": ["a1", "a2"],
            "starts_at": [_day("2026-10-01"), _day("2026-10-02")],
            "number": pd.array([1, 1], dtype="Int64"),
            "counted": [True, True],
        }
    )
    appointments = pd.DataFrame(
        {
            "appointment_id": ["a1", "a2"],
            "business": ["North", np.nan],
            "practitioner": ["Ann", "Bo"],
        }
    )
    packages = pd.DataFrame(
        {"case_id": ["c1", "c2"], "undelivered": pd.array([pd.NA, 2500], dtype="Int64")}
    )
    owned = case_frame(
        as_of=AS_OF,
        cases=cases,
        case_appointments=tally,
        appointments=appointments,
        packages=packages,
    )
    return {
        "invoices": INVOICES,
        "credit_patients": patients,
        "credit_invoices": credit_invoices,
        "cases": owned,
    }


def test_by_location_exact_figures() -> None:
    frame = by_location(as_of=AS_OF, **_location_inputs())
    assert list(frame.columns) == list(LOCATION_COLUMNS)
    assert frame.to_dict("records") == [
        # p2's credit is negative: it counts against the liability (the signed sum, as the
        # headline and roll-forward define it) but p2 is not a holder. i2 (South, p1) is open.
        {
            "business": "North",
            "patients_with_credit": 0,
            "credit_liability": -300,
            "open_invoices": 400,
            "package_value_undelivered": 0,
            "cases_over_booked": 1,
            "cases_expiring": 0,
        },
        {
            "business": "South",
            "patients_with_credit": 1,
            "credit_liability": 5000,
            "open_invoices": 1200,
            "package_value_undelivered": 0,
            "cases_over_booked": 0,
            "cases_expiring": 0,
        },
        # p3's invoice names no business; c2's appointment neither; c2 expires in 29 days.
        {
            "business": UNASSIGNED,
            "patients_with_credit": 1,
            "credit_liability": 700,
            "open_invoices": 90,
            "package_value_undelivered": 2500,
            "cases_over_booked": 0,
            "cases_expiring": 1,
        },
    ]


def test_by_practitioner_exact_figures() -> None:
    frame = by_practitioner(_location_inputs()["cases"])
    assert frame.to_dict("records") == [
        {
            "practitioner": "Ann",
            "cases_active": 0,
            "upcoming_sessions": 2,
            "cases_over_booked": 1,
            "cases_expiring": 0,
            "package_value_undelivered": 0,
        },
        {
            "practitioner": "Bo",
            "cases_active": 1,
            "upcoming_sessions": 1,
            "cases_over_booked": 0,
            "cases_expiring": 1,
            "package_value_undelivered": 2500,
        },
    ]


def test_without_cases_the_case_figures_are_missing_not_zero() -> None:
    inputs = {**_location_inputs(), "cases": None}
    frame = by_location(as_of=AS_OF, **inputs)
    assert frame["package_value_undelivered"].isna().all()
    assert int(frame["credit_liability"].sum()) == 5400


@pytest.fixture(scope="module")
def sample_summary() -> dict:
    result = run(Settings(input_dir=SAMPLE))
    return json.loads(json.dumps(build_summary(result, title="t", generated_at=None)))


def test_per_location_figures_tie_to_the_totals(sample_summary) -> None:
    totals, counts = sample_summary["totals"], sample_summary["counts"]
    locations = sample_summary["by_location"]["locations"]
    assert len(locations) >= 2  # the sample clinic has two businesses

    def cents(key: str) -> int:
        return sum(row[key]["cents"] for row in locations)

    assert cents("credit_liability") == totals["credit_liability"]["cents"]
    assert cents("open_invoices") == totals["open_invoices_outstanding"]["cents"]
    assert cents("package_value_undelivered") == totals["package_value_undelivered"]["cents"]
    assert sum(r["patients_with_credit"] for r in locations) == counts["patients_with_credit"]
    assert sum(r["cases_over_booked"] for r in locations) == counts["cases_over_booked"]
    practitioners = sample_summary["by_location"]["practitioners"]
    assert (
        sum(r["package_value_undelivered"]["cents"] for r in practitioners)
        == (totals["package_value_undelivered"]["cents"])
    )
    assert sum(r["cases_over_booked"] for r in practitioners) == counts["cases_over_booked"]
    assert sum(r["cases_expiring"] for r in practitioners) == sum(
        r["cases_expiring"] for r in locations
    )
