"""Loading: each export file read (CSV or XLSX by its suffix) into an all-text table with provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pkgreport.config import Settings
from pkgreport.errors import PASS_THROUGH, Issue
from pkgreport.inputs import read_ahead
from pkgreport.inputs.csv_reading import load_csv
from pkgreport.inputs.discovery import CSV_SUFFIXES, discover_inputs, no_exports_message
from pkgreport.inputs.read_ahead import read_export_bytes
from pkgreport.inputs.surrogates import name_is_text, name_not_text, shown_name
from pkgreport.inputs.tables import RESERVED_COLUMNS, RawTable, file_error, row_error
from pkgreport.inputs.xlsx_reading import load_xlsx
from pkgreport.inputs.xlsx_sheet import XLSX_SUFFIXES, OpenSheet, SheetRefused


def load_folder(input_dir: Path, settings: Settings) -> tuple[list[RawTable], list[Issue]]:
    """Every readable input file in the folder; issues from all files are collected, never raised.

    A folder with no export at all is an error (a half-copied or wrong folder must not give an
    all-clear report).
    """
    found, issues = discover_inputs(
        input_dir, settings.output_dir, lambda path: kinds_from_header(path, settings)
    )
    if not found and not any(i.severity == "error" for i in issues):
        issues.append(file_error(str(input_dir), no_exports_message(input_dir)))
    # A workbook read ahead already is loaded first, while the others are still being read
    # (a small one while the biggest is parsed); tables and issues keep the files' order.
    loaded: dict[int, tuple[RawTable | None, list[Issue]]] = {}
    for k in sorted(range(len(found)), key=lambda k: not read_ahead.is_done(found[k][1])):
        kind, path = found[k]
        loaded[k] = load_file(path, kind, settings)
    tables: list[RawTable] = []
    for k in range(len(found)):
        table, file_issues = loaded.pop(k)
        issues.extend(file_issues)
        if table is not None:
            tables.append(table)
    read_ahead.discard()
    return tables, issues


def load_file(path: Path, kind: str, settings: Settings) -> tuple[RawTable | None, list[Issue]]:
    """One file as text, or None plus error issues when it cannot be read. Never raises for bad input."""
    path = Path(path)
    name = path.name
    early = read_ahead.take(path, settings)
    if not name_is_text(name):  # every message and report names the file its rows come from
        return None, [file_error(shown_name(name), name_not_text(name))]
    if early is None:
        data, problem = read_export_bytes(path, settings.max_file_bytes)
    elif early.failed is not None and early.data is None:
        raise early.failed  # as reading the bytes here would have raised it
    else:
        data, problem = early.data, early.problem
    if data is None:
        return None, [file_error(name, problem or "could not read the file")]
    suffix = path.suffix.lower()
    read_ahead.hash_beside(data)
    try:
        table, issues = _load_bytes(path, kind, data, settings, early)
    finally:
        read_ahead.forget_hash(data)  # taken by the table, unless it could not be made
    # A cell is never longer than the file holding it, except in a (compressed) workbook.
    if table is not None and (suffix in XLSX_SUFFIXES or len(data) > settings.max_cell_chars):
        overlong = _overlong_cells(table, settings.max_cell_chars)
        if overlong:
            return None, issues + overlong
    return table, issues


def _load_bytes(
    path: Path,
    kind: str,
    data: bytes,
    settings: Settings,
    early: read_ahead.Reading | None = None,
) -> tuple[RawTable | None, list[Issue]]:
    """A file's bytes as a table, by its suffix (a workbook's sheet as `early` read it, when it
    was read ahead). Never raises for bad input."""
    name = path.name
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return load_csv(path, kind, data)
        if suffix in XLSX_SUFFIXES:
            return load_xlsx(path, kind, data, settings, _sheet_read_ahead(early))
    except PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - bad input must become an issue, never a traceback
        return None, [
            file_error(
                name,
                f"could not read the file ({type(exc).__name__}: {exc}); open it and export it again as CSV UTF-8 or .xlsx",
            )
        ]
    return None, [
        file_error(
            name,
            f"unsupported file type {suffix or '(none)'!r}: export it as CSV (.csv) or Excel (.xlsx)",
        )
    ]


def _sheet_read_ahead(early: read_ahead.Reading | None) -> OpenSheet | SheetRefused | None:
    """The sheet a thread read ahead, or None; what it raised is raised here, as if read here."""
    if early is None:
        return None
    if early.failed is not None:
        raise early.failed
    return early.sheet


_MAX_LONG_CELL_ISSUES = 5


def _overlong_cells(table: RawTable, max_chars: int) -> list[Issue]:
    """An error for each of the first cells longer than `max_chars` (a damaged or hostile file)."""
    if table.longest_cell_bytes is not None and table.longest_cell_bytes <= max_chars:
        return []
    frame = table.frame
    found: list[tuple[int, str, str, int]] = []
    for column in frame.columns:
        if column in RESERVED_COLUMNS:
            continue
        values = frame[column].to_numpy()
        # max() over map() runs in C, twice as fast as building the lengths; rarely needed after.
        if len(values) == 0 or max(map(len, values)) <= max_chars:
            continue
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        for i in np.flatnonzero(lengths > max_chars)[:_MAX_LONG_CELL_ISSUES]:
            row = int(frame["source_row"].iat[i])
            found.append((row, column, values[i][:40] + "...", int(lengths[i])))
    found.sort()
    issues = [
        row_error(
            table.file.name,
            row,
            column,
            start,
            f"the cell holds {length:,} characters, over the limit of {max_chars:,} (setting "
            "max_cell_chars): no export field is that long, so the file is damaged; fix the "
            "cell or export the file again",
        )
        for row, column, start, length in found[:_MAX_LONG_CELL_ISSUES]
    ]
    if len(found) > _MAX_LONG_CELL_ISSUES:
        issues.append(file_error(table.file.name, "more cells are over the length limit"))
    return issues


def kinds_from_header(path: Path, settings: Settings) -> tuple[str, ...]:
    """The kinds whose columns a file's header fits best: one when a kind stands out, two or more
    on a tie, none when no kind fits.

    Each header counts for every kind it names a column of, shared equally (`ID` and
    `Patient ID` belong to many kinds, `Invoice Number` to one), so distinctive columns decide.
    Headers the mapping (`--columns`, `--source`) renames count for the kind they are mapped in.
    """
    from pkgreport.inputs.schemas import COLUMNS, normalise_header

    if path.suffix.lower() not in CSV_SUFFIXES | XLSX_SUFFIXES:
        return ()
    table, _ = load_file(path, "unknown", settings)
    if table is None:
        return ()
    kinds_of: dict[str, set[str]] = {}
    for kind, headers in _headers_of_kinds(settings).items():
        for header in headers:
            kinds_of.setdefault(normalise_header(header), set()).add(kind)
    scores = dict.fromkeys(COLUMNS, 0.0)
    for header in table.frame.columns.drop(list(RESERVED_COLUMNS)):
        kinds = kinds_of.get(normalise_header(header), set())
        for kind in kinds:
            scores[kind] += 1 / len(kinds)
    best = max(scores.values())
    return (
        tuple(sorted(kind for kind, score in scores.items() if score == best)) if best >= 1 else ()
    )


def _headers_of_kinds(settings: Settings) -> dict[str, list[str]]:
    """Every header each kind is known by: its columns' names and aliases, and the source
    columns the mapping (`--source`, `--columns`) names in that kind's table."""
    from pkgreport.inputs.mapping import parse_mapping
    from pkgreport.inputs.schemas import COLUMNS

    known = {
        kind: [n for spec in specs for n in (spec.name, *spec.aliases)]
        for kind, specs in COLUMNS.items()
    }
    for kind, table in settings.column_map.items():
        # Parsed alone, so that columns one kind splits off count for the file's own kind.
        kind_map = parse_mapping({kind: table}, "the column map").kind(kind)
        known[kind] += [
            *(header for header, canonical in kind_map.renames.items() if canonical),
            *(header for headers in kind_map.joins.values() for header in headers),
            *kind_map.last_segments.values(),
            *(header for flag in kind_map.flags for header in (flag.flag, flag.date) if header),
            *kind_map.checks.values(),
            *(header for columns in kind_map.splits.values() for header in columns.values()),
        ]
    return known
