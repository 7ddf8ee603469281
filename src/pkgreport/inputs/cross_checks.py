"""Checks across files: cases, patients, invoices and allocations that must agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pkgreport.errors import Issue
from pkgreport.ids import IdSpace, RunIds
from pkgreport.inputs.validation_run import (
    SINGULAR,
    ValidationRun,
    drop_rows,
    shown_value,
    written_values,
)

_ONE_DAY = np.timedelta64(1, "D")


def check_across_files(
    run: ValidationRun, frames: dict[str, pd.DataFrame | None], ids: RunIds
) -> RunIds:
    """Every check between kinds, in order; `frames` loses the rows an error leaves out, and
    the id codes of `frames` (`ids`, which the checks look ids up by) are returned without them."""
    if frames["appointments"] is not None and frames["cases"] is not None:
        frames["appointments"], ids = _check_appointment_cases(
            run, frames["appointments"], frames["cases"], ids
        )
    if frames["patients"] is not None:
        for kind in ("invoices", "payments"):
            if frames[kind] is not None:
                frames[kind], ids = _check_patients_known(
                    run, kind, frames[kind], frames["patients"], ids
                )
    if frames["invoices"] is not None and frames["appointments"] is not None:
        _check_invoice_appointments(run, frames["invoices"], frames["appointments"], ids)
    if frames["invoices"] is not None:
        _check_invoice_dates(run, frames["invoices"])
    if frames["allocations"] is not None:
        frames["allocations"] = _check_allocations(
            run, frames["allocations"], frames["invoices"], frames["payments"]
        )
    return ids


def _found(space: IdSpace, kind: str, among: str) -> np.ndarray:
    """Each row of `kind`: the last row of `among` holding its id (-1 where blank or none does)."""
    return space.last_rows(among)[space.of(kind)]


def _find(frame: pd.DataFrame, key: str, ids: pd.Series | pd.Index) -> np.ndarray:
    """Each id's row position in `frame` (the last row holding it); -1 where blank or not there:
    for ids outside the run's id spaces (`pkgreport.ids`), which `_found` looks up by code.

    pyarrow looks the ids up by their bytes (a hash table over the frame's keys, built in C),
    about three times faster than pandas' table of Python strings; a column holding anything
    but text is looked up by pandas.
    """
    try:
        keys = pa.array(frame[key].to_numpy(dtype=object)[::-1], type=pa.string(), from_pandas=True)
        wanted = pa.array(np.asarray(ids, dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _find_by_pandas(frame, key, ids)
    # The keys reversed: pyarrow gives the first match, which is the frame's last row.
    found = pc.fill_null(pc.index_in(wanted, value_set=keys, skip_nulls=True), -1)
    at = found.to_numpy().astype(np.int64)
    return np.where(at >= 0, len(frame) - 1 - at, -1)


def _find_by_pandas(frame: pd.DataFrame, key: str, ids: pd.Series | pd.Index) -> np.ndarray:
    """`_find` by pandas' hash table: over the distinct ids wanted, the frame's keys looked up.

    A small table (the invoices a few thousand allocations name) answers a million lookups
    several times faster than a million-entry table is built, as `Series.map` would per call.
    """
    codes, wanted = pd.factorize(np.asarray(ids, dtype=object))
    found = pd.Index(wanted, dtype=object).get_indexer(frame[key].to_numpy(dtype=object))
    # One slot per distinct id, and a last one that code -1 (a blank id) picks.
    row_of = np.full(len(wanted) + 1, -1, dtype=np.int64)
    hits = np.flatnonzero(found >= 0)
    row_of[found[hits]] = hits
    return row_of[codes]


def _at(
    frame: pd.DataFrame,
    column: str,
    positions: np.ndarray,
    missing: object = np.nan,
    dtype: str | type | None = None,
) -> np.ndarray:
    """`frame[column]` at `positions`, with `missing` where the position is -1."""
    values = frame[column].to_numpy(dtype=dtype)
    # A one-value tail for position -1 to pick; also right when `frame` has no rows.
    tail = np.array([missing], dtype=values.dtype)
    return np.concatenate([values, tail])[positions]


def _files_of(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(set(frame["source_file"]))) or "no usable rows"


def _not_found(left_out: set[object], kind: str, ident: object, frame: pd.DataFrame) -> str:
    """Why an id another file refers to is not there: never exported, or left out for errors."""
    if ident in left_out:
        return (
            f"{ident} is the {SINGULAR[kind]} whose row was left out for the problems "
            f"reported on it: fix that row first"
        )
    return (
        f"{ident} is not in the {kind} export ({_files_of(frame)}): check the id, or export "
        f"that {SINGULAR[kind]} too"
    )


def _check_appointment_cases(
    run: ValidationRun, appointments: pd.DataFrame, cases: pd.DataFrame, ids: RunIds
) -> tuple[pd.DataFrame, RunIds]:
    """An appointment's case must exist and be its patient's (else the row is left out); an
    appointment outside its case's dates is a warning."""
    if not (ids.cases.of("appointments") >= 0).any():
        return appointments, ids
    appointments, case_at, ids = _without_foreign_cases(run, appointments, cases, ids)
    _warn_outside_case_dates(run, appointments, cases, case_at)
    return appointments, ids


def _without_foreign_cases(
    run: ValidationRun, appointments: pd.DataFrame, cases: pd.DataFrame, ids: RunIds
) -> tuple[pd.DataFrame, np.ndarray, RunIds]:
    """The appointments without those naming a case not exported or another patient's, each
    remaining row's case position in `cases` (-1 for none), and the id codes without them."""
    case_id = appointments["case_id"]
    has_case = ids.cases.of("appointments") >= 0
    case_at = _found(ids.cases, "appointments", "cases")
    owner = _at(cases, "patient_id", case_at)
    patient = appointments["patient_id"].to_numpy(dtype=object)
    unknown = has_case & (case_at < 0)
    other = has_case & ~unknown & (owner != patient)
    if other.any():
        # On a group appointment the case belongs to the attendee whose case it is.
        cleared = _not_the_owner(appointments, other, owner)
        if cleared.any():
            appointments = appointments.copy()
            appointments.loc[cleared, "case_id"] = np.nan
            ids = ids.cleared("cases", "appointments", cleared)
            case_id = appointments["case_id"]
            other &= ~cleared
            case_at = np.where(cleared, -1, case_at)
    left_out = run.excluded_ids("cases") if unknown.any() else set()
    by_row = dict(
        zip(
            np.flatnonzero(unknown),
            [_not_found(left_out, "cases", c, cases) for c in case_id[unknown]],
            strict=True,
        )
    )
    by_row |= dict(
        zip(
            np.flatnonzero(other),
            _other_patients_case(
                cases, case_id[other], owner[other], patient[other], case_at[other]
            ),
            strict=True,
        )
    )
    bad = unknown | other
    appointments = drop_rows(
        run,
        "appointments",
        appointments,
        bad,
        "case_id",
        case_id[bad].tolist(),
        [by_row[i] for i in np.flatnonzero(bad)],
    )
    return appointments, case_at[~bad], ids.kept("appointments", ~bad) if bad.any() else ids


def _other_patients_case(
    cases: pd.DataFrame,
    case_ids: pd.Series,
    owners: np.ndarray,
    patients: np.ndarray,
    case_at: np.ndarray,
) -> list[str]:
    """Why each appointment may not use the case: it is another patient's (named, with its row)."""
    where = cases["source_row"].to_numpy()[case_at]
    place = cases["source_file"].to_numpy()[case_at]
    return [
        f"{c} belongs to patient {o} ({f} row {r}) but this appointment is for "
        f"patient {p}: attach the appointment to one of patient {p}'s cases"
        for c, o, p, f, r in zip(case_ids, owners, patients, place, where, strict=True)
    ]


def _warn_outside_case_dates(
    run: ValidationRun, appointments: pd.DataFrame, cases: pd.DataFrame, case_at: np.ndarray
) -> None:
    """Appointments outside their case's dates stay (they count); the dates may be the mistake."""
    nat = np.datetime64("NaT", "ns")
    issued = _at(cases, "issue_date", case_at, nat, "datetime64[ns]")
    expires = _at(cases, "expiry_date", case_at, nat, "datetime64[ns]")
    starts = appointments["starts_at"].to_numpy()
    with np.errstate(invalid="ignore"):
        before = ~np.isnat(issued) & (starts < issued)
        after = ~np.isnat(expires) & (starts >= expires + _ONE_DAY)
    outside = before | after
    if not outside.any():
        return
    rows = appointments[outside]
    starts_written = written_values(run, "appointments", rows, "starts_at")
    messages = []
    for start, case, issue, expiry, early in zip(
        starts_written,
        rows["case_id"],
        pd.Series(issued[outside]),
        pd.Series(expires[outside]),
        before[outside],
        strict=True,
    ):
        when = (
            f"before case {case} was issued ({shown_value(issue)})"
            if early
            else f"after case {case} expired ({shown_value(expiry)})"
        )
        messages.append(
            f"{start} is {when}: check the appointment's case and date, "
            "or the case's issue and expiry dates"
        )
    run.row_issues("appointments", rows, "starts_at", starts_written, messages, severity="warning")


def _not_the_owner(
    appointments: pd.DataFrame,
    other: np.ndarray,
    owner: np.ndarray,
) -> np.ndarray:
    """Rows of `other` (case owned by another patient) where that owner attends the same
    appointment: a group appointment, whose case is the owner's and not this attendee's."""
    ident = appointments["appointment_id"].to_numpy(dtype=object)
    at = np.flatnonzero(other)
    # Only the appointments in question: the pairs of a million rows would cost a second.
    same = appointments[appointments["appointment_id"].isin(set(ident[at])).to_numpy()]
    pairs = set(zip(same["appointment_id"], same["patient_id"], strict=True))
    cleared = np.zeros(len(appointments), dtype=bool)
    cleared[at] = [(ident[i], owner[i]) in pairs for i in at]
    return cleared


def _check_invoice_dates(run: ValidationRun, invoices: pd.DataFrame) -> None:
    """An invoice closed before it was issued is a warning naming both dates."""
    closed = invoices["closed_at"].to_numpy()
    with np.errstate(invalid="ignore"):
        early = ~np.isnat(closed) & (closed < invoices["issue_date"].to_numpy())
    if not early.any():
        return
    rows = invoices[early]
    closed_written = written_values(run, "invoices", rows, "closed_at")
    messages = [
        f"{c} is before the invoice's {run.header('invoices', f, 'issue_date')} "
        f"{i}: check both dates in Cliniko (pkgreport uses them as they are)"
        for c, i, f in zip(
            closed_written,
            written_values(run, "invoices", rows, "issue_date"),
            rows["source_file"],
            strict=True,
        )
    ]
    run.row_issues("invoices", rows, "closed_at", closed_written, messages, severity="warning")


def _check_allocations(
    run: ValidationRun,
    allocations: pd.DataFrame,
    invoices: pd.DataFrame | None,
    payments: pd.DataFrame | None,
) -> pd.DataFrame:
    if invoices is None:
        for file in sorted(set(allocations["source_file"])):
            run.issues.append(
                Issue(
                    "warning",
                    file,
                    None,
                    None,
                    None,
                    "allocations cannot be checked or used without the invoices they pay: add the "
                    "invoices export to the input folder",
                )
            )
        return allocations
    invoice_id = allocations["invoice_id"]
    invoice_at = _find(invoices, "invoice_id", invoice_id)
    unknown = invoice_at < 0
    left_out = run.excluded_ids("invoices") if unknown.any() else set()
    allocations = drop_rows(
        run,
        "allocations",
        allocations,
        unknown,
        "invoice_id",
        invoice_id[unknown].tolist(),
        [_not_found(left_out, "invoices", i, invoices) for i in invoice_id[unknown]],
    )
    invoice_at = invoice_at[~unknown]
    allocations["patient_id"] = pd.Series(
        _at(invoices, "patient_id", invoice_at), index=allocations.index, dtype=object
    )
    if payments is not None:
        payment_id = allocations["payment_id"]
        has_payment = payment_id.notna().to_numpy()
        payer = _at(payments, "patient_id", _find(payments, "payment_id", payment_id))
        missing = has_payment & pd.isna(payer)
        gone = run.excluded_ids("payments") if missing.any() else set()
        allocations = drop_rows(
            run,
            "allocations",
            allocations,
            missing,
            "payment_id",
            payment_id[missing].tolist(),
            [
                _not_found(gone, "payments", payment_id.iloc[i], payments)
                for i in np.flatnonzero(missing)
            ],
        )
    return _set_aside_inconsistent(run, allocations, invoices, payments)


def _set_aside_inconsistent(
    run: ValidationRun,
    allocations: pd.DataFrame,
    invoices: pd.DataFrame,
    payments: pd.DataFrame | None,
) -> pd.DataFrame:
    """Take out the allocations the engine cannot apply but can account for (findings, not errors).

    An allocation from one patient's payment to another patient's invoice, or to an invoice
    deleted or archived, is not applied: the money stays with the payer. Each goes to
    `run.set_aside` with both records named; over-allocation stays in (the credit engine keeps
    the excess and reports OVER_ALLOCATED_INVOICE).
    """
    invoice_at = _find(invoices, "invoice_id", allocations["invoice_id"])
    payment_at = (
        _find(payments, "payment_id", allocations["payment_id"])
        if payments is not None
        else np.full(len(allocations), -1)
    )
    payer = (
        _at(payments, "patient_id", payment_at)
        if payments is not None
        else np.full(len(allocations), np.nan, dtype=object)
    )
    invoice_patient = allocations["patient_id"].to_numpy(dtype=object)
    other_patient = ~pd.isna(payer) & (payer != invoice_patient)
    gone = np.zeros(len(allocations), dtype=bool)
    for column in ("deleted_at", "archived_at"):
        if column in invoices.columns:
            gone |= ~pd.isna(_at(invoices, column, invoice_at, missing=np.datetime64("NaT")))
    reason = np.where(
        other_patient,
        "ALLOCATION_OTHER_PATIENT",
        np.where(gone, "ALLOCATION_TO_DELETED_INVOICE", ""),
    )
    aside = reason != ""
    if not aside.any():
        return allocations
    rows = allocations.loc[aside].copy()
    rows["code"] = reason[aside]
    rows["invoice_patient_id"] = invoice_patient[aside]
    # The money stays with whoever paid it: the payment's patient, else the invoice's.
    rows["patient_id"] = np.where(pd.isna(payer[aside]), invoice_patient[aside], payer[aside])
    rows["invoice_place"] = _row_places(invoices, invoice_at[aside])
    rows["payment_place"] = (
        _row_places(payments, payment_at[aside]) if payments is not None else None
    )
    gone_at = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    for column in ("archived_at", "deleted_at"):
        if column in invoices.columns:
            when = pd.Series(
                _at(invoices, column, invoice_at[aside], missing=np.datetime64("NaT")),
                index=rows.index,
                dtype="datetime64[ns]",
            )
            gone_at = when.where(when.notna(), gone_at)
    rows["invoice_gone_at"] = gone_at
    run.set_aside.append(rows.reset_index(drop=True))
    return allocations.loc[~aside].reset_index(drop=True)


def _row_places(frame: pd.DataFrame, positions: np.ndarray) -> list[str | None]:
    """'file row N' of each position in `frame` (None where -1)."""
    files = _at(frame, "source_file", positions, missing=None)
    rows = _at(frame, "source_row", positions, missing=-1, dtype=object)
    return [None if f is None else f"{f} row {r}" for f, r in zip(files, rows, strict=True)]


def _check_patients_known(
    run: ValidationRun, kind: str, frame: pd.DataFrame, patients: pd.DataFrame, ids: RunIds
) -> tuple[pd.DataFrame, RunIds]:
    """Rows of a patient the patients export does not have are errors, and are left out.

    Money on a mis-keyed id (`1000"232`) would sit with a patient the clinic does not have,
    and be missing from the real patient's credit, with no sign in any figure: so it is an
    error, not a warning. Without a patients export there is nothing to check against.
    """
    codes = ids.patients.of(kind)
    unknown = (codes >= 0) & ~ids.patients.present("patients")[codes]
    if not unknown.any():
        return frame, ids
    patient_id = frame["patient_id"]
    left_out = run.excluded_ids("patients")
    frame = drop_rows(
        run,
        kind,
        frame,
        unknown,
        "patient_id",
        patient_id[unknown].tolist(),
        [_not_found(left_out, "patients", i, patients) for i in patient_id[unknown]],
    )
    return frame, ids.kept(kind, ~unknown)


def _check_invoice_appointments(
    run: ValidationRun, invoices: pd.DataFrame, appointments: pd.DataFrame, ids: RunIds
) -> None:
    """A warning for each invoice whose appointment is another patient's (only).

    The money stays with the invoice's patient, so no figure moves; but the link ties the
    invoice to someone else's session (and package), which is almost always a slip.
    """
    appointment_id = invoices["appointment_id"]
    at = _found(ids.appointments, "invoices", "appointments")
    patient = invoices["patient_id"].to_numpy(dtype=object)
    other = (at >= 0) & (_at(appointments, "patient_id", at) != patient)
    if not other.any():
        return
    # The few suspects are checked against every row of their appointment, in case one
    # appointment is listed once per patient (a group booking).
    suspects = set(appointment_id[other])
    group = appointments[appointments["appointment_id"].isin(suspects)]
    attends = set(zip(group["appointment_id"], group["patient_id"], strict=True))
    for i in np.flatnonzero(other):
        other[i] = (appointment_id.iat[i], patient[i]) not in attends
    rows = invoices[other]
    first = appointments.iloc[at[other]]
    messages = [
        f"{a} is patient {o}'s appointment ({f} row {r}), but this invoice is patient {p}'s: "
        "check the invoice's appointment or patient"
        for a, o, f, r, p in zip(
            rows["appointment_id"],
            first["patient_id"],
            first["source_file"],
            first["source_row"],
            rows["patient_id"],
            strict=True,
        )
    ]
    run.row_issues(
        "invoices",
        rows,
        "appointment_id",
        rows["appointment_id"].tolist(),
        messages,
        severity="warning",
    )
