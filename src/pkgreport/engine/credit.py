"""Account credit: allocate payments to invoices, keep a dated credit ledger, flag what is off.

The allocation model
====================

Money is int64 cents; datetimes are naive clinic-local. Everything is computed over the *whole*
history in the exports; the ``as_of`` snapshot (inclusive: every event before the end of that day)
is then read off the dated results, so a snapshot, the ledger and a roll-forward always agree.

1. Live records only. Invoices and payments with ``deleted_at`` or ``archived_at`` set are left out
   and listed in ``excluded`` with the reason; so are allocations that name a missing or excluded
   invoice or payment, a refund, a credit note or zero invoice, or a payment of another patient.

2. Explicit allocations (the allocations export) are kept as given and come before anything
   automatic. Each takes effect at ``allocated_at``, or when that is blank at the later of the
   payment's and the invoice's dates (a credit allocation: the invoice date); it never takes
   effect before its invoice is issued or its payment received (those dates are a floor).

   * ``source == "payment"``: the payment pays the invoice. On the payment's own day that is a
     *direct* payment (no credit movement). Later, the money sits as credit from the payment's
     date (ledger ``created``) and is ``applied`` on the allocation date.
     A payment whose explicit allocations exceed it (inconsistent data) pays them in date order,
     then file order; the excess is taken from the patient's credit as a credit allocation.
   * ``source == "credit"``: a "$0 payment": the amount is taken from the patient's credit
     (ledger ``applied``) on the allocation date.

   An invoice's *auto-payable* balance is its total less all its explicit allocations (whenever
   dated), because exported allocations are applied before any automatic one. Explicit
   allocations above an invoice's total are kept (the invoice shows a negative outstanding) and
   reported as OVER_ALLOCATED_INVOICE.

   Cliniko exports no allocations, but its invoices export says what account credit paid on
   each invoice (``credit_applied``). With no allocations export, those figures are taken as
   given: each is a credit allocation dated by the invoice's ``closed_at`` (else its issue date),
   credit is spent only as they record it, and a payment pays open invoices with its own money
   alone (``_recorded_credit``, ``_settled_by_own_money``). With an allocations export, it wins
   and ``credit_applied`` is only compared with it.

3. Events per patient are replayed in order of (day, rank, id): rank 1 invoices and credit
   notes, rank 2 payments and refunds, rank 3 credit allocations; ids compare as text. So an
   invoice issued on a payment's day is open when the payment arrives, and a credit allocation
   sees the day's payments.

   * supply: a payment's remainder (amount less its explicit allocations); a credit note
     (negative total) creates credit of ``|total|`` on its date (Cliniko "Create credit").
   * demand: an invoice's auto-payable balance (policies ``oldest-first``/``newest-first`` only);
     a refund (negative payment, paid out of credit); a credit allocation.

   Supply first pays open demand, the rest sits as credit; new demand first takes credit, the
   rest stays open. Refunds and credit allocations are recorded in full on their own date. If
   the credit cannot cover them the balance goes negative (reported as NEGATIVE_CREDIT, never
   clamped) and they wait in the queue of open demand until later money covers them.

   * ``oldest-first`` (Cliniko's default): open demand is a queue (oldest issue date first, ties
     by id) and credit is spent oldest first. Both sides are FIFO, so supply unit *x* meets demand
     unit *x* of the patient's cumulative streams: fully vectorised with cumulative sums and one
     global ``searchsorted`` (patients sit at disjoint offsets on one number line).
   * ``newest-first``: open demand is a stack (newest first), credit still spent oldest first.
     A LIFO match has no cumulative-sum form, so it is one linear pass over the events in plain
     Python: O(n), not vectorised, about 0.75 s per million events on this machine.
   * ``source-only`` (Cliniko "only the source invoice"): a payment pays only the invoices it is
     explicitly allocated to (its source invoices). Its remainder tops those invoices up to their
     totals (oldest first, payments in event order) and the rest stays as credit; credit is never
     applied automatically to any other invoice.
   * ``none``: only explicit allocations; every payment remainder stays as credit.

   When credit waiting on the account meets a newly issued invoice is a second switch,
   ``credit_applies`` (auto policies only):

   * ``on-payment`` (the default: Cliniko as its help centre and ``sample_data`` describe it;
     credit is spent by recording a payment, a $0 one included, so credit can sit on file beside
     an open invoice - the CREDIT_WITH_OPEN_INVOICES finding): invoices only queue; each payment sweeps its own
     remainder, then the credit, onto the open invoices per the policy. Refunds and credit
     allocations take credit at once. Vectorised too: with Y the cumulative supply less those
     drains and D the cumulative auto-payable demand, the amount settled after a sweep is the
     running maximum of min(D, Y) over the patient's sweeps (``_sweep_segments``).
   * ``on-issue`` (for systems that spend credit automatically): the invoice takes waiting credit
     on its issue date, so a payment received before an invoice pays it when it is issued.

4. The ledger has one row per credit movement: ``created`` (a payment's part that did not pay an
   open invoice on arrival, a credit note, a payment allocated later than received), ``applied``
   (credit used on an invoice: at the invoice date when credit was waiting, at a credit note's
   date when it paid an older open invoice, at a credit allocation's date) and ``refunded``.
   Per patient, at every date::

       credit = created - applied - refunded
       received + credit_notes - refunded = paid_direct + applied + credit

   where ``received`` sums positive payments, ``refunded`` the refunds, ``credit_notes`` the
   credit notes' ``|total|``, ``paid_direct`` what payments paid on their own day and
   ``applied`` what invoices received from credit. For each invoice with a positive total,
   ``total = paid_direct + paid_from_credit + outstanding``.

5. Findings as of ``as_of``: UNAPPLIED_CREDIT (credit > 0), CREDIT_WITH_OPEN_INVOICES (credit > 0
   and open invoices; amount = what could be applied), DORMANT_CREDIT (credit > 0 and at least
   ``dormant_days`` whole days from the last ledger movement's day to ``as_of``), NEGATIVE_CREDIT
   (an end-of-day balance below zero on or before ``as_of``; intra-day order never raises it),
   OVER_ALLOCATED_INVOICE, PACKAGE_SESSION_CHARGED (an appointment of a case whose package invoice
   - ``case_id`` set, no ``appointment_id`` - is paid in full was itself invoiced above $0).

6. Present-state checks use the final state of the exports (after every event), because the
   exported status and "Unapplied Account Credit" describe the day of the export, not ``as_of``:
   INVOICE_STATUS_MISMATCH compares ``status_reported`` with ``status_final``,
   ``difference = reported_credit - final_credit``, and INVOICE_BALANCE_MISMATCH compares
   Cliniko's ``outstanding_reported`` and ``paid_reported`` (and ``credit_applied`` when
   allocations were exported) with ``final_outstanding``, ``final_paid_direct`` and
   ``final_paid_from_credit`` of every invoice with a positive total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine.findings import combine_findings, make_findings
from pkgreport.engine.links import InvoiceLinks
from pkgreport.money import format_dollars

POLICIES: tuple[str, ...] = ("oldest-first", "newest-first", "source-only", "none")
CREDIT_APPLIES: tuple[str, ...] = ("on-issue", "on-payment")

# Event types on the per-patient queue, and their rank among same-day events.
_INV, _CN, _PAY, _REFUND, _CREDIT_ALLOC = 0, 1, 2, 3, 4
_RANK = np.array([1, 1, 2, 2, 3], dtype=np.int64)

LEDGER_COLUMNS = ["patient_id", "at", "kind", "amount", "ref_type", "ref_id", "lot_date"]
EXCLUDED_COLUMNS = ["kind", "id", "source_file", "source_row", "reason"]
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
INVOICE_COLUMNS = [
    "invoice_id",
    "patient_id",
    "number",
    "issue_date",
    "total",
    "explicit_allocated",
    "paid_direct",
    "paid_from_credit",
    "outstanding",
    "status_reported",
    "status_computed",
    "final_outstanding",
    "status_final",
    "status_mismatch",
    "final_paid_direct",
    "final_paid_from_credit",
    "outstanding_reported",
    "paid_reported",
    "credit_applied",
    "source_file",
    "source_row",
]

_NAT = np.datetime64("NaT", "ns")
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
        *(
            "closed_at",
            "outstanding_reported",
            "paid_reported",
            "credit_applied",
        ),  # Cliniko's own figures for each invoice (`_recorded_credit`, `_balance_findings`)
        "source_file",
        "source_row",
    ),
    "payment": ("payment_id", "patient_id", "paid_at", "amount", "source_file", "source_row"),
}


@dataclass(frozen=True)
class CreditResult:
    """Everything `compute_credit` finds; money int64 cents, snapshot columns as of `as_of`.

    ``patients`` (sorted by patient_id; every patient in any input): received, refunded,
    credit_notes, invoiced (positive invoices), paid_direct, applied, credit, open_outstanding,
    last_movement (last ledger movement) as of `as_of`; final_credit after every event;
    reported_credit and difference = reported_credit - final_credit (Int64, NA when not
    exported); findings (codes joined by ", ").
    ``invoices`` (file order, issued by `as_of`): explicit_allocated (all explicit allocations as
    given), paid_direct, paid_from_credit, outstanding and status_computed (open, paid, zero,
    credit note, over-allocated) as of `as_of`; final_outstanding and status_final after every
    event; status_reported normalised; status_mismatch.
    ``ledger`` (sorted by patient_id, at): patient_id, at, kind (created|applied|refunded), amount
    (> 0), ref_type (payment|invoice|credit_note), ref_id, lot_date (the day a created lot
    arrived; NaT on uses). Every event in the exports, including those after `as_of`.
    ``excluded``: kind, id, source_file, source_row, reason.
    """

    patients: pd.DataFrame
    invoices: pd.DataFrame
    ledger: pd.DataFrame
    excluded: pd.DataFrame
    findings: pd.DataFrame
    as_of: date
    policy: str


# ----------------------------------------------------------------------------- small helpers


def _ns(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), _NAT)
    return frame[col].to_numpy(dtype="datetime64[ns]")


def _text(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    values = frame[col].to_numpy(dtype=object).copy()
    values[pd.isna(values)] = None
    return values


def _raw(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A text column as an object array without the missing-value pass (required ids, outputs)."""
    if col not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[col].to_numpy(dtype=object)


def _money(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype=np.int64)


def _day(at: np.ndarray) -> np.ndarray:
    return at.astype("datetime64[D]").astype(np.int64)


def _cutoff(as_of: date) -> np.datetime64:
    """First instant after `as_of`: events strictly before it count."""
    return np.datetime64(as_of + timedelta(days=1), "ns")


def _live(frame: pd.DataFrame | None, kind: str, id_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into live rows and an excluded frame saying why each other row was left out."""
    if frame is None:
        return pd.DataFrame(), _empty_excluded()
    deleted = ~np.isnat(_ns(frame, "deleted_at"))
    archived = ~np.isnat(_ns(frame, "archived_at"))
    out = deleted | archived
    reason = np.where(
        deleted[out],
        f"deleted {kind} (deleted_at is set): left out of every total",
        f"archived {kind} (archived_at is set): left out of every total",
    ).astype(object)
    gone = frame.loc[out]
    # Only the columns the engine reads are copied: the exports may carry many more.
    wanted = [c for c in _WANTED.get(kind, ()) if c in frame.columns]
    frame = frame[wanted] if wanted else frame
    excluded = pd.DataFrame(
        {
            "kind": kind,
            "id": gone[id_col].to_numpy(dtype=object),
            "source_file": _text(gone, "source_file"),
            "source_row": pd.array(gone["source_row"].to_numpy(), dtype="Int64")
            if "source_row" in gone.columns
            else pd.array([pd.NA] * len(gone), dtype="Int64"),
            "reason": reason,
        }
    )
    if not out.any():
        return frame, excluded
    keep = np.flatnonzero(~out)
    # numpy takes: a pandas row filter would re-validate every string of the str columns.
    return pd.DataFrame({c: _column(frame[c].to_numpy()[keep]) for c in frame.columns}), excluded


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _column(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}


def _column(values: np.ndarray) -> Any:
    """Object arrays stay object dtype: letting pandas infer `str` re-checks every element."""
    return pd.Series(values, dtype=object, copy=False) if values.dtype == object else values


def _empty_excluded() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": pd.Series([], dtype=object),
            "id": pd.Series([], dtype=object),
            "source_file": pd.Series([], dtype=object),
            "source_row": pd.array([], dtype="Int64"),
            "reason": pd.Series([], dtype=object),
        }
    )


def _text_rank(values: np.ndarray) -> np.ndarray:
    """Dense rank of the text of each value (equal text, equal rank)."""
    text = values.astype(str)
    order = np.argsort(text, kind="stable")
    ranked = text[order]
    dense = np.cumsum(np.r_[0, ranked[1:] != ranked[:-1]]) if len(text) else np.zeros(0, np.int64)
    out = np.empty(len(text), np.int64)
    out[order] = dense
    return out


def _tie_order(
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
    id_rank = _text_rank(id_table[ref[members]])
    sub = np.lexsort((rows[members], id_rank, key[members]))
    order[slots] = members[sub]
    return order


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
    text_rank = _text_rank(id_table[ref[members]])
    sub = np.lexsort((amount[members], text_rank, group[slots]))
    order = order.copy()
    order[slots] = members[sub]
    return order


# ----------------------------------------------------------------------------- matching


def _match_fifo(
    pat: np.ndarray, sup: np.ndarray, dem: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FIFO-match the supply and demand streams of each patient (events sorted by patient).

    Returns segments (demand event, supply event, amount): supply unit x of a patient meets its
    demand unit x. Patients are laid on one number line at disjoint offsets so a single global
    searchsorted finds, for each segment start, the supply and the demand event holding it.
    """
    n = len(pat)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n == 0:
        return empty
    starts = np.flatnonzero(np.r_[True, pat[1:] != pat[:-1]])
    s_tot = np.add.reduceat(sup, starts)
    d_tot = np.add.reduceat(dem, starts)
    matched = np.minimum(s_tot, d_tot)
    # A gap of one cent between patients keeps one patient's end apart from the next one's start.
    span = np.maximum(s_tot, d_tot) + 1
    base_p = np.concatenate(([0], np.cumsum(span)[:-1]))
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    base = base_p[group]
    s_loc = np.cumsum(sup) - np.repeat(
        np.concatenate(([0], np.cumsum(sup)[starts[1:] - 1])), np.diff(np.r_[starts, n])
    )
    d_loc = np.cumsum(dem) - np.repeat(
        np.concatenate(([0], np.cumsum(dem)[starts[1:] - 1])), np.diff(np.r_[starts, n])
    )
    s_ev = np.flatnonzero(sup > 0)
    d_ev = np.flatnonzero(dem > 0)
    s_end = s_loc[s_ev] + base[s_ev]
    d_end = d_loc[d_ev] + base[d_ev]
    s_begin = s_end - sup[s_ev]
    d_begin = d_end - dem[d_ev]
    lim = matched[group]
    cut_s = s_begin[(s_loc[s_ev] - sup[s_ev]) < lim[s_ev]]
    cut_d = d_begin[(d_loc[d_ev] - dem[d_ev]) < lim[d_ev]]
    has = matched > 0
    ends = base_p[has] + matched[has]
    marks = np.sort(np.concatenate((cut_s, cut_d, ends)), kind="stable")  # three sorted runs: merged
    if len(marks) < 2:
        return empty
    marks = marks[np.r_[True, marks[1:] != marks[:-1]]]
    left = marks[:-1]
    length = np.diff(marks)
    # `ends` is increasing (one per patient, at disjoint offsets): membership by searchsorted.
    at_end = np.minimum(np.searchsorted(ends, left), len(ends) - 1)
    valid = ends[at_end] != left
    left, length = left[valid], length[valid]
    si = s_ev[np.searchsorted(s_end, left, side="right")]
    di = d_ev[np.searchsorted(d_end, left, side="right")]
    return di.astype(np.int64), si.astype(np.int64), length.astype(np.int64)


def _match_lifo(
    pat: np.ndarray, sup: np.ndarray, dem: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newest-first: open demand is a stack, credit is spent oldest first. One linear pass.

    A LIFO match has no cumulative-sum form, so this is a plain loop over the events that move
    money, on Python ints in parallel lists. (Keeping the FIFO match outside the busy periods
    where a payment meets two or more open items was tried: no faster on realistic data.)
    """
    seg_d: list[int] = []
    seg_s: list[int] = []
    seg_a: list[int] = []
    add_d, add_s, add_a = seg_d.append, seg_s.append, seg_a.append
    idx = np.flatnonzero((sup > 0) | (dem > 0))
    st_e: list[int] = []
    st_r: list[int] = []
    pool_e: list[int] = []
    pool_r: list[int] = []
    head = 0
    current = -1
    for p, s, d, e in zip(pat[idx].tolist(), sup[idx].tolist(), dem[idx].tolist(), idx.tolist()):
        if p != current:
            current = p
            st_e, st_r, pool_e, pool_r, head = [], [], [], [], 0
        if s:
            while st_r:  # supply pays the newest open demand first
                r = st_r[-1]
                if r > s:
                    add_d(st_e[-1])
                    add_s(e)
                    add_a(s)
                    st_r[-1] = r - s
                    s = 0
                    break
                add_d(st_e.pop())
                add_s(e)
                add_a(r)
                st_r.pop()
                s -= r
                if not s:
                    break
            if s:
                pool_e.append(e)
                pool_r.append(s)
        if d:
            n = len(pool_r)
            while head < n:  # new demand takes the oldest credit first
                r = pool_r[head]
                if r > d:
                    add_d(e)
                    add_s(pool_e[head])
                    add_a(d)
                    pool_r[head] = r - d
                    d = 0
                    break
                add_d(e)
                add_s(pool_e[head])
                add_a(r)
                head += 1
                d -= r
                if not d:
                    break
            if d:
                st_e.append(e)
                st_r.append(d)
    return (
        np.asarray(seg_d, dtype=np.int64),
        np.asarray(seg_s, dtype=np.int64),
        np.asarray(seg_a, dtype=np.int64),
    )


def _sweep_segments(
    pat: np.ndarray,
    etype: np.ndarray,
    sup: np.ndarray,
    dem: np.ndarray,
    match: Any,
    own_money: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`on-payment`: credit meets open invoices only when a payment (a $0 one included) arrives.

    Refunds and credit allocations take credit at once. With Y the patient's net credit inflow
    (supply less those drains) and D the invoices' auto-payable demand, both cumulative, a sweep
    at event k leaves M_k = min(D_k, max(M_prev, Y_k)) settled; as M_prev <= D_k this equals
    max(M_prev, min(D_k, Y_k)), a running maximum (vectorised by groupby cummax). Each sweep's
    increase is paid first from the payment itself (direct), then from credit, and is matched
    to invoices by the policy's matcher as if it were supply.

    With `own_money` (credit is spent only as the exports record it: `_settled_by_own_money`)
    a sweep pays with the payment's own money alone.
    """
    n = len(pat)
    if n == 0:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy(), np.zeros(0, bool)
    is_inv = etype == _INV
    is_sweep = etype == _PAY
    inv_dem = np.where(is_inv, dem, 0)
    y = _group_cumsum(pat, sup - np.where(is_inv, 0, dem))
    d = _group_cumsum(pat, inv_dem)
    if own_money:
        settled = _settled_by_own_money(pat, is_sweep, np.where(is_sweep, sup, 0), d)
    else:
        settled = _settled_by_sweeps(pat, np.where(is_sweep, np.maximum(np.minimum(d, y), 0), 0))
    before = np.r_[0, settled[:-1]]
    before[np.flatnonzero(np.r_[True, pat[1:] != pat[:-1]])] = 0
    gain = settled - before
    direct = np.where(is_sweep, np.minimum(sup, gain), 0)
    # Two slots per event, the payment's own money first, then credit.
    pat2 = np.repeat(pat, 2)
    sup2 = np.zeros(2 * n, np.int64)
    sup2[0::2] = direct
    sup2[1::2] = gain - direct
    dem2 = np.zeros(2 * n, np.int64)
    dem2[0::2] = inv_dem
    sd, ss, sa = match(pat2, sup2, dem2)
    return sd // 2, ss // 2, sa, ss % 2 == 0


def _settled_by_sweeps(pat: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Per-patient running maximum of what each sweep could settle (`_sweep_segments`)."""
    big = int(reach.max()) + 1
    if (int(pat.max()) + 1) * big < 2**62:
        # Per-patient running maximum in one pass: lift each patient above all earlier ones.
        lift = pat.astype(np.int64) * big
        return np.maximum.accumulate(reach + lift) - lift
    return pd.Series(reach).groupby(pat, sort=False).cummax().to_numpy(np.int64)


def _settled_by_own_money(
    pat: np.ndarray, is_sweep: np.ndarray, own: np.ndarray, demand: np.ndarray
) -> np.ndarray:
    """Settled invoice demand when each payment pays open invoices with its own money only.

    The sweep at event k settles M_k = min(D_k, M_prev + s_k) (s the payment's own money, D the
    cumulative demand). With S the cumulative own money this unrolls to
    M_k = S_k + min(0, min over sweeps j <= k of (D_j - S_j)): a running minimum per patient.
    """
    paid_in = _group_cumsum(pat, own)
    # Events that are not payments leave the running minimum alone (they settle nothing).
    slack = np.where(is_sweep, demand - paid_in, np.iinfo(np.int64).max)
    lowest = pd.Series(slack).groupby(pat, sort=False).cummin().to_numpy(np.int64)
    return paid_in + np.minimum(lowest, 0)


def _group_cumsum(code: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group (rows sorted by group)."""
    cum = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    base = np.r_[0, cum[starts[1:] - 1]]
    return cum - np.repeat(base, np.diff(np.r_[starts, len(code)]))


# ----------------------------------------------------------------------------- allocations


@dataclass
class _Alloc:
    """Explicit allocations resolved against live invoices/payments (arrays aligned by row)."""

    inv: np.ndarray  # index into live invoices
    pay: np.ndarray  # index into live payments, -1 for credit
    amount: np.ndarray
    at: np.ndarray  # effective datetime
    row: np.ndarray  # original order, for ties

    @staticmethod
    def empty() -> _Alloc:
        z = np.zeros(0, np.int64)
        return _Alloc(z, z.copy(), z.copy(), np.zeros(0, "datetime64[ns]"), z.copy())

    def take(self, mask: np.ndarray) -> _Alloc:
        return _Alloc(
            self.inv[mask], self.pay[mask], self.amount[mask], self.at[mask], self.row[mask]
        )

    def concat(self, other: _Alloc) -> _Alloc:
        return _Alloc(
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


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted id among the unique `ids`, -1 when absent or missing.

    The few distinct wanted ids are hashed and every id looked up among them: cheaper than a
    hash table of a million ids for a few thousand look-ups.
    """
    codes, uniques = pd.factorize(wanted.astype(object), use_na_sentinel=True)
    found = np.full(len(uniques) + 1, -1, dtype=np.int64)  # the extra slot: code -1
    where = pd.Index(uniques, dtype=object).get_indexer(ids)
    rows = np.flatnonzero(where >= 0)
    found[where[rows]] = rows
    return found[codes]


def _resolve_allocations(
    allocations: pd.DataFrame | None,
    inv: pd.DataFrame,
    pay: pd.DataFrame,
    inv_gone: pd.DataFrame,
    pay_gone: pd.DataFrame,
) -> tuple[_Alloc, pd.DataFrame]:
    if allocations is None or allocations.empty:
        return _Alloc.empty(), _empty_excluded()
    a = allocations.reset_index(drop=True)
    n = len(a)
    inv_ids = _text(a, "invoice_id")
    pay_ids = _text(a, "payment_id")
    source = _text(a, "source")
    has_pay = np.array([p is not None for p in pay_ids], dtype=bool)
    src_text = np.array(
        [str(s).strip().casefold() if s is not None else "" for s in source], dtype=object
    )
    from_credit = np.where(src_text == "", ~has_pay, src_text == "credit")
    amount = _money(a, "amount")
    alloc_at = _ns(a, "allocated_at")

    inv_pos = _positions(_raw(inv, "invoice_id"), inv_ids) if len(inv) else np.full(n, -1)
    pay_pos = np.full(n, -1, dtype=np.int64)
    if len(pay):
        wanted = pay_ids.copy()
        wanted[from_credit] = None
        pay_pos = _positions(_raw(pay, "payment_id"), wanted)
        pay_pos[from_credit] = -1
    gone_inv = set(inv_gone["id"]) if len(inv_gone) else set()
    gone_pay = set(pay_gone["id"]) if len(pay_gone) else set()

    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(inv_pos < 0):
        why = (
            "is archived or deleted" if inv_ids[i] in gone_inv else "is not in the invoices export"
        )
        reasons[i] = (
            f"invoice {inv_ids[i]} {why}: allocation ignored; export it or remove the allocation"
        )
    bad_pay = (~from_credit) & (pay_pos < 0) & (reasons == "")
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
    ok = reasons == ""
    inv_total = _money(inv, "total") if len(inv) else np.zeros(0, np.int64)
    safe_inv = np.where(inv_pos >= 0, inv_pos, 0)
    safe_pay = np.where(pay_pos >= 0, pay_pos, 0)
    if len(inv):
        not_payable = ok & (inv_total[safe_inv] <= 0)
        reasons[not_payable] = (
            "allocation to a credit note or a $0 invoice: ignored; allocate it to the invoice it pays"
        )
        ok &= ~not_payable
    pay_amount = _money(pay, "amount") if len(pay) else np.zeros(0, np.int64)
    if len(pay):
        refund = ok & (pay_pos >= 0) & (pay_amount[safe_pay] <= 0)
        reasons[refund] = (
            "allocation from a refund or $0 payment: ignored; a refund cannot pay an invoice"
        )
        ok &= ~refund
        inv_pat = _raw(inv, "patient_id")[safe_inv]
        pay_pat = _raw(pay, "patient_id")[safe_pay]
        other = ok & (pay_pos >= 0) & (inv_pat != pay_pat)
        reasons[other] = (
            "the payment and the invoice belong to different patients: allocation ignored; fix the allocation"
        )
        ok &= ~other
    nonpos = ok & (amount <= 0)
    reasons[nonpos] = "allocation amount is not positive: ignored"
    ok &= ~nonpos

    issue = _ns(inv, "issue_date")[safe_inv] if len(inv) else np.full(n, _NAT)
    paid_at = _ns(pay, "paid_at")[safe_pay] if len(pay) else np.full(n, _NAT)
    paid_at = np.where(pay_pos >= 0, paid_at, _NAT)
    # Never before the invoice exists or the money arrived; blank = the later of the two dates.
    floor = np.where(
        np.isnat(paid_at), issue, np.maximum(issue, np.where(np.isnat(paid_at), issue, paid_at))
    )
    eff = np.where(np.isnat(alloc_at), floor, np.maximum(alloc_at, floor))

    excluded = _empty_excluded()
    if (~ok).any():
        bad = a.loc[~ok]
        excluded = pd.DataFrame(
            {
                "kind": "allocation",
                "id": [
                    f"{i}/{p if p is not None else 'credit'}"
                    for i, p in zip(inv_ids[~ok], pay_ids[~ok])
                ],
                "source_file": _text(bad, "source_file"),
                "source_row": pd.array(bad["source_row"].to_numpy(), dtype="Int64")
                if "source_row" in bad.columns
                else pd.array([pd.NA] * len(bad), dtype="Int64"),
                "reason": reasons[~ok],
            }
        )
    alloc = _Alloc(
        inv_pos[ok].astype(np.int64),
        pay_pos[ok],
        amount[ok],
        eff[ok].astype("datetime64[ns]"),
        np.arange(n, dtype=np.int64)[ok],
    )
    return alloc, excluded


def _split_overspent(alloc: _Alloc, pay_amount: np.ndarray) -> _Alloc:
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
    paid = _Alloc(p.inv, p.pay, own, p.at, p.row).take(own > 0)
    spill = _Alloc(p.inv, np.full(len(p.inv), -1), excess, p.at, p.row).take(excess > 0)
    return alloc.take(~from_pay).concat(paid).concat(spill)


def _source_topups(
    alloc: _Alloc, inv: pd.DataFrame, pay: pd.DataFrame, remainder: np.ndarray, explicit: np.ndarray
) -> _Alloc:
    """`source-only`: a payment's remainder tops up the invoices it is allocated to, oldest first."""
    p = alloc.take(alloc.pay >= 0)
    if not len(p.pay):
        return _Alloc.empty()
    total = _money(inv, "total")
    open_left = np.maximum(total - explicit, 0)
    candidates = p.take((remainder[p.pay] > 0) & (open_left[p.inv] > 0))
    if not len(candidates.pay):
        return _Alloc.empty()
    issue = _ns(inv, "issue_date")
    paid_at = _ns(pay, "paid_at")
    inv_ids = _raw(inv, "invoice_id")
    pay_ids = _raw(pay, "payment_id")
    paid_day = _day(paid_at)
    issue_ns = issue.astype(np.int64)
    # Payments in event order (day, then id); each one's source invoices oldest first.
    pairs = sorted(
        {(int(pp), int(ii)) for pp, ii in zip(candidates.pay, candidates.inv)},
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
    return _Alloc(
        np.asarray(out_inv, np.int64),
        np.asarray(out_pay, np.int64),
        np.asarray(out_amt, np.int64),
        np.asarray(out_at, dtype="datetime64[ns]").reshape(n),
        np.full(n, -1, np.int64),
    )


# ----------------------------------------------------------------------------- main entry


def compute_credit(
    invoices: pd.DataFrame | None,
    payments: pd.DataFrame | None,
    allocations: pd.DataFrame | None,
    patients: pd.DataFrame | None,
    as_of: date,
    *,
    policy: str = "oldest-first",
    dormant_days: int = 365,
    credit_applies: str = "on-payment",
    appointments: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    links: InvoiceLinks | None = None,
) -> CreditResult:
    """Allocate payments to invoices per `policy`, build the credit ledger and the findings.

    `links` ties invoices whose appointment id is not intact to their appointment by invoice
    number (`engine.links`); without it, invoices are linked by their own appointment id.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown allocation policy {policy!r}; use one of {', '.join(POLICIES)}")
    if credit_applies not in CREDIT_APPLIES:
        raise ValueError(
            f"unknown credit_applies {credit_applies!r}; use one of {', '.join(CREDIT_APPLIES)}"
        )
    cutoff = _cutoff(as_of)
    inv, inv_gone = _live(invoices, "invoice", "invoice_id")
    pay, pay_gone = _live(payments, "payment", "payment_id")
    if invoices is not None and inv.empty:
        inv = invoices.iloc[0:0].reset_index(drop=True)
    if payments is not None and pay.empty:
        pay = payments.iloc[0:0].reset_index(drop=True)
    n_inv, n_pay = len(inv), len(pay)
    allocations_exported = allocations is not None
    # Cliniko's own Credit Applied column says how much credit each invoice used: taken as given,
    # credit is then spent only as recorded, and payments pay with their own money.
    credit_recorded = not allocations_exported and _records_credit(inv)
    if credit_recorded:
        allocations = _recorded_credit(inv)

    inv_id = _raw(inv, "invoice_id") if n_inv else np.zeros(0, object)
    inv_pid = _raw(inv, "patient_id") if n_inv else np.zeros(0, object)
    inv_total = _money(inv, "total") if n_inv else np.zeros(0, np.int64)
    inv_at = _ns(inv, "issue_date") if n_inv else np.zeros(0, "datetime64[ns]")
    pay_id = _raw(pay, "payment_id") if n_pay else np.zeros(0, object)
    pay_pid = _raw(pay, "patient_id") if n_pay else np.zeros(0, object)
    pay_amt = _money(pay, "amount") if n_pay else np.zeros(0, np.int64)
    pay_at = _ns(pay, "paid_at") if n_pay else np.zeros(0, "datetime64[ns]")

    alloc, alloc_gone = _resolve_allocations(allocations, inv, pay, inv_gone, pay_gone)
    explicit = _sum_by(alloc.inv, alloc.amount, n_inv)
    alloc = _split_overspent(alloc, pay_amt)
    from_pay = alloc.pay >= 0
    pay_explicit = _sum_by(alloc.pay[from_pay], alloc.amount[from_pay], n_pay)
    remainder = np.where(pay_amt > 0, pay_amt - pay_explicit, 0)
    if policy == "source-only":
        extra = _source_topups(alloc, inv, pay, remainder, explicit)
        if len(extra.inv):
            alloc = alloc.concat(extra)
            remainder = remainder - _sum_by(extra.pay, extra.amount, n_pay)
    from_pay = alloc.pay >= 0
    safe_pay = np.where(from_pay, alloc.pay, 0)
    a_paid_at = pay_at[safe_pay] if n_pay else np.full(len(alloc.pay), _NAT)
    direct_alloc = from_pay & (_day(alloc.at) == _day(np.where(from_pay, a_paid_at, alloc.at)))
    transit_alloc = from_pay & ~direct_alloc
    credit_alloc = ~from_pay

    pat_values = np.concatenate(
        (
            inv_pid,
            pay_pid,
            _raw(patients, "patient_id") if patients is not None else np.zeros(0, object),
        )
    )
    # One code per patient for every record; sort=True makes the codes the ids' text order, which
    # every output follows (only the distinct ids are sorted, so this stays cheap).
    pat_code_all, pat_uniques = pd.factorize(pat_values, sort=True)
    inv_pat = pat_code_all[:n_inv]
    pay_pat = pat_code_all[n_inv : n_inv + n_pay]
    n_pat = len(pat_uniques)

    # --- the queue of supply and demand events
    auto = policy in ("oldest-first", "newest-first")
    demand = np.maximum(inv_total - explicit, 0) if auto else np.zeros(n_inv, np.int64)
    inv_ev = np.flatnonzero(demand > 0)
    cn_ev = np.flatnonzero(inv_total < 0)
    sweep = auto and (credit_applies == "on-payment" or credit_recorded)
    # In on-payment mode every payment (a $0 one included) is an event: it sweeps credit.
    pay_ev = np.flatnonzero((pay_amt >= 0) if sweep else (remainder > 0))
    ref_ev = np.flatnonzero(pay_amt < 0)
    cal_ev = np.flatnonzero(credit_alloc)
    etype = np.concatenate(
        (
            np.full(len(inv_ev), _INV),
            np.full(len(cn_ev), _CN),
            np.full(len(pay_ev), _PAY),
            np.full(len(ref_ev), _REFUND),
            np.full(len(cal_ev), _CREDIT_ALLOC),
        )
    ).astype(np.int64)
    src = np.concatenate((inv_ev, cn_ev, pay_ev, ref_ev, cal_ev)).astype(np.int64)
    e_pat = np.concatenate(
        (
            inv_pat[inv_ev],
            inv_pat[cn_ev],
            pay_pat[pay_ev],
            pay_pat[ref_ev],
            inv_pat[alloc.inv[cal_ev]],
        )
    ).astype(np.int64)
    e_at = np.concatenate(
        (inv_at[inv_ev], inv_at[cn_ev], pay_at[pay_ev], pay_at[ref_ev], alloc.at[cal_ev])
    )
    e_sup = np.concatenate(
        (
            np.zeros(len(inv_ev), np.int64),
            -inv_total[cn_ev],
            remainder[pay_ev],
            np.zeros(len(ref_ev) + len(cal_ev), np.int64),
        )
    )
    e_dem = np.concatenate(
        (
            demand[inv_ev],
            np.zeros(len(cn_ev) + len(pay_ev), np.int64),
            -pay_amt[ref_ev],
            alloc.amount[cal_ev],
        )
    )
    # Ids stay integers (rows of all_ids) until the output frames are built: moving millions of
    # Python strings around costs more than the whole allocation.
    all_ids = np.concatenate((inv_id, pay_id))
    e_ref = np.concatenate(
        (inv_ev, cn_ev, n_inv + pay_ev, n_inv + ref_ev, alloc.inv[cal_ev])
    ).astype(np.int64)
    e_day = _day(e_at)
    if len(e_day):
        d0 = int(e_day.min())
        width = int(e_day.max()) - d0 + 1
        key = (e_pat * width + (e_day - d0)) * 4 + _RANK[etype]
        order = _tie_order(
            key,
            e_ref,
            all_ids,
            np.concatenate(
                (src[: len(inv_ev) + len(cn_ev) + len(pay_ev) + len(ref_ev)], alloc.row[cal_ev])
            ),
        )
    else:
        order = np.zeros(0, np.int64)
    etype, src, e_pat, e_at, e_sup, e_dem, e_ref = (
        x[order] for x in (etype, src, e_pat, e_at, e_sup, e_dem, e_ref)
    )

    match = _match_lifo if policy == "newest-first" else _match_fifo
    if sweep:
        seg_d, seg_s, seg_a, swept_direct = _sweep_segments(
            e_pat, etype, e_sup, e_dem, match, own_money=credit_recorded
        )
    else:
        seg_d, seg_s, seg_a = match(e_pat, e_sup, e_dem)

    # --- what each segment means: only supply meeting an invoice's auto-payable demand pays it.
    on_invoice = etype[seg_d] == _INV
    seg_at = np.where(seg_d > seg_s, e_at[seg_d], e_at[seg_s])  # the later event settles it
    if sweep:
        seg_direct = swept_direct
    else:
        seg_direct = on_invoice & (etype[seg_s] == _PAY) & (seg_d < seg_s)
    seg_credit = on_invoice & ~seg_direct
    seg_inv = src[seg_d]

    # Payments to invoices: (invoice, when, amount, direct?)
    pi_inv = np.concatenate(
        (
            alloc.inv[direct_alloc],
            alloc.inv[transit_alloc],
            alloc.inv[credit_alloc],
            seg_inv[seg_direct],
            seg_inv[seg_credit],
        )
    )
    pi_at = np.concatenate(
        (
            alloc.at[direct_alloc],
            alloc.at[transit_alloc],
            alloc.at[credit_alloc],
            seg_at[seg_direct],
            seg_at[seg_credit],
        )
    )
    pi_amt = np.concatenate(
        (
            alloc.amount[direct_alloc],
            alloc.amount[transit_alloc],
            alloc.amount[credit_alloc],
            seg_a[seg_direct],
            seg_a[seg_credit],
        )
    )
    pi_direct = np.concatenate(
        (
            np.ones(int(direct_alloc.sum()), bool),
            np.zeros(int(transit_alloc.sum() + credit_alloc.sum()), bool),
            np.ones(int(seg_direct.sum()), bool),
            np.zeros(int(seg_credit.sum()), bool),
        )
    )

    # --- the ledger
    direct_per_sup = _sum_by(seg_s[seg_direct], seg_a[seg_direct], len(etype))
    is_pay = etype == _PAY
    created_pay = np.where(is_pay, e_sup - direct_per_sup, 0)
    l_parts: list[tuple[np.ndarray, ...]] = []

    def part(
        pat_: np.ndarray, at_: np.ndarray, kind: int, amt: np.ndarray, rtype: int, rid: np.ndarray
    ) -> None:
        keep = amt != 0
        l_parts.append(
            (
                pat_[keep],
                at_[keep],
                np.full(int(keep.sum()), kind),
                amt[keep],
                np.full(int(keep.sum()), rtype),
                rid[keep],
            )
        )

    # kinds: 0 created, 1 applied, 2 refunded; ref types: 0 payment, 1 invoice, 2 credit note
    part(e_pat[is_pay], e_at[is_pay], 0, created_pay[is_pay], 0, e_ref[is_pay])
    is_cn = etype == _CN
    part(e_pat[is_cn], e_at[is_cn], 0, e_sup[is_cn], 2, e_ref[is_cn])
    ta = alloc.take(transit_alloc)
    part(
        pay_pat[ta.pay] if n_pay else np.zeros(0, np.int64),
        a_paid_at[transit_alloc],
        0,
        ta.amount,
        0,
        n_inv + ta.pay,
    )
    part(inv_pat[ta.inv] if n_inv else np.zeros(0, np.int64), ta.at, 1, ta.amount, 1, ta.inv)
    ca = alloc.take(credit_alloc)
    part(inv_pat[ca.inv] if n_inv else np.zeros(0, np.int64), ca.at, 1, ca.amount, 1, ca.inv)
    if seg_credit.any():
        # One applied row per invoice and date (a payment or credit note may pay it piecemeal).
        sc_inv, sc_at, sc_amt = (
            seg_inv[seg_credit],
            seg_at[seg_credit].astype(np.int64),
            seg_a[seg_credit],
        )
        if policy == "newest-first":
            # FIFO segments already run demand by demand in time order; LIFO ones do not.
            by = np.lexsort((sc_at, sc_inv))
            sc_inv, sc_at, sc_amt = sc_inv[by], sc_at[by], sc_amt[by]
        first = np.flatnonzero(np.r_[True, (sc_inv[1:] != sc_inv[:-1]) | (sc_at[1:] != sc_at[:-1])])
        gi = sc_inv[first]
        part(
            inv_pat[gi],
            sc_at[first].astype("datetime64[ns]"),
            1,
            np.add.reduceat(sc_amt, first),
            1,
            gi,
        )
    is_ref = etype == _REFUND
    part(e_pat[is_ref], e_at[is_ref], 2, e_dem[is_ref], 0, e_ref[is_ref])

    l_pat = np.concatenate([p[0] for p in l_parts]).astype(np.int64)
    l_at = np.concatenate([p[1] for p in l_parts]).astype("datetime64[ns]")
    l_kind = np.concatenate([p[2] for p in l_parts]).astype(np.int64)
    l_amt = np.concatenate([p[3] for p in l_parts]).astype(np.int64)
    l_rtype = np.concatenate([p[4] for p in l_parts]).astype(np.int64)
    l_rid = np.concatenate([p[5] for p in l_parts]).astype(np.int64)

    l_key = _ledger_key(l_pat, l_at, l_kind * 3 + l_rtype)
    l_order = _fix_ledger_ties(np.argsort(l_key), (l_key,), all_ids, l_rid, l_amt)
    l_pat, l_at, l_kind, l_amt, l_rtype, l_rid = (
        x[l_order] for x in (l_pat, l_at, l_kind, l_amt, l_rtype, l_rid)
    )
    l_signed = np.where(l_kind == 0, l_amt, -l_amt)

    ledger = pd.DataFrame(
        _columns(
            {
                "patient_id": np.asarray(pat_uniques, dtype=object)[l_pat],
                "at": l_at,
                "kind": np.array(["created", "applied", "refunded"], dtype=object)[l_kind],
                "amount": l_amt,
                "ref_type": np.array(["payment", "invoice", "credit_note"], dtype=object)[l_rtype],
                "ref_id": all_ids[l_rid],
                "lot_date": np.where(
                    l_kind == 0, l_at.astype("datetime64[D]").astype("datetime64[ns]"), _NAT
                ),
            }
        )
    )

    # --- per-invoice snapshot (as of) and final state
    in_snap = pi_at < cutoff
    paid_direct = _sum_by(pi_inv[pi_direct & in_snap], pi_amt[pi_direct & in_snap], n_inv)
    paid_credit = _sum_by(pi_inv[~pi_direct & in_snap], pi_amt[~pi_direct & in_snap], n_inv)
    paid_final = _sum_by(pi_inv, pi_amt, n_inv)
    final_direct = _sum_by(pi_inv[pi_direct], pi_amt[pi_direct], n_inv)
    positive = inv_total > 0
    outstanding = np.where(positive, inv_total - paid_direct - paid_credit, 0)
    final_out = np.where(positive, inv_total - paid_final, 0)
    issued = inv_at < cutoff
    status_snap = _status(inv_total, outstanding)
    status_final = _status(inv_total, final_out)
    reported = _normalise_status(_raw(inv, "status") if n_inv else np.zeros(0, object))
    reported_settled = np.isin(reported, ["paid", "closed"])
    mismatch = positive & (
        (reported_settled & (final_out > 0)) | ((reported == "open") & (final_out <= 0))
    )

    inv_frame = pd.DataFrame(
        _columns(
            {
                "invoice_id": inv_id,
                "patient_id": inv_pid,
                "number": _raw(inv, "number") if n_inv else np.zeros(0, object),
                "issue_date": inv_at,
                "total": inv_total,
                "explicit_allocated": explicit,
                "paid_direct": paid_direct,
                "paid_from_credit": paid_credit,
                "outstanding": outstanding,
                "status_reported": reported,
                "status_computed": status_snap,
                "final_outstanding": final_out,
                "status_final": status_final,
                "status_mismatch": mismatch,
                **_reported_figures(inv, final_direct, paid_final - final_direct),
                "source_file": _raw(inv, "source_file") if n_inv else np.zeros(0, object),
                "source_row": pd.array(
                    inv["source_row"].to_numpy()
                    if n_inv and "source_row" in inv
                    else [pd.NA] * n_inv,
                    dtype="Int64",
                ),
            }
        )
    )
    # File order (as validated); only invoices issued by as_of exist in the snapshot.
    if not issued.all():
        inv_frame = inv_frame.loc[issued].reset_index(drop=True)

    # --- per-patient snapshot
    l_snap = l_at < cutoff
    pay_snap = pay_at < cutoff
    received = _sum_by(pay_pat[pay_snap & (pay_amt > 0)], pay_amt[pay_snap & (pay_amt > 0)], n_pat)
    refunded = _sum_by(pay_pat[pay_snap & (pay_amt < 0)], -pay_amt[pay_snap & (pay_amt < 0)], n_pat)
    inv_pos_snap = issued & positive
    invoiced = _sum_by(inv_pat[inv_pos_snap], inv_total[inv_pos_snap], n_pat)
    cn_snap = issued & (inv_total < 0)
    credit_notes = _sum_by(inv_pat[cn_snap], -inv_total[cn_snap], n_pat)
    applied = _sum_by(l_pat[l_snap & (l_kind == 1)], l_amt[l_snap & (l_kind == 1)], n_pat)
    credit = _sum_by(l_pat[l_snap], l_signed[l_snap], n_pat)
    final_credit = _sum_by(l_pat, l_signed, n_pat)
    p_direct = _sum_by(inv_pat[issued], paid_direct[issued], n_pat)
    open_mask = issued & (outstanding > 0)
    open_out = _sum_by(inv_pat[open_mask], outstanding[open_mask], n_pat)
    last = np.full(n_pat, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last, l_pat[l_snap], l_at[l_snap].astype(np.int64))
    last_movement = np.where(last == np.iinfo(np.int64).min, _NAT, last.astype("datetime64[ns]"))

    names = np.full(n_pat, None, dtype=object)
    reported_credit = pd.array([pd.NA] * n_pat, dtype="Int64")
    pat_file = np.full(n_pat, None, dtype=object)
    pat_row = pd.array([pd.NA] * n_pat, dtype="Int64")
    if patients is not None and len(patients):
        pcode = pat_code_all[n_inv + n_pay :]
        names[pcode] = _text(patients, "patient_name")
        pat_file[pcode] = _text(patients, "source_file")
        if "source_row" in patients.columns:
            pat_row[pcode] = pd.array(patients["source_row"].to_numpy(), dtype="Int64")
        if "reported_credit" in patients.columns:
            reported_credit[pcode] = pd.array(patients["reported_credit"], dtype="Int64")
    # Fill names from appointments when the patients file has none is the report's job.
    difference = reported_credit - pd.array(final_credit, dtype="Int64")

    pat_frame = pd.DataFrame(
        _columns(
            {
                "patient_id": np.asarray(pat_uniques, dtype=object),
                "patient_name": names,
                "received": received,
                "refunded": refunded,
                "credit_notes": credit_notes,
                "invoiced": invoiced,
                "paid_direct": p_direct,
                "applied": applied,
                "credit": credit,
                "open_outstanding": open_out,
                "final_credit": final_credit,
                "reported_credit": reported_credit,
                "difference": difference,
                "last_movement": last_movement,
                "source_file": pat_file,
                "source_row": pat_row,
            }
        )
    )

    # --- findings
    parts = _credit_findings(
        pat_frame, inv_frame, l_pat[l_snap], l_at[l_snap], l_signed[l_snap], as_of, dormant_days,
        allocations=allocations,
    )
    parts.append(
        _package_session_findings(inv_frame, inv, issued, appointments, cases, links or InvoiceLinks())
    )
    parts.append(_balance_findings(inv_frame, check_credit=allocations_exported))
    findings = combine_findings(*parts)

    pat_frame["findings"] = _codes_per_patient(findings, pat_uniques)
    pat_frame = pat_frame[PATIENT_COLUMNS]

    excluded = pd.concat(
        [x for x in (inv_gone, pay_gone, alloc_gone) if len(x)] or [_empty_excluded()],
        ignore_index=True,
    )
    return CreditResult(pat_frame, inv_frame, ledger, excluded, findings, as_of, policy)


def _sum_by(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 group sums (bincount would go through float64 and lose cents past 2**53)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, codes.astype(np.int64), values.astype(np.int64))
    return out


def _normalise_status(values: np.ndarray) -> np.ndarray:
    """'Open credit', 'open_credit', ' PAID ' -> open_credit, paid (few distinct values: map once)."""
    codes, uniques = pd.factorize(values.astype(object))
    clean = np.array(
        [str(u).strip().casefold().replace(" ", "_") for u in uniques] + [None], dtype=object
    )
    return clean[codes]


def _codes_per_patient(findings: pd.DataFrame, patient_ids: Any) -> np.ndarray:
    """Each patient's distinct finding codes joined by ', ' in code order (vectorised per code)."""
    index = pd.Index(np.asarray(patient_ids, dtype=object))
    out = np.full(len(index), "", dtype=object)
    if findings.empty:
        return out
    where = index.get_indexer(findings["patient_id"].to_numpy(dtype=object))
    code = findings["code"].to_numpy(dtype=object)
    for name in sorted(set(code)):
        has = np.zeros(len(index), bool)
        rows = where[(code == name) & (where >= 0)]
        has[rows] = True
        out[has] = np.where(out[has] == "", name, out[has] + ", " + name)
    return out


_STATUS = np.array(["credit note", "zero", "over-allocated", "paid", "open"], dtype=object)


def _status(total: np.ndarray, outstanding: np.ndarray) -> np.ndarray:
    code = np.select(
        [total < 0, total == 0, outstanding < 0, outstanding == 0], [0, 1, 2, 3], default=4
    )
    return _STATUS[code]


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


# ----------------------------------------------------------------------------- findings


def _make(code: str, subjects: pd.DataFrame, message: Any, **kw: Any) -> pd.DataFrame | None:
    """make_findings, skipped when there is nothing to report (an empty findings frame is not free)."""
    if subjects.empty:
        return None
    return make_findings(code, subjects, message, **kw)


def _rows(*columns: Any) -> Any:
    """zip over columns as plain lists (iterating pandas objects element-wise is slow)."""
    return zip(*(c.tolist() if hasattr(c, "tolist") else list(c) for c in columns))


def _allocation_places(allocations: pd.DataFrame | None, invoices: pd.Series) -> dict[object, str]:
    """invoice_id -> where the exported allocations to `invoices` are ("allocations.csv row 2,
    allocations.csv row 3"), to name both records in OVER_ALLOCATED_INVOICE."""
    if allocations is None or invoices.empty or "source_row" not in allocations:
        return {}
    mine = allocations.loc[allocations["invoice_id"].isin(invoices)]
    places: dict[object, list[str]] = {}
    for invoice, file, row in zip(mine["invoice_id"], mine["source_file"], mine["source_row"]):
        places.setdefault(invoice, []).append(f"{file} row {row}")
    return {invoice: ", ".join(rows) for invoice, rows in places.items()}


def _allocated_in(places: dict[object, str] | None, invoice: object) -> str:
    where = (places or {}).get(invoice)
    return f" (allocations: {where})" if where else ""


def _credit_findings(
    pats: pd.DataFrame,
    invs: pd.DataFrame,
    l_pat: np.ndarray,
    l_at: np.ndarray,
    l_signed: np.ndarray,
    as_of: date,
    dormant_days: int,
    allocations: pd.DataFrame | None = None,
) -> list[pd.DataFrame | None]:
    """Patient and invoice findings from the snapshot (ledger arrays sorted by patient, time)."""
    parts: list[pd.DataFrame | None] = []
    on = as_of.isoformat()
    credit = pats["credit"]
    has_credit = pats.loc[credit > 0]
    parts.append(
        _make(
            "UNAPPLIED_CREDIT",
            has_credit,
            pd.Series(
                [
                    f"{format_dollars(c)} of account credit is unapplied on {on}: apply it to the patient's next "
                    "invoice or refund it."
                    for c in has_credit["credit"].tolist()
                ],
                index=has_credit.index,
                dtype=object,
            ),
            subject_type="patient",
            subject_id="patient_id",
            amount=has_credit["credit"],
        )
    )
    both = pats.loc[(credit > 0) & (pats["open_outstanding"] > 0)]
    usable = np.minimum(both["credit"], both["open_outstanding"])
    parts.append(
        _make(
            "CREDIT_WITH_OPEN_INVOICES",
            both,
            pd.Series(
                [
                    f"The patient has {format_dollars(c)} of credit and {format_dollars(o)} owing on open invoices: "
                    f"apply {format_dollars(u)} of the credit to those invoices in Cliniko."
                    for c, o, u in _rows(both["credit"], both["open_outstanding"], usable)
                ],
                index=both.index,
                dtype=object,
            ),
            subject_type="patient",
            subject_id="patient_id",
            amount=usable,
        )
    )
    as_of_ns = np.datetime64(as_of, "D").astype("datetime64[ns]")
    last_day = (
        pats["last_movement"]
        .to_numpy(dtype="datetime64[ns]")
        .astype("datetime64[D]")
        .astype("datetime64[ns]")
    )
    moved = ~np.isnat(last_day)
    idle = np.full(len(last_day), -1, np.int64)
    idle[moved] = (as_of_ns - last_day[moved]) // np.timedelta64(1, "D")
    dormant = pats.loc[(credit.to_numpy() > 0) & ~np.isnat(last_day) & (idle >= dormant_days)]
    idle_d = pd.Series(idle, index=pats.index).loc[dormant.index]
    parts.append(
        _make(
            "DORMANT_CREDIT",
            dormant,
            pd.Series(
                [
                    f"{format_dollars(c)} of credit has not moved for {d} days (since {str(t)[:10]}): "
                    "contact the patient to use or refund it."
                    for c, d, t in _rows(dormant["credit"], idle_d, dormant["last_movement"])
                ],
                index=dormant.index,
                dtype=object,
            ),
            subject_type="patient",
            subject_id="patient_id",
            amount=dormant["credit"],
        )
    )
    if len(l_pat):
        # Balances at the end of each day: intra-day order must not raise false alarms.
        starts = np.flatnonzero(np.r_[True, l_pat[1:] != l_pat[:-1]])
        lens = np.diff(np.r_[starts, len(l_pat)])
        cum = np.cumsum(l_signed)
        bal = cum - np.repeat(np.r_[0, cum[starts[1:] - 1]], lens)
        day = _day(l_at)
        eod = np.r_[(l_pat[1:] != l_pat[:-1]) | (day[1:] != day[:-1]), True]
        neg = eod & (bal < 0)
        if neg.any():
            rows = np.flatnonzero(neg)
            worst = pd.DataFrame({"p": l_pat[rows], "b": bal[rows], "d": day[rows]})
            first = worst.groupby("p", sort=False)["d"].min()
            low = worst.groupby("p", sort=False)["b"].min()
            subj = pats.loc[low.index]
            parts.append(
                _make(
                    "NEGATIVE_CREDIT",
                    subj,
                    pd.Series(
                        [
                            f"Account credit went below zero (lowest {format_dollars(b)}, first on "
                            f"{np.datetime64(int(d), 'D')}): more was refunded or applied than the patient paid; "
                            "check the refunds and allocations in Cliniko."
                            for b, d in _rows(low, first.loc[low.index])
                        ],
                        index=subj.index,
                        dtype=object,
                    ),
                    subject_type="patient",
                    subject_id="patient_id",
                    amount=-low,
                )
            )
    has_rep = pats["reported_credit"].notna() & (pats["difference"].fillna(0) != 0)
    rep = pats.loc[has_rep.to_numpy(dtype=bool)]
    parts.append(
        _make(
            "REPORTED_CREDIT_MISMATCH",
            rep,
            pd.Series(
                [
                    f"Cliniko reports {format_dollars(r)} of unapplied credit but the exports add up to {format_dollars(f)}: "
                    "check for payments, refunds or allocations missing from the exports."
                    for r, f in _rows(rep["reported_credit"], rep["final_credit"])
                ],
                index=rep.index,
                dtype=object,
            ),
            subject_type="patient",
            subject_id="patient_id",
            amount=pd.Series(np.abs(rep["difference"].to_numpy(dtype=np.int64)), index=rep.index),
        )
    )
    bad_status = invs.loc[invs["status_mismatch"]]
    parts.append(
        _make(
            "INVOICE_STATUS_MISMATCH",
            bad_status,
            pd.Series(
                [
                    f"The export says invoice {n if n is not None else i} is {s} but {format_dollars(o)} is still owing on it"
                    if o > 0
                    else f"The export says invoice {n if n is not None else i} is open but it is fully paid"
                    for i, n, s, o in _rows(
                        bad_status["invoice_id"],
                        bad_status["number"],
                        bad_status["status_reported"],
                        bad_status["final_outstanding"],
                    )
                ],
                index=bad_status.index,
                dtype=object,
            ).map(lambda m: m + ": check its payments and allocations in Cliniko."),
            subject_type="invoice",
            subject_id="invoice_id",
            amount=bad_status["final_outstanding"].abs(),
        )
    )
    over = invs.loc[(invs["total"] > 0) & (invs["explicit_allocated"] > invs["total"])]
    allocation_places = _allocation_places(allocations, over["invoice_id"])
    parts.append(
        _make(
            "OVER_ALLOCATED_INVOICE",
            over,
            pd.Series(
                [
                    f"Allocations to invoice {i if pd.isna(n) else n} ({f} row {r}) add up to "
                    f"{format_dollars(a)}, more than its total {format_dollars(t)}"
                    f"{_allocated_in(allocation_places, i)}: correct the allocations so the "
                    "excess goes back to credit."
                    for i, n, a, t, f, r in _rows(
                        over["invoice_id"],
                        over["number"],
                        over["explicit_allocated"],
                        over["total"],
                        over["source_file"],
                        over["source_row"],
                    )
                ],
                index=over.index,
                dtype=object,
            ),
            subject_type="invoice",
            subject_id="invoice_id",
            amount=over["explicit_allocated"] - over["total"],
        )
    )
    return parts


# ----------------------------------------------------------------------------- Cliniko's own figures


def _records_credit(inv: pd.DataFrame) -> bool:
    """Whether the invoices export carries Cliniko's Credit Applied figure (any value)."""
    return "credit_applied" in inv.columns and bool(inv["credit_applied"].notna().any())


def _recorded_credit(inv: pd.DataFrame) -> pd.DataFrame | None:
    """Cliniko's `credit_applied` as credit allocations, for a folder with no allocations export.

    Each is what Cliniko paid from the patient's account credit (as a $0 payment does), dated by
    the invoice's `closed_at` when it has one, else its issue date (never before the issue date:
    `_resolve_allocations` floors it). Payments then pay the rest by the allocation policy.
    """
    amount = inv["credit_applied"].fillna(0).to_numpy(dtype=np.int64)
    rows = np.flatnonzero(amount > 0)
    if not len(rows):
        return None
    closed = _ns(inv, "closed_at")[rows]
    issued = _ns(inv, "issue_date")[rows]
    return pd.DataFrame(
        {
            "invoice_id": _raw(inv, "invoice_id")[rows],
            "payment_id": np.full(len(rows), None, dtype=object),
            "source": "credit",
            "amount": amount[rows],
            "allocated_at": np.where(np.isnat(closed), issued, closed),
            "source_file": _raw(inv, "source_file")[rows],
            "source_row": _raw(inv, "source_row")[rows],
        }
    )


_REPORTED = ("outstanding_reported", "paid_reported", "credit_applied")


def _reported_figures(
    inv: pd.DataFrame, final_direct: np.ndarray, final_credit: np.ndarray
) -> dict[str, Any]:
    """The invoice columns holding the recomputed final payments beside Cliniko's own figures."""
    n = len(inv)
    reported = {
        col: pd.array(inv[col], dtype="Int64") if n and col in inv.columns
        else pd.array([pd.NA] * n, dtype="Int64")
        for col in _REPORTED
    }
    return {"final_paid_direct": final_direct, "final_paid_from_credit": final_credit, **reported}


def _balance_findings(invs: pd.DataFrame, *, check_credit: bool) -> pd.DataFrame | None:
    """INVOICE_BALANCE_MISMATCH: an invoice whose final recomputed outstanding, paid by payments
    or (with exported allocations) paid from credit differs from what Cliniko's export says.

    Like the status, Cliniko's figures describe the day of the export, so they are compared with
    the state after every exported event. Credit notes and $0 invoices are not compared.
    """
    checks = [
        ("outstanding", "outstanding_reported", "final_outstanding"),
        ("paid by payments", "paid_reported", "final_paid_direct"),
    ]
    if check_credit:
        checks.append(("paid from credit", "credit_applied", "final_paid_from_credit"))
    positive = invs["total"].to_numpy(dtype=np.int64) > 0
    differs = []
    for _, reported, recomputed in checks:
        given = invs[reported]
        differs.append(
            (given.notna() & (given.fillna(0) != invs[recomputed])).to_numpy(dtype=bool) & positive
        )
    wrong = invs.loc[np.logical_or.reduce(differs)]
    if wrong.empty:
        return None
    # Per check: "label $reported in Cliniko, $recomputed recomputed", or None where they agree.
    parts = [
        [
            f"{label} {format_dollars(int(given))} in Cliniko, {format_dollars(mine)} recomputed"
            if pd.notna(given) and int(given) != mine else None
            for given, mine in _rows(wrong[reported], wrong[recomputed])
        ]
        for label, reported, recomputed in checks
    ]
    gaps = [
        [abs(int(given) - mine) if pd.notna(given) else 0
         for given, mine in _rows(wrong[reported], wrong[recomputed])]
        for _, reported, recomputed in checks
    ]
    names = [n if n is not None else i for i, n in _rows(wrong["invoice_id"], wrong["number"])]
    messages = [
        f"Invoice {name} does not add up to Cliniko's own figures "
        f"({'; '.join(p for p in found if p)}): "
        "check for payments, credit or allocations missing from the exports."
        for name, found in zip(names, zip(*parts))
    ]
    # The amount: the first figure that differs (outstanding, then payments, then credit).
    amounts = [next((g for g in gap if g), 0) for gap in zip(*gaps)]
    return _make(
        "INVOICE_BALANCE_MISMATCH",
        wrong,
        pd.Series(messages, index=wrong.index, dtype=object),
        subject_type="invoice",
        subject_id="invoice_id",
        amount=pd.Series(amounts, index=wrong.index, dtype="Int64"),
    )


def _isin(values: np.ndarray, members: set[Any]) -> np.ndarray:
    """Membership of each value in a set of ids, as a bool array.

    A Python set compares stored hashes before the strings; pandas' `isin` compares the strings
    on every probe, four times slower for a million ids against a hundred thousand.
    """
    return np.fromiter(map(members.__contains__, values.tolist()), dtype=bool, count=len(values))


def _package_session_findings(
    invs: pd.DataFrame,
    inv: pd.DataFrame,
    issued: np.ndarray,
    appointments: pd.DataFrame | None,
    cases: pd.DataFrame | None,
    links: InvoiceLinks,
) -> pd.DataFrame | None:
    """PACKAGE_SESSION_CHARGED: a session of a paid-in-full package case was itself invoiced.

    `invs` is the invoice snapshot: the rows of the live invoices `inv` where `issued`, in order.
    """
    if (
        appointments is None
        or cases is None
        or invs.empty
        or "case_id" not in inv.columns
        or "appointment_id" not in inv.columns
        or "case_id" not in appointments.columns
    ):
        return None
    # Columns taken by position (`invs` is `inv[issued]`): no merge on a million id strings.
    inv_case = inv["case_id"].to_numpy(dtype=object)[issued]
    inv_appt = links.appointment_ids(
        inv["invoice_id"].to_numpy(dtype=object)[issued],
        inv["appointment_id"].to_numpy(dtype=object)[issued],
    )
    total = invs["total"].to_numpy(dtype=np.int64)
    paid_up = (total > 0) & (invs["outstanding"].to_numpy(dtype=np.int64) == 0)
    pkg_rows = np.flatnonzero(pd.notna(inv_case) & pd.isna(inv_appt) & paid_up)
    paid_cases = set(inv_case[pkg_rows].tolist()) & set(cases["case_id"])
    if not paid_cases:
        return None
    live = np.isnat(_ns(appointments, "deleted_at")) & np.isnat(_ns(appointments, "archived_at"))
    keep = live & _isin(appointments["case_id"].to_numpy(dtype=object), paid_cases)
    appts = pd.DataFrame(
        {
            "appointment_id": appointments["appointment_id"].to_numpy(dtype=object)[keep],
            "patient_id": appointments["patient_id"].to_numpy(dtype=object)[keep],
            "case_id": appointments["case_id"].to_numpy(dtype=object)[keep],
        }
    )
    rows = np.flatnonzero(pd.notna(inv_appt) & (total > 0))
    rows = rows[_isin(inv_appt[rows], set(appts["appointment_id"].tolist()))]
    if not len(rows):
        return None
    sessions = invs.iloc[rows].reset_index(drop=True)
    sessions["appointment_id"] = inv_appt[rows]
    # A group appointment has a row per attendee: the invoice is the session of its own patient.
    hit = sessions.merge(appts, on=["appointment_id", "patient_id"], how="inner")
    if hit.empty:
        return None
    pkg = invs.iloc[pkg_rows].reset_index(drop=True)
    pkg["case_id"] = inv_case[pkg_rows]
    pkg_no = pkg.drop_duplicates("case_id").set_index("case_id")
    return _make(
        "PACKAGE_SESSION_CHARGED",
        hit,
        pd.Series(
            [
                f"Invoice {n if n is not None else i} charges {format_dollars(t)} for an appointment on case {c}, "
                f"whose package invoice {pkg_no.loc[c, 'number'] if pkg_no.loc[c, 'number'] is not None else pkg_no.loc[c, 'invoice_id']} "
                "is already paid in full: likely a double charge; credit or void the session invoice."
                for i, n, t, c in _rows(
                    hit["invoice_id"], hit["number"], hit["total"], hit["case_id"]
                )
            ],
            index=hit.index,
            dtype=object,
        ),
        subject_type="invoice",
        subject_id="invoice_id",
        amount=hit["total"],
        appointment_ids=hit["appointment_id"].astype(object),
    )
