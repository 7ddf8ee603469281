"""Case tally: count each package case's sessions, number them, and flag what needs a look."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import (
    end_of_day,
    factorize_exact,
    run_starts,
    text_ranks,
)
from pkgreport.engine.findings import FINDINGS, SEVERITY_RANK, empty_findings, make_findings

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
    """
    if isinstance(as_of, datetime):  # a Timestamp or datetime: only its calendar day matters
        as_of = as_of.date()
    _check_cases(cases)
    cs, patient_group = _sorted_cases(cases)
    attached = _attached_appointments(appointments, cs, end_of_day(as_of))
    per_case = _per_case(cs, attached, as_of)
    patient_names = _patient_names(cs, appointments, attached.every_start, attached.every_id)
    t = _tally(cs, patient_group, patient_names, attached, per_case)
    parts, codes = _run_rules(t, nearly_used_up)
    return CaseTally(
        cases=_case_table(cs, patient_names, per_case, codes),
        appointments=_appointment_table(appointments, attached),
        findings=_concat_sorted(parts),
    )


def _tally(
    cs: pd.DataFrame,
    patient_group: np.ndarray,
    patient_names: np.ndarray,
    attached: _Attached,
    per_case: _PerCase,
) -> _Tally:
    return _Tally(
        cs=cs,
        patient_group=patient_group,
        labels=_CaseText(cs, patient_names),
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
    appointments: pd.DataFrame, cs: pd.DataFrame, day_end: np.datetime64
) -> _Attached:
    """Which attached appointments count, and their numbers within each case."""
    case_ids = cs["case_id"].to_numpy(dtype=object)
    if "case_id" in appointments.columns:
        appointment_case_ids = appointments["case_id"].to_numpy(dtype=object)
    else:
        appointment_case_ids = np.full(len(appointments), np.nan, dtype=object)
    every_pos = _case_positions(case_ids, appointment_case_ids)
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
        every_start, every_id, rows, pos, starts, live, cancelled, dna, counted,
        starts < day_end, reason, number, over_booked,
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


def _run_rules(t: _Tally, nearly_used_up: int) -> tuple[list[pd.DataFrame | None], np.ndarray]:
    """Every finding rule in order: the findings frames and each case's codes joined by ', '."""
    parts: list[pd.DataFrame | None] = []
    codes = np.full(len(t.cs), "", dtype=object)
    for rule in (
        _over_booked,
        _booked_after_close,
        _expired_with_sessions_left,
        _outside_case_dates,
        _reported_remaining_mismatch,
        partial(_nearly_used_up, nearly_used_up=nearly_used_up),
        _several_open_packages,
        _used_up_still_coming,  # combine_findings order: severity, then code alphabetically
    ):
        code, flagged, frame = rule(t)
        parts.append(frame)
        hit = np.flatnonzero(flagged)
        codes[hit] = np.where(codes[hit] == "", code, codes[hit] + ", " + code)
    return parts, codes


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
        }
    )


def _appointment_table(appointments: pd.DataFrame, a: _Attached) -> pd.DataFrame:
    kept = ["appointment_id", "case_id", "patient_id", "starts_at", "source_file", "source_row"]
    picked = appointments[[c for c in kept if c in appointments.columns]]
    picked = picked.take(a.rows).reset_index(drop=True)
    return pd.DataFrame(
        {
            "appointment_id": picked["appointment_id"],
            # Without a case_id column nothing is attached, so this is empty.
            "case_id": _column(picked, "case_id"),
            "patient_id": picked["patient_id"],
            "starts_at": picked["starts_at"],
            "number": pd.arrays.IntegerArray(a.number.astype(np.int64), ~a.counted),
            "counted": a.counted,
            "reason": np.asarray(REASONS, dtype=object)[a.reason],
            "timing": np.asarray(TIMINGS, dtype=object)[(~a.past).astype(np.intp)],
            "over_booked": a.over_booked,
            "source_file": picked["source_file"],
            "source_row": picked["source_row"],
        }
    )


class _CaseText:
    """How messages name a case and a patient."""

    def __init__(self, cs: pd.DataFrame, patient_names: np.ndarray) -> None:
        self._case_ids = cs["case_id"].to_numpy(dtype=object)
        self._case_names = _column(cs, "case_name").to_numpy(dtype=object)
        self._patient_ids = cs["patient_id"].to_numpy(dtype=object)
        self._patient_names = patient_names

    def case(self, idx: np.ndarray) -> np.ndarray:
        return _with_name("Case " + self._case_ids[idx], self._case_names[idx])

    def patient(self, idx: np.ndarray) -> np.ndarray:
        return _with_name(self._patient_ids[idx], self._patient_names[idx])


@dataclass(frozen=True)
class _Tally:
    """The tally's arrays the finding rules read: cases in output order, attached rows sorted."""

    cs: pd.DataFrame
    labels: _CaseText
    # Per attached appointment, in output order.
    pos: np.ndarray
    ids: np.ndarray
    starts: np.ndarray
    counted: np.ndarray
    over_booked: np.ndarray
    # Per case, in output order; patient_group numbers the patients 0, 1, ... in that order.
    patient_group: np.ndarray
    maximum: np.ndarray
    limited: np.ndarray
    n_counted: np.ndarray
    n_upcoming: np.ndarray
    remaining: np.ndarray
    over_by: np.ndarray
    status: np.ndarray
    issue_day: np.ndarray
    expiry_day: np.ndarray
    closed_at: np.ndarray


# Each rule returns (code, per-case flag for the `findings` column, findings frame or None).
_Rule = tuple[str, np.ndarray, "pd.DataFrame | None"]


def _over_booked(t: _Tally) -> _Rule:
    groups, joined = _join_by_group(t.pos[t.over_booked], t.ids[t.over_booked])
    message = (
        t.labels.case(groups)
        + " has "
        + _text(t.n_counted[groups])
        + " appointments counted against a maximum of "
        + _text(t.maximum[groups])
        + ": move the "
        + _text(t.over_by[groups])
        + _plural(t.over_by[groups], " appointment", " appointments")
        + " numbered above the maximum to a new package, or correct the case's maximum."
    )
    return (
        "OVER_BOOKED",
        t.over_by > 0,
        _case_findings("OVER_BOOKED", t.cs, groups, message, joined),
    )


def _booked_after_close(t: _Tally) -> _Rule:
    closed_at = t.closed_at[t.pos]
    late = t.counted & ~np.isnat(closed_at) & (t.starts > closed_at)
    groups, joined = _join_by_group(t.pos[late], t.ids[late])
    n = np.bincount(t.pos[late], minlength=len(t.cs))[groups]
    message = (
        t.labels.case(groups)
        + " was closed on "
        + _minute_text(t.closed_at[groups])
        + " but "
        + _text(n)
        + _plural(n, " counted appointment starts", " counted appointments start")
        + " after that: reopen the case, or move "
        + _plural(n, "that appointment", "those appointments")
        + " to an open package."
    )
    return (
        "BOOKED_AFTER_CLOSE",
        _mask(len(t.cs), groups),
        _case_findings("BOOKED_AFTER_CLOSE", t.cs, groups, message, joined),
    )


def _expired_with_sessions_left(t: _Tally) -> _Rule:
    flagged = (t.status == "expired") & t.limited & (t.remaining > 0)
    groups = np.flatnonzero(flagged)
    message = (
        t.labels.case(groups)
        + " expired on "
        + _day_text(t.expiry_day[groups])
        + " with "
        + _text(t.remaining[groups])
        + " of "
        + _text(t.maximum[groups])
        + _plural(t.maximum[groups], " session unused", " sessions unused")
        + ": extend the expiry date, refund the patient, or record the unused value as breakage."
    )
    return (
        "EXPIRED_WITH_SESSIONS_LEFT",
        flagged,
        _case_findings("EXPIRED_WITH_SESSIONS_LEFT", t.cs, groups, message, None),
    )


def _outside_case_dates(t: _Tally) -> _Rule:
    issue = t.issue_day[t.pos]
    # Valid through the whole expiry day: outside means starting at or after the next midnight.
    expiry_end = t.expiry_day[t.pos] + np.timedelta64(1, "D")
    outside = t.counted & (
        (~np.isnat(issue) & (t.starts < issue)) | (~np.isnat(expiry_end) & (t.starts >= expiry_end))
    )
    groups, joined = _join_by_group(t.pos[outside], t.ids[outside])
    n = np.bincount(t.pos[outside], minlength=len(t.cs))[groups]
    message = (
        t.labels.case(groups)
        + " has "
        + _text(n)
        + _plural(n, " counted appointment", " counted appointments")
        + " outside its dates ("
        + _date_range_text(t.issue_day[groups], t.expiry_day[groups])
        + "): check "
        + _plural(n, "it belongs", "they belong")
        + " to this case, or correct the case's issue or expiry date."
    )
    return (
        "OUTSIDE_CASE_DATES",
        _mask(len(t.cs), groups),
        _case_findings("OUTSIDE_CASE_DATES", t.cs, groups, message, joined),
    )


def _reported_remaining_mismatch(t: _Tally) -> _Rule:
    """A limited case whose system's own remaining figure (`reported_remaining`) differs."""
    reported = t.cs.get("reported_remaining")
    if reported is None:
        return "REPORTED_REMAINING_MISMATCH", np.zeros(len(t.cs), dtype=bool), None
    known = reported.notna().to_numpy(dtype=bool)
    figure = reported.fillna(0).to_numpy(dtype=np.int64)
    flagged = t.limited & known & (figure != t.remaining)
    groups = np.flatnonzero(flagged)
    message = (
        t.labels.case(groups)
        + ": the practice system reports "
        + _text(figure[groups])
        + " of "
        + _text(t.maximum[groups])
        + " sessions remaining but the exports add up to "
        + _text(t.remaining[groups])
        + ": check for appointments missing from the export or attached to another case."
    )
    return (
        "REPORTED_REMAINING_MISMATCH",
        flagged,
        _case_findings("REPORTED_REMAINING_MISMATCH", t.cs, groups, message, None),
    )


def _active_per_patient(t: _Tally) -> tuple[np.ndarray, np.ndarray]:
    """(active, number of active cases of the case's patient) per case."""
    active = t.status == "active"
    per_patient = np.bincount(t.patient_group[active], minlength=len(t.cs))[t.patient_group]
    return active, per_patient


def _nearly_used_up(t: _Tally, nearly_used_up: int) -> _Rule:
    """An active package with 1..`nearly_used_up` sessions left, whatever else the patient holds."""
    flagged = (
        t.limited & (t.status == "active") & (t.remaining > 0) & (t.remaining <= nearly_used_up)
    )
    groups = np.flatnonzero(flagged)
    message = (
        t.labels.case(groups)
        + " has "
        + _text(t.remaining[groups])
        + " of "
        + _text(t.maximum[groups])
        + _plural(t.maximum[groups], " session left (", " sessions left (")
        + _text(t.n_upcoming[groups])
        + " booked ahead): offer the patient the next package."
    )
    return (
        "NEARLY_USED_UP",
        flagged,
        _case_findings("NEARLY_USED_UP", t.cs, groups, message, None),
    )


def _used_up_still_coming(t: _Tally) -> _Rule:
    """A used-up package with sessions still booked: its last visits are the moment to sell.

    A used-up package with nothing booked is finished and not flagged, so old packages do not
    stay flagged forever.
    """
    flagged = t.limited & (t.status == "used up") & (t.n_upcoming > 0)
    groups = np.flatnonzero(flagged)
    message = (
        t.labels.case(groups)
        + " has no sessions left ("
        + _text(t.n_counted[groups])
        + " of "
        + _text(t.maximum[groups])
        + " used or booked, "
        + _text(t.n_upcoming[groups])
        + " still to come): offer the patient the next package at their next visit."
    )
    return (
        "USED_UP_STILL_BOOKED",
        flagged,
        _case_findings("USED_UP_STILL_BOOKED", t.cs, groups, message, None),
    )


def _several_open_packages(t: _Tally) -> _Rule:
    active, per_patient = _active_per_patient(t)
    flagged = active & (per_patient > 1)
    # One finding per patient, on the row of the patient's first open case.
    listed = np.flatnonzero(flagged)
    group = t.patient_group[listed]
    _, joined = _join_by_group(group, t.cs["case_id"].to_numpy(dtype=object)[listed])
    first = listed[run_starts(group)]
    if len(first) == 0:
        return "SEVERAL_OPEN_PACKAGES", flagged, None
    subjects = t.cs.iloc[first]
    message = (
        "Patient "
        + t.labels.patient(first)
        + " has "
        + _text(per_patient[first])
        + " open packages ("
        + joined
        + "): use up the oldest first and check each appointment is attached to the right case."
    )
    frame = make_findings(
        "SEVERAL_OPEN_PACKAGES",
        subjects,
        pd.Series(message, index=subjects.index, dtype=object),
        subject_type="patient",
        subject_id="patient_id",
    )
    return "SEVERAL_OPEN_PACKAGES", flagged, frame


def _concat_sorted(parts: list[pd.DataFrame | None]) -> pd.DataFrame:
    """The findings in `combine_findings` order without its sort.

    Parts come in CASE_FINDING_CODES order (severity, then code) and each part's subjects in
    (patient_id, case_id) order, which is exactly how combine_findings sorts; re-sorting
    200,000 rows by text costs a second. The tests check the two agree.
    """
    frames = [p for p in parts if p is not None and not p.empty]
    if not frames:
        return empty_findings()
    return pd.concat(frames, ignore_index=True)


def _with_name(text: np.ndarray, names: np.ndarray) -> np.ndarray:
    out = np.asarray(text, dtype=object).copy()
    named = ~pd.isna(names)
    out[named] = out[named] + " (" + names[named].astype(str).astype(object) + ")"
    return out


def _case_findings(
    code: str,
    cs: pd.DataFrame,
    idx: np.ndarray,
    message: np.ndarray,
    appointment_ids: np.ndarray | None,
) -> pd.DataFrame | None:
    if len(idx) == 0:  # building an empty findings frame costs more than a small tally
        return None
    subjects = cs.iloc[idx]
    return make_findings(
        code,
        subjects,
        pd.Series(message, index=subjects.index, dtype=object),
        subject_type="case",
        subject_id="case_id",
        appointment_ids=(
            None
            if appointment_ids is None
            else pd.Series(appointment_ids, index=subjects.index, dtype=object)
        ),
    )


def _sorted_cases(cases: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The cases ordered by (patient_id, case_id) with a fresh RangeIndex, and each one's
    patient group (0, 1, ... numbering the patients in that order)."""
    patient_rank = text_ranks(cases["patient_id"].to_numpy(dtype=object))
    order = np.lexsort(
        (text_ranks(cases["case_id"].to_numpy(dtype=object), unique=True), patient_rank)
    )
    out = cases.take(order).reset_index(drop=True)
    out["max_sessions"] = pd.array(_column(out, "max_sessions"), dtype="Int64")
    # Ranks are dense, so a patient's rank is already its group number.
    return out, patient_rank[order]


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


def _case_positions(case_ids: np.ndarray, appointment_case_ids: np.ndarray) -> np.ndarray:
    """Position in `case_ids` of each appointment's case, -1 when unattached or unknown."""
    m = len(case_ids)
    codes, _ = factorize_exact(np.concatenate([case_ids, appointment_case_ids]))
    # Codes follow first appearance, so unique case ids listed first get exactly 0..m-1.
    if not np.array_equal(codes[:m], np.arange(m)):
        raise ValueError("cases.case_id must be present and unique (validation guarantees it)")
    positions = codes[m:]
    return np.where(positions < m, positions, -1).astype(np.int64)


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


def _mask(size: int, idx: np.ndarray) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    out[idx] = True
    return out


def _join_by_group(groups: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by group: each group and its ids joined with ', ' (in row order)."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    firsts = run_starts(groups)
    last = np.append(groups[1:] != groups[:-1], True)
    pieces = np.asarray(ids, dtype=object).copy()
    pieces[~last] = pieces[~last] + ", "
    # add.reduceat on objects concatenates the strings of each run in C.
    return groups[firsts], np.add.reduceat(pieces, firsts)


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


def _text(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).astype(str).astype(object)


def _plural(counts: np.ndarray, one: str, many: str) -> np.ndarray:
    return np.where(np.asarray(counts) == 1, one, many).astype(object)


def _day_text(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days, unit="D").astype(object)


def _minute_text(stamps: np.ndarray) -> np.ndarray:
    if len(stamps) == 0:  # np.char.replace cannot size an empty result
        return np.zeros(0, dtype=object)
    return np.char.replace(np.datetime_as_string(stamps, unit="m"), "T", " ").astype(object)


def _date_range_text(issue: np.ndarray, expiry: np.ndarray) -> np.ndarray:
    has_issue = ~np.isnat(issue)
    has_expiry = ~np.isnat(expiry)
    issued = _day_text(issue)
    expires = _day_text(expiry)
    out = np.where(has_issue, "valid from " + issued, "valid")
    out[has_expiry] = out[has_expiry] + np.where(has_issue[has_expiry], " to ", " until ")
    out[has_expiry] = out[has_expiry] + expires[has_expiry]
    return out.astype(object)
