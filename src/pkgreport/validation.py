"""Raw all-text tables -> a `Dataset` of typed frames, the rows left out, and every issue found."""

from __future__ import annotations

import dataclasses
import difflib
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pkgreport import parsing
from pkgreport.config import Settings
from pkgreport.errors import Issue, UsageError
from pkgreport.loading import RawTable
from pkgreport.mapping import (
    alias_lookup,
    apply_mapping,
    parse_mapping,
    read_mapping_file,
    split_table,
)
from pkgreport.money import format_dollars
from pkgreport.result import Dataset, InputFile, empty_excluded
from pkgreport.schemas import (
    CHECK_MESSAGES,
    COLUMNS,
    DERIVED,
    FRAME_CHECK_COLUMNS,
    KINDS,
    KNOWN_UNUSED,
    PROVENANCE,
    ColumnSpec,
    empty_frame,
    id_column,
    key_columns,
    normalise_header,
    schema_for,
    typed_columns,
)

_SINGULAR = {
    "appointments": "appointment",
    "cases": "case",
    "invoices": "invoice",
    "payments": "payment",
    "allocations": "allocation",
    "patients": "patient",
}
_ONE_DAY = np.timedelta64(1, "D")
_MONEY_COLUMNS = {s.name for specs in COLUMNS.values() for s in specs if s.type == "money"}
# Long lists inside one message are cut here; the full list is in the excluded rows.
_MAX_PLACES = 5


# --- column map -------------------------------------------------------------------------------


def load_column_map(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a mapping file (`pkgreport.mapping`): renames and transforms per kind."""
    return read_mapping_file(path)


# --- the run's shared state -------------------------------------------------------------------


class _Run:
    """Collects issues, excluded rows and the headers each file used, across all kinds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mapping = parse_mapping(settings.column_map, "the column map")
        self.issues: list[Issue] = []
        self.excluded: list[pd.DataFrame] = []
        # Allocations left out of the figures as findings, not errors (`_set_aside_inconsistent`).
        self.set_aside: list[pd.DataFrame] = []
        self.headers: dict[tuple[str, str], dict[str, str]] = {}
        # Each file's cells as written, so an issue shows the value the user can find there.
        self.cells: dict[str, pd.DataFrame] = {}
        self._row_at: dict[str, pd.Index] = {}

    def header(self, kind: str, file: str, column: str) -> str:
        """The header the user wrote for a canonical column in that file."""
        return self.headers.get((kind, file), {}).get(column, column)

    def written(self, kind: str, file: str, row: int, column: str) -> str | None:
        """The cell of `column` in that row as the file has it (not as parsed), if there is one."""
        cells = self.cells.get(file)
        header = self.headers.get((kind, file), {}).get(column)
        if cells is None or header is None:
            return None
        if file not in self._row_at:  # a file without row numbers starts at row 2
            numbers = cells["source_row"] if "source_row" in cells else range(2, len(cells) + 2)
            self._row_at[file] = pd.Index(numbers)
        at = self._row_at[file].get_indexer([row])[0]
        label = next((c for c in cells.columns if str(c) == header), None)
        return None if at < 0 or label is None else str(cells[label].iat[at])

    def exclude(self, kind: str, rows: pd.DataFrame, reasons: Iterable[str] | str) -> None:
        if rows.empty:
            return
        key = id_column(kind) or "invoice_id"
        self.excluded.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "source_file": rows["source_file"].to_numpy(dtype=object),
                    "source_row": rows["source_row"].to_numpy(dtype=np.int64),
                    "id": rows[key].to_numpy(dtype=object) if key in rows else np.nan,
                    "reason": reasons if isinstance(reasons, str) else list(reasons),
                }
            )
        )

    def excluded_ids(self, kind: str) -> set[object]:
        """Ids of the rows of `kind` left out so far."""
        return {
            ident for part in self.excluded if part["kind"].iat[0] == kind
            for ident in part["id"] if not pd.isna(ident)
        }

    def row_issues(self, kind: str, rows: pd.DataFrame, column: str, values: Iterable[object],
                   messages: Iterable[str] | str, severity: str = "error") -> list[str]:
        """One issue per row of `rows`; returns the messages (the exclusion reasons)."""
        out = []
        if isinstance(messages, str):
            messages = [messages] * len(rows)
        for file, row, value, message in zip(rows["source_file"], rows["source_row"], values,
                                             messages, strict=True):
            header = self.header(kind, file, column)
            text = f"{header} {message}"
            self.issues.append(Issue(severity, file, int(row), header, _shown(value), text))  # type: ignore[arg-type]
            out.append(text)
        return out


def _shown(value: object) -> str | None:
    """A typed value as the user would recognise it in a message."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    return str(value)


def _written(run: _Run, kind: str, rows: pd.DataFrame, column: str) -> list[object]:
    """Each row's `column` as the file writes it (a time with its offset, a date unpadded), so
    the user finds it there; the parsed value when the file has no such cell."""
    return [
        run.written(kind, file, int(row), column) or _shown(value)
        for file, row, value in zip(rows["source_file"], rows["source_row"], rows[column])
    ]


def _places(rows: pd.DataFrame) -> str:
    pairs = [f"{f} row {r}" for f, r in zip(rows["source_file"], rows["source_row"])]
    if len(pairs) > _MAX_PLACES:
        pairs = pairs[:_MAX_PLACES] + [f"{len(rows) - _MAX_PLACES} more"]
    return ", ".join(pairs[:-1]) + " and " + pairs[-1] if len(pairs) > 1 else pairs[0]


# --- one table: headers and parsing -----------------------------------------------------------


def _map_headers(run: _Run, kind: str, file: str, headers: list[str],
                 user: dict[str, str]) -> dict[str, str] | None:
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
            run.issues.append(Issue(
                "error", file, None, written[1], None,
                f"columns {names} both mean {canonical}: delete or rename one of them, or tell "
                f'pkgreport which to ignore with --columns FILE containing [{kind}] '
                f'"{written[1]}" = ""',
            ))
    mapping = {canonical: written[0] for canonical, written in found.items()}
    usable = True
    for spec in COLUMNS[kind]:
        if spec.required and spec.name not in mapping:
            usable = False
            run.issues.append(Issue(
                "error", file, None, spec.name, None, _missing_message(kind, spec, headers, unknown)
            ))
    if unknown and usable:
        run.issues.append(Issue(
            "info", file, None, None, None,
            f"ignored columns pkgreport does not use: {', '.join(unknown)}",
        ))
    return mapping if usable else None


def _missing_message(kind: str, spec: ColumnSpec, headers: list[str], unknown: list[str]) -> str:
    # Only a header pkgreport does not know is offered: one it maps to another column (Invoice
    # Number) or knows to mean something else (Sub-Total Amount, the total before tax) is not.
    normal = {normalise_header(h): h for h in unknown}
    close = difflib.get_close_matches(
        normalise_header(spec.name), list(normal), n=1, cutoff=0.5
    ) or [
        m for alias in spec.aliases
        for m in difflib.get_close_matches(normalise_header(alias), list(normal), n=1, cutoff=0.6)
    ][:1]
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
    return parsing.parse_datetimes(
        text, date_order=settings.date_order, timezone=settings.timezone,
        min_date=settings.min_date, max_date=settings.max_date, date_only=kind == "date",
    )


def _within_max_amount(parsed: parsing.Parsed, max_amount: int) -> parsing.Parsed:
    """Refuse amounts above the `max_amount` setting (whole dollars): a figure is right or refused."""
    # Parsed amounts have at most 15 digits of dollars, so their absolute value fits int64.
    over = np.abs(parsed.values.to_numpy(dtype=np.int64, na_value=0)) > max_amount * 100
    if not over.any():
        return parsed
    message = (f"is larger than the largest amount one row may hold "
               f"({format_dollars(max_amount * 100)}, the max_amount setting): check the column "
               "holds money, or raise max_amount in the config file")
    values = parsed.values.copy()
    values[over] = pd.NA
    errors = pd.concat([parsed.errors, pd.Series(message, index=parsed.values.index[over],
                                                 dtype=object)]).sort_index()
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


def _with_provenance(table: RawTable) -> pd.DataFrame:
    frame = table.frame.reset_index(drop=True)
    if "source_file" not in frame:
        frame = frame.assign(source_file=table.file.name)
    if "source_row" not in frame:
        frame = frame.assign(source_row=np.arange(2, len(frame) + 2, dtype=np.int64))
    return frame


def _type_table(run: _Run, kind: str, table: RawTable) -> pd.DataFrame | None:
    """One file's rows -> its typed frame (rows with errors removed), or None if unusable."""
    file = table.file.name
    run.cells[file] = table.frame  # the loader's own frame: no copy is kept
    applied = apply_mapping(kind, run.mapping.kind(kind), _with_provenance(table), file)
    run.issues.extend(applied.issues)
    if not applied.usable:
        run.exclude(kind, _provenance(applied.frame), "the mapping names a column the file lacks")
        return None
    run.exclude(kind, applied.left_out, applied.reasons)
    frame = applied.frame
    # Headers are matched and shown as text; `label` finds the column again whatever its type.
    label = {str(c): c for c in frame.columns if c not in PROVENANCE}
    mapping = _map_headers(run, kind, file, list(label), applied.renames)
    if mapping is None:
        run.exclude(kind, _provenance(frame), "the file is missing a required column")
        return None
    run.headers[(kind, file)] = mapping
    columns = {name: frame[label[header]] for name, header in mapping.items()}
    if _refuse_rounded_ids(run, kind, file, columns, table.may_hold_scientific):
        run.exclude(kind, _provenance(frame), "a spreadsheet program rounded the file's ids")
        return None
    parsed: dict[str, parsing.Parsed] = {}
    if kind == "appointments":
        # Parsed once: its blanks are the rows with no patient, left out before anything else.
        patient = parsing.parse_text(columns["patient_id"])
        unbooked = _unbooked(run, file, frame, columns, patient.blank)
        if unbooked.any():
            frame = frame[~unbooked].reset_index(drop=True)
            columns = {name: frame[label[header]] for name, header in mapping.items()}
            patient = parsing.parse_text(columns["patient_id"])
        parsed["patient_id"] = patient
    typed = _parse_columns(run, kind, _provenance(frame), columns, parsed)
    if kind == "appointments":
        typed = _one_row_per_attendee(run, typed)
    if kind == "invoices" and "original_invoice_id" in mapping:
        typed = _check_credit_notes(run, typed)
    if kind == "patients" and "patient_name" not in mapping:
        typed["patient_name"] = _joined_names(typed["first_name"], typed["last_name"])
    return typed


def _check_credit_notes(run: _Run, invoices: pd.DataFrame) -> pd.DataFrame:
    """Only a credit note, which names the invoice it credits, may have a negative total.

    Applied only to a file with a column for that name: Cliniko's invoices export has none, so
    there a negative invoice is a credit note as it stands.
    """
    uncredited = ((invoices["total"] < 0) & invoices["original_invoice_id"].isna()).to_numpy()
    totals: list[object] = [format_dollars(int(t)) for t in invoices.loc[uncredited, "total"]]
    return _drop_rows(run, "invoices", invoices, uncredited, "total", totals,
                      CHECK_MESSAGES["credit_note_only"])


def _provenance(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "source_file": pd.Series(frame["source_file"].to_numpy(dtype=object), dtype=object),
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
    })


def _parse_columns(run: _Run, kind: str, provenance: pd.DataFrame,
                   raw_columns: dict[str, pd.Series],
                   parsed_already: dict[str, parsing.Parsed]) -> pd.DataFrame:
    """Parse each column of one file (but those parsed already); rows with a problem are
    reported and left out."""
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
        if spec.required and parsed.blank.any():
            blank = pd.Series(
                f"is blank: every {_SINGULAR[kind]} needs its {spec.name}; fill it in or delete "
                "the row",
                index=np.flatnonzero(parsed.blank),
            )
            problems = pd.concat([problems, blank]).sort_index()
        if not problems.empty:
            positions = problems.index.to_numpy()
            texts = run.row_issues(kind, provenance.iloc[positions], spec.name,
                                   raw.iloc[positions].tolist(), problems.tolist())
            fresh = ~bad[positions]
            reasons[positions[fresh]] = np.array(texts, dtype=object)[fresh]
            bad[positions] = True
    typed = pd.DataFrame(columns)
    typed["source_file"] = provenance["source_file"]
    typed["source_row"] = provenance["source_row"]
    if kind == "allocations":
        _default_source(run, typed, reasons, bad)
    if bad.any():
        run.exclude(kind, typed[bad], reasons[bad])
        typed = typed[~bad].reset_index(drop=True)
    for name, dtype in dtypes.items():
        # Required money had its blanks removed above, so it fits plain int64 now.
        if dtype == "int64" and str(typed[name].dtype) == "Int64":
            typed[name] = typed[name].astype("int64")
    return typed


def _refuse_rounded_ids(run: _Run, kind: str, file: str, columns: dict[str, pd.Series],
                        may_hold_scientific: bool) -> bool:
    """One error per id column a spreadsheet rounded: its records cannot be told apart."""
    refused = False
    for spec in COLUMNS[kind]:
        if spec.type != "id" or spec.name not in columns:
            continue
        example = parsing.rounded_id(columns[spec.name], may_hold_scientific)
        if example is None:
            continue
        header = run.header(kind, file, spec.name)
        run.issues.append(Issue(
            "error", file, None, header, example,
            f"{header} holds ids rounded by a spreadsheet program (like {example}), so "
            f"records cannot be told apart and the file cannot be used: download the export "
            f"again and do not open and save it in Excel (or import the {header} column as "
            "text)",
        ))
        refused = True
    return refused


def _unbooked(run: _Run, file: str, frame: pd.DataFrame, columns: dict[str, pd.Series],
              no_patient: np.ndarray) -> np.ndarray:
    """Rows with no patient, no case and no attendees (unavailable blocks, holidays): one info
    line per file and a place in the rows left out; they are not appointments and change no
    figure. Returns their mask."""
    unbooked = no_patient.copy()
    if not unbooked.any():
        return unbooked
    for name, empty in (("case_id", ("",)), ("patient_count", ("", "0"))):
        if name in columns:
            cells = columns[name].to_numpy(dtype=object)[unbooked]
            unbooked[unbooked] = np.isin([str(c).strip() for c in cells], empty)
    if not unbooked.any():
        return unbooked
    rows = frame[unbooked]
    header = run.header("appointments", file, "patient_id")
    reason = "no patient: an unavailable block or a holiday, not an appointment"
    left_out = _provenance(rows).assign(
        appointment_id=columns["appointment_id"].to_numpy(dtype=object)[unbooked])
    run.exclude("appointments", left_out, reason)
    count = len(rows)
    numbers = [str(r) for r in rows["source_row"][:_MAX_PLACES]]
    if count > _MAX_PLACES:
        numbers.append(f"{count - _MAX_PLACES} more")
    listed = ", ".join(numbers[:-1]) + " and " + numbers[-1] if count > 1 else numbers[0]
    run.issues.append(Issue(
        "info", file, None, header, None,
        f"{count} {'rows have' if count > 1 else 'row has'} no patient in {header} "
        f"({'rows' if count > 1 else 'row'} {listed}): practitioners' unavailable blocks and "
        f"holidays are not appointments, so {'they were' if count > 1 else 'it was'} left out",
    ))
    return unbooked


def _one_row_per_attendee(run: _Run, typed: pd.DataFrame) -> pd.DataFrame:
    """A group appointment listing several patients becomes one row per patient (same id)."""
    split = parsing.split_ids(typed["patient_id"])
    if split is None:
        # Every row names one patient (blank ones were left out or are errors).
        listed = np.ones(len(typed), dtype=np.int64)
    else:
        listed = np.bincount(split[0], minlength=len(typed))
    _check_patient_counts(run, typed, listed)
    if split is None:
        return typed
    rows, ids = split
    out = typed.iloc[rows].reset_index(drop=True)
    out["patient_id"] = pd.Series(ids, dtype=object)
    return out


def _check_patient_counts(run: _Run, typed: pd.DataFrame, listed: np.ndarray) -> None:
    """A `Number of Patients` other than the number of ids listed is a warning on its row."""
    counts = typed["patient_count"]
    disagree = (counts.notna() & (counts != listed)).to_numpy(dtype=bool)
    if disagree.any():
        picked = typed[disagree]
        for file, row, count, found in zip(picked["source_file"], picked["source_row"],
                                           picked["patient_count"], listed[disagree]):
            header = run.header("appointments", file, "patient_count")
            ids_header = run.header("appointments", file, "patient_id")
            run.issues.append(Issue(
                "warning", file, int(row), header, str(count),
                f"{header} is {count} but {ids_header} lists {found}: pkgreport counts each "
                f"patient listed; check who attends this group appointment in Cliniko",
            ))


def _joined_names(first: pd.Series, last: pd.Series) -> pd.Series:
    """First and last name -> one name ("Ann Lee", "Ann", "Lee"); NaN when both are blank."""
    joined = (first.fillna("") + " " + last.fillna("")).str.strip()
    return joined.where(joined != "", np.nan).astype(object)


def _default_source(run: _Run, typed: pd.DataFrame, reasons: np.ndarray, bad: np.ndarray,
                    ) -> None:
    """Blank source -> payment when payment_id is given, else credit; contradictions are errors."""
    has_payment = typed["payment_id"].notna()
    source = typed["source"]
    typed["source"] = source.where(source.notna(), np.where(has_payment, "payment", "credit"))
    for mask, message in (
        ((typed["source"] == "payment") & ~has_payment,
         ("says paid from a payment but payment_id is blank: fill in the payment's id, or write "
         "credit if it was paid from the patient's account credit")),
        ((typed["source"] == "credit") & has_payment,
         ("says paid from account credit but payment_id names a payment: clear payment_id, or "
         "write payment")),
    ):
        positions = np.flatnonzero(mask.to_numpy() & ~bad)
        if len(positions):
            rows = typed.iloc[positions]
            reasons[positions] = run.row_issues("allocations", rows, "source",
                                                rows["source"].tolist(), message)
            bad[positions] = True


# --- one kind: concatenation, duplicates, schema ----------------------------------------------


def _collapse_duplicates(run: _Run, kind: str, frame: pd.DataFrame,
                         repeated_id: np.ndarray) -> pd.DataFrame:
    """Exact copies collapse to one row (a warning); one id with different content is an error.

    `repeated_id` marks the rows whose id is not unique (pandera's uniqueness check found them).
    """
    content = [c for c in frame.columns if c not in PROVENANCE]
    keys = list(key_columns(kind))
    key = keys[0] if keys else None
    if key is not None:
        if not repeated_id.any():
            return frame
        sub = frame[repeated_id]
        copy = sub.duplicated(subset=content, keep="first")
    else:
        # No unique id (allocations): an exact repeat, in one file or across overlapping files,
        # is counted once. An export that numbers its allocations (`allocation_id`) keeps two
        # equal allocations apart, since their ids are part of the content compared.
        sub = frame
        copy = frame.duplicated(subset=content, keep="first")
    drop = pd.Series(False, index=frame.index)
    if copy.any():
        groups = sub.groupby(content, dropna=False, sort=False).ngroup()
        first_of_group = groups[~copy].drop_duplicates()
        kept = pd.Series(first_of_group.index, index=first_of_group.to_numpy())
        copies = sub[copy.to_numpy()]
        originals = frame.loc[kept[groups[copy].to_numpy()].to_numpy()]
        reasons = [
            f"exact copy of {f} row {r} (counted once)"
            for f, r in zip(originals["source_file"], originals["source_row"])
        ]
        run.exclude(kind, copies, reasons)
        _warn_about_copies(run, kind, copies, originals)
        drop[copies.index] = True
    if key is not None:
        rest = sub[~copy.to_numpy()]
        clash = rest[rest.duplicated(subset=keys, keep=False)]
        if not clash.empty:
            clash = clash.sort_values(["source_file", "source_row"], kind="stable")
            for value, rows in clash.groupby(keys, sort=True):
                value = value[0]
                differ = [c for c in content if rows[c].nunique(dropna=False) > 1]
                first = rows.iloc[0]
                header = run.header(kind, first["source_file"], key)
                # A group appointment's id is shared by its patients: name the patient too.
                whose = f" for patient {first['patient_id']}" if len(keys) > 1 else ""
                message = (
                    f"{header} {value}{whose} is used by {len(rows)} different rows: "
                    f"{_places(rows)} "
                    f"(they differ in {', '.join(differ)}). Keep one version: correct the id or "
                    "remove the out-of-date row"
                )
                run.issues.append(Issue("error", first["source_file"], int(first["source_row"]),
                                        header, str(value), message))
                run.exclude(kind, rows, message)
                drop[rows.index] = True
    return frame[~drop.to_numpy()].reset_index(drop=True)


def _warn_about_copies(run: _Run, kind: str, copies: pd.DataFrame,
                       originals: pd.DataFrame) -> None:
    """One warning for copies across files (overlapping exports); one per repeat inside a file,
    naming both rows, since an export does not repeat a row by overlapping itself. A group
    appointment is one row of the file for all its attendees, and is counted and named once."""
    once = ~copies.duplicated(["source_file", "source_row"]).to_numpy()
    copies, originals = copies[once], originals[once]
    same_file = copies["source_file"].to_numpy() == originals["source_file"].to_numpy()
    for copy_row, original_row, file in zip(copies["source_row"][same_file],
                                            originals["source_row"][same_file],
                                            copies["source_file"][same_file]):
        run.issues.append(Issue(
            "warning", file, int(copy_row), None, None,
            f"row {copy_row} repeats row {original_row} exactly and is counted once: if it "
            f"really happened twice, export the {kind} with their ids so the two can be told "
            "apart",
        ))
    across = copies[~same_file]
    if across.empty:
        return
    files = sorted(set(across["source_file"]))
    run.issues.append(Issue(
        "warning", ", ".join(files), None, None, None,
        f"{len(across)} {kind} "
        f"{'rows are exact copies' if len(across) > 1 else 'row is an exact copy'}"
        f" of other rows (overlapping exports?) and counted once; the first is "
        f"{_places(across.iloc[:1])}, a copy of {_places(originals[~same_file].iloc[:1])}",
    ))


def _schema_check(run: _Run, kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """pandera over the typed frame; each failure becomes an issue and its row is removed.

    Returns the remaining rows and a mask over them of rows whose id is repeated: those are
    resolved by `_collapse_duplicates` (an exact copy is a warning, not an error).
    """
    repeated = np.zeros(len(frame), dtype=bool)
    try:
        schema_for(kind).validate(frame, lazy=True, inplace=True)
        return frame, repeated
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    failures = failures.assign(
        check=failures["check"].astype(str),
        column=[FRAME_CHECK_COLUMNS.get(str(c), col) if context == "DataFrameSchema" else col
                for c, col, context in zip(failures["check"], failures["column"],
                                           failures["schema_context"])],
    ).drop_duplicates(subset=["check", "column", "index"])
    whole = failures["index"].isna().to_numpy()
    for check, column in failures.loc[whole, ["check", "column"]].itertuples(index=False):
        # A whole-column failure (a dtype) means validation itself built the frame wrong.
        run.issues.append(Issue("error", kind, None, str(column), None,
                                f"internal check {check} failed on column {column}: please "
                                "report this with the input files"))
    unique = (failures["check"] == "field_uniqueness").to_numpy()
    if (unique & ~whole).any():
        labels = failures.loc[unique & ~whole, "index"].astype(np.int64)
        repeated[frame.index.get_indexer(labels)] = True
    rows = failures[~whole & ~unique]
    if rows.empty:
        return frame, repeated
    positions = frame.index.get_indexer(rows["index"].astype(np.int64))
    reasons = np.full(len(frame), None, dtype=object)
    for (check, column), group in rows.assign(_pos=positions).groupby(["check", "column"],
                                                                      sort=True):
        at = group["_pos"].to_numpy()
        picked = frame.iloc[at]
        message = CHECK_MESSAGES.get(str(check), f"fails the check {check}")
        values: list[Any] = picked[column].tolist() if column in picked else [None] * len(picked)
        if column in _MONEY_COLUMNS:
            values = [None if pd.isna(v) else format_dollars(int(v)) for v in values]
        texts = run.row_issues(kind, picked, str(column), values, message)
        fresh = pd.isna(reasons[at])
        reasons[at[fresh]] = np.array(texts, dtype=object)[fresh]
    bad = ~pd.isna(reasons)
    run.exclude(kind, frame[bad], reasons[bad])
    return frame[~bad].reset_index(drop=True), repeated[~bad]


# --- across kinds -----------------------------------------------------------------------------


def _find(frame: pd.DataFrame, key: str, ids: pd.Series | pd.Index) -> np.ndarray:
    """Each id's row position in `frame` (whose `key` is unique); -1 where blank or not there.

    The hash table is built over the distinct ids wanted and the frame's keys are looked up in
    it: a small table (the invoices a few thousand allocations name) answers a million lookups
    several times faster than a million-entry table is built, as `Series.map` would per call.
    """
    codes, wanted = pd.factorize(np.asarray(ids, dtype=object))
    found = pd.Index(wanted, dtype=object).get_indexer(frame[key].to_numpy(dtype=object))
    # One slot per distinct id, and a last one that code -1 (a blank id) picks.
    row_of = np.full(len(wanted) + 1, -1, dtype=np.int64)
    hits = np.flatnonzero(found >= 0)
    row_of[found[hits]] = hits
    return row_of[codes]


def _at(frame: pd.DataFrame, column: str, positions: np.ndarray, missing: object = np.nan,
        dtype: str | None = None) -> np.ndarray:
    """`frame[column]` at `positions`, with `missing` where the position is -1."""
    values = frame[column].to_numpy(dtype=dtype)
    # A one-value tail for position -1 to pick; also right when `frame` has no rows.
    tail = np.array([missing], dtype=values.dtype)
    return np.concatenate([values, tail])[positions]


def _drop_rows(run: _Run, kind: str, frame: pd.DataFrame, mask: np.ndarray, column: str,
               values: list[object], messages: list[str] | str) -> pd.DataFrame:
    if not mask.any():
        return frame
    rows = frame[mask]
    reasons = run.row_issues(kind, rows, column, values, messages)
    run.exclude(kind, rows, reasons)
    return frame[~mask].reset_index(drop=True)


def _files_of(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(set(frame["source_file"]))) or "no usable rows"


def _not_found(left_out: set[object], kind: str, ident: object, frame: pd.DataFrame) -> str:
    """Why an id another file refers to is not there: never exported, or left out for errors."""
    if ident in left_out:
        return (f"{ident} is the {_SINGULAR[kind]} whose row was left out for the problems "
                f"reported on it: fix that row first")
    return (f"{ident} is not in the {kind} export ({_files_of(frame)}): check the id, or export "
            f"that {_SINGULAR[kind]} too")


def _check_appointment_cases(run: _Run, appointments: pd.DataFrame,
                             cases: pd.DataFrame) -> pd.DataFrame:
    case_id = appointments["case_id"]
    has_case = case_id.notna().to_numpy()
    if not has_case.any():
        return appointments
    case_at = _find(cases, "case_id", case_id)
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
            case_id = appointments["case_id"]
            other &= ~cleared
            case_at = np.where(cleared, -1, case_at)
    left_out = run.excluded_ids("cases") if unknown.any() else set()
    messages = [_not_found(left_out, "cases", c, cases) for c in case_id[unknown]]
    where = cases["source_row"].to_numpy()[case_at[other]]
    place = cases["source_file"].to_numpy()[case_at[other]]
    messages_other = [
        f"{c} belongs to patient {o} ({f} row {r}) but this appointment is for "
        f"patient {p}: attach the appointment to one of patient {p}'s cases"
        for c, o, p, f, r in zip(case_id[other], owner[other], patient[other], place, where)
    ]
    bad = unknown | other
    order = np.flatnonzero(bad)
    by_row = dict(zip(np.flatnonzero(unknown), messages)) | dict(
        zip(np.flatnonzero(other), messages_other))
    appointments = _drop_rows(run, "appointments", appointments, bad, "case_id",
                              case_id[bad].tolist(), [by_row[i] for i in order])
    case_at = case_at[~bad]

    # Appointments outside their case's dates stay (they count); the dates may be the mistake.
    nat = np.datetime64("NaT", "ns")
    issued = _at(cases, "issue_date", case_at, nat, "datetime64[ns]")
    expires = _at(cases, "expiry_date", case_at, nat, "datetime64[ns]")
    starts = appointments["starts_at"].to_numpy()
    with np.errstate(invalid="ignore"):
        before = ~np.isnat(issued) & (starts < issued)
        after = ~np.isnat(expires) & (starts >= expires + _ONE_DAY)
    outside = before | after
    if outside.any():
        rows = appointments[outside]
        starts_written = _written(run, "appointments", rows, "starts_at")
        messages = []
        for start, case, issue, expiry, early in zip(
            starts_written, rows["case_id"], pd.Series(issued[outside]),
            pd.Series(expires[outside]), before[outside],
        ):
            when = (f"before case {case} was issued ({_shown(issue)})" if early
                    else f"after case {case} expired ({_shown(expiry)})")
            messages.append(f"{start} is {when}: check the appointment's case and date, "
                            "or the case's issue and expiry dates")
        run.row_issues("appointments", rows, "starts_at", starts_written, messages,
                       severity="warning")
    return appointments


def _not_the_owner(appointments: pd.DataFrame, other: np.ndarray, owner: np.ndarray,
                   ) -> np.ndarray:
    """Rows of `other` (case owned by another patient) where that owner attends the same
    appointment: a group appointment, whose case is the owner's and not this attendee's."""
    ident = appointments["appointment_id"].to_numpy(dtype=object)
    at = np.flatnonzero(other)
    # Only the appointments in question: the pairs of a million rows would cost a second.
    same = appointments[appointments["appointment_id"].isin(set(ident[at])).to_numpy()]
    pairs = set(zip(same["appointment_id"], same["patient_id"]))
    cleared = np.zeros(len(appointments), dtype=bool)
    cleared[at] = [(ident[i], owner[i]) in pairs for i in at]
    return cleared


def _check_invoice_dates(run: _Run, invoices: pd.DataFrame) -> None:
    """An invoice closed before it was issued is a warning naming both dates."""
    closed = invoices["closed_at"].to_numpy()
    with np.errstate(invalid="ignore"):
        early = ~np.isnat(closed) & (closed < invoices["issue_date"].to_numpy())
    if not early.any():
        return
    rows = invoices[early]
    closed_written = _written(run, "invoices", rows, "closed_at")
    messages = [
        f"{c} is before the invoice's {run.header('invoices', f, 'issue_date')} "
        f"{i}: check both dates in Cliniko (pkgreport uses them as they are)"
        for c, i, f in zip(closed_written, _written(run, "invoices", rows, "issue_date"),
                           rows["source_file"])
    ]
    run.row_issues("invoices", rows, "closed_at", closed_written, messages, severity="warning")


def _check_allocations(run: _Run, allocations: pd.DataFrame, invoices: pd.DataFrame | None,
                       payments: pd.DataFrame | None) -> pd.DataFrame:
    if invoices is None:
        for file in sorted(set(allocations["source_file"])):
            run.issues.append(Issue(
                "warning", file, None, None, None,
                "allocations cannot be checked or used without the invoices they pay: add the "
                "invoices export to the input folder",
            ))
        return allocations
    invoice_id = allocations["invoice_id"]
    invoice_at = _find(invoices, "invoice_id", invoice_id)
    unknown = invoice_at < 0
    left_out = run.excluded_ids("invoices") if unknown.any() else set()
    allocations = _drop_rows(
        run, "allocations", allocations, unknown, "invoice_id", invoice_id[unknown].tolist(),
        [_not_found(left_out, "invoices", i, invoices) for i in invoice_id[unknown]],
    )
    invoice_at = invoice_at[~unknown]
    allocations["patient_id"] = pd.Series(_at(invoices, "patient_id", invoice_at),
                                          index=allocations.index, dtype=object)
    if payments is not None:
        payment_id = allocations["payment_id"]
        has_payment = payment_id.notna().to_numpy()
        payer = _at(payments, "patient_id", _find(payments, "payment_id", payment_id))
        missing = has_payment & pd.isna(payer)
        gone = run.excluded_ids("payments") if missing.any() else set()
        allocations = _drop_rows(
            run, "allocations", allocations, missing, "payment_id", payment_id[missing].tolist(),
            [_not_found(gone, "payments", payment_id.iloc[i], payments)
             for i in np.flatnonzero(missing)])
    return _set_aside_inconsistent(run, allocations, invoices, payments)


def _set_aside_inconsistent(run: _Run, allocations: pd.DataFrame, invoices: pd.DataFrame,
                            payments: pd.DataFrame | None) -> pd.DataFrame:
    """Take out the allocations the engine cannot apply but can account for (findings, not errors).

    An allocation from one patient's payment to another patient's invoice, or to an invoice
    deleted or archived, is not applied: the money stays with the payer. Each goes to
    `run.set_aside` with both records named; over-allocation stays in (the credit engine keeps
    the excess and reports OVER_ALLOCATED_INVOICE).
    """
    invoice_at = _find(invoices, "invoice_id", allocations["invoice_id"])
    payment_at = (_find(payments, "payment_id", allocations["payment_id"]) if payments is not None
                  else np.full(len(allocations), -1))
    payer = (_at(payments, "patient_id", payment_at) if payments is not None
             else np.full(len(allocations), np.nan, dtype=object))
    invoice_patient = allocations["patient_id"].to_numpy(dtype=object)
    other_patient = ~pd.isna(payer) & (payer != invoice_patient)
    gone = np.zeros(len(allocations), dtype=bool)
    for column in ("deleted_at", "archived_at"):
        if column in invoices.columns:
            gone |= ~pd.isna(_at(invoices, column, invoice_at, missing=np.datetime64("NaT")))
    reason = np.where(other_patient, "ALLOCATION_OTHER_PATIENT",
                      np.where(gone, "ALLOCATION_TO_DELETED_INVOICE", ""))
    aside = reason != ""
    if not aside.any():
        return allocations
    rows = allocations.loc[aside].copy()
    rows["code"] = reason[aside]
    rows["invoice_patient_id"] = invoice_patient[aside]
    # The money stays with whoever paid it: the payment's patient, else the invoice's.
    rows["patient_id"] = np.where(pd.isna(payer[aside]), invoice_patient[aside], payer[aside])
    rows["invoice_place"] = _row_places(invoices, invoice_at[aside])
    rows["payment_place"] = (_row_places(payments, payment_at[aside]) if payments is not None
                             else None)
    gone_at = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    for column in ("archived_at", "deleted_at"):
        if column in invoices.columns:
            when = pd.Series(_at(invoices, column, invoice_at[aside], missing=np.datetime64("NaT")),
                             index=rows.index, dtype="datetime64[ns]")
            gone_at = when.where(when.notna(), gone_at)
    rows["invoice_gone_at"] = gone_at
    run.set_aside.append(rows.reset_index(drop=True))
    return allocations.loc[~aside].reset_index(drop=True)


def _row_places(frame: pd.DataFrame, positions: np.ndarray) -> list[str | None]:
    """'file row N' of each position in `frame` (None where -1)."""
    files = _at(frame, "source_file", positions, missing=None)
    rows = _at(frame, "source_row", positions, missing=-1, dtype=object)
    return [None if f is None else f"{f} row {r}" for f, r in zip(files, rows)]


def _check_patients_known(run: _Run, kind: str, frame: pd.DataFrame,
                          patients: pd.DataFrame) -> pd.DataFrame:
    """Rows of a patient the patients export does not have are errors, and are left out.

    Money on a mis-keyed id (`1000"232`) would sit with a patient the clinic does not have,
    and be missing from the real patient's credit, with no sign in any figure: so it is an
    error, not a warning. Without a patients export there is nothing to check against.
    """
    patient_id = frame["patient_id"]
    unknown = (_find(patients, "patient_id", patient_id) < 0) & patient_id.notna().to_numpy()
    if not unknown.any():
        return frame
    left_out = run.excluded_ids("patients")
    return _drop_rows(run, kind, frame, unknown, "patient_id", patient_id[unknown].tolist(),
                      [_not_found(left_out, "patients", i, patients) for i in patient_id[unknown]])


def _check_invoice_appointments(run: _Run, invoices: pd.DataFrame,
                                appointments: pd.DataFrame) -> None:
    """A warning for each invoice whose appointment is another patient's (only).

    The money stays with the invoice's patient, so no figure moves; but the link ties the
    invoice to someone else's session (and package), which is almost always a slip.
    """
    appointment_id = invoices["appointment_id"]
    at = _find(appointments, "appointment_id", appointment_id)
    patient = invoices["patient_id"].to_numpy(dtype=object)
    other = (at >= 0) & (_at(appointments, "patient_id", at) != patient)
    if not other.any():
        return
    # The few suspects are checked against every row of their appointment, in case one
    # appointment is listed once per patient (a group booking).
    suspects = set(appointment_id[other])
    group = appointments[appointments["appointment_id"].isin(suspects)]
    attends = set(zip(group["appointment_id"], group["patient_id"]))
    for i in np.flatnonzero(other):
        other[i] = (appointment_id.iat[i], patient[i]) not in attends
    rows = invoices[other]
    first = appointments.iloc[at[other]]
    messages = [
        f"{a} is patient {o}'s appointment ({f} row {r}), but this invoice is patient {p}'s: "
        "check the invoice's appointment or patient"
        for a, o, f, r, p in zip(rows["appointment_id"], first["patient_id"],
                                 first["source_file"], first["source_row"], rows["patient_id"])
    ]
    run.row_issues("invoices", rows, "appointment_id", rows["appointment_id"].tolist(), messages,
                   severity="warning")


def _split_tables(run: _Run, tables: list[RawTable]) -> list[RawTable]:
    """Each file a mapping splits (`[payments.split.allocations]`) -> one table per kind."""
    out: list[RawTable] = []
    for table in tables:
        kind_map = run.mapping.kind(table.file.kind) if table.file.kind in KINDS else None
        if kind_map is None or not kind_map.splits:
            out.append(table)
            continue
        parts, issues = split_table(table.file.kind, kind_map, _with_provenance(table),
                                    table.file.name)
        run.issues.extend(issues)
        if not parts:
            out.append(table)
        for kind, frame in parts.items():
            file = dataclasses.replace(table.file, kind=kind or table.file.kind)
            out.append(dataclasses.replace(table, file=file, frame=frame))
    return out


# --- entry point ------------------------------------------------------------------------------


def validate_tables(tables: list[RawTable], settings: Settings,
                    files: list[InputFile] | None = None) -> Dataset:
    """Map headers, parse, schema-check, de-duplicate and cross-check every table.

    Returns every issue found (sorted); rows with an error are left out of the typed frames and
    listed in `excluded`. Raises `UsageError` only for a bad setting (column map, time zone).
    """
    try:
        zoneinfo.ZoneInfo(settings.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {settings.timezone!r}: use an IANA name like Australia/Sydney"
        ) from exc
    run = _Run(settings)
    typed: dict[str, list[pd.DataFrame]] = {}
    files = list(files) if files is not None else [t.file for t in tables]
    for table in _split_tables(run, tables):
        kind = table.file.kind
        if kind not in KINDS:
            run.issues.append(Issue("warning", table.file.name, None, None, None,
                                    "is not one of the exports pkgreport reads "
                                    f"({', '.join(KINDS)}) and was ignored: name the file after "
                                    "its kind"))
            continue
        frame = _type_table(run, kind, table)
        typed.setdefault(kind, [])
        if frame is not None:
            typed[kind].append(frame)

    frames: dict[str, pd.DataFrame | None] = {}
    for kind in KINDS:
        if kind not in typed:
            frames[kind] = None
            continue
        parts = typed[kind]
        if not parts:
            frame = empty_frame(kind)
        elif len(parts) == 1:
            frame = parts[0]
        else:
            frame = pd.concat(parts, ignore_index=True)
        frame, repeated_id = _schema_check(run, kind, frame)
        frames[kind] = _collapse_duplicates(run, kind, frame, repeated_id)

    if frames["appointments"] is not None and frames["cases"] is not None:
        frames["appointments"] = _check_appointment_cases(run, frames["appointments"],
                                                          frames["cases"])
    if frames["patients"] is not None:
        for kind in ("invoices", "payments"):
            if frames[kind] is not None:
                frames[kind] = _check_patients_known(run, kind, frames[kind], frames["patients"])
    if frames["invoices"] is not None and frames["appointments"] is not None:
        _check_invoice_appointments(run, frames["invoices"], frames["appointments"])
    if frames["invoices"] is not None:
        _check_invoice_dates(run, frames["invoices"])
    if frames["allocations"] is not None:
        frames["allocations"] = _check_allocations(run, frames["allocations"],
                                                   frames["invoices"], frames["payments"])

    excluded = pd.concat(run.excluded, ignore_index=True) if run.excluded else empty_excluded()
    if run.excluded:
        rank = {k: i for i, k in enumerate(KINDS)}
        excluded = excluded.assign(_rank=excluded["kind"].map(rank)).sort_values(
            ["_rank", "source_file", "source_row"], kind="stable"
        ).drop(columns="_rank").reset_index(drop=True)
        excluded = excluded.astype({"kind": object, "source_file": object, "id": object,
                                    "reason": object, "source_row": "int64"})
    issues = sorted(run.issues, key=lambda i: (*i.sort_key(), i.message, i.value or ""))
    return Dataset(
        **frames,  # type: ignore[arg-type]
        files=files,
        issues=issues,
        excluded=excluded,
        set_aside_allocations=(pd.concat(run.set_aside, ignore_index=True) if run.set_aside
                               else None),
    )
