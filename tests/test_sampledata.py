"""The sample-data generator: determinism, headers, day-first dates, planted findings, a consistent ledger."""

from __future__ import annotations

import csv
import io
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_validation_cliniko import APPOINTMENT_HEADERS, INVOICE_HEADERS

from pkgreport.demo import formats
from pkgreport.demo.generate import (
    PLANTED,
    PLANTED_CREDIT,
    PLANTS,
    build_tables,
    export_files,
    generate,
)
from pkgreport.errors import UsageError
from pkgreport.inputs.schemas import COLUMNS, KNOWN_UNUSED, normalise_header, spec_for

ALL_CODES = {
    "OVER_BOOKED",
    "EXPIRED_WITH_SESSIONS_LEFT",
    "OUTSIDE_CASE_DATES",
    "BOOKED_AFTER_CLOSE",
    "NEARLY_USED_UP",
    "SEVERAL_OPEN_PACKAGES",
    "UNAPPLIED_CREDIT",
    "CREDIT_WITH_OPEN_INVOICES",
    "DORMANT_CREDIT",
    "REPORTED_CREDIT_MISMATCH",
    "INVOICE_STATUS_MISMATCH",
    "INVOICE_BALANCE_MISMATCH",
    "PACKAGE_SESSION_CHARGED",
}
DATE_COLUMNS = {
    "appointments": ["Date", "Archived At"],
    "cases": ["Issue Date", "Expiry Date", "Closed At", "Archived At"],
    "invoices": ["Issue Date", "Date Closed", "Appointment Time"],
    "payments": ["Payment Date", "Deleted At"],
    "patients": [],
}
# Cliniko's invoices export does not pad (`5/11/2022 9:30`); the other files do.
DAY_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})( \d{1,2}:\d{2})?$")
# Cliniko's appointment times: local time with its UTC offset.
ZONED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:00 \+1[01]00$")
ZONED_COLUMNS = ["Start Time", "End Time", "Cancellation Time", "Created At"]


def read_sample(paths: dict[str, Path]) -> dict[str, list[dict[str, str]]]:
    out = {}
    for kind, path in paths.items():
        with path.open(encoding="utf-8", newline="") as handle:
            out[kind] = list(csv.DictReader(handle))
    return out


def unwrap(cell: str) -> str:
    """Cliniko's Excel-safe id cell `="900001"` -> `900001`."""
    return cell[2:-1] if cell.startswith('="') and cell.endswith('"') else cell


def attendees(appointment: dict[str, str]) -> list[str]:
    """The patient ids of an appointments row (none for an Unavailable block)."""
    return [p.strip() for p in appointment["Patient ID(s)"].split(",") if p.strip()]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    folder = tmp_path_factory.mktemp("sample")
    generate(folder)
    return read_sample(export_files(folder))


# ------------------------------------------------------------------------------------------------
# A plain reference ledger, one event at a time, written independently of the generator.


def cents(text: str) -> int:
    text = text.replace("$", "").replace(",", "")
    negative = text.startswith("-")
    whole, _, part = text.lstrip("-").partition(".")
    value = int(whole) * 100 + int((part + "00")[:2])
    return -value if negative else value


def when(text: str) -> datetime:
    """A day-first date or time, or a Cliniko appointment time (clinic-local, offset dropped)."""
    if text[4:5] == "-":
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").replace(tzinfo=None)
    return datetime.strptime(text, "%d/%m/%Y %H:%M" if " " in text else "%d/%m/%Y")


def reference_ledger(
    rows: dict[str, list[dict[str, str]]],
) -> tuple[dict[str, int], dict[str, int]]:
    """Oldest-first allocation with credit taken from each invoice's Credit Applied, as
    DOMAIN.md and the README describe it; returns (credit, outstanding).

    An invoice's `Credit Applied` takes that much of the patient's credit on its `Date Closed`
    (else its issue date). A payment pays, with its own money, the open invoices issued on or
    before its date, oldest first; what is left becomes credit (a $0 payment moves nothing). A
    credit note creates credit; a negative payment pays credit out. Deleted rows are ignored.
    """
    events: list[tuple[datetime, int, str, dict[str, str]]] = []
    for inv in rows["invoices"]:
        events.append((when(inv["Issue Date"]), 0, "invoice", inv))
        if cents(inv["Credit Applied"]) > 0:
            at = max(when(inv["Date Closed"] or inv["Issue Date"]), when(inv["Issue Date"]))
            events.append((at, 2, "credit", inv))
    for pay in rows["payments"]:
        if not pay["Deleted At"]:
            events.append((when(pay["Payment Date"]), 1, "payment", pay))
    invoices = {inv["ID"]: inv for inv in rows["invoices"]}
    events.sort(key=lambda e: (e[0], e[1], e[3]["ID"]))

    credit: dict[str, int] = defaultdict(int)
    outstanding: dict[str, int] = {}
    issued: dict[str, datetime] = {}
    for at, _, what, row in events:
        if what == "invoice":
            total = cents(row["Invoice Amount"])
            issued[row["ID"]] = at
            outstanding[row["ID"]] = max(total, 0)
            if total < 0:
                credit[row["Patient ID"]] += -total
        elif what == "credit":
            amount = cents(row["Credit Applied"])
            credit[row["Patient ID"]] -= amount
            outstanding[row["ID"]] -= amount
            assert credit[row["Patient ID"]] >= 0 and outstanding[row["ID"]] >= 0, row
        else:
            pid, amount = row["Patient ID"], cents(row["Amount"])
            if amount < 0:
                credit[pid] += amount
                assert credit[pid] >= 0, row
                continue
            open_ids = sorted(
                (issued[i], i)
                for i, left in outstanding.items()
                if left > 0 and invoices[i]["Patient ID"] == pid and issued[i].date() <= at.date()
            )
            for _, inv_id in open_ids:
                take = min(amount, outstanding[inv_id])
                outstanding[inv_id] -= take
                amount -= take
            credit[pid] += amount
    return dict(credit), outstanding


def invoices_off_the_ledger(
    rows: dict[str, list[dict[str, str]]],
    differs: Callable[[dict[str, str], int], bool],
) -> list[str]:
    """Ids of the invoices whose exported figures `differs` from what the reference leaves owing."""
    _, outstanding = reference_ledger(rows)
    return sorted(row["ID"] for row in rows["invoices"] if differs(row, outstanding[row["ID"]]))


def computed_status(total: int, left: int) -> str:
    if total < 0:
        return ""
    return "Open" if left > 0 else "Paid"


def case_tally(rows: dict[str, list[dict[str, str]]], as_of: date) -> dict[str, dict[str, object]]:
    """Per case: counted, remaining, and which appointment-level problems it has."""
    cases = {c["ID"]: c for c in rows["cases"]}
    out = {cid: {"counted": 0, "outside": False, "after_close": False} for cid in cases}
    for appt in rows["appointments"]:
        cid = appt["Patient Case"]
        if not cid:
            continue
        case = cases[cid]
        if appt["Archived At"]:
            continue
        if appt["Cancellation Time"] and case["Include Cancelled Attendees"] != "Yes":
            continue
        if appt["Did Not Arrive"] == "TRUE" and case["Include DNA Attendees"] != "Yes":
            continue
        out[cid]["counted"] += 1  # type: ignore[operator]
        start = when(appt["Start Time"])
        if case["Issue Date"] and start.date() < when(case["Issue Date"]).date():
            out[cid]["outside"] = True
        if case["Expiry Date"] and start.date() > when(case["Expiry Date"]).date():
            out[cid]["outside"] = True
        if case["Closed At"] and start > when(case["Closed At"]):
            out[cid]["after_close"] = True
    for cid, case in cases.items():
        t = out[cid]
        limited = case["Max Sessions"] != ""
        t["over"] = limited and t["counted"] > int(case["Max Sessions"])  # type: ignore[operator]
        t["remaining"] = int(case["Max Sessions"]) - t["counted"] if limited else None  # type: ignore[operator]
        t["expired"] = bool(case["Expiry Date"]) and when(case["Expiry Date"]).date() < as_of
        t["closed"] = bool(case["Closed At"]) and when(case["Closed At"]).date() <= as_of
        t["active"] = (
            limited
            and not t["over"]
            and not t["expired"]
            and not t["closed"]
            and t["remaining"] > 0
        )
    return out


# ------------------------------------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", patients=120, months=2, seed=11)
    second = generate(tmp_path / "b", patients=120, months=2, seed=11)
    third = generate(tmp_path / "c", patients=120, months=2, seed=12)
    assert [p.name for p in first] == [p.name for p in second] == [p.name for p in third]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    # Every record ends in CRLF, as Cliniko's exports do.
    assert all(p.read_bytes().count(b"\n") == p.read_bytes().count(b"\r\n") > 1 for p in first)
    differ = [a.name for a, c in zip(first, third, strict=True) if a.read_bytes() != c.read_bytes()]
    assert "Appointments-Cliniko-20261001.csv" in differ
    assert "Payments-Cliniko-20261001.csv" in differ


def test_file_names_carry_the_export_date_and_only_those_files_are_written(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    paths = generate(tmp_path, patients=10, months=1, start=date(2025, 1, 31))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"{stem}-Cliniko-20250228.csv"
            for stem in ("Appointments", "Cases", "Invoices", "Payments", "Patients")
        ]
        + ["notes.txt"]
    )
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert all(p.stat().st_mode & 0o044 for p in paths)


def test_headers_all_map_to_exactly_one_canonical_column(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    assert formats.CLINIKO_APPOINTMENT_HEADERS == tuple(APPOINTMENT_HEADERS)
    assert formats.CLINIKO_INVOICE_HEADERS == tuple(INVOICE_HEADERS)
    for kind, headers in formats.HEADERS.items():
        specs = spec_for(kind)
        unused = {normalise_header(h) for h in KNOWN_UNUSED.get(kind, ())}
        names = {}
        for header in headers:
            matches = [
                c.name
                for c in COLUMNS[kind]
                if normalise_header(header) in {normalise_header(a) for a in (c.name, *c.aliases)}
            ]
            # Each header is read as exactly one column, or is one Cliniko writes that is unused.
            assert len(matches) == 1 or (not matches and normalise_header(header) in unused), (
                kind,
                header,
                matches,
            )
            if matches:
                names[header] = matches[0]
        assert len(set(names.values())) == len(names), kind
        required = {c.name for c in specs.values() if c.required}
        assert required <= set(names.values()), kind
        assert list(sample[kind][0].keys()) == list(headers)


def test_dates_are_day_first(sample: dict[str, list[dict[str, str]]]) -> None:
    for row in sample["appointments"]:
        for column in ZONED_COLUMNS:
            assert row[column] == "" or ZONED.match(row[column]), (column, row[column])
            # Every appointment starts at 11:00 or later: the same day in Sydney and in UTC.
            assert row[column] == "" or column != "Start Time" or when(row[column]).hour >= 11
    days_over_12 = 0
    for kind, columns in DATE_COLUMNS.items():
        for row in sample[kind]:
            for column in columns:
                value = row[column]
                if value == "":
                    continue
                match = DAY_FIRST.match(value)
                assert match, (kind, column, value)
                when(value)  # a real calendar date, read day first
                days_over_12 += int(match.group(1)) > 12
    assert days_over_12 > 100  # unambiguous: a month-first reader would fail on these


def test_money_cells_read_back_through_csv_quoting(sample: dict[str, list[dict[str, str]]]) -> None:
    credits = {unwrap(row["ID"]): row["Unapplied Account Credit"] for row in sample["patients"]}
    assert credits["900022"] == "$665.00"
    assert credits["900011"] == "$475.00"
    assert credits["900001"] == ""  # Cliniko leaves no credit blank
    assert all(re.fullmatch(r"(-?\$\d{1,3}(,\d{3})*\.\d{2})?", v) for v in credits.values())
    totals = [row["Invoice Amount"] for row in sample["invoices"]]
    assert all(re.fullmatch(r"-?\d+\.\d{2}", v) for v in totals)
    assert "-120.00" in totals and "0.00" in totals and "800.00" in totals
    amounts = [row["Amount"] for row in sample["payments"]]
    assert "-$285.00" in amounts and "$0.00" in amounts and "$950.00" in amounts


def test_ids_are_unique_and_references_resolve(sample: dict[str, list[dict[str, str]]]) -> None:
    id_column = {"appointments": "Appointment ID"}
    for kind in ("appointments", "cases", "invoices", "payments", "patients"):
        ids = [unwrap(row[id_column.get(kind, "ID")]) for row in sample[kind]]
        assert len(ids) == len(set(ids)), kind
        assert all(i.isdigit() for i in ids), kind
    assert all(row["ID"].startswith('="') for row in sample["patients"])
    patients = {unwrap(row["ID"]) for row in sample["patients"]}
    cases = {row["ID"]: row["Patient ID"] for row in sample["cases"]}
    appointments = {row["Appointment ID"]: row for row in sample["appointments"]}
    invoices = {row["ID"]: row for row in sample["invoices"]}
    for kind in ("cases", "invoices", "payments"):
        assert {row["Patient ID"] for row in sample[kind]} <= patients, kind
    groups = [row for row in sample["appointments"] if len(attendees(row)) > 1]
    assert [attendees(row) for row in groups] == [["900016", "900021"]]
    assert [row["Number of Patients"] for row in groups] == ["2"]
    blocks = [row for row in sample["appointments"] if not attendees(row)]
    assert [
        (r["Appointment Type"], r["Patient Arrived"], r["Number of Patients"]) for r in blocks
    ] == [("Unavailable - Unavailable", "N/A", "0")]
    for row in sample["appointments"]:
        assert set(attendees(row)) <= patients
        assert row["Patient Case"] == "" or [cases[row["Patient Case"]]] == attendees(row)
    numbers = {row["Invoice Number"]: row for row in sample["invoices"]}
    for row in sample["invoices"]:
        if row["Appointment ID"]:
            appointment = appointments[row["Appointment ID"]]
            assert attendees(appointment) == [row["Patient ID"]]
            # The appointments export names the invoice, as Cliniko's does.
            assert appointment["Invoice Number"] == row["Invoice Number"]
        assert row["Patient Case"] == "" or cases[row["Patient Case"]] == row["Patient ID"]
        if row["Original Invoice"]:
            original = invoices[row["Original Invoice"]]
            assert cents(row["Invoice Amount"]) == -cents(original["Invoice Amount"]) < 0
    for row in sample["appointments"]:
        assert (
            row["Invoice Number"] == ""
            or numbers[row["Invoice Number"]]["Appointment ID"] == (row["Appointment ID"])
        )
    assert len(numbers) == len(sample["invoices"])


def test_cliniko_s_own_invoice_figures_agree_with_the_payments_except_where_planted(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    wrong = invoices_off_the_ledger(
        sample,
        lambda row, left: (
            cents(row["Invoice Amount"]) > 0 and cents(row["Outstanding Balance"]) != left
        ),
    )
    assert wrong == PLANTED["INVOICE_BALANCE_MISMATCH"]
    for row in sample["invoices"]:
        total = cents(row["Invoice Amount"])
        assert cents(row["Sub-Total Amount"]) + cents(row["Tax Amount"]) == total
        if total > 0 and row["ID"] not in wrong:
            assert total == (
                cents(row["Payments Applied"])
                + cents(row["Credit Applied"])
                + cents(row["Outstanding Balance"])
            ), row


def test_every_code_is_planted_and_its_subjects_are_in_the_files(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    assert set(PLANTED) == ALL_CODES
    assert "NEGATIVE_CREDIT" not in PLANTED
    assert PLANTED["OVER_BOOKED"] == ["490001"]
    assert PLANTED["DORMANT_CREDIT"] == ["900009", "900010"]
    ids = {
        "case": {row["ID"] for row in sample["cases"]},
        "patient": {unwrap(row["ID"]) for row in sample["patients"]},
        "invoice": {row["ID"] for row in sample["invoices"]},
    }
    appointments = {row["Appointment ID"]: row for row in sample["appointments"]}
    for plant in PLANTS:
        assert plant.subject_id in ids[plant.subject_type], plant
        assert plant.patient_id in ids["patient"], plant
        for aid in plant.appointment_ids:
            assert attendees(appointments[aid]) == [plant.patient_id]


def test_planted_ids_do_not_depend_on_size_seed_or_dates(tmp_path: Path) -> None:
    tables = build_tables(patients=5, months=1, seed=99, start=date(2024, 2, 29))
    rows = {kind: list(t.text_rows()) for kind, t in tables.items()}
    case_ids = {r[0] for r in rows["cases"]}
    invoice_ids = {r[formats.INVOICE_HEADERS.index("ID")] for r in rows["invoices"]}
    for plant in PLANTS:
        pool = {"case": case_ids, "invoice": invoice_ids}.get(plant.subject_type)
        assert pool is None or plant.subject_id in pool


def test_reported_credit_is_the_ledger_credit_except_the_planted_mismatches(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    credit, _ = reference_ledger(sample)
    reported = {
        unwrap(row["ID"]): cents(row["Unapplied Account Credit"] or "0")
        for row in sample["patients"]
    }
    differ = sorted(pid for pid in reported if reported[pid] != credit.get(pid, 0))
    assert differ == ["900011", "900012"]
    assert (credit["900011"], reported["900011"]) == (38_000, 47_500)
    assert (credit.get("900012", 0), reported["900012"]) == (0, 4_500)
    # Hand-worked planted figures (README table) against the independent ledger.
    assert PLANTED_CREDIT == {
        "900001": 0,
        "900002": 0,
        "900003": 0,
        "900004": 0,
        "900005": 9_500,
        "900006": 0,
        "900007": 30_000,
        "900008": 19_000,
        "900009": 15_000,
        "900010": 19_000,
        "900011": 38_000,
        "900012": 0,
        "900013": 0,
        "900014": 0,
        "900015": 0,
        "900016": 0,
        "900017": 2_500,
        "900018": 0,
        "900019": 0,
        "900020": 0,
        "900021": 0,
        "900022": 66_500,
        "900023": 0,
    }
    for pid, value in PLANTED_CREDIT.items():
        assert credit.get(pid, 0) == value, pid
    assert min(credit.values()) >= 0


def test_exported_status_is_the_computed_status_except_the_planted_mismatches(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    wrong = invoices_off_the_ledger(
        sample,
        lambda row, left: (
            row["Status"] != computed_status(cents(row["Invoice Amount"]), left)
            and row["ID"] not in PLANTED["INVOICE_BALANCE_MISMATCH"]
        ),
    )
    assert wrong == sorted(PLANTED["INVOICE_STATUS_MISMATCH"])


def test_credit_beside_open_invoices_and_dormant_credit_only_where_planted(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    credit, outstanding = reference_ledger(sample)
    patient_of = {row["ID"]: row["Patient ID"] for row in sample["invoices"]}
    with_open = {patient_of[i] for i, left in outstanding.items() if left > 0}
    assert (
        sorted(p for p in with_open if credit.get(p, 0) > 0) == PLANTED["CREDIT_WITH_OPEN_INVOICES"]
    )
    last_move: dict[str, datetime] = {}
    for row in sample["payments"]:
        if not row["Deleted At"]:
            at = when(row["Payment Date"])
            last_move[row["Patient ID"]] = max(at, last_move.get(row["Patient ID"], at))
    for row in sample["invoices"]:
        if cents(row["Credit Applied"]) > 0:
            pid, at = row["Patient ID"], when(row["Date Closed"] or row["Issue Date"])
            last_move[pid] = max(at, last_move[pid])
    as_of = datetime(2026, 11, 1)
    dormant = sorted(p for p, c in credit.items() if c > 0 and (as_of - last_move[p]).days > 365)
    assert dormant == PLANTED["DORMANT_CREDIT"]


def test_case_findings_appear_only_on_the_planted_cases(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    tally = case_tally(sample, date(2026, 11, 1))
    assert sorted(c for c, t in tally.items() if t["over"]) == PLANTED["OVER_BOOKED"]
    assert sorted(c for c, t in tally.items() if t["outside"]) == PLANTED["OUTSIDE_CASE_DATES"]
    assert sorted(c for c, t in tally.items() if t["after_close"]) == PLANTED["BOOKED_AFTER_CLOSE"]
    expired_left = sorted(
        c for c, t in tally.items() if t["expired"] and t["remaining"] and t["remaining"] > 0
    )
    assert expired_left == PLANTED["EXPIRED_WITH_SESSIONS_LEFT"]
    assert tally["490005"]["remaining"] == 1 and tally["490005"]["active"]
    assert tally["490001"]["counted"] == 4
    assert (tally["490015"]["counted"], tally["490022"]["counted"]) == (3, 5)
    patient_of = {row["ID"]: row["Patient ID"] for row in sample["cases"]}
    active = defaultdict(list)
    for cid, t in tally.items():
        if t["active"]:
            active[patient_of[cid]].append(cid)
    assert sorted(p for p, cs in active.items() if len(cs) > 1) == PLANTED["SEVERAL_OPEN_PACKAGES"]


def test_the_sample_holds_the_behaviours_the_reports_explain(
    sample: dict[str, list[dict[str, str]]],
) -> None:
    appts = sample["appointments"]
    assert sum(a["Cancellation Time"] != "" for a in appts) > 5
    assert sum(a["Did Not Arrive"] == "TRUE" for a in appts) > 5
    assert sum(a["Archived At"] != "" for a in appts) >= 1
    assert sum(when(a["Start Time"]) >= datetime(2026, 11, 1) for a in appts) > 20
    # Daylight saving starts in October: both of Sydney's offsets appear, as in a real export.
    assert {a["Start Time"][-5:] for a in appts} == {"+1000", "+1100"}
    assert {a["Business"] for a in appts} == set(formats.BUSINESSES)
    cases = sample["cases"]
    assert any(c["Include Cancelled Attendees"] == "Yes" for c in cases)
    assert any(c["Include DNA Attendees"] == "Yes" for c in cases)
    assert any(c["Max Sessions"] == "" for c in cases)
    payments = sample["payments"]
    assert sum(p["Amount"].startswith("-") for p in payments) >= 3
    assert sum(p["Deleted At"] != "" for p in payments) == 1
    assert any(
        p["Payment Date"].endswith("2025") or "/2025 " in p["Payment Date"] for p in payments
    )
    invoices = sample["invoices"]
    assert sum(i["Original Invoice"] != "" for i in invoices) >= 2
    assert any(i["Patient Case"] != "" and i["Invoice Amount"] == "0.00" for i in invoices)
    assert sum(i["Credit Applied"] != "0.00" for i in invoices) > 50
    assert 250 < len(sample["patients"]) < 400
    assert 800 < len(appts) < 2000


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    patients=st.integers(0, 60),
    months=st.integers(1, 13),
    seed=st.integers(0, 2**32 - 1),
    start=st.dates(date(2024, 1, 1), date(2027, 12, 31)),
)
def test_any_arguments_give_a_consistent_ledger(
    patients: int, months: int, seed: int, start: date
) -> None:
    tables = build_tables(patients=patients, months=months, seed=seed, start=start)
    rows = {}
    for kind, table in tables.items():
        text = b"".join(table.csv_chunks()).decode("utf-8")
        rows[kind] = list(csv.DictReader(io.StringIO(text)))
    credit, _ = reference_ledger(rows)
    reported = {
        unwrap(row["ID"]): cents(row["Unapplied Account Credit"] or "0") for row in rows["patients"]
    }
    assert sorted(p for p in reported if reported[p] != credit.get(p, 0)) == ["900011", "900012"]
    assert min(credit.values(), default=0) >= 0
    export = formats.period_end(start, months)
    tally = case_tally(rows, export)
    assert sorted(c for c, t in tally.items() if t["over"]) == ["490001"]
    assert sorted(c for c, t in tally.items() if t["outside"]) == ["490003"]


def test_xlsx_holds_the_same_cells_and_is_deterministic(tmp_path: Path) -> None:
    from python_calamine import CalamineWorkbook

    a = generate(tmp_path / "a", patients=15, months=1, fmt="xlsx")
    b = generate(tmp_path / "b", patients=15, months=1, fmt="xlsx")
    c = generate(tmp_path / "c", patients=15, months=1)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    sheet = CalamineWorkbook.from_path(str(a[0])).get_sheet_by_index(0).to_python()
    with c[0].open(encoding="utf-8", newline="") as handle:
        expected = list(csv.reader(handle))
    assert [[str(v) for v in row] for row in sheet] == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patients": -1}, "--patients must be 0 or more, not -1."),
        ({"months": 0}, "--months must be 1 or more, not 0."),
        ({"fmt": "ods"}, "--format must be csv or xlsx, not 'ods'."),
    ],
)
def test_bad_arguments_are_usage_errors(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        generate(tmp_path / "out", **options)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert not (tmp_path / "out").exists()


def test_a_modest_run_is_fast(tmp_path: Path) -> None:
    began = time.perf_counter()
    paths = generate(tmp_path, patients=20_000, months=6, seed=3)
    elapsed = time.perf_counter() - began
    with paths[0].open(encoding="utf-8") as handle:
        appointments = sum(1 for _ in handle) - 1
    assert appointments > 100_000
    assert elapsed < 10, elapsed


def test_the_committed_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[1] / "sample_data"
    fresh = generate(tmp_path)
    for path in fresh:
        assert (committed / path.name).read_bytes() == path.read_bytes(), (
            f"sample_data/{path.name} is stale: regenerate it with `pkgreport sample-data sample_data --force`"
        )
    readme = (committed / "README.md").read_text(encoding="utf-8")
    for path in fresh:
        with path.open(encoding="utf-8") as handle:
            rows = sum(1 for _ in handle) - 1
        assert f"| `{path.name}` | {rows:,} |" in readme, path.name
    for plant in PLANTS:
        assert (
            f"| {plant.code} | {plant.subject_type} {plant.subject_id} | {plant.patient_id} "
            in readme
        )
