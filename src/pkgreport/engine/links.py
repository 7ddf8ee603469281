"""Which appointment each invoice is for: by its Appointment ID when intact, else by invoice number."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import is_among
from pkgreport.ids import MISSING, RunIds, encode, encode_ids


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
        found = self.by_number_of(invoice_ids)
        use = pd.notna(found)
        out[use] = found[use]
        return out

    def by_number_of(self, invoice_ids: np.ndarray) -> np.ndarray:
        """The appointment each invoice is tied to by number, None where it is not."""
        if not self.by_number:
            return np.full(len(invoice_ids), None, dtype=object)
        get = self.by_number.get
        return np.array([get(i) for i in invoice_ids.tolist()] + [None], dtype=object)[:-1]

    def describe(self) -> str:
        """One line for the report's settings and the JSON summary."""
        if not self.by_number:
            return f"by appointment id ({self.by_id:,} invoices)"
        return (
            f"by appointment id ({self.by_id:,} invoices), by invoice number "
            f"({len(self.by_number):,} invoices whose appointment id is blank or not in the "
            "appointments export)"
        )


def link_invoices(
    invoices: pd.DataFrame | None,
    appointments: pd.DataFrame | None,
    ids: RunIds | None = None,
) -> InvoiceLinks:
    """Link invoices to appointments: the invoice's appointment id when an appointment has it,
    else the appointment whose ``invoice_number`` is the invoice's ``number`` (only when exactly
    one appointment carries that number). `ids`: the run's id codes (made here when not given)."""
    if invoices is None or appointments is None or "appointment_id" not in invoices.columns:
        return InvoiceLinks()
    with_own_id = int(invoices["appointment_id"].notna().sum())
    if "invoice_number" not in appointments.columns or "number" not in invoices.columns:
        return InvoiceLinks(by_id=with_own_id)
    if ids is None:
        ids = encode_ids(appointments=appointments, invoices=invoices)
    intact = intact_appointment_ids(ids)
    by_id = int(intact.sum())
    # Validation has stripped every text cell, so numbers compare as written.
    numbered = appointments["invoice_number"].to_numpy(dtype=object)
    appointment_codes = ids.appointments.of("appointments")
    found = _by_number(
        numbered, appointment_codes, invoices["number"].to_numpy(dtype=object)[~intact]
    )
    hit = found >= 0
    if not hit.any():
        # Then the count is of every own id, unless some number names one appointment alone
        # (as when an invoice is linked by number): asked only when the two counts differ.
        if by_id == with_own_id or not _any_single(numbered, appointment_codes):
            return InvoiceLinks(by_id=with_own_id)
        return InvoiceLinks(by_id=by_id)
    linked = invoices["invoice_id"].to_numpy(dtype=object)[~intact][hit]
    return InvoiceLinks(
        by_id=by_id,
        by_number=dict(
            zip(linked.tolist(), ids.appointments.ids[found[hit]].tolist(), strict=True)
        ),
    )


def _by_number(
    numbered: np.ndarray, appointment_codes: np.ndarray, wanted: np.ndarray
) -> np.ndarray:
    """Per wanted number: the code of the one appointment carrying it, `MISSING` when none or
    several do. Only the appointments carrying a wanted number are encoded: every row carrying
    it, so whether one appointment alone carries it is decided as over all the rows."""
    carrying = np.flatnonzero(is_among(numbered, wanted, missing_matches=False))
    numbers = encode({"appointments": numbered[carrying], "invoices": wanted}, text_order=False)
    single = _single_appointment(
        numbers.of("appointments"), appointment_codes[carrying], len(numbers.ids)
    )
    # A blank number's code, MISSING (-1), reads the slot added at the end: MISSING.
    return np.append(single, MISSING)[numbers.of("invoices")]


def _any_single(numbered: np.ndarray, appointment_codes: np.ndarray) -> bool:
    """Whether any number is carried by one appointment alone.

    A number almost always names one appointment, so the first few numbers are tried first,
    each compared with every row (one that names one appointment settles it); only when none
    does are all the numbers encoded."""
    for row in np.flatnonzero(pd.notna(numbered[:1000]))[:3].tolist():
        # Against a one-object array: numpy would make a str scalar its own text, losing any
        # trailing NUL; objects compare as Python compares them, exactly.
        codes = appointment_codes[numbered == numbered[row : row + 1]]
        if bool((codes == codes[0]).all()):
            return True
    numbers = encode({"appointments": numbered}, text_order=False)
    single = _single_appointment(numbers.of("appointments"), appointment_codes, len(numbers.ids))
    return bool((single >= 0).any())


def intact_appointment_ids(ids: RunIds) -> np.ndarray:
    """Per invoice: whether its own appointment id names an appointment in the export."""
    own = ids.appointments.of("invoices")
    present = ids.appointments.present("appointments")
    return (own >= 0) & present[np.maximum(own, 0)]


def _single_appointment(
    number_codes: np.ndarray, appointment_codes: np.ndarray, n_numbers: int
) -> np.ndarray:
    """Per invoice number: the code of the one appointment carrying it (the rows of one group
    appointment share its id), `MISSING` when no row or rows of several appointments carry it."""
    has = number_codes >= 0
    numbers, appointments = number_codes[has], appointment_codes[has]
    single = np.full(n_numbers, MISSING, dtype=np.int64)
    single[numbers] = appointments  # one of each number's appointments...
    several = np.zeros(n_numbers, dtype=bool)
    several[numbers[appointments != single[numbers]]] = True  # ...and whether another differs
    single[several] = MISSING
    return single


def _numbered_appointments(appointments: pd.DataFrame) -> pd.Series:
    """invoice number -> appointment_id, for the numbers that name exactly one appointment."""
    if "invoice_number" not in appointments.columns:
        return pd.Series(dtype=object)
    numbers = encode({"appointments": appointments["invoice_number"]}, text_order=False)
    ids = encode({"appointments": appointments["appointment_id"]}, text_order=False)
    single = _single_appointment(
        numbers.of("appointments"), ids.of("appointments"), len(numbers.ids)
    )
    kept = single >= 0
    index = pd.Index(numbers.ids[kept], dtype=object, name="invoice_number")
    return pd.Series(ids.ids[single[kept]], index=index, name="appointment_id", dtype=object)
