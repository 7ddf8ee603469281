"""Which appointment each invoice is for: by its Appointment ID when intact, else by invoice number."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class InvoiceLinks:
    """How the invoices were tied to appointments.

    ``by_number`` maps invoice_id -> appointment_id for the invoices whose own appointment id is
    blank or names no appointment in the export, found instead through the appointments export's
    ``invoice_number`` column (Cliniko's "Invoice Number"), which survives a spreadsheet round
    trip where long ids do not. ``by_id`` counts the invoices linked by their own appointment id.
    """

    by_id: int = 0
    by_number: dict[str, str] = field(default_factory=dict)

    def appointment_ids(self, invoice_ids: np.ndarray, own: np.ndarray) -> np.ndarray:
        """The appointment of each invoice: `own` (its appointment_id), repaired by number."""
        if not self.by_number:
            return own
        out = own.astype(object).copy()
        found = pd.Series(invoice_ids, dtype=object).map(self.by_number).to_numpy(dtype=object)
        use = pd.notna(found)
        out[use] = found[use]
        return out

    def describe(self) -> str:
        """One line for the report's settings and the JSON summary."""
        if not self.by_number:
            return f"by appointment id ({self.by_id:,} invoices)"
        return (
            f"by appointment id ({self.by_id:,} invoices), by invoice number "
            f"({len(self.by_number):,} invoices whose appointment id is blank or not in the "
            "appointments export)"
        )


def link_invoices(invoices: pd.DataFrame | None, appointments: pd.DataFrame | None) -> InvoiceLinks:
    """Link invoices to appointments: the invoice's appointment id when an appointment has it,
    else the appointment whose ``invoice_number`` is the invoice's ``number`` (only when exactly
    one appointment carries that number)."""
    if invoices is None or appointments is None or "appointment_id" not in invoices.columns:
        return InvoiceLinks()
    own = invoices["appointment_id"]
    numbered = _numbered_appointments(appointments)
    if numbered.empty or "number" not in invoices.columns:
        return InvoiceLinks(by_id=int(own.notna().sum()))
    known = set(appointments["appointment_id"].tolist())
    own_ids = own.to_numpy(dtype=object)
    intact = np.fromiter(map(known.__contains__, own_ids.tolist()), dtype=bool, count=len(own_ids))
    # Validation has stripped every text cell, so numbers compare as written.
    numbers = pd.Series(invoices["number"].to_numpy(dtype=object)[~intact], dtype=object)
    found = numbers.map(numbered).to_numpy(dtype=object)
    hit = pd.notna(found)
    ids = invoices["invoice_id"].to_numpy(dtype=object)[~intact][hit]
    return InvoiceLinks(
        by_id=int(intact.sum()), by_number=dict(zip(ids.tolist(), found[hit].tolist(), strict=True))
    )


def _numbered_appointments(appointments: pd.DataFrame) -> pd.Series:
    """invoice number -> appointment_id, for the numbers that name exactly one appointment (the
    rows of one group appointment share its id)."""
    if "invoice_number" not in appointments.columns:
        return pd.Series(dtype=object)
    numbers = appointments["invoice_number"].to_numpy(dtype=object)
    numbered = pd.notna(numbers)
    if not numbered.any():
        return pd.Series(dtype=object)
    # One factorization of the numbers; the rows of each number side by side, then a number is
    # kept when every row carrying it has the appointment id of its first row.
    codes, uniques = pd.factorize(numbers[numbered])
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    ids = appointments["appointment_id"].to_numpy(dtype=object)[numbered][order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first_ids = np.repeat(ids[starts], np.diff(np.r_[starts, len(codes)]))
    others = np.add.reduceat((ids != first_ids).astype(np.int64), starts)
    single = others == 0
    index = pd.Index(uniques[single], dtype=object, name="invoice_number")
    return pd.Series(ids[starts][single], index=index, name="appointment_id", dtype=object)
