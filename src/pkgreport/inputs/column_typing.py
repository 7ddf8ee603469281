"""One table's headers matched to pkgreport's columns and its text typed, row by row."""

from __future__ import annotations

import dataclasses
import difflib

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs import dates, parsing
from pkgreport.inputs.mapping import alias_lookup
from pkgreport.inputs.mapping_transforms import apply_mapping
from pkgreport.inputs.schemas import (
    CHECK_MESSAGES,
    COLUMNS,
    DERIVED,
    KNOWN_UNUSED,
    PROVENANCE,
    ColumnSpec,
    normalise_header,
    typed_columns,
)
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation_run import MAX_PLACES, SINGULAR, ValidationRun, drop_rows
from pkgreport.money import format_dollars


def _map_headers(
    run: ValidationRun, kind: str, file: str, headers: list[str], user: dict[str, str]
) -> dict[str, str] | None:
    """canonical -> header as written (`user`: the mapping's renames), or None when a required
    column is missing."""
    user_normal = {normalise_header(k): v for k, v in user.items()}
    lookup = alias_lookup(kind)
    unused = {normalise_header(h) for h in KNOWN_UNUSED.get(kind, ())}
    found: dict[str, list[str]] = {}
    unknown: list[str] = []
    for header in headers:
        canonical = user.get(header, user_normal.get(normalise_header(header)))
        if canonical is None:
            canonical = lookup.get(normalise_header(header))
        if canonical is None and normalise_header(header) in unused:
            continue
        if not canonical:
            unknown.append(header)
        else:
            found.setdefault(canonical, []).append(header)
    for canonical, written in found.items():
        if len(written) > 1:
            names = " and ".join(repr(h) for h in written)
            run.issues.append(
                Issue(
                    "error",
                    file,
                    None,
                    written[1],
                    None,
                    f"columns {names} both mean {canonical}: delete or rename one of them, or tell "
                    f"pkgreport which to ignore with --columns FILE containing [{kind}] "
                    f'"{written[1]}" = ""',
                )
            )
    mapping = {canonical: written[0] for canonical, written in found.items()}
    usable = True
    for spec in COLUMNS[kind]:
        if spec.required and spec.name not in mapping:
            usable = False
            run.issues.append(
                Issue(
                    "error",
                    file,
                    None,
                    spec.name,
                    None,
                    _missing_message(kind, spec, headers, unknown),
                )
            )
    if unknown and usable:
        run.issues.append(
            Issue(
                "info",
                file,
                None,
                None,
                None,
                f"ignored columns pkgreport does not use: {', '.join(unknown)}",
            )
        )
    return mapping if usable else None


def _missing_message(kind: str, spec: ColumnSpec, headers: list[str], unknown: list[str]) -> str:
    # Only a header pkgreport does not know is offered: one it maps to another column (Invoice
    # Number) or knows to mean something else (Sub-Total Amount, the total before tax) is not.
    normal = {normalise_header(h): h for h in unknown}
    close = (
        difflib.get_close_matches(normalise_header(spec.name), list(normal), n=1, cutoff=0.5)
        or [
            m
            for alias in spec.aliases
            for m in difflib.get_close_matches(
                normalise_header(alias), list(normal), n=1, cutoff=0.6
            )
        ][:1]
    )
    closest = normal[close[0]] if close else None
    also = f" (or {', '.join(spec.aliases)})" if spec.aliases else ""
    text = (
        f"the {kind} export has no {spec.name} column, which is required. Columns found: "
        f"{', '.join(headers) if headers else '(none)'}."
    )
    if closest:
        text += f" The closest is {closest!r}."
    example = closest or "Your header"
    text += (
        f" Rename the column to {spec.name}{also}, or map it with --columns FILE containing "
        f'[{kind}] "{example}" = "{spec.name}".'
    )
    return text


def _parse(spec: ColumnSpec, text: pd.Series, settings: Settings) -> parsing.Parsed:
    kind = spec.type
    if kind in ("id", "text"):
        return parsing.parse_text(text)
    if kind == "money":
        parsed = parsing.parse_money(text)
        if spec.default is not None:  # a blank cell of an exported column means the default
            parsed.values[parsed.blank] = int(spec.default)  # type: ignore[call-overload]
        return _within_max_amount(parsed, settings.max_amount)
    if kind == "count":
        return parsing.parse_count(text, minimum=spec.minimum)
    if kind == "bool":
        return parsing.parse_bools(text, default=bool(spec.default))
    if kind == "status":
        return parsing.parse_status(text)
    if kind == "source":
        return parsing.parse_source(text)
    return dates.parse_datetimes(
        text,
        date_order=settings.date_order,
        timezone=settings.timezone,
        min_date=settings.min_date,
        max_date=settings.max_date,
        date_only=kind == "date",
    )


def _within_max_amount(parsed: parsing.Parsed, max_amount: int) -> parsing.Parsed:
    """Refuse amounts above the `max_amount` setting (whole dollars): a figure is right or refused."""
    # Parsed amounts have at most 15 digits of dollars, so their absolute value fits int64.
    over = np.abs(parsed.values.to_numpy(dtype=np.int64, na_value=0)) > max_amount * 100
    if not over.any():
        return parsed
    message = (
        f"is larger than the largest amount one row may hold "
        f"({format_dollars(max_amount * 100)}, the max_amount setting): check the column "
        "holds money, or raise max_amount in the config file"
    )
    values = parsed.values.copy()
    values[over] = pd.NA
    errors = pd.concat(
        [parsed.errors, pd.Series(message, index=parsed.values.index[over], dtype=object)]
    ).sort_index()
    return dataclasses.replace(parsed, values=values, bad=parsed.bad | over, errors=errors)


def _absent(spec: ColumnSpec, dtype: str, n: int) -> pd.Series:
    """A column the file does not have: all missing (or the column's default)."""
    if dtype == "bool":
        return pd.Series(np.full(n, bool(spec.default)), dtype=bool)
    if dtype.startswith("datetime64"):
        return pd.Series(np.full(n, np.datetime64("NaT", "ns")))
    if dtype == "Int64":
        missing = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
        return pd.Series(missing)
    return pd.Series(np.full(n, np.nan, dtype=object), dtype=object)


def with_provenance(table: RawTable) -> pd.DataFrame:
    frame = table.frame.reset_index(drop=True)
    if "source_file" not in frame:
        frame = frame.assign(source_file=table.file.name)
    if "source_row" not in frame:
        frame = frame.assign(source_row=np.arange(2, len(frame) + 2, dtype=np.int64))
    return frame


def type_table(run: ValidationRun, kind: str, table: RawTable) -> pd.DataFrame | None:
    """One file's rows -> its typed frame (rows with errors removed), or None if unusable."""
    file = table.file.name
    run.cells[file] = table.frame  # the loader's own frame: no copy is kept
    applied = apply_mapping(kind, run.mapping.kind(kind), with_provenance(table), file)
    run.issues.extend(applied.issues)
    if not applied.usable:
        run.exclude(kind, provenance(applied.frame), "the mapping names a column the file lacks")
        return None
    run.exclude(kind, applied.left_out, applied.reasons)
    frame = applied.frame
    # Headers are matched and shown as text; `label` finds the column again whatever its type.
    label = {str(c): c for c in frame.columns if c not in PROVENANCE}
    mapping = _map_headers(run, kind, file, list(label), applied.renames)
    if mapping is None:
        run.exclude(kind, provenance(frame), "the file is missing a required column")
        return None
    run.headers[(kind, file)] = mapping
    columns = {name: frame[label[header]] for name, header in mapping.items()}
    if _refuse_rounded_ids(run, kind, file, columns, table.may_hold_scientific):
        run.exclude(kind, provenance(frame), "a spreadsheet program rounded the file's ids")
        return None
    parsed: dict[str, parsing.Parsed] = {}
    unbooked = np.zeros(len(frame), dtype=bool)
    if kind == "appointments":
        # Parsed once: its blanks find the rows with no patient, reported before anything else;
        # they are typed with the rest, but their values are never reported or taken.
        parsed["patient_id"] = parsing.parse_text(columns["patient_id"])
        unbooked = _unbooked(run, file, frame, columns, parsed["patient_id"].blank)
    typed, left_out = _parse_columns(run, kind, provenance(frame), columns, parsed, unbooked)
    # The rows kept are chosen first and taken once: rows with no patient or with a problem
    # left out and, for appointments, a group appointment's row repeated for each patient.
    rows = np.flatnonzero(~left_out) if left_out.any() else None
    patient_ids = None
    if kind == "appointments":
        split = _one_row_per_attendee(run, typed, columns["patient_id"], left_out)
        if split is not None:
            rows, patient_ids = split
    typed = _typed_rows(kind, typed, rows)
    if patient_ids is not None:
        typed["patient_id"] = patient_ids
    if kind == "invoices" and "original_invoice_id" in mapping:
        typed = _check_credit_notes(run, typed)
    if kind == "patients" and "patient_name" not in mapping:
        typed["patient_name"] = _joined_names(typed["first_name"], typed["last_name"])
    return typed


def _check_credit_notes(run: ValidationRun, invoices: pd.DataFrame) -> pd.DataFrame:
    """Only a credit note, which names the invoice it credits, may have a negative total.

    Applied only to a file with a column for that name: Cliniko's invoices export has none, so
    there a negative invoice is a credit note as it stands.
    """
    uncredited = ((invoices["total"] < 0) & invoices["original_invoice_id"].isna()).to_numpy()
    totals: list[object] = [format_dollars(int(t)) for t in invoices.loc[uncredited, "total"]]
    return drop_rows(
        run, "invoices", invoices, uncredited, "total", totals, CHECK_MESSAGES["credit_note_only"]
    )


def _rows_at(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The frame's rows at `positions`, numbered from 0 again. Each column's array is taken on
    its own: pandas' take of a whole frame (or a Series) costs about three times as much."""
    return pd.DataFrame(
        {name: _column_at(frame[name], positions) for name in frame.columns}, copy=False
    )


def _column_at(column: pd.Series, positions: np.ndarray) -> pd.Series:
    taken = column.array.take(positions)
    return pd.Series(taken, dtype=column.dtype, name=column.name, copy=False)


def _typed_rows(kind: str, typed: pd.DataFrame, rows: np.ndarray | None) -> pd.DataFrame:
    """The typed frame's rows at `rows` (None: every row, as it is)."""
    if rows is not None:
        typed = _rows_at(typed, rows)
    for name, dtype in typed_columns(kind).items():
        # Required money had its blanks removed with the rows left out, so it fits int64 now.
        if dtype == "int64" and str(typed[name].dtype) == "Int64":
            typed[name] = typed[name].astype("int64")
    return typed


def provenance(frame: pd.DataFrame) -> pd.DataFrame:
    """Each row's file and row number, as the rows left out list them."""
    return pd.DataFrame(
        {
            "source_file": pd.Series(frame["source_file"].to_numpy(dtype=object), dtype=object),
            "source_row": frame["source_row"].to_numpy(dtype=np.int64),
        }
    )


def _parse_columns(
    run: ValidationRun,
    kind: str,
    provenance: pd.DataFrame,
    raw_columns: dict[str, pd.Series],
    parsed_already: dict[str, parsing.Parsed],
    gone: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Parse each column of one file (but those parsed already): (the typed frame of every row,
    a mask of the rows left out). Those are the rows `gone` already, whose values are not
    reported, and the rows with a problem, reported and listed as left out here; all are still
    in the frame: the caller takes the rows it keeps, once."""
    n = len(provenance)
    dtypes = typed_columns(kind)
    columns: dict[str, pd.Series] = {}
    # Per row: the first problem found (the exclusion reason), and whether there is one.
    reasons = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)
    for spec in COLUMNS[kind] + DERIVED.get(kind, ()):
        raw = raw_columns.get(spec.name)
        if raw is None:
            columns[spec.name] = _absent(spec, dtypes[spec.name], n)
            continue
        parsed = parsed_already.get(spec.name) or _parse(spec, raw, run.settings)
        columns[spec.name] = parsed.values.reset_index(drop=True)
        problems = parsed.errors
        if gone.any():
            problems = problems[~gone[problems.index.to_numpy()]]
        if spec.required and (parsed.blank & ~gone).any():
            blank = pd.Series(
                f"is blank: every {SINGULAR[kind]} needs its {spec.name}; fill it in or delete "
                "the row",
                index=np.flatnonzero(parsed.blank & ~gone),
            )
            problems = pd.concat([problems, blank]).sort_index()
        if not problems.empty:
            positions = problems.index.to_numpy()
            texts = run.row_issues(
                kind,
                provenance.iloc[positions],
                spec.name,
                raw.iloc[positions].tolist(),
                problems.tolist(),
            )
            fresh = ~bad[positions]
            reasons[positions[fresh]] = np.array(texts, dtype=object)[fresh]
            bad[positions] = True
    columns["source_file"] = provenance["source_file"]
    columns["source_row"] = provenance["source_row"]
    # Not copied into one block per dtype (pandas' default): the frame is taken from once more.
    typed = pd.DataFrame(columns, copy=False)
    if kind == "allocations":
        _default_source(run, typed, reasons, bad)
    if bad.any():
        run.exclude(kind, typed[bad], reasons[bad])
    return typed, bad | gone


def _refuse_rounded_ids(
    run: ValidationRun,
    kind: str,
    file: str,
    columns: dict[str, pd.Series],
    may_hold_scientific: bool,
) -> bool:
    """One error per id column a spreadsheet rounded: its records cannot be told apart."""
    refused = False
    for spec in COLUMNS[kind]:
        if spec.type != "id" or spec.name not in columns:
            continue
        example = parsing.rounded_id(columns[spec.name], may_hold_scientific)
        if example is None:
            continue
        header = run.header(kind, file, spec.name)
        run.issues.append(
            Issue(
                "error",
                file,
                None,
                header,
                example,
                f"{header} holds ids rounded by a spreadsheet program (like {example}), so "
                f"records cannot be told apart and the file cannot be used: download the export "
                f"again and do not open and save it in Excel (or import the {header} column as "
                "text)",
            )
        )
        refused = True
    return refused


def _unbooked(
    run: ValidationRun,
    file: str,
    frame: pd.DataFrame,
    columns: dict[str, pd.Series],
    no_patient: np.ndarray,
) -> np.ndarray:
    """Rows with no patient, no case and no attendees (unavailable blocks, holidays): one info
    line per file and a place in the rows left out; they are not appointments and change no
    figure. Returns their mask."""
    unbooked = no_patient.copy()
    if not unbooked.any():
        return unbooked
    for name, empty in (("case_id", ("",)), ("patient_count", ("", "0"))):
        if name in columns:
            cells = columns[name][unbooked].to_numpy(dtype=object)
            unbooked[unbooked] = np.isin([str(c).strip() for c in cells], empty)
    if not unbooked.any():
        return unbooked
    rows = frame[unbooked]
    header = run.header("appointments", file, "patient_id")
    reason = "no patient: an unavailable block or a holiday, not an appointment"
    left_out = provenance(rows).assign(
        appointment_id=columns["appointment_id"][unbooked].to_numpy(dtype=object)
    )
    run.exclude("appointments", left_out, reason)
    count = len(rows)
    numbers = [str(r) for r in rows["source_row"][:MAX_PLACES]]
    if count > MAX_PLACES:
        numbers.append(f"{count - MAX_PLACES} more")
    listed = ", ".join(numbers[:-1]) + " and " + numbers[-1] if count > 1 else numbers[0]
    run.issues.append(
        Issue(
            "info",
            file,
            None,
            header,
            None,
            f"{count} {'rows have' if count > 1 else 'row has'} no patient in {header} "
            f"({'rows' if count > 1 else 'row'} {listed}): practitioners' unavailable blocks and "
            f"holidays are not appointments, so {'they were' if count > 1 else 'it was'} left out",
        )
    )
    return unbooked


def _one_row_per_attendee(
    run: ValidationRun, typed: pd.DataFrame, patients: pd.Series, bad: np.ndarray
) -> tuple[np.ndarray, pd.Series] | None:
    """When a group appointment lists several patients: the rows to keep, one per patient
    (same appointment id), and the patient of each; None when every row names one patient.
    `patients` is the column as written, `bad` the rows left out."""
    split = parsing.split_ids(patients)
    if split is None:
        # Every row names one patient (blank ones were left out or are errors).
        listed = np.ones(len(typed), dtype=np.int64)
    else:
        listed = np.bincount(split[0], minlength=len(typed))
    _check_patient_counts(run, typed, listed, ~bad)
    if split is None:
        return None
    rows, ids = split
    if bad.any():
        kept = ~bad[rows]
        rows, ids = rows[kept], ids[kept]
    return rows, pd.Series(ids, dtype=object)


def _check_patient_counts(
    run: ValidationRun, typed: pd.DataFrame, listed: np.ndarray, kept: np.ndarray
) -> None:
    """A `Number of Patients` other than the number of ids listed is a warning on its row (of
    the rows `kept`)."""
    counts = typed["patient_count"]
    disagree = (counts.notna() & (counts != listed)).to_numpy(dtype=bool) & kept
    if disagree.any():
        picked = typed[disagree]
        for file, row, count, found in zip(
            picked["source_file"],
            picked["source_row"],
            picked["patient_count"],
            listed[disagree],
            strict=True,
        ):
            header = run.header("appointments", file, "patient_count")
            ids_header = run.header("appointments", file, "patient_id")
            run.issues.append(
                Issue(
                    "warning",
                    file,
                    int(row),
                    header,
                    str(count),
                    f"{header} is {count} but {ids_header} lists {found}: pkgreport counts each "
                    f"patient listed; check who attends this group appointment in Cliniko",
                )
            )


def _joined_names(first: pd.Series, last: pd.Series) -> pd.Series:
    """First and last name -> one name ("Ann Lee", "Ann", "Lee"); NaN when both are blank."""
    joined = (first.fillna("") + " " + last.fillna("")).str.strip()
    return joined.where(joined != "", np.nan).astype(object)


def _default_source(
    run: ValidationRun,
    typed: pd.DataFrame,
    reasons: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Blank source -> payment when payment_id is given, else credit; contradictions are errors."""
    has_payment = typed["payment_id"].notna()
    source = typed["source"]
    typed["source"] = source.where(source.notna(), np.where(has_payment, "payment", "credit"))
    for mask, message in (
        (
            (typed["source"] == "payment") & ~has_payment,
            (
                "says paid from a payment but payment_id is blank: fill in the payment's id, or write "
                "credit if it was paid from the patient's account credit"
            ),
        ),
        (
            (typed["source"] == "credit") & has_payment,
            (
                "says paid from account credit but payment_id names a payment: clear payment_id, or "
                "write payment"
            ),
        ),
    ):
        positions = np.flatnonzero(mask.to_numpy() & ~bad)
        if len(positions):
            rows = typed.iloc[positions]
            reasons[positions] = run.row_issues(
                "allocations", rows, "source", rows["source"].tolist(), message
            )
            bad[positions] = True
