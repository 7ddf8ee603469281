"""A folder of exports in exactly the shapes Cliniko's data exports write, read with no mapping.

The header rows are Cliniko's own (../shared/DOMAIN.md, "What Cliniko's exports really look
like"); the payments shape is assumed (no public header row) and cases carry the API's field
names. The figures are worked out by hand below each patient.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.test_validation_cliniko import APPOINTMENT_HEADERS, INVOICE_HEADERS

from pkgreport.cli import cli

APPOINTMENTS_HEADER = ",".join(APPOINTMENT_HEADERS)
INVOICES_HEADER = ",".join(INVOICE_HEADERS)
PATIENTS_HEADER = "ID,First Name,Last Name,Last Appointment,Unapplied Account Credit,Updated At"
PAYMENTS_HEADER = "ID,Patient ID,Payment Date,Amount,Payment Method"
CASES_HEADER = (
    "id,patient,name,max_sessions,include_cancelled_attendees,include_dna_attendees,issue_date,"
    "expiry_date,closed_at,archived_at"
)

# Patients (19-digit ids, as Cliniko's are).
ANN = "1558354464010667075"  # pre-paid $500; three $90 sessions paid from credit: $230 left
BEN = "1558354464010667076"  # pre-paid $100; a $90 invoice still open beside it: flagged
CAT = "1558354464010667077"  # a $120 invoice paid by a payment the same day: nothing left
DAN = "1558354464010667078"  # $60 credit and a $40 payment pay a $100 invoice: nothing left
EVE = "1558354464010667079"  # with Dan in a group class; never invoiced
CASE = "1601234567890123456"
PRAC = "1234567890123456789"
BIZ = "Harbour Physio"


def _appointment(
    aid: str,
    start: str,
    day: str,
    patients: str,
    kind: str,
    invoice: str = "",
    case: str = "",
    arrived: str = "TRUE",
    count: str = "1",
) -> str:
    flags = "N/A,N/A" if not patients else f"FALSE,{arrived}"
    return (
        f"{aid},{start} +1100,{day},{start[:11]}09:45:00 +1100,Priya Raman,{PRAC},{patients},"
        f"{kind},,{BIZ},{flags},TRUE,FALSE,,,,{start} +1100,Final,{invoice},,Online,"
        f"{count},{count if patients else 0},0,{case}"
    )


APPOINTMENTS = [
    _appointment(
        "9000000000000000001", "2022-11-01 09:00:00", "1/11/2022", ANN, "Physio", "101", CASE
    ),
    _appointment(
        "9000000000000000002", "2022-11-08 09:00:00", "8/11/2022", ANN, "Physio", "102", CASE
    ),
    _appointment(
        "9000000000000000003", "2022-11-15 09:00:00", "15/11/2022", ANN, "Physio", "103", CASE
    ),
    _appointment("9000000000000000004", "2022-11-09 09:00:00", "9/11/2022", BEN, "Physio", "104"),
    _appointment("9000000000000000005", "2022-11-05 09:00:00", "5/11/2022", CAT, "Physio", "105"),
    _appointment(
        "9000000000000000006",
        "2022-11-10 09:00:00",
        "10/11/2022",
        f'"{DAN}, {EVE}"',
        "Pilates class",
        "106",
        count="2",
    ),
    # A practitioner's "Unavailable" block: no patient, N/A flags. Not an appointment.
    _appointment(
        "9000000000000000007",
        "2022-11-11 09:00:00",
        "11/11/2022",
        "",
        "Unavailable - Unavailable",
        count="0",
    ),
]


def _invoice(
    number: str,
    day: str,
    total: str,
    status: str,
    appointment: str,
    patient: str,
    outstanding: str,
    payments: str,
    credit: str,
    invoice_id: str,
) -> str:
    closed = day if status == "Paid" else ""
    return (
        f"{number},{day},Priya Raman,{total},0,0,{total},,{status},{closed},Priya Raman,"
        f"{appointment},{BIZ},,{patient},{outstanding},{payments},{credit},0,{day} 9:00,"
        f"{invoice_id}"
    )


INVOICES = [
    _invoice(
        "101",
        "1/11/2022",
        "90",
        "Paid",
        "9000000000000000001",
        ANN,
        "0",
        "0",
        "90",
        "8000000000000000101",
    ),
    _invoice(
        "102",
        "8/11/2022",
        "90",
        "Paid",
        "9000000000000000002",
        ANN,
        "0",
        "0",
        "90",
        "8000000000000000102",
    ),
    _invoice(
        "103",
        "15/11/2022",
        "90",
        "Paid",
        "9000000000000000003",
        ANN,
        "0",
        "0",
        "90",
        "8000000000000000103",
    ),
    _invoice(
        "104",
        "9/11/2022",
        "90",
        "Open",
        "9000000000000000004",
        BEN,
        "90",
        "0",
        "0",
        "8000000000000000104",
    ),
    _invoice(
        "105",
        "5/11/2022",
        "120",
        "Paid",
        "9000000000000000005",
        CAT,
        "0",
        "120",
        "0",
        "8000000000000000105",
    ),
    _invoice(
        "106",
        "10/11/2022",
        "100",
        "Paid",
        "9000000000000000006",
        DAN,
        "0",
        "40",
        "60",
        "8000000000000000106",
    ),
]
PAYMENTS = [
    f"7000000000000000001,{ANN},31/10/2022,500.00,Credit Card",
    f"7000000000000000002,{BEN},2/11/2022,100.00,EFTPOS",
    f"7000000000000000003,{CAT},5/11/2022,120.00,EFTPOS",
    f"7000000000000000004,{DAN},1/11/2022,60.00,Cash",
    f"7000000000000000005,{DAN},10/11/2022,40.00,Cash",
]
PATIENTS = [
    f'="{ANN}",Ann,Lee,15/11/2022,230.00,2022-11-20 10:00:00 +1100',
    f'="{BEN}",Ben,Ng,9/11/2022,100.00,2022-11-20 10:00:00 +1100',
    f'="{CAT}",Cat,Ruiz,5/11/2022,,2022-11-20 10:00:00 +1100',
    f'="{DAN}",Dan,Oh,10/11/2022,0,2022-11-20 10:00:00 +1100',
    f'="{EVE}",Eve,Ito,10/11/2022,,2022-11-20 10:00:00 +1100',
]
CASES = [f"{CASE},{ANN},Physio 5-session package,5,false,true,2022-10-31,2023-10-31,,"]

EXPECTED_CREDIT = {ANN: "230.00", BEN: "100.00", CAT: "0.00", DAN: "0.00", EVE: "0.00"}


def _write(path: Path, header: str, rows: list[str]) -> None:
    # Cliniko's exports end every record in CRLF.
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    _write(
        folder / "Appointments-Cliniko-20221120-From20221101-To20221130.csv",
        APPOINTMENTS_HEADER,
        APPOINTMENTS,
    )
    _write(
        folder / "Invoices-Cliniko-20221120-From20221101-To20221130.csv", INVOICES_HEADER, INVOICES
    )
    _write(folder / "Patients-Cliniko-20221120.csv", PATIENTS_HEADER, PATIENTS)
    _write(folder / "Payments-Cliniko-20221120.csv", PAYMENTS_HEADER, PAYMENTS)
    _write(folder / "cases.csv", CASES_HEADER, CASES)
    return folder


def invoke(*args: str):
    return CliRunner().invoke(
        cli, [*args, "--timezone", "Australia/Sydney"], catch_exceptions=False
    )


def test_the_real_header_rows_validate_with_no_mapping(exports: Path) -> None:
    result = invoke("validate", str(exports))
    assert result.exit_code == 0, result.output
    assert "Errors: 0" in result.stdout


def test_cases_count_the_package_sessions(exports: Path) -> None:
    result = invoke("cases", str(exports), "--format", "json")
    assert result.exit_code == 0, result.output
    (case,) = json.loads(result.stdout)
    assert (case["case_id"], case["patient_id"], case["counted"], case["remaining"]) == (
        CASE,
        ANN,
        3,
        2,
    )


def test_every_recomputed_credit_equals_cliniko_s_unapplied_account_credit(exports: Path) -> None:
    result = invoke("credit", str(exports))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["patient_id"]: r["credit"] for r in rows} == EXPECTED_CREDIT
    assert {r["patient_id"]: r["difference"] for r in rows} == dict.fromkeys(
        EXPECTED_CREDIT, "0.00"
    )
    assert {r["patient_id"]: r["findings"] for r in rows} == {
        ANN: "UNAPPLIED_CREDIT",
        BEN: "CREDIT_WITH_OPEN_INVOICES, UNAPPLIED_CREDIT",
        CAT: "",
        DAN: "",
        EVE: "",
    }


def test_report_flags_only_the_credit_that_really_waits_beside_an_open_invoice(
    exports: Path, tmp_path: Path
) -> None:
    result = invoke("report", str(exports), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "pkgreport-2022-11-15.json").read_text("utf-8"))
    assert summary["findings_by_code"] == {"CREDIT_WITH_OPEN_INVOICES": 1, "UNAPPLIED_CREDIT": 2}
    waiting = next(f for f in summary["findings"] if f["code"] == "CREDIT_WITH_OPEN_INVOICES")
    assert (waiting["patient_id"], waiting["amount"]["cents"]) == (BEN, 9000)
    assert summary["invoice_links"] == {"by_appointment_id": 6, "by_invoice_number": 0}
    assert summary["totals"]["credit_liability"]["cents"] == 33000


def test_the_same_folder_saved_from_excel_is_refused_per_file_and_column(
    exports: Path, tmp_path: Path
) -> None:
    for path in exports.iterdir():
        text = path.read_text("utf-8")
        # Excel shows a 19-digit id as 1.55835E+18, and saves it so.
        rounded = re.sub(
            r'="(\d{19})"|\b(\d{19})\b', lambda m: f"{int(m.group(1) or m.group(2)):.5E}", text
        )
        path.write_text(rounded, "utf-8")
    result = invoke("report", str(exports), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 1, result.output
    refused = sorted(
        {
            line.split(", value")[0].strip()
            for line in result.output.splitlines()
            if "rounded by a spreadsheet program" in line
        }
    )
    assert refused == sorted(
        f"ERROR: {name}, column '{column}'"
        for name, columns in {
            "Appointments-Cliniko-20221120-From20221101-To20221130.csv": (
                "Appointment ID",
                "Patient ID(s)",
                "Patient Case",
            ),
            "Invoices-Cliniko-20221120-From20221101-To20221130.csv": (
                "Appointment ID",
                "Patient ID",
                "ID",
            ),
            "Patients-Cliniko-20221120.csv": ("ID",),
            "Payments-Cliniko-20221120.csv": ("ID", "Patient ID"),
            "cases.csv": ("id", "patient"),
        }.items()
        for column in columns
    )
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_the_invoices_table_prints_every_money_column_in_dollars(exports: Path) -> None:
    result = invoke("credit", str(exports), "--invoices")
    assert result.exit_code == 0, result.output
    rows = {r["number"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    money = [
        "total",
        "explicit_allocated",
        "paid_direct",
        "paid_from_credit",
        "outstanding",
        "final_outstanding",
        "final_paid_direct",
        "final_paid_from_credit",
        "outstanding_reported",
        "paid_reported",
        "credit_applied",
    ]
    # Dan's $100 invoice: $60 from credit (as Cliniko recorded it, nothing exported by hand)
    # and $40 from his payment, exactly as Cliniko's own columns say.
    assert [rows["106"][c] for c in money] == [
        "100.00",
        "60.00",
        "40.00",
        "60.00",
        "0.00",
        "0.00",
        "40.00",
        "60.00",
        "0.00",
        "40.00",
        "60.00",
    ]


def test_a_credit_note_in_cliniko_s_own_invoices_shape_creates_credit(exports: Path) -> None:
    # Cliniko's invoices export has no column naming the invoice a credit note credits, so a
    # negative invoice there is a credit note as it stands: Cat's $50 one leaves her $50 credit.
    credit_note = _invoice(
        "107", "20/11/2022", "-50", "", "", CAT, "0", "0", "0", "8000000000000000107"
    )
    _write(
        exports / "Invoices-Cliniko-20221120-From20221101-To20221130.csv",
        INVOICES_HEADER,
        [*INVOICES, credit_note],
    )
    patients = [row.replace(",5/11/2022,,", ",5/11/2022,50.00,") for row in PATIENTS]
    _write(exports / "Patients-Cliniko-20221120.csv", PATIENTS_HEADER, patients)
    validated = invoke("validate", str(exports))
    assert validated.exit_code == 0, validated.output
    assert "Errors: 0   Warnings: 0" in validated.stdout
    result = invoke("credit", str(exports))
    assert result.exit_code == 0, result.output
    cat = next(r for r in csv.DictReader(io.StringIO(result.stdout)) if r["patient_id"] == CAT)
    assert (cat["credit"], cat["reported_credit"], cat["difference"], cat["findings"]) == (
        "50.00",
        "50.00",
        "0.00",
        "UNAPPLIED_CREDIT",
    )


def test_an_issue_shows_the_time_as_the_export_writes_it_not_as_converted(exports: Path) -> None:
    # The case is issued the day after Ann's first session. Read in UTC (no --timezone), that
    # session's start is 2022-10-31 22:00 UTC; the warning must show the cell the user can find.
    late = CASES[0].replace(",2022-10-31,2023-10-31,", ",2022-11-02,2023-10-31,")
    _write(exports / "cases.csv", CASES_HEADER, [late])
    result = CliRunner().invoke(cli, ["validate", str(exports)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [line.strip() for line in result.stdout.splitlines() if "WARNING" in line] == [
        (
            "WARNING: Appointments-Cliniko-20221120-From20221101-To20221130.csv, row 2, column "
            "'Start Time', value '2022-11-01 09:00:00 +1100': Start Time 2022-11-01 09:00:00 +1100 "
            f"is before case {CASE} was issued (2022-11-02): check the appointment's case and date, "
            "or the case's issue and expiry dates"
        )
    ]


def test_an_overlapping_export_counts_the_rows_of_the_file_not_the_attendees(exports: Path) -> None:
    # The same appointments exported twice: 6 appointment rows (one a group class of two) and
    # the "Unavailable" block, which is no appointment.
    again = exports / "Appointments-Cliniko-20221121.csv"
    _write(again, APPOINTMENTS_HEADER, APPOINTMENTS)
    result = invoke("validate", str(exports))
    assert result.exit_code == 0, result.output
    assert [line.strip() for line in result.stdout.splitlines() if "WARNING" in line] == [
        (
            "WARNING: Appointments-Cliniko-20221121.csv: 6 appointments rows are exact copies of "
            "other rows (overlapping exports?) and counted once; the first is "
            "Appointments-Cliniko-20221121.csv row 2, a copy of "
            "Appointments-Cliniko-20221120-From20221101-To20221130.csv row 2"
        )
    ]
