"""The export formats of the demo: Cliniko's headers and file names, the clinic's vocabulary, and
the writers of CSV and XLSX bytes."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

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
)
CLINIKO_INVOICE_HEADERS: tuple[str, ...] = (
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
EARLIEST_START = 11 * 60

# Id ranges: the planted block's ids never collide with the bulk's, whatever the size.
BULK_BASE = {
    "patient": 1_000_001,
    "case": 5_000_001,
    "appointment": 200_000_001,
    "invoice": 300_000_001,
    "number": 100_001,
    "payment": 400_000_001,
}
_CHUNK_ROWS = 131_072
_RECORD_END = b"\r\n"  # Cliniko's exports end every record in CRLF
FUTURE_DAYS = 28  # upcoming bookings reach this far past the export date


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


class Clock:
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
        local = datetime.combine(
            self.day(offset), time(minute // 60, minute % 60), tzinfo=ZoneInfo(CLINIC_ZONE)
        )
        return local.strftime("%Y-%m-%d %H:%M:%S %z")


# --------------------------------------------------------------------------------------------
# Vectorised text columns: numpy bytes arrays (`S` dtype) assembled into CSV without a row loop


def _encode(strings: list[str]) -> np.ndarray:
    encoded = [_quote(s).encode("utf-8") for s in strings]
    width = max([1, *(len(b) for b in encoded)])
    return np.array(encoded, dtype=f"S{width}")


def vocab(strings: tuple[str, ...] | list[str], codes: np.ndarray) -> np.ndarray:
    """Row i is `strings[codes[i]]`; a code of -1 is a blank cell."""
    table = _encode([*strings, ""])
    return table[np.where(codes < 0, len(strings), codes)]


def mapped(
    values: np.ndarray, render: Callable[[int], str], blank: np.ndarray | None = None
) -> np.ndarray:
    """Render each distinct value once in Python, then index: fast when values repeat."""
    uniques, inverse = np.unique(values, return_inverse=True)
    table = _encode([render(int(v)) for v in uniques] + [""])
    inverse = inverse.reshape(-1)
    if blank is not None:
        inverse = np.where(blank, len(uniques), inverse)
    return table[inverse]


def id_texts(values: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
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


def blanks(n: int) -> np.ndarray:
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


def xlsx_bytes(table: ExportTable, sheet: str) -> bytes:
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
