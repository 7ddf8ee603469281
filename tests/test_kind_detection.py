"""The kind of an export: from any word of its file name, else from its header."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.discovery import discover_inputs, kind_of, kinds_named
from pkgreport.inputs.loading import load_folder

APPOINTMENTS = "appointment_id,patient_id,starts_at\n1,7,2026-10-01 09:00\n"
INVOICES = (
    "Invoice Number,Issue Date,Status,Patient ID,ID,Invoice Amount\n101,5/10/2026,Paid,7,9001,90\n"
)


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("Appointments-Cliniko-20261101.csv", ("appointments",)),
        ("Harbour_Appointments_2026-10.xlsx", ("appointments",)),
        # Jane's export naming: <Clinic>_<Kind>_<from>_<to>.xlsx
        ("Harbour Physio_Appointments_2026-10-01_2026-10-31.xlsx", ("appointments",)),
        ("invoices_2026-10.xlsx", ("invoices",)),
        ("appointment.csv", ("appointments",)),
        ("CASES.csv", ("cases",)),
        ("case list.tsv", ("cases",)),
        ("Payment-export.csv", ("payments",)),
        ("patients2026.csv", ("patients",)),
        ("2026-appointments.csv", ("appointments",)),
        ("_appointments.csv", ("appointments",)),
        # A singular word describes; the plural names the kind.
        ("Patient_Cases.csv", ("cases",)),
        ("PaymentAllocations.xlsx", ("allocations",)),
        ("Patient First Physio_Invoices.csv", ("invoices",)),
        # Two plurals, or two singulars and no plural, name two kinds.
        ("payments_invoices.csv", ("invoices", "payments")),
        ("patient invoice.csv", ("invoices", "patients")),
        ("notes.csv", ()),
        ("Showcase.csv", ()),
    ],
)
def test_kinds_named_reads_every_word_of_the_name(name: str, kinds: tuple[str, ...]) -> None:
    assert kinds_named(Path(name)) == kinds
    assert kind_of(Path(name)) == (kinds[0] if len(kinds) == 1 else None)


def test_a_name_naming_two_kinds_is_an_error_that_says_how_to_name_it(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_text(APPOINTMENTS)
    (tmp_path / "Harbour_Payments_Invoices_2026-10.csv").write_text(INVOICES)
    tables, issues = load_folder(tmp_path, Settings())
    assert [t.file.name for t in tables] == ["appointments.csv"]
    assert issues == [
        Issue(
            "error",
            "Harbour_Payments_Invoices_2026-10.csv",
            None,
            None,
            None,
            "the file name names more than one kind (invoices, payments), so pkgreport cannot "
            "tell which it holds; its columns are those of invoices: rename it so that one kind "
            "word appears, e.g. 'invoices-Harbour-2026-10.csv' (or move it out of the folder if it "
            "is not an export)",
        )
    ]


def test_a_name_naming_two_kinds_without_a_telling_header_offers_the_first(tmp_path: Path) -> None:
    (tmp_path / "payments invoices.csv").write_text("Clinic,Room\nHarbour,1\n")
    _, issues = discover_inputs(tmp_path, judge=lambda path: ())
    assert issues == [
        Issue(
            "error",
            "payments invoices.csv",
            None,
            None,
            None,
            "the file name names more than one kind (invoices, payments), so pkgreport cannot "
            "tell which it holds: rename it so that one kind word appears, e.g. 'invoices.csv' (or "
            "move it out of the folder if it is not an export)",
        )
    ]


def test_a_header_fitting_two_kinds_equally_is_an_error_that_says_how_to_name_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "appointments.csv").write_text(APPOINTMENTS)
    (tmp_path / "export.csv").write_text(
        "Practitioner,Business,Archived At,Deleted At\nDr A,Harbour,,\n"
    )
    tables, issues = load_folder(tmp_path, Settings())
    assert [t.file.name for t in tables] == ["appointments.csv"]
    assert issues == [
        Issue(
            "error",
            "export.csv",
            None,
            None,
            None,
            "the file name names no kind, and its columns fit appointments and invoices equally, "
            "so pkgreport cannot tell which it holds: rename it to start with its kind, e.g. "
            "'appointments-export.csv' or 'invoices-export.csv' (or move it out of the folder if it "
            "is not an export)",
        )
    ]


def test_the_header_is_judged_with_the_mapping_s_renames(tmp_path: Path) -> None:
    (tmp_path / "october.csv").write_text(
        "Visit Ref,Client Ref,Visit Start\n1,7,2026-10-01 09:00\n"
    )
    column_map = {
        "appointments": {
            "Visit Ref": "appointment_id",
            "Client Ref": "patient_id",
            "Visit Start": "starts_at",
        }
    }
    tables, issues = load_folder(tmp_path, Settings(column_map=column_map))
    assert [(t.file.kind, t.file.name) for t in tables] == [("appointments", "october.csv")]
    assert issues == [
        Issue(
            "info",
            "october.csv",
            None,
            None,
            None,
            "read as appointments: the file name names no kind, and its columns are those of "
            "appointments (name it e.g. 'appointments-october.csv' to say so)",
        ),
    ]


def test_a_clinic_named_export_is_read_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "Harbour_Appointments_2026-10-01_2026-10-31.csv").write_text(
        APPOINTMENTS.replace("\n1,7,", ",case_id\n1,7,").rstrip("\n") + ",C1\n"
    )
    (tmp_path / "Harbour_Cases_2026-10-01_2026-10-31.csv").write_text(
        "case_id,patient_id,max_sessions\nC1,7,4\n"
    )
    result = CliRunner().invoke(cli, ["cases", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        (
            "case_id,patient_id,case_name,max_sessions,counted,attended,upcoming,cancelled,dna,"
            "remaining,over_booked_by,status,findings"
        ),
        "C1,7,,4,1,1,0,0,0,3,0,active,",
    ]


def test_columns_a_mapping_joins_links_flags_or_splits_off_count_for_the_file_s_own_kind(
    tmp_path: Path,
) -> None:
    (tmp_path / "october.csv").write_text(
        "Id,Visit Day,Visit Hour,Client Link,Late\n1,2026-10-01,09:00,https://x/clients/7,false\n"
    )
    (tmp_path / "receipts.csv").write_text(
        "Receipt,Client,Paid On,Sum,Invoice Ref,Applied\nR1,7,2026-10-01,90,I1,90\n"
    )
    column_map = {
        "appointments": {
            "join": {"starts_at": ["Visit Day", "Visit Hour"]},
            "last_segment": {"patient_id": "Client Link"},
            "flags": {"cancelled_at": {"flag": "Late"}},
        },
        "payments": {
            "Receipt": "payment_id",
            "Client": "patient_id",
            "Paid On": "paid_at",
            "Sum": "amount",
            "split": {
                "allocations": {
                    "invoice_id": "Invoice Ref",
                    "amount": "Applied",
                    "payment_id": "Receipt",
                }
            },
        },
    }
    tables, _ = load_folder(tmp_path, Settings(column_map=column_map))
    assert [(t.file.kind, t.file.name) for t in tables] == [
        ("appointments", "october.csv"),
        ("payments", "receipts.csv"),
    ]
    tables, issues = load_folder(tmp_path, Settings())
    assert tables == [] and [i.severity for i in issues] == ["warning", "warning", "error"]
