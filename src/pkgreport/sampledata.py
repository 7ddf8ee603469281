"""Deterministic demo and benchmark exports: a Cliniko-style clinic group with planted findings."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from pkgreport.atomic import write_atomic
from pkgreport.errors import UsageError
from pkgreport.money import format_dollars, format_plain

BUSINESSES: tuple[str, ...] = ("Harbour Physio — Sydney CBD", "Harbour Physio — Parramatta")
PRACTITIONERS: tuple[tuple[str, ...], ...] = (
    ("Dr Sarah Mitchell", "James O'Connor", "Priya Raman"),
    ("Daniel Kim", "Emma Hayes", "Tomás García"),
)
# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Olivia", "Noah", "Charlotte", "Oliver", "Amelia", "Leo", "Isla", "Henry", "Mia", "Jack",
    "Ava", "William", "Grace", "Lucas", "Chloe", "Thomas", "Sophie", "James", "Ruby", "Ethan",
    "Zoe", "Liam", "Harper", "Mason", "Ella", "Samuel", "Matilda", "Alexander", "Evie",
    "Archie", "Willow", "Hudson", "Ivy", "Lachlan", "Sienna", "Harrison", "Layla", "Max",
    "Hannah", "Kai", "Aaliyah", "Arjun", "Mei", "Wei", "Fatima", "Omar", "Anika", "Ravi",
    "Siobhan", "Declan",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
    "White", "Anderson", "Walker", "Thompson", "Thomas", "Lee", "Ryan", "Robinson", "Kelly",
    "King", "Harris", "Davis", "Wright", "Clarke", "Murphy", "Mitchell", "Campbell", "Hughes",
    "Tran", "Chen", "Patel", "Singh", "Kaur", "O'Brien", "Papadopoulos", "Rossi", "Kowalski",
    "Nakamura", "Haddad", "Fernandes", "Murray", "Edwards", "Young", "Hall", "Scott", "Green",
    "Baker", "Wood", "Cooper", "Ward", "Stewart",
)
# fmt: on
PAYMENT_METHODS: tuple[str, ...] = ("EFTPOS", "Credit Card", "Cash", "HICAPS")

INITIAL_PRICE = 12_000
SESSION_PRICE = 9_500
PACKAGE_PRICES: dict[int, int] = {5: 42_500, 10: 80_000}  # method B: paid in full, a discount

# Cliniko's appointments and invoices export headers, verbatim and in order (../shared/DOMAIN.md),
# then the columns the demo needs that Cliniko's exports do not have (`NOT_CLINIKO`).
CLINIKO_APPOINTMENT_HEADERS: tuple[str, ...] = (
    "Appointment ID", "Start Time", "Date", "End Time", "Practitioner", "Practitioner ID",
    "Patient ID(s)", "Appointment Type", "Appointment Notes", "Business", "Did Not Arrive",
    "Patient Arrived", "SMS Reminder Sent", "Email Reminder Sent", "Cancellation Time",
    "Cancellation Reason", "Cancellation Note", "Created At", "Treatment Notes Status",
    "Invoice Number", "Appointment Category", "Source", "Maximum Number of Patients",
    "Number of Patients", "Number of Cancellations", "Patient Case",
)
CLINIKO_INVOICE_HEADERS: tuple[str, ...] = (
    "Invoice Number", "Issue Date", "Practitioner", "Sub-Total Amount", "Tax Amount", "Discount",
    "Invoice Amount", "Notes", "Status", "Date Closed", "Created By", "Appointment ID", "Business",
    "Extra patient info", "Patient ID", "Outstanding Balance", "Payments Applied",
    "Credit Applied", "Other Allocations", "Appointment Time", "ID",
)
NOT_CLINIKO: dict[str, tuple[str, ...]] = {
    "appointments": ("Archived At",),
    "invoices": ("Patient Case", "Original Invoice"),
}
APPOINTMENT_HEADERS = CLINIKO_APPOINTMENT_HEADERS + NOT_CLINIKO["appointments"]
INVOICE_HEADERS = CLINIKO_INVOICE_HEADERS + NOT_CLINIKO["invoices"]
CASE_HEADERS: tuple[str, ...] = (
    "ID",
    "Patient ID",
    "Name",
    "Max Sessions",
    "Include Cancelled Attendees",
    "Include DNA Attendees",
    "Issue Date",
    "Expiry Date",
    "Closed At",
    "Archived At",
    "Price",
)
PAYMENT_HEADERS: tuple[str, ...] = (
    "ID",
    "Patient ID",
    "Payment Date",
    "Amount",
    "Payment Method",
    "Notes",
    "Deleted At",
)
PATIENT_HEADERS: tuple[str, ...] = ("ID", "First Name", "Last Name", "Unapplied Account Credit")

# No allocations file: Cliniko exports none; each invoice's `Credit Applied` says what credit paid.
HEADERS: dict[str, tuple[str, ...]] = {
    "appointments": APPOINTMENT_HEADERS,
    "cases": CASE_HEADERS,
    "invoices": INVOICE_HEADERS,
    "payments": PAYMENT_HEADERS,
    "patients": PATIENT_HEADERS,
}
FILE_STEMS: dict[str, str] = {
    "appointments": "Appointments",
    "cases": "Cases",
    "invoices": "Invoices",
    "payments": "Payments",
    "patients": "Patients",
}
PRACTITIONER_IDS: tuple[str, ...] = tuple(f"10175400000000000{k}" for k in range(11, 17))
# Appointment times carry the clinic's UTC offset, as Cliniko writes them. Every appointment
# starts at 11:00 or later, so its day is the same in Sydney time and in UTC (the default
# --timezone): the sample gives the same figures either way.
CLINIC_ZONE = "Australia/Sydney"
_EARLIEST_START = 11 * 60

# Id ranges: the planted block's ids never collide with the bulk's, whatever the size.
_BULK_BASE = {
    "patient": 1_000_001,
    "case": 5_000_001,
    "appointment": 200_000_001,
    "invoice": 300_000_001,
    "number": 100_001,
    "payment": 400_000_001,
}
_CHUNK_ROWS = 131_072
_RECORD_END = b"\r\n"  # Cliniko's exports end every record in CRLF
_FUTURE_DAYS = 28  # upcoming bookings reach this far past the export date


# --------------------------------------------------------------------------------------------
# Formatting


def period_end(start: date, months: int) -> date:
    """The export date: `months` calendar months after `start` (the first day not covered)."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _quote(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _date_text(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


class _Clock:
    """Day offsets from `start` (and minutes of the day) -> the export's day-first text."""

    def __init__(self, start: date) -> None:
        self.start = start

    def day(self, offset: int) -> date:
        return self.start + timedelta(days=int(offset))

    def date(self, offset: int) -> str:
        return _date_text(self.day(offset))

    def stamp(self, offset: int, minute: int) -> str:
        return f"{self.date(offset)} {minute // 60:02d}:{minute % 60:02d}"

    def short_date(self, offset: int) -> str:
        """Cliniko's invoices export: day first, no zero padding (`5/11/2022`)."""
        day = self.day(offset)
        return f"{day.day}/{day.month}/{day.year}"

    def short_stamp(self, offset: int, minute: int) -> str:
        """Cliniko's `Appointment Time` (`5/11/2022 9:30`)."""
        return f"{self.short_date(offset)} {minute // 60}:{minute % 60:02d}"

    def zoned(self, offset: int, minute: int) -> str:
        """Cliniko's appointment times: local time with its offset (`2022-11-01 08:00:00 +1100`)."""
        local = datetime.combine(self.day(offset), time(minute // 60, minute % 60),
                                 tzinfo=ZoneInfo(CLINIC_ZONE))
        return local.strftime("%Y-%m-%d %H:%M:%S %z")


# --------------------------------------------------------------------------------------------
# Vectorised text columns: numpy bytes arrays (`S` dtype) assembled into CSV without a row loop


def _encode(strings: list[str]) -> np.ndarray:
    encoded = [_quote(s).encode("utf-8") for s in strings]
    width = max([1, *(len(b) for b in encoded)])
    return np.array(encoded, dtype=f"S{width}")


def _vocab(strings: tuple[str, ...] | list[str], codes: np.ndarray) -> np.ndarray:
    """Row i is `strings[codes[i]]`; a code of -1 is a blank cell."""
    table = _encode([*strings, ""])
    return table[np.where(codes < 0, len(strings), codes)]


def _mapped(
    values: np.ndarray, render: Callable[[int], str], blank: np.ndarray | None = None
) -> np.ndarray:
    """Render each distinct value once in Python, then index: fast when values repeat."""
    uniques, inverse = np.unique(values, return_inverse=True)
    table = _encode([render(int(v)) for v in uniques] + [""])
    inverse = inverse.reshape(-1)
    if blank is not None:
        inverse = np.where(blank, len(uniques), inverse)
    return table[inverse]


def _ids(values: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
    """Non-negative integers as decimal text, right-aligned in NUL padding (see `_csv_chunks`).

    Digit arithmetic, one column of the matrix per decimal place: several times faster than
    numpy's int -> bytes cast.
    """
    values = np.maximum(values.astype(np.int64), 0)
    width = len(str(int(values.max()))) if len(values) else 1
    places = np.ones(len(values), dtype=np.int64)
    for power in range(1, width):
        places += values >= 10**power
    matrix = np.zeros((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        matrix[:, k] = np.where(width - k <= places, rest % 10 + ord("0"), 0)
        rest //= 10
    if blank is not None:
        matrix[blank] = 0
    return matrix


def _blank(n: int) -> np.ndarray:
    return np.zeros(n, dtype="S1")


def _matrix(column: np.ndarray) -> np.ndarray:
    """A bulk column as an (n, width) uint8 matrix of UTF-8 bytes; NUL bytes are padding."""
    if column.ndim == 2:
        return column
    column = np.ascontiguousarray(column)
    return column.view(np.uint8).reshape(len(column), column.dtype.itemsize)


def _csv_chunks(columns: list[np.ndarray]) -> Iterator[bytes]:
    """Rows of comma-joined cells without a Python loop per row.

    Each cell is its bytes padded with NULs (our text never holds a NUL): lay the cells, commas
    and newlines side by side in one matrix, then drop every NUL, reading row by row.
    """
    n = len(columns[0])
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        parts: list[np.ndarray] = []
        for k, col in enumerate(columns):
            parts.append(_matrix(col)[lo:hi])
            end = b"," if k < len(columns) - 1 else _RECORD_END
            parts.append(np.tile(np.frombuffer(end, np.uint8), (hi - lo, 1)))
        block = np.hstack(parts)
        yield block[block != 0].tobytes()


@dataclass
class ExportTable:
    """One export file: bulk columns (bytes arrays) followed by hand-built planted rows."""

    headers: tuple[str, ...]
    bulk: list[np.ndarray] | None = None
    rows: list[list[str]] = field(default_factory=list)

    def csv_chunks(self) -> Iterator[bytes]:
        yield (",".join(_quote(h) for h in self.headers)).encode("utf-8") + _RECORD_END
        if self.bulk is not None and len(self.bulk[0]):
            yield from _csv_chunks(self.bulk)
        if self.rows:
            yield b"".join(
                ",".join(_quote(v) for v in row).encode("utf-8") + _RECORD_END for row in self.rows
            )

    def text_rows(self) -> Iterator[list[str]]:
        if self.bulk is not None:
            matrices = [_matrix(col) for col in self.bulk]
            for i in range(len(matrices[0])):
                yield [_unquote(m[i][m[i] != 0].tobytes().decode("utf-8")) for m in matrices]
        yield from self.rows


def _unquote(cell: str) -> str:
    if cell.startswith('"') and cell.endswith('"') and len(cell) >= 2:
        return cell[1:-1].replace('""', '"')
    return cell


# --------------------------------------------------------------------------------------------
# The planted block: one patient per scenario, hand-built, the same ids for every size and seed


@dataclass(frozen=True)
class Plant:
    """A finding the sample data is built to produce, and where to find it."""

    code: str
    subject_type: str
    subject_id: str
    patient_id: str
    appointment_ids: tuple[str, ...] = ()
    note: str = ""


class _PlantBuilder:
    """Writes the planted patients' rows in export order, with the ledger outcome spelled out."""

    def __init__(self, start: date, export_day: int) -> None:
        self.clock = _Clock(start)
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
        self.rows["patients"].append([f'="{pid}"', first, last, format_dollars(shown) if shown else ""])
        return pid

    def _who(self, pid: str) -> tuple[str, str, str]:
        """(practitioner, practitioner id, business) of a planted patient."""
        business, practitioner = self._practitioner[pid]
        return (PRACTITIONERS[business][practitioner], PRACTITIONER_IDS[business * 3 + practitioner],
                BUSINESSES[business])

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
        assert minute >= _EARLIEST_START, minute
        practitioner, practitioner_id, business = self._who(pid)
        row = _appointment_row(
            self.clock, self._id("appointment"), day, minute, attendees or pid, kind,
            practitioner, practitioner_id, business, state, case,
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
        self.rows["appointments"].append([
            aid, c.zoned(day, minute), c.short_date(day), c.zoned(day, minute + minutes),
            practitioner, practitioner_id, "", "Unavailable - Unavailable", "", business,
            "N/A", "N/A", "N/A", "N/A", "", "", "", c.zoned(day - 7, minute), "", "", "", "",
            "0", "0", "0", "", "",
        ])
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
                number, self.clock.short_date(day), practitioner, format_plain(total), "0.00",
                "0.00", format_plain(total), "", status,
                "" if closed is None else self.clock.short_date(closed), practitioner, appointment,
                business, "", pid, format_plain(outstanding), format_plain(paid),
                format_plain(credit), "0.00", appt_time, iid, case, original,
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
    clock: _Clock, aid: str, day: int, minute: int, attendees: str, kind: str, practitioner: str,
    practitioner_id: str, business: str, state: str, case: str,
) -> list[str]:
    """One appointments row in Cliniko's columns (Invoice Number filled in when invoiced)."""
    length = 45 if kind == "Initial Consultation" else 30
    count = str(len(attendees.split(",")))
    cancelled = state == "cancelled"
    return [
        aid, clock.zoned(day, minute), clock.short_date(day), clock.zoned(day, minute + length),
        practitioner, practitioner_id, attendees, kind, "", business,
        "TRUE" if state == "dna" else "FALSE", "TRUE" if state == "attended" else "FALSE",
        "TRUE", "TRUE", clock.zoned(day - 1, 17 * 60 + 5) if cancelled else "",
        "Feeling unwell" if cancelled else "", "", clock.zoned(day - 7, minute), "", "", "", "",
        "8" if int(count) > 1 else "1", count, "1" if cancelled else "0", case,
    ]


def _build_plants(start: date, export_day: int) -> _PlantBuilder:
    """Every planted scenario. Day 0 = `start`; `export_day` = the export date (>= day 28)."""
    b = _PlantBuilder(start, export_day)
    end = export_day
    p5, p10 = "Physio 5-session package", "Physio 10-session package"

    # OVER_BOOKED: 3-session package, 4 appointments attached (4th is over the maximum).
    pid = b.patient("900001", "Grace Whitfield", 0)
    case = b.case("490001", pid, "Physio 3-session package", 3, 0, 365, price=27_000)
    b.package_b(pid, case, 0, 3, 27_000, "Physio 3-session package")
    appts = [b.appointment(pid, d, 12 * 60, case=case, kind="Package Session") for d in (1, 8, 15, 22)]
    for d, aid in zip((1, 8, 15), appts, strict=False):
        b.invoice(pid, d, 0, "Paid", "Pre-paid package", appointment=aid, case=case)
    b.plant("OVER_BOOKED", "case", case, pid, (appts[3],), "4 counted on a 3-session case")

    # EXPIRED_WITH_SESSIONS_LEFT: bought 100 days before the period, 2 of 5 used, expired day 20.
    pid = b.patient("900002", "Liam Okafor", 0, practitioner=1)
    case = b.case("490002", pid, p5, 5, -100, 20, price=42_500)
    b.package_b(pid, case, -100, 5, 42_500, p5)
    for d in (-93, -86):
        b.appointment(pid, d, case=case, kind="Package Session")
    b.plant(
        "EXPIRED_WITH_SESSIONS_LEFT",
        "case",
        case,
        pid,
        note=f"3 of 5 left, expired {b.clock.date(20)}",
    )

    # OUTSIDE_CASE_DATES: first appointment on day 3, the case was issued on day 10.
    pid = b.patient("900003", "Sophie Tran", 0, practitioner=2)
    case = b.case("490003", pid, p5, 5, 10, 375, price=42_500)
    early = b.appointment(pid, 3, case=case, kind="Package Session")
    b.package_b(pid, case, 10, 5, 42_500, p5)
    for d in (12, 19):
        b.appointment(pid, d, case=case, kind="Package Session")
    b.plant(
        "OUTSIDE_CASE_DATES",
        "case",
        case,
        pid,
        (early,),
        f"seen {b.clock.date(3)}, case issued {b.clock.date(10)}",
    )

    # BOOKED_AFTER_CLOSE: case closed on day 16, an appointment on day 23 still attached.
    pid = b.patient("900004", "Noah Fitzgerald", 0, business=1)
    case = b.case("490004", pid, p5, 5, 1, 366, closed=(16, 12 * 60), price=42_500)
    b.package_b(pid, case, 1, 5, 42_500, p5)
    for d in (2, 9):
        b.appointment(pid, d, case=case, kind="Package Session")
    late = b.appointment(pid, 23, case=case, kind="Package Session")
    b.plant(
        "BOOKED_AFTER_CLOSE",
        "case",
        case,
        pid,
        (late,),
        f"closed {b.clock.date(16)}, seen {b.clock.date(23)}",
    )

    # NEARLY_USED_UP (method A, paid from credit): $475 pre-paid, 4 of 5 used.
    pid = b.patient("900005", "Chloe Baker", SESSION_PRICE, practitioner=1, business=1)
    case = b.case("490005", pid, p5, 5, 0, end + 180)
    b.payment(pid, 0, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package")
    for d in (1, 8, 15, 22):
        aid = b.appointment(pid, d, 13 * 60, case=case, kind="Package Session")
        b.invoice(pid, d, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid,
                  credit=SESSION_PRICE)
    b.plant("NEARLY_USED_UP", "case", case, pid, note="1 of 5 left, $95.00 credit")

    # SEVERAL_OPEN_PACKAGES: a second package bought while the first still has sessions left.
    pid = b.patient("900006", "Ethan Russo", 0, practitioner=2, business=1)
    first = b.case("490006", pid, p5, 5, 0, 365, price=42_500)
    second = b.case("490007", pid, "Pilates 10-class pack", 10, 14, 379, price=80_000)
    b.package_b(pid, first, 0, 5, 42_500, p5)
    for d in (2, 9):
        b.appointment(pid, d, case=first, kind="Package Session")
    b.package_b(pid, second, 14, 10, 80_000, "Pilates 10-class pack")
    b.appointment(pid, 16, 17 * 60, case=second, kind="Pilates Class")
    b.plant("SEVERAL_OPEN_PACKAGES", "patient", pid, pid, note=f"cases {first} and {second}")

    # UNAPPLIED_CREDIT: $300 paid on account, nothing booked or invoiced to use it.
    pid = b.patient("900007", "Mia Kowalski", 30_000)
    b.visit_paid(pid, 5)
    b.payment(pid, 6, 14 * 60, 30_000, "Credit Card", "Payment on account")
    b.plant("UNAPPLIED_CREDIT", "patient", pid, pid, note="$300.00 credit, nothing to apply it to")

    # CREDIT_WITH_OPEN_INVOICES: $190 credit held while the day-9 invoice stays open.
    pid = b.patient("900008", "Jack Henderson", 19_000, practitioner=1)
    b.payment(pid, 1, 9 * 60, 19_000, "Credit Card", "Pre-payment: 2 sessions")
    aid = b.appointment(pid, 9)
    open_invoice = b.invoice(
        pid, 9, SESSION_PRICE, "Open", "Standard Consultation", appointment=aid
    )
    b.plant(
        "CREDIT_WITH_OPEN_INVOICES",
        "patient",
        pid,
        pid,
        note=f"$190.00 credit, invoice {open_invoice} open for $95.00",
    )

    # DORMANT_CREDIT: credit untouched since well over a year before the export date.
    pid = b.patient("900009", "Isla Moreno", 15_000, practitioner=2)
    b.visit_paid(pid, -430)
    b.payment(pid, -420, 15 * 60, 15_000, "Cash", "Payment on account")
    b.plant(
        "DORMANT_CREDIT", "patient", pid, pid, note=f"$150.00 paid on account {b.clock.date(-420)}"
    )

    pid = b.patient("900010", "Oscar Lindqvist", 19_000, business=1)
    case = b.case("490010", pid, p5, 5, -450, None, closed=(-420, 12 * 60))
    b.payment(
        pid, -450, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package"
    )
    for d in (-446, -439, -432):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        b.invoice(pid, d, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid,
                  credit=SESSION_PRICE)
        b.payment(pid, d, 13 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.plant(
        "DORMANT_CREDIT",
        "patient",
        pid,
        pid,
        note=f"$190.00 left since {b.clock.date(-432)}, case closed",
    )

    # REPORTED_CREDIT_MISMATCH: the patients export shows a different figure from the ledger.
    pid = b.patient("900011", "Ava Sullivan", 38_000, reported=47_500, practitioner=1, business=1)
    case = b.case("490011", pid, p10, 10, 0, end + 180)
    b.payment(pid, 0, 11 * 60, 10 * SESSION_PRICE, "Credit Card", "Pre-payment: 10-session package")
    for d in (1, 4, 8, 11, 15, 18):
        aid = b.appointment(pid, d, 12 * 60, case=case, kind="Package Session")
        b.invoice(pid, d, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid,
                  credit=SESSION_PRICE)
        b.payment(pid, d, 12 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.plant("REPORTED_CREDIT_MISMATCH", "patient", pid, pid, note="true $380.00, reported $475.00")

    pid = b.patient("900012", "Lucas Pereira", 0, reported=4_500, practitioner=2, business=1)
    b.visit_paid(pid, 3, INITIAL_PRICE)
    b.visit_paid(pid, 10)
    b.plant("REPORTED_CREDIT_MISMATCH", "patient", pid, pid, note="true $0.00, reported $45.00")

    # INVOICE_STATUS_MISMATCH: a paid invoice exported as Open, an unpaid one exported as Paid.
    pid = b.patient("900013", "Harper Collins", 0)
    _, paid_but_open = b.visit_paid(pid, 4, status="Open")
    aid = b.appointment(pid, 11)
    unpaid_but_paid = b.invoice(
        pid, 11, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid
    )
    b.plant("INVOICE_STATUS_MISMATCH", "invoice", paid_but_open, pid, note="fully paid, says Open")
    b.plant("INVOICE_STATUS_MISMATCH", "invoice", unpaid_but_paid, pid, note="unpaid, says Paid")

    # PACKAGE_SESSION_CHARGED: a method B session invoiced at the full price as well.
    pid = b.patient("900014", "Zoe Anderson", 0, practitioner=1)
    case = b.case("490014", pid, p5, 5, 0, 365, price=42_500)
    b.package_b(pid, case, 0, 5, 42_500, p5)
    for d in (1, 8, 15):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        if d == 8:
            charged = b.invoice(
                pid, d, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid, case=case,
                paid=SESSION_PRICE,
            )
            b.payment(pid, d, 13 * 60 + 40, SESSION_PRICE)
            b.plant(
                "PACKAGE_SESSION_CHARGED",
                "invoice",
                charged,
                pid,
                (aid,),
                "$95.00 on a paid package",
            )
        else:
            b.invoice(pid, d, 0, "Paid", "Pre-paid package", appointment=aid, case=case)

    # Realistic behaviour that should raise nothing ----------------------------------------
    # An archived appointment (not counted) and a cancellation the case counts.
    pid = b.patient("900015", "Henry Walsh", 0, practitioner=2)
    case = b.case("490015", pid, p5, 5, 2, 367, include_cancelled=True, price=42_500)
    b.package_b(pid, case, 2, 5, 42_500, p5)
    b.appointment(pid, 3, case=case, kind="Package Session")
    b.appointment(pid, 10, case=case, kind="Package Session", archived=(9, 16 * 60))
    b.appointment(pid, 17, case=case, kind="Package Session")
    b.appointment(pid, 24, case=case, kind="Package Session", state="cancelled")

    # A duplicate payment that was deleted; a visit on the period's last day, so the latest
    # activity (the report's default as-of date) is always the day before the export date.
    pid = b.patient("900016", "Ruby Thompson", 0, business=1)
    b.visit_paid(pid, 7)
    b.payment(pid, 7, 11 * 60, SESSION_PRICE, "EFTPOS", "Duplicate entry", deleted=(7, 17 * 60))
    b.visit_paid(pid, end - 1, minute=16 * 60)

    # A credit note left as credit ("Create credit"), later used to pay part of a visit.
    pid = b.patient("900017", "William Chen", 2_500, practitioner=1, business=1)
    _, billed = b.visit_paid(pid, 2, INITIAL_PRICE)
    b.invoice(pid, 3, -INITIAL_PRICE, "", "Initial Consultation", original=billed)
    aid = b.appointment(pid, 10)
    b.invoice(pid, 10, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid,
              credit=SESSION_PRICE)

    # A credit note paid out as a refund.
    pid = b.patient("900018", "Ella Robinson", 0, practitioner=2, business=1)
    _, billed = b.visit_paid(pid, 4)
    b.invoice(pid, 5, -SESSION_PRICE, "", "Standard Consultation", original=billed)
    b.payment(pid, 5, 11 * 60, -SESSION_PRICE, "EFTPOS", "Refund of credit note")

    # Method A with $0 payments, then the unused credit refunded and the case closed.
    pid = b.patient("900019", "Jacob Martin", 0)
    case = b.case("490019", pid, p5, 5, 0, end + 180, closed=(20, 12 * 60))
    b.payment(pid, 0, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package")
    for d in (1, 8):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        b.invoice(pid, d, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid,
                  credit=SESSION_PRICE)
        b.payment(pid, d, 13 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.payment(
        pid, 20, 11 * 60, -3 * SESSION_PRICE, "Credit Card", "Refund of unused package credit"
    )

    # One payment pays the older of two open invoices (oldest first); the newer stays open.
    pid = b.patient("900020", "Charlotte Dubois", 0, practitioner=1)
    older = b.appointment(pid, 2)
    b.invoice(pid, 2, SESSION_PRICE, "Paid", "Standard Consultation", appointment=older,
              paid=SESSION_PRICE, closed=12)
    newer = b.appointment(pid, 9)
    b.invoice(pid, 9, SESSION_PRICE, "Open", "Standard Consultation", appointment=newer)
    b.payment(pid, 12, 9 * 60, SESSION_PRICE, "Credit Card", "Paid at the desk")

    # One payment pays two invoices.
    pid = b.patient("900021", "Thomas Keane", 0, practitioner=2)
    first_visit = b.appointment(pid, 2, kind="Initial Consultation")
    b.invoice(pid, 2, INITIAL_PRICE, "Paid", "Initial Consultation", appointment=first_visit,
              paid=INITIAL_PRICE, closed=12)
    second_visit = b.appointment(pid, 9)
    b.invoice(pid, 9, SESSION_PRICE, "Paid", "Standard Consultation", appointment=second_visit,
              paid=SESSION_PRICE, closed=12)
    b.payment(pid, 12, 9 * 60, INITIAL_PRICE + SESSION_PRICE, "Credit Card")

    # Method A with DNA counted by the case, and two appointments booked after the export date.
    pid = b.patient("900022", "Amelia Nguyen", 66_500, business=1)
    case = b.case("490022", pid, p10, 10, -3, end + 180, include_dna=True)
    b.payment(
        pid, -3, 16 * 60, 10 * SESSION_PRICE, "Credit Card", "Pre-payment: 10-session package"
    )
    for d, state in ((1, "attended"), (8, "dna"), (15, "attended")):
        aid = b.appointment(pid, d, 11 * 60 + 30, case=case, kind="Package Session", state=state)
        item = "Did not arrive (package session)" if state == "dna" else "Standard Consultation"
        b.invoice(pid, d, SESSION_PRICE, "Paid", item, appointment=aid, credit=SESSION_PRICE)
    for d in (end + 3, end + 10):
        b.appointment(pid, d, 11 * 60 + 30, case=case, kind="Package Session", state="booked")

    # INVOICE_BALANCE_MISMATCH: Cliniko shows a $50.00 part payment the payments export lacks.
    pid = b.patient("900023", "Maya Haddad", 0, practitioner=2, business=1)
    aid = b.appointment(pid, 6)
    part_paid = b.invoice(pid, 6, SESSION_PRICE, "Open", "Standard Consultation", appointment=aid,
                          paid=5_000, cliniko_outstanding=4_500)
    b.plant("INVOICE_BALANCE_MISMATCH", "invoice", part_paid, pid,
            note="Cliniko: $45.00 owing, $50.00 paid; the exports hold no payment")

    # A group class (two patients in one appointment) and a practitioner's "Unavailable" block,
    # as Cliniko's appointments export holds them: neither changes any figure.
    b.appointment("900016", 5, 18 * 60, kind="Pilates Class", attendees="900016, 900021")
    b.unavailable("900001", 13, 12 * 60, 240)
    return b


# --------------------------------------------------------------------------------------------
# The bulk: vectorised, seeded; casual visits, method A and method B packages


def _group_starts(owner: np.ndarray) -> np.ndarray:
    """Index of the first row of each run of equal `owner` values (rows grouped by owner)."""
    if len(owner) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])


def _within_group_cumsum(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Running total of `values` restarting at each new owner (rows grouped by owner)."""
    total = np.cumsum(values)
    starts = _group_starts(owner)
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(owner)]))
    return total - (total[starts] - values[starts])[run]


def _bulk_tables(
    rng: np.random.Generator, patients: int, start: date, export_day: int, months: int
) -> dict[str, list[np.ndarray]]:
    """Bulk rows per kind as text columns (bytes cells) in header order."""
    n, days = patients, export_day
    clock = _Clock(start)
    casual, method_a, method_b = 0, 1, 2
    kind = rng.choice(3, size=n, p=[0.6, 0.22, 0.18])
    # Method A: a quarter export explicit credit allocations, the rest $0 payments left to
    # auto-allocation. Method B: half invoice each session at $0, half do not invoice sessions.
    variant = rng.random(n) < np.where(kind == method_a, 0.25, 0.5)
    business = (rng.random(n) < 0.4).astype(np.int64)
    practitioner = business * 3 + rng.integers(0, 3, n)
    first_name = rng.integers(0, len(FIRST_NAMES), n)
    last_name = rng.integers(0, len(LAST_NAMES), n)
    first_day = rng.integers(0, days, n)
    gap = np.where(
        kind == casual,
        rng.choice([7, 14, 21, 28], n, p=[0.2, 0.35, 0.25, 0.2]),
        rng.choice([7, 14], n, p=[0.6, 0.4]),
    )
    sessions = np.where(rng.random(n) < 0.6, 5, 10)
    purchase_day = first_day - rng.integers(1, 6, n)
    include_cancelled = rng.random(n) < 0.3
    include_dna = rng.random(n) < 0.5
    casual_case = (kind == casual) & (rng.random(n) < 0.3)
    books_ahead = rng.random(n) < 0.7
    cap = np.where(kind == casual, 1 + rng.poisson(0.9 * months, n), sessions + 8)
    is_package = kind != casual

    # Candidate visits every `gap` days from the first, up to the first one after the export date.
    horizon = (days + _FUTURE_DAYS - 1 - first_day) // gap + 1
    count = np.minimum(cap, horizon)
    owner = np.repeat(np.arange(n), count)
    j = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    day = first_day[owner] + j * gap[owner]
    past = day < days
    first_future = ~past & (day - gap[owner] < days)
    keep = past | (first_future & books_ahead[owner])
    owner, j, day, past = owner[keep], j[keep], day[keep], past[keep]
    m = len(owner)
    draw = rng.random(m)
    attended = past & (draw < 0.9)
    cancelled = past & (draw >= 0.9) & (draw < 0.96)
    dna = past & (draw >= 0.96)
    counted = ~past | attended | (cancelled & include_cancelled[owner]) | (dna & include_dna[owner])
    # Package patients stop attaching once the package is fully counted: counted <= maximum.
    before = _within_group_cumsum(counted.astype(np.int64), owner) - counted
    keep = ~is_package[owner] | (before < sessions[owner])
    owner, j, day, past = owner[keep], j[keep], day[keep], past[keep]
    attended, cancelled, dna, counted = attended[keep], cancelled[keep], dna[keep], counted[keep]
    m = len(owner)
    minute = _EARLIEST_START + 15 * rng.integers(0, 38, m)
    initial = (kind[owner] == casual) & (j == 0)
    length = np.where(initial, 45, 30)
    archived = (kind[owner] == casual) & cancelled & (rng.random(m) < 0.1)

    # Export order (and ids) follow the start time, as a booking system's would.
    order = np.lexsort((owner, minute, day))
    owner, j, day, past, minute, length = (
        owner[order],
        j[order],
        day[order],
        past[order],
        minute[order],
        length[order],
    )
    attended, cancelled, dna, counted = (
        attended[order],
        cancelled[order],
        dna[order],
        counted[order],
    )
    initial, archived = initial[order], archived[order]
    appt_id = _BULK_BASE["appointment"] + np.arange(m)
    case_of_patient = np.full(n, -1, dtype=np.int64)
    has_case = is_package | casual_case
    case_of_patient[has_case] = _BULK_BASE["case"] + np.arange(int(has_case.sum()))

    def stamps(d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return _mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.stamp(v // 1440, v % 1440), blank
        )

    def dates(d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return _mapped(d.astype(np.int64), clock.date, blank)

    def short_dates(d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return _mapped(d.astype(np.int64), clock.short_date, blank)

    def zoned(d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return _mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.zoned(v // 1440, v % 1440), blank
        )

    def constant(text: str, count: int, blank: np.ndarray | None = None) -> np.ndarray:
        return _vocab((text,), np.zeros(count, np.int64) if blank is None else -blank.astype(np.int64))

    prac_names = tuple(p for group in PRACTITIONERS for p in group)
    patient_id = _BULK_BASE["patient"] + np.arange(n)
    appt_type = np.where(initial, 0, np.where(is_package[owner], 2, 1))
    yes_no = ("No", "Yes")
    true_false = ("FALSE", "TRUE")
    # In Cliniko's column order; Invoice Number (index 19) is filled in once invoices exist.
    appointments = [
        _ids(appt_id),
        zoned(day, minute),
        short_dates(day),
        zoned(day, minute + length),
        _vocab(prac_names, practitioner[owner]),
        _vocab(PRACTITIONER_IDS, practitioner[owner]),
        _ids(patient_id[owner]),
        _vocab(("Initial Consultation", "Standard Consultation", "Package Session"), appt_type),
        _blank(m),
        _vocab(BUSINESSES, business[owner]),
        _vocab(true_false, dna.astype(np.int64)),
        _vocab(true_false, attended.astype(np.int64)),
        constant("TRUE", m),
        constant("TRUE", m),
        zoned(day - 1, 17 * 60 + 15 * (owner % 8), ~cancelled),
        constant("Feeling unwell", m, ~cancelled),
        _blank(m),
        zoned(day - 7, minute),
        _blank(m),
        _blank(m),
        _blank(m),
        _blank(m),
        constant("1", m),
        constant("1", m),
        _vocab(("0", "1"), cancelled.astype(np.int64)),
        _ids(case_of_patient[owner], case_of_patient[owner] < 0),
        stamps(day + 1, np.full(m, 9 * 60), ~archived),
    ]

    # Cases: one per package patient (method A without a price, method B with), some unlimited.
    cp = np.flatnonzero(has_case)
    case_first = np.full(n, days, dtype=np.int64)
    np.minimum.at(case_first, owner, day)
    issue = np.where(is_package[cp], purchase_day[cp], case_first[cp])
    case_kind = np.where(is_package[cp], np.where(sessions[cp] == 5, 0, 1), 2 + cp % 4)
    case_names = (
        "Physio 5-session package",
        "Physio 10-session package",
        "Lower back pain",
        "Shoulder rehab",
        "Knee - post surgery",
        "Neck pain",
    )
    package_price = np.where(sessions == 5, PACKAGE_PRICES[5], PACKAGE_PRICES[10])
    k = len(cp)
    cases = [
        _ids(case_of_patient[cp]),
        _ids(patient_id[cp]),
        _vocab(case_names, case_kind),
        _ids(sessions[cp], ~is_package[cp]),
        _vocab(yes_no, (include_cancelled[cp] & is_package[cp]).astype(np.int64)),
        _vocab(yes_no, (include_dna[cp] & is_package[cp]).astype(np.int64)),
        dates(issue),
        dates(issue + 365, ~is_package[cp]),
        _blank(k),
        _blank(k),
        _mapped(package_price[cp], format_dollars, kind[cp] != method_b),
    ]

    # Invoices, payments, allocations: built as parts, then sorted by date and numbered.
    row_kind = kind[owner]
    last_visit = np.full(n, -1, dtype=np.int64)
    casual_billed = np.flatnonzero((row_kind == casual) & attended)
    np.maximum.at(last_visit, owner[casual_billed], casual_billed)
    unpaid = np.zeros(m, dtype=bool)
    unpaid[casual_billed] = (last_visit[owner[casual_billed]] == casual_billed) & (
        rng.random(len(casual_billed)) < 0.03
    )
    refunded = np.zeros(m, dtype=bool)
    refunded[casual_billed] = (rng.random(len(casual_billed)) < 0.004) & (
        day[casual_billed] + 1 < days
    )
    refunded &= ~unpaid
    a_billed = np.flatnonzero((row_kind == method_a) & past & counted)
    b_zero = np.flatnonzero((row_kind == method_b) & attended & variant[owner])
    buyers = np.flatnonzero(kind == method_b)
    prepayers = np.flatnonzero(kind == method_a)
    credit_noted = np.flatnonzero(refunded)

    end_minute = minute + length
    # Each invoice part: (patient, day, total, status, appointment row, case id, item, original)
    inv_patient = np.concatenate(
        [owner[casual_billed], owner[a_billed], buyers, owner[b_zero], owner[credit_noted]]
    )
    inv_day = np.concatenate(
        [
            day[casual_billed],
            day[a_billed],
            purchase_day[buyers],
            day[b_zero],
            day[credit_noted] + 1,
        ]
    )
    casual_price = np.where(initial[casual_billed], INITIAL_PRICE, SESSION_PRICE)
    noted_price = np.where(initial[credit_noted], INITIAL_PRICE, SESSION_PRICE)
    inv_total = np.concatenate(
        [
            casual_price,
            np.full(len(a_billed), SESSION_PRICE),
            package_price[buyers],
            np.zeros(len(b_zero), dtype=np.int64),
            -noted_price,
        ]
    )
    # Status codes index ("Paid", "Open", "") : a credit note's status is left blank.
    inv_status = np.concatenate(
        [
            unpaid[casual_billed].astype(np.int64),
            np.zeros(len(a_billed), np.int64),
            np.zeros(len(buyers), np.int64),
            np.zeros(len(b_zero), np.int64),
            np.full(len(credit_noted), 2),
        ]
    )
    no_row = np.full(len(buyers), -1)
    inv_appt_row = np.concatenate(
        [casual_billed, a_billed, no_row, b_zero, np.full(len(credit_noted), -1)]
    )
    inv_case = np.concatenate(
        [
            np.full(len(casual_billed) + len(a_billed), -1),
            case_of_patient[buyers],
            case_of_patient[owner[b_zero]],
            np.full(len(credit_noted), -1),
        ]
    )
    # What paid each invoice, as Cliniko's Payments Applied and Credit Applied say: desk
    # payments on the day (casual visits, package purchases), account credit (method A).
    inv_paid = np.concatenate(
        [
            np.where(unpaid[casual_billed], 0, casual_price),
            np.zeros(len(a_billed), np.int64),
            package_price[buyers],
            np.zeros(len(b_zero) + len(credit_noted), np.int64),
        ]
    )
    inv_credit = np.concatenate(
        [
            np.zeros(len(casual_billed), np.int64),
            np.full(len(a_billed), SESSION_PRICE),
            np.zeros(len(buyers) + len(b_zero) + len(credit_noted), np.int64),
        ]
    )
    part_sizes = [len(casual_billed), len(a_billed), len(buyers), len(b_zero), len(credit_noted)]
    inv_part = np.repeat(np.arange(5), part_sizes)
    n_inv = len(inv_patient)
    inv_order = np.lexsort((np.arange(n_inv), inv_part, inv_day))
    inv_rank = np.empty(n_inv, dtype=np.int64)
    inv_rank[inv_order] = np.arange(n_inv)
    inv_id = _BULK_BASE["invoice"] + inv_rank
    offsets = np.cumsum([0, *part_sizes])
    billed_position = np.full(m, -1, dtype=np.int64)
    billed_position[casual_billed] = np.arange(len(casual_billed))
    inv_original = np.full(n_inv, -1, dtype=np.int64)
    inv_original[offsets[4] :] = inv_id[billed_position[credit_noted]]
    inv_appt = np.where(inv_appt_row >= 0, appt_id[np.maximum(inv_appt_row, 0)], -1)
    o = inv_order
    inv_id, inv_patient, inv_day, inv_total, inv_status = (
        inv_id[o],
        inv_patient[o],
        inv_day[o],
        inv_total[o],
        inv_status[o],
    )
    inv_appt, inv_case, inv_original, inv_appt_row = (
        inv_appt[o],
        inv_case[o],
        inv_original[o],
        inv_appt_row[o],
    )
    inv_paid, inv_credit = inv_paid[o], inv_credit[o]
    inv_number = inv_id - _BULK_BASE["invoice"] + _BULK_BASE["number"]
    inv_outstanding = np.maximum(inv_total - inv_paid - inv_credit, 0)
    invoiced = inv_appt_row >= 0
    appt_number = np.full(m, -1, dtype=np.int64)
    appt_number[inv_appt_row[invoiced]] = inv_number[invoiced]
    appointments[19] = _ids(appt_number, appt_number < 0)
    appt_start = np.where(invoiced, (day * 1440 + minute)[np.maximum(inv_appt_row, 0)], 0)
    n_inv = len(inv_id)
    invoices = [
        _ids(inv_number),
        short_dates(inv_day),
        _vocab(prac_names, practitioner[inv_patient]),
        _mapped(inv_total, format_plain),
        constant("0.00", n_inv),
        constant("0.00", n_inv),
        _mapped(inv_total, format_plain),
        _blank(n_inv),
        _vocab(("Paid", "Open", ""), inv_status),
        short_dates(inv_day, inv_status != 0),
        _vocab(prac_names, practitioner[inv_patient]),
        _ids(inv_appt, inv_appt < 0),
        _vocab(BUSINESSES, business[inv_patient]),
        _blank(n_inv),
        _ids(patient_id[inv_patient]),
        _mapped(inv_outstanding, format_plain),
        _mapped(inv_paid, format_plain),
        _mapped(inv_credit, format_plain),
        constant("0.00", n_inv),
        _mapped(appt_start, lambda v: clock.short_stamp(v // 1440, v % 1440), ~invoiced),
        _ids(inv_id),
        _ids(inv_case, inv_case < 0),
        _ids(inv_original, inv_original < 0),
    ]

    # Payments: desk payments, pre-payments, package purchases, $0 credit payments, refunds.
    paid_rows = casual_billed[~unpaid[casual_billed]]
    a_zero = a_billed[~variant[owner[a_billed]]]
    pay_patient = np.concatenate(
        [owner[paid_rows], prepayers, buyers, owner[a_zero], owner[credit_noted]]
    )
    pay_day = np.concatenate(
        [
            day[paid_rows],
            purchase_day[prepayers],
            purchase_day[buyers],
            day[a_zero],
            day[credit_noted] + 1,
        ]
    )
    pay_minute = np.concatenate(
        [
            end_minute[paid_rows] + 2,
            12 * 60 + prepayers % 120,
            12 * 60 + buyers % 120,
            end_minute[a_zero] + 2,
            np.full(len(credit_noted), 11 * 60),
        ]
    )
    pay_amount = np.concatenate(
        [
            np.where(initial[paid_rows], INITIAL_PRICE, SESSION_PRICE),
            sessions[prepayers] * SESSION_PRICE,
            package_price[buyers],
            np.zeros(len(a_zero), dtype=np.int64),
            -noted_price,
        ]
    )
    methods = (*PAYMENT_METHODS, "Account credit")
    pay_method = np.concatenate(
        [
            rng.integers(0, len(PAYMENT_METHODS), len(paid_rows)),
            np.ones(len(prepayers) + len(buyers), np.int64),
            np.full(len(a_zero), 4),
            np.zeros(len(credit_noted), np.int64),
        ]
    )
    notes = (
        "",
        "Pre-payment: 5-session package",
        "Pre-payment: 10-session package",
        "Package purchase: Physio 5-session package",
        "Package purchase: Physio 10-session package",
        "Paid from account credit",
        "Refund of credit note",
    )
    pay_note = np.concatenate(
        [
            np.zeros(len(paid_rows), np.int64),
            np.where(sessions[prepayers] == 5, 1, 2),
            np.where(sessions[buyers] == 5, 3, 4),
            np.full(len(a_zero), 5),
            np.full(len(credit_noted), 6),
        ]
    )
    n_pay = len(pay_patient)
    o = np.lexsort((np.arange(n_pay), pay_day * 1440 + pay_minute))
    pay_patient, pay_day, pay_minute, pay_amount = (
        pay_patient[o],
        pay_day[o],
        pay_minute[o],
        pay_amount[o],
    )
    pay_method, pay_note = pay_method[o], pay_note[o]
    payments = [
        _ids(_BULK_BASE["payment"] + np.arange(n_pay)),
        _ids(patient_id[pay_patient]),
        stamps(pay_day, pay_minute),
        _mapped(pay_amount, format_dollars),
        _vocab(methods, pay_method),
        _vocab(notes, pay_note),
        _blank(n_pay),
    ]

    # Credit at the export date, in closed form: only method A patients hold any. Casual visits
    # are paid on the day (or left open on the last visit), credit notes are paid straight out,
    # and packages bought outright leave nothing over.
    used = np.bincount(owner[a_billed], minlength=n)
    credit = np.where(kind == method_a, (sessions - used) * SESSION_PRICE, 0)
    patients_cols = [
        _mapped(patient_id, lambda v: f'="{v}"'),  # Cliniko writes long ids Excel-safe
        _vocab(FIRST_NAMES, first_name),
        _vocab(LAST_NAMES, last_name),
        _mapped(credit, format_dollars, credit == 0),  # blank: no credit
    ]
    return {
        "appointments": appointments,
        "cases": cases,
        "invoices": invoices,
        "payments": payments,
        "patients": patients_cols,
    }


# --------------------------------------------------------------------------------------------
# Public API

_DEFAULT_START = date(2026, 8, 1)


def _planted_index(plants: list[Plant]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in plants:
        out.setdefault(p.code, []).append(p.subject_id)
    return out


_DEFAULT_BLOCK = _build_plants(
    _DEFAULT_START, (period_end(_DEFAULT_START, 3) - _DEFAULT_START).days
)
PLANTS: tuple[Plant, ...] = tuple(_DEFAULT_BLOCK.plants)
# Finding code -> subject ids (case, patient or invoice ids, as `Plant.subject_type` says) that
# every sample made by `generate` contains, whatever its size, seed, start or number of months.
PLANTED: dict[str, list[str]] = _planted_index(list(PLANTS))
# The true account credit (cents) of each planted patient at the export date, worked by hand.
PLANTED_CREDIT: dict[str, int] = dict(_DEFAULT_BLOCK.expected_credit)


def export_files(
    out_dir: Path, start: date = _DEFAULT_START, months: int = 3, fmt: str = "csv"
) -> dict[str, Path]:
    """The file each kind goes to, named like Cliniko's exports with the export date."""
    stamp = period_end(start, months).strftime("%Y%m%d")
    return {kind: Path(out_dir) / f"{FILE_STEMS[kind]}-Cliniko-{stamp}.{fmt}" for kind in HEADERS}


def build_tables(
    *, patients: int = 300, months: int = 3, seed: int = 7, start: date = _DEFAULT_START
) -> dict[str, ExportTable]:
    """Bulk plus planted rows per kind, in memory (what `generate` writes)."""
    if patients < 0:
        raise UsageError(f"--patients must be 0 or more, not {patients}.")
    if months < 1:
        raise UsageError(f"--months must be 1 or more, not {months}.")
    export_day = (period_end(start, months) - start).days
    rng = np.random.default_rng(seed)
    bulk = _bulk_tables(rng, patients, start, export_day, months)
    block = _build_plants(start, export_day)
    return {kind: ExportTable(HEADERS[kind], bulk[kind], block.rows[kind]) for kind in HEADERS}


def generate(
    out_dir: Path,
    *,
    patients: int = 300,
    months: int = 3,
    seed: int = 7,
    start: date = _DEFAULT_START,
    fmt: str = "csv",
) -> list[Path]:
    """Write one export file per kind into `out_dir` and return their paths.

    The same arguments give byte-identical files. `patients` bulk patients are generated with
    `numpy.random.default_rng(seed)` over `months` months from `start`; the planted patients of
    `PLANTS` are added to every run. Only the six files named by `export_files` are written, each
    atomically; nothing else in `out_dir` is touched.
    """
    if fmt not in ("csv", "xlsx"):
        raise UsageError(f"--format must be csv or xlsx, not {fmt!r}.")
    out_dir = Path(out_dir)
    tables = build_tables(patients=patients, months=months, seed=seed, start=start)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = export_files(out_dir, start, months, fmt)
    written = []
    for kind, table in tables.items():
        if fmt == "csv":
            write_atomic(paths[kind], table.csv_chunks())
        else:
            write_atomic(paths[kind], [_xlsx_bytes(table, FILE_STEMS[kind])])
        written.append(paths[kind])
    return written


def _xlsx_bytes(table: ExportTable, sheet: str) -> bytes:
    import io
    from datetime import datetime

    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    # A fixed creation time keeps the workbook byte-identical from run to run.
    workbook.set_properties({"created": datetime(2000, 1, 1)})
    worksheet = workbook.add_worksheet(sheet)
    for col, header in enumerate(table.headers):
        worksheet.write_string(0, col, header)
    for r, row in enumerate(table.text_rows(), start=1):
        for col, value in enumerate(row):
            if value != "":
                worksheet.write_string(r, col, value)
    workbook.close()
    return buffer.getvalue()
