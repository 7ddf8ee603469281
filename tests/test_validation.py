"""Raw tables -> Dataset: header mapping, parse issues, duplicates, cross-file checks, columns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.config import Settings
from pkgreport.engine.credit import compute_credit
from pkgreport.errors import Issue, UsageError
from pkgreport.excluded import empty_excluded
from pkgreport.inputs.schemas import KINDS, typed_columns
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation import Dataset, load_column_map, validate_tables
from pkgreport.result import InputFile

SETTINGS = Settings(timezone="Australia/Sydney")


def raw(kind: str, name: str, columns: dict[str, list[str]], first_row: int = 2) -> RawTable:
    """A loader-shaped table: object columns of str, provenance, rows numbered from 2."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({h: pd.Series(v, dtype=object) for h, v in columns.items()})
    frame["source_file"] = pd.Series([name] * n, dtype=object)
    frame["source_row"] = np.arange(first_row, first_row + n, dtype=np.int64)
    return RawTable(InputFile(Path(name), name, kind, "0" * 64, 0, n), frame)


def appointments(**extra: list[str]) -> RawTable:
    return raw(
        "appointments",
        "appointments.csv",
        {
            "appointment_id": ["a1", "a2"],
            "patient_id": ["p1", "p2"],
            "starts_at": ["01/07/2026 09:00", "02/07/2026 10:30"],
            **extra,
        },
    )


def cases(**extra: list[str]) -> RawTable:
    return raw("cases", "cases.csv", {"case_id": ["c1", "c2"], "patient_id": ["p1", "p2"], **extra})


def invoices(**extra: list[str]) -> RawTable:
    return raw(
        "invoices",
        "invoices.csv",
        {
            "invoice_id": ["i1", "i2"],
            "patient_id": ["p1", "p2"],
            "issue_date": ["01/07/2026", "02/07/2026"],
            "total": ["100.00", "80.00"],
            **extra,
        },
    )


def payments(**extra: list[str]) -> RawTable:
    return raw(
        "payments",
        "payments.csv",
        {
            "payment_id": ["y1", "y2"],
            "patient_id": ["p1", "p2"],
            "paid_at": ["2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z"],
            "amount": ["100", "80"],
            **extra,
        },
    )


def allocations(columns: dict[str, list[str]]) -> RawTable:
    return raw("allocations", "allocations.csv", columns)


def shown(dataset: Dataset, severity: str | None = None) -> list[str]:
    return [str(i) for i in dataset.issues if severity is None or i.severity == severity]


# --- typed frames -----------------------------------------------------------------------------


def test_typed_frames_follow_the_contract() -> None:
    dataset = validate_tables(
        [
            appointments(),
            cases(),
            invoices(),
            payments(),
            allocations({"invoice_id": ["i1"], "payment_id": ["y1"], "amount": ["100"]}),
            raw("patients", "patients.csv", {"patient_id": ["p1", "p2"]}),
        ],
        SETTINGS,
    )
    assert dataset.issues == []
    for kind in KINDS:
        frame = dataset.frame(kind)
        assert frame is not None
        assert {c: str(t) for c, t in frame.dtypes.items()} == typed_columns(kind), kind
        assert isinstance(frame.index, pd.RangeIndex)
    appts = dataset.appointments
    assert appts is not None
    assert appts["starts_at"].tolist() == [
        pd.Timestamp(2026, 7, 1, 9),
        pd.Timestamp(2026, 7, 2, 10, 30),
    ]
    assert appts["did_not_arrive"].tolist() == [False, False]
    assert appts["case_id"].isna().all()
    assert appts["source_row"].tolist() == [2, 3]
    assert dataset.invoices is not None and dataset.invoices["total"].tolist() == [10000, 8000]
    assert dataset.payments is not None
    # Midnight UTC is 10:00 in Sydney in July.
    assert dataset.payments["paid_at"].tolist()[0] == pd.Timestamp(2026, 7, 1, 10)
    alloc = dataset.allocations
    assert alloc is not None
    assert alloc[["source", "patient_id", "amount"]].values.tolist() == [["payment", "p1", 10000]]
    assert dataset.excluded.empty
    assert list(dataset.excluded.columns) == ["kind", "source_file", "source_row", "id", "reason"]


def test_kinds_not_supplied_are_none() -> None:
    dataset = validate_tables([appointments()], SETTINGS)
    assert dataset.appointments is not None
    assert all(dataset.frame(k) is None for k in KINDS if k != "appointments")
    assert [f.name for f in dataset.files] == ["appointments.csv"]


def test_archived_and_deleted_rows_stay() -> None:
    dataset = validate_tables(
        [appointments(archived_at=["02/07/2026", ""], deleted_at=["", "2026-07-03"])], SETTINGS
    )
    assert dataset.appointments is not None and len(dataset.appointments) == 2
    assert dataset.appointments["archived_at"].notna().tolist() == [True, False]


# --- headers ----------------------------------------------------------------------------------


def test_cliniko_header_aliases() -> None:
    dataset = validate_tables(
        [
            raw(
                "appointments",
                "appointments.csv",
                {
                    "Appointment ID": ["a1"],
                    "Patient-ID": ["p1"],
                    "Appointment Start": ["01/07/2026"],
                    "patient_case": ["c1"],
                    "did_not_arrive": ["true"],
                },
            ),
            raw(
                "cases",
                "cases.csv",
                {
                    "ID": ["c1"],
                    "patient_id": ["p1"],
                    "include_cancelled_attendees": ["Yes"],
                    "include_dna_attendees": ["no"],
                    "Maximum Appointments": ["4"],
                },
            ),
            raw(
                "invoices",
                "invoices.csv",
                {
                    "Invoice ID": ["i1"],
                    "patient_id": ["p1"],
                    "Invoice Date": ["01/07/2026"],
                    "total_amount": ["$1,234.50"],
                    "Invoice Status": ["Open credit"],
                },
            ),
            raw(
                "patients",
                "patients.csv",
                {
                    "Patient ID": ["p1"],
                    "Unapplied Account Credit": ["$12.34"],
                },
            ),
        ],
        SETTINGS,
    )
    assert dataset.issues == []
    assert dataset.appointments is not None and dataset.cases is not None
    assert dataset.appointments[["case_id", "did_not_arrive"]].values.tolist() == [["c1", True]]
    assert dataset.cases[["include_cancelled", "include_dna", "max_sessions"]].values.tolist() == [
        [True, False, 4]
    ]
    assert dataset.invoices is not None
    assert dataset.invoices[["total", "status"]].values.tolist() == [[123450, "open_credit"]]
    assert dataset.patients is not None and dataset.patients["reported_credit"].tolist() == [1234]


def test_two_headers_for_one_column_is_an_error() -> None:
    dataset = validate_tables([appointments(**{"Appointment Start": ["x", "y"]})], SETTINGS)
    assert shown(dataset, "error") == [
        (
            "ERROR: appointments.csv, column 'Appointment Start': columns 'starts_at' and "
            "'Appointment Start' both mean starts_at: delete or rename one of them, or tell "
            "pkgreport which to ignore with --columns FILE containing [appointments] "
            '"Appointment Start" = ""'
        ),
    ]


def test_unknown_columns_are_listed_once_per_file() -> None:
    dataset = validate_tables(
        [
            appointments(Notes=["", ""], **{"Room 2": ["", ""]}),
            raw(
                "appointments",
                "appointments-2.csv",
                {
                    "appointment_id": ["a3"],
                    "patient_id": ["p1"],
                    "starts_at": ["03/07/2026"],
                    "Colour": ["red"],
                },
            ),
        ],
        SETTINGS,
    )
    assert [(i.file, i.message) for i in dataset.issues] == [
        ("appointments-2.csv", "ignored columns pkgreport does not use: Colour"),
        ("appointments.csv", "ignored columns pkgreport does not use: Notes, Room 2"),
    ]
    assert all(i.severity == "info" for i in dataset.issues)
    assert dataset.appointments is not None and len(dataset.appointments) == 3


def test_missing_required_column_names_the_closest_match() -> None:
    table = raw(
        "appointments",
        "appts.csv",
        {
            "Appointment ID": ["a1", "a2"],
            "Patient Number": ["p1", "p2"],
            "Start": ["01/07/2026"] * 2,
        },
    )
    dataset = validate_tables([table], SETTINGS)
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: appts.csv, column 'patient_id': the appointments export has no patient_id "
            "column, which is required. Columns found: Appointment ID, Patient Number, Start. The "
            "closest is 'Patient Number'. Rename the column to patient_id (or Patient ID(s)), or map it "
            'with --columns FILE containing [appointments] "Patient Number" = "patient_id".'
        ),
    ]
    assert dataset.appointments is not None and dataset.appointments.empty
    assert dataset.excluded["reason"].tolist() == ["the file is missing a required column"] * 2
    assert dataset.excluded["source_row"].tolist() == [2, 3]


def test_missing_column_without_a_close_match() -> None:
    table = raw(
        "invoices",
        "invoices.csv",
        {
            "invoice_id": ["i1"],
            "patient_id": ["p1"],
            "issue_date": ["01/07/2026"],
            "Colour": ["red"],
        },
    )
    dataset = validate_tables([table], SETTINGS)
    assert dataset.errors[0].message == (
        "the invoices export has no total column, which is required. Columns found: invoice_id, "
        "patient_id, issue_date, Colour. Rename the column to total (or Invoice Amount, "
        "total_amount, invoice_total, amount), or map it with --columns FILE containing [invoices] "
        '"Your header" = "total".'
    )


# --- values -----------------------------------------------------------------------------------


def test_bad_values_are_issues_and_their_rows_are_excluded() -> None:
    table = raw(
        "invoices",
        "invoices.csv",
        {
            "Invoice": ["i1", "i2", "i3", "i4"],
            "patient_id": ["p1", "p1", "", "p1"],
            "Date": ["01/07/2026", "31/02/2026", "01/07/2026", "01/07/2026"],
            "Amount": ["1,7", "5.00", "5.00", "$12.00"],
        },
    )
    dataset = validate_tables([table], SETTINGS)
    assert [(i.row, i.column, i.value) for i in dataset.issues] == [
        (2, "Amount", "1,7"),
        (3, "Date", "31/02/2026"),
        (4, "patient_id", ""),
    ]
    assert dataset.issues[0].message == (
        "Amount has a misplaced thousands separator or a decimal comma: write it like 1234.50 "
        "or 1,234.50"
    )
    assert dataset.issues[2].message == (
        "patient_id is blank: every invoice needs its patient_id; fill it in or delete the row"
    )
    assert dataset.invoices is not None
    assert dataset.invoices["invoice_id"].tolist() == ["i4"]
    assert dataset.invoices["total"].dtype == np.int64
    assert dataset.excluded[["kind", "source_row", "id"]].values.tolist() == [
        ["invoices", 2, "i1"],
        ["invoices", 3, "i2"],
        ["invoices", 4, "i3"],
    ]
    assert dataset.excluded["reason"].tolist()[0] == dataset.issues[0].message


def test_one_issue_per_bad_cell_but_one_exclusion_per_row() -> None:
    table = appointments(did_not_arrive=["maybe", "no"])
    table.frame.loc[0, "starts_at"] = "tomorrow"
    dataset = validate_tables([table], SETTINGS)
    assert [(i.row, i.column) for i in dataset.issues] == [(2, "did_not_arrive"), (2, "starts_at")]
    assert dataset.excluded["source_row"].tolist() == [2]
    assert dataset.excluded["reason"].tolist()[0].startswith("starts_at is not a date")


def test_schema_failures_become_issues_with_the_written_header() -> None:
    dataset = validate_tables(
        [
            raw(
                "cases",
                "cases.csv",
                {"id": ["c1", "c2"], "patient_id": ["p1", "p1"], "maximum_appointments": ["", "0"]},
            ),
            raw(
                "invoices",
                "invoices.csv",
                {
                    "invoice_id": ["i1", "i2", "i3"],
                    "patient_id": ["p1"] * 3,
                    "issue_date": ["01/07/2026"] * 3,
                    "Invoice Total": ["-5", "-5", "($5.00)"],
                    "original_invoice_id": ["", "i1", ""],
                },
            ),
        ],
        SETTINGS,
    )
    assert [str(i) for i in dataset.errors] == [
        (
            "ERROR: cases.csv, row 3, column 'maximum_appointments', value '0': maximum_appointments "
            "must be 1 or more: write the number of sessions in the package, or leave it blank for no "
            "maximum"
        ),
        (
            "ERROR: invoices.csv, row 2, column 'Invoice Total', value '-$5.00': Invoice Total is "
            "negative but the invoice has no original_invoice_id: only a credit note (which names the "
            "invoice it credits) may have a negative total; fix the total or fill in "
            "original_invoice_id"
        ),
        (
            "ERROR: invoices.csv, row 4, column 'Invoice Total', value '-$5.00': Invoice Total is "
            "negative but the invoice has no original_invoice_id: only a credit note (which names the "
            "invoice it credits) may have a negative total; fix the total or fill in "
            "original_invoice_id"
        ),
    ]
    assert dataset.invoices is not None and dataset.invoices["invoice_id"].tolist() == ["i2"]


def test_date_settings_are_used() -> None:
    table = appointments()
    table.frame["starts_at"] = ["07/01/2026 9:00 am", "07/21/2026 10:30"]
    dataset = validate_tables([table], SETTINGS.replace(date_order="mdy", timezone="UTC"))
    assert dataset.issues == []
    assert dataset.appointments is not None
    assert dataset.appointments["starts_at"].tolist() == [
        pd.Timestamp(2026, 7, 1, 9),
        pd.Timestamp(2026, 7, 21, 10, 30),
    ]


def test_unknown_time_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        validate_tables([appointments()], SETTINGS.replace(timezone="Mars/Olympus"))


# --- duplicates -------------------------------------------------------------------------------


def test_exact_duplicates_from_overlapping_exports_collapse_with_one_warning() -> None:
    first = raw(
        "payments",
        "payments-june.csv",
        {
            "payment_id": ["y1", "y2", "y3"],
            "patient_id": ["p1", "p1", "p2"],
            "paid_at": ["01/06/2026", "30/06/2026", "30/06/2026"],
            "amount": ["10", "20", "30"],
        },
    )
    second = raw(
        "payments",
        "payments-july.csv",
        {
            "payment_id": ["y2", "y3", "y4"],
            "patient_id": ["p1", "p2", "p2"],
            "paid_at": ["30/06/2026", "30/06/2026", "01/07/2026"],
            "amount": ["20.00", "$30", "40"],
        },
    )
    dataset = validate_tables([first, second], SETTINGS)
    assert [str(i) for i in dataset.issues] == [
        (
            "WARNING: payments-july.csv: 2 payments rows are exact copies of other rows (overlapping "
            "exports?) and counted once; the first is payments-july.csv row 2, a copy of "
            "payments-june.csv row 3"
        ),
    ]
    assert dataset.payments is not None
    assert dataset.payments["payment_id"].tolist() == ["y1", "y2", "y3", "y4"]
    assert dataset.payments["source_file"].tolist() == ["payments-june.csv"] * 3 + [
        "payments-july.csv"
    ]
    assert dataset.excluded[["source_file", "source_row", "id", "reason"]].values.tolist() == [
        ["payments-july.csv", 2, "y2", "exact copy of payments-june.csv row 3 (counted once)"],
        ["payments-july.csv", 3, "y3", "exact copy of payments-june.csv row 4 (counted once)"],
    ]
    assert dataset.errors == []


def test_same_id_with_different_content_names_both_places() -> None:
    first = raw(
        "invoices",
        "invoices-a.csv",
        {
            "invoice_id": ["i1", "i2"],
            "patient_id": ["p1", "p1"],
            "issue_date": ["01/07/2026"] * 2,
            "total": ["100", "50"],
        },
    )
    second = raw(
        "invoices",
        "invoices-b.csv",
        {"invoice_id": ["i2"], "patient_id": ["p1"], "issue_date": ["01/07/2026"], "total": ["55"]},
        first_row=7,
    )
    dataset = validate_tables([first, second], SETTINGS)
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: invoices-a.csv, row 3, column 'invoice_id', value 'i2': invoice_id i2 is used by "
            "2 different rows: invoices-a.csv row 3 and invoices-b.csv row 7 (they differ in total). "
            "Keep one version: correct the id or remove the out-of-date row"
        ),
    ]
    assert dataset.invoices is not None and dataset.invoices["invoice_id"].tolist() == ["i1"]
    assert dataset.excluded["source_row"].tolist() == [3, 7]


def test_exact_copy_and_conflict_of_one_id() -> None:
    table = raw(
        "cases", "cases.csv", {"case_id": ["c1", "c1", "c1"], "patient_id": ["p1", "p1", "p2"]}
    )
    dataset = validate_tables([table], SETTINGS)
    assert [i.severity for i in dataset.issues] == ["error", "warning"]
    assert dataset.excluded["source_row"].tolist() == [2, 3, 4]
    assert dataset.errors[0].message.startswith(
        "case_id c1 is used by 2 different rows: cases.csv row 2 and cases.csv row 4 (they "
        "differ in patient_id)"
    )
    assert dataset.cases is not None and dataset.cases.empty


def test_a_repeated_allocation_in_one_file_is_counted_once_with_a_warning_naming_both_rows() -> (
    None
):
    rows = {"invoice_id": ["i1", "i1", "i2"], "source": ["credit"] * 3, "amount": ["10", "10", "5"]}
    one = raw("allocations", "allocations-1.csv", rows)
    two = raw("allocations", "allocations-2.csv", {k: v[:1] for k, v in rows.items()})
    dataset = validate_tables([invoices(), one, two], SETTINGS)
    assert dataset.allocations is not None
    assert dataset.allocations[["source_file", "source_row"]].values.tolist() == [
        ["allocations-1.csv", 2],
        ["allocations-1.csv", 4],
    ]
    assert shown(dataset) == [
        (
            "WARNING: allocations-1.csv, row 3: row 3 repeats row 2 exactly and is counted once: if "
            "it really happened twice, export the allocations with their ids so the two can be told "
            "apart"
        ),
        (
            "WARNING: allocations-2.csv: 1 allocations row is an exact copy of other rows "
            "(overlapping exports?) and counted once; the first is allocations-2.csv row 2, a copy "
            "of allocations-1.csv row 2"
        ),
    ]


def test_equal_allocations_with_their_own_ids_are_separate() -> None:
    rows = {
        "id": ["91", "92"],
        "invoice_id": ["i1", "i1"],
        "source": ["credit", "credit"],
        "amount": ["10", "10"],
    }
    dataset = validate_tables([invoices(), raw("allocations", "allocations.csv", rows)], SETTINGS)
    assert dataset.issues == []
    assert dataset.allocations["allocation_id"].tolist() == ["91", "92"]


# --- across files -----------------------------------------------------------------------------


def test_appointment_case_must_exist_and_belong_to_the_patient() -> None:
    dataset = validate_tables(
        [
            raw(
                "appointments",
                "appointments.csv",
                {
                    "appointment_id": ["a1", "a2", "a3", "a4"],
                    "patient_id": ["p1", "p1", "p1", "p1"],
                    "starts_at": ["01/07/2026"] * 4,
                    "Patient Case": ["c1", "c2", "c9", ""],
                },
            ),
            cases(),
        ],
        SETTINGS,
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: appointments.csv, row 3, column 'Patient Case', value 'c2': Patient Case c2 "
            "belongs to patient p2 (cases.csv row 3) but this appointment is for patient p1: attach "
            "the appointment to one of patient p1's cases"
        ),
        (
            "ERROR: appointments.csv, row 4, column 'Patient Case', value 'c9': Patient Case c9 is "
            "not in the cases export (cases.csv): check the id, or export that case too"
        ),
    ]
    assert dataset.appointments is not None
    assert dataset.appointments["appointment_id"].tolist() == ["a1", "a4"]


def test_appointment_case_is_not_checked_without_cases() -> None:
    dataset = validate_tables([appointments(case_id=["c9", ""])], SETTINGS)
    assert dataset.issues == []


def test_appointment_outside_its_case_dates_is_a_warning() -> None:
    dataset = validate_tables(
        [
            raw(
                "appointments",
                "appointments.csv",
                {
                    "appointment_id": ["a1", "a2", "a3", "a4"],
                    "patient_id": ["p1"] * 4,
                    "starts_at": [
                        "31/05/2026 23:59",
                        "01/06/2026 00:00",
                        "30/06/2026 23:59",
                        "01/07/2026 00:00",
                    ],
                    "case_id": ["c1"] * 4,
                },
            ),
            cases(issue_date=["01/06/2026", ""], expiry_date=["30/06/2026", ""]),
        ],
        SETTINGS,
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "WARNING: appointments.csv, row 2, column 'starts_at', value '31/05/2026 23:59': "
            "starts_at 31/05/2026 23:59 is before case c1 was issued (2026-06-01): check the "
            "appointment's case and date, or the case's issue and expiry dates"
        ),
        (
            "WARNING: appointments.csv, row 5, column 'starts_at', value '01/07/2026 00:00': "
            "starts_at 01/07/2026 00:00 is after case c1 expired (2026-06-30): check the "
            "appointment's case and date, or the case's issue and expiry dates"
        ),
    ]
    assert dataset.appointments is not None and len(dataset.appointments) == 4


def test_allocation_checks() -> None:
    table = allocations(
        {
            "invoice_id": ["i1", "i9", "i1", "i2", "i2", "i2"],
            "payment_id": ["y1", "", "y8", "y1", "", ""],
            "amount": ["40", "1", "1", "5", "50", "40"],
        }
    )
    dataset = validate_tables([invoices(), payments(), table], SETTINGS)
    # Only ids that cannot be found are errors; records that disagree are left to the engines.
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: allocations.csv, row 3, column 'invoice_id', value 'i9': invoice_id i9 is not in "
            "the invoices export (invoices.csv): check the id, or export that invoice too"
        ),
        (
            "ERROR: allocations.csv, row 4, column 'payment_id', value 'y8': payment_id y8 is not in "
            "the payments export (payments.csv): check the id, or export that payment too"
        ),
    ]
    assert dataset.allocations is not None
    # The over-allocation of i2 ($90.00 of $80.00) stays in: the credit engine reports it.
    kept = dataset.allocations[["invoice_id", "payment_id", "source", "amount", "patient_id"]]
    assert kept.fillna("-").values.tolist() == [
        ["i1", "y1", "payment", 4000, "p1"],
        ["i2", "-", "credit", 5000, "p2"],
        ["i2", "-", "credit", 4000, "p2"],
    ]
    assert dataset.excluded["source_row"].tolist() == [3, 4]
    aside = dataset.set_aside_allocations
    assert aside is not None
    assert aside[
        [
            "code",
            "invoice_id",
            "payment_id",
            "amount",
            "patient_id",
            "invoice_patient_id",
            "invoice_place",
            "payment_place",
            "source_row",
        ]
    ].values.tolist() == [
        [
            "ALLOCATION_OTHER_PATIENT",
            "i2",
            "y1",
            500,
            "p1",
            "p2",
            "invoices.csv row 3",
            "payments.csv row 2",
            5,
        ]
    ]


def test_reference_to_a_row_left_out_says_so() -> None:
    table = allocations({"invoice_id": ["i2"], "amount": ["5"]})
    broken = invoices()
    broken.frame.loc[1, "total"] = "eighty"
    dataset = validate_tables([broken, table], SETTINGS)
    assert dataset.issues[0].message == (
        "invoice_id i2 is the invoice whose row was left out for the problems reported on it: "
        "fix that row first"
    )


def test_allocations_up_to_the_total_are_fine() -> None:
    table = allocations(
        {"invoice_id": ["i2", "i2"], "source": ["", "credit"], "amount": ["30", "50"]}
    )
    dataset = validate_tables([invoices(), table], SETTINGS)
    assert dataset.issues == []
    assert dataset.allocations is not None
    assert dataset.allocations["source"].tolist() == ["credit", "credit"]
    assert dataset.allocations["patient_id"].tolist() == ["p2", "p2"]


def test_allocation_source_must_agree_with_payment_id() -> None:
    table = allocations(
        {
            "invoice_id": ["i1", "i1"],
            "Paid From": ["payment", "credit"],
            "payment_id": ["", "y1"],
            "amount": ["1", "1"],
        }
    )
    dataset = validate_tables([invoices(), payments(), table], SETTINGS)
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: allocations.csv, row 2, column 'Paid From', value 'payment': Paid From says paid "
            "from a payment but payment_id is blank: fill in the payment's id, or write credit if it "
            "was paid from the patient's account credit"
        ),
        (
            "ERROR: allocations.csv, row 3, column 'Paid From', value 'credit': Paid From says paid "
            "from account credit but payment_id names a payment: clear payment_id, or write payment"
        ),
    ]


def test_allocations_without_invoices_are_a_warning() -> None:
    table = allocations({"invoice_id": ["i1"], "payment_id": ["y1"], "amount": ["1"]})
    dataset = validate_tables([table], SETTINGS)
    assert [str(i) for i in dataset.issues] == [
        (
            "WARNING: allocations.csv: allocations cannot be checked or used without the invoices "
            "they pay: add the invoices export to the input folder"
        ),
    ]
    assert dataset.allocations is not None and dataset.allocations["patient_id"].isna().all()


# --- issues -----------------------------------------------------------------------------------


def test_issues_are_sorted_and_split_by_severity() -> None:
    dataset = validate_tables(
        [appointments(Extra=["", ""], did_not_arrive=["maybe", "nah"]), cases(Other=["", ""])],
        SETTINGS,
    )
    assert dataset.issues == sorted(dataset.issues, key=lambda i: (*i.sort_key(), i.message))
    assert [i.severity for i in dataset.issues] == ["error", "error", "info", "info"]
    assert dataset.errors == dataset.issues[:2] and dataset.warnings == []


def test_unknown_kind_is_ignored_with_a_warning() -> None:
    table = raw("staff", "staff.csv", {"name": ["x"]})
    dataset = validate_tables([table], SETTINGS)
    assert dataset.issues == [
        Issue(
            "warning",
            "staff.csv",
            None,
            None,
            None,
            "is not one of the exports pkgreport reads (appointments, cases, invoices, payments, "
            "allocations, patients) and was ignored: name the file after its kind",
        )
    ]


# --- column map -------------------------------------------------------------------------------


def test_column_map_renames_headers(tmp_path: Path) -> None:
    path = tmp_path / "columns.toml"
    path.write_text(
        '[appointments]\n"Appt #" = "appointment_id"\n"Client" = "patient_id"\n'
        '"When" = "starts_at"\n',
        encoding="utf-8",
    )
    column_map = load_column_map(path)
    assert column_map == {
        "appointments": {"Appt #": "appointment_id", "Client": "patient_id", "When": "starts_at"}
    }
    table = raw(
        "appointments",
        "appointments.csv",
        {"Appt #": ["a1"], "client": ["p1"], "When": ["01/07/2026"]},
    )
    dataset = validate_tables([table], SETTINGS.replace(column_map=column_map))
    assert dataset.issues == []
    assert dataset.appointments is not None
    assert dataset.appointments[["appointment_id", "patient_id"]].values.tolist() == [["a1", "p1"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[staff]\n"X" = "patient_id"\n',
            (
                "{path}: [staff] is not a kind of export; use one of: appointments, cases, invoices, "
                "payments, allocations, patients"
            ),
        ),
        (
            '[appointments]\n"Appt #" = "appt"\n',
            (
                "{path}: [appointments] \"Appt #\" = 'appt': 'appt' is not one of the appointments "
                "columns; use one of: appointment_id, patient_id, starts_at, ends_at, case_id, cancelled_at, "
                "did_not_arrive, arrived, archived_at, deleted_at, patient_name, practitioner, business, "
                'appointment_type, invoice_number, patient_count (or "" to ignore the column)'
            ),
        ),
        (
            'appointments = "x"\n',
            '{path}: appointments must be a table of "Your header" = "canonical_name" lines',
        ),
        ("[appointments\n", "the column map {path} is not valid TOML: "),
    ],
)
def test_column_map_mistakes_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "columns.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_column_map(path)
    assert str(caught.value).startswith(message.format(path=path))


def test_column_map_can_ignore_a_second_meaning(tmp_path: Path) -> None:
    path = tmp_path / "columns.toml"
    path.write_text('[invoices]\n"Total Amount" = ""\n', encoding="utf-8")
    table = invoices(**{"Total Amount": ["999", "999"]})
    dataset = validate_tables([table], SETTINGS.replace(column_map=load_column_map(path)))
    assert [i.message for i in dataset.issues] == [
        "ignored columns pkgreport does not use: Total Amount"
    ]
    assert dataset.invoices is not None
    assert dataset.invoices["total"].tolist() == [10000, 8000]


def test_non_text_headers_and_cells_are_read_as_text() -> None:
    frame = pd.DataFrame(
        {"patient_id": pd.Series([7, 8], dtype=object), 2026: pd.Series(["x", "y"], dtype=object)}
    )
    table = RawTable(InputFile(Path("patients.csv"), "patients.csv", "patients", "0", 0, 2), frame)
    dataset = validate_tables([table], SETTINGS)
    assert [i.message for i in dataset.issues] == ["ignored columns pkgreport does not use: 2026"]
    assert dataset.patients is not None
    assert dataset.patients[["patient_id", "source_file", "source_row"]].values.tolist() == [
        ["7", "patients.csv", 2],
        ["8", "patients.csv", 3],
    ]


def test_header_only_files_give_empty_typed_frames() -> None:
    table = raw("cases", "cases.csv", {"case_id": [], "patient_id": [], "Max Sessions": []})
    dataset = validate_tables([table], SETTINGS)
    assert dataset.issues == []
    assert dataset.cases is not None and dataset.cases.empty
    assert {c: str(t) for c, t in dataset.cases.dtypes.items()} == typed_columns("cases")


def test_missing_column_map_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the column map"):
        load_column_map(tmp_path / "nope.toml")


def test_bad_column_map_in_settings_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"\[invoices\] \"Amt\" = 'amt'"):
        validate_tables([], SETTINGS.replace(column_map={"invoices": {"Amt": "amt"}}))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["y1", "y2", "y3", "y4", ""]),
            st.sampled_from(["p1", "p2"]),
            st.sampled_from(["01/07/2026", "31/02/2026", "2026-07-01T09:00:00Z", ""]),
            st.sampled_from(["10", "10.00", "$1,7", "-5", ""]),
        ),
        max_size=12,
    )
)
def test_every_row_is_kept_or_excluded_exactly_once(rows: list[tuple[str, str, str, str]]) -> None:
    half = len(rows) // 2
    tables = [
        raw(
            "payments",
            name,
            {
                "payment_id": [r[0] for r in part],
                "patient_id": [r[1] for r in part],
                "paid_at": [r[2] for r in part],
                "amount": [r[3] for r in part],
            },
        )
        for name, part in (("payments-1.csv", rows[:half]), ("payments-2.csv", rows[half:]))
        if part
    ]
    dataset = validate_tables(tables, SETTINGS)
    kept = (
        dataset.payments
        if dataset.payments is not None
        else pd.DataFrame({"source_file": [], "source_row": []})
    )
    places = list(zip(kept["source_file"], kept["source_row"], strict=True)) + list(
        zip(dataset.excluded["source_file"], dataset.excluded["source_row"], strict=True)
    )
    assert sorted(places) == sorted(
        (name, row)
        for name, part in (("payments-1.csv", rows[:half]), ("payments-2.csv", rows[half:]))
        for row in range(2, len(part) + 2)
    )
    assert kept["payment_id"].is_unique if len(kept) else True
    # A row is left out with an error, or as a counted-once copy (a warning).
    copies = dataset.excluded["reason"].str.startswith("exact copy of").sum()
    assert (copies > 0) == bool(dataset.warnings)


# --- patients the patients export does not have (issue 10, item 19) ---------------------------


def test_an_invoice_or_payment_of_an_unknown_patient_is_an_error_when_patients_are_exported() -> (
    None
):
    patients = raw("patients", "patients.csv", {"patient_id": ["p1", "p2"]})
    dataset = validate_tables(
        [invoices(patient_id=["p1", '1000"232']), payments(patient_id=["p9", "p2"]), patients],
        SETTINGS,
    )
    assert shown(dataset) == [
        (
            "ERROR: invoices.csv, row 3, column 'patient_id', value '1000\"232': patient_id "
            '1000"232 is not in the patients export (patients.csv): check the id, or export that '
            "patient too"
        ),
        (
            "ERROR: payments.csv, row 2, column 'patient_id', value 'p9': patient_id p9 is not in "
            "the patients export (patients.csv): check the id, or export that patient too"
        ),
    ]
    assert dataset.invoices["invoice_id"].tolist() == ["i1"]
    assert dataset.payments["payment_id"].tolist() == ["y2"]
    assert dataset.excluded[["kind", "source_row"]].values.tolist() == [
        ["invoices", 3],
        ["payments", 2],
    ]


def test_without_a_patients_export_any_patient_id_is_accepted() -> None:
    dataset = validate_tables([invoices(patient_id=["p1", "p7"]), payments()], SETTINGS)
    assert dataset.issues == []


def test_an_invoice_for_another_patients_appointment_is_a_warning() -> None:
    dataset = validate_tables([appointments(), invoices(appointment_id=["a1", "a1"])], SETTINGS)
    assert shown(dataset) == [
        (
            "WARNING: invoices.csv, row 3, column 'appointment_id', value 'a1': appointment_id a1 is "
            "patient p1's appointment (appointments.csv row 2), but this invoice is patient p2's: "
            "check the invoice's appointment or patient"
        ),
    ]
    assert dataset.invoices["invoice_id"].tolist() == ["i1", "i2"]


def test_validation_and_the_credit_engine_list_excluded_rows_in_one_schema() -> None:
    # Validation leaves out a row it cannot read (a total that is not money); the credit engine
    # leaves out a deleted invoice. Both lists have the same columns, in the same order, with the
    # same dtypes, so they read as one list.
    dataset = validate_tables(
        [invoices(total=["100.00", "lots"], deleted_at=["2026-07-03", ""]), payments()], SETTINGS
    )
    credit = compute_credit(dataset.invoices, dataset.payments, None, None, date(2026, 7, 31))
    schema = {
        "kind": "object",
        "source_file": "object",
        "source_row": "Int64",
        "id": "object",
        "reason": "object",
    }
    for excluded in (dataset.excluded, credit.excluded, empty_excluded()):
        assert [(c, str(t)) for c, t in excluded.dtypes.items()] == list(schema.items())
    assert dataset.excluded[["kind", "source_file", "source_row", "id"]].values.tolist() == [
        ["invoices", "invoices.csv", 3, "i2"]
    ]
    assert credit.excluded[
        ["kind", "source_file", "source_row", "id", "reason"]
    ].values.tolist() == [
        [
            "invoice",
            "invoices.csv",
            2,
            "i1",
            "deleted invoice (deleted_at is set): left out of every total",
        ]
    ]
