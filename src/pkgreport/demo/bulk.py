"""The bulk of the demo: vectorised and seeded; casual visits, method A and method B packages."""

from __future__ import annotations

from datetime import date

import numpy as np

from pkgreport.demo.formats import (
    BULK_BASE,
    BUSINESSES,
    EARLIEST_START,
    FIRST_NAMES,
    FUTURE_DAYS,
    INITIAL_PRICE,
    LAST_NAMES,
    PACKAGE_PRICES,
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


def bulk_tables(
    rng: np.random.Generator, patients: int, start: date, export_day: int, months: int
) -> dict[str, list[np.ndarray]]:
    """Bulk rows per kind as text columns (bytes cells) in header order."""
    n, days = patients, export_day
    clock = Clock(start)
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
    horizon = (days + FUTURE_DAYS - 1 - first_day) // gap + 1
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
    minute = EARLIEST_START + 15 * rng.integers(0, 38, m)
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
    appt_id = BULK_BASE["appointment"] + np.arange(m)
    case_of_patient = np.full(n, -1, dtype=np.int64)
    has_case = is_package | casual_case
    case_of_patient[has_case] = BULK_BASE["case"] + np.arange(int(has_case.sum()))

    def stamps(d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.stamp(v // 1440, v % 1440), blank
        )

    def dates(d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(d.astype(np.int64), clock.date, blank)

    def short_dates(d: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(d.astype(np.int64), clock.short_date, blank)

    def zoned(d: np.ndarray, mins: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
        return mapped(
            d.astype(np.int64) * 1440 + mins, lambda v: clock.zoned(v // 1440, v % 1440), blank
        )

    def constant(text: str, count: int, blank: np.ndarray | None = None) -> np.ndarray:
        return vocab(
            (text,), np.zeros(count, np.int64) if blank is None else -blank.astype(np.int64)
        )

    prac_names = tuple(p for group in PRACTITIONERS for p in group)
    patient_id = BULK_BASE["patient"] + np.arange(n)
    appt_type = np.where(initial, 0, np.where(is_package[owner], 2, 1))
    yes_no = ("No", "Yes")
    true_false = ("FALSE", "TRUE")
    # In Cliniko's column order; Invoice Number (index 19) is filled in once invoices exist.
    appointments = [
        id_texts(appt_id),
        zoned(day, minute),
        short_dates(day),
        zoned(day, minute + length),
        vocab(prac_names, practitioner[owner]),
        vocab(PRACTITIONER_IDS, practitioner[owner]),
        id_texts(patient_id[owner]),
        vocab(("Initial Consultation", "Standard Consultation", "Package Session"), appt_type),
        blanks(m),
        vocab(BUSINESSES, business[owner]),
        vocab(true_false, dna.astype(np.int64)),
        vocab(true_false, attended.astype(np.int64)),
        constant("TRUE", m),
        constant("TRUE", m),
        zoned(day - 1, 17 * 60 + 15 * (owner % 8), ~cancelled),
        constant("Feeling unwell", m, ~cancelled),
        blanks(m),
        zoned(day - 7, minute),
        blanks(m),
        blanks(m),
        blanks(m),
        blanks(m),
        constant("1", m),
        constant("1", m),
        vocab(("0", "1"), cancelled.astype(np.int64)),
        id_texts(case_of_patient[owner], case_of_patient[owner] < 0),
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
        id_texts(case_of_patient[cp]),
        id_texts(patient_id[cp]),
        vocab(case_names, case_kind),
        id_texts(sessions[cp], ~is_package[cp]),
        vocab(yes_no, (include_cancelled[cp] & is_package[cp]).astype(np.int64)),
        vocab(yes_no, (include_dna[cp] & is_package[cp]).astype(np.int64)),
        dates(issue),
        dates(issue + 365, ~is_package[cp]),
        blanks(k),
        blanks(k),
        mapped(package_price[cp], format_dollars, kind[cp] != method_b),
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
    inv_id = BULK_BASE["invoice"] + inv_rank
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
    inv_number = inv_id - BULK_BASE["invoice"] + BULK_BASE["number"]
    inv_outstanding = np.maximum(inv_total - inv_paid - inv_credit, 0)
    invoiced = inv_appt_row >= 0
    appt_number = np.full(m, -1, dtype=np.int64)
    appt_number[inv_appt_row[invoiced]] = inv_number[invoiced]
    appointments[19] = id_texts(appt_number, appt_number < 0)
    appt_start = np.where(invoiced, (day * 1440 + minute)[np.maximum(inv_appt_row, 0)], 0)
    n_inv = len(inv_id)
    invoices = [
        id_texts(inv_number),
        short_dates(inv_day),
        vocab(prac_names, practitioner[inv_patient]),
        mapped(inv_total, format_plain),
        constant("0.00", n_inv),
        constant("0.00", n_inv),
        mapped(inv_total, format_plain),
        blanks(n_inv),
        vocab(("Paid", "Open", ""), inv_status),
        short_dates(inv_day, inv_status != 0),
        vocab(prac_names, practitioner[inv_patient]),
        id_texts(inv_appt, inv_appt < 0),
        vocab(BUSINESSES, business[inv_patient]),
        blanks(n_inv),
        id_texts(patient_id[inv_patient]),
        mapped(inv_outstanding, format_plain),
        mapped(inv_paid, format_plain),
        mapped(inv_credit, format_plain),
        constant("0.00", n_inv),
        mapped(appt_start, lambda v: clock.short_stamp(v // 1440, v % 1440), ~invoiced),
        id_texts(inv_id),
        id_texts(inv_case, inv_case < 0),
        id_texts(inv_original, inv_original < 0),
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
        id_texts(BULK_BASE["payment"] + np.arange(n_pay)),
        id_texts(patient_id[pay_patient]),
        stamps(pay_day, pay_minute),
        mapped(pay_amount, format_dollars),
        vocab(methods, pay_method),
        vocab(notes, pay_note),
        blanks(n_pay),
    ]

    # Credit at the export date, in closed form: only method A patients hold any. Casual visits
    # are paid on the day (or left open on the last visit), credit notes are paid straight out,
    # and packages bought outright leave nothing over.
    used = np.bincount(owner[a_billed], minlength=n)
    credit = np.where(kind == method_a, (sessions - used) * SESSION_PRICE, 0)
    patients_cols = [
        mapped(patient_id, lambda v: f'="{v}"'),  # Cliniko writes long ids Excel-safe
        vocab(FIRST_NAMES, first_name),
        vocab(LAST_NAMES, last_name),
        mapped(credit, format_dollars, credit == 0),  # blank: no credit
    ]
    return {
        "appointments": appointments,
        "cases": cases,
        "invoices": invoices,
        "payments": payments,
        "patients": patients_cols,
    }
