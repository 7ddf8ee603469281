"""Figures per location and per practitioner: attribution rules, and ties to the totals."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.config import Settings
from pkgreport.engine.breakdown import (
    LOCATION_COLUMNS,
    PRACTITIONER_COLUMNS,
    UNASSIGNED,
    by_location,
    by_practitioner,
    case_frame,
    case_owners,
    patient_businesses,
)
from pkgreport.ids import encode_ids
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
    owners = patient_businesses(INVOICES, np.array(["p1", "p2", "p3", "p9"], dtype=object))
    # p1: the later invoice (South); p2: the tie's later row names no business, so North;
    # p3: no invoice names a business, and p9 has none: None (unassigned by the caller).
    assert owners.tolist() == ["South", "North", None, None]


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
    businesses, practitioners = case_owners(np.array(["c1", "c2"]), tally, appointments)
    # c2's only appointment is not counted: it has no owner.
    assert businesses.tolist() == ["South", None]
    assert practitioners.tolist() == ["Bo", None]


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
    businesses, practitioners = case_owners(np.array(["c1", "c2"]), tally, appointments)
    assert businesses.tolist() == ["South", "South"]
    assert practitioners.tolist() == ["Bo", "Bo"]


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


def _name(value: object) -> str:
    return value.strip() or UNASSIGNED if isinstance(value, str) else UNASSIGNED


def _first_row(values: list[object], wanted: object) -> int | None:
    return next((i for i, v in enumerate(values) if v == wanted), None)


def _latest(rows: list[tuple[object, object, int]]) -> dict[object, int]:
    """Per group: the row of the highest key, the last row on a tie (rows: group, key, row)."""
    best: dict[object, tuple[object, int]] = {}
    for group, key, row in rows:
        if group not in best or (key, row) >= best[group]:
            best[group] = (key, row)
    return {group: row for group, (_, row) in best.items()}


def _plain_figures(d: dict[str, pd.DataFrame]) -> tuple[list[dict], list[dict]]:
    """The figures per location and practitioner, row by row, as the module docstring says."""
    inv, appts, tally, cases = d["invoices"], d["appointments"], d["tally"], d["cases"]
    named = [i for i in range(len(inv)) if _name(inv["business"][i]) != UNASSIGNED]
    latest_invoice = _latest([(inv["patient_id"][i], inv["issue_date"][i], i) for i in named])
    counted = [i for i in range(len(tally)) if tally["counted"][i]]
    latest_appt = _latest([(tally["case_id"][i], tally["number"][i], i) for i in counted])
    rows: dict[str, list[tuple[str, str, int]]] = {"business": [], "practitioner": []}
    for i, patient in enumerate(d["patients"]["patient_id"]):
        row = latest_invoice.get(patient)
        owner = _name(None if row is None else inv["business"][row])
        credit = int(d["patients"]["credit"][i])
        rows["business"] += [(owner, "patients_with_credit", int(credit > 0))]
        rows["business"] += [(owner, "credit_liability", credit)]
    ci = d["credit_invoices"]
    for i in range(len(ci)):
        if ci["issue_date"][i] <= pd.Timestamp(AS_OF) and ci["outstanding"][i] > 0:
            row = _first_row(list(inv["invoice_id"]), ci["invoice_id"][i])
            owner = _name(None if row is None else inv["business"][row])
            rows["business"] += [(owner, "open_invoices", int(ci["outstanding"][i]))]
    for i, case in enumerate(cases["case_id"]):
        tally_row = latest_appt.get(case)
        found = None
        if tally_row is not None:
            found = _first_row(list(appts["appointment_id"]), tally["appointment_id"][tally_row])
        active = cases["status"][i] == "active"
        expiry = cases["expiry_date"][i]
        soon = active and pd.Timestamp(AS_OF) <= expiry < pd.Timestamp(AS_OF) + pd.Timedelta(
            days=30
        )
        package = _first_row(list(d["packages"]["case_id"]), case)
        value = 0 if package is None else d["packages"]["undelivered"][package]
        figures = {
            "cases_active": int(active),
            "upcoming_sessions": int(cases["upcoming"][i]),
            "cases_over_booked": int(cases["over_booked_by"][i] > 0),
            "cases_expiring": int(soon),
            "package_value_undelivered": 0 if pd.isna(value) else int(value),
        }
        for key in ("business", "practitioner"):
            owner = _name(None if found is None else appts[key][found])
            for figure, amount in figures.items():
                if key == "practitioner" or figure not in ("cases_active", "upcoming_sessions"):
                    rows[key] += [(owner, figure, amount)]
    return _plain_sums(rows["business"], "business"), _plain_sums(
        rows["practitioner"], "practitioner"
    )


def _plain_sums(rows: list[tuple[str, str, int]], key: str) -> list[dict]:
    columns = LOCATION_COLUMNS if key == "business" else PRACTITIONER_COLUMNS
    names = sorted({name for name, _, _ in rows}, key=lambda n: (n == UNASSIGNED, n.casefold(), n))
    sums = {name: dict.fromkeys(columns[1:], 0) for name in names}
    for name, figure, amount in rows:
        sums[name][figure] += amount
    return [{key: name, **sums[name]} for name in names]


_BUSINESSES = st.sampled_from(["North", "South", " North ", "north", "", "  ", None, np.nan])
_TYPED = {
    "issue_date": "datetime64[ns]",
    "expiry_date": "datetime64[ns]",
    "counted": bool,
    "number": "Int64",
    "undelivered": "Int64",
    "over_booked_by": "int64",
    "upcoming": "int64",
    "credit": "int64",
    "outstanding": "int64",
}
_DAYS = st.sampled_from([_day("2026-10-01"), _day("2026-10-05"), _day("2026-11-20"), pd.NaT])


@st.composite
def _month(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    def frame(n: int, **columns: st.SearchStrategy) -> pd.DataFrame:
        drawn = pd.DataFrame(
            {k: draw(st.lists(s, min_size=n, max_size=n)) for k, s in columns.items()}
        )
        # The engines' dtypes, empty frames included.
        return drawn.astype({k: v for k, v in _TYPED.items() if k in drawn.columns})

    ids = st.sampled_from
    n = st.integers(0, 7)
    invoices = frame(
        draw(n),
        invoice_id=ids(["i1", "i2", "i3", "i4"]),
        patient_id=ids(["p1", "p2", "p3"]),
        issue_date=_DAYS.filter(lambda d: d is not pd.NaT),
        business=_BUSINESSES,
    )
    tally = frame(
        draw(n),
        case_id=ids(["c1", "c2", "c3"]),
        appointment_id=ids(["a1", "a2", "a3", "a4"]),
        number=st.integers(1, 3),
        counted=st.booleans(),
    )
    case_ids = draw(st.lists(ids(["c1", "c2", "c3", "c4"]), unique=True, max_size=4))
    cases = frame(
        len(case_ids),
        status=ids(["active", "closed"]),
        over_booked_by=st.integers(0, 2),
        expiry_date=_DAYS,
        upcoming=st.integers(0, 3),
    ).assign(case_id=case_ids)
    patients = draw(st.lists(ids(["p1", "p2", "p3", "p4"]), unique=True, max_size=4))
    return {
        "invoices": invoices,
        "appointments": frame(
            draw(n),
            appointment_id=ids(["a1", "a2", "a3", "a4"]),
            business=_BUSINESSES,
            practitioner=ids(["Ann", "bo", "Bo ", None]),
        ),
        "tally": tally,
        "cases": cases,
        "packages": frame(
            draw(n), case_id=ids(["c1", "c2", "c3"]), undelivered=st.none() | st.integers(0, 900)
        ),
        "patients": frame(len(patients), credit=st.integers(-500, 500)).assign(patient_id=patients),
        "credit_invoices": frame(
            draw(n),
            invoice_id=ids(["i1", "i2", "i5"]),
            issue_date=_DAYS.filter(lambda d: d is not pd.NaT),
            outstanding=st.integers(-100, 300),
        ),
    }


@settings(max_examples=200, deadline=None)
@given(month=_month())
def test_the_figures_are_those_worked_out_row_by_row(month: dict[str, pd.DataFrame]) -> None:
    # Names cleaned, blanks unassigned, ties to the last row, ids repeated (the first row
    # found stands), invoices and cases of no one, all against a row-by-row reference.
    cases = case_frame(
        as_of=AS_OF,
        cases=month["cases"],
        case_appointments=month["tally"],
        appointments=month["appointments"],
        packages=month["packages"],
    )
    inputs = {
        "as_of": AS_OF,
        "invoices": month["invoices"],
        "credit_patients": month["patients"],
        "credit_invoices": month["credit_invoices"],
        "cases": cases,
    }
    plain_locations, plain_practitioners = _plain_figures(month)
    assert by_location(**inputs).to_dict("records") == plain_locations
    assert by_practitioner(cases).to_dict("records") == plain_practitioners
    # The invoices' patients found by the codes the engines give them: the same figures.
    codes = encode_ids(invoices=month["invoices"], patients=month["patients"]).patients
    by_code = by_location(**inputs, patient_codes=codes)
    assert by_code.to_dict("records") == plain_locations
