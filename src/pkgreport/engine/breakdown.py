"""Figures per business (location) and per practitioner that add up to the practice-wide totals.

Credit belongs to a patient, not a location: each patient's credit is attributed to the business
of the patient's most recent invoice (by issue date; the latest row wins a tie), and to
`UNASSIGNED` when the patient has no invoice naming a business. An open invoice counts where it
was issued. A package (case) belongs to the business and practitioner of its most recent
appointment that counts toward it, `UNASSIGNED` when none does. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

UNASSIGNED = "unassigned"
# A package "expires soon" when it is active and its expiry day falls within this many days
# after the as-of date (the as-of day included).
EXPIRING_DAYS = 30

LOCATION_COLUMNS = (
    "business", "patients_with_credit", "credit_liability", "open_invoices",
    "package_value_undelivered", "cases_over_booked", "cases_expiring",
)
PRACTITIONER_COLUMNS = (
    "practitioner", "cases_active", "upcoming_sessions", "cases_over_booked", "cases_expiring",
    "package_value_undelivered",
)


def _named(values: pd.Series) -> pd.Series:
    """Blank names (NaN, empty, spaces) become `UNASSIGNED`."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return text.where(text != "", UNASSIGNED)


def patient_businesses(invoices: pd.DataFrame | None) -> pd.Series:
    """patient_id -> business of the patient's most recent invoice that names one."""
    if invoices is None or "business" not in invoices.columns:
        return pd.Series(dtype=object)
    named = invoices[_named(invoices["business"]) != UNASSIGNED]
    latest = named.assign(_row=np.arange(len(named))).sort_values(
        ["issue_date", "_row"], kind="mergesort")
    return latest.drop_duplicates("patient_id", keep="last").set_index("patient_id")["business"]


def case_owners(case_appointments: pd.DataFrame, appointments: pd.DataFrame) -> pd.DataFrame:
    """case_id -> business and practitioner of the case's latest counted appointment."""
    wanted = [c for c in ("business", "practitioner") if c in appointments.columns]
    counted = case_appointments.loc[case_appointments["counted"], ["case_id", "appointment_id",
                                                                   "starts_at"]]
    details = appointments[["appointment_id", *wanted]].drop_duplicates("appointment_id")
    joined = counted.merge(details, on="appointment_id", how="left")
    joined = joined.sort_values(["starts_at", "appointment_id"], kind="mergesort")
    owners = joined.drop_duplicates("case_id", keep="last").set_index("case_id")
    return pd.DataFrame({c: owners[c] if c in owners else pd.Series(dtype=object)
                         for c in ("business", "practitioner")})


def _case_frame(cases: pd.DataFrame, owners: pd.DataFrame, packages: pd.DataFrame | None,
                as_of: date) -> pd.DataFrame:
    """One row per case: its owner, the flags counted per owner and its undelivered value."""
    frame = pd.DataFrame({"case_id": cases["case_id"].to_numpy()})
    for column in ("business", "practitioner"):
        frame[column] = _named(frame["case_id"].map(owners[column]) if len(owners)
                               else pd.Series(np.nan, index=frame.index))
    frame["over_booked"] = (cases["over_booked_by"] > 0).to_numpy()
    frame["active"] = (cases["status"] == "active").to_numpy()
    start = pd.Timestamp(as_of)
    end = pd.Timestamp(as_of + timedelta(days=EXPIRING_DAYS))
    expiry = cases["expiry_date"]
    frame["expiring"] = (frame["active"] & (expiry >= start).to_numpy()
                         & (expiry < end).to_numpy())
    frame["upcoming"] = cases["upcoming"].to_numpy(dtype=np.int64)
    value = (packages.set_index("case_id")["undelivered"] if packages is not None
             else pd.Series(dtype="Int64"))
    frame["undelivered"] = frame["case_id"].map(value).fillna(0).astype(np.int64)
    return frame


def by_location(*, as_of: date, invoices: pd.DataFrame | None,
                credit_patients: pd.DataFrame | None, credit_invoices: pd.DataFrame | None,
                cases: pd.DataFrame | None, case_appointments: pd.DataFrame | None,
                appointments: pd.DataFrame | None,
                packages: pd.DataFrame | None) -> pd.DataFrame:
    """One row per business (`UNASSIGNED` last), money in cents; each column adds up to its
    practice-wide total (credit liability counts only positive balances, as the headline does)."""
    parts: list[pd.DataFrame] = []
    if credit_patients is not None:
        owner = _named(credit_patients["patient_id"].map(patient_businesses(invoices)))
        credit = credit_patients["credit"].to_numpy(dtype=np.int64)
        parts.append(pd.DataFrame({"business": owner.to_numpy(),
                                   "patients_with_credit": (credit > 0).astype(np.int64),
                                   "credit_liability": np.clip(credit, 0, None)}))
    if credit_invoices is not None:
        issued = credit_invoices["issue_date"] <= pd.Timestamp(as_of)
        open_inv = credit_invoices[issued & (credit_invoices["outstanding"] > 0)]
        where = open_inv["invoice_id"].map(invoices.set_index("invoice_id")["business"]
                                           if invoices is not None and "business" in invoices
                                           else pd.Series(dtype=object))
        parts.append(pd.DataFrame({"business": _named(where).to_numpy(),
                                   "open_invoices": open_inv["outstanding"].to_numpy(np.int64)}))
    if cases is not None and case_appointments is not None and appointments is not None:
        frame = _case_frame(cases, case_owners(case_appointments, appointments), packages, as_of)
        parts.append(pd.DataFrame({
            "business": frame["business"], "package_value_undelivered": frame["undelivered"],
            "cases_over_booked": frame["over_booked"].astype(np.int64),
            "cases_expiring": frame["expiring"].astype(np.int64)}))
    return _sum_per(parts, "business", LOCATION_COLUMNS)


def by_practitioner(*, as_of: date, cases: pd.DataFrame | None,
                    case_appointments: pd.DataFrame | None, appointments: pd.DataFrame | None,
                    packages: pd.DataFrame | None) -> pd.DataFrame:
    """One row per practitioner of the case figures (each case counted once, with its owner)."""
    if cases is None or case_appointments is None or appointments is None:
        return pd.DataFrame(columns=list(PRACTITIONER_COLUMNS))
    frame = _case_frame(cases, case_owners(case_appointments, appointments), packages, as_of)
    part = pd.DataFrame({
        "practitioner": frame["practitioner"], "cases_active": frame["active"].astype(np.int64),
        "upcoming_sessions": frame["upcoming"],
        "cases_over_booked": frame["over_booked"].astype(np.int64),
        "cases_expiring": frame["expiring"].astype(np.int64),
        "package_value_undelivered": frame["undelivered"]})
    return _sum_per([part], "practitioner", PRACTITIONER_COLUMNS)


def _sum_per(parts: list[pd.DataFrame], key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Sum every part's figures per `key`, names sorted with `UNASSIGNED` last; figures a part
    does not have stay missing (NA) rather than a zero that would claim a figure."""
    if not parts:
        return pd.DataFrame(columns=list(columns))
    figures = [c for c in columns if c != key]
    combined = pd.concat(parts, ignore_index=True)
    present = [c for c in figures if c in combined.columns]
    summed = combined.groupby(key, sort=True)[present].sum(min_count=1)
    order = sorted(summed.index, key=lambda name: (name == UNASSIGNED, str(name).casefold()))
    summed = summed.loc[order].reset_index()
    for column in figures:
        if column in present:
            summed[column] = summed[column].fillna(0).astype(np.int64)
        else:
            summed[column] = pd.array([pd.NA] * len(summed), dtype="Int64")
    return summed[list(columns)]
