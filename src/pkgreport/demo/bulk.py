"""The bulk of the demo as Cliniko's text columns, built from the seeded draws of `bulk_draws`."""

from __future__ import annotations

from datetime import date

import numpy as np

from pkgreport.demo.bulk_draws import (
    METHOD_A,
    METHOD_B,
    Billing,
    Invoices,
    Payments,
    People,
    Visits,
    bill_visits,
    case_ids,
    draw_people,
    draw_visits,
    invoice_parts,
    number_invoices,
    payment_parts,
)
from pkgreport.demo.formats import (
    BULK_BASE,
    BUSINESSES,
    FIRST_NAMES,
    LAST_NAMES,
    PAYMENT_METHODS,
    PRACTITIONER_IDS,
    PRACTITIONERS,
    SESSION_PRICE,
    Clock,
    blanks,
    id_texts,
    mapped,
    vocab,
)
from pkgreport.money import format_dollars, format_plain

_PRACTITIONER_NAMES = tuple(p for group in PRACTITIONERS for p in group)
_CASE_NAMES = (
    "Physio 5-session package",
    "Physio 10-session package",
    "Lower back pain",
    "Shoulder rehab",
    "Knee - post surgery",
    "Neck pain",
)
_PAYMENT_NOTES = (
    "",
    "Pre-payment: 5-session package",
    "Pre-payment: 10-session package",
    "Package purchase: Physio 5-session package",
    "Package purchase: Physio 10-session package",
    "Paid from account credit",
    "Refund of credit note",
)
_YES_NO = ("No", "Yes")
_TRUE_FALSE = ("FALSE", "TRUE")


def bulk_tables(
    rng: np.random.Generator, patients: int, start: date, export_day: int, months: int
) -> dict[str, list[np.ndarray]]:
    """Bulk rows per kind as text columns (bytes cells) in header order.

    The draws from `rng` happen in a fixed order (patients, visits, billing, payment methods):
    the same seed always gives the same bytes.
    """
    text = _Text(Clock(start))
    people = draw_people(rng, patients, export_day, months)
    visits = draw_visits(rng, people, export_day)
    case_of_patient = case_ids(people)
    billing = bill_visits(rng, people, visits, export_day)
    parts = invoice_parts(people, visits, billing, case_of_patient)
    invoices = number_invoices(parts, visits, billing)
    payments = payment_parts(rng, people, visits, billing)
    return {
        "appointments": _appointment_columns(people, visits, invoices, case_of_patient, text),
        "cases": _case_columns(people, visits, case_of_patient, export_day, text),
        "invoices": _invoice_columns(people, visits, invoices, text),
        "payments": _payment_columns(people, payments, text),
        "patients": _patient_columns(people, visits, billing),
    }


class _Text:
    """The exports' text cells for day offsets and minutes, through the demo's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def stamps(
        self, d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None
    ) -> np.ndarray:
        clock = self.clock
        return mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.stamp(v // 1440, v % 1440), blank
        )

    def dates(self, d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(d.astype(np.int64), self.clock.date, blank)

    def short_dates(self, d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(d.astype(np.int64), self.clock.short_date, blank)

    def short_stamps(self, minutes: np.ndarray, blank: np.ndarray) -> np.ndarray:
        clock = self.clock
        return mapped(minutes, lambda v: clock.short_stamp(v // 1440, v % 1440), blank)

    def zoned(self, d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        clock = self.clock
        return mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.zoned(v // 1440, v % 1440), blank
        )

    @staticmethod
    def constant(text: str, count: int, blank: np.ndarray | None = None) -> np.ndarray:
        return vocab(
            (text,), np.zeros(count, np.int64) if blank is None else -blank.astype(np.int64)
        )


# ------------------------------------------------------------------------------- text columns


def _appointment_columns(
    people: People,
    visits: Visits,
    invoices: Invoices,
    case_of_patient: np.ndarray,
    text: _Text,
) -> list[np.ndarray]:
    """The appointments export in Cliniko's column order."""
    owner, day, minute, cancelled = visits.owner, visits.day, visits.minute, visits.cancelled
    m = len(owner)
    practitioner = people.practitioner[owner]
    appt_type = np.where(visits.initial, 0, np.where(people.is_package[owner], 2, 1))
    invoice_number = np.full(m, -1, dtype=np.int64)
    invoiced = invoices.appointment_row >= 0
    invoice_number[invoices.appointment_row[invoiced]] = invoices.number[invoiced]
    return [
        id_texts(visits.appointment_id),
        text.zoned(day, minute),
        text.short_dates(day),
        text.zoned(day, minute + visits.length),
        vocab(_PRACTITIONER_NAMES, practitioner),
        vocab(PRACTITIONER_IDS, practitioner),
        id_texts(people.patient_id[owner]),
        vocab(("Initial Consultation", "Standard Consultation", "Package Session"), appt_type),
        blanks(m),
        vocab(BUSINESSES, people.business[owner]),
        vocab(_TRUE_FALSE, visits.dna.astype(np.int64)),
        vocab(_TRUE_FALSE, visits.attended.astype(np.int64)),
        text.constant("TRUE", m),
        text.constant("TRUE", m),
        text.zoned(day - 1, 17 * 60 + 15 * (owner % 8), ~cancelled),
        text.constant("Feeling unwell", m, ~cancelled),
        blanks(m),
        text.zoned(day - 7, minute),
        blanks(m),
        id_texts(invoice_number, invoice_number < 0),
        blanks(m),
        blanks(m),
        text.constant("1", m),
        text.constant("1", m),
        vocab(("0", "1"), cancelled.astype(np.int64)),
        id_texts(case_of_patient[owner], case_of_patient[owner] < 0),
        text.stamps(day + 1, np.full(m, 9 * 60), ~visits.archived),
    ]


def _case_columns(
    people: People, visits: Visits, case_of_patient: np.ndarray, days: int, text: _Text
) -> list[np.ndarray]:
    """The cases export: one per package patient (method A without a price, method B with) and
    some casual patients' treatment cases, which have no maximum."""
    cp = np.flatnonzero(case_of_patient >= 0)
    case_first = np.full(len(people.kind), days, dtype=np.int64)
    np.minimum.at(case_first, visits.owner, visits.day)
    is_package = people.is_package[cp]
    issue = np.where(is_package, people.purchase_day[cp], case_first[cp])
    case_kind = np.where(is_package, np.where(people.sessions[cp] == 5, 0, 1), 2 + cp % 4)
    k = len(cp)
    return [
        id_texts(case_of_patient[cp]),
        id_texts(people.patient_id[cp]),
        vocab(_CASE_NAMES, case_kind),
        id_texts(people.sessions[cp], ~is_package),
        vocab(_YES_NO, (people.include_cancelled[cp] & is_package).astype(np.int64)),
        vocab(_YES_NO, (people.include_dna[cp] & is_package).astype(np.int64)),
        text.dates(issue),
        text.dates(issue + 365, ~is_package),
        blanks(k),
        blanks(k),
        mapped(people.package_price[cp], format_dollars, people.kind[cp] != METHOD_B),
    ]


def _invoice_columns(
    people: People, visits: Visits, inv: Invoices, text: _Text
) -> list[np.ndarray]:
    """The invoices export in Cliniko's column order."""
    n_inv = len(inv.invoice_id)
    practitioner = people.practitioner[inv.patient]
    invoiced = inv.appointment_row >= 0
    visit_start = (visits.day * 1440 + visits.minute)[np.maximum(inv.appointment_row, 0)]
    appt_start = np.where(invoiced, visit_start, 0)
    return [
        id_texts(inv.number),
        text.short_dates(inv.day),
        vocab(_PRACTITIONER_NAMES, practitioner),
        mapped(inv.total, format_plain),
        text.constant("0.00", n_inv),
        text.constant("0.00", n_inv),
        mapped(inv.total, format_plain),
        blanks(n_inv),
        vocab(("Paid", "Open", ""), inv.status),
        text.short_dates(inv.day, inv.status != 0),
        vocab(_PRACTITIONER_NAMES, practitioner),
        id_texts(inv.appointment_id, inv.appointment_id < 0),
        vocab(BUSINESSES, people.business[inv.patient]),
        blanks(n_inv),
        id_texts(people.patient_id[inv.patient]),
        mapped(inv.outstanding, format_plain),
        mapped(inv.paid, format_plain),
        mapped(inv.credit, format_plain),
        text.constant("0.00", n_inv),
        text.short_stamps(appt_start, ~invoiced),
        id_texts(inv.invoice_id),
        id_texts(inv.case_id, inv.case_id < 0),
        id_texts(inv.original, inv.original < 0),
    ]


def _payment_columns(people: People, pay: Payments, text: _Text) -> list[np.ndarray]:
    """The payments export, sorted by time and numbered."""
    n_pay = len(pay.patient)
    o = np.lexsort((np.arange(n_pay), pay.day * 1440 + pay.minute))
    return [
        id_texts(BULK_BASE["payment"] + np.arange(n_pay)),
        id_texts(people.patient_id[pay.patient[o]]),
        text.stamps(pay.day[o], pay.minute[o]),
        mapped(pay.amount[o], format_dollars),
        vocab((*PAYMENT_METHODS, "Account credit"), pay.method[o]),
        vocab(_PAYMENT_NOTES, pay.note[o]),
        blanks(n_pay),
    ]


def _patient_columns(people: People, visits: Visits, b: Billing) -> list[np.ndarray]:
    """The patients export with each one's credit at the export date, in closed form: only method
    A patients hold any. Casual visits are paid on the day (or left open on the last visit),
    credit notes are paid straight out, and packages bought outright leave nothing over."""
    used = np.bincount(visits.owner[b.a_billed], minlength=len(people.kind))
    credit = np.where(people.kind == METHOD_A, (people.sessions - used) * SESSION_PRICE, 0)
    return [
        mapped(people.patient_id, lambda v: f'="{v}"'),  # Cliniko writes long ids Excel-safe
        vocab(FIRST_NAMES, people.first_name),
        vocab(LAST_NAMES, people.last_name),
        mapped(credit, format_dollars, credit == 0),  # blank: no credit
    ]
