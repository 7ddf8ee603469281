"""Case findings: one rule per finding code over a case tally's arrays (`engine.cases`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import run_starts
from pkgreport.engine.findings import empty_findings, make_findings


class CaseText:
    """How messages name a case and a patient."""

    def __init__(self, cs: pd.DataFrame, case_names: np.ndarray, patient_names: np.ndarray) -> None:
        self._case_ids = cs["case_id"].to_numpy(dtype=object)
        self._case_names = case_names
        self._patient_ids = cs["patient_id"].to_numpy(dtype=object)
        self._patient_names = patient_names

    def case(self, idx: np.ndarray) -> np.ndarray:
        return _with_name("Case " + self._case_ids[idx], self._case_names[idx])

    def patient(self, idx: np.ndarray) -> np.ndarray:
        return _with_name(self._patient_ids[idx], self._patient_names[idx])


@dataclass(frozen=True)
class Tally:
    """The tally's arrays the finding rules read: cases in output order, attached rows sorted."""

    cs: pd.DataFrame
    labels: CaseText
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


def run_rules(t: Tally, nearly_used_up: int) -> tuple[list[pd.DataFrame | None], np.ndarray]:
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


def _over_booked(t: Tally) -> _Rule:
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


def _booked_after_close(t: Tally) -> _Rule:
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


def _expired_with_sessions_left(t: Tally) -> _Rule:
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


def _outside_case_dates(t: Tally) -> _Rule:
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


def _reported_remaining_mismatch(t: Tally) -> _Rule:
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


def _active_per_patient(t: Tally) -> tuple[np.ndarray, np.ndarray]:
    """(active, number of active cases of the case's patient) per case."""
    active = t.status == "active"
    per_patient = np.bincount(t.patient_group[active], minlength=len(t.cs))[t.patient_group]
    return active, per_patient


def _nearly_used_up(t: Tally, nearly_used_up: int) -> _Rule:
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


def _used_up_still_coming(t: Tally) -> _Rule:
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


def _several_open_packages(t: Tally) -> _Rule:
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


def concat_sorted(parts: list[pd.DataFrame | None]) -> pd.DataFrame:
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
