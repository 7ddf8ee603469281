"""The bulk of the demo as seeded arrays: patients, their visits, and what is invoiced and paid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pkgreport.demo.formats import (
    BULK_BASE,
    EARLIEST_START,
    FIRST_NAMES,
    FUTURE_DAYS,
    INITIAL_PRICE,
    LAST_NAMES,
    PACKAGE_PRICES,
    PAYMENT_METHODS,
    SESSION_PRICE,
)

# How a bulk patient pays: casual visits paid at the desk; method A pre-pays a package as account
# credit that each invoiced session uses; method B buys the package on one invoice naming the case.
CASUAL, METHOD_A, METHOD_B = 0, 1, 2


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


# ---------------------------------------------------------------------------- patients, visits


@dataclass(frozen=True)
class People:
    """The bulk patients, one element each, all drawn up front."""

    kind: np.ndarray  # CASUAL, METHOD_A or METHOD_B
    # Method A: a quarter export explicit credit allocations, the rest $0 payments left to
    # auto-allocation. Method B: half invoice each session at $0, half do not invoice sessions.
    variant: np.ndarray
    business: np.ndarray
    practitioner: np.ndarray  # index into the practitioners, three per business
    first_name: np.ndarray
    last_name: np.ndarray
    first_day: np.ndarray  # day of the first visit
    gap: np.ndarray  # days between visits
    sessions: np.ndarray  # the package's sessions (5 or 10)
    purchase_day: np.ndarray
    include_cancelled: np.ndarray
    include_dna: np.ndarray
    casual_case: np.ndarray  # a casual patient with a (treatment) case
    books_ahead: np.ndarray  # has the next visit booked after the export date
    cap: np.ndarray  # the most visits the patient makes

    @property
    def is_package(self) -> np.ndarray:
        return self.kind != CASUAL

    @property
    def patient_id(self) -> np.ndarray:
        return BULK_BASE["patient"] + np.arange(len(self.kind))

    @property
    def package_price(self) -> np.ndarray:
        return np.where(self.sessions == 5, PACKAGE_PRICES[5], PACKAGE_PRICES[10])


def draw_people(rng: np.random.Generator, n: int, days: int, months: int) -> People:
    kind = rng.choice(3, size=n, p=[0.6, 0.22, 0.18])
    variant = rng.random(n) < np.where(kind == METHOD_A, 0.25, 0.5)
    business = (rng.random(n) < 0.4).astype(np.int64)
    practitioner = business * 3 + rng.integers(0, 3, n)
    first_name = rng.integers(0, len(FIRST_NAMES), n)
    last_name = rng.integers(0, len(LAST_NAMES), n)
    first_day = rng.integers(0, days, n)
    gap = np.where(
        kind == CASUAL,
        rng.choice([7, 14, 21, 28], n, p=[0.2, 0.35, 0.25, 0.2]),
        rng.choice([7, 14], n, p=[0.6, 0.4]),
    )
    sessions = np.where(rng.random(n) < 0.6, 5, 10)
    purchase_day = first_day - rng.integers(1, 6, n)
    include_cancelled = rng.random(n) < 0.3
    include_dna = rng.random(n) < 0.5
    casual_case = (kind == CASUAL) & (rng.random(n) < 0.3)
    books_ahead = rng.random(n) < 0.7
    cap = np.where(kind == CASUAL, 1 + rng.poisson(0.9 * months, n), sessions + 8)
    return People(
        kind=kind,
        variant=variant,
        business=business,
        practitioner=practitioner,
        first_name=first_name,
        last_name=last_name,
        first_day=first_day,
        gap=gap,
        sessions=sessions,
        purchase_day=purchase_day,
        include_cancelled=include_cancelled,
        include_dna=include_dna,
        casual_case=casual_case,
        books_ahead=books_ahead,
        cap=cap,
    )


def case_ids(people: People) -> np.ndarray:
    """Each patient's case id, -1 for none: every package patient and some casual ones have one."""
    case_of_patient = np.full(len(people.kind), -1, dtype=np.int64)
    has_case = people.is_package | people.casual_case
    case_of_patient[has_case] = BULK_BASE["case"] + np.arange(int(has_case.sum()))
    return case_of_patient


@dataclass(frozen=True)
class Visits:
    """The bulk appointments in export order (by start time), one element each."""

    owner: np.ndarray  # the patient (index into `People`)
    number: np.ndarray  # the patient's visit number, 0 for the first
    day: np.ndarray
    past: np.ndarray  # before the export date (else booked ahead)
    minute: np.ndarray  # start, minutes after midnight
    length: np.ndarray  # minutes
    attended: np.ndarray
    cancelled: np.ndarray
    dna: np.ndarray
    counted: np.ndarray  # counted by the patient's case
    initial: np.ndarray  # a casual patient's first visit (an initial consultation)
    archived: np.ndarray

    @property
    def appointment_id(self) -> np.ndarray:
        return BULK_BASE["appointment"] + np.arange(len(self.owner))

    def price(self, rows: np.ndarray) -> np.ndarray:
        """What the visits `rows` cost: an initial consultation or a standard session."""
        return np.where(self.initial[rows], INITIAL_PRICE, SESSION_PRICE)


def _candidate_visits(people: People, days: int) -> tuple[np.ndarray, ...]:
    """(owner, visit number, day, past) of the visits every `gap` days from the first, up to the
    first one after the export date (kept when the patient books ahead)."""
    horizon = (days + FUTURE_DAYS - 1 - people.first_day) // people.gap + 1
    count = np.minimum(people.cap, horizon)
    owner = np.repeat(np.arange(len(count)), count)
    number = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    day = people.first_day[owner] + number * people.gap[owner]
    past = day < days
    first_future = ~past & (day - people.gap[owner] < days)
    keep = past | (first_future & people.books_ahead[owner])
    return owner[keep], number[keep], day[keep], past[keep]


def draw_visits(rng: np.random.Generator, people: People, days: int) -> Visits:
    owner, number, day, past = _candidate_visits(people, days)
    draw = rng.random(len(owner))
    attended = past & (draw < 0.9)
    cancelled = past & (draw >= 0.9) & (draw < 0.96)
    dna = past & (draw >= 0.96)
    counted = (
        ~past
        | attended
        | (cancelled & people.include_cancelled[owner])
        | (dna & people.include_dna[owner])
    )
    # Package patients stop attaching once the package is fully counted: counted <= maximum.
    before = _within_group_cumsum(counted.astype(np.int64), owner) - counted
    keep = ~people.is_package[owner] | (before < people.sessions[owner])
    owner, number, day, past = owner[keep], number[keep], day[keep], past[keep]
    attended, cancelled, dna, counted = attended[keep], cancelled[keep], dna[keep], counted[keep]
    m = len(owner)
    minute = EARLIEST_START + 15 * rng.integers(0, 38, m)
    initial = (people.kind[owner] == CASUAL) & (number == 0)
    length = np.where(initial, 45, 30)
    archived = (people.kind[owner] == CASUAL) & cancelled & (rng.random(m) < 0.1)
    # Export order (and ids) follow the start time, as a booking system's would.
    order = np.lexsort((owner, minute, day))
    return Visits(
        owner=owner[order],
        number=number[order],
        day=day[order],
        past=past[order],
        minute=minute[order],
        length=length[order],
        attended=attended[order],
        cancelled=cancelled[order],
        dna=dna[order],
        counted=counted[order],
        initial=initial[order],
        archived=archived[order],
    )


# ------------------------------------------------------------------------------------ billing


@dataclass(frozen=True)
class Billing:
    """Who is billed for what: visit rows (indices into `Visits`) and patients (into `People`)."""

    casual_billed: np.ndarray  # attended casual visits, invoiced on the day
    unpaid: np.ndarray  # per visit: its casual invoice is left open (only ever the last visit)
    credit_noted: np.ndarray  # casual visits credited back the next day and refunded
    a_billed: np.ndarray  # method A sessions invoiced and paid from account credit
    b_zero: np.ndarray  # method B sessions invoiced at $0
    buyers: np.ndarray  # method B patients: one package invoice, paid in full
    prepayers: np.ndarray  # method A patients: a pre-payment on account


def bill_visits(rng: np.random.Generator, people: People, visits: Visits, days: int) -> Billing:
    owner, day = visits.owner, visits.day
    m = len(owner)
    row_kind = people.kind[owner]
    last_visit = np.full(len(people.kind), -1, dtype=np.int64)
    casual_billed = np.flatnonzero((row_kind == CASUAL) & visits.attended)
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
    return Billing(
        casual_billed=casual_billed,
        unpaid=unpaid,
        credit_noted=np.flatnonzero(refunded),
        a_billed=np.flatnonzero((row_kind == METHOD_A) & visits.past & visits.counted),
        b_zero=np.flatnonzero((row_kind == METHOD_B) & visits.attended & people.variant[owner]),
        buyers=np.flatnonzero(people.kind == METHOD_B),
        prepayers=np.flatnonzero(people.kind == METHOD_A),
    )


def invoice_parts(
    people: People, visits: Visits, b: Billing, case_of_patient: np.ndarray
) -> dict[str, np.ndarray]:
    """The invoices as five parts in this order, not yet sorted or numbered: casual visits,
    method A sessions, method B package purchases, method B $0 sessions, credit notes."""
    owner, day = visits.owner, visits.day
    casual_price = visits.price(b.casual_billed)
    parts = (b.casual_billed, b.a_billed, b.buyers, b.b_zero, b.credit_noted)
    none = np.full(len(b.buyers), -1)
    return {
        "part": np.repeat(np.arange(5), [len(p) for p in parts]),
        "patient": np.concatenate(
            [
                owner[b.casual_billed],
                owner[b.a_billed],
                b.buyers,
                owner[b.b_zero],
                owner[b.credit_noted],
            ]
        ),
        "day": np.concatenate(
            [
                day[b.casual_billed],
                day[b.a_billed],
                people.purchase_day[b.buyers],
                day[b.b_zero],
                day[b.credit_noted] + 1,
            ]
        ),
        "appointment_row": np.concatenate(
            [b.casual_billed, b.a_billed, none, b.b_zero, np.full(len(b.credit_noted), -1)]
        ),
        "case_id": np.concatenate(
            [
                np.full(len(b.casual_billed) + len(b.a_billed), -1),
                case_of_patient[b.buyers],
                case_of_patient[owner[b.b_zero]],
                np.full(len(b.credit_noted), -1),
            ]
        ),
        "total": np.concatenate(
            [
                casual_price,
                np.full(len(b.a_billed), SESSION_PRICE),
                people.package_price[b.buyers],
                np.zeros(len(b.b_zero), dtype=np.int64),
                -visits.price(b.credit_noted),
            ]
        ),
        # Status codes index ("Paid", "Open", ""): a credit note's status is left blank.
        "status": np.concatenate(
            [
                b.unpaid[b.casual_billed].astype(np.int64),
                np.zeros(len(b.a_billed) + len(b.buyers) + len(b.b_zero), np.int64),
                np.full(len(b.credit_noted), 2),
            ]
        ),
        **_invoice_payers(people, b, casual_price),
    }


def _invoice_payers(people: People, b: Billing, casual_price: np.ndarray) -> dict[str, np.ndarray]:
    """What paid each invoice part, as Cliniko's Payments Applied and Credit Applied say: desk
    payments on the day (casual visits, package purchases), account credit (method A)."""
    return {
        "paid": np.concatenate(
            [
                np.where(b.unpaid[b.casual_billed], 0, casual_price),
                np.zeros(len(b.a_billed), np.int64),
                people.package_price[b.buyers],
                np.zeros(len(b.b_zero) + len(b.credit_noted), np.int64),
            ]
        ),
        "credit": np.concatenate(
            [
                np.zeros(len(b.casual_billed), np.int64),
                np.full(len(b.a_billed), SESSION_PRICE),
                np.zeros(len(b.buyers) + len(b.b_zero) + len(b.credit_noted), np.int64),
            ]
        ),
    }


@dataclass(frozen=True)
class Invoices:
    """The bulk invoices in export order (by date, then part), one element each; -1 is none."""

    invoice_id: np.ndarray
    patient: np.ndarray  # index into `People`
    day: np.ndarray
    total: np.ndarray
    status: np.ndarray  # index into ("Paid", "Open", "")
    appointment_row: np.ndarray  # index into `Visits`
    appointment_id: np.ndarray
    case_id: np.ndarray
    original: np.ndarray  # a credit note's original invoice id
    paid: np.ndarray
    credit: np.ndarray

    @property
    def number(self) -> np.ndarray:
        return self.invoice_id - BULK_BASE["invoice"] + BULK_BASE["number"]

    @property
    def outstanding(self) -> np.ndarray:
        return np.maximum(self.total - self.paid - self.credit, 0)


def number_invoices(parts: dict[str, np.ndarray], visits: Visits, b: Billing) -> Invoices:
    """Sort the invoice parts by date and number them; a credit note names its original."""
    n_inv = len(parts["patient"])
    order = np.lexsort((np.arange(n_inv), parts["part"], parts["day"]))
    rank = np.empty(n_inv, dtype=np.int64)
    rank[order] = np.arange(n_inv)
    invoice_id = BULK_BASE["invoice"] + rank
    # The credit notes are the last part; their originals are casual visits, the first part.
    billed_position = np.full(len(visits.owner), -1, dtype=np.int64)
    billed_position[b.casual_billed] = np.arange(len(b.casual_billed))
    original = np.full(n_inv, -1, dtype=np.int64)
    original[n_inv - len(b.credit_noted) :] = invoice_id[billed_position[b.credit_noted]]
    row = parts["appointment_row"]
    appointment_id = np.where(row >= 0, visits.appointment_id[np.maximum(row, 0)], -1)
    return Invoices(
        invoice_id=invoice_id[order],
        patient=parts["patient"][order],
        day=parts["day"][order],
        total=parts["total"][order],
        status=parts["status"][order],
        appointment_row=row[order],
        appointment_id=appointment_id[order],
        case_id=parts["case_id"][order],
        original=original[order],
        paid=parts["paid"][order],
        credit=parts["credit"][order],
    )


@dataclass(frozen=True)
class Payments:
    """The bulk payments, not yet sorted: desk payments, pre-payments, package purchases, $0
    credit payments, refunds."""

    patient: np.ndarray  # index into `People`
    day: np.ndarray
    minute: np.ndarray
    amount: np.ndarray
    method: np.ndarray  # index into (*PAYMENT_METHODS, "Account credit")
    note: np.ndarray  # index into _PAYMENT_NOTES


def payment_parts(rng: np.random.Generator, people: People, visits: Visits, b: Billing) -> Payments:
    owner, day = visits.owner, visits.day
    end_minute = visits.minute + visits.length
    paid_rows = b.casual_billed[~b.unpaid[b.casual_billed]]
    a_zero = b.a_billed[~people.variant[owner[b.a_billed]]]
    return Payments(
        patient=np.concatenate(
            [owner[paid_rows], b.prepayers, b.buyers, owner[a_zero], owner[b.credit_noted]]
        ),
        day=np.concatenate(
            [
                day[paid_rows],
                people.purchase_day[b.prepayers],
                people.purchase_day[b.buyers],
                day[a_zero],
                day[b.credit_noted] + 1,
            ]
        ),
        minute=np.concatenate(
            [
                end_minute[paid_rows] + 2,
                12 * 60 + b.prepayers % 120,
                12 * 60 + b.buyers % 120,
                end_minute[a_zero] + 2,
                np.full(len(b.credit_noted), 11 * 60),
            ]
        ),
        amount=np.concatenate(
            [
                visits.price(paid_rows),
                people.sessions[b.prepayers] * SESSION_PRICE,
                people.package_price[b.buyers],
                np.zeros(len(a_zero), dtype=np.int64),
                -visits.price(b.credit_noted),
            ]
        ),
        method=np.concatenate(
            [
                rng.integers(0, len(PAYMENT_METHODS), len(paid_rows)),
                np.ones(len(b.prepayers) + len(b.buyers), np.int64),
                np.full(len(a_zero), 4),
                np.zeros(len(b.credit_noted), np.int64),
            ]
        ),
        note=np.concatenate(
            [
                np.zeros(len(paid_rows), np.int64),
                np.where(people.sessions[b.prepayers] == 5, 1, 2),
                np.where(people.sessions[b.buyers] == 5, 3, 4),
                np.full(len(a_zero), 5),
                np.full(len(b.credit_noted), 6),
            ]
        ),
    )
