"""Stage 1: the live invoices and payments (deleted and archived ones listed as excluded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import as_column, live_mask
from pkgreport.engine.credit.columns import (
    cents_of,
    datetimes_of,
    raw_of,
    texts_of,
)
from pkgreport.excluded import empty_excluded, excluded_frame

# Only the columns the engine reads are copied: the exports may carry many more.
_WANTED = {
    "invoice": (
        "invoice_id",
        "patient_id",
        "issue_date",
        "total",
        "number",
        "status",
        "appointment_id",
        "case_id",
        # Cliniko's own figures for each invoice (`recorded_credit`, `invoice_balance_mismatch`)
        "closed_at",
        "outstanding_reported",
        "paid_reported",
        "credit_applied",
        "source_file",
        "source_row",
    ),
    "payment": ("payment_id", "patient_id", "paid_at", "amount", "source_file", "source_row"),
}


@dataclass(frozen=True)
class LiveRecords:
    """The live invoices and payments (file order) and the records left out, with the reason;
    `invoice_rows` and `payment_rows` are the live ones' rows in the frames given."""

    invoices: pd.DataFrame
    payments: pd.DataFrame
    excluded_invoices: pd.DataFrame
    excluded_payments: pd.DataFrame
    invoice_rows: np.ndarray
    payment_rows: np.ndarray


@dataclass(frozen=True)
class InvoiceArrays:
    """The live invoices' columns the engine computes with (aligned by row)."""

    ids: np.ndarray
    patient_ids: np.ndarray
    totals: np.ndarray  # cents; negative for a credit note
    issued_at: np.ndarray

    @staticmethod
    def of(invoices: pd.DataFrame) -> InvoiceArrays:
        return InvoiceArrays(*_arrays_of(invoices, "invoice_id", "total", "issue_date"))


@dataclass(frozen=True)
class PaymentArrays:
    """The live payments' columns the engine computes with (aligned by row)."""

    ids: np.ndarray
    patient_ids: np.ndarray
    amounts: np.ndarray  # cents; negative for a refund
    paid_at: np.ndarray

    @staticmethod
    def of(payments: pd.DataFrame) -> PaymentArrays:
        return PaymentArrays(*_arrays_of(payments, "payment_id", "amount", "paid_at"))


def _arrays_of(
    frame: pd.DataFrame, id_column: str, cents_column: str, at_column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids, patient ids, cents and datetimes of live records (typed empty arrays for none)."""
    if not len(frame):
        return (
            np.zeros(0, object),
            np.zeros(0, object),
            np.zeros(0, np.int64),
            np.zeros(0, "datetime64[ns]"),
        )
    return (
        raw_of(frame, id_column),
        raw_of(frame, "patient_id"),
        cents_of(frame, cents_column),
        datetimes_of(frame, at_column),
    )


def live_records(invoices: pd.DataFrame | None, payments: pd.DataFrame | None) -> LiveRecords:
    """Stage 1: split the invoices and payments into live rows and excluded ones."""
    live_invoices, excluded_invoices, invoice_rows = _split_live(invoices, "invoice", "invoice_id")
    live_payments, excluded_payments, payment_rows = _split_live(payments, "payment", "payment_id")
    if invoices is not None and live_invoices.empty:
        live_invoices = invoices.iloc[0:0].reset_index(drop=True)
    if payments is not None and live_payments.empty:
        live_payments = payments.iloc[0:0].reset_index(drop=True)
    return LiveRecords(
        live_invoices,
        live_payments,
        excluded_invoices,
        excluded_payments,
        invoice_rows,
        payment_rows,
    )


def _split_live(
    frame: pd.DataFrame | None, kind: str, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Split into live rows, an excluded frame saying why each other row was left out, and the
    live rows' positions."""
    if frame is None:
        return pd.DataFrame(), empty_excluded(), np.zeros(0, np.int64)
    deleted = ~np.isnat(datetimes_of(frame, "deleted_at"))
    left_out = ~live_mask(frame)
    reason = np.where(
        deleted[left_out],
        f"deleted {kind} (deleted_at is set): left out of every total",
        f"archived {kind} (archived_at is set): left out of every total",
    ).astype(object)
    gone = frame.loc[left_out]
    wanted = [c for c in _WANTED.get(kind, ()) if c in frame.columns]
    frame = frame[wanted] if wanted else frame
    excluded = excluded_frame(
        kind,
        texts_of(gone, "source_file"),
        gone["source_row"].to_numpy() if "source_row" in gone.columns else None,
        gone[id_column].to_numpy(dtype=object),
        reason,
    )
    keep = np.flatnonzero(~left_out)
    if not left_out.any():
        return frame, excluded, keep
    # numpy takes: a pandas row filter would re-validate every string of the str columns.
    live = pd.DataFrame(
        {c: as_column(frame[c].to_numpy()[keep]) for c in frame.columns}, copy=False
    )
    return live, excluded, keep
