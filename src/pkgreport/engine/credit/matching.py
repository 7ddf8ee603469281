"""Stage 4: matching supply to demand per allocation policy (oldest-first, newest-first, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import group_cumsum, run_start_mask, run_starts, sum_by
from pkgreport.engine.credit.events import EventQueue, EventType
from pkgreport.engine.registry import ALLOCATION_POLICIES

# A matcher pairs each patient's supply and demand streams (events sorted by patient) into
# segments (demand event, supply event, amount).
Matcher = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Matches:
    """What the automatic allocation paid on invoices: one row per piece of supply meeting an
    invoice's demand, and what each queue event paid directly (by event)."""

    invoice: np.ndarray  # row among the live invoices
    at: np.ndarray  # when it was paid: the later of the two events
    amount: np.ndarray
    direct: np.ndarray  # paid by a payment on arrival (False: paid from credit)
    direct_per_event: np.ndarray


def match_events(queue: EventQueue, policy: str, *, sweep: bool, own_money: bool) -> Matches:
    """Stage 4: match the queue per `policy`; `sweep`: credit meets invoices only on payments
    (on-payment); `own_money`: a sweep pays with the payment's own money alone."""
    match = _MATCHERS[ALLOCATION_POLICIES[policy].open_demand]
    types = queue.types
    if sweep:
        demand_event, supply_event, amount, direct = _sweep_segments(
            queue.patient, types, queue.supply, queue.demand, match, own_money=own_money
        )
    else:
        demand_event, supply_event, amount = match(queue.patient, queue.supply, queue.demand)
        # Only supply meeting an invoice's auto-payable demand pays it.
        direct = (
            (types[demand_event] == EventType.INVOICE)
            & (types[supply_event] == EventType.PAYMENT)
            & (demand_event < supply_event)
        )
    on_invoice = types[demand_event] == EventType.INVOICE
    at = np.where(
        demand_event > supply_event, queue.at[demand_event], queue.at[supply_event]
    )  # the later event settles it
    direct_per_event = sum_by(supply_event[direct], amount[direct], len(types))
    return Matches(
        invoice=queue.record[demand_event[on_invoice]],
        at=at[on_invoice],
        amount=amount[on_invoice],
        direct=direct[on_invoice],
        direct_per_event=direct_per_event,
    )


def match_fifo(
    pat: np.ndarray, sup: np.ndarray, dem: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FIFO-match the supply and demand streams of each patient (events sorted by patient).

    Returns segments (demand event, supply event, amount): supply unit x of a patient meets its
    demand unit x. Patients are laid on one number line at disjoint offsets so a single global
    searchsorted finds, for each segment start, the supply and the demand event holding it.
    Only the events that move money get arrays of their own: the rest cost one pass each.
    """
    n = len(pat)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n == 0:
        return empty
    starts = run_starts(pat)
    s_tot = np.add.reduceat(sup, starts)
    d_tot = np.add.reduceat(dem, starts)
    matched = np.minimum(s_tot, d_tot)
    # A gap of one cent between patients keeps one patient's end apart from the next one's start.
    span = np.maximum(s_tot, d_tot) + 1
    base = np.concatenate(([0], np.cumsum(span)[:-1]))
    s_ev, s_end, s_cut = _stream_ends(sup, starts, base, matched)
    d_ev, d_end, d_cut = _stream_ends(dem, starts, base, matched)
    has = matched > 0
    ends = base[has] + matched[has]
    marks = np.sort(np.concatenate((s_cut, d_cut, ends)), kind="stable")  # three sorted runs
    del s_cut, d_cut
    if len(marks) < 2:
        return empty
    marks = marks[run_start_mask(marks)]
    left = marks[:-1]
    length = np.diff(marks)
    # `ends` is increasing (one per patient, at disjoint offsets): membership by searchsorted.
    at_end = np.minimum(np.searchsorted(ends, left), len(ends) - 1)
    valid = ends[at_end] != left
    left, length = left[valid], length[valid]
    si = s_ev[np.searchsorted(s_end, left, side="right")]
    di = d_ev[np.searchsorted(d_end, left, side="right")]
    return (
        di.astype(np.int64, copy=False),
        si.astype(np.int64, copy=False),
        length.astype(np.int64, copy=False),
    )


def _stream_ends(
    amounts: np.ndarray, starts: np.ndarray, base: np.ndarray, matched: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stream (supply or demand) on the number line: its events with money, where each
    ends, and where each that begins within its patient's matched amount begins."""
    cum = np.cumsum(amounts)
    before = np.concatenate(([0], cum[starts[1:] - 1]))  # each patient's stream before it
    events = np.flatnonzero(amounts > 0)
    patient = np.searchsorted(starts, events, side="right") - 1
    local_end = cum[events] - before[patient]
    del cum  # as long as the stream: let go before the per-event arrays are made
    local_begin = local_end - amounts[events]
    begins_inside = local_begin < matched[patient]
    offset = base[patient]
    end = local_end  # made above, so moved onto the line in place
    end += offset
    local_begin += offset
    return events, end, local_begin[begins_inside]


def match_lifo(
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
    for p, s, d, e in zip(
        pat[idx].tolist(), sup[idx].tolist(), dem[idx].tolist(), idx.tolist(), strict=True
    ):
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


# How open demand waits for money: a queue (oldest first) or a stack (newest first).
_MATCHERS: dict[str, Matcher] = {"queue": match_fifo, "stack": match_lifo}


def _sweep_segments(
    pat: np.ndarray,
    etype: np.ndarray,
    sup: np.ndarray,
    dem: np.ndarray,
    match: Matcher,
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
    is_inv = etype == EventType.INVOICE
    is_sweep = etype == EventType.PAYMENT
    inv_dem = np.where(is_inv, dem, 0)
    d = group_cumsum(pat, inv_dem)
    # Event-long arrays are let go as soon as read: this stage holds the engines' peak memory.
    if own_money:
        settled = _settled_by_own_money(pat, is_sweep, sup, d)
    else:
        y = group_cumsum(pat, sup - np.where(is_inv, 0, dem))
        settled = _settled_by_sweeps(pat, np.where(is_sweep, np.maximum(np.minimum(d, y), 0), 0))
        del y
    del d, is_inv
    gain = np.diff(settled, prepend=0)  # what each event adds to what its patient had settled
    first = run_starts(pat)
    gain[first] = settled[first]
    del settled, first
    direct = np.where(is_sweep, np.minimum(sup, gain), 0)
    del is_sweep
    # Two slots per event, the payment's own money first (or the invoice's demand), then
    # credit; only the slots that move money are matched (the matchers skip the others anyway).
    own_slot = (direct > 0) | (inv_dem > 0)
    credit_slot = gain > direct
    slot = np.flatnonzero(np.column_stack((own_slot, credit_slot)).ravel())
    del own_slot, credit_slot
    event, is_own = slot // 2, slot % 2 == 0
    del slot
    slot_supply = np.where(is_own, direct[event], gain[event] - direct[event])
    slot_demand = np.where(is_own, inv_dem[event], 0)
    del gain, direct, inv_dem
    sd, ss, sa = match(pat[event], slot_supply, slot_demand)
    return event[sd], event[ss], sa, is_own[ss]


def _settled_by_sweeps(pat: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Per-patient running maximum of what each sweep could settle (`_sweep_segments`)."""
    big = int(reach.max()) + 1
    if (int(pat.max()) + 1) * big < 2**62:
        # Per-patient running maximum in one pass: lift each patient above all earlier ones.
        lift = pat.astype(np.int64) * big
        return np.maximum.accumulate(reach + lift) - lift
    return pd.Series(reach).groupby(pat, sort=False).cummax().to_numpy(np.int64)


def _settled_by_own_money(
    pat: np.ndarray, is_sweep: np.ndarray, supply: np.ndarray, demand: np.ndarray
) -> np.ndarray:
    """Settled invoice demand when each payment pays open invoices with its own money only.

    The sweep at event k settles M_k = min(D_k, M_prev + s_k) (s the payment's own money, D the
    cumulative demand). With S the cumulative own money this unrolls to
    M_k = S_k + min(0, min over sweeps j <= k of (D_j - S_j)): a running minimum per patient.
    """
    paid_in = group_cumsum(pat, np.where(is_sweep, supply, 0))  # a payment's own money
    slack = demand - paid_in
    # Events that are not payments leave the running minimum alone (they settle nothing): they
    # stand above every payment's slack and above 0, which the minimum with 0 then cancels.
    slack[~is_sweep] = max(int(slack.max()), 0) + 1
    lowest = _running_min(pat, slack)
    del slack
    np.minimum(lowest, 0, out=lowest)
    lowest += paid_in
    return lowest


def _running_min(pat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-patient running minimum of `values` (events sorted by patient)."""
    low = int(values.min())
    big = int(values.max()) - low + 1
    if (int(pat.max()) + 1) * big >= 2**62:
        return pd.Series(values).groupby(pat, sort=False).cummin().to_numpy(np.int64)
    # In one pass, without pandas' groupby copies: sink each patient below all earlier ones.
    sink = pat.astype(np.int64, copy=False) * big
    out = values - low
    out -= sink
    np.minimum.accumulate(out, out=out)
    out += sink
    out += low
    return out
