"""Loading: each export file read (CSV or XLSX by its suffix) into an all-text table with provenance."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.csv_reading import load_csv
from pkgreport.inputs.discovery import (
    CSV_SUFFIXES,
    XLSX_SUFFIXES,
    discover_inputs,
    no_exports_message,
)
from pkgreport.inputs.tables import PASS_THROUGH, RESERVED_COLUMNS, RawTable, file_error, row_error
from pkgreport.inputs.xlsx_reading import load_xlsx


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
    tables: list[RawTable] = []
    for kind, path in found:
        table, file_issues = load_file(path, kind, settings)
        issues.extend(file_issues)
        if table is not None:
            tables.append(table)
    return tables, issues


def load_file(path: Path, kind: str, settings: Settings) -> tuple[RawTable | None, list[Issue]]:
    """One file as text, or None plus error issues when it cannot be read. Never raises for bad input."""
    path = Path(path)
    name = path.name
    data, problem = read_export_bytes(path, settings.max_file_bytes)
    if data is None:
        return None, [file_error(name, problem or "could not read the file")]
    suffix = path.suffix.lower()
    table, issues = _load_bytes(path, kind, data, settings)
    # A cell is never longer than the file holding it, except in a (compressed) workbook.
    if table is not None and (suffix in XLSX_SUFFIXES or len(data) > settings.max_cell_chars):
        overlong = _overlong_cells(table, settings.max_cell_chars)
        if overlong:
            return None, issues + overlong
    return table, issues


def _load_bytes(
    path: Path, kind: str, data: bytes, settings: Settings
) -> tuple[RawTable | None, list[Issue]]:
    """A file's bytes as a table, by its suffix. Never raises for bad input."""
    name = path.name
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return load_csv(path, kind, data)
        if suffix in XLSX_SUFFIXES:
            return load_xlsx(path, kind, data, settings)
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


def read_export_bytes(path: Path, max_bytes: int) -> tuple[bytes | None, str | None]:
    """A file's bytes, or None and why it was refused: only regular files, at most `max_bytes`.

    A named pipe would block forever and a device (or a link to /dev/zero) never ends, so the
    file is opened without blocking and checked on the open descriptor before anything is read;
    a link pointing out of the input folder is refused (copy the file in instead). At most one
    byte past the cap is read, so a file growing while it is read cannot exceed it either.
    """
    refused = _refused_link(path)
    if refused is not None:
        return None, refused
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return None, (
            f"could not read the file ({exc.strerror or exc}): check it exists and is not open "
            "in another program"
        )
    with os.fdopen(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, (
                f"refused: not a regular file (a {_file_type(info.st_mode)}); put the exported "
                "file itself in the input folder"
            )
        too_big = (
            f"refused: the file is larger than the limit of {max_bytes:,} bytes (setting "
            "max_file_bytes); split the export into smaller date ranges, or raise the limit"
        )
        if info.st_size > max_bytes:
            return None, too_big
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            return None, f"could not read the file ({exc.strerror or exc}): copy it again"
    if data is None or len(data) > max_bytes:
        return None, too_big
    return data, None


def _refused_link(path: Path) -> str | None:
    """Why a symbolic link may not be read (it points out of the input folder), or None."""
    try:
        if not path.is_symlink():
            return None
        target = path.resolve(strict=True)
        folder = path.parent.resolve(strict=True)
    except (OSError, RuntimeError):
        return "refused: a link that points nowhere readable; put the exported file itself in the input folder"
    if folder not in target.parents:
        return (
            f"refused: a link to {target}, outside the input folder; copy the exported file into "
            "the input folder instead"
        )
    return None


def _file_type(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "folder"),
    )
    return next((label for test, label in kinds if test(mode)), "special file")


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
