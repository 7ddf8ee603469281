"""One planted patient's rows (appointments, cases, invoices, payments), built in export order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pkgreport.demo.formats import (
    BUSINESSES,
    CLINIKO_APPOINTMENT_HEADERS,
    EARLIEST_START,
    HEADERS,
    INITIAL_PRICE,
    PRACTITIONER_IDS,
    PRACTITIONERS,
    SESSION_PRICE,
    Clock,
)
from pkgreport.money import format_dollars, format_plain


@dataclass(frozen=True)
class Plant:
    """A finding the sample data is built to produce, and where to find it."""

    code: str
    subject_type: str
    subject_id: str
    patient_id: str
    appointment_ids: tuple[str, ...] = ()
    note: str = ""


class PlantBuilder:
    """Writes the planted patients' rows in export order, with the ledger outcome spelled out."""

    def __init__(self, start: date, export_day: int) -> None:
        self.clock = Clock(start)
        self.end = export_day  # day offset of the export date (first day after the period)
        self.rows: dict[str, list[list[str]]] = {kind: [] for kind in HEADERS}
        self.plants: list[Plant] = []
        self.expected_credit: dict[str, int] = {}
        self._next = {
            "appointment": 190_000_001,
            "invoice": 290_000_001,
            "number": 90_001,
            "payment": 390_000_001,
        }
        self._names: dict[str, str] = {}
        self._practitioner: dict[str, tuple[int, int]] = {}
        self._appointment_row: dict[str, list[str]] = {}

    def _id(self, kind: str) -> str:
        value = self._next[kind]
        self._next[kind] += 1
        return str(value)

    def patient(
        self,
        pid: str,
        name: str,
        credit: int,
        reported: int | None = None,
        practitioner: int = 0,
        business: int = 0,
    ) -> str:
        """`credit` is the true account credit (cents) at the export date, worked out by hand."""
        self._names[pid] = name
        self._practitioner[pid] = (business, practitioner)
        self.expected_credit[pid] = credit
        shown = credit if reported is None else reported
        first, _, last = name.partition(" ")
        # Cliniko writes long ids Excel-safe and leaves a $0 credit blank.
        self.rows["patients"].append(
            [f'="{pid}"', first, last, format_dollars(shown) if shown else ""]
        )
        return pid

    def _who(self, pid: str) -> tuple[str, str, str]:
        """(practitioner, practitioner id, business) of a planted patient."""
        business, practitioner = self._practitioner[pid]
        return (
            PRACTITIONERS[business][practitioner],
            PRACTITIONER_IDS[business * 3 + practitioner],
            BUSINESSES[business],
        )

    def case(
        self,
        case_id: str,
        pid: str,
        name: str,
        maximum: int | None,
        issue: int,
        expiry: int | None,
        *,
        include_cancelled: bool = False,
        include_dna: bool = False,
        closed: tuple[int, int] | None = None,
        price: int | None = None,
    ) -> str:
        c = self.clock
        self.rows["cases"].append(
            [
                case_id,
                pid,
                name,
                "" if maximum is None else str(maximum),
                "Yes" if include_cancelled else "No",
                "Yes" if include_dna else "No",
                c.date(issue),
                "" if expiry is None else c.date(expiry),
                "" if closed is None else c.stamp(*closed),
                "",
                "" if price is None else format_dollars(price),
            ]
        )
        return case_id

    def appointment(
        self,
        pid: str,
        day: int,
        minute: int = 13 * 60,
        *,
        case: str = "",
        kind: str = "Standard Consultation",
        state: str = "attended",
        archived: tuple[int, int] | None = None,
        attendees: str = "",
    ) -> str:
        """`state`: attended, cancelled, dna, or booked (a future appointment). `attendees`: the
        `Patient ID(s)` of a group appointment (default: `pid` alone)."""
        assert minute >= EARLIEST_START, minute
        practitioner, practitioner_id, business = self._who(pid)
        row = _appointment_row(
            self.clock,
            self._id("appointment"),
            day,
            minute,
            attendees or pid,
            kind,
            practitioner,
            practitioner_id,
            business,
            state,
            case,
        )
        row.append("" if archived is None else self.clock.stamp(*archived))
        self.rows["appointments"].append(row)
        self._appointment_row[row[0]] = row
        return row[0]

    def unavailable(self, pid_of_practitioner: str, day: int, minute: int, minutes: int) -> str:
        """A practitioner's "Unavailable" block: a row with no patient, as Cliniko exports it."""
        practitioner, practitioner_id, business = self._who(pid_of_practitioner)
        aid = self._id("appointment")
        c = self.clock
        self.rows["appointments"].append(
            [
                aid,
                c.zoned(day, minute),
                c.short_date(day),
                c.zoned(day, minute + minutes),
                practitioner,
                practitioner_id,
                "",
                "Unavailable - Unavailable",
                "",
                business,
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "",
                "",
                "",
                c.zoned(day - 7, minute),
                "",
                "",
                "",
                "",
                "0",
                "0",
                "0",
                "",
                "",
            ]
        )
        return aid

    def invoice(
        self,
        pid: str,
        day: int,
        total: int,
        status: str,
        item: str,
        *,
        appointment: str = "",
        case: str = "",
        original: str = "",
        paid: int = 0,
        credit: int = 0,
        closed: int | None = None,
        cliniko_outstanding: int | None = None,
    ) -> str:
        """`paid`/`credit`: what payments and account credit paid on it (Cliniko's Payments
        Applied and Credit Applied); `closed`: the day it was closed (default: its issue day when
        its status is Paid). Outstanding is what is left, unless Cliniko is made to disagree."""
        iid = self._id("invoice")
        number = self._id("number")
        practitioner, _, business = self._who(pid)
        outstanding = max(total - paid - credit, 0)
        if cliniko_outstanding is not None:
            outstanding = cliniko_outstanding
        if closed is None and status == "Paid":
            closed = day
        appt_time = ""
        if appointment:
            row = self._appointment_row[appointment]
            row[CLINIKO_APPOINTMENT_HEADERS.index("Invoice Number")] = number
            start = datetime.strptime(row[1][:16], "%Y-%m-%d %H:%M")
            appt_time = f"{start.day}/{start.month}/{start.year} {start.hour}:{start.minute:02d}"
        self.rows["invoices"].append(
            [
                number,
                self.clock.short_date(day),
                practitioner,
                format_plain(total),
                "0.00",
                "0.00",
                format_plain(total),
                "",
                status,
                "" if closed is None else self.clock.short_date(closed),
                practitioner,
                appointment,
                business,
                "",
                pid,
                format_plain(outstanding),
                format_plain(paid),
                format_plain(credit),
                "0.00",
                appt_time,
                iid,
                case,
                original,
            ]
        )
        return iid

    def payment(
        self,
        pid: str,
        day: int,
        minute: int,
        amount: int,
        method: str = "EFTPOS",
        notes: str = "",
        deleted: tuple[int, int] | None = None,
    ) -> str:
        pay_id = self._id("payment")
        self.rows["payments"].append(
            [
                pay_id,
                pid,
                self.clock.stamp(day, minute),
                format_dollars(amount),
                method,
                notes,
                "" if deleted is None else self.clock.stamp(*deleted),
            ]
        )
        return pay_id

    def plant(
        self,
        code: str,
        subject_type: str,
        subject_id: str,
        patient_id: str,
        appointment_ids: tuple[str, ...] = (),
        note: str = "",
    ) -> None:
        self.plants.append(Plant(code, subject_type, subject_id, patient_id, appointment_ids, note))

    # Scenario helpers -----------------------------------------------------------------------

    def visit_paid(
        self,
        pid: str,
        day: int,
        price: int = SESSION_PRICE,
        minute: int = 13 * 60,
        status: str = "Paid",
    ) -> tuple[str, str]:
        """A casual visit: appointment, invoice, and the same-day payment at the desk."""
        kind = "Initial Consultation" if price == INITIAL_PRICE else "Standard Consultation"
        aid = self.appointment(pid, day, minute, kind=kind)
        iid = self.invoice(pid, day, price, status, kind, appointment=aid, paid=price, closed=day)
        self.payment(pid, day, minute + 50, price)
        return aid, iid

    def package_b(
        self, pid: str, case_id: str, day: int, sessions: int, price: int, name: str
    ) -> str:
        """Method B: one package invoice naming the case, paid in full on the day."""
        iid = self.invoice(pid, day, price, "Paid", name, case=case_id, paid=price)
        self.payment(pid, day, 11 * 60, price, "Credit Card", f"Package purchase: {name}")
        return iid


def _appointment_row(
    clock: Clock,
    aid: str,
    day: int,
    minute: int,
    attendees: str,
    kind: str,
    practitioner: str,
    practitioner_id: str,
    business: str,
    state: str,
    case: str,
) -> list[str]:
    """One appointments row in Cliniko's columns (Invoice Number filled in when invoiced)."""
    length = 45 if kind == "Initial Consultation" else 30
    count = str(len(attendees.split(",")))
    cancelled = state == "cancelled"
    return [
        aid,
        clock.zoned(day, minute),
        clock.short_date(day),
        clock.zoned(day, minute + length),
        practitioner,
        practitioner_id,
        attendees,
        kind,
        "",
        business,
        "TRUE" if state == "dna" else "FALSE",
        "TRUE" if state == "attended" else "FALSE",
        "TRUE",
        "TRUE",
        clock.zoned(day - 1, 17 * 60 + 5) if cancelled else "",
        "Feeling unwell" if cancelled else "",
        "",
        clock.zoned(day - 7, minute),
        "",
        "",
        "",
        "",
        "8" if int(count) > 1 else "1",
        count,
        "1" if cancelled else "0",
        case,
    ]
