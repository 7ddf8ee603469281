"""Credit liability for accountants: ageing at a date, roll-forward over a period, package value."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import end_of_day, group_cumsum, live_mask

TOTAL = "TOTAL"


def _ledger_of(result_or_ledger: Any) -> pd.DataFrame:
    ledger = getattr(result_or_ledger, "ledger", result_or_ledger)
    if not isinstance(ledger, pd.DataFrame):
        raise TypeError("expected a CreditResult or its ledger frame")
    return ledger


def bucket_labels(buckets: tuple[int, ...]) -> list[str]:
    """Column labels from bucket edges: (30, 60) -> '0-30', '31-60', 'over 60'."""
    if not buckets or any(b <= 0 for b in buckets) or list(buckets) != sorted(set(buckets)):
        raise ValueError("ageing buckets must be increasing positive day counts, e.g. 30,60,90")
    labels = [f"0-{buckets[0]}"]
    labels += [f"{lo + 1}-{hi}" for lo, hi in itertools.pairwise(buckets)]
    labels.append(f"over {buckets[-1]}")
    return labels


def _codes(patient_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group codes for rows already sorted by patient id, and the ids in that order."""
    if not len(patient_id):
        return np.zeros(0, np.int64), np.zeros(0, object)
    change = np.r_[True, patient_id[1:] != patient_id[:-1]]
    return np.cumsum(change) - 1, patient_id[change]


def _sorted_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    pid = ledger["patient_id"].to_numpy(dtype=object)
    at = ledger["at"].to_numpy(dtype="datetime64[ns]")
    if len(pid) > 1:
        ordered = (pid[1:] > pid[:-1]) | ((pid[1:] == pid[:-1]) & (at[1:] >= at[:-1]))
        if not ordered.all():
            return ledger.sort_values(["patient_id", "at"], kind="stable").reset_index(drop=True)
    return ledger


def age_credit(
    result_or_ledger: Any,
    as_of: date,
    buckets: tuple[int, ...] = (30, 60, 90, 180, 365),
) -> pd.DataFrame:
    """Credit per patient at the end of `as_of`, aged by the date each unspent amount arrived.

    Spending uses the oldest credit first, so what remains is the newest: per patient, lots
    (``created`` rows) and uses (``applied``/``refunded``) are two cumulative streams in date
    order, and the unspent lot units are those past the total used. A lot's age is whole days
    from its date to `as_of`: age <= 30 is "0-30", 31 is "31-60". A negative balance (more used
    than created: inconsistent data) is aged by the date of the first use that was not covered.
    Bucket columns sum exactly to ``credit``. Patients with a zero balance are left out.
    """
    labels = bucket_labels(buckets)
    ledger = _sorted_ledger(_ledger_of(result_or_ledger))
    at = ledger["at"].to_numpy(dtype="datetime64[ns]")
    keep = at < end_of_day(as_of)
    pid = ledger["patient_id"].to_numpy(dtype=object)[keep]
    at = at[keep]
    kind = ledger["kind"].to_numpy(dtype=object)[keep]
    amount = ledger["amount"].to_numpy(dtype=np.int64)[keep]
    code, ids = _codes(pid)
    n = len(ids)
    lot = kind == "created"
    lots_total = np.zeros(n, np.int64)
    uses_total = np.zeros(n, np.int64)
    np.add.at(lots_total, code[lot], amount[lot])
    np.add.at(uses_total, code[~lot], amount[~lot])
    credit = lots_total - uses_total
    table = np.zeros((n, len(labels)), np.int64)
    age_day = np.datetime64(as_of, "D")

    def bucket(days: np.ndarray) -> np.ndarray:
        # Right-closed edges: exactly 30 days old is still in "0-30".
        return np.searchsorted(np.asarray(buckets), days, side="left")

    # Remaining part of each lot: its span [before, after) in the patient's lot stream past uses.
    l_code, l_amt, l_at = code[lot], amount[lot], at[lot]
    if len(l_code):
        after = group_cumsum(l_code, l_amt)
        before = after - l_amt
        used = uses_total[l_code]
        remaining = np.clip(after - np.maximum(before, used), 0, None)
        age = (age_day - l_at.astype("datetime64[D]")).astype(np.int64)
        np.add.at(table, (l_code, bucket(age)), remaining)
    short = np.flatnonzero(credit < 0)
    if len(short):
        u_code, u_amt, u_at = code[~lot], amount[~lot], at[~lot]
        after = group_cumsum(u_code, u_amt)
        # The first use whose cumulative total passes the patient's lots is the first uncovered one.
        first = after > lots_total[u_code]
        first_idx = pd.Series(np.flatnonzero(first)).groupby(u_code[first]).min()
        age = (age_day - u_at[first_idx.to_numpy()].astype("datetime64[D]")).astype(np.int64)
        table[first_idx.index.to_numpy(), bucket(age)] += credit[first_idx.index.to_numpy()]
    out = pd.DataFrame(table, columns=labels)
    out.insert(0, "credit", credit)
    out.insert(0, "patient_id", ids)
    out = out.loc[out["credit"] != 0].reset_index(drop=True)
    _check_buckets_add_up(out, labels)
    return out


def _check_buckets_add_up(ageing: pd.DataFrame, labels: list[str]) -> None:
    """Every patient's buckets must add up to their credit; a breach is a bug, never a figure.

    A real check, not an `assert`: `python -O` strips asserts, and a wrong ageing must not pass.
    """
    if not (ageing[labels].sum(axis=1) == ageing["credit"]).all():
        raise RuntimeError("ageing buckets do not add up to the patients' credit")


@dataclass(frozen=True)
class Liability:
    """The credit liability at a date: the one definition every figure uses.

    ``total`` is the signed sum of every patient's balance, so it equals the roll-forward's
    closing total and the ageing total. A negative balance (NEGATIVE_CREDIT: more applied or
    refunded than received) is counted as what it is, a negative amount, and reduces the total;
    ``owed`` (the positive balances) and ``negative`` (the negative ones) say how it is made up.
    """

    total: int
    owed: int
    negative: int
    patients_owed: int
    patients_negative: int


def credit_liability(balances: pd.Series) -> Liability:
    """`Liability` from per-patient balances in cents, summed without wrapping."""
    values = [int(v) for v in balances.to_numpy(dtype=np.int64)]
    owed = sum(v for v in values if v > 0)
    negative = sum(v for v in values if v < 0)
    return Liability(
        owed + negative,
        owed,
        negative,
        sum(1 for v in values if v > 0),
        sum(1 for v in values if v < 0),
    )


def roll_forward(ledger_or_result: Any, start: date, end: date) -> pd.DataFrame:
    """Opening credit + created - applied - refunded = closing, per patient over [start, end].

    Opening is the balance at the end of the day before `start`; movements count from the
    start of `start` to the end of `end`. Patients with nothing to show are left out; a final
    row "TOTAL" adds every column. The identity is checked on every row: a failure is a bug.
    """
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    # compute_credit's ledger is already sorted by patient: grouping is then a linear scan.
    ledger = _sorted_ledger(_ledger_of(ledger_or_result))
    at = ledger["at"].to_numpy(dtype="datetime64[ns]")
    amount = ledger["amount"].to_numpy(dtype=np.int64)
    kind = ledger["kind"].to_numpy(dtype=object)
    code_all, ids = _codes(ledger["patient_id"].to_numpy(dtype=object))
    n = len(ids)
    open_at = np.datetime64(start, "ns")
    close_at = end_of_day(end)
    signed = np.where(kind == "created", amount, -amount)
    before = at < open_at
    during = (~before) & (at < close_at)

    def total(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.zeros(n, np.int64)
        np.add.at(out, code_all[mask], values[mask])
        return out

    frame = pd.DataFrame(
        {
            "patient_id": np.asarray(ids, dtype=object),
            "opening": total(before, signed),
            "created": total(during & (kind == "created"), amount),
            "applied": total(during & (kind == "applied"), amount),
            "refunded": total(during & (kind == "refunded"), amount),
        }
    )
    frame["closing"] = total(before | during, signed)
    money = ["opening", "created", "applied", "refunded", "closing"]
    frame = frame.loc[(frame[money] != 0).any(axis=1)].reset_index(drop=True)
    totals = pd.DataFrame({"patient_id": [TOTAL], **{c: [int(frame[c].sum())] for c in money}})
    frame = pd.concat([frame, totals], ignore_index=True)
    for c in money:
        frame[c] = frame[c].astype(np.int64)
    identity = (
        frame["opening"] + frame["created"] - frame["applied"] - frame["refunded"]
        == frame["closing"]
    )
    if not identity.all():
        raise AssertionError(
            f"roll-forward does not balance for {list(frame.loc[~identity, 'patient_id'])}"
        )
    return frame


def roll_forward_by_month(ledger_or_result: Any, first_month: date, as_of: date) -> pd.DataFrame:
    """The TOTAL row of `roll_forward` for each calendar month from `first_month` to `as_of`.

    Columns month ("YYYY-MM"), opening, created, applied, refunded, closing; the last month
    ends at `as_of`. One pass over the ledger: movements are summed per month and kind, and
    each month opens with the previous month's closing, so the months chain exactly.
    """
    columns = ["month", "opening", "created", "applied", "refunded", "closing"]
    first = np.datetime64(first_month.replace(day=1), "M")
    last = np.datetime64(as_of, "M")
    n = int((last - first).astype(np.int64)) + 1
    if n <= 0:
        return pd.DataFrame(
            {c: pd.Series([], dtype=object if c == "month" else np.int64) for c in columns}
        )
    ledger = _ledger_of(ledger_or_result)
    at = ledger["at"].to_numpy(dtype="datetime64[ns]")
    amount = ledger["amount"].to_numpy(dtype=np.int64)
    kind = ledger["kind"].to_numpy(dtype=object)
    keep = at < end_of_day(as_of)  # NaT never counts, as in roll_forward
    month = (at.astype("datetime64[M]") - first).astype(np.int64)
    signed = np.where(kind == "created", amount, -amount)
    opening = int(signed[keep & (month < 0)].sum())
    inside = keep & (month >= 0)

    def per_month(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, np.int64)
        np.add.at(out, month[mask], amount[mask])
        return out

    created = per_month(inside & (kind == "created"))
    applied = per_month(inside & (kind == "applied"))
    refunded = per_month(inside & (kind == "refunded"))
    net = np.zeros(n, np.int64)
    np.add.at(net, month[inside], signed[inside])
    closing = opening + np.cumsum(net)
    return pd.DataFrame(
        {
            "month": [str(first + k) for k in range(n)],
            "opening": closing - net,
            "created": created,
            "applied": applied,
            "refunded": refunded,
            "closing": closing,
        },
        columns=columns,
    )


def _package_invoices(
    invoices: pd.DataFrame | None, session_invoices: frozenset[str] = frozenset()
) -> pd.DataFrame | None:
    """Live invoices of a whole package (a case, no appointment, non-zero), whenever issued;
    `session_invoices` (tied to an appointment by number) are sessions, not packages."""
    if invoices is None or not len(invoices) or "case_id" not in invoices.columns:
        return None
    # Row masks first, then the three columns the package figures read: no copies of the frame.
    keep = live_mask(invoices) & invoices["case_id"].notna().to_numpy(dtype=bool)
    keep &= invoices["total"].to_numpy() != 0
    if "appointment_id" in invoices.columns:
        keep &= invoices["appointment_id"].isna().to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    if session_invoices:
        ids = invoices["invoice_id"].to_numpy(dtype=object)[rows]
        rows = rows[~pd.Series(ids, dtype=object).isin(session_invoices).to_numpy(dtype=bool)]
    columns = [c for c in ("case_id", "total", "issue_date") if c in invoices.columns]
    return invoices[columns].iloc[rows]


def _issued_by(package_invoices: pd.DataFrame | None, as_of: date) -> pd.DataFrame | None:
    """The package invoices issued by the end of `as_of` (or with no issue date)."""
    if package_invoices is None or "issue_date" not in package_invoices.columns:
        return package_invoices
    issued = package_invoices["issue_date"].to_numpy(dtype="datetime64[ns]")
    return package_invoices.loc[np.isnat(issued) | (issued < end_of_day(as_of))]


def package_value(
    cases: pd.DataFrame,
    invoices: pd.DataFrame | None,
    delivered: pd.DataFrame | pd.Series | None,
    as_of: date | None = None,
    *,
    session_invoices: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Value of package sessions paid for but not yet delivered (method B), per case, at `as_of`.

    Only packages bought by the end of `as_of` are valued: a case's ``issue_date``, else the date
    of its package invoice. Price: the case's ``package_price``, else the sum of the live invoices
    naming the case (``case_id`` set, no ``appointment_id``, non-zero total, credit notes
    included) issued by `as_of`. ``used`` is the sessions delivered by `as_of` (the case
    engine's ``attended``). ``undelivered = price * unused / max_sessions`` rounded half-up to the
    cent in integer arithmetic; NA when the price or the maximum is unknown.
    ``session_invoices``: invoices tied to an appointment by invoice number (`engine.links`),
    which are sessions even when their own appointment id is blank.
    """
    package_invoices = _package_invoices(invoices, session_invoices)
    if as_of is not None:
        # Bought by its first package invoice, whenever issued; priced by those issued by as_of.
        cases = cases.loc[_bought_by(cases, package_invoices, as_of)].reset_index(drop=True)
        package_invoices = _issued_by(package_invoices, as_of)
    n = len(cases)
    price = pd.array(
        cases["package_price"] if "package_price" in cases.columns else [pd.NA] * n, dtype="Int64"
    )
    source = np.full(n, None, dtype=object)
    source[~np.asarray(price.isna(), dtype=bool)] = "cases"
    if package_invoices is not None:
        by_case = package_invoices.groupby("case_id")["total"].sum()
        from_inv = pd.array(cases["case_id"].map(by_case), dtype="Int64")
        fill = price.isna() & ~from_inv.isna()
        price[fill] = from_inv[fill]
        source[np.asarray(fill, dtype=bool)] = "invoice"
    used = _sessions_used(cases, delivered)
    max_sessions = pd.array(
        cases["max_sessions"] if "max_sessions" in cases.columns else [pd.NA] * n, dtype="Int64"
    )
    unused = pd.array(np.maximum(max_sessions - used, 0), dtype="Int64")
    # Half-up to the cent without floats: floor((2 * price * unused + max) / (2 * max)).
    num = 2 * price * unused + max_sessions
    den = 2 * max_sessions
    undelivered = num // den
    undelivered[(max_sessions.isna()) | (price.isna())] = pd.NA
    return pd.DataFrame(
        {
            "case_id": cases["case_id"].to_numpy(dtype=object),
            "patient_id": cases["patient_id"].to_numpy(dtype=object),
            "package_price": price,
            "price_source": source,
            "max_sessions": max_sessions,
            "used": used,
            "unused": unused,
            "undelivered": pd.array(undelivered, dtype="Int64"),
        }
    )


def _bought_by(
    cases: pd.DataFrame, every_package_invoice: pd.DataFrame | None, as_of: date
) -> np.ndarray:
    """True for each case bought by the end of `as_of`: its issue date, else its first package
    invoice's date; a case with neither date is taken as bought (nothing says otherwise)."""
    cutoff = end_of_day(as_of)
    n = len(cases)
    bought_on = (
        cases["issue_date"].to_numpy(dtype="datetime64[ns]")
        if "issue_date" in cases
        else np.full(n, np.datetime64("NaT"), "datetime64[ns]")
    )
    if every_package_invoice is not None and "issue_date" in every_package_invoice:
        first = every_package_invoice.groupby("case_id")["issue_date"].min()
        # reindex, not map: pandas' map fails on an empty datetime Series (no package invoices).
        invoiced_on = first.reindex(cases["case_id"]).to_numpy(dtype="datetime64[ns]")
        bought_on = np.where(np.isnat(bought_on), invoiced_on, bought_on)
    return np.isnat(bought_on) | (bought_on < cutoff)


def _sessions_used(cases: pd.DataFrame, delivered: pd.DataFrame | pd.Series | None) -> np.ndarray:
    """Sessions used per case from a (case_id, count) frame or a Series by case_id; 0 if absent."""
    if delivered is None:
        return np.zeros(len(cases), np.int64)
    series = (
        delivered.set_index("case_id").iloc[:, 0]
        if isinstance(delivered, pd.DataFrame)
        else delivered
    )
    return cases["case_id"].map(series).fillna(0).to_numpy(dtype=np.int64)
