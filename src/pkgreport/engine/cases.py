"""Case tally: count each package case's sessions, number them, and flag what needs a look."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import (
    as_column,
    end_of_day,
    factorize_exact,
    run_start_mask,
    run_starts,
    text_ranks,
)
from pkgreport.engine.case_findings import CaseText, Tally, concat_sorted, run_rules
from pkgreport.engine.findings import FINDINGS, SEVERITY_RANK
from pkgreport.ids import RunIds, encode_ids

CASE_COLUMNS: list[str] = [
    "case_id",
    "patient_id",
    "patient_name",
    "case_name",
    "max_sessions",
    "counted",
    "attended",
    "upcoming",
    "cancelled",
    "dna",
    "remaining",
    "over_booked_by",
    "status",
    "issue_date",
    "expiry_date",
    "closed_at",
    "package_price",
    "findings",
    "source_file",
    "source_row",
]

CASE_APPOINTMENT_COLUMNS: list[str] = [
    "appointment_id",
    "case_id",
    "patient_id",
    "starts_at",
    "number",
    "counted",
    "reason",
    "timing",
    "over_booked",
    "source_file",
    "source_row",
]

# Index = reason code computed in tally_cases; the first cause that applies wins.
REASONS: tuple[str, ...] = (
    "counted",
    "deleted",
    "archived",
    "cancelled: case excludes cancelled",
    "did not arrive: case excludes DNA",
)
TIMINGS: tuple[str, ...] = ("past", "upcoming")
STATUSES: tuple[str, ...] = ("closed", "over-booked", "expired", "used up", "unlimited", "active")

# Severity, then code: the order combine_findings sorts in. tally_cases runs its rules in this
# order, so each case's `findings` text and the findings frame come out already sorted.
CASE_FINDING_CODES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        ((k.code, k.severity) for k in FINDINGS.values() if k.stage == "cases"),
        key=lambda pair: (SEVERITY_RANK[pair[1]], pair[0]),
    )
)

_NAT = np.datetime64("NaT", "ns")
_MINUTE = 60_000_000_000  # in nanoseconds


@dataclass(frozen=True)
class CaseTally:
    """What `tally_cases` returns: the per-case table, the per-appointment table, the findings."""

    cases: pd.DataFrame
    appointments: pd.DataFrame
    findings: pd.DataFrame


def tally_cases(
    appointments: pd.DataFrame,
    cases: pd.DataFrame,
    as_of: date,
    *,
    nearly_used_up: int = 1,
    ids: RunIds | None = None,
) -> CaseTally:
    """Tally every case's sessions at the end of `as_of` (clinic-local) and flag problems.

    Inputs are the typed `appointments` and `cases` frames of docs/ARCHITECTURE.md; they are not
    modified. The exports are a snapshot: cancelled, did-not-arrive, archived and deleted marks
    are taken as they stand, whatever their date. `as_of` only splits past from upcoming
    appointments (an appointment starting before midnight after `as_of` is past), decides whether a
    case has expired (`expiry_date` before `as_of`; a case is valid through its whole expiry day)
    and whether it was closed (`closed_at` before midnight after `as_of`).

    An appointment attached to a case counts unless it is deleted or archived, it is cancelled and
    the case does not include cancelled, or it did not arrive and the case does not include DNA.
    One both cancelled and did-not-arrive therefore needs both toggles to count: each mark alone
    would exclude it. `reason` names the first cause in that order (deleted, archived, cancelled,
    did not arrive). `cancelled` and `dna` count live (not archived, not deleted) appointments
    with the mark, whether counted or not; one with both marks is in both counts.

    Counted appointments are numbered 1..n per case by start time, then appointment id; those
    numbered above `max_sessions` are over-booked. For a limited case
    `remaining = max(max - counted, 0)` and `over_booked_by = max(counted - max, 0)`, so
    `remaining + counted - over_booked_by == max_sessions` always; `counted == attended + upcoming`.
    An unlimited case has `remaining` NA and `over_booked_by` 0.

    `status`, first match wins: `closed` (closed by `as_of`, or archived at any time: archiving
    removes the record, as it does an appointment), `over-booked`, `expired`, `used up`
    (remaining 0), `unlimited`, `active`.

    Findings. OVER_BOOKED, OUTSIDE_CASE_DATES and BOOKED_AFTER_CLOSE describe appointments and are
    raised whatever the case's status. EXPIRED_WITH_SESSIONS_LEFT is an `expired` limited case with
    sessions left. NEARLY_USED_UP is an `active` limited case with 1 to `nearly_used_up` sessions
    left, whatever other packages the patient holds. USED_UP_STILL_BOOKED is a `used up` case with
    a session still to come (remaining already subtracts booked appointments, so the patient's
    last visits are the moment to sell the next package); a used-up case with nothing booked is
    finished, and is not flagged so that old packages do not stay flagged forever.
    SEVERAL_OPEN_PACKAGES is a patient with two or more `active` cases; its row carries the first
    of those cases' source.

    `patient_name` is the name on the patient's latest named appointment (attached to a case or
    not; on a tie, the greater appointment id), NaN when no appointment names the patient.

    Output order: cases by (patient_id, case_id); appointments by that case order, then start
    time, then appointment id; findings as `combine_findings` sorts them. Ids compare as text.

    `ids` are the id codes of these frames (`pkgreport.ids`), made here when not given.
    """
    if isinstance(as_of, datetime):  # a Timestamp or datetime: only its calendar day matters
        as_of = as_of.date()
    _check_cases(cases)
    if ids is None:
        ids = encode_ids(appointments=appointments, cases=cases)
    cs, patient_group, case_codes = _sorted_cases(cases, ids)
    every_pos = _case_positions(case_codes, ids, len(appointments))
    attached = _attached_appointments(appointments, cs, every_pos, end_of_day(as_of))
    per_case = _per_case(cs, attached, as_of)
    patient_names = _patient_names(cs, appointments, attached.every_start, attached.every_id)
    t = _tally(cs, patient_group, patient_names, attached, per_case)
    parts, codes = run_rules(t, nearly_used_up)
    return CaseTally(
        cases=_case_table(cs, patient_names, per_case, codes),
        appointments=_appointment_table(appointments, attached),
        findings=concat_sorted(parts),
    )


def _tally(
    cs: pd.DataFrame,
    patient_group: np.ndarray,
    patient_names: np.ndarray,
    attached: _Attached,
    per_case: _PerCase,
) -> Tally:
    return Tally(
        cs=cs,
        patient_group=patient_group,
        labels=CaseText(cs, _column(cs, "case_name").to_numpy(dtype=object), patient_names),
        pos=attached.pos,
        ids=attached.every_id[attached.rows],
        starts=attached.starts,
        counted=attached.counted,
        over_booked=attached.over_booked,
        maximum=per_case.maximum,
        limited=per_case.limited,
        n_counted=per_case.n_counted,
        n_upcoming=per_case.n_counted - per_case.n_attended,
        remaining=per_case.remaining,
        over_by=per_case.over_by,
        status=per_case.status,
        issue_day=_days(cs, "issue_date"),
        expiry_day=per_case.expiry_day,
        closed_at=_datetimes(cs, "closed_at"),
    )


def _check_cases(cases: pd.DataFrame) -> None:
    """Validation guarantees these; a breach would silently mis-tally, so refuse it loudly.

    A Python set, not `is_unique`: pandas 2 hashes text up to a NUL, so "c\x00" equals "c".
    """
    case_ids = cases["case_id"]
    if case_ids.isna().any() or len(set(case_ids.tolist())) != len(case_ids):
        raise ValueError("cases.case_id must be present and unique (validation guarantees it)")
    if cases["patient_id"].isna().any():
        raise ValueError("cases.patient_id must be present (validation guarantees it)")


@dataclass(frozen=True)
class _Attached:
    """The appointments attached to a known case, in output order (`rows` into the export)."""

    every_start: np.ndarray  # every appointment's start, in export order
    every_id: np.ndarray
    rows: np.ndarray
    pos: np.ndarray  # the case of each attached appointment (position in the sorted cases)
    starts: np.ndarray
    live: np.ndarray
    cancelled: np.ndarray
    dna: np.ndarray
    counted: np.ndarray
    past: np.ndarray
    reason: np.ndarray  # index into REASONS
    number: np.ndarray  # 1..n among the counted appointments of each case
    over_booked: np.ndarray


def _attached_appointments(
    appointments: pd.DataFrame, cs: pd.DataFrame, every_pos: np.ndarray, day_end: np.datetime64
) -> _Attached:
    """Which attached appointments count (`every_pos`: each one's case, -1 for none), and their
    numbers within each case."""
    every_start = appointments["starts_at"].to_numpy(dtype="datetime64[ns]")
    every_id = appointments["appointment_id"].to_numpy(dtype=object)

    attached = np.flatnonzero(every_pos >= 0)
    order = _order_by(every_pos[attached], every_start[attached].view(np.int64), every_id[attached])
    rows = attached[order]
    pos = every_pos[rows]
    starts = every_start[rows]

    cancelled = ~np.isnat(_datetimes(appointments, "cancelled_at")[rows])
    dna = _bools(appointments, "did_not_arrive")[rows]
    archived = ~np.isnat(_datetimes(appointments, "archived_at")[rows])
    deleted = ~np.isnat(_datetimes(appointments, "deleted_at")[rows])
    live = ~archived & ~deleted
    excluded_cancelled = cancelled & ~_bools(cs, "include_cancelled")[pos]
    excluded_dna = dna & ~_bools(cs, "include_dna")[pos]
    counted = live & ~excluded_cancelled & ~excluded_dna
    reason = np.select(
        [deleted, archived, excluded_cancelled, excluded_dna], [1, 2, 3, 4], default=0
    )

    # Number counted appointments within each case: running count minus the count before the case.
    running = np.cumsum(counted)
    first = run_starts(pos)
    before = np.concatenate([[0], running])[first]
    number = running - np.repeat(before, np.diff(np.append(first, len(pos))))
    limited = cs["max_sessions"].notna().to_numpy()
    maximum = cs["max_sessions"].fillna(0).to_numpy(dtype=np.int64)
    over_booked = counted & limited[pos] & (number > maximum[pos])
    return _Attached(
        every_start,
        every_id,
        rows,
        pos,
        starts,
        live,
        cancelled,
        dna,
        counted,
        starts < day_end,
        reason,
        number,
        over_booked,
    )


@dataclass(frozen=True)
class _PerCase:
    """Each case's counts, remaining sessions and status (cases in output order)."""

    limited: np.ndarray
    maximum: np.ndarray
    expiry_day: np.ndarray
    n_counted: np.ndarray
    n_attended: np.ndarray
    n_cancelled: np.ndarray
    n_dna: np.ndarray
    remaining: np.ndarray
    over_by: np.ndarray
    status: np.ndarray


def _per_case(cs: pd.DataFrame, a: _Attached, as_of: date) -> _PerCase:
    m = len(cs)
    limited = cs["max_sessions"].notna().to_numpy()
    maximum = cs["max_sessions"].fillna(0).to_numpy(dtype=np.int64)
    n_counted = np.bincount(a.pos[a.counted], minlength=m)
    remaining = np.where(limited, np.maximum(maximum - n_counted, 0), 0)
    over_by = np.where(limited, np.maximum(n_counted - maximum, 0), 0)

    closed_at = _datetimes(cs, "closed_at")
    case_archived = ~np.isnat(_datetimes(cs, "archived_at"))
    closed = (~np.isnat(closed_at) & (closed_at < end_of_day(as_of))) | case_archived
    expiry_day = _days(cs, "expiry_date")
    expired = ~np.isnat(expiry_day) & (expiry_day < np.datetime64(as_of, "ns"))
    status = np.select(
        [closed, over_by > 0, expired, limited & (remaining == 0), ~limited],
        list(STATUSES[:5]),
        default=STATUSES[5],
    ).astype(object)
    return _PerCase(
        limited=limited,
        maximum=maximum,
        expiry_day=expiry_day,
        n_counted=n_counted,
        n_attended=np.bincount(a.pos[a.counted & a.past], minlength=m),
        n_cancelled=np.bincount(a.pos[a.live & a.cancelled], minlength=m),
        n_dna=np.bincount(a.pos[a.live & a.dna], minlength=m),
        remaining=remaining,
        over_by=over_by,
        status=status,
    )


def _case_table(
    cs: pd.DataFrame, patient_names: np.ndarray, c: _PerCase, codes: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": cs["case_id"],
            "patient_id": cs["patient_id"],
            "patient_name": patient_names,
            "case_name": _column(cs, "case_name"),
            "max_sessions": cs["max_sessions"],
            "counted": c.n_counted.astype(np.int64),
            "attended": c.n_attended.astype(np.int64),
            "upcoming": (c.n_counted - c.n_attended).astype(np.int64),
            "cancelled": c.n_cancelled.astype(np.int64),
            "dna": c.n_dna.astype(np.int64),
            "remaining": pd.arrays.IntegerArray(c.remaining.astype(np.int64), ~c.limited),
            "over_booked_by": c.over_by.astype(np.int64),
            "status": c.status,
            "issue_date": _column(cs, "issue_date", "datetime64[ns]"),
            "expiry_date": _column(cs, "expiry_date", "datetime64[ns]"),
            "closed_at": _column(cs, "closed_at", "datetime64[ns]"),
            "package_price": pd.array(_column(cs, "package_price"), dtype="Int64"),
            "findings": codes,
            "source_file": cs["source_file"],
            "source_row": cs["source_row"],
        },
        copy=False,
    )


def _appointment_table(appointments: pd.DataFrame, a: _Attached) -> pd.DataFrame:
    def picked(column: str) -> Any:
        series = appointments[column]
        if series.dtype != object:
            return series.take(a.rows).reset_index(drop=True)
        # A numpy take of the objects: pandas' would check each one for a str dtype first.
        return as_column(series.to_numpy()[a.rows])

    return pd.DataFrame(
        {
            "appointment_id": picked("appointment_id"),
            # Without a case_id column nothing is attached, so this is empty.
            "case_id": picked("case_id")
            if "case_id" in appointments.columns
            else np.full(len(a.rows), np.nan, dtype=object),
            "patient_id": picked("patient_id"),
            "starts_at": picked("starts_at"),
            "number": pd.arrays.IntegerArray(a.number.astype(np.int64), ~a.counted),
            "counted": a.counted,
            # Objects, as the picked columns: pandas would check every one for a str dtype.
            "reason": as_column(np.asarray(REASONS, dtype=object)[a.reason]),
            "timing": as_column(np.asarray(TIMINGS, dtype=object)[(~a.past).astype(np.intp)]),
            "over_booked": a.over_booked,
            "source_file": picked("source_file"),
            "source_row": picked("source_row"),
        },
        copy=False,
    )


def _sorted_cases(cases: pd.DataFrame, ids: RunIds) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The cases ordered by (patient_id, case_id) with a fresh RangeIndex, each one's patient
    group (0, 1, ... numbering the patients in that order) and case code (`ids`' codes follow
    the ids' text order, so sorting by code sorts by id)."""
    patient_codes = ids.patients.of("cases")
    case_codes = ids.cases.of("cases")
    order = np.lexsort((case_codes, patient_codes))
    out = cases.take(order).reset_index(drop=True)
    out["max_sessions"] = pd.array(_column(out, "max_sessions"), dtype="Int64")
    patient_group = np.cumsum(run_start_mask(patient_codes[order])) - 1
    return out, patient_group, case_codes[order]


def _patient_names(
    cs: pd.DataFrame,
    appointments: pd.DataFrame,
    starts: np.ndarray,
    ids: np.ndarray,
) -> np.ndarray:
    """Each case's patient name: the one on that patient's latest named appointment, else NaN."""
    m = len(cs)
    if m == 0 or "patient_name" not in appointments.columns:
        return np.full(m, np.nan, dtype=object)
    names = appointments["patient_name"].to_numpy(dtype=object)
    named = np.flatnonzero(~pd.isna(names))
    case_patients = cs["patient_id"].to_numpy(dtype=object)
    codes, _ = factorize_exact(
        np.concatenate([case_patients, appointments["patient_id"].to_numpy(dtype=object)[named]])
    )
    case_codes = codes[:m]
    # Case patients appear first, so their codes are exactly 0..k-1.
    k = int(case_codes.max()) + 1
    appointment_codes = codes[m:]
    keep = (appointment_codes >= 0) & (appointment_codes < k)
    rows = named[keep]
    group = appointment_codes[keep]
    # Latest start per patient without sorting everything; only rows at that start are sorted.
    when = starts[rows].view(np.int64)
    latest = np.full(k, np.iinfo(np.int64).min)
    np.maximum.at(latest, group, when)
    at_latest = when == latest[group]
    rows = rows[at_latest]
    group = group[at_latest]
    order = _order_by(group, when[at_latest], ids[rows])
    group = group[order]
    rows = rows[order]
    last = np.append(group[1:] != group[:-1], True) if len(group) else np.zeros(0, dtype=bool)
    by_patient = np.full(k, np.nan, dtype=object)
    by_patient[group[last]] = names[rows[last]]
    return by_patient[case_codes]


def _case_positions(case_codes: np.ndarray, ids: RunIds, n_appointments: int) -> np.ndarray:
    """Position among the sorted cases (`case_codes`) of each appointment's case, -1 when
    unattached or unknown."""
    if "appointments" not in ids.cases.codes:  # no case_id column: nothing is attached
        return np.full(n_appointments, -1, dtype=np.int64)
    position = np.full(len(ids.cases.ids) + 1, -1, dtype=np.int64)  # the extra slot: code -1
    position[case_codes] = np.arange(len(case_codes))
    return position[ids.cases.of("appointments")]


def _order_by(groups: np.ndarray, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Stable order by (group, start, id); ids compared as Python strings only where needed.

    `groups` are non-negative ints, `starts` datetime64[ns] viewed as int64.
    """
    order = _order_by_group_and_start(groups, starts)
    if len(order) < 2:
        return order
    g = groups[order]
    s = starts[order]
    tie = (g[1:] == g[:-1]) & (s[1:] == s[:-1])
    if not tie.any():
        return order
    # Only runs of equal (group, start) need the id; sort just those rows, run by run.
    run = np.cumsum(np.concatenate([[True], ~tie]))
    in_tie = np.zeros(len(order), dtype=bool)
    in_tie[1:] |= tie
    in_tie[:-1] |= tie
    where = np.flatnonzero(in_tie)
    tied = order[where]
    order[where] = tied[np.lexsort((text_ranks(ids[tied]), run[where]))]
    return order


def _order_by_group_and_start(groups: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`np.lexsort((starts, groups))`, through one combined key when that is exact."""
    if len(starts):
        low = int(starts.min())
        span = (int(starts.max()) - low) // _MINUTE + 1
        # Appointment times are whole minutes in practice: then (group, minute) packs into one
        # int64 whose single sort is about twice as fast. NaT is the smallest int64, so `low`
        # excludes it.
        if (
            low != np.iinfo(np.int64).min
            and (int(groups.max()) + 1) * span < 2**62
            and not (starts % _MINUTE).any()
        ):
            return np.argsort(groups * span + (starts - low) // _MINUTE, kind="stable")
    return np.lexsort((starts, groups))


def _column(frame: pd.DataFrame, name: str, dtype: str | None = None) -> pd.Series:
    """An optional column as given, or an all-missing one (of `dtype`) when the frame lacks it."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(
        np.full(len(frame), _NAT if dtype else np.nan, dtype=dtype or object), index=frame.index
    )


def _datetimes(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), _NAT)
    return frame[name].to_numpy(dtype="datetime64[ns]")


def _days(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A date column floored to midnight (dates should already be; this keeps the rules exact)."""
    return _datetimes(frame, name).astype("datetime64[D]").astype("datetime64[ns]")


def _bools(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    column = frame[name]
    if column.dtype == bool:
        return column.to_numpy()
    if isinstance(column.dtype, pd.BooleanDtype):
        return column.fillna(False).to_numpy(dtype=bool)
    raise TypeError(f"column {name!r} must be boolean, got {column.dtype}")
