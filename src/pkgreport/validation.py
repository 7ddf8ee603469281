"""Raw all-text tables -> a `Dataset` of typed frames, the rows left out, and every issue found."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pkgreport import parsing
from pkgreport.config import Settings
from pkgreport.errors import Issue, UsageError
from pkgreport.loading import InputFile, RawTable
from pkgreport.money import format_dollars
from pkgreport.schemas import (
    CHECK_MESSAGES,
    COLUMNS,
    DERIVED,
    FRAME_CHECK_COLUMNS,
    KINDS,
    PROVENANCE,
    ColumnSpec,
    empty_frame,
    id_column,
    normalise_header,
    schema_for,
    spec_for,
    typed_columns,
)

EXCLUDED_COLUMNS: list[str] = ["kind", "source_file", "source_row", "id", "reason"]

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


def empty_excluded() -> pd.DataFrame:
    """An excluded-rows frame with no rows."""
    return pd.DataFrame(
        {
            "kind": pd.Series([], dtype=object),
            "source_file": pd.Series([], dtype=object),
            "source_row": pd.Series([], dtype="int64"),
            "id": pd.Series([], dtype=object),
            "reason": pd.Series([], dtype=object),
        }
    )


@dataclass
class Dataset:
    """Typed frames per kind (None when the kind was not supplied), the files, and the issues.

    Rows with an error are not in the typed frames; each is in `excluded` with the reason.
    Archived and deleted rows stay: the engines leave them out and say why.
    """

    appointments: pd.DataFrame | None = None
    cases: pd.DataFrame | None = None
    invoices: pd.DataFrame | None = None
    payments: pd.DataFrame | None = None
    allocations: pd.DataFrame | None = None
    patients: pd.DataFrame | None = None
    files: list[InputFile] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    excluded: pd.DataFrame = field(default_factory=empty_excluded)
    # Allocations the engine cannot apply but can account for: each becomes a finding naming the
    # allocation, its payment and its invoice (columns of allocations plus code, places, dates).
    set_aside_allocations: pd.DataFrame | None = None

    def frame(self, kind: str) -> pd.DataFrame | None:
        return getattr(self, kind)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


# --- column map -------------------------------------------------------------------------------


def _check_column_map(column_map: dict[str, dict[str, str]], where: str) -> None:
    for kind, mapping in column_map.items():
        if kind not in KINDS:
            raise UsageError(
                f"{where}: [{kind}] is not a kind of export; use one of: {', '.join(KINDS)}"
            )
        if not isinstance(mapping, dict):
            raise UsageError(
                f'{where}: {kind} must be a table of "Your header" = "canonical_name" lines'
            )
        names = spec_for(kind)
        for header, canonical in mapping.items():
            # "" tells pkgreport to ignore that header (say, a second total it must not use).
            if not isinstance(canonical, str) or (canonical and canonical not in names):
                raise UsageError(
                    f'{where}: [{kind}] "{header}" = {canonical!r}: {canonical!r} is not one of '
                    f"the {kind} columns; use one of: {', '.join(names)} (or \"\" to ignore the "
                    "column)"
                )


def load_column_map(path: Path) -> dict[str, dict[str, str]]:
    """Read a TOML column map: `[appointments]` then `"Appt #" = "appointment_id"` lines.

    A header mapped to "" is ignored, so an export with two columns meaning one thing can be used.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the column map {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"the column map {path} is not UTF-8 text: save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"the column map {path} is not valid TOML: {exc}") from exc
    _check_column_map(data, str(path))
    return {kind: dict(mapping) for kind, mapping in data.items()}


# --- the run's shared state -------------------------------------------------------------------


class _Run:
    """Collects issues, excluded rows and the headers each file used, across all kinds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.issues: list[Issue] = []
        self.excluded: list[pd.DataFrame] = []
        # Allocations left out of the figures as findings, not errors (`_set_aside_inconsistent`).
        self.set_aside: list[pd.DataFrame] = []
        self.headers: dict[tuple[str, str], dict[str, str]] = {}

    def header(self, kind: str, file: str, column: str) -> str:
        """The header the user wrote for a canonical column in that file."""
        return self.headers.get((kind, file), {}).get(column, column)

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


def _places(rows: pd.DataFrame) -> str:
    pairs = [f"{f} row {r}" for f, r in zip(rows["source_file"], rows["source_row"])]
    if len(pairs) > _MAX_PLACES:
        pairs = pairs[:_MAX_PLACES] + [f"{len(rows) - _MAX_PLACES} more"]
    return ", ".join(pairs[:-1]) + " and " + pairs[-1] if len(pairs) > 1 else pairs[0]


# --- one table: headers and parsing -----------------------------------------------------------


def _alias_lookup(kind: str) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for spec in COLUMNS[kind]:
        for name in (spec.name, *spec.aliases):
            lookup.setdefault(normalise_header(name), spec.name)
    return lookup


def _map_headers(run: _Run, kind: str, file: str, headers: list[str]) -> dict[str, str] | None:
    """canonical -> header as written, or None when a required column is missing."""
    user = run.settings.column_map.get(kind, {})
    user_normal = {normalise_header(k): v for k, v in user.items()}
    lookup = _alias_lookup(kind)
    found: dict[str, list[str]] = {}
    unknown: list[str] = []
    for header in headers:
        canonical = user.get(header, user_normal.get(normalise_header(header)))
        if canonical is None:
            canonical = lookup.get(normalise_header(header))
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
    candidates = unknown or headers
    normal = {normalise_header(h): h for h in candidates}
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
        return _within_max_amount(parsing.parse_money(text), settings.max_amount)
    if kind == "count":
        return parsing.parse_count(text)
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
    frame = _with_provenance(table)
    file = table.file.name
    # Headers are matched and shown as text; `label` finds the column again whatever its type.
    label = {str(c): c for c in frame.columns if c not in PROVENANCE}
    headers = list(label)
    mapping = _map_headers(run, kind, file, headers)
    provenance = pd.DataFrame({
        "source_file": pd.Series(frame["source_file"].to_numpy(dtype=object), dtype=object),
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
    })
    if mapping is None:
        run.exclude(kind, provenance, "the file is missing a required column")
        return None
    run.headers[(kind, file)] = mapping
    n = len(frame)
    dtypes = typed_columns(kind)
    columns: dict[str, pd.Series] = {}
    # Per row: the first problem found (the exclusion reason), and whether there is one.
    reasons = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)
    for spec in COLUMNS[kind] + DERIVED.get(kind, ()):
        header = mapping.get(spec.name)
        if header is None:
            columns[spec.name] = _absent(spec, dtypes[spec.name], n)
            continue
        raw = frame[label[header]]
        parsed = _parse(spec, raw, run.settings)
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
    key = id_column(kind)
    if key is not None:
        if not repeated_id.any():
            return frame
        sub = frame[repeated_id]
        copy = sub.duplicated(subset=content, keep="first")
    else:
        # No id: identical allocations inside one file can be separate real allocations, so only
        # repeats of a file's n-th copy in another file (an overlapping export) collapse.
        occurrence = frame.groupby(content + ["source_file"], dropna=False, sort=False).cumcount()
        sub = frame
        copy = frame[content].assign(_occurrence=occurrence).duplicated(keep="first")
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
        files = sorted(set(copies["source_file"]))
        run.issues.append(Issue(
            "warning", ", ".join(files), None, None, None,
            f"{len(copies)} {kind} "
            f"{'rows are exact copies' if len(copies) > 1 else 'row is an exact copy'}"
            f" of other rows (overlapping exports?) and counted once; the first is "
            f"{_places(copies.iloc[:1])}, a copy of {_places(originals.iloc[:1])}",
        ))
        drop[copies.index] = True
    if key is not None:
        rest = sub[~copy.to_numpy()]
        clash = rest[rest[key].duplicated(keep=False)]
        if not clash.empty:
            clash = clash.sort_values(["source_file", "source_row"], kind="stable")
            for value, rows in clash.groupby(key, sort=True):
                differ = [c for c in content if rows[c].nunique(dropna=False) > 1]
                first = rows.iloc[0]
                header = run.header(kind, first["source_file"], key)
                message = (
                    f"{header} {value} is used by {len(rows)} different rows: {_places(rows)} "
                    f"(they differ in {', '.join(differ)}). Keep one version: correct the id or "
                    "remove the out-of-date row"
                )
                run.issues.append(Issue("error", first["source_file"], int(first["source_row"]),
                                        header, str(value), message))
                run.exclude(kind, rows, message)
                drop[rows.index] = True
    return frame[~drop.to_numpy()].reset_index(drop=True)


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
        column=[FRAME_CHECK_COLUMNS.get(str(c), col) for c, col in
                zip(failures["check"], failures["column"])],
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
        messages = []
        for start, case, issue, expiry, early in zip(
            rows["starts_at"], rows["case_id"], pd.Series(issued[outside]),
            pd.Series(expires[outside]), before[outside],
        ):
            when = (f"before case {case} was issued ({_shown(issue)})" if early
                    else f"after case {case} expired ({_shown(expiry)})")
            messages.append(f"{_shown(start)} is {when}: check the appointment's case and date, "
                            "or the case's issue and expiry dates")
        run.row_issues("appointments", rows, "starts_at", rows["starts_at"].tolist(), messages,
                       severity="warning")
    return appointments


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


# --- entry point ------------------------------------------------------------------------------


def validate_tables(tables: list[RawTable], settings: Settings,
                    files: list[InputFile] | None = None) -> Dataset:
    """Map headers, parse, schema-check, de-duplicate and cross-check every table.

    Returns every issue found (sorted); rows with an error are left out of the typed frames and
    listed in `excluded`. Raises `UsageError` only for a bad setting (column map, time zone).
    """
    _check_column_map(settings.column_map, "the column map")
    try:
        zoneinfo.ZoneInfo(settings.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {settings.timezone!r}: use an IANA name like Australia/Sydney"
        ) from exc
    run = _Run(settings)
    typed: dict[str, list[pd.DataFrame]] = {}
    for table in tables:
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
        files=list(files) if files is not None else [t.file for t in tables],
        issues=issues,
        excluded=excluded,
        set_aside_allocations=(pd.concat(run.set_aside, ignore_index=True) if run.set_aside
                               else None),
    )
