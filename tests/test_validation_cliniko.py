"""Cliniko's own exports, in the exact header shapes of ../shared/DOMAIN.md, read with no mapping."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.engine.cases import tally_cases
from pkgreport.inputs.column_typing import type_table
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.schemas import typed_columns
from pkgreport.inputs.validation import Dataset
from pkgreport.inputs.validation_run import ValidationRun
from pkgreport.pipeline import load_dataset

APPOINTMENT_HEADERS = [
    "Appointment ID",
    "Start Time",
    "Date",
    "End Time",
    "Practitioner",
    "Practitioner ID",
    "Patient ID(s)",
    "Appointment Type",
    "Appointment Notes",
    "Business",
    "Did Not Arrive",
    "Patient Arrived",
    "SMS Reminder Sent",
    "Email Reminder Sent",
    "Cancellation Time",
    "Cancellation Reason",
    "Cancellation Note",
    "Created At",
    "Treatment Notes Status",
    "Invoice Number",
    "Appointment Category",
    "Source",
    "Maximum Number of Patients",
    "Number of Patients",
    "Number of Cancellations",
    "Patient Case",
]
INVOICE_HEADERS = [
    "Invoice Number",
    "Issue Date",
    "Practitioner",
    "Sub-Total Amount",
    "Tax Amount",
    "Discount",
    "Invoice Amount",
    "Notes",
    "Status",
    "Date Closed",
    "Created By",
    "Appointment ID",
    "Business",
    "Extra patient info",
    "Patient ID",
    "Outstanding Balance",
    "Payments Applied",
    "Credit Applied",
    "Other Allocations",
    "Appointment Time",
    "ID",
]
APPOINTMENTS_FILE = "Appointments-Cliniko-20250919-From20221101-To20250921.csv"
INVOICES_FILE = "Invoices-Cliniko-20250919-From20221101-To20250921.csv"
PATIENTS_FILE = "Patients-Cliniko-20250919.csv"
CASES_FILE = "cases.csv"

ANN = "1558354464010667075"
BOB = "1558354464010667076"
ANN_CASE = "1017545553210000011"
BOB_CASE = "1017545553210000012"


def csv_bytes(headers: list[str], rows: list[dict[str, str]], newline: str = "\r\n") -> bytes:
    """Rows as Cliniko writes them: every record ends in CRLF, fields quoted only when needed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    return out.getvalue().encode("utf-8")


def appointment(ident: str, start: str, patients: str, **fields: str) -> dict[str, str]:
    """One appointments row: a patient's appointment unless `fields` say otherwise."""
    row = {
        "Appointment ID": ident,
        "Start Time": start,
        "Date": "1/11/2022",
        "End Time": start.replace(":00:00", ":30:00"),
        "Practitioner": "Dr Ana Smith",
        "Practitioner ID": "1017545553210000001",
        "Patient ID(s)": patients,
        "Appointment Type": "Standard Consultation",
        "Business": "Main Clinic",
        "Did Not Arrive": "FALSE",
        "Patient Arrived": "TRUE",
        "SMS Reminder Sent": "TRUE",
        "Email Reminder Sent": "FALSE",
        "Created At": "2022-10-20 10:00:00 +1100",
        "Treatment Notes Status": "Final",
        "Source": "Online",
        "Maximum Number of Patients": "1",
        "Number of Patients": "1",
        "Number of Cancellations": "0",
    }
    return row | fields


UNAVAILABLE = {
    "Patient ID(s)": "",
    "Appointment Type": "Unavailable - Unavailable",
    "Did Not Arrive": "N/A",
    "Patient Arrived": "N/A",
    "SMS Reminder Sent": "N/A",
    "Email Reminder Sent": "N/A",
    "Treatment Notes Status": "",
    "Source": "",
    "Maximum Number of Patients": "0",
    "Number of Patients": "0",
}


def invoice(ident: str, number: str, patient: str, amount: str, **fields: str) -> dict[str, str]:
    row = {
        "Invoice Number": number,
        "Issue Date": "1/11/2022",
        "Practitioner": "Dr Ana Smith",
        "Sub-Total Amount": amount,
        "Tax Amount": "0",
        "Discount": "0",
        "Invoice Amount": amount,
        "Status": "Paid",
        "Date Closed": "1/11/2022",
        "Created By": "Reception",
        "Business": "Main Clinic",
        "Patient ID": patient,
        "Outstanding Balance": "0",
        "Payments Applied": amount,
        "Credit Applied": "0",
        "Other Allocations": "0",
        "ID": ident,
    }
    return row | fields


def folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def dataset(path: Path) -> Dataset:
    return load_dataset(Settings(input_dir=path, timezone="Australia/Sydney"))


def plain(frame: pd.DataFrame) -> list[list[object]]:
    """Rows as lists, with None for every kind of missing value."""
    return [[None if pd.isna(v) else v for v in row] for row in frame.values.tolist()]


def messages(data: Dataset) -> list[str]:
    return [str(i) for i in data.issues]


# --- appointments -----------------------------------------------------------------------------


def test_the_appointments_export_reads_with_no_mapping_and_no_notes(tmp_path: Path) -> None:
    rows = [
        appointment(
            "1017545553210000101", "2022-11-01 08:00:00 +1100", ANN, **{"Invoice Number": "1001"}
        ),
        # Daylight saving ends on 2 April 2023: the same file then carries +1000.
        appointment(
            "1017545553210000102",
            "2023-04-03 09:00:00 +1000",
            ANN,
            **{"Did Not Arrive": "TRUE", "Patient Arrived": "FALSE"},
        ),
        # Cancelled after it started, and created after it started: still a cancellation.
        appointment(
            "1017545553210000103",
            "2022-11-04 09:00:00 +1100",
            ANN,
            **{
                "Cancellation Time": "2022-11-04 09:20:00 +1100",
                "Created At": "2022-11-04 09:05:00 +1100",
                "Cancellation Reason": "Feeling unwell",
            },
        ),
    ]
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)}))
    assert messages(data) == []
    frame = data.appointments
    assert frame is not None
    assert frame["appointment_id"].tolist() == [
        "1017545553210000101",
        "1017545553210000102",
        "1017545553210000103",
    ]
    assert frame["patient_id"].tolist() == [ANN] * 3
    assert frame["starts_at"].tolist() == [
        pd.Timestamp("2022-11-01 08:00"),
        pd.Timestamp("2023-04-03 09:00"),
        pd.Timestamp("2022-11-04 09:00"),
    ]
    assert frame["ends_at"].tolist()[0] == pd.Timestamp("2022-11-01 08:30")
    assert frame["cancelled_at"].isna().tolist() == [True, True, False]
    assert frame["did_not_arrive"].tolist() == [False, True, False]
    assert frame["arrived"].tolist() == [True, False, True]
    assert frame["invoice_number"].tolist()[0] == "1001"
    assert frame["patient_count"].tolist() == [1, 1, 1]
    assert frame["practitioner"].tolist()[0] == "Dr Ana Smith"
    assert frame["appointment_type"].tolist()[0] == "Standard Consultation"


def test_offsets_convert_to_the_clinic_zone_whatever_the_file_carries(tmp_path: Path) -> None:
    rows = [
        appointment("1", "2022-11-01 08:00:00 +1100", ANN),
        appointment("2", "2023-04-03 09:00:00 +1000", ANN),
    ]
    path = folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)})
    data = load_dataset(Settings(input_dir=path, timezone="Australia/Perth"))
    assert data.appointments is not None
    assert data.appointments["starts_at"].tolist() == [
        pd.Timestamp("2022-11-01 05:00"),
        pd.Timestamp("2023-04-03 07:00"),
    ]


def test_unavailable_blocks_are_left_out_with_one_note_per_file(tmp_path: Path) -> None:
    rows = [
        appointment("1017545553210000101", "2022-11-01 08:00:00 +1100", ANN),
        appointment("1017545553210000102", "2022-11-01 12:00:00 +1100", "", **UNAVAILABLE),
        appointment("1017545553210000103", "2022-12-26 00:00:00 +1100", "", **UNAVAILABLE),
    ]
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)}))
    assert messages(data) == [
        (
            f"INFO: {APPOINTMENTS_FILE}, column 'Patient ID(s)': 2 rows have no patient in Patient "
            "ID(s) (rows 3 and 4): practitioners' unavailable blocks and holidays are not "
            "appointments, so they were left out"
        ),
    ]
    assert data.appointments is not None
    assert data.appointments["appointment_id"].tolist() == ["1017545553210000101"]
    assert data.excluded[["source_row", "id", "reason"]].values.tolist() == [
        [
            3,
            "1017545553210000102",
            "no patient: an unavailable block or a holiday, not an appointment",
        ],
        [
            4,
            "1017545553210000103",
            "no patient: an unavailable block or a holiday, not an appointment",
        ],
    ]


def test_a_blank_patient_on_a_real_booking_is_still_an_error(tmp_path: Path) -> None:
    rows = [
        appointment(
            "1017545553210000101", "2022-11-01 08:00:00 +1100", "", **{"Patient Case": ANN_CASE}
        )
    ]
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)}))
    assert messages(data) == [
        (
            f"ERROR: {APPOINTMENTS_FILE}, row 2, column 'Patient ID(s)', value '': Patient ID(s) is "
            "blank: "
            "every appointment needs its patient_id; fill it in or delete the row"
        ),
    ]


def cases_file(*rows: tuple[str, str]) -> bytes:
    """Cases as the API names their fields."""
    header = (
        "id,patient,name,max_sessions,include_cancelled_attendees,include_dna_attendees,"
        "issue_date,expiry_date,closed_at,archived_at"
    )
    lines = [header] + [
        f"{case},{patient},Package,4,FALSE,TRUE,2022-10-01,,," for case, patient in rows
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_group_appointment_is_one_row_per_attendee_and_the_case_is_its_owner_s(
    tmp_path: Path,
) -> None:
    group = appointment(
        "1017545553210000201",
        "2022-11-02 09:00:00 +1100",
        f"{ANN}, {BOB}",
        **{"Number of Patients": "2", "Maximum Number of Patients": "4", "Patient Case": BOB_CASE},
    )
    data = dataset(
        folder(
            tmp_path,
            {
                APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, [group]),
                CASES_FILE: cases_file((ANN_CASE, ANN), (BOB_CASE, BOB)),
            },
        )
    )
    assert messages(data) == []
    assert data.appointments is not None
    assert plain(data.appointments[["appointment_id", "patient_id", "case_id", "source_row"]]) == [
        ["1017545553210000201", ANN, None, 2],
        ["1017545553210000201", BOB, BOB_CASE, 2],
    ]


def test_each_attendee_s_case_counts_its_own_group_sessions(tmp_path: Path) -> None:
    # Two group classes of Ann and Bob: the first on Bob's case, the second on Ann's; then Ann
    # alone on her case. Each case counts only its own patient's sessions, numbered in order.
    rows = [
        appointment(
            "1017545553210000201",
            "2022-11-02 09:00:00 +1100",
            f"{ANN}, {BOB}",
            **{"Number of Patients": "2", "Patient Case": BOB_CASE},
        ),
        appointment(
            "1017545553210000202",
            "2022-11-09 09:00:00 +1100",
            f"{BOB}; {ANN}",
            **{"Number of Patients": "2", "Patient Case": ANN_CASE},
        ),
        appointment(
            "1017545553210000203", "2022-11-16 09:00:00 +1100", ANN, **{"Patient Case": ANN_CASE}
        ),
    ]
    data = dataset(
        folder(
            tmp_path,
            {
                APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows),
                CASES_FILE: cases_file((ANN_CASE, ANN), (BOB_CASE, BOB)),
            },
        )
    )
    assert messages(data) == []
    assert data.appointments is not None and data.cases is not None
    tally = tally_cases(data.appointments, data.cases, datetime(2022, 12, 1).date())
    assert tally.cases[["case_id", "patient_id", "counted", "remaining"]].values.tolist() == [
        [ANN_CASE, ANN, 2, 2],
        [BOB_CASE, BOB, 1, 3],
    ]
    assert tally.appointments[
        ["appointment_id", "case_id", "patient_id", "number"]
    ].values.tolist() == [
        ["1017545553210000202", ANN_CASE, ANN, 1],
        ["1017545553210000203", ANN_CASE, ANN, 2],
        ["1017545553210000201", BOB_CASE, BOB, 1],
    ]


@pytest.mark.parametrize("listed", [f"{ANN};{BOB}", f"{ANN} {BOB}", f"{ANN},{BOB}"])
def test_group_ids_may_be_separated_by_comma_semicolon_or_space(
    tmp_path: Path, listed: str
) -> None:
    group = appointment(
        "1017545553210000201", "2022-11-02 09:00:00 +1100", listed, **{"Number of Patients": "2"}
    )
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, [group])}))
    assert messages(data) == []
    assert data.appointments is not None
    assert data.appointments["patient_id"].tolist() == [ANN, BOB]


def test_number_of_patients_that_disagrees_with_the_ids_is_a_warning(tmp_path: Path) -> None:
    group = appointment(
        "1017545553210000201",
        "2022-11-02 09:00:00 +1100",
        f"{ANN}, {BOB}",
        **{"Number of Patients": "3"},
    )
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, [group])}))
    assert messages(data) == [
        (
            f"WARNING: {APPOINTMENTS_FILE}, row 2, column 'Number of Patients', value '3': Number "
            "of Patients is 3 but Patient ID(s) lists 2: pkgreport counts each patient listed; "
            "check who attends this group appointment in Cliniko"
        ),
    ]
    assert data.appointments is not None and len(data.appointments) == 2


def test_number_of_patients_above_a_single_listed_patient_is_a_warning(tmp_path: Path) -> None:
    row = appointment(
        "1017545553210000201", "2022-11-02 09:00:00 +1100", ANN, **{"Number of Patients": "2"}
    )
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, [row])}))
    assert messages(data) == [
        (
            f"WARNING: {APPOINTMENTS_FILE}, row 2, column 'Number of Patients', value '2': Number "
            "of Patients is 2 but Patient ID(s) lists 1: pkgreport counts each patient listed; "
            "check who attends this group appointment in Cliniko"
        ),
    ]


def test_one_patient_twice_on_one_appointment_id_is_still_a_clash(tmp_path: Path) -> None:
    rows = [
        appointment("1017545553210000201", "2022-11-02 09:00:00 +1100", ANN),
        appointment("1017545553210000201", "2022-11-03 09:00:00 +1100", ANN),
    ]
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)}))
    assert messages(data) == [
        (
            f"ERROR: {APPOINTMENTS_FILE}, row 2, column 'Appointment ID', value "
            f"'1017545553210000201': Appointment ID 1017545553210000201 for patient {ANN} is used "
            f"by 2 different rows: {APPOINTMENTS_FILE} row 2 and {APPOINTMENTS_FILE} row 3 (they "
            "differ in starts_at, ends_at). Keep one version: correct the id or remove the "
            "out-of-date row"
        ),
    ]


def test_notes_with_line_breaks_quotes_emoji_and_commas_load_exactly(tmp_path: Path) -> None:
    notes = [
        "Line one\nline two",  # LF inside a record that ends in CRLF
        "Line one\r\nline two\r\n",  # CRLF inside, and a note that ends in a line break
        'She said ""fine"" 😀 “curly” ‘quotes’',
        " ",  # a cell holding one space
    ]
    rows = [
        appointment(
            str(i),
            "2022-11-01 08:00:00 +1100",
            ANN,
            **{
                "Appointment Notes": note.replace('""', '"'),
                "Appointment Type": "Physio, initial (60 min)",
            },
        )
        for i, note in enumerate(notes, start=1)
    ]
    data = dataset(folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)}))
    assert messages(data) == []
    assert data.appointments is not None
    assert data.appointments["appointment_id"].tolist() == ["1", "2", "3", "4"]
    assert data.appointments["source_row"].tolist() == [2, 3, 4, 5]
    assert set(data.appointments["appointment_type"]) == {"Physio, initial (60 min)"}


# --- invoices ---------------------------------------------------------------------------------


def test_the_invoices_export_reads_with_no_mapping(tmp_path: Path) -> None:
    rows = [
        invoice(
            "1017545553210000301",
            "1001",
            ANN,
            "90",
            **{
                "Sub-Total Amount": "81.82",
                "Tax Amount": "8.18",
                "Appointment ID": "1017545553210000101",
                "Payments Applied": "40",
                "Credit Applied": "50",
                "Appointment Time": "5/11/2022 9:30",
                "Issue Date": "5/11/2022",
                "Date Closed": "6/11/2022",
            },
        ),
        invoice("1017545553210000302", "1002", ANN, "0"),  # a $0 package session invoice
        invoice(
            "1017545553210000303",
            "1003",
            ANN,
            "25.5",  # a product sale: no appointment
            **{
                "Status": "Open",
                "Date Closed": "",
                "Outstanding Balance": "25.5",
                "Payments Applied": "0",
            },
        ),
    ]
    data = dataset(folder(tmp_path, {INVOICES_FILE: csv_bytes(INVOICE_HEADERS, rows)}))
    assert messages(data) == []
    frame = data.invoices
    assert frame is not None
    assert frame[["invoice_id", "number", "patient_id", "total", "status"]].values.tolist() == [
        ["1017545553210000301", "1001", ANN, 9000, "paid"],
        ["1017545553210000302", "1002", ANN, 0, "paid"],
        ["1017545553210000303", "1003", ANN, 2550, "open"],
    ]
    first = frame.iloc[0]
    assert first["issue_date"] == pd.Timestamp("2022-11-05")
    assert first["closed_at"] == pd.Timestamp("2022-11-06")
    assert first["appointment_time"] == pd.Timestamp("2022-11-05 09:30")
    assert first["appointment_id"] == "1017545553210000101"
    assert [
        first[c]
        for c in ("outstanding_reported", "paid_reported", "credit_applied", "other_allocations")
    ] == [0, 4000, 5000, 0]
    assert pd.isna(frame["appointment_id"].iloc[2]) and pd.isna(frame["closed_at"].iloc[2])


def test_a_missing_invoice_amount_never_points_at_the_sub_total(tmp_path: Path) -> None:
    headers = [h for h in INVOICE_HEADERS if h != "Invoice Amount"]
    data = dataset(
        folder(
            tmp_path,
            {
                INVOICES_FILE: csv_bytes(
                    headers, [invoice("1017545553210000301", "1001", ANN, "90")]
                )
            },
        )
    )
    assert messages(data) == [
        (
            f"ERROR: {INVOICES_FILE}, column 'total': the invoices export has no total column, "
            f"which is required. Columns found: {', '.join(headers)}. Rename the column to total "
            "(or Invoice Amount, total_amount, invoice_total, amount), or map it with --columns "
            'FILE containing [invoices] "Your header" = "total".'
        ),
    ]


def test_an_invoice_closed_before_it_was_issued_is_a_warning(tmp_path: Path) -> None:
    rows = [
        invoice(
            "1017545553210000301",
            "1001",
            ANN,
            "90",
            **{"Issue Date": "5/11/2022", "Date Closed": "31/10/2022"},
        )
    ]
    data = dataset(folder(tmp_path, {INVOICES_FILE: csv_bytes(INVOICE_HEADERS, rows)}))
    assert messages(data) == [
        (
            f"WARNING: {INVOICES_FILE}, row 2, column 'Date Closed', value '31/10/2022': Date "
            "Closed 31/10/2022 is before the invoice's Issue Date 5/11/2022: check both dates in "
            "Cliniko (pkgreport uses them as they are)"
        ),
    ]
    assert data.invoices is not None and len(data.invoices) == 1


# --- patients, cases, payments ----------------------------------------------------------------


def test_patients_ids_written_excel_safe_and_names_in_two_columns(tmp_path: Path) -> None:
    content = (
        "ID,Title,First Name,Last Name,Unapplied Account Credit\r\n"
        f'="{ANN}",Ms,Ann,Lee,\r\n'
        f'"=""{BOB}""",Mr,Bob, ,12.50\r\n'
        '="1558354464010667077",,,,0\r\n'
    ).encode()
    data = dataset(folder(tmp_path, {PATIENTS_FILE: content}))
    assert messages(data) == [
        f"INFO: {PATIENTS_FILE}: ignored columns pkgreport does not use: Title",
    ]
    assert data.patients is not None
    assert plain(data.patients[["patient_id", "patient_name", "reported_credit"]]) == [
        # A blank Unapplied Account Credit is Cliniko's $0 (issue 9: "blank = 0").
        [ANN, "Ann Lee", 0],
        [BOB, "Bob", 1250],
        ["1558354464010667077", None, 0],
    ]


def test_cases_with_the_api_field_names(tmp_path: Path) -> None:
    data = dataset(folder(tmp_path, {CASES_FILE: cases_file((ANN_CASE, ANN))}))
    assert messages(data) == []
    assert data.cases is not None
    assert data.cases[
        [
            "case_id",
            "patient_id",
            "case_name",
            "max_sessions",
            "include_cancelled",
            "include_dna",
            "issue_date",
        ]
    ].values.tolist() == [
        [ANN_CASE, ANN, "Package", 4, False, True, pd.Timestamp("2022-10-01")],
    ]


@pytest.mark.parametrize(
    "headers",
    [
        ("ID", "Patient ID", "Payment Date", "Amount", "Payment Method"),
        ("Payment ID", "Patient ID", "Paid At", "Total", "Payment Type"),
        ("Payment ID", "Patient ID", "Date", "Amount", "Payment Type"),
    ],
)
def test_payments_in_each_plausible_spelling(tmp_path: Path, headers: tuple[str, ...]) -> None:
    content = (
        ",".join(headers) + "\r\n" + f"1017545553210000401,{ANN},1/11/2022 9:30,500,EFTPOS\r\n"
    ).encode()
    data = dataset(folder(tmp_path, {"Payments-Cliniko-20250919.csv": content}))
    assert messages(data) == []
    assert data.payments is not None
    assert data.payments[
        ["payment_id", "patient_id", "paid_at", "amount", "payment_type"]
    ].values.tolist() == [
        ["1017545553210000401", ANN, pd.Timestamp(datetime(2022, 11, 1, 9, 30)), 50000, "EFTPOS"],
    ]


# --- exports damaged by a spreadsheet program -------------------------------------------------

ROUNDED_MESSAGE = (
    "{header} holds ids rounded by a spreadsheet program (like {example}), so records cannot be "
    "told apart and the file cannot be used: download the export again and do not open and "
    "save it in Excel (or import the {header} column as text)"
)


def test_ids_in_scientific_notation_are_refused_per_file_and_column(tmp_path: Path) -> None:
    rows = [
        appointment("1.01755E+18", "2022-11-01 08:00:00 +1100", "1.55835E+18"),
        appointment("1.01755E+18", "2022-11-02 08:00:00 +1100", "1.55835E+18"),
    ]
    path = folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)})
    data = dataset(path)
    assert messages(data) == [
        f"ERROR: {APPOINTMENTS_FILE}, column 'Appointment ID', value '1.01755E+18': "
        + ROUNDED_MESSAGE.format(header="Appointment ID", example="1.01755E+18"),
        f"ERROR: {APPOINTMENTS_FILE}, column 'Patient ID(s)', value '1.55835E+18': "
        + ROUNDED_MESSAGE.format(header="Patient ID(s)", example="1.55835E+18"),
    ]
    assert data.appointments is not None and data.appointments.empty
    assert data.excluded["reason"].tolist() == ["a spreadsheet program rounded the file's ids"] * 2


def test_two_patients_rounded_to_one_id_are_never_merged(tmp_path: Path) -> None:
    # Ann and Bob differ only in their last digit; saved from Excel both read 1.55835E+18.
    rows = [
        appointment("1017545553210000101", "2022-11-01 08:00:00 +1100", "1.55835E+18"),
        appointment("1017545553210000102", "2022-11-02 08:00:00 +1100", "1.55835E+18"),
    ]
    path = folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)})
    result = CliRunner().invoke(cli, ["validate", str(path), "--timezone", "Australia/Sydney"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-3:] == [
        "First issues:",
        f"  ERROR: {APPOINTMENTS_FILE}, column 'Patient ID(s)', value '1.55835E+18': "
        + ROUNDED_MESSAGE.format(header="Patient ID(s)", example="1.55835E+18"),
        "Result: the exports need fixing before the figures can be trusted",
    ]


def test_long_ids_padded_with_zeros_are_refused(tmp_path: Path) -> None:
    rows = [
        invoice("1017540000000000000", "1001", ANN, "90"),
        invoice("1017550000000000000", "1002", ANN, "90"),
    ]
    data = dataset(folder(tmp_path, {INVOICES_FILE: csv_bytes(INVOICE_HEADERS, rows)}))
    assert messages(data) == [
        f"ERROR: {INVOICES_FILE}, column 'ID', value '1017540000000000000': "
        + ROUNDED_MESSAGE.format(header="ID", example="1017540000000000000"),
    ]


def test_one_real_id_that_happens_to_end_in_zeros_is_kept(tmp_path: Path) -> None:
    rows = [
        invoice("1017540000000000000", "1001", ANN, "90"),
        invoice("1017545553210000302", "1002", ANN, "90"),
    ]
    data = dataset(folder(tmp_path, {INVOICES_FILE: csv_bytes(INVOICE_HEADERS, rows)}))
    assert messages(data) == []
    assert data.invoices is not None
    assert data.invoices["invoice_id"].tolist() == ["1017540000000000000", "1017545553210000302"]


def test_a_workbook_holding_ids_as_numbers_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["ID", "First Name", "Last Name"])
    # What Excel keeps of Ann's and Bob's ids once the column is a number: 15 digits.
    sheet.write_row(1, 0, [1558354464010667075, "Ann", "Lee"])
    sheet.write_row(2, 0, [1558354464010667076, "Bob", "Tan"])
    book.close()
    data = dataset(folder(tmp_path, {"Patients-Cliniko-20250919.xlsx": buffer.getvalue()}))
    assert messages(data) == [
        "ERROR: Patients-Cliniko-20250919.xlsx, column 'ID', value '1.55835446401067e+18': "
        + ROUNDED_MESSAGE.format(header="ID", example="1.55835446401067e+18"),
    ]
    assert data.patients is not None and data.patients.empty


def test_excel_safe_ids_typed_into_a_workbook_are_unwrapped(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["ID", "First Name", "Last Name"])
    sheet.write_string(1, 0, f'="{ANN}"')
    sheet.write_row(1, 1, ["Ann", "Lee"])
    book.close()
    data = dataset(folder(tmp_path, {"Patients-Cliniko-20250919.xlsx": buffer.getvalue()}))
    assert messages(data) == []
    assert data.patients is not None
    assert data.patients[["patient_id", "patient_name"]].values.tolist() == [[ANN, "Ann Lee"]]


CAROL = "1558354464010667077"
UNBOOKED_REASON = "no patient: an unavailable block or a holiday, not an appointment"
UNBOOKED = (
    "1 row has no patient in Patient ID(s) (row 5): practitioners' unavailable blocks and "
    "holidays are not appointments, so it was left out"
)
BAD_START = (
    "Start Time is not a real date or time when read as day/month/year: check the day and month "
    "(or the date order setting), and write it like 21/07/2026 14:30 (day/month/year) or ISO "
    "2026-07-21T14:30:00"
)


def test_typing_keeps_each_attendee_of_the_groups_and_leaves_out_the_problem_rows(
    tmp_path: Path,
) -> None:
    # Groups before and after a group with a bad start and an unavailable block: the typed rows
    # are the rows kept, a group's row once per patient, with their own row numbers; the block
    # is left out as such, its values never read as an appointment's. The file is typed as the
    # loader holds it (repeating values as codes) and as plain text alike.
    bad_start = {"End Time": "2022-11-02 11:30:00 +1100"}
    rows = [
        appointment("1017545553210000201", "2022-11-02 09:00:00 +1100", ANN),
        appointment(
            "1017545553210000202",
            "2022-11-02 10:00:00 +1100",
            f"{ANN}, {BOB}",
            **{"Number of Patients": "3", "Patient Case": BOB_CASE},
        ),
        appointment(
            "1017545553210000203", "2022-11-02 25:00:00 +1100", f"{BOB}; {CAROL}", **bad_start
        ),
        appointment(
            "1017545553210000204",
            "2022-11-02 12:00:00 +1100",
            "",
            **UNAVAILABLE | {"Cancellation Time": "whenever"},
        ),
        appointment(
            "1017545553210000205",
            "2022-11-02 13:00:00 +1100",
            f" {CAROL} {ANN} ",
            **{"Number of Patients": "2"},
        ),
        appointment("1017545553210000206", "2022-11-02 14:00:00 +1100", BOB),
    ]
    path = folder(tmp_path, {APPOINTMENTS_FILE: csv_bytes(APPOINTMENT_HEADERS, rows)})
    settings = Settings(input_dir=path, timezone="Australia/Sydney")
    (table,), _ = load_folder(path, settings)
    as_codes = table.frame.copy()
    for header in APPOINTMENT_HEADERS:  # as the CSV reader holds a large file's repeating values
        codes, distinct = pd.factorize(as_codes[header].to_numpy(dtype=object))
        held = pd.CategoricalDtype(pd.Index(distinct, dtype=object))
        as_codes[header] = pd.Categorical.from_codes(codes, dtype=held)
    starts = [f"2022-11-02 {hour}:00:00" for hour in (9, 10, 10, 13, 13, 14)]
    expected = pd.DataFrame(
        {
            "appointment_id": [f"101754555321000020{i}" for i in (1, 2, 2, 5, 5, 6)],
            "patient_id": [ANN, ANN, BOB, CAROL, ANN, BOB],
            "starts_at": pd.to_datetime(starts).as_unit("ns"),
            "ends_at": pd.to_datetime([s.replace(":00:00", ":30:00") for s in starts]).as_unit(
                "ns"
            ),
            "case_id": [None, BOB_CASE, BOB_CASE, None, None, None],
            **{
                name: pd.Series([pd.NaT] * 6, dtype="datetime64[ns]")
                for name in ("cancelled_at", "archived_at", "deleted_at")
            },
            "did_not_arrive": [False] * 6,
            "arrived": [True] * 6,
            "patient_name": [None] * 6,
            "practitioner": ["Dr Ana Smith"] * 6,
            "business": ["Main Clinic"] * 6,
            "appointment_type": ["Standard Consultation"] * 6,
            "invoice_number": [None] * 6,
            "patient_count": pd.array([1, 3, 3, 2, 2, 1], dtype="Int64"),
            "source_file": [APPOINTMENTS_FILE] * 6,
            "source_row": [2, 3, 3, 6, 6, 7],
        }
    )
    expected = expected.astype({c: object for c in expected if expected[c].dtype == "str"})
    expected = expected[list(typed_columns("appointments"))]
    for loaded in (table, dataclasses.replace(table, frame=as_codes)):
        run = ValidationRun(settings)
        typed = type_table(run, "appointments", loaded)
        assert typed is not None
        pd.testing.assert_frame_equal(typed, expected, check_exact=True)
        assert [str(i) for i in run.issues] == [
            f"INFO: {APPOINTMENTS_FILE}, column 'Patient ID(s)': {UNBOOKED}",
            f"ERROR: {APPOINTMENTS_FILE}, row 4, column 'Start Time', value "
            f"'2022-11-02 25:00:00 +1100': {BAD_START}",
            f"WARNING: {APPOINTMENTS_FILE}, row 3, column 'Number of Patients', value '3': "
            "Number of Patients is 3 but Patient ID(s) lists 2: pkgreport counts each patient "
            "listed; check who attends this group appointment in Cliniko",
        ]
        left_out = pd.concat(run.excluded)
        assert left_out[["source_row", "id", "reason"]].values.tolist() == [
            [5, "1017545553210000204", UNBOOKED_REASON],
            [4, "1017545553210000203", BAD_START],
        ]
