"""Stage 3: every patient's supply and demand events, in replay order (day, rank, id)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import text_ranks
from pkgreport.engine.credit.allocations import ExplicitAllocations
from pkgreport.engine.credit.columns import days_of, raw_of
from pkgreport.engine.credit.records import InvoiceArrays, LiveRecords, PaymentArrays
from pkgreport.ids import IdSpace, compact, encode


class EventType(IntEnum):
    """What an event on a patient's queue is."""

    INVOICE = 0
    CREDIT_NOTE = 1
    PAYMENT = 2
    REFUND = 3
    CREDIT_ALLOCATION = 4


# Rank among same-day events: invoices and credit notes, then payments and refunds, then
# credit allocations (so an invoice issued on a payment's day is open when the payment arrives).
_SAME_DAY_RANK = np.array([1, 1, 2, 2, 3], dtype=np.int64)


@dataclass(frozen=True)
class PatientCodes:
    """One code per patient for every record; codes follow the ids' text order (`ids[code]`)."""

    ids: np.ndarray
    of_invoices: np.ndarray
    of_payments: np.ndarray
    of_patients: np.ndarray  # rows of the patients export


def code_patients(
    invoices: InvoiceArrays,
    payments: PaymentArrays,
    patients: pd.DataFrame | None,
    space: IdSpace | None = None,
    live: LiveRecords | None = None,
) -> PatientCodes:
    """Code every patient of the live invoices and payments and the patients export, in the
    ids' text order, which every output follows.

    `space` is the run's patient id space (`pkgreport.ids`, text order), with `live` saying which
    rows of its invoices and payments are live; without them the patient ids are encoded here.
    Either way only the patients these records name are kept, renumbered in the same order.
    """
    if space is None or live is None:
        space = encode(
            {
                "invoices": invoices.patient_ids,
                "payments": payments.patient_ids,
                "patients": raw_of(patients, "patient_id")
                if patients is not None
                else np.zeros(0, object),
            },
            text_order=True,
        )
        of_invoices, of_payments = space.of("invoices"), space.of("payments")
    else:
        of_invoices = _codes_of(space, "invoices")[live.invoice_rows]
        of_payments = _codes_of(space, "payments")[live.payment_rows]
    kept, recoded = compact(len(space.ids), of_invoices, of_payments, _codes_of(space, "patients"))
    return PatientCodes(space.ids[kept], *recoded)


def _codes_of(space: IdSpace, column: str) -> np.ndarray:
    """A column's codes; none when the frame was not there."""
    return space.codes.get(column, np.zeros(0, np.int64))


@dataclass(frozen=True)
class EventQueue:
    """The events of every patient in replay order (arrays aligned by event).

    ``supply`` is money that can pay (a payment's remainder, a credit note); ``demand`` is what
    wants paying (an invoice's auto-payable balance, a refund, a credit allocation).
    ``record`` is the event's row among the live invoices or payments (among the allocations
    for a credit allocation); ``ref`` its row in ``record_ids`` (invoices, then payments).
    """

    types: np.ndarray
    record: np.ndarray
    patient: np.ndarray
    at: np.ndarray
    supply: np.ndarray
    demand: np.ndarray
    ref: np.ndarray
    record_ids: np.ndarray


def build_event_queue(
    invoices: InvoiceArrays,
    payments: PaymentArrays,
    explicit: ExplicitAllocations,
    patients: PatientCodes,
    *,
    auto: bool,
    sweep: bool,
) -> EventQueue:
    """Stage 3: the queue. `auto`: invoices demand their auto-payable balance; `sweep`: every
    payment (a $0 one included) is an event, as it sweeps credit onto open invoices."""
    alloc = explicit.allocations
    totals, amounts = invoices.totals, payments.amounts
    auto_payable = np.maximum(totals - explicit.per_invoice, 0) if auto else np.zeros_like(totals)
    invoice_rows = np.flatnonzero(auto_payable > 0)
    credit_note_rows = np.flatnonzero(totals < 0)
    remainders = explicit.payment_remainders
    payment_rows = np.flatnonzero((amounts >= 0) if sweep else (remainders > 0))
    refund_rows = np.flatnonzero(amounts < 0)
    credit_rows = np.flatnonzero(explicit.from_credit)
    kinds = (invoice_rows, credit_note_rows, payment_rows, refund_rows, credit_rows)
    types = np.concatenate(  # five kinds: a byte each (an event-long array less at the peak)
        [np.full(len(rows), int(t), np.int8) for t, rows in zip(EventType, kinds, strict=True)]
    )
    record = np.concatenate(kinds).astype(np.int64, copy=False)
    n_invoices = len(invoices.ids)
    patient = np.concatenate(
        (
            patients.of_invoices[invoice_rows],
            patients.of_invoices[credit_note_rows],
            patients.of_payments[payment_rows],
            patients.of_payments[refund_rows],
            patients.of_invoices[alloc.inv[credit_rows]],
        )
    ).astype(np.int64, copy=False)
    at = np.concatenate(
        (
            invoices.issued_at[invoice_rows],
            invoices.issued_at[credit_note_rows],
            payments.paid_at[payment_rows],
            payments.paid_at[refund_rows],
            alloc.at[credit_rows],
        )
    )
    supply, demand = _event_money(kinds, totals, auto_payable, remainders, amounts, explicit)
    # Ids stay integers (rows of record_ids) until the output frames are built: moving millions
    # of Python strings around costs more than the whole allocation.
    record_ids = np.concatenate((invoices.ids, payments.ids))
    ref = np.concatenate(
        (
            invoice_rows,
            credit_note_rows,
            n_invoices + payment_rows,
            n_invoices + refund_rows,
            alloc.inv[credit_rows],
        )
    ).astype(np.int64, copy=False)
    # Ties on (patient, day, rank, id) keep file order: allocations by their own row.
    file_order = np.concatenate((record[: len(record) - len(credit_rows)], alloc.row[credit_rows]))
    order = _replay_order(types, patient, at, ref, record_ids, file_order)
    # Each column is put in replay order and let go before the next: this stage and the
    # matching after it hold the engines' peak memory.
    del file_order
    types = types[order]
    record = record[order]
    patient = patient[order]
    at = at[order]
    supply = supply[order]
    demand = demand[order]
    ref = ref[order]
    return EventQueue(types, record, patient, at, supply, demand, ref, record_ids)


def _event_money(
    kinds: tuple[np.ndarray, ...],
    totals: np.ndarray,
    auto_payable: np.ndarray,
    remainders: np.ndarray,
    amounts: np.ndarray,
    explicit: ExplicitAllocations,
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's supply (a credit note, a payment's remainder) and demand (an invoice's
    auto-payable balance, a refund, a credit allocation), events in `kinds` order."""
    invoice_rows, credit_note_rows, payment_rows, refund_rows, credit_rows = kinds
    supply = np.concatenate(
        (
            np.zeros(len(invoice_rows), np.int64),
            -totals[credit_note_rows],
            remainders[payment_rows],
            np.zeros(len(refund_rows) + len(credit_rows), np.int64),
        )
    )
    demand = np.concatenate(
        (
            auto_payable[invoice_rows],
            np.zeros(len(credit_note_rows) + len(payment_rows), np.int64),
            -amounts[refund_rows],
            explicit.allocations.amount[credit_rows],
        )
    )
    return supply, demand


def _replay_order(
    types: np.ndarray,
    patient: np.ndarray,
    at: np.ndarray,
    ref: np.ndarray,
    record_ids: np.ndarray,
    file_order: np.ndarray,
) -> np.ndarray:
    """Order by (patient, day, same-day rank), then id text, then file order."""
    day = days_of(at)
    if not len(day):
        return np.zeros(0, np.int64)
    first_day = int(day.min())
    width = int(day.max()) - first_day + 1
    key = (patient * width + (day - first_day)) * 4 + _SAME_DAY_RANK[types]
    return tie_order(key, ref, record_ids, file_order)


def tie_order(
    key: np.ndarray, ref: np.ndarray, id_table: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Stable order by `key`, breaking ties by id text (`id_table[ref]`) then `rows`.

    Only the tied rows look at their text, which keeps string work off the hot path.
    """
    # Tied rows are re-sorted below, so the main sort need not be stable.
    order = np.argsort(key)
    if len(order) < 2:
        return order
    k = key[order]
    same = k[1:] == k[:-1]
    if not same.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    slots = np.flatnonzero(tied)
    members = order[slots]
    id_rank = text_ranks(id_table[ref[members]])
    sub = np.lexsort((rows[members], id_rank, key[members]))
    order[slots] = members[sub]
    return order
