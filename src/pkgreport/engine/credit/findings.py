"""Stage 7: the credit findings as of a date, one function per finding code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import as_column, live_mask
from pkgreport.engine.credit.columns import days_of
from pkgreport.engine.credit.ledger import Ledger
from pkgreport.engine.credit.records import LiveRecords
from pkgreport.engine.findings import make_findings
from pkgreport.engine.links import InvoiceLinks
from pkgreport.ids import RunIds
from pkgreport.money import format_dollars


def _make(code: str, subjects: pd.DataFrame, message: Any, **kw: Any) -> pd.DataFrame | None:
    """make_findings, skipped when there is nothing to report (an empty findings frame is not free)."""
    if subjects.empty:
        return None
    return make_findings(code, subjects, message, **kw)


def _rows(*columns: Any) -> Any:
    """zip over columns as plain lists (iterating pandas objects element-wise is slow)."""
    return zip(*(c.tolist() if hasattr(c, "tolist") else list(c) for c in columns), strict=True)


def _messages(texts: Any, subjects: pd.DataFrame) -> pd.Series:
    return pd.Series(list(texts), index=subjects.index, dtype=object)


def _patient_finding(
    code: str, subjects: pd.DataFrame, texts: Any, amount: Any
) -> pd.DataFrame | None:
    return _make(
        code,
        subjects,
        _messages(texts, subjects),
        subject_type="patient",
        subject_id="patient_id",
        amount=amount,
    )


def unapplied_credit(patients: pd.DataFrame, as_of: date) -> pd.DataFrame | None:
    """UNAPPLIED_CREDIT: a patient with credit on `as_of`."""
    on = as_of.isoformat()
    has_credit = patients.loc[patients["credit"] > 0]
    texts = (
        f"{format_dollars(c)} of account credit is unapplied on {on}: apply it to the patient's next "
        "invoice or refund it."
        for c in has_credit["credit"].tolist()
    )
    return _patient_finding("UNAPPLIED_CREDIT", has_credit, texts, has_credit["credit"])


def credit_with_open_invoices(patients: pd.DataFrame, system: str) -> pd.DataFrame | None:
    """CREDIT_WITH_OPEN_INVOICES: credit beside open invoices; the amount is what could be applied."""
    both = patients.loc[(patients["credit"] > 0) & (patients["open_outstanding"] > 0)]
    usable = np.minimum(both["credit"], both["open_outstanding"])
    texts = (
        f"The patient has {format_dollars(c)} of credit and {format_dollars(o)} owing on open invoices: "
        f"apply {format_dollars(u)} of the credit to those invoices in {system}."
        for c, o, u in _rows(both["credit"], both["open_outstanding"], usable)
    )
    return _patient_finding("CREDIT_WITH_OPEN_INVOICES", both, texts, usable)


def dormant_credit(patients: pd.DataFrame, as_of: date, dormant_days: int) -> pd.DataFrame | None:
    """DORMANT_CREDIT: credit with no movement for at least `dormant_days` whole days."""
    as_of_ns = np.datetime64(as_of, "D").astype("datetime64[ns]")
    last_day = (
        patients["last_movement"]
        .to_numpy(dtype="datetime64[ns]")
        .astype("datetime64[D]")
        .astype("datetime64[ns]")
    )
    moved = ~np.isnat(last_day)
    idle = np.full(len(last_day), -1, np.int64)
    idle[moved] = (as_of_ns - last_day[moved]) // np.timedelta64(1, "D")
    has_credit = patients["credit"].to_numpy() > 0
    dormant = patients.loc[has_credit & moved & (idle >= dormant_days)]
    idle_days = pd.Series(idle, index=patients.index).loc[dormant.index]
    texts = (
        f"{format_dollars(c)} of credit has not moved for {d} days (since {str(t)[:10]}): "
        "contact the patient to use or refund it."
        for c, d, t in _rows(dormant["credit"], idle_days, dormant["last_movement"])
    )
    return _patient_finding("DORMANT_CREDIT", dormant, texts, dormant["credit"])


def negative_credit(patients: pd.DataFrame, ledger: Ledger, system: str) -> pd.DataFrame | None:
    """NEGATIVE_CREDIT: an end-of-day balance below zero (`ledger`: the movements by as_of)."""
    patient = ledger.patient
    if not len(patient):
        return None
    # Balances at the end of each day: intra-day order must not raise false alarms.
    starts = np.flatnonzero(np.r_[True, patient[1:] != patient[:-1]])
    cum = np.cumsum(ledger.signed)
    balance = cum - np.repeat(np.r_[0, cum[starts[1:] - 1]], np.diff(np.r_[starts, len(patient)]))
    day = days_of(ledger.at)
    end_of_day = np.r_[(patient[1:] != patient[:-1]) | (day[1:] != day[:-1]), True]
    below = np.flatnonzero(end_of_day & (balance < 0))
    if not len(below):
        return None
    worst = pd.DataFrame({"p": patient[below], "b": balance[below], "d": day[below]})
    first = worst.groupby("p", sort=False)["d"].min()
    lowest = worst.groupby("p", sort=False)["b"].min()
    subjects = patients.loc[lowest.index]
    texts = (
        f"Account credit went below zero (lowest {format_dollars(b)}, first on "
        f"{np.datetime64(int(d), 'D')}): more was refunded or applied than the patient paid; "
        f"check the refunds and allocations in {system}."
        for b, d in _rows(lowest, first.loc[lowest.index])
    )
    return _patient_finding("NEGATIVE_CREDIT", subjects, texts, -lowest)


def reported_credit_mismatch(patients: pd.DataFrame, system: str) -> pd.DataFrame | None:
    """REPORTED_CREDIT_MISMATCH: the system's own unapplied credit differs from the final credit."""
    differs = patients["reported_credit"].notna() & (patients["difference"].fillna(0) != 0)
    subjects = patients.loc[differs.to_numpy(dtype=bool)]
    texts = (
        f"{system[:1].upper()}{system[1:]} reports {format_dollars(r)} of unapplied credit but the exports add up to {format_dollars(f)}: "
        "check for payments, refunds or allocations missing from the exports."
        for r, f in _rows(subjects["reported_credit"], subjects["final_credit"])
    )
    gap = pd.Series(np.abs(subjects["difference"].to_numpy(dtype=np.int64)), index=subjects.index)
    return _patient_finding("REPORTED_CREDIT_MISMATCH", subjects, texts, gap)


def invoice_status_mismatch(invoices: pd.DataFrame, system: str) -> pd.DataFrame | None:
    """INVOICE_STATUS_MISMATCH: the exported status disagrees with the final outstanding."""
    wrong = invoices.loc[invoices["status_mismatch"]]
    texts = (
        f"The export says invoice {n if n is not None else i} is {s} but {format_dollars(o)} is still owing on it"
        if o > 0
        else f"The export says invoice {n if n is not None else i} is open but it is fully paid"
        for i, n, s, o in _rows(
            wrong["invoice_id"],
            wrong["number"],
            wrong["status_reported"],
            wrong["final_outstanding"],
        )
    )
    return _make(
        "INVOICE_STATUS_MISMATCH",
        wrong,
        _messages(texts, wrong).map(
            lambda m: m + f": check its payments and allocations in {system}."
        ),
        subject_type="invoice",
        subject_id="invoice_id",
        amount=wrong["final_outstanding"].abs(),
    )


def over_allocated_invoice(
    invoices: pd.DataFrame, allocations: pd.DataFrame | None
) -> pd.DataFrame | None:
    """OVER_ALLOCATED_INVOICE: explicit allocations above an invoice's total."""
    over = invoices.loc[
        (invoices["total"] > 0) & (invoices["explicit_allocated"] > invoices["total"])
    ]
    places = _allocation_places(allocations, over["invoice_id"])
    texts = (
        f"Allocations to invoice {i if pd.isna(n) else n} ({f} row {r}) add up to "
        f"{format_dollars(a)}, more than its total {format_dollars(t)}"
        f"{_allocated_in(places, i)}: correct the allocations so the "
        "excess goes back to credit."
        for i, n, a, t, f, r in _rows(
            over["invoice_id"],
            over["number"],
            over["explicit_allocated"],
            over["total"],
            over["source_file"],
            over["source_row"],
        )
    )
    return _make(
        "OVER_ALLOCATED_INVOICE",
        over,
        _messages(texts, over),
        subject_type="invoice",
        subject_id="invoice_id",
        amount=over["explicit_allocated"] - over["total"],
    )


def _allocation_places(allocations: pd.DataFrame | None, invoices: pd.Series) -> dict[object, str]:
    """invoice_id -> where the exported allocations to `invoices` are ("allocations.csv row 2,
    allocations.csv row 3"), to name both records in OVER_ALLOCATED_INVOICE."""
    if allocations is None or invoices.empty or "source_row" not in allocations:
        return {}
    mine = allocations.loc[allocations["invoice_id"].isin(invoices)]
    places: dict[object, list[str]] = {}
    for invoice, file, row in zip(
        mine["invoice_id"], mine["source_file"], mine["source_row"], strict=True
    ):
        places.setdefault(invoice, []).append(f"{file} row {row}")
    return {invoice: ", ".join(rows) for invoice, rows in places.items()}


def _allocated_in(places: dict[object, str] | None, invoice: object) -> str:
    where = (places or {}).get(invoice)
    return f" (allocations: {where})" if where else ""


def invoice_balance_mismatch(
    invs: pd.DataFrame, system: str, *, check_credit: bool
) -> pd.DataFrame | None:
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
    # Per check: "label $reported in <system>, $recomputed recomputed", or None where they agree.
    parts = [
        [
            f"{label} {format_dollars(int(given))} in {system}, {format_dollars(mine)} recomputed"
            if pd.notna(given) and int(given) != mine
            else None
            for given, mine in _rows(wrong[reported], wrong[recomputed])
        ]
        for label, reported, recomputed in checks
    ]
    gaps = [
        [
            abs(int(given) - mine) if pd.notna(given) else 0
            for given, mine in _rows(wrong[reported], wrong[recomputed])
        ]
        for _, reported, recomputed in checks
    ]
    names = [n if n is not None else i for i, n in _rows(wrong["invoice_id"], wrong["number"])]
    messages = [
        f"Invoice {name} does not add up to {system}'s own figures "
        f"({'; '.join(p for p in found if p)}): "
        "check for payments, credit or allocations missing from the exports."
        for name, found in zip(names, zip(*parts, strict=True), strict=True)
    ]
    # The amount: the first figure that differs (outstanding, then payments, then credit).
    amounts = [next((g for g in gap if g), 0) for gap in zip(*gaps, strict=True)]
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


def package_session_charged(
    invs: pd.DataFrame,
    live: LiveRecords,
    issued: np.ndarray,
    appointments: pd.DataFrame | None,
    cases: pd.DataFrame | None,
    links: InvoiceLinks | None,
    ids: RunIds,
) -> pd.DataFrame | None:
    """PACKAGE_SESSION_CHARGED: a session of a paid-in-full package case was itself invoiced.

    `invs` is the invoice snapshot: the rows of the live invoices where `issued`, in order;
    `ids` the id codes of the frames the live records came from (cases and appointments joined
    on integers).
    """
    inv = live.invoices
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
    rows_of_issued = live.invoice_rows[issued]
    inv_case = ids.cases.of("invoices")[rows_of_issued]
    session = _session_appointments(inv, issued, rows_of_issued, links, ids)
    total = invs["total"].to_numpy(dtype=np.int64)
    paid_up = (total > 0) & (invs["outstanding"].to_numpy(dtype=np.int64) == 0)
    pkg_rows = np.flatnonzero((inv_case >= 0) & ~session.has_appointment & paid_up)
    keep = _paid_case_appointments(inv_case[pkg_rows], appointments, ids)
    if keep is None:
        return None
    appointment_ids = appointments["appointment_id"].to_numpy(dtype=object)
    in_paid_case = np.zeros(len(ids.appointments.ids), dtype=bool)
    in_paid_case[ids.appointments.of("appointments")[keep]] = True
    for_paid_case = session.for_appointments(in_paid_case, lambda: appointment_ids[keep])
    rows = np.flatnonzero(for_paid_case & (total > 0))
    if not len(rows):
        return None
    sessions = invs.iloc[rows].reset_index(drop=True)
    sessions["appointment_id"] = session.appointment_ids(inv, issued, rows)
    # Only the appointments of these sessions can join them (the merge keeps the left order).
    near = session.named_by(rows, keep, ids.appointments.of("appointments"), appointment_ids)
    appts = pd.DataFrame(
        {
            column: as_column(appointments[column].to_numpy(dtype=object)[near])
            for column in ("appointment_id", "patient_id", "case_id")
        }
    )
    # A group appointment has a row per attendee: the invoice is the session of its own patient.
    hit = sessions.merge(appts, on=["appointment_id", "patient_id"], how="inner")
    if hit.empty:
        return None
    pkg = invs.iloc[pkg_rows].reset_index(drop=True)
    pkg["case_id"] = inv["case_id"].to_numpy(dtype=object)[issued][pkg_rows]
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


def _paid_case_appointments(
    package_cases: np.ndarray, appointments: pd.DataFrame, ids: RunIds
) -> np.ndarray | None:
    """The live appointments of the cases (codes) whose package invoices are paid in full, as a
    row mask; None when no such case is in the cases export."""
    paid_case = np.zeros(len(ids.cases.ids), dtype=bool)
    paid_case[package_cases] = True
    paid_case &= ids.cases.present("cases")
    if not paid_case.any():
        return None
    appointment_case = ids.cases.of("appointments")
    keep = live_mask(appointments) & (appointment_case >= 0)
    keep[keep] = paid_case[appointment_case[keep]]
    return keep


@dataclass(frozen=True)
class _Sessions:
    """Which appointment each issued invoice is for: its own appointment id (`own_codes`, in the
    appointment id space) unless it is tied by number (`by_number`, to `linked`)."""

    own_codes: np.ndarray
    by_number: np.ndarray
    linked: np.ndarray

    @property
    def has_appointment(self) -> np.ndarray:
        return (self.own_codes >= 0) | self.by_number

    def for_appointments(
        self, wanted: np.ndarray, wanted_ids: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """Whether each invoice is for one of the appointments wanted (per code; their ids, for
        the invoices tied by number, asked for only when there are any)."""
        own = self.own_codes
        hit = ~self.by_number & (own >= 0)
        hit[hit] = wanted[own[hit]]
        by_number = np.flatnonzero(self.by_number)
        if len(by_number):
            hit[by_number[_isin(self.linked[by_number], set(wanted_ids().tolist()))]] = True
        return hit

    def named_by(
        self, rows: np.ndarray, among: np.ndarray, codes: np.ndarray, texts: np.ndarray
    ) -> np.ndarray:
        """Which appointment rows (of those `among`; their id `codes` and `texts`) the invoices
        at `rows` are for."""
        own = self.own_codes[rows][~self.by_number[rows]]
        size = max(int(codes.max(initial=-1)), int(own.max(initial=-1))) + 2
        named = np.zeros(size, dtype=bool)  # the last slot stays False: code -1
        named[own[own >= 0]] = True
        near = among & named[codes]
        if self.by_number[rows].any():
            linked = set(self.linked[rows][self.by_number[rows]].tolist())
            maybe = np.flatnonzero(among & ~near)
            near[maybe[_isin(texts[maybe], linked)]] = True
        return near

    def appointment_ids(self, inv: pd.DataFrame, issued: np.ndarray, rows: np.ndarray) -> Any:
        """The appointment ids of the issued invoices at `rows`, as text."""
        own = inv["appointment_id"].to_numpy(dtype=object)[issued][rows]
        return np.where(self.by_number[rows], self.linked[rows], own)


def _session_appointments(
    inv: pd.DataFrame,
    issued: np.ndarray,
    rows_of_issued: np.ndarray,
    links: InvoiceLinks | None,
    ids: RunIds,
) -> _Sessions:
    """The issued invoices' appointments (`engine.links`: by number only where the own id is
    not intact, so only those invoices are looked up)."""
    own = ids.appointments.of("invoices")[rows_of_issued]
    linked = np.full(len(own), None, dtype=object)
    if links is not None and links.by_number:
        present = ids.appointments.present("appointments")
        not_intact = np.flatnonzero(~((own >= 0) & present[np.maximum(own, 0)]))
        invoice_ids = inv["invoice_id"].to_numpy(dtype=object)[issued][not_intact]
        linked[not_intact] = links.by_number_of(invoice_ids)
    return _Sessions(own, pd.notna(linked), linked)


def codes_per_patient(findings: pd.DataFrame, patient_ids: Any) -> np.ndarray:
    """Each patient's distinct finding codes joined by ', ' in code order (vectorised per code)."""
    index = pd.Index(np.asarray(patient_ids, dtype=object), dtype=object)  # no str copy
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
