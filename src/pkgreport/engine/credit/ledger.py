"""Stage 5: the credit ledger, one row per credit movement (created, applied, refunded)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import text_ranks
from pkgreport.engine.credit.allocations import ExplicitAllocations
from pkgreport.engine.credit.columns import NAT, frame_columns
from pkgreport.engine.credit.events import EventQueue, EventType, PatientCodes
from pkgreport.engine.credit.matching import Matches


class _Labelled(IntEnum):
    @property
    def label(self) -> str:
        """How outputs spell the member: its name in lower case."""
        return self.name.lower()


class LedgerKind(_Labelled):
    """The movement a ledger row records."""

    CREATED = 0
    APPLIED = 1
    REFUNDED = 2


class RefType(_Labelled):
    """The record a ledger row comes from."""

    PAYMENT = 0
    INVOICE = 1
    CREDIT_NOTE = 2


@dataclass(frozen=True)
class Ledger:
    """The ledger's columns (aligned by row, sorted by patient then time); `ref` is a row of the
    queue's `record_ids`, `patient` a patient code."""

    patient: np.ndarray
    at: np.ndarray
    kind: np.ndarray
    amount: np.ndarray  # > 0
    ref_type: np.ndarray
    ref: np.ndarray

    @property
    def signed(self) -> np.ndarray:
        """The amount as it moves the balance: created adds, applied and refunded take away."""
        return np.where(self.kind == LedgerKind.CREATED, self.amount, -self.amount)


# One movement type: (patient, at, kind, amount, ref_type, ref) arrays.
_Movements = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _movements(
    patient: np.ndarray,
    at: np.ndarray,
    kind: LedgerKind,
    amount: np.ndarray,
    ref_type: RefType,
    ref: np.ndarray,
) -> _Movements:
    keep = amount != 0
    size = int(keep.sum())
    return (
        patient[keep],
        at[keep],
        np.full(size, int(kind)),
        amount[keep],
        np.full(size, int(ref_type)),
        ref[keep],
    )


def build_ledger(
    queue: EventQueue,
    matches: Matches,
    explicit: ExplicitAllocations,
    patients: PatientCodes,
    *,
    newest_first: bool,
) -> Ledger:
    """Stage 5: every credit movement, from the queue, the matches and the explicit allocations."""
    parts = [
        *_created(queue, matches, explicit, patients),
        *_applied(explicit, matches, patients, newest_first=newest_first),
        _refunded(queue),
    ]
    patient, at, kind, amount, ref_type, ref = (
        np.concatenate([part[column] for part in parts]) for column in range(6)
    )
    patient, kind, amount = patient.astype(np.int64), kind.astype(np.int64), amount.astype(np.int64)
    ref_type, ref = ref_type.astype(np.int64), ref.astype(np.int64)
    at = at.astype("datetime64[ns]")
    key = _ledger_key(patient, at, kind * 3 + ref_type)
    order = _fix_ledger_ties(np.argsort(key), (key,), queue.record_ids, ref, amount)
    return Ledger(
        patient[order], at[order], kind[order], amount[order], ref_type[order], ref[order]
    )


def _created(
    queue: EventQueue, matches: Matches, explicit: ExplicitAllocations, patients: PatientCodes
) -> list[_Movements]:
    """Credit created: a payment's part that paid no invoice on arrival, a credit note, and a
    payment allocated later than received (credit until the allocation date)."""
    is_payment = queue.types == EventType.PAYMENT
    is_credit_note = queue.types == EventType.CREDIT_NOTE
    kept = np.where(is_payment, queue.supply - matches.direct_per_event, 0)
    in_transit = explicit.allocations.take(explicit.in_transit)
    n_invoices = len(patients.of_invoices)
    return [
        _movements(
            queue.patient[is_payment],
            queue.at[is_payment],
            LedgerKind.CREATED,
            kept[is_payment],
            RefType.PAYMENT,
            queue.ref[is_payment],
        ),
        _movements(
            queue.patient[is_credit_note],
            queue.at[is_credit_note],
            LedgerKind.CREATED,
            queue.supply[is_credit_note],
            RefType.CREDIT_NOTE,
            queue.ref[is_credit_note],
        ),
        _movements(
            patients.of_payments[in_transit.pay]
            if len(patients.of_payments)
            else np.zeros(0, np.int64),
            explicit.payment_paid_at[explicit.in_transit],
            LedgerKind.CREATED,
            in_transit.amount,
            RefType.PAYMENT,
            n_invoices + in_transit.pay,
        ),
    ]


def _applied(
    explicit: ExplicitAllocations, matches: Matches, patients: PatientCodes, *, newest_first: bool
) -> list[_Movements]:
    """Credit applied to invoices: allocations in transit, credit allocations, automatic ones."""
    invoice_patients = patients.of_invoices
    parts = []
    for mask in (explicit.in_transit, explicit.from_credit):
        taken = explicit.allocations.take(mask)
        parts.append(
            _movements(
                invoice_patients[taken.inv] if len(invoice_patients) else np.zeros(0, np.int64),
                taken.at,
                LedgerKind.APPLIED,
                taken.amount,
                RefType.INVOICE,
                taken.inv,
            )
        )
    from_credit = ~matches.direct
    if from_credit.any():
        parts.append(
            _applied_per_invoice_and_date(
                matches.invoice[from_credit],
                matches.at[from_credit].astype(np.int64),
                matches.amount[from_credit],
                invoice_patients,
                newest_first=newest_first,
            )
        )
    return parts


def _applied_per_invoice_and_date(
    invoice: np.ndarray,
    at: np.ndarray,
    amount: np.ndarray,
    invoice_patients: np.ndarray,
    *,
    newest_first: bool,
) -> _Movements:
    """One applied row per invoice and date (a payment or credit note may pay it piecemeal)."""
    if newest_first:
        # FIFO segments already run demand by demand in time order; LIFO ones do not.
        by = np.lexsort((at, invoice))
        invoice, at, amount = invoice[by], at[by], amount[by]
    first = np.flatnonzero(np.r_[True, (invoice[1:] != invoice[:-1]) | (at[1:] != at[:-1])])
    invoice_of_group = invoice[first]
    return _movements(
        invoice_patients[invoice_of_group],
        at[first].astype("datetime64[ns]"),
        LedgerKind.APPLIED,
        np.add.reduceat(amount, first),
        RefType.INVOICE,
        invoice_of_group,
    )


def _refunded(queue: EventQueue) -> _Movements:
    is_refund = queue.types == EventType.REFUND
    return _movements(
        queue.patient[is_refund],
        queue.at[is_refund],
        LedgerKind.REFUNDED,
        queue.demand[is_refund],
        RefType.PAYMENT,
        queue.ref[is_refund],
    )


_KIND_LABELS = np.array([kind.label for kind in LedgerKind], dtype=object)
_REF_TYPE_LABELS = np.array([ref_type.label for ref_type in RefType], dtype=object)


def ledger_frame(ledger: Ledger, patient_ids: np.ndarray, record_ids: np.ndarray) -> pd.DataFrame:
    """The ledger as the outputs show it (ids and labels as text, `lot_date` on created rows)."""
    created = ledger.kind == LedgerKind.CREATED
    return pd.DataFrame(
        frame_columns(
            {
                "patient_id": patient_ids[ledger.patient],
                "at": ledger.at,
                "kind": _KIND_LABELS[ledger.kind],
                "amount": ledger.amount,
                "ref_type": _REF_TYPE_LABELS[ledger.ref_type],
                "ref_id": record_ids[ledger.ref],
                "lot_date": np.where(
                    created, ledger.at.astype("datetime64[D]").astype("datetime64[ns]"), NAT
                ),
            }
        ),
        copy=False,
    )


def _ledger_key(pat: np.ndarray, at: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """One int64 sort key for (patient, second, sub < 16); rows within one second tie (and are
    ordered by reference text later). Falls back to ranks of the pairs if it would overflow."""
    if not len(pat):
        return np.zeros(0, np.int64)
    sec = at.astype("datetime64[s]").astype(np.int64)
    sec = sec - sec.min()
    span = int(sec.max()) + 1
    if (int(pat.max()) + 1) * span * 16 < 2**62:
        return (pat * span + sec) * 16 + sub
    order = np.lexsort((sub, sec, pat))
    key = np.empty(len(pat), np.int64)
    keys = np.stack((pat[order], sec[order], sub[order]))
    new = np.r_[True, (keys[:, 1:] != keys[:, :-1]).any(axis=0)]
    key[order] = np.cumsum(new)
    return key


def _fix_ledger_ties(
    order: np.ndarray,
    keys: tuple[np.ndarray, ...],
    id_table: np.ndarray,
    ref: np.ndarray,
    amount: np.ndarray,
) -> np.ndarray:
    """Rows equal on every key are ordered by reference id text then amount (input order must
    not show through); only those rows touch their text."""
    if len(order) < 2:
        return order
    same = np.ones(len(order) - 1, bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    if not same.any():
        return order
    tied = np.zeros(len(order), bool)
    tied[1:] |= same
    tied[:-1] |= same
    group = np.cumsum(np.r_[True, ~same])  # runs of equal keys
    slots = np.flatnonzero(tied)
    members = order[slots]
    text_rank = text_ranks(id_table[ref[members]])
    sub = np.lexsort((amount[members], text_rank, group[slots]))
    order = order.copy()
    order[slots] = members[sub]
    return order
