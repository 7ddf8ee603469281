"""The mapping file's transforms: each on good values, and a bad value's whole message."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from tests.test_validation import raw

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.engine.cases import tally_cases
from pkgreport.errors import Issue, UsageError
from pkgreport.inputs.mapping import merge_mappings, read_mapping_file
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation import Dataset, validate_tables

SETTINGS = Settings(timezone="Australia/Sydney")


def run(toml: str, *tables: RawTable) -> Dataset:
    return validate_tables(list(tables), SETTINGS.replace(column_map=tomllib.loads(toml)))


def listed(frame: pd.DataFrame | None, *columns: str) -> list[list[object]]:
    assert frame is not None
    return (
        frame[list(columns)]
        .astype(object)
        .where(frame[list(columns)].notna(), None)
        .values.tolist()
    )


def usage_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_mapping_file(path)
    return str(caught.value).replace(str(path), "map.toml")


# --- reading the file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[appointments.join]\npatient = ["First", "Last"]\n',
            (
                "map.toml: [appointments.join] patient: 'patient' is not one of the appointments "
                "columns; use one of: appointment_id, patient_id, starts_at, ends_at, case_id, "
                "cancelled_at, did_not_arrive, arrived, archived_at, deleted_at, patient_name, "
                "practitioner, business, appointment_type, invoice_number, patient_count"
            ),
        ),
        (
            '[appointments.join]\npatient_name = "First Name"\n',
            (
                "map.toml: [appointments.join] patient_name must be a list of at least 2 texts, like "
                '["First Name", "Last Name"]'
            ),
        ),
        (
            '[appointments.merge]\npatient_name = ["First", "Last"]\n',
            (
                "map.toml: [appointments.merge] is not something a mapping can do; use one of: "
                "[appointments.join], [appointments.values], [appointments.flags], "
                "[appointments.last_segment], [appointments.skip], [appointments.formats], "
                "[appointments.check], [appointments.split]"
            ),
        ),
        (
            '[appointments.values]\n"Did Not Show" = "N/A"\n',
            (
                'map.toml: [appointments.values] "Did Not Show" must be a table of texts, like '
                '{ "N/A" = "", "Yes" = "true" }'
            ),
        ),
        (
            "[appointments.flags]\ncancelled_at = { flag = 1 }\n",
            (
                'map.toml: [appointments.flags] cancelled_at must be like { flag = "cancelled", '
                'date = "cancellationDate" } (date is optional)'
            ),
        ),
        (
            '[appointments.flags]\ndid_not_arrive = { flag = "No Show" }\n',
            (
                "map.toml: [appointments.flags] did_not_arrive: did_not_arrive is not a date and time "
                "column, so a flag cannot fill it; use a rename or [appointments.values] instead"
            ),
        ),
        (
            '[appointments.last_segment]\npatient_id = ["Client Link"]\n',
            (
                "map.toml: [appointments.last_segment] patient_id must name a column of the file, "
                'like "Client Link"'
            ),
        ),
        (
            '[appointments.skip]\nType = "Unavailable"\n',
            (
                'map.toml: [appointments.skip] "Type" must be a list of at least 1 text, like '
                '["Unavailable"]'
            ),
        ),
        (
            '[appointments.formats]\ntime = "%H:%M"\n',
            (
                "map.toml: [appointments.formats] time = '%H:%M': a format is date = \"%d %b %Y\" (or a "
                'list of them, tried in order) or currency = "A$"'
            ),
        ),
        (
            '[appointments.check]\nremaining_sessions = "Left"\n',
            (
                "map.toml: [appointments.check] remaining_sessions is not a figure pkgreport checks; "
                "only [cases.check], [patients.check] exist"
            ),
        ),
        (
            '[cases.check]\nremaining = "Left"\n',
            (
                "map.toml: [cases.check] remaining is not a figure pkgreport checks; use one of: "
                "remaining_sessions"
            ),
        ),
        (
            '[payments.split.staff]\nname = "Staff"\n',
            (
                "map.toml: [payments.split.staff] is not another kind of export; use one of: "
                "appointments, cases, invoices, allocations, patients"
            ),
        ),
        (
            '[payments.split.allocations]\ninvoice = "Invoice ID"\n',
            (
                "map.toml: [payments.split.allocations] invoice: 'invoice' is not one of the "
                "allocations columns; use one of: invoice_id, payment_id, source, amount, "
                "allocated_at, allocation_id"
            ),
        ),
        (
            '[appointments]\n"Start" = "starts_at"\n"Start" = "ends_at"\n',
            (
                "the column map map.toml is not valid TOML: Cannot overwrite a value "
                "(at line 3, column 20)"
            ),
        ),
    ],
)
def test_mistakes_in_the_mapping_file_are_usage_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    assert usage_error(tmp_path, text) == message


def test_a_preset_and_a_users_file_merge_line_by_line() -> None:
    preset = {"appointments": {"Start": "starts_at", "values": {"No Show": {"N/A": ""}}}}
    mine = {
        "appointments": {"Begin": "starts_at", "values": {"Arrived": {"-": ""}}},
        "patients": {"Client": "patient_id"},
    }
    assert merge_mappings(preset, mine) == {
        "appointments": {
            "Start": "starts_at",
            "Begin": "starts_at",
            "values": {"No Show": {"N/A": ""}, "Arrived": {"-": ""}},
        },
        "patients": {"Client": "patient_id"},
    }


def test_a_column_the_mapping_names_must_be_in_the_file() -> None:
    dataset = run(
        '[patients.join]\npatient_name = ["First Name", "Surname"]\n',
        raw("patients", "clients.csv", {"ID": ["p1"], "First Name": ["Ann"], "Last Name": ["Lee"]}),
    )
    assert dataset.issues == [
        Issue(
            "error",
            "clients.csv",
            None,
            "Surname",
            None,
            "the mapping file's [patients.join] patient_name names the column 'Surname', which "
            "this file does not have. Columns found: ID, First Name, Last Name. Correct the name "
            "in the mapping file, or export that column",
        )
    ]
    assert dataset.patients is not None and dataset.patients.empty
    assert dataset.excluded["reason"].tolist() == ["the mapping names a column the file lacks"]


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ('[appointments.values]\n"Kind" = { "N/A" = "" }\n', "[appointments.values]"),
        ('[appointments.skip]\n"Kind" = ["Holiday"]\n', "[appointments.skip]"),
        (
            '[appointments.last_segment]\npatient_id = "Kind"\n',
            "[appointments.last_segment] patient_id",
        ),
        (
            '[appointments.flags]\ncancelled_at = { flag = "Kind" }\n',
            "[appointments.flags] cancelled_at",
        ),
    ],
)
def test_each_transform_names_the_column_the_file_lacks(toml: str, line: str) -> None:
    dataset = run(
        toml,
        raw(
            "appointments",
            "appointments.csv",
            {"appointment_id": ["a1"], "patient_id": ["p1"], "starts_at": ["2026-10-05"]},
        ),
    )
    assert dataset.issues == [
        Issue(
            "error",
            "appointments.csv",
            None,
            "Kind",
            None,
            f"the mapping file's {line} names the column 'Kind', which this file does not have. "
            "Columns found: appointment_id, patient_id, starts_at. Correct the name in the mapping "
            "file, or export that column",
        )
    ]


# --- renames, join, values, last segment, skip ------------------------------------------------


def test_join_names_and_a_date_with_its_time() -> None:
    dataset = run(
        '[patients.join]\npatient_name = ["First Name", "Last Name"]\n'
        '[appointments]\n"appointmentID" = "appointment_id"\n"patientID" = "patient_id"\n'
        '[appointments.join]\nstarts_at = ["appointmentDate", "appointmentStartTime"]\n',
        raw(
            "patients",
            "patients.csv",
            {
                "ID": ["p1", "p2", "p3"],
                "First Name": ["Ann", "Bo", ""],
                "Last Name": ["Lee", "", "Tran"],
            },
        ),
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointmentID": ["a1", "a2"],
                "patientID": ["p1", "p2"],
                "appointmentDate": ["2026-10-05", "2026-10-06"],
                "appointmentStartTime": ["09:30", "14:15"],
            },
        ),
    )
    assert dataset.issues == []
    assert listed(dataset.patients, "patient_id", "patient_name") == [
        ["p1", "Ann Lee"],
        ["p2", "Bo"],
        ["p3", "Tran"],
    ]
    assert listed(dataset.appointments, "appointment_id", "starts_at") == [
        ["a1", pd.Timestamp("2026-10-05 09:30")],
        ["a2", pd.Timestamp("2026-10-06 14:15")],
    ]


def test_two_joins_may_share_a_column() -> None:
    # Nookal writes one date and two times: the date makes both the start and the end.
    dataset = run(
        '[appointments.join]\nstarts_at = ["appointmentDate", "appointmentStartTime"]\n'
        'ends_at = ["appointmentDate", "appointmentEndTime"]\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1"],
                "patient_id": ["p1"],
                "appointmentDate": ["2026-10-05"],
                "appointmentStartTime": ["09:30"],
                "appointmentEndTime": ["10:15"],
            },
        ),
    )
    assert dataset.issues == []
    assert listed(dataset.appointments, "starts_at", "ends_at") == [
        [pd.Timestamp("2026-10-05 09:30"), pd.Timestamp("2026-10-05 10:15")]
    ]


def test_a_joined_value_that_is_no_date_names_both_columns() -> None:
    dataset = run(
        '[appointments.join]\nstarts_at = ["appointmentDate", "appointmentStartTime"]\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1"],
                "patient_id": ["p1"],
                "appointmentDate": ["2026-10-05"],
                "appointmentStartTime": ["25:00"],
            },
        ),
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: appointments.csv, row 2, column 'appointmentDate + appointmentStartTime', "
            "value '2026-10-05 25:00': appointmentDate + appointmentStartTime is not a real date "
            "or time when read as day/month/year: check the day and month (or the date order "
            "setting), and write it like 21/07/2026 14:30 (day/month/year) or ISO "
            "2026-07-21T14:30:00"
        )
    ]


def test_values_map_before_typing() -> None:
    dataset = run(
        '[appointments.values]\n"Did Not Show" = { "N/A" = "", "Yes" = "true", "No" = "false" }\n'
        '[appointments]\n"Did Not Show" = "did_not_arrive"\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1", "a2", "a3", "a4"],
                "patient_id": ["p1", "p1", "p1", "p1"],
                "starts_at": ["2026-10-05"] * 4,
                "Did Not Show": ["Yes", " No ", "N/A", "Maybe"],
            },
        ),
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: appointments.csv, row 5, column 'Did Not Show', value 'Maybe': Did Not Show is "
            "not yes or no: write yes/no, true/false, y/n or 1/0 (blank means no)"
        )
    ]
    assert listed(dataset.appointments, "appointment_id", "did_not_arrive") == [
        ["a1", True],
        ["a2", False],
        ["a3", False],
    ]


def test_last_segment_of_a_link() -> None:
    dataset = run(
        '[appointments.last_segment]\npatient_id = "Client Link"\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1", "a2", "a3", "a4"],
                "starts_at": ["2026-10-05"] * 4,
                "Client Link": [
                    "https://api.example.com/v1/patients/82",
                    "https://api.example.com/v1/patients/83?fields=all#top",
                    "82",
                    "https://api.example.com/v1/patients/",
                ],
            },
        ),
    )
    message = (
        "Client Link is not a link ending in an id (like "
        "https://example.com/patients/82): correct it, or take patient_id from another "
        "column in the mapping file"
    )
    assert dataset.issues == [
        Issue("error", "appointments.csv", 4, "Client Link", "82", message),
        Issue(
            "error",
            "appointments.csv",
            5,
            "Client Link",
            "https://api.example.com/v1/patients/",
            message,
        ),
    ]
    assert listed(dataset.appointments, "appointment_id", "patient_id") == [
        ["a1", "82"],
        ["a2", "83"],
    ]
    assert dataset.excluded[["source_row", "reason"]].values.tolist() == [
        [4, message],
        [5, message],
    ]


def test_skip_rows_by_value() -> None:
    dataset = run(
        '[appointments.skip]\n"Type" = ["Unavailable", "Holiday"]\n'
        '[appointments.last_segment]\npatient_id = "Client Link"\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1", "b1", "a2", "b2"],
                "Client Link": ["https://x/patients/p1", "none", "https://x/patients/p2", "none"],
                "starts_at": ["2026-10-05"] * 4,
                "Type": ["Standard", "Unavailable", "Standard", " Holiday "],
            },
        ),
    )
    assert dataset.issues == [
        Issue(
            "info",
            "appointments.csv",
            None,
            None,
            None,
            "2 rows were left out as the mapping file's [appointments.skip] says (rows 3 and 5)",
        )
    ]
    assert listed(dataset.appointments, "appointment_id", "patient_id") == [
        ["a1", "p1"],
        ["a2", "p2"],
    ]
    assert dataset.excluded[["source_row", "reason"]].values.tolist() == [
        [3, "Type is Unavailable: left out as the mapping file's [appointments.skip] says"],
        [5, "Type is Holiday: left out as the mapping file's [appointments.skip] says"],
    ]


# --- flags ------------------------------------------------------------------------------------


def test_a_late_cancel_flag_cancels_at_the_start_and_is_not_counted() -> None:
    """Mindbody: LateCancelled true -> cancelled at the start; remaining 4 (a rename gave 3)."""
    dataset = run(
        '[appointments]\n"VisitId" = "appointment_id"\n"ClientId" = "patient_id"\n'
        '"StartDateTime" = "starts_at"\n"ClientServiceId" = "case_id"\n'
        '[appointments.flags]\ncancelled_at = { flag = "LateCancelled" }\n',
        raw(
            "appointments",
            "visits.csv",
            {
                "VisitId": ["v1", "v2", "v3"],
                "ClientId": ["p1", "p1", "p1"],
                "StartDateTime": [
                    "2026-10-05T10:00:00",
                    "2026-10-12T10:00:00",
                    "2026-10-19T10:00:00",
                ],
                "ClientServiceId": ["s1", "s1", "s1"],
                "LateCancelled": ["false", "true", "sometimes"],
            },
        ),
        raw("cases", "cases.csv", {"case_id": ["s1"], "patient_id": ["p1"], "max_sessions": ["5"]}),
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: visits.csv, row 4, column 'LateCancelled', value 'sometimes': LateCancelled is "
            "not yes or no: write yes/no, true/false, y/n or 1/0 (blank means no)"
        )
    ]
    assert listed(dataset.appointments, "appointment_id", "cancelled_at") == [
        ["v1", None],
        ["v2", pd.Timestamp("2026-10-12 10:00")],
    ]
    assert dataset.appointments is not None and dataset.cases is not None
    tally = tally_cases(dataset.appointments, dataset.cases, date(2026, 10, 31))
    assert tally.cases["remaining"].tolist() == [4]


def test_a_zero_one_flag_with_its_own_date_keeps_the_start_time() -> None:
    """Nookal: cancelled 0/1 + cancellationDate, and the date and time joined."""
    dataset = run(
        '[appointments]\n"appointmentID" = "appointment_id"\n"patientID" = "patient_id"\n'
        '[appointments.join]\nstarts_at = ["appointmentDate", "appointmentStartTime"]\n'
        '[appointments.flags]\ncancelled_at = { flag = "cancelled", date = "cancellationDate" }\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointmentID": ["a1", "a2", "a3", "a4"],
                "patientID": ["p1"] * 4,
                "appointmentDate": ["2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08"],
                "appointmentStartTime": ["09:30", "14:15", "16:45", "08:00"],
                "cancelled": ["0", "1", "1", "0"],
                "cancellationDate": ["", "2026-10-01 12:00", "", "2026-10-02 09:00"],
            },
        ),
    )
    assert dataset.issues == []
    assert listed(dataset.appointments, "appointment_id", "starts_at", "cancelled_at") == [
        ["a1", pd.Timestamp("2026-10-05 09:30"), None],
        ["a2", pd.Timestamp("2026-10-06 14:15"), pd.Timestamp("2026-10-01 12:00")],
        ["a3", pd.Timestamp("2026-10-07 16:45"), pd.Timestamp("2026-10-07 16:45")],
        ["a4", pd.Timestamp("2026-10-08 08:00"), None],
    ]


# --- formats ----------------------------------------------------------------------------------


def payments_file(columns: dict[str, list[str]]) -> RawTable:
    n = len(next(iter(columns.values())))
    return raw(
        "payments",
        "payments.csv",
        {
            "payment_id": [f"y{i}" for i in range(n)],
            "patient_id": ["p1"] * n,
            "paid_at": ["2026-10-05"] * n,
            "amount": ["90"] * n,
            **columns,
        },
    )


def test_a_date_format_and_a_currency_prefix() -> None:
    dataset = run(
        '[payments.formats]\ndate = "%a %d %b %Y %I:%M%p"\ncurrency = "A$"\n',
        raw(
            "payments",
            "payments.csv",
            {
                "payment_id": ["y1", "y2", "y3", "y4"],
                "patient_id": ["p1"] * 4,
                "paid_at": [
                    "Mon 5 Oct 2026 10:00am",
                    "Tue 06 Oct 2026 02:30PM",
                    "2026-10-07T09:00:00",
                    "5 Oct 2026",
                ],
                "amount": ["A$90.00", "-A$50.00", "(A$1,234.50)", "A$10"],
            },
        ),
    )
    assert dataset.issues == [
        Issue(
            "error",
            "payments.csv",
            5,
            "paid_at",
            "5 Oct 2026",
            "paid_at is not a date written as %a %d %b %Y %I:%M%p (like Mon 05 Oct 2026 02:30PM), "
            "the mapping file's [payments.formats] date, nor as ISO 2026-10-05: correct the date, "
            "or the format in the mapping file",
        )
    ]
    assert listed(dataset.payments, "payment_id", "paid_at", "amount") == [
        ["y1", pd.Timestamp("2026-10-05 10:00"), 9000],
        ["y2", pd.Timestamp("2026-10-06 14:30"), -5000],
        ["y3", pd.Timestamp("2026-10-07 09:00"), -123450],
    ]


def test_a_date_format_with_an_offset_is_converted_to_the_clinics_zone() -> None:
    dataset = run(
        '[payments.formats]\ndate = "%d/%m/%Y %H:%M %z"\n',
        payments_file({"paid_at": ["05/10/2026 10:00 +0000", "05/10/2026 10:00"]}),
    )
    assert listed(dataset.payments, "paid_at") == [[pd.Timestamp("2026-10-05 21:00")]]
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: payments.csv, row 3, column 'paid_at', value '05/10/2026 10:00': paid_at is not "
            "a date written as %d/%m/%Y %H:%M %z (like 05/10/2026 14:30 +1100), the mapping "
            "file's [payments.formats] date, nor as ISO 2026-10-05: correct the date, or the "
            "format in the mapping file"
        )
    ]


def test_several_date_formats_are_tried_in_order() -> None:
    dataset = run(
        '[payments.formats]\ndate = ["%a %d %b %Y %I:%M%p", "%d %b %Y"]\n',
        payments_file({"paid_at": ["Mon 5 Oct 2026 10:00am", "6 Oct 2026", "Oct 7 2026"]}),
    )
    assert listed(dataset.payments, "paid_at") == [
        [pd.Timestamp("2026-10-05 10:00")],
        [pd.Timestamp("2026-10-06")],
    ]
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: payments.csv, row 4, column 'paid_at', value 'Oct 7 2026': paid_at is not a "
            "date written as %a %d %b %Y %I:%M%p (like Mon 05 Oct 2026 02:30PM) or %d %b %Y (like "
            "05 Oct 2026), the mapping file's [payments.formats] date, nor as ISO 2026-10-05: "
            "correct the date, or the format in the mapping file"
        )
    ]


def test_a_currency_prefix_that_does_not_match_is_reported() -> None:
    dataset = run(
        '[payments.formats]\ncurrency = "A$"\n', payments_file({"amount": ["AU$90.00", "A$90.00"]})
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: payments.csv, row 2, column 'amount', value 'AU$90.00': amount is not an amount "
            "in dollars and cents: write it like 1234.50 (or -50.00 for a negative)"
        )
    ]
    assert listed(dataset.payments, "amount") == [[9000]]


def test_a_date_only_format_on_a_date_column() -> None:
    dataset = run(
        '[invoices.formats]\ndate = "%d %b %Y"\n',
        raw(
            "invoices",
            "invoices.csv",
            {
                "invoice_id": ["i1"],
                "patient_id": ["p1"],
                "issue_date": ["5 Oct 2026"],
                "total": ["90"],
            },
        ),
    )
    assert dataset.issues == []
    assert listed(dataset.invoices, "issue_date") == [[pd.Timestamp("2026-10-05")]]


# --- split ------------------------------------------------------------------------------------

SPLIT = (
    '[payments.split.allocations]\ninvoice_id = "Invoice ID"\namount = "Amount Applied"\n'
    'payment_id = "Payment ID"\n'
)


def test_a_payments_file_with_allocation_columns_gives_both_kinds() -> None:
    dataset = run(
        SPLIT,
        raw(
            "payments",
            "payments.csv",
            {
                "Payment ID": ["y1", "y1", "y2"],
                "Patient ID": ["p1", "p1", "p1"],
                "Payment Date": ["2026-10-05"] * 3,
                "Amount": ["200", "200", "50"],
                "Invoice ID": ["i1", "i2", ""],
                "Amount Applied": ["120", "80", ""],
            },
        ),
        raw(
            "invoices",
            "invoices.csv",
            {
                "invoice_id": ["i1", "i2"],
                "patient_id": ["p1", "p1"],
                "issue_date": ["2026-10-01", "2026-10-02"],
                "total": ["120", "100"],
            },
        ),
    )
    assert dataset.issues == []
    assert listed(dataset.payments, "payment_id", "amount", "source_row") == [
        ["y1", 20000, 2],
        ["y2", 5000, 4],
    ]
    assert listed(
        dataset.allocations, "invoice_id", "payment_id", "amount", "source_file", "source_row"
    ) == [["i1", "y1", 12000, "payments.csv", 2], ["i2", "y1", 8000, "payments.csv", 3]]
    assert [f.kind for f in dataset.files] == ["payments", "invoices"]


def test_a_split_still_reports_a_payment_copied_without_an_allocation() -> None:
    dataset = run(
        SPLIT,
        raw(
            "payments",
            "payments.csv",
            {
                "Payment ID": ["y1", "y1"],
                "Patient ID": ["p1", "p1"],
                "Payment Date": ["2026-10-05"] * 2,
                "Amount": ["50", "50"],
                "Invoice ID": ["", ""],
                "Amount Applied": ["", ""],
            },
        ),
    )
    assert dataset.issues == [
        Issue(
            "warning",
            "payments.csv",
            3,
            None,
            None,
            "row 3 repeats row 2 exactly and is counted once: if it really happened twice, export "
            "the payments with their ids so the two can be told apart",
        )
    ]
    assert dataset.allocations is not None and dataset.allocations.empty


def test_a_split_names_the_column_the_file_lacks() -> None:
    dataset = run(
        SPLIT,
        raw(
            "payments",
            "payments.csv",
            {
                "Payment ID": ["y1"],
                "Patient ID": ["p1"],
                "Payment Date": ["2026-10-05"],
                "Amount": ["200"],
                "Invoice ID": ["i1"],
            },
        ),
    )
    assert dataset.issues == [
        Issue(
            "error",
            "payments.csv",
            None,
            "Amount Applied",
            None,
            "the mapping file's [payments.split.allocations] amount names the column "
            "'Amount Applied', which this file does not have. Columns found: Payment ID, "
            "Patient ID, Payment Date, Amount, Invoice ID. Correct the name in the mapping file, "
            "or export that column",
        ),
        Issue(
            "info",
            "payments.csv",
            None,
            None,
            None,
            "ignored columns pkgreport does not use: Invoice ID",
        ),
    ]
    assert dataset.allocations is None


def test_a_split_line_a_preset_wrote_names_the_preset() -> None:
    from pkgreport.inputs.mapping import parse_mapping
    from pkgreport.inputs.mapping_split import split_table

    data = tomllib.loads(SPLIT)
    kind_map = parse_mapping(data, "the column map", ("acme", data)).kind("payments")
    frame = pd.DataFrame(
        {
            "Payment ID": ["y1"],
            "Invoice ID": ["i1"],
            "Amount": ["200"],
            "source_file": ["payments.csv"],
            "source_row": [2],
        }
    )
    assert split_table("payments", kind_map, frame, "payments.csv") == (
        {},
        [
            Issue(
                "error",
                "payments.csv",
                None,
                "Amount Applied",
                None,
                "the acme preset's [payments.split.allocations] amount names the column "
                "'Amount Applied', which this file does not have. Columns found: Payment ID, "
                "Invoice ID, Amount. Export the file with that column, or give the header your "
                "file has in a mapping file of your own (start from `pkgreport mapping --show "
                "acme`) given with --columns",
            )
        ],
    )


def test_a_bad_allocation_amount_is_reported_on_the_payments_row() -> None:
    dataset = run(
        SPLIT,
        raw(
            "payments",
            "payments.csv",
            {
                "Payment ID": ["y1", "y1"],
                "Patient ID": ["p1", "p1"],
                "Payment Date": ["2026-10-05"] * 2,
                "Amount": ["200", "200"],
                "Invoice ID": ["i1", "i2"],
                "Amount Applied": ["120", "eighty"],
            },
        ),
    )
    assert [str(i) for i in dataset.issues if i.severity == "error"] == [
        (
            "ERROR: payments.csv, row 3, column 'Amount Applied', value 'eighty': Amount Applied "
            "is not an amount in dollars and cents: write it like 1234.50 (or -50.00 for a "
            "negative)"
        )
    ]


# --- check ------------------------------------------------------------------------------------


def test_a_systems_own_remaining_figure_is_checked() -> None:
    dataset = run(
        '[cases.check]\nremaining_sessions = "Sessions Remaining"\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": ["a1", "a2"],
                "patient_id": ["p1", "p2"],
                "starts_at": ["2026-10-05", "2026-10-06"],
                "case_id": ["c1", "c2"],
            },
        ),
        raw(
            "cases",
            "cases.csv",
            {
                "case_id": ["c1", "c2", "c3"],
                "patient_id": ["p1", "p2", "p3"],
                "max_sessions": ["5", "5", ""],
                "Sessions Remaining": ["4", "3", "2"],
            },
        ),
    )
    assert dataset.issues == []
    assert dataset.appointments is not None and dataset.cases is not None
    tally = tally_cases(dataset.appointments, dataset.cases, date(2026, 10, 31))
    mismatch = tally.findings[tally.findings["code"] == "REPORTED_REMAINING_MISMATCH"]
    assert mismatch[["subject_id", "message"]].values.tolist() == [
        [
            "c2",
            (
                "Case c2: the practice system reports 3 of 5 sessions remaining but the exports "
                "add up to 4: check for appointments missing from the export or attached to another "
                "case."
            ),
        ]
    ]


def test_a_systems_own_remaining_figure_must_be_a_count() -> None:
    dataset = run(
        '[cases.check]\nremaining_sessions = "Sessions Remaining"\n',
        raw(
            "cases",
            "cases.csv",
            {"case_id": ["c1"], "patient_id": ["p1"], "Sessions Remaining": ["three"]},
        ),
    )
    assert [str(i) for i in dataset.issues] == [
        (
            "ERROR: cases.csv, row 2, column 'Sessions Remaining', value 'three': Sessions "
            "Remaining is not a whole number: write it like 4 (0 or more)"
        )
    ]


def test_a_systems_own_credit_figure_is_the_reported_credit() -> None:
    dataset = run(
        '[patients.check]\ncredit = "Account Balance"\n',
        raw("patients", "patients.csv", {"ID": ["p1", "p2"], "Account Balance": ["45.00", ""]}),
    )
    assert dataset.issues == []
    assert listed(dataset.patients, "patient_id", "reported_credit") == [["p1", 4500], ["p2", 0]]


# --- as a user runs it ------------------------------------------------------------------------

NOOKAL_MAP = """\
[appointments]
"appointmentID" = "appointment_id"
"patientID" = "patient_id"
"caseID" = "case_id"

[appointments.join]
starts_at = ["appointmentDate", "appointmentStartTime"]

[appointments.flags]
cancelled_at = { flag = "cancelled", date = "cancellationDate" }

[appointments.formats]
date = "%d %b %Y %I:%M%p"

[cases.check]
remaining_sessions = "Sessions Remaining"
"""


def test_a_mapped_export_gives_the_tally_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text(NOOKAL_MAP, encoding="utf-8")
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "appointments.csv").write_text(
        "appointmentID,patientID,appointmentDate,appointmentStartTime,cancelled,"
        "cancellationDate,caseID\n"
        "1,82,5 Oct 2026,9:30am,0,,c1\n"
        "2,82,12 Oct 2026,2:15pm,1,1 Oct 2026 12:00pm,c1\n"
        "3,82,19 Oct 2026,4:45pm,1,,c1\n"
        "4,82,26 Oct 2026,4:45pm,0,,c1\n",
        encoding="utf-8",
    )
    (exports / "cases.csv").write_text(
        "case_id,patient_id,max_sessions,Sessions Remaining\nc1,82,5,3\n", encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli,
        ["cases", str(exports), "--columns", str(tmp_path / "map.toml"), "--as-of", "2026-10-31"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        (
            "case_id,patient_id,case_name,max_sessions,counted,attended,upcoming,cancelled,dna,"
            "remaining,over_booked_by,status,findings"
        ),
        "c1,82,,5,2,2,0,2,0,3,0,active,",
    ]


def test_a_mistake_in_the_mapping_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text(
        '[appointments.flags]\ncancelled_at = "cancelled"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli, ["validate", str(tmp_path), "--columns", str(tmp_path / "map.toml")]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path / 'map.toml'}: [appointments.flags] cancelled_at must be like "
        '{ flag = "cancelled", date = "cancellationDate" } (date is optional)\n'
    )


def test_many_skipped_rows_are_counted_in_one_line() -> None:
    dataset = run(
        '[appointments.skip]\n"Type" = ["Holiday"]\n',
        raw(
            "appointments",
            "appointments.csv",
            {
                "appointment_id": [f"a{i}" for i in range(8)],
                "patient_id": ["p1"] * 8,
                "starts_at": ["2026-10-05"] * 8,
                "Type": ["Standard"] + ["Holiday"] * 7,
            },
        ),
    )
    assert dataset.issues == [
        Issue(
            "info",
            "appointments.csv",
            None,
            None,
            None,
            "7 rows were left out as the mapping file's [appointments.skip] says "
            "(rows 3, 4, 5, 6, 7 and 2 more)",
        )
    ]
