"""Stage 2: the explicit allocations (exported, or Cliniko's Credit Applied), resolved and split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import as_column, factorize_exact, sum_by
from pkgreport.engine.credit.columns import (
    NAT,
    cents_of,
    datetimes_of,
    days_of,
    raw_of,
    texts_of,
)
from pkgreport.engine.credit.records import InvoiceArrays, LiveRecords, PaymentArrays
from pkgreport.excluded import empty_excluded, excluded_frame


@dataclass(frozen=True)
class Allocations:
    """Allocations resolved against the live invoices and payments (arrays aligned by row)."""

    inv: np.ndarray  # index into live invoices
    pay: np.ndarray  # index into live payments, -1 for credit
    amount: np.ndarray
    at: np.ndarray  # effective datetime
    row: np.ndarray  # original order, for ties

    @staticmethod
    def empty() -> Allocations:
        z = np.zeros(0, np.int64)
        return Allocations(z, z.copy(), z.copy(), np.zeros(0, "datetime64[ns]"), z.copy())

    def take(self, mask: np.ndarray) -> Allocations:
        return Allocations(
            self.inv[mask], self.pay[mask], self.amount[mask], self.at[mask], self.row[mask]
        )

    def concat(self, other: Allocations) -> Allocations:
        return Allocations(
            *(
                np.concatenate((a, b))
                for a, b in (
                    (self.inv, other.inv),
                    (self.pay, other.pay),
                    (self.amount, other.amount),
                    (self.at, other.at),
                    (self.row, other.row),
                )
            )
        )


@dataclass(frozen=True)
class ExplicitAllocations:
    """The explicit allocations as the engine applies them, and what they leave to automatic ones.

    ``paid_directly`` (the payment pays the invoice on its own day), ``in_transit`` (a payment
    allocated on a later day: credit in between) and ``from_credit`` (a "$0 payment") split
    ``allocations`` by row; ``payment_paid_at`` is each row's payment date (NaT for credit).
    """

    allocations: Allocations
    excluded: pd.DataFrame
    per_invoice: np.ndarray  # every explicit allocation as given, summed per invoice
    payment_remainders: np.ndarray  # what each payment has left for automatic allocation
    payment_paid_at: np.ndarray
    paid_directly: np.ndarray
    in_transit: np.ndarray
    from_credit: np.ndarray


def explicit_allocations(
    allocations: pd.DataFrame | None,
    live: LiveRecords,
    invoices: InvoiceArrays,
    payments: PaymentArrays,
    policy: str,
    invoice_rows: np.ndarray | None = None,
) -> ExplicitAllocations:
    """Stage 2: resolve the allocations, pay them from their payments, then top up (source-only).

    `invoice_rows`: each allocation's row among the live invoices, when already known (the
    allocations `recorded_credit` makes from them); else they are found by invoice id."""
    n_invoices, n_payments = len(invoices.ids), len(payments.ids)
    resolved, excluded = _resolve_allocations(
        allocations,
        live.invoices,
        live.payments,
        live.excluded_invoices,
        live.excluded_payments,
        invoice_rows,
    )
    per_invoice = sum_by(resolved.inv, resolved.amount, n_invoices)
    resolved = _split_overspent(resolved, payments.amounts)
    from_payment = resolved.pay >= 0
    per_payment = sum_by(resolved.pay[from_payment], resolved.amount[from_payment], n_payments)
    remainders = np.where(payments.amounts > 0, payments.amounts - per_payment, 0)
    if policy == "source-only":
        top_ups = _source_topups(resolved, live.invoices, live.payments, remainders, per_invoice)
        if len(top_ups.inv):
            resolved = resolved.concat(top_ups)
            remainders = remainders - sum_by(top_ups.pay, top_ups.amount, n_payments)
    from_payment = resolved.pay >= 0
    payment_rows = np.where(from_payment, resolved.pay, 0)
    paid_at = payments.paid_at[payment_rows] if n_payments else np.full(len(resolved.pay), NAT)
    same_day = days_of(resolved.at) == days_of(np.where(from_payment, paid_at, resolved.at))
    paid_directly = from_payment & same_day
    return ExplicitAllocations(
        allocations=resolved,
        excluded=excluded,
        per_invoice=per_invoice,
        payment_remainders=remainders,
        payment_paid_at=paid_at,
        paid_directly=paid_directly,
        in_transit=from_payment & ~paid_directly,
        from_credit=~from_payment,
    )


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted id among the unique `ids`, -1 when absent or missing.

    The few distinct wanted ids are hashed and every id looked up among them: cheaper than a
    hash table of a million ids for a few thousand look-ups.
    """
    codes, uniques = pd.factorize(wanted.astype(object), use_na_sentinel=True)
    found = np.full(len(uniques) + 1, -1, dtype=np.int64)  # the extra slot: code -1
    # Both sides as objects: an inferred text dtype would copy the million ids into Arrow and back.
    where = pd.Index(uniques, dtype=object).get_indexer(pd.Index(ids, dtype=object, copy=False))
    rows = np.flatnonzero(where >= 0)
    found[where[rows]] = rows
    return found[codes]


@dataclass(frozen=True)
class _Targets:
    """What each exported allocation names: the invoice and payment ids and their live rows
    (-1 when absent), and whether it spends credit (a "$0 payment")."""

    invoice_ids: np.ndarray
    payment_ids: np.ndarray
    from_credit: np.ndarray
    invoice_rows: np.ndarray
    payment_rows: np.ndarray


def _resolve_allocations(
    allocations: pd.DataFrame | None,
    inv: pd.DataFrame,
    pay: pd.DataFrame,
    inv_gone: pd.DataFrame,
    pay_gone: pd.DataFrame,
    invoice_rows: np.ndarray | None = None,
) -> tuple[Allocations, pd.DataFrame]:
    """The usable allocations with their effective dates, and the others with the reason."""
    if allocations is None or allocations.empty:
        return Allocations.empty(), empty_excluded()
    a = allocations.reset_index(drop=True)
    n = len(a)
    targets = _targets(a, inv, pay, invoice_rows)
    amount = cents_of(a, "amount")
    reasons = _missing_reasons(targets, inv_gone, pay_gone)
    _unusable_reasons(reasons, targets, inv, pay, amount)
    ok = reasons == ""
    eff = _effective_at(a, targets, inv, pay)
    alloc = Allocations(
        targets.invoice_rows[ok].astype(np.int64),
        targets.payment_rows[ok],
        amount[ok],
        eff[ok].astype("datetime64[ns]"),
        np.arange(n, dtype=np.int64)[ok],
    )
    return alloc, _excluded_allocations(a, targets, reasons, ok)


def _targets(
    a: pd.DataFrame, inv: pd.DataFrame, pay: pd.DataFrame, invoice_rows: np.ndarray | None
) -> _Targets:
    n = len(a)
    inv_ids = texts_of(a, "invoice_id")
    pay_ids = texts_of(a, "payment_id")
    has_pay = pd.notna(pay_ids)
    from_credit = _from_credit(texts_of(a, "source"), has_pay)
    if invoice_rows is not None:
        inv_pos = invoice_rows.astype(np.int64)
    elif len(inv):
        inv_pos = _positions(raw_of(inv, "invoice_id"), inv_ids)
    else:
        inv_pos = np.full(n, -1)
    pay_pos = np.full(n, -1, dtype=np.int64)
    if len(pay):
        wanted = pay_ids.copy()
        wanted[from_credit] = None
        pay_pos = _positions(raw_of(pay, "payment_id"), wanted)
        pay_pos[from_credit] = -1
    return _Targets(inv_ids, pay_ids, from_credit, inv_pos, pay_pos)


def _from_credit(source: np.ndarray, has_pay: np.ndarray) -> np.ndarray:
    """Whether each allocation spends credit: its `source` says so, or when blank it names no
    payment (the few distinct sources are read once)."""
    codes, uniques = factorize_exact(source)
    spelled = np.array([str(s).strip().casefold() for s in uniques] + [""], dtype=object)
    text = spelled[codes]  # code -1 (blank) takes the last slot, ""
    return np.where(text == "", ~has_pay, text == "credit")


def _missing_reasons(
    targets: _Targets, inv_gone: pd.DataFrame, pay_gone: pd.DataFrame
) -> np.ndarray:
    """Why each allocation naming a missing or excluded invoice or payment is ignored ("": kept)."""
    inv_ids, pay_ids = targets.invoice_ids, targets.payment_ids
    gone_inv = set(inv_gone["id"]) if len(inv_gone) else set()
    gone_pay = set(pay_gone["id"]) if len(pay_gone) else set()
    reasons = np.full(len(inv_ids), "", dtype=object)
    for i in np.flatnonzero(targets.invoice_rows < 0):
        why = (
            "is archived or deleted" if inv_ids[i] in gone_inv else "is not in the invoices export"
        )
        reasons[i] = (
            f"invoice {inv_ids[i]} {why}: allocation ignored; export it or remove the allocation"
        )
    bad_pay = (~targets.from_credit) & (targets.payment_rows < 0) & (reasons == "")
    for i in np.flatnonzero(bad_pay):
        if pay_ids[i] is None:
            reasons[i] = (
                "source is 'payment' but payment_id is blank: allocation ignored; fill in the payment"
            )
        else:
            why = (
                "is archived or deleted"
                if pay_ids[i] in gone_pay
                else "is not in the payments export"
            )
            reasons[i] = (
                f"payment {pay_ids[i]} {why}: allocation ignored; export it or remove the allocation"
            )
    return reasons


def _unusable_reasons(
    reasons: np.ndarray, targets: _Targets, inv: pd.DataFrame, pay: pd.DataFrame, amount: np.ndarray
) -> None:
    """Fill in (in place) why each allocation that cannot pay its invoice is ignored."""
    inv_pos, pay_pos = targets.invoice_rows, targets.payment_rows
    ok = reasons == ""
    safe_inv = np.where(inv_pos >= 0, inv_pos, 0)
    safe_pay = np.where(pay_pos >= 0, pay_pos, 0)
    if len(inv):
        not_payable = ok & (cents_of(inv, "total")[safe_inv] <= 0)
        reasons[not_payable] = (
            "allocation to a credit note or a $0 invoice: ignored; allocate it to the invoice it pays"
        )
        ok &= ~not_payable
    if len(pay):
        refund = ok & (pay_pos >= 0) & (cents_of(pay, "amount")[safe_pay] <= 0)
        reasons[refund] = (
            "allocation from a refund or $0 payment: ignored; a refund cannot pay an invoice"
        )
        ok &= ~refund
        inv_pat = raw_of(inv, "patient_id")[safe_inv]
        pay_pat = raw_of(pay, "patient_id")[safe_pay]
        other = ok & (pay_pos >= 0) & (inv_pat != pay_pat)
        reasons[other] = (
            "the payment and the invoice belong to different patients: allocation ignored; fix the allocation"
        )
        ok &= ~other
    nonpos = ok & (amount <= 0)
    reasons[nonpos] = "allocation amount is not positive: ignored"


def _effective_at(
    a: pd.DataFrame, targets: _Targets, inv: pd.DataFrame, pay: pd.DataFrame
) -> np.ndarray:
    """When each allocation takes effect: never before the invoice exists or the money arrived;
    blank = the later of the two dates."""
    n = len(a)
    inv_pos, pay_pos = targets.invoice_rows, targets.payment_rows
    safe_inv = np.where(inv_pos >= 0, inv_pos, 0)
    safe_pay = np.where(pay_pos >= 0, pay_pos, 0)
    alloc_at = datetimes_of(a, "allocated_at")
    issue = datetimes_of(inv, "issue_date")[safe_inv] if len(inv) else np.full(n, NAT)
    paid_at = datetimes_of(pay, "paid_at")[safe_pay] if len(pay) else np.full(n, NAT)
    paid_at = np.where(pay_pos >= 0, paid_at, NAT)
    floor = np.where(
        np.isnat(paid_at), issue, np.maximum(issue, np.where(np.isnat(paid_at), issue, paid_at))
    )
    return np.where(np.isnat(alloc_at), floor, np.maximum(alloc_at, floor))


def _excluded_allocations(
    a: pd.DataFrame, targets: _Targets, reasons: np.ndarray, ok: np.ndarray
) -> pd.DataFrame:
    if ok.all():
        return empty_excluded()
    bad = a.loc[~ok]
    return excluded_frame(
        "allocation",
        texts_of(bad, "source_file"),
        bad["source_row"].to_numpy() if "source_row" in bad.columns else None,
        [
            f"{i}/{p if p is not None else 'credit'}"
            for i, p in zip(targets.invoice_ids[~ok], targets.payment_ids[~ok], strict=True)
        ],
        reasons[~ok],
    )


def _split_overspent(alloc: Allocations, pay_amount: np.ndarray) -> Allocations:
    """A payment pays its allocations in date then file order; any excess comes from credit."""
    from_pay = alloc.pay >= 0
    if not from_pay.any():
        return alloc
    p = alloc.take(from_pay)
    order = np.lexsort((p.row, p.at.astype(np.int64), p.pay))
    p = p.take(order)
    starts = np.flatnonzero(np.r_[True, p.pay[1:] != p.pay[:-1]])
    cum = np.cumsum(p.amount)
    before = (
        cum
        - p.amount
        - np.repeat(np.r_[0, cum[starts[1:] - 1]], np.diff(np.r_[starts, len(p.pay)]))
    )
    cap = pay_amount[p.pay]
    own = np.clip(cap - before, 0, p.amount)
    excess = p.amount - own
    paid = Allocations(p.inv, p.pay, own, p.at, p.row).take(own > 0)
    spill = Allocations(p.inv, np.full(len(p.inv), -1), excess, p.at, p.row).take(excess > 0)
    return alloc.take(~from_pay).concat(paid).concat(spill)


def _source_topups(
    alloc: Allocations,
    inv: pd.DataFrame,
    pay: pd.DataFrame,
    remainder: np.ndarray,
    explicit: np.ndarray,
) -> Allocations:
    """`source-only`: a payment's remainder tops up the invoices it is allocated to, oldest first."""
    p = alloc.take(alloc.pay >= 0)
    if not len(p.pay):
        return Allocations.empty()
    total = cents_of(inv, "total")
    open_left = np.maximum(total - explicit, 0)
    candidates = p.take((remainder[p.pay] > 0) & (open_left[p.inv] > 0))
    if not len(candidates.pay):
        return Allocations.empty()
    issue = datetimes_of(inv, "issue_date")
    paid_at = datetimes_of(pay, "paid_at")
    inv_ids = raw_of(inv, "invoice_id")
    pay_ids = raw_of(pay, "payment_id")
    paid_day = days_of(paid_at)
    issue_ns = issue.astype(np.int64)
    # Payments in event order (day, then id); each one's source invoices oldest first.
    pairs = sorted(
        {(int(pp), int(ii)) for pp, ii in zip(candidates.pay, candidates.inv, strict=True)},
        key=lambda t: (paid_day[t[0]], str(pay_ids[t[0]]), issue_ns[t[1]], str(inv_ids[t[1]])),
    )
    left = remainder.copy()
    out_inv, out_pay, out_amt, out_at = [], [], [], []
    for pp, ii in pairs:
        m = min(int(left[pp]), int(open_left[ii]))
        if m <= 0:
            continue
        left[pp] -= m
        open_left[ii] -= m
        out_inv.append(ii)
        out_pay.append(pp)
        out_amt.append(m)
        out_at.append(max(paid_at[pp], issue[ii]))
    n = len(out_inv)
    return Allocations(
        np.asarray(out_inv, np.int64),
        np.asarray(out_pay, np.int64),
        np.asarray(out_amt, np.int64),
        np.asarray(out_at, dtype="datetime64[ns]").reshape(n),
        np.full(n, -1, np.int64),
    )


# ----------------------------------------------------------------------------- Cliniko's Credit Applied


def records_credit(inv: pd.DataFrame) -> bool:
    """Whether the invoices export carries Cliniko's Credit Applied figure (any value)."""
    return "credit_applied" in inv.columns and bool(inv["credit_applied"].notna().any())


def recorded_credit_rows(inv: pd.DataFrame) -> np.ndarray:
    """The rows of the invoices on which Cliniko's `credit_applied` records credit spent."""
    return np.flatnonzero(inv["credit_applied"].fillna(0).to_numpy(dtype=np.int64) > 0)


def recorded_credit(inv: pd.DataFrame) -> pd.DataFrame | None:
    """Cliniko's `credit_applied` as credit allocations, for a folder with no allocations export.

    Each is what Cliniko paid from the patient's account credit (as a $0 payment does), dated by
    the invoice's `closed_at` when it has one, else its issue date (never before the issue date:
    `_resolve_allocations` floors it). Payments then pay the rest by the allocation policy.
    """
    amount = inv["credit_applied"].fillna(0).to_numpy(dtype=np.int64)
    rows = recorded_credit_rows(inv)
    if not len(rows):
        return None
    closed = datetimes_of(inv, "closed_at")[rows]
    issued = datetimes_of(inv, "issue_date")[rows]
    # Text as objects (`as_column`), as an exported allocations file's typed frame holds it.
    return pd.DataFrame(
        {
            "invoice_id": as_column(raw_of(inv, "invoice_id")[rows]),
            "payment_id": as_column(np.full(len(rows), None, dtype=object)),
            "source": as_column(np.full(len(rows), "credit", dtype=object)),
            "amount": amount[rows],
            "allocated_at": np.where(np.isnat(closed), issued, closed),
            "source_file": as_column(raw_of(inv, "source_file")[rows]),
            "source_row": raw_of(inv, "source_row")[rows],
        }
    )
