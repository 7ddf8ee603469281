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

from pkgreport.engine._arrays import is_among

UNASSIGNED = "unassigned"
# A package "expires soon" when it is active and its expiry day falls within this many days
# after the as-of date (the as-of day included).
EXPIRING_DAYS = 30

LOCATION_COLUMNS = (
    "business",
    "patients_with_credit",
    "credit_liability",
    "open_invoices",
    "package_value_undelivered",
    "cases_over_booked",
    "cases_expiring",
)
PRACTITIONER_COLUMNS = (
    "practitioner",
    "cases_active",
    "upcoming_sessions",
    "cases_over_booked",
    "cases_expiring",
    "package_value_undelivered",
)


def _named(values: pd.Series) -> pd.Series:
    """Names without surrounding spaces; blank ones (NaN, empty, spaces) become `UNASSIGNED`.
    Names repeat, so each distinct one is cleaned once."""
    codes, distinct = pd.factorize(values.astype(object), use_na_sentinel=True)
    cleaned = np.array(
        [str(name).strip() or UNASSIGNED for name in distinct] + [UNASSIGNED], dtype=object
    )
    return pd.Series(cleaned[codes], index=values.index, dtype=object)  # code -1: the last


def patient_businesses(invoices: pd.DataFrame | None) -> pd.Series:
    """patient_id -> business of the patient's most recent invoice that names one."""
    if invoices is None or "business" not in invoices.columns:
        return pd.Series(dtype=object)
    # Only the three columns read are taken: the invoices are many and wide.
    wanted = invoices[["patient_id", "issue_date", "business"]]
    named = wanted[(_named(wanted["business"]) != UNASSIGNED).to_numpy()]
    # A stable sort by issue date keeps file order among invoices of one day: the last row wins.
    issued = named["issue_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    latest = named.iloc[np.argsort(issued, kind="stable")]
    return latest.drop_duplicates("patient_id", keep="last").set_index("patient_id")["business"]


def case_owners(case_appointments: pd.DataFrame, appointments: pd.DataFrame) -> pd.DataFrame:
    """case_id -> business and practitioner of the case's latest counted appointment.

    The case engine numbers a case's counted appointments 1..n by start time, then id: the
    highest number is the latest.
    """
    counted_rows = case_appointments["counted"].to_numpy(dtype=bool)
    counted = case_appointments.loc[counted_rows, ["case_id", "appointment_id", "number"]]
    numbers = counted["number"].to_numpy(dtype=np.int64)
    latest = counted.iloc[np.argsort(numbers, kind="stable")].drop_duplicates(
        "case_id", keep="last"
    )
    owners = pd.DataFrame(index=pd.Index(latest["case_id"].to_numpy(), name="case_id"))
    columns = ("business", "practitioner")
    found = _lookup(appointments, "appointment_id", columns, latest["appointment_id"])
    for column, values in zip(columns, found, strict=True):
        owners[column] = values
    return owners


def _lookup(
    frame: pd.DataFrame, key: str, columns: tuple[str, ...], wanted: pd.Series
) -> list[np.ndarray]:
    """Each of `frame[columns]` of the first row whose `key` is each of `wanted` (None when
    absent). Only the rows wanted are indexed: ids are many, the ones looked up few. A group
    appointment is one row per attendee, each with the appointment's id, business and
    practitioner: its first row stands for all."""
    present = [c for c in columns if c in frame.columns]
    rows = frame.loc[
        is_among(frame[key], wanted, missing_matches=True), [key, *present]
    ].drop_duplicates(key)
    found = pd.Index(rows[key]).get_indexer(wanted)
    looked_up = []
    for column in columns:
        values = np.empty(len(rows) + 1, dtype=object)  # the last stays None: -1 is absent
        if column in present:
            values[:-1] = rows[column].to_numpy(dtype=object)
        looked_up.append(values[found])
    return looked_up


def case_frame(
    *,
    as_of: date,
    cases: pd.DataFrame | None,
    case_appointments: pd.DataFrame | None,
    appointments: pd.DataFrame | None,
    packages: pd.DataFrame | None,
) -> pd.DataFrame | None:
    """One row per case: its business and practitioner, the flags counted per owner and its
    undelivered value; None without the case tally and the appointments."""
    if cases is None or case_appointments is None or appointments is None:
        return None
    owners = case_owners(case_appointments, appointments)
    frame = pd.DataFrame({"case_id": cases["case_id"].to_numpy()})
    owner = _positions(owners.index, frame["case_id"])
    for column in ("business", "practitioner"):
        frame[column] = _named(pd.Series(_taken(owners[column], owner), dtype=object))
    frame["over_booked"] = (cases["over_booked_by"] > 0).to_numpy()
    frame["active"] = (cases["status"] == "active").to_numpy()
    start = pd.Timestamp(as_of)
    end = pd.Timestamp(as_of + timedelta(days=EXPIRING_DAYS))
    expiry = cases["expiry_date"]
    frame["expiring"] = frame["active"] & (expiry >= start).to_numpy() & (expiry < end).to_numpy()
    frame["upcoming"] = cases["upcoming"].to_numpy(dtype=np.int64)
    undelivered = np.zeros(len(frame), dtype=np.int64)
    if packages is not None:
        package = _positions(pd.Index(packages["case_id"]), frame["case_id"])
        value = packages["undelivered"].to_numpy(dtype=np.int64, na_value=0)
        undelivered[package >= 0] = value[package[package >= 0]]
    frame["undelivered"] = undelivered
    return frame


def _positions(index: pd.Index, keys: pd.Series) -> np.ndarray:
    """The position in `index` (its ids unique) of each of `keys`; -1 where absent. Both as
    Python strings: the engines hold some ids as Arrow-backed text, and pandas compares the two
    kinds of column value by value."""
    return pd.Index(index.to_numpy(dtype=object)).get_indexer(keys.to_numpy(dtype=object))


def _taken(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """`values` at `positions` as objects; None where the position is -1."""
    taken = np.empty(len(values) + 1, dtype=object)  # the last stays None
    taken[:-1] = values.to_numpy(dtype=object)
    return taken[positions]


def by_location(
    *,
    as_of: date,
    invoices: pd.DataFrame | None,
    credit_patients: pd.DataFrame | None,
    credit_invoices: pd.DataFrame | None,
    cases: pd.DataFrame | None,
) -> pd.DataFrame:
    """One row per business (`UNASSIGNED` last), money in cents; each column adds up to its
    practice-wide total (credit liability is the signed sum of balances, as the headline and
    the roll-forward define it: engine/liability.credit_liability).
    `cases` is `case_frame(...)`."""
    parts: list[pd.DataFrame] = []
    if credit_patients is not None:
        businesses = patient_businesses(invoices)
        patient = _positions(businesses.index, credit_patients["patient_id"])
        owner = _named(pd.Series(_taken(businesses, patient), dtype=object))
        credit = credit_patients["credit"].to_numpy(dtype=np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "business": owner.to_numpy(),
                    "patients_with_credit": (credit > 0).astype(np.int64),
                    "credit_liability": credit,
                }
            )
        )
    if credit_invoices is not None:
        issued = credit_invoices["issue_date"] <= pd.Timestamp(as_of)
        open_inv = credit_invoices[issued & (credit_invoices["outstanding"] > 0)]
        where = (
            _lookup(invoices, "invoice_id", ("business",), open_inv["invoice_id"])[0]
            if invoices is not None
            else np.full(len(open_inv), None, dtype=object)
        )
        parts.append(
            pd.DataFrame(
                {
                    "business": _named(pd.Series(where)).to_numpy(),
                    "open_invoices": open_inv["outstanding"].to_numpy(np.int64),
                }
            )
        )
    if cases is not None:
        parts.append(
            pd.DataFrame(
                {
                    "business": cases["business"],
                    "package_value_undelivered": cases["undelivered"],
                    "cases_over_booked": cases["over_booked"].astype(np.int64),
                    "cases_expiring": cases["expiring"].astype(np.int64),
                }
            )
        )
    return _sum_per(parts, "business", LOCATION_COLUMNS)


def by_practitioner(cases: pd.DataFrame | None) -> pd.DataFrame:
    """One row per practitioner of the case figures (each case counted once, with its owner).
    `cases` is `case_frame(...)`."""
    if cases is None:
        return pd.DataFrame(columns=list(PRACTITIONER_COLUMNS))
    part = pd.DataFrame(
        {
            "practitioner": cases["practitioner"],
            "cases_active": cases["active"].astype(np.int64),
            "upcoming_sessions": cases["upcoming"],
            "cases_over_booked": cases["over_booked"].astype(np.int64),
            "cases_expiring": cases["expiring"].astype(np.int64),
            "package_value_undelivered": cases["undelivered"],
        }
    )
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
