"""Presets for other practice systems (`--source`), `pkgreport mapping`, and a fixture per preset.

Each fixture is built here from the system's published field names (the README says which) and
loads with `--source` alone; tallies and credit are computed by hand in the comments.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport import pipeline
from pkgreport.cli import cli, settings_from
from pkgreport.config import ConfigError, read_config_file
from pkgreport.inputs.mapping import parse_mapping
from pkgreport.inputs.presets import SYSTEMS, preset_names, preset_text

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "src" / "pkgreport" / "inputs" / "presets"
SAMPLE = ROOT / "sample_data"
CASES_HEADER = (
    "case_id,patient_id,case_name,max_sessions,counted,attended,upcoming,cancelled,dna,"
    "remaining,over_booked_by,status,findings"
)
CREDIT_HEADER = (
    "patient_id,patient_name,received,refunded,invoiced,applied,credit,open_outstanding,"
    "reported_credit,difference,findings"
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


# --- the presets and the mapping command --------------------------------------------------------


def test_the_presets_are_the_toml_files_shipped_in_the_package() -> None:
    assert preset_names() == ("cliniko", "cliniko-api", "jane", "mindbody-api", "nookal-api")
    assert sorted(p.stem for p in PRESETS.glob("*.toml")) == list(preset_names())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pkgreport.inputs.presets" in pyproject["tool"]["setuptools"]["packages"]
    assert pyproject["tool"]["setuptools"]["package-data"]["pkgreport.inputs.presets"] == ["*.toml"]


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_a_valid_mapping_file_that_says_what_it_was_built_from(name: str) -> None:
    text = preset_text(name)
    parse_mapping(tomllib.loads(text), name)
    first = text.splitlines()[0]
    assert first.startswith("# ") and any(
        word in first
        for word in ("verified", "published API fields", "published API field names", "assumed")
    )


def test_mapping_show_prints_the_preset_as_shipped() -> None:
    code, out, err = invoke("mapping", "--show", "mindbody-api")
    assert (code, err) == (0, "")
    assert out == (PRESETS / "mindbody-api.toml").read_text(encoding="utf-8")


def test_mapping_list_names_each_preset_with_what_it_was_built_from() -> None:
    code, out, _ = invoke("mapping", "--list")
    assert code == 0
    width = max(len(name) for name in preset_names())
    assert out.splitlines() == [
        f"{name:<{width}}  {preset_text(name).splitlines()[0].removeprefix('# ')}"
        for name in preset_names()
    ]


def test_mapping_with_nothing_to_show_is_a_usage_error() -> None:
    assert invoke("mapping") == (
        2,
        "",
        "Error: say what to show: --list for the presets, or --show SOURCE for one\n",
    )


def test_an_unknown_source_is_a_usage_error_listing_the_presets(tmp_path: Path) -> None:
    code, _, err = invoke("validate", str(tmp_path), "--source", "clinko")
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: Invalid value for '--source': 'clinko' is not one of 'cliniko', 'cliniko-api', "
        "'jane', 'mindbody-api', 'nookal-api'."
    )


def test_source_is_a_config_key_checked_against_the_presets(tmp_path: Path) -> None:
    config = tmp_path / "pkgreport.toml"
    config.write_text('source = "nookal-api"\n', encoding="utf-8")
    assert read_config_file(config) == {"source": "nookal-api"}
    config.write_text('input = "x"\nsource = "nookal"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_config_file(config)
    assert str(err.value) == (
        f"{config}, line 2: source = 'nookal' must be one of cliniko, cliniko-api, jane, "
        "mindbody-api, nookal-api"
    )


def test_run_reads_the_source_from_its_config_file_or_the_environment(tmp_path: Path) -> None:
    import json
    import os

    exports = tmp_path / "exports"
    exports.mkdir()
    mindbody_exports(exports)
    config = tmp_path / "pkgreport.toml"
    config.write_text(
        'input = "exports"\noutput = "reports"\nsource = "mindbody-api"\nperiod = "2026-10"\n',
        encoding="utf-8",
    )
    code, _, err = invoke("run", "--config", str(config), "-q")
    assert code == 0, err
    summary = json.loads((tmp_path / "reports" / "pkgreport-2026-10-31.json").read_text())
    assert summary["settings"]["source"] == "mindbody-api"
    assert (summary["inputs"][0]["file"], summary["inputs"][0]["kind"]) == (
        "client-services.csv",
        "cases",
    )
    assert (summary["counts"]["appointments"], summary["counts"]["findings"]) == (2, 0)
    config.write_text(
        'input = "exports"\noutput = "reports"\nperiod = "2026-10"\n', encoding="utf-8"
    )
    # Without the preset the visits are not read as appointments at all.
    assert invoke("run", "--config", str(config), "-q")[0] == 1
    os.environ["PKGREPORT_SOURCE"] = "mindbody-api"
    try:
        assert invoke("run", "--config", str(config), "-q")[0] == 0
    finally:
        del os.environ["PKGREPORT_SOURCE"]


def test_columns_adds_to_and_overrides_the_source_preset(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[appointments]\n"Name" = ""\n"Room" = "business"\n', encoding="utf-8")
    settings = settings_from(source="mindbody-api", columns_file=mine)
    renames = settings.column_map["appointments"]
    assert (renames["Name"], renames["Room"], renames["ClientId"]) == ("", "business", "patient_id")
    assert settings.column_map["appointments"]["flags"] == {
        "cancelled_at": {"flag": "LateCancelled"}
    }


def test_the_cliniko_preset_reads_cliniko_s_exports_as_no_preset_does() -> None:
    plain = invoke("credit", str(SAMPLE))
    assert plain[0] == 0
    assert invoke("credit", str(SAMPLE), "--source", "cliniko") == plain


# --- a fixture per preset ----------------------------------------------------------------------

CLINIKO_API = "https://api.au1.cliniko.com/v1"


def cliniko_api_exports(folder: Path) -> None:
    """Ana (patient 82) bought a 4-session package (case 501, DNA included) with $360 of credit."""
    link = CLINIKO_API
    rows = [
        # attended; cancelled (not counted); did not arrive (counted: the case includes DNA)
        f"1001,2026-10-01T23:00:00Z,,false,true,Ana Lee,{link}/patients/82,{link}/patient_cases/501",
        f"1002,2026-10-08T23:00:00Z,2026-10-07T01:00:00Z,false,false,Ana Lee,{link}/patients/82,{link}/patient_cases/501",
        f"1003,2026-10-15T23:00:00Z,,true,false,Ana Lee,{link}/patients/82,{link}/patient_cases/501",
    ]
    write(
        folder,
        "individual_appointments.csv",
        "id,starts_at,cancelled_at,did_not_arrive,patient_arrived,patient_name,"
        "patient.links.self,patient_case.links.self\n" + "\n".join(rows) + "\n",
    )
    write(
        folder,
        "patient_cases.csv",
        "id,name,max_sessions,include_cancelled_attendees,include_dna_attendees,issue_date,"
        f"patient.links.self\n501,Physio 4-pack,4,false,true,2026-09-30,{link}/patients/82\n",
    )
    write(
        folder,
        "invoices.csv",
        "id,number,issue_date,total_amount,status,patient.links.self,appointment.links.self\n"
        f"7001,1001,2026-10-02,90.00,20,{link}/patients/82,{link}/individual_appointments/1001\n",
    )
    # Cliniko has no payments API: the payments data export, as it comes.
    write(
        folder,
        "payments.csv",
        "ID,Patient ID,Payment Date,Amount,Payment Method\n"
        "P1,82,30/09/2026,360.00,Card\nP2,82,02/10/2026,0.00,Account credit\n",
    )


def test_cliniko_api_records_give_hand_computed_tallies_and_credit(tmp_path: Path) -> None:
    cliniko_api_exports(tmp_path)
    options = ("--source", "cliniko-api", "--timezone", "Australia/Sydney")
    code, out, _ = invoke("cases", str(tmp_path), *options)
    # counted = attended 1 + DNA 1 = 2 of 4: remaining 2 (the cancellation is not counted)
    assert (code, out.splitlines()) == (
        0,
        [
            CASES_HEADER,
            "501,82,Physio 4-pack,4,2,2,0,1,1,2,0,active,",
        ],
    )
    code, out, _ = invoke("credit", str(tmp_path), *options)
    # $360 received; the $0 payment of 2 Oct spends $90 of it on invoice 1001: $270 left
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "82,,360.00,0.00,90.00,90.00,270.00,0.00,,,UNAPPLIED_CREDIT",
        ],
    )


def mindbody_exports(folder: Path, remaining: int = 4) -> None:
    """Client 100000042 bought 5 private sessions (pricing option 7001): one attended, one
    late-cancelled. Neither name says its kind: the headers the preset maps do."""
    write(
        folder,
        "visits.csv",
        "Id,AppointmentId,ClientId,StartDateTime,EndDateTime,LateCancelled,Missed,SignedIn,"
        "ServiceId,ServiceName,Name,StaffId,LocationId\n"
        "101,5001,100000042,2026-10-01T09:00:00,2026-10-01T10:00:00,false,false,true,7001,"
        "5 Private Pilates,Private Pilates,12,1\n"
        "102,5002,100000042,2026-10-08T09:00:00,2026-10-08T10:00:00,true,false,false,7001,"
        "5 Private Pilates,Private Pilates,12,1\n",
    )
    write(
        folder,
        "client-services.csv",
        "Id,ClientID,Name,Count,Remaining,ActiveDate,ExpirationDate,PaymentDate,Current\n"
        f"7001,100000042,5 Private Pilates,5,{remaining},2026-09-30T00:00:00,2027-03-31T00:00:00,"
        "2026-09-30T00:00:00,true\n",
    )


def test_mindbody_late_cancel_counts_as_cancelled_and_remaining_is_4(tmp_path: Path) -> None:
    mindbody_exports(tmp_path)
    code, out, _ = invoke("cases", str(tmp_path), "--source", "mindbody-api")
    # 5 bought, 1 attended, the late cancel not counted: 4 remain, as Mindbody's Remaining says
    assert (code, out.splitlines()) == (
        0,
        [
            CASES_HEADER,
            "7001,100000042,5 Private Pilates,5,1,1,0,1,0,4,0,active,",
        ],
    )


def test_mindbody_s_own_remaining_is_checked_against_the_recomputed_one(tmp_path: Path) -> None:
    mindbody_exports(tmp_path, remaining=3)
    code, out, _ = invoke("cases", str(tmp_path), "--source", "mindbody-api", "--findings")
    header = (
        "code,severity,patient_id,subject_type,subject_id,amount,appointment_ids,message,"
        "source_file,source_row"
    )
    finding = (
        "REPORTED_REMAINING_MISMATCH,medium,100000042,case,7001,,,Case 7001 (5 Private Pilates): "
        "the practice system reports 3 of 5 sessions remaining but the exports add up to 4: check "
        "for appointments missing from the export or attached to another case.,client-services.csv,2"
    )
    assert (code, out.splitlines()) == (0, [header, finding])


def test_nookal_keeps_the_time_of_day_and_reads_its_0_1_cancelled_flag(tmp_path: Path) -> None:
    write(
        tmp_path,
        "appointments.csv",
        "ID,patientID,caseID,appointmentDate,appointmentStartTime,appointmentEndTime,cancelled,"
        "cancellationDate,DNA,arrived,practitionerID,locationID\n"
        "9001,82,C5,2026-10-05,09:30:00,10:00:00,0,,0,1,3,1\n"
        "9002,82,C5,2026-10-12,14:15:00,14:45:00,1,2026-10-11 16:02:00,0,0,3,1\n"
        "9003,82,C5,2026-10-19,09:30:00,10:00:00,1,,0,0,3,1\n"
        "9004,82,C5,2026-10-26,11:00:00,11:30:00,0,,1,0,3,1\n",
    )
    write(tmp_path, "cases.csv", "caseID,patientID,caseName,maxAppointments\nC5,82,Knee rehab,6\n")
    write(
        tmp_path,
        "invoices.csv",
        "invoiceID,patientID,invoiceDate,total\nI1,82,2026-10-05,75.00\nI2,82,2026-10-26,75.00\n",
    )
    write(
        tmp_path,
        "payments.csv",
        "paymentID,patientID,paymentDate,amount\nY1,82,2026-10-05,300.00\n",
    )
    code, out, _ = invoke("cases", str(tmp_path), "--source", "nookal-api")
    # 6 bought; 1 attended, 2 cancelled (not counted), 1 did not arrive (not counted): 5 remain
    assert (code, out.splitlines()) == (
        0,
        [
            CASES_HEADER,
            "C5,82,Knee rehab,6,1,1,0,2,1,5,0,active,",
        ],
    )
    code, out, _ = invoke("credit", str(tmp_path), "--source", "nookal-api")
    # $300 pays invoice I1 ($75) the day it is issued: $225 credit; I2 waits for a payment
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            '82,,300.00,0.00,150.00,0.00,225.00,75.00,,,"CREDIT_WITH_OPEN_INVOICES, UNAPPLIED_CREDIT"',
        ],
    )
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="nookal-api"))
    appointments = dataset.appointments
    assert appointments is not None
    assert [str(t) for t in appointments["starts_at"]] == [
        "2026-10-05 09:30:00",
        "2026-10-12 14:15:00",
        "2026-10-19 09:30:00",
        "2026-10-26 11:00:00",
    ]
    assert [str(t) for t in appointments["ends_at"]] == [
        "2026-10-05 10:00:00",
        "2026-10-12 14:45:00",
        "2026-10-19 10:00:00",
        "2026-10-26 11:30:00",
    ]
    # cancelled 1 + cancellationDate -> that date; cancelled 1 + blank date -> the start
    assert [str(t) for t in appointments["cancelled_at"]] == [
        "NaT",
        "2026-10-11 16:02:00",
        "2026-10-19 09:30:00",
        "NaT",
    ]


def test_jane_named_workbooks_are_read_by_their_kind_word(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(
        [
            "Appointment ID",
            "Patient ID",
            "Patient First Name",
            "Patient Last Name",
            "Start Date",
            "Start Time",
            "Treatment",
            "Package ID",
            "State",
        ]
    )
    for row in [
        ("A1", "P7", "Ana", "Lee", "Thu 1 Oct 2026", "9:00am", "Massage 60", "K1", "Arrived"),
        ("A2", "P7", "Ana", "Lee", "8 Oct 2026", "9:00am", "Massage 60", "K1", "No Show"),
        ("A3", "P7", "Ana", "Lee", "2026-10-15", "09:00", "Massage 60", "K1", "Cancelled"),
        ("A4", "P7", "Ana", "Lee", "2026-10-22", "09:00", "Massage 60", "K1", "Booked"),
    ]:
        sheet.append(list(row))
    book.save(tmp_path / "Harbour_Appointments_2026-10-01_2026-10-31.xlsx")
    write(
        tmp_path,
        "Harbour_Cases_2026-10-01_2026-10-31.csv",
        "case_id,patient_id,case_name,max_sessions,include_dna\nK1,P7,Massage 5-pack,5,true\n",
    )
    code, out, _ = invoke("cases", str(tmp_path), "--source", "jane", "--as-of", "2026-10-20")
    # 5 bought; attended 1 + no-show 1 (the package counts no-shows) + 1 booked ahead = 3;
    # the cancelled one is left out: 2 remain
    assert (code, out.splitlines()) == (
        0,
        [
            CASES_HEADER,
            "K1,P7,Massage 5-pack,5,3,2,1,0,1,2,0,active,",
        ],
    )
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="jane"))
    appointments = dataset.appointments
    assert appointments is not None
    rows = appointments[["appointment_id", "starts_at", "patient_name"]].itertuples(index=False)
    assert [(a, str(t), n) for a, t, n in rows] == [
        ("A1", "2026-10-01 09:00:00", "Ana Lee"),
        ("A2", "2026-10-08 09:00:00", "Ana Lee"),
        ("A4", "2026-10-22 09:00:00", "Ana Lee"),
    ]


def test_the_report_and_summary_name_the_preset_and_the_columns_file(tmp_path: Path) -> None:
    from pkgreport.reports.context import build_context
    from pkgreport.reports.summary import settings_record

    mindbody_exports(tmp_path)
    mine = tmp_path / "mine.toml"
    mine.write_text('[appointments]\n"Name" = ""\n', encoding="utf-8")
    result = pipeline.run(
        settings_from(input_dir=tmp_path, source="mindbody-api", columns_file=mine)
    )
    assert (
        dict(build_context(result).settings)["Column mapping"] == "mindbody-api preset + mine.toml"
    )
    summary = settings_record(result)
    assert (summary["source"], summary["columns"]) == ("mindbody-api", "mine.toml")


# --- messages about a preset's lines name the preset ---------------------------------------------

JANE_APPOINTMENTS = (
    "Appointment ID,Patient ID,Patient First Name,Patient Last Name,Start Date,Treatment,"
    "Package ID,State\nA1,P7,Ana,Lee,2026-10-01,Massage 60,K1,Arrived\n"
)


def test_a_column_a_preset_names_that_the_file_lacks_names_the_preset(tmp_path: Path) -> None:
    write(tmp_path, "Harbour_Appointments_2026-10-01_2026-10-31.csv", JANE_APPOINTMENTS)
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="jane"))
    assert [(i.severity, i.file, i.column, i.message) for i in dataset.issues] == [
        (
            "error",
            "Harbour_Appointments_2026-10-01_2026-10-31.csv",
            "Start Time",
            "the jane preset's [appointments.join] starts_at names the column 'Start Time', "
            "which this file does not have. Columns found: Appointment ID, Patient ID, Patient "
            "First Name, Patient Last Name, Start Date, Treatment, Package ID, State. Export the "
            "file with that column, or give the header your file has in a mapping file of your "
            "own (start from `pkgreport mapping --show jane`) given with --columns",
        )
    ]


def test_a_line_the_user_s_file_overrides_is_the_user_s_in_the_message(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    write(exports, "Harbour_Appointments_2026-10-01_2026-10-31.csv", JANE_APPOINTMENTS)
    mine = tmp_path / "mine.toml"
    mine.write_text('[appointments.join]\nstarts_at = ["Start Date", "Time"]\n', encoding="utf-8")
    dataset = pipeline.load_dataset(
        settings_from(input_dir=exports, source="jane", columns_file=mine)
    )
    assert [i.message for i in dataset.issues] == [
        "the mapping file's [appointments.join] starts_at names the column 'Time', which this "
        "file does not have. Columns found: Appointment ID, Patient ID, Patient First Name, "
        "Patient Last Name, Start Date, Treatment, Package ID, State. Correct the name in the "
        "mapping file, or export that column"
    ]


def test_rows_a_preset_skips_are_counted_in_a_line_naming_the_preset(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Harbour_Appointments_2026-10-01_2026-10-31.csv",
        "Appointment ID,Patient ID,Patient First Name,Patient Last Name,Start Date,Start Time,"
        "Treatment,Package ID,State\n"
        "A1,P7,Ana,Lee,2026-10-01,09:00,Massage 60,K1,Arrived\n"
        "A2,P7,Ana,Lee,2026-10-08,09:00,Massage 60,K1,Cancelled\n",
    )
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="jane"))
    assert [(i.severity, i.message) for i in dataset.issues] == [
        (
            "info",
            "1 row was left out as the jane preset's [appointments.skip] says (row 3)",
        )
    ]
    assert list(dataset.excluded["reason"]) == [
        "State is Cancelled: left out as the jane preset's [appointments.skip] says"
    ]


# --- sales, payments and credit from the presets that cover them ---------------------------------


def mindbody_sales(folder: Path, balance: str = "150.00") -> None:
    """Client 100000042 pays $400 into their account (sale 9001), buys 5 private sessions for
    $250 out of that balance (9002), and pays a $15 late-cancel fee in cash (9003). Mindbody
    reports an account balance of `balance`."""
    write(
        folder,
        "sales.csv",
        "SaleDetailId,Id,IsService,Description,UnitPrice,Quantity,TotalAmount,Returned,Sale.Id,"
        "Sale.SaleDateTime,Sale.ClientId,Sale.LocationId\n"
        "1,0,false,Account Payment,400.00,1,400.00,false,9001,2026-09-30T10:00:00,100000042,1\n"
        "2,7001,true,5 Private Pilates,250.00,1,250.00,false,9002,2026-09-30T10:05:00,"
        "100000042,1\n"
        "3,45,true,Late Cancel Fee,15.00,1,15.00,false,9003,2026-10-08T10:00:00,100000042,1\n",
    )
    write(
        folder,
        "sale-payments.csv",
        "Id,Amount,Method,Type,Notes,TransactionId,Sale.Id,Sale.SaleDateTime,Sale.ClientId\n"
        "51,400.00,1,CreditCard,,88001,9001,2026-09-30T10:00:00,100000042\n"
        "52,250.00,4,Account,,,9002,2026-09-30T10:05:00,100000042\n"
        "53,15.00,2,Cash,,,9003,2026-10-08T10:00:00,100000042\n",
    )
    write(
        folder,
        "client-account-balances.csv",
        f"Id,FirstName,LastName,AccountBalance\n100000042,Ana,Lee,{balance}\n",
    )


def test_mindbody_sales_and_payments_give_hand_computed_credit(tmp_path: Path) -> None:
    mindbody_sales(tmp_path)
    code, out, _ = invoke("credit", str(tmp_path), "--source", "mindbody-api")
    # Received: $400 card (the account payment) + $15 cash = $415; the $250 paid out of the
    # account balance is not money received again. Invoiced: the $250 sessions + the $15 fee =
    # $265 (the $400 account payment is no sale). Credit: 415 - 265 = $150, as Mindbody's
    # balance says. Both invoices are paid on the day they are issued, so none of it is
    # applied from earlier credit.
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "100000042,Ana Lee,415.00,0.00,265.00,0.00,150.00,0.00,150.00,0.00,UNAPPLIED_CREDIT",
        ],
    )


def test_mindbody_s_own_account_balance_is_checked_against_the_credit(tmp_path: Path) -> None:
    mindbody_sales(tmp_path, balance="140.00")
    code, out, _ = invoke("credit", str(tmp_path), "--source", "mindbody-api")
    # Mindbody says $140, the exports add up to $150: a difference of 140 - 150 = -$10.
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "100000042,Ana Lee,415.00,0.00,265.00,0.00,150.00,0.00,140.00,-10.00,"
            '"REPORTED_CREDIT_MISMATCH, UNAPPLIED_CREDIT"',
        ],
    )


def _credit_advice(folder: Path, *options: str) -> list[str]:
    code, out, err = invoke("credit", str(folder), "--findings", "--format", "json", *options)
    assert code == 0, err
    return [f["message"] for f in json.loads(out) if f["code"] == "REPORTED_CREDIT_MISMATCH"]


def test_a_preset_s_system_is_named_in_the_findings_advice(tmp_path: Path) -> None:
    mindbody_sales(tmp_path, balance="140.00")
    assert _credit_advice(tmp_path, "--source", "mindbody-api") == [
        "Mindbody reports $140.00 of unapplied credit but the exports add up to $150.00: check "
        "for payments, refunds or allocations missing from the exports."
    ]


def test_a_user_s_own_mapping_names_no_system_in_the_advice(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    mindbody_sales(exports, balance="140.00")
    mine = tmp_path / "mine.toml"
    mine.write_text(invoke("mapping", "--show", "mindbody-api")[1], encoding="utf-8")
    assert _credit_advice(exports, "--columns", str(mine)) == [
        "Your practice system reports $140.00 of unapplied credit but the exports add up to "
        "$150.00: check for payments, refunds or allocations missing from the exports."
    ]


def test_every_preset_names_the_system_it_reads() -> None:
    assert set(SYSTEMS) == set(preset_names())


def test_jane_sales_transactions_and_applied_payments_give_hand_computed_credit(
    tmp_path: Path,
) -> None:
    """Ana (P7) pays $300 on 1 Oct; Jane applies $90 of it to each of two massages."""
    write(
        tmp_path,
        "Harbour_Sales_2026-10-01_2026-10-31.csv",
        "Invoice #,Invoice Date,Patient ID,Patient First Name,Patient Last Name,Item,"
        "Staff Member,Total\n"
        "J1,Thu 1 Oct 2026,P7,Ana,Lee,Massage 60,Sam Wu,$90.00\n"
        "J2,8 Oct 2026,P7,Ana,Lee,Massage 60,Sam Wu,$90.00\n",
    )
    write(
        tmp_path,
        "Harbour_Transactions_2026-10-01_2026-10-31.csv",
        "Payment ID,Received At,Patient ID,Patient First Name,Patient Last Name,Payment Method,"
        "Amount\nY1,Thu 1 Oct 2026 9:55am,P7,Ana,Lee,Visa,$300.00\n",
    )
    # Jane's Applied & Unapplied Payments report, renamed to say what it holds.
    write(
        tmp_path,
        "Harbour_Allocations_2026-10-01_2026-10-31.csv",
        "Applied Date,Payment ID,Invoice #,Applied\n"
        "Thu 1 Oct 2026,Y1,J1,$90.00\n"
        "8 Oct 2026,Y1,J2,$90.00\n",
    )
    code, out, _ = invoke("credit", str(tmp_path), "--source", "jane")
    # Received $300; invoiced 90 + 90 = $180; J1 is paid the day the money comes in, J2 a
    # week later out of what was left ($90 applied from credit): 300 - 180 = $120 of credit.
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "P7,,300.00,0.00,180.00,90.00,120.00,0.00,,,UNAPPLIED_CREDIT",
        ],
    )
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="jane"))
    assert [(f.path.name, f.kind) for f in dataset.files] == [
        ("Harbour_Allocations_2026-10-01_2026-10-31.csv", "allocations"),
        ("Harbour_Sales_2026-10-01_2026-10-31.csv", "invoices"),
        ("Harbour_Transactions_2026-10-01_2026-10-31.csv", "payments"),
    ]
    assert dataset.payments is not None
    assert [str(t) for t in dataset.payments["paid_at"]] == ["2026-10-01 09:55:00"]


def test_a_date_not_in_the_preset_s_formats_names_the_preset(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Harbour_Transactions_2026-10-01_2026-10-31.csv",
        "Payment ID,Received At,Patient ID,Payment Method,Amount\nY1,1/10/2026,P7,Visa,$300.00\n",
    )
    dataset = pipeline.load_dataset(settings_from(input_dir=tmp_path, source="jane"))
    errors = [i for i in dataset.issues if i.severity == "error"]
    assert [(i.file, i.row, i.column, i.value, i.message) for i in errors] == [
        (
            "Harbour_Transactions_2026-10-01_2026-10-31.csv",
            2,
            "Received At",
            "1/10/2026",
            "Received At is not a date written as %a %d %b %Y %I:%M%p (like Mon 05 Oct 2026 "
            "02:30PM) or %d %b %Y %I:%M%p (like 05 Oct 2026 02:30PM) or %d %b %Y (like 05 Oct "
            "2026), the jane preset's [payments.formats] date, nor as ISO 2026-10-05: correct the "
            "date, or the format in a mapping file of your own (start from `pkgreport mapping "
            "--show jane`) given with --columns",
        )
    ]


def cliniko_exports(folder: Path, reported_credit: str) -> None:
    """Cliniko's data exports, their header rows as Cliniko writes them: Ana (patient 1000001)
    has a 5-session package (case 5000001, did-not-arrive included) and pays $300 on 1 Oct."""
    from pkgreport.demo.formats import (
        CASE_HEADERS,
        CLINIKO_APPOINTMENT_HEADERS,
        CLINIKO_INVOICE_HEADERS,
        PATIENT_HEADERS,
        PAYMENT_HEADERS,
    )

    def export(name: str, headers: tuple[str, ...], rows: list[dict[str, str]]) -> None:
        lines = [",".join(headers)] + [",".join(row.get(h, "") for h in headers) for row in rows]
        write(folder, name, "\n".join(lines) + "\n")

    visit = {"Patient ID(s)": "1000001", "Patient Case": "5000001", "Number of Patients": "1"}
    export(
        "Appointments-Cliniko-20261101.csv",
        CLINIKO_APPOINTMENT_HEADERS,
        [
            # attended; did not arrive (counted: the case includes DNA); cancelled (not counted)
            {**visit, "Appointment ID": "A1", "Start Time": "2026-10-02 09:00:00 +1000"},
            {
                **visit,
                "Appointment ID": "A2",
                "Start Time": "2026-10-09 09:00:00 +1100",
                "Did Not Arrive": "TRUE",
            },
            {
                **visit,
                "Appointment ID": "A3",
                "Start Time": "2026-10-16 09:00:00 +1100",
                "Cancellation Time": "2026-10-15 10:00:00 +1100",
            },
        ],
    )
    export(
        "Cases-Cliniko-20261101.csv",
        CASE_HEADERS,
        [
            {
                "ID": "5000001",
                "Patient ID": "1000001",
                "Name": "Physio 5-pack",
                "Max Sessions": "5",
                "Include Cancelled Attendees": "No",
                "Include DNA Attendees": "Yes",
                "Issue Date": "1/10/2026",
            }
        ],
    )
    export(
        "Invoices-Cliniko-20261101.csv",
        CLINIKO_INVOICE_HEADERS,
        [
            {
                "ID": "300000001",
                "Invoice Number": "100001",
                "Issue Date": "2/10/2026",
                "Invoice Amount": "90.00",
                "Status": "Paid",
                "Patient ID": "1000001",
                # Paid out of Ana's account credit, as Cliniko's invoice says
                "Outstanding Balance": "0.00",
                "Payments Applied": "0.00",
                "Credit Applied": "90.00",
            }
        ],
    )
    export(
        "Payments-Cliniko-20261101.csv",
        PAYMENT_HEADERS,
        [
            {
                "ID": "400000001",
                "Patient ID": "1000001",
                "Payment Date": "01/10/2026 10:00",
                "Amount": "$300.00",
            }
        ],
    )
    export(
        "Patients-Cliniko-20261101.csv",
        PATIENT_HEADERS,
        [
            {
                "ID": "1000001",
                "First Name": "Ana",
                "Last Name": "Lee",
                "Unapplied Account Credit": reported_credit,
            }
        ],
    )


def test_cliniko_exports_give_hand_computed_tallies_and_credit(tmp_path: Path) -> None:
    cliniko_exports(tmp_path, reported_credit="$210.00")
    code, out, _ = invoke("cases", str(tmp_path), "--source", "cliniko")
    # counted = attended 1 + did not arrive 1 = 2 of 5 (the "attended" column holds both, as
    # they are past): 3 remain, the cancellation not counted
    assert (code, out.splitlines()) == (
        0,
        [CASES_HEADER, "5000001,1000001,Physio 5-pack,5,2,2,0,1,1,3,0,active,"],
    )
    code, out, _ = invoke("credit", str(tmp_path), "--source", "cliniko")
    # $300 received on 1 Oct; the $90 invoice of 2 Oct is paid out of it (its Credit Applied):
    # 300 - 90 = $210 left, as Cliniko's Unapplied Account Credit says
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "1000001,Ana Lee,300.00,0.00,90.00,90.00,210.00,0.00,210.00,0.00,UNAPPLIED_CREDIT",
        ],
    )


def test_cliniko_s_own_unapplied_credit_is_checked_against_the_credit(tmp_path: Path) -> None:
    cliniko_exports(tmp_path, reported_credit="$200.00")
    code, out, _ = invoke("credit", str(tmp_path), "--source", "cliniko")
    # Cliniko says $200, the exports add up to $210: a difference of 200 - 210 = -$10
    assert (code, out.splitlines()) == (
        0,
        [
            CREDIT_HEADER,
            "1000001,Ana Lee,300.00,0.00,90.00,90.00,210.00,0.00,200.00,-10.00,"
            '"REPORTED_CREDIT_MISMATCH, UNAPPLIED_CREDIT"',
        ],
    )
