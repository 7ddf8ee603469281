"""Stage 6: the snapshot at a date, per invoice and per patient (and the final state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import sum_by
from pkgreport.engine.credit.allocations import ExplicitAllocations
from pkgreport.engine.credit.columns import NAT, frame_columns, raw_of, texts_of
from pkgreport.engine.credit.events import PatientCodes
from pkgreport.engine.credit.ledger import Ledger, LedgerKind
from pkgreport.engine.credit.matching import Matches
from pkgreport.engine.credit.records import InvoiceArrays, PaymentArrays

PATIENT_COLUMNS = [
    "patient_id",
    "patient_name",
    "received",
    "refunded",
    "credit_notes",
    "invoiced",
    "paid_direct",
    "applied",
    "credit",
    "open_outstanding",
    "final_credit",
    "reported_credit",
    "difference",
    "last_movement",
    "findings",
]


@dataclass(frozen=True)
class InvoicePayments:
    """Every payment of an invoice, explicit or automatic (aligned by row)."""

    invoice: np.ndarray
    at: np.ndarray
    amount: np.ndarray
    direct: np.ndarray  # paid by a payment on its own day (False: from credit)


def invoice_payments(explicit: ExplicitAllocations, matches: Matches) -> InvoicePayments:
    """The explicit allocations and the automatic matches as one list of invoice payments."""
    alloc = explicit.allocations
    masks = (explicit.paid_directly, explicit.in_transit, explicit.from_credit)
    return InvoicePayments(
        np.concatenate([alloc.inv[m] for m in masks] + [matches.invoice]),
        np.concatenate([alloc.at[m] for m in masks] + [matches.at]),
        np.concatenate([alloc.amount[m] for m in masks] + [matches.amount]),
        np.concatenate(
            [
                explicit.paid_directly[explicit.paid_directly],
                np.zeros(int(explicit.in_transit.sum() + explicit.from_credit.sum()), bool),
                matches.direct,
            ]
        ),
    )


@dataclass(frozen=True)
class InvoiceSnapshot:
    """Per invoice, as of the cut-off: the output frame (issued invoices only) and the arrays
    (every live invoice) the patient snapshot sums."""

    frame: pd.DataFrame
    issued: np.ndarray
    paid_direct: np.ndarray
    outstanding: np.ndarray


def invoice_snapshot(
    live_invoices: pd.DataFrame,
    invoices: InvoiceArrays,
    explicit: ExplicitAllocations,
    paid: InvoicePayments,
    cutoff: np.datetime64,
) -> InvoiceSnapshot:
    """Stage 6a: each invoice's payments, outstanding and status as of `cutoff`, and finally."""
    n_invoices = len(invoices.ids)
    totals = invoices.totals
    by_cutoff = paid.at < cutoff
    direct_now, credit_now = paid.direct & by_cutoff, ~paid.direct & by_cutoff
    paid_direct = sum_by(paid.invoice[direct_now], paid.amount[direct_now], n_invoices)
    paid_credit = sum_by(paid.invoice[credit_now], paid.amount[credit_now], n_invoices)
    paid_final = sum_by(paid.invoice, paid.amount, n_invoices)
    final_direct = sum_by(paid.invoice[paid.direct], paid.amount[paid.direct], n_invoices)
    positive = totals > 0
    outstanding = np.where(positive, totals - paid_direct - paid_credit, 0)
    final_outstanding = np.where(positive, totals - paid_final, 0)
    reported = _normalise_status(
        raw_of(live_invoices, "status") if n_invoices else np.zeros(0, object)
    )
    reported_settled = np.isin(reported, ["paid", "closed"])
    mismatch = positive & (
        (reported_settled & (final_outstanding > 0))
        | ((reported == "open") & (final_outstanding <= 0))
    )
    frame = pd.DataFrame(
        frame_columns(
            {
                "invoice_id": invoices.ids,
                "patient_id": invoices.patient_ids,
                "number": raw_of(live_invoices, "number") if n_invoices else np.zeros(0, object),
                "issue_date": invoices.issued_at,
                "total": totals,
                "explicit_allocated": explicit.per_invoice,
                "paid_direct": paid_direct,
                "paid_from_credit": paid_credit,
                "outstanding": outstanding,
                "status_reported": reported,
                "status_computed": _status(totals, outstanding),
                "final_outstanding": final_outstanding,
                "status_final": _status(totals, final_outstanding),
                "status_mismatch": mismatch,
                **_reported_figures(live_invoices, final_direct, paid_final - final_direct),
                "source_file": raw_of(live_invoices, "source_file")
                if n_invoices
                else np.zeros(0, object),
                "source_row": pd.array(
                    live_invoices["source_row"].to_numpy()
                    if n_invoices and "source_row" in live_invoices
                    else [pd.NA] * n_invoices,
                    dtype="Int64",
                ),
            }
        ),
        copy=False,
    )
    issued = invoices.issued_at < cutoff
    # File order (as validated); only invoices issued by as_of exist in the snapshot.
    if not issued.all():
        frame = frame.loc[issued].reset_index(drop=True)
    return InvoiceSnapshot(frame, issued, paid_direct, outstanding)


def patient_snapshot(
    patients_export: pd.DataFrame | None,
    codes: PatientCodes,
    invoices: InvoiceArrays,
    payments: PaymentArrays,
    snapshot: InvoiceSnapshot,
    ledger: Ledger,
    cutoff: np.datetime64,
) -> pd.DataFrame:
    """Stage 6b: each patient's money as of `cutoff` (no findings column yet)."""
    n_patients = len(codes.ids)
    figures = {
        **_payment_totals(codes.of_payments, payments, cutoff, n_patients),
        **_invoice_totals(codes.of_invoices, invoices, snapshot, n_patients),
        **_ledger_totals(ledger, cutoff, n_patients),
    }
    exported = _exported_patient_columns(patients_export, codes)
    difference = exported["reported_credit"] - pd.array(figures["final_credit"], dtype="Int64")
    return pd.DataFrame(
        frame_columns(
            {
                "patient_id": codes.ids,
                "patient_name": exported["patient_name"],
                **{name: figures[name] for name in _FIGURES},
                "reported_credit": exported["reported_credit"],
                "difference": difference,
                "last_movement": figures["last_movement"],
                "source_file": exported["source_file"],
                "source_row": exported["source_row"],
            }
        ),
        copy=False,
    )


# The money figures of PATIENT_COLUMNS, received to final_credit, in output order.
_FIGURES = tuple(
    PATIENT_COLUMNS[PATIENT_COLUMNS.index("received") : PATIENT_COLUMNS.index("final_credit") + 1]
)


def _payment_totals(
    patient: np.ndarray, payments: PaymentArrays, cutoff: np.datetime64, n_patients: int
) -> dict[str, np.ndarray]:
    amounts = payments.amounts
    by_cutoff = payments.paid_at < cutoff
    received, refunds = by_cutoff & (amounts > 0), by_cutoff & (amounts < 0)
    return {
        "received": sum_by(patient[received], amounts[received], n_patients),
        "refunded": sum_by(patient[refunds], -amounts[refunds], n_patients),
    }


def _invoice_totals(
    patient: np.ndarray, invoices: InvoiceArrays, snapshot: InvoiceSnapshot, n_patients: int
) -> dict[str, np.ndarray]:
    totals, issued = invoices.totals, snapshot.issued
    charged, credit_notes = issued & (totals > 0), issued & (totals < 0)
    open_invoices = issued & (snapshot.outstanding > 0)
    return {
        "invoiced": sum_by(patient[charged], totals[charged], n_patients),
        "credit_notes": sum_by(patient[credit_notes], -totals[credit_notes], n_patients),
        "paid_direct": sum_by(patient[issued], snapshot.paid_direct[issued], n_patients),
        "open_outstanding": sum_by(
            patient[open_invoices], snapshot.outstanding[open_invoices], n_patients
        ),
    }


def _ledger_totals(ledger: Ledger, cutoff: np.datetime64, n_patients: int) -> dict[str, Any]:
    by_cutoff = ledger.at < cutoff
    signed = ledger.signed
    applied = by_cutoff & (ledger.kind == LedgerKind.APPLIED)
    never = np.iinfo(np.int64).min
    last = np.full(n_patients, never, np.int64)
    np.maximum.at(last, ledger.patient[by_cutoff], ledger.at[by_cutoff].astype(np.int64))
    return {
        "applied": sum_by(ledger.patient[applied], ledger.amount[applied], n_patients),
        "credit": sum_by(ledger.patient[by_cutoff], signed[by_cutoff], n_patients),
        "final_credit": sum_by(ledger.patient, signed, n_patients),
        "last_movement": np.where(last == never, NAT, last.astype("datetime64[ns]")),
    }


def _exported_patient_columns(
    patients_export: pd.DataFrame | None, codes: PatientCodes
) -> dict[str, Any]:
    """Name, reported credit and source of each patient from the patients export (if any)."""
    n_patients = len(codes.ids)
    names = np.full(n_patients, None, dtype=object)
    reported_credit = pd.array([pd.NA] * n_patients, dtype="Int64")
    source_file = np.full(n_patients, None, dtype=object)
    source_row = pd.array([pd.NA] * n_patients, dtype="Int64")
    if patients_export is not None and len(patients_export):
        rows = codes.of_patients
        names[rows] = texts_of(patients_export, "patient_name")
        source_file[rows] = texts_of(patients_export, "source_file")
        if "source_row" in patients_export.columns:
            source_row[rows] = pd.array(patients_export["source_row"].to_numpy(), dtype="Int64")
        if "reported_credit" in patients_export.columns:
            reported_credit[rows] = pd.array(patients_export["reported_credit"], dtype="Int64")
    # Filling names from appointments when the patients file has none is the report's job.
    return {
        "patient_name": names,
        "reported_credit": reported_credit,
        "source_file": source_file,
        "source_row": source_row,
    }


def _normalise_status(values: np.ndarray) -> np.ndarray:
    """'Open credit', 'open_credit', ' PAID ' -> open_credit, paid (few distinct values: map once)."""
    codes, uniques = pd.factorize(values.astype(object))
    clean = np.array(
        [str(u).strip().casefold().replace(" ", "_") for u in uniques] + [None], dtype=object
    )
    return clean[codes]


_STATUS = np.array(["credit note", "zero", "over-allocated", "paid", "open"], dtype=object)


def _status(total: np.ndarray, outstanding: np.ndarray) -> np.ndarray:
    code = np.select(
        [total < 0, total == 0, outstanding < 0, outstanding == 0], [0, 1, 2, 3], default=4
    )
    return _STATUS[code]


_REPORTED = ("outstanding_reported", "paid_reported", "credit_applied")


def _reported_figures(
    inv: pd.DataFrame, final_direct: np.ndarray, final_credit: np.ndarray
) -> dict[str, Any]:
    """The invoice columns holding the recomputed final payments beside Cliniko's own figures."""
    n = len(inv)
    reported = {
        col: pd.array(inv[col], dtype="Int64")
        if n and col in inv.columns
        else pd.array([pd.NA] * n, dtype="Int64")
        for col in _REPORTED
    }
    return {"final_paid_direct": final_direct, "final_paid_from_credit": final_credit, **reported}
