"""Figures per business (location) and per practitioner that add up to the practice-wide totals.

Credit belongs to a patient, not a location: each patient's credit is attributed to the business
of the patient's most recent invoice (by issue date; the latest row wins a tie), and to
`UNASSIGNED` when the patient has no invoice naming a business. An open invoice counts where it
was issued. A package (case) belongs to the business and practitioner of its most recent
appointment that counts toward it, `UNASSIGNED` when none does. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pkgreport.arrow_text import arrow_text_at, texts_at
from pkgreport.engine._arrays import factorize_exact, sum_by
from pkgreport.ids import IdSpace

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
# One part of the figures summed per name: each row's name, and its figures by column.
Part: TypeAlias = tuple[np.ndarray, dict[str, np.ndarray]]


def _named(values: np.ndarray) -> np.ndarray:
    """Names without surrounding spaces; blank ones (None, NaN, empty, spaces) become
    `UNASSIGNED`."""
    codes, cleaned = _name_codes(values)
    return cleaned[codes]


def _name_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_named` as a code per value into the distinct names cleaned: names repeat, so each
    distinct one is cleaned once (a missing value's code, -1, is the last: `UNASSIGNED`)."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    cleaned = np.array(
        [str(name).strip() or UNASSIGNED for name in distinct] + [UNASSIGNED], dtype=object
    )
    return codes, cleaned


def _objects(values: pd.Series | np.ndarray | pa.Array | list[Any]) -> np.ndarray:
    """A column's values as an array of Python objects (an object column is not copied)."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=object)
    return np.asarray(values, dtype=object)


def _first_positions(keys: np.ndarray, values: np.ndarray | pa.Array) -> np.ndarray:
    """Per value: the position of the first of `keys` equal to it, -1 when none; texts compared
    exactly, and a missing value equals a missing key (as `pd.Index.get_indexer`).

    Arrow hashes the keys' UTF-8 bytes and looks the values up in C: several times as fast as
    pandas looking up a million Python strings. What Arrow cannot take as text (a non-string
    id, a lone surrogate) is matched by `factorize_exact`, with the same answer."""
    try:
        found = pc.index_in(
            pa.array(values, type=pa.large_string(), from_pandas=True),
            value_set=pa.array(keys, type=pa.large_string(), from_pandas=True),
            skip_nulls=False,
        )
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return _first_positions_exact(_objects(keys), _objects(values))
    positions: np.ndarray = found.fill_null(-1).to_numpy(zero_copy_only=False)
    return positions.astype(np.int64, copy=False)


def _first_positions_exact(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`_first_positions` by one factorization of keys and values together."""
    codes, uniques = factorize_exact(np.concatenate([keys, values]))
    codes = np.where(codes >= 0, codes, len(uniques))  # the missing share one code, the last
    key_codes = codes[: len(keys)]
    first = np.full(len(uniques) + 1, len(keys), dtype=np.int64)
    np.minimum.at(first, key_codes, np.arange(len(keys), dtype=np.int64))
    first[first == len(keys)] = -1
    positions: np.ndarray = first[codes[len(keys) :]]
    return positions


def _at(values: np.ndarray, rows: np.ndarray) -> np.ndarray | pa.Array:
    """`values[rows]` to look up (`_first_positions`): as Arrow text, read without writing to
    the strings (`arrow_text.arrow_text_at`), where Arrow takes them."""
    text = arrow_text_at(values, rows)
    return values[rows] if text is None else text


def _first_rows(column: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per wanted value: the first row of `column` holding it, -1 when none. The wanted are few
    and the column long: only the wanted are hashed, and the column looked up in them."""
    which = _first_positions(wanted, column)  # each row: the first wanted equal to it
    rows = np.flatnonzero(which >= 0)
    first = np.full(len(wanted), len(column), dtype=np.int64)
    np.minimum.at(first, which[rows], rows)
    first = first[_first_positions(wanted, wanted)]  # a wanted repeated: as its first
    first[first == len(column)] = -1
    return first


def _latest_rows(groups: np.ndarray, n: int, key: np.ndarray) -> np.ndarray:
    """Per group 0..n-1: the row with the highest `key`, the last such row on a tie (as a
    stable sort by `key` keeping each group's last row); -1 for a group without rows. Rows of
    group -1 take no part."""
    rows = np.flatnonzero(groups >= 0)
    best = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(best, groups[rows], key[rows])
    rows = rows[key[rows] == best[groups[rows]]]
    latest = np.full(n, -1, dtype=np.int64)
    np.maximum.at(latest, groups[rows], rows)
    return latest


def _taken(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`values` at `rows` as objects; None where the row is -1."""
    taken = np.empty(len(values) + 1, dtype=object)  # the last stays None
    taken[:-1] = values
    return taken[rows]


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column's values as objects; None for every row when the frame lacks it."""
    if column in frame.columns:
        return _objects(frame[column])
    return np.full(len(frame), None, dtype=object)


def patient_businesses(
    invoices: pd.DataFrame | None, patient_ids: np.ndarray, codes: IdSpace | None = None
) -> np.ndarray:
    """Per patient of `patient_ids`: the business (its name cleaned, `_named`) of the patient's
    most recent invoice (by issue date; the latest row wins a tie) that names one; None when no
    invoice does. `codes`: the patient id space holding the invoices' ids (`ids`), which
    finds each invoice's patient by code instead of by text."""
    if invoices is None or "business" not in invoices.columns:
        return np.full(len(patient_ids), None, dtype=object)
    name_codes, businesses = _name_codes(_objects(invoices["business"]))
    named = np.flatnonzero((businesses != UNASSIGNED)[name_codes])
    patient = _invoice_patients(invoices, patient_ids, codes)[named]
    issued = invoices["issue_date"].to_numpy(dtype="datetime64[ns]")[named].view(np.int64)
    latest = _latest_rows(patient, len(patient_ids), issued)
    # A patient id repeated in `patient_ids` has the business found for its first row.
    latest = latest[_first_positions(patient_ids, patient_ids)]
    return _taken(businesses[name_codes[named]], latest)


def _invoice_patients(
    invoices: pd.DataFrame, patient_ids: np.ndarray, codes: IdSpace | None
) -> np.ndarray:
    """Per invoice: the position of its patient in `patient_ids`, -1 when not among them. By
    the codes the engines gave the invoices' patient ids, when given for these invoices: only
    the distinct ids are then looked up, not a text per invoice."""
    by_code = None if codes is None else codes.codes.get("invoices")
    if codes is None or by_code is None or len(by_code) != len(invoices):
        return _first_positions(patient_ids, _objects(invoices["patient_id"]))
    of_code = np.append(_first_positions(patient_ids, codes.ids), -1)  # code -1: blank
    positions: np.ndarray = of_code[by_code]
    return positions


def case_owners(
    case_ids: np.ndarray, case_appointments: pd.DataFrame, appointments: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Per case of `case_ids`: the business and practitioner of its latest counted appointment
    (None when it has none).

    The case engine numbers a case's counted appointments 1..n by start time, then id: the
    highest number is the latest. A group appointment is one row per attendee, each with the
    appointment's id, business and practitioner: its first row stands for all.
    """
    counted = np.flatnonzero(case_appointments["counted"].to_numpy(dtype=bool))
    counted_cases = _objects(case_appointments["case_id"])
    case = _first_positions(case_ids, _at(counted_cases, counted))
    numbers = case_appointments["number"].array[counted].to_numpy(dtype=np.int64)
    latest = _latest_rows(case, len(case_ids), numbers)
    latest = latest[_first_positions(case_ids, case_ids)]  # a case id repeated: as its first
    has_one = latest >= 0
    wanted = texts_at(_objects(case_appointments["appointment_id"]), counted[latest[has_one]])
    rows = np.full(len(case_ids), -1, dtype=np.int64)
    rows[has_one] = _first_rows(_objects(appointments["appointment_id"]), wanted)
    return (
        _taken(_column(appointments, "business"), rows),
        _taken(_column(appointments, "practitioner"), rows),
    )


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
    case_ids = _objects(cases["case_id"])
    business, practitioner = case_owners(case_ids, case_appointments, appointments)
    active = (cases["status"] == "active").to_numpy(dtype=bool)
    expiry = cases["expiry_date"].to_numpy(dtype="datetime64[ns]")
    start = np.datetime64(as_of, "ns")
    end = np.datetime64(as_of + timedelta(days=EXPIRING_DAYS), "ns")
    undelivered = np.zeros(len(cases), dtype=np.int64)
    if packages is not None:
        package = _first_positions(_objects(packages["case_id"]), case_ids)
        value = packages["undelivered"].to_numpy(dtype=np.int64, na_value=0)
        undelivered[package >= 0] = value[package[package >= 0]]
    return pd.DataFrame(
        {
            "case_id": case_ids,
            "business": _named(business),
            "practitioner": _named(practitioner),
            "over_booked": (cases["over_booked_by"] > 0).to_numpy(dtype=bool),
            "active": active,
            "expiring": active & (expiry >= start) & (expiry < end),
            "upcoming": cases["upcoming"].to_numpy(dtype=np.int64),
            "undelivered": undelivered,
        }
    )


def by_location(
    *,
    as_of: date,
    invoices: pd.DataFrame | None,
    credit_patients: pd.DataFrame | None,
    credit_invoices: pd.DataFrame | None,
    cases: pd.DataFrame | None,
    patient_codes: IdSpace | None = None,
) -> pd.DataFrame:
    """One row per business (`UNASSIGNED` last), money in cents; each column adds up to its
    practice-wide total (credit liability is the signed sum of balances, as the headline and
    the roll-forward define it: engine/liability.credit_liability).
    `cases` is `case_frame(...)`; `patient_codes`: see `patient_businesses`."""
    parts: list[Part] = []
    if credit_patients is not None:
        owner = patient_businesses(invoices, _objects(credit_patients["patient_id"]), patient_codes)
        credit = credit_patients["credit"].to_numpy(dtype=np.int64)
        figures = {
            "patients_with_credit": (credit > 0).astype(np.int64),
            "credit_liability": credit,
        }
        parts.append((_named(owner), figures))
    if credit_invoices is not None:
        issued = (credit_invoices["issue_date"] <= pd.Timestamp(as_of)).to_numpy(dtype=bool)
        outstanding = credit_invoices["outstanding"].to_numpy(dtype=np.int64)
        open_rows = np.flatnonzero(issued & (outstanding > 0))
        where = np.full(len(open_rows), None, dtype=object)
        if invoices is not None:
            open_ids = texts_at(_objects(credit_invoices["invoice_id"]), open_rows)
            where = _taken(
                _column(invoices, "business"),
                _first_rows(_objects(invoices["invoice_id"]), open_ids),
            )
        parts.append((_named(where), {"open_invoices": outstanding[open_rows]}))
    if cases is not None:
        parts.append((_objects(cases["business"]), _case_figures(cases, LOCATION_COLUMNS)))
    return _sum_per(parts, "business", LOCATION_COLUMNS)


# Each case figure: the column of `case_frame` it sums.
_CASE_FIGURES = {
    "cases_active": "active",
    "upcoming_sessions": "upcoming",
    "cases_over_booked": "over_booked",
    "cases_expiring": "expiring",
    "package_value_undelivered": "undelivered",
}


def _case_figures(cases: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The case figures among `columns`, one value per case (flags as 0 or 1)."""
    return {
        figure: cases[source].to_numpy().astype(np.int64)
        for figure, source in _CASE_FIGURES.items()
        if figure in columns
    }


def by_practitioner(cases: pd.DataFrame | None) -> pd.DataFrame:
    """One row per practitioner of the case figures (each case counted once, with its owner).
    `cases` is `case_frame(...)`."""
    if cases is None:
        return pd.DataFrame(columns=list(PRACTITIONER_COLUMNS))
    part = (_objects(cases["practitioner"]), _case_figures(cases, PRACTITIONER_COLUMNS))
    return _sum_per([part], "practitioner", PRACTITIONER_COLUMNS)


def _sum_per(parts: list[Part], key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Sum every part's figures per name (`key`), names sorted with `UNASSIGNED` last; figures
    no part has stay missing (NA) rather than a zero that would claim a figure."""
    if not parts:
        return pd.DataFrame(columns=list(columns))
    codes, names = factorize_exact(np.concatenate([names for names, _ in parts]))
    order = sorted(
        range(len(names)),
        key=lambda code: (names[code] == UNASSIGNED, str(names[code]).casefold(), names[code]),
    )
    bounds = np.cumsum([0] + [len(rows) for rows, _ in parts])
    summed: dict[str, Any] = {key: [names[code] for code in order]}
    for column in columns[1:]:
        held = [
            (start, part[column])
            for start, (_, part) in zip(bounds[:-1], parts, strict=True)
            if column in part
        ]
        if not held:
            summed[column] = pd.array([pd.NA] * len(names), dtype="Int64")
            continue
        total = np.zeros(len(names), dtype=np.int64)
        for start, values in held:
            total += sum_by(codes[start : start + len(values)], values, len(names))
        summed[column] = total[order]
    return pd.DataFrame(summed, columns=list(columns))
