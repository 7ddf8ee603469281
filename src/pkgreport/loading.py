"""Export files -> all-text frames with `source_file` and `source_row`; encodings, dialects, xlsx safety."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.parsing import unwrap_excel_text
from pkgreport.result import (
    HISTORY_FOLDER,
    LOCK_NAME,
    OWN_OUTPUT_PREFIX,
    OWN_OUTPUT_SUFFIXES,
    InputFile,
)


@dataclass(frozen=True)
class RawTable:
    """One file's rows as text.

    `frame` has the file's headers exactly as written (surrounding whitespace stripped), every value
    a `str` (a blank cell is ""), plus `source_file` (str) and `source_row` (int64: the row as the
    user's spreadsheet numbers it, header = row 1).
    """

    file: InputFile
    frame: pd.DataFrame
    # False when the file's text holds no "+" anywhere, so no cell is written in scientific
    # notation (an id rounded by a spreadsheet): the check per id column can skip its scan.
    may_hold_scientific: bool = True


# --------------------------------------------------------------------------------------------
# Kinds and discovery
# --------------------------------------------------------------------------------------------

KIND_WORDS: dict[str, str] = {
    "appointments": "appointments",
    "appointment": "appointments",
    "cases": "cases",
    "case": "cases",
    "invoices": "invoices",
    "invoice": "invoices",
    "payments": "payments",
    "payment": "payments",
    "allocations": "allocations",
    "allocation": "allocations",
    "patients": "patients",
    "patient": "patients",
}

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
# .xls goes through the xlsx pre-flight so a legacy workbook gets the "re-save as .xlsx" message.
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})

RESERVED_COLUMNS = ("source_file", "source_row")
# Everything else a reader throws (even a Rust panic, which pyo3 raises as a BaseException) becomes
# an issue; these still stop the program.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)
_KIND_LIST = "appointments, cases, invoices, payments, allocations, patients"
# The words of a file name: runs of letters, split where a capital starts a word (PatientCases).
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def kinds_named(path: Path) -> tuple[str, ...]:
    """The kinds a file's name names, by any word of it (case-insensitive), sorted.

    A plural word names the kind; a singular one (`Patient` in `Patient_Cases`, `Payment` in
    `Payment_Allocations`) counts only when no plural word names a kind.
    """
    words = [word.casefold() for word in _NAME_WORD.findall(Path(path).stem)]
    plural = {KIND_WORDS[word] for word in words if word in KIND_WORDS and KIND_WORDS[word] == word}
    singular = {KIND_WORDS[word] for word in words if word in KIND_WORDS}
    return tuple(sorted(plural or singular))


def kind_of(path: Path) -> str | None:
    """The one kind a file's name names (see `kinds_named`), or None for none or several."""
    kinds = kinds_named(path)
    return kinds[0] if len(kinds) == 1 else None


NOTE_SUFFIXES = frozenset({".md", ".toml", ".pdf", ".docx", ".json", ".log", ".ini", ".yaml", ".yml"})


def discover_inputs(
    input_dir: Path,
    output_dir: Path | None = None,
    judge: Callable[[Path], tuple[str, ...]] | None = None,
) -> tuple[list[tuple[str, Path]], list[Issue]]:
    """The (kind, path) of each input file in the folder (not its sub-folders), sorted by name.

    pkgreport's own outputs (`output_dir`, when it is the input folder or a folder inside it) are
    never read or mentioned: a report must not change because the previous one sits beside it.
    `judge` tells the kinds whose columns a file's header fits best (`kinds_from_header`): a file
    whose name names no kind is read as the one kind its header shows.
    """
    folder = str(input_dir)
    try:
        if not input_dir.exists():
            return [], [_file_error(folder, "input folder not found: check the path you gave")]
        if not input_dir.is_dir():
            return [], [
                _file_error(
                    folder,
                    "the input path is a file, not a folder: give the folder that holds the exports",
                )
            ]
        entries = sorted(input_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        return [], [
            _file_error(
                folder,
                f"cannot read the input folder ({exc.strerror or exc}): check it exists and you may read it",
            )
        ]

    found: list[tuple[str, Path]] = []
    issues: list[Issue] = []
    own_output = _own_output(input_dir, output_dir)
    for path in entries:
        if own_output(path):
            continue
        skipped = _skipped_entry(path)
        if skipped is not None:
            issues.append(skipped)
            continue
        kind, issue = _kind_for(path, judge)
        if issue is not None:
            issues.append(issue)
        if kind is not None:
            found.append((kind, path))
    return found, issues


def _skipped_entry(path: Path) -> Issue | None:
    """Why an entry of the input folder is not an export (hidden, lock file, folder), or None."""
    name = path.name
    if name.startswith("."):
        return _warning(name, "ignored: hidden file")
    if name.startswith("~$"):
        return _warning(
            name,
            "ignored: Excel lock file (the workbook is open in Excel); close Excel if the real file is missing",
        )
    try:
        is_dir = path.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        return _warning(
            name,
            "ignored: sub-folder (only files directly in the input folder are read); move its files up if they are needed",
        )
    return None


def _kind_for(
    path: Path, judge: Callable[[Path], tuple[str, ...]] | None
) -> tuple[str | None, Issue | None]:
    """The kind to read a file as (from its name, else its header), and what to tell the user."""
    name = path.name
    named = kinds_named(path)
    if len(named) == 1:
        return named[0], None
    if not named and path.suffix.casefold() in NOTE_SUFFIXES:
        # A README or notes beside the exports is normal; say so without raising a warning.
        return None, Issue("info", name, None, None, None, "ignored: not an export (notes or settings file)")
    judged = judge(path) if judge else ()
    if named:
        return None, _file_error(name, _two_kinds_named(name, named, judged))
    if len(judged) == 1:
        return judged[0], Issue(
            "info", name, None, None, None,
            f"read as {judged[0]}: the file name names no kind, and its columns are those of "
            f"{judged[0]} (name it e.g. '{judged[0]}-{name}' to say so)",
        )
    if judged:
        return None, _file_error(name, _two_kinds_in_header(name, judged))
    return None, _warning(name, _rename_advice(name))


# Every message about a file left unread starts so (`validate` counts the warnings among them).
IGNORED = "ignored: "


def _rename_advice(name: str) -> str:
    return (
        f"{IGNORED}the file name names no kind ({_KIND_LIST}), and its header does not show "
        f"which it holds; if it is an export, put its kind in the name, e.g. "
        f"'payments-{name}'"
    )


_NOT_AN_EXPORT = " (or move it out of the folder if it is not an export)"


def _two_kinds_named(name: str, named: tuple[str, ...], judged: tuple[str, ...]) -> str:
    shown = [kind for kind in judged if kind in named] or list(named)
    header = f"; its columns are those of {shown[0]}" if len(shown) == 1 and judged else ""
    others = [w for w in re.split(r"[^A-Za-z0-9]+", Path(name).stem) if w and w.casefold() not in KIND_WORDS]
    example = "-".join([shown[0], *others]) + Path(name).suffix
    return (
        f"the file name names more than one kind ({', '.join(named)}), so pkgreport cannot tell "
        f"which it holds{header}: rename it so that one kind word appears, e.g. '{example}'"
        f"{_NOT_AN_EXPORT}"
    )


def _two_kinds_in_header(name: str, judged: tuple[str, ...]) -> str:
    return (
        f"the file name names no kind, and its columns fit {' and '.join(judged)} equally, so "
        f"pkgreport cannot tell which it holds: rename it to start with its kind, e.g. "
        f"'{judged[0]}-{name}' or '{judged[1]}-{name}'{_NOT_AN_EXPORT}"
    )


def kinds_from_header(path: Path, settings: Settings) -> tuple[str, ...]:
    """The kinds whose columns a file's header fits best: one when a kind stands out, two or more
    on a tie, none when no kind fits.

    Each header counts for every kind it names a column of, shared equally (`ID` and
    `Patient ID` belong to many kinds, `Invoice Number` to one), so distinctive columns decide.
    Headers the mapping (`--columns`, `--source`) renames count for the kind they are mapped in.
    """
    from pkgreport.schemas import COLUMNS, normalise_header

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
    return tuple(sorted(kind for kind, score in scores.items() if score == best)) if best >= 1 else ()


def _headers_of_kinds(settings: Settings) -> dict[str, list[str]]:
    """Every header each kind is known by: its columns' names and aliases, and the source
    columns the mapping (`--source`, `--columns`) names in that kind's table."""
    from pkgreport.mapping import parse_mapping
    from pkgreport.schemas import COLUMNS

    known = {kind: [n for spec in specs for n in (spec.name, *spec.aliases)] for kind, specs in COLUMNS.items()}
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


def _own_output(input_dir: Path, output_dir: Path | None) -> Callable[[Path], bool]:
    """Whether an entry of the input folder is one of pkgreport's outputs (known by its name, as
    when the input folder is also the output folder), or the output folder or one holding it."""
    output = None
    if output_dir is not None:
        with contextlib.suppress(OSError):
            output = output_dir.resolve()

    def is_own(path: Path) -> bool:
        name = path.name
        if name in (HISTORY_FOLDER, LOCK_NAME) or (
            name.startswith(OWN_OUTPUT_PREFIX) and path.suffix.casefold() in OWN_OUTPUT_SUFFIXES
        ):
            return True
        if output is None:
            return False
        try:
            resolved = path.resolve()
        except OSError:
            return False
        return resolved == output or resolved in output.parents

    return is_own


def no_exports_message(input_dir: Path) -> str:
    """What to put in a folder that holds no exports (one wording for every command)."""
    return (
        f"no exports found in {input_dir}: put this month's exports in that folder, one file per "
        "kind, each named starting with its kind (appointments, cases, invoices, payments, and "
        "optionally allocations and patients), e.g. Appointments-Cliniko-20261101.csv or "
        "invoices.xlsx (CSV or XLSX); appointments with cases, or invoices with payments, make "
        "a report"
    )


def load_folder(input_dir: Path, settings: Settings) -> tuple[list[RawTable], list[Issue]]:
    """Every readable input file in the folder; issues from all files are collected, never raised.

    A folder with no export at all is an error (a half-copied or wrong folder must not give an
    all-clear report).
    """
    found, issues = discover_inputs(
        input_dir, settings.output_dir, lambda path: kinds_from_header(path, settings)
    )
    if not found and not any(i.severity == "error" for i in issues):
        issues.append(_file_error(str(input_dir), no_exports_message(input_dir)))
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
        return None, [_file_error(name, problem or "could not read the file")]
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
            return _load_csv(path, kind, data)
        if suffix in XLSX_SUFFIXES:
            return _load_xlsx(path, kind, data, settings)
    except _PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - bad input must become an issue, never a traceback
        return None, [
            _file_error(
                name,
                f"could not read the file ({type(exc).__name__}: {exc}); open it and export it again as CSV UTF-8 or .xlsx",
            )
        ]
    return None, [
        _file_error(
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
        _error(
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
        issues.append(_file_error(table.file.name, "more cells are over the length limit"))
    return issues


# --------------------------------------------------------------------------------------------
# CSV / TSV
# --------------------------------------------------------------------------------------------

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_RECORDS = 100
_SNIFF_CHARS = 1 << 20
# Quote characters other than '"' that some tools use: a field wrapped in one of them means the
# file's dialect is not the one we can read reliably.
_FOREIGN_QUOTED = re.compile(r"^\s*([#'~`])(.*)\1\s*$", re.DOTALL)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_REEXPORT = "export it again as 'CSV UTF-8 (Comma delimited)'"
_SEP_LINE = re.compile(r"sep=(.)[ \t]*\n")


def _load_csv(path: Path, kind: str, data: bytes) -> tuple[RawTable | None, list[Issue]]:
    fast = _load_plain_utf8_csv(path, kind, data)
    if fast is not None:
        return fast
    name = path.name
    text, encoding, issues = _decode(name, data)
    if text is None:
        return None, issues
    reuse_bytes = encoding == "utf-8"
    if "\r" in text:
        # Excel on Windows writes CRLF, classic Mac CR; inside quoted notes too.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        reuse_bytes = False

    lead, body = _skip_leading_blank_lines(text)
    if body is None:
        return None, issues + [
            _file_error(
                name, "empty file: no header row; export the data again with its header row"
            )
        ]
    header_row = lead + 1

    declared = _SEP_LINE.match(body)
    if declared:
        # Excel's "sep=;" first line names the delimiter; Excel hides the line, so rows keep
        # the numbers Excel shows.
        delimiter, problem = declared.group(1), None
        if delimiter not in DELIMITERS:
            problem = f"unsupported delimiter {delimiter!r} named by the 'sep=' line: export it again comma-separated"
        body = body[declared.end() :]
        if not body.strip():
            problem = "empty file: no header row after the 'sep=' line; export the data again with its header row"
    else:
        delimiter, problem = _sniff_delimiter(body)
    if problem is not None:
        return None, issues + [_file_error(name, problem)]

    if "\x00" in body:
        return None, issues + _nul_issues(name, body, delimiter, header_row)

    raw = data if reuse_bytes and lead == 0 and not declared else body.encode("utf-8")
    frame, bad_rows = _parse_with_pandas(body, delimiter, raw)
    if frame is None:
        return None, issues + _structure_issues(name, body, delimiter, header_row)
    if bad_rows:
        return None, issues + _structure_issues(
            name, body, delimiter, header_row, only=set(bad_rows)
        )

    if not body.endswith("\n"):
        unterminated = _cut_short(name, frame, header_row)
        if unterminated is not None:
            issues = issues + [unterminated]
    headers = [str(h).strip() for h in frame.iloc[0].tolist()]
    frame = frame.iloc[1:]
    rows = pd.RangeIndex(header_row + 1, header_row + 1 + len(frame))
    return _finish_table(
        path,
        kind,
        data,
        frame,
        headers,
        rows.to_numpy(dtype="int64"),
        header_row,
        issues,
        encoding=encoding,
        delimiter=delimiter,
    )


# The plain-file path decodes this much of the head for the checks below (4 bytes per character
# at most in UTF-8, so at least the sniffer's sample is whole).
_HEAD_BYTES = 4 * _SNIFF_CHARS + 8


def _load_plain_utf8_csv(
    path: Path, kind: str, data: bytes
) -> tuple[RawTable | None, list[Issue]] | None:
    """The common case without decoding the whole file: None whenever the exact path is needed.

    Decoding a large export to one `str` costs ~0.3 s per 100 MB and twice its size in memory, and
    only the checks of `_load_csv` use it. For a file with no byte-order mark, no CR, no NUL, no
    blank line before the header and no 'sep=' line, those checks need only the head; the rest of
    the text is decoded field by field by pandas, strictly, so invalid UTF-8 anywhere makes
    `read_csv` fail (a ValueError) and the exact path then reads the file as Windows-1252, as
    before. Any structure problem also goes to the exact path, which reports it.
    """
    if any(data.startswith(bom) for bom, _ in _BOMS) or b"\r" in data or b"\x00" in data:
        return None
    whole = len(data) <= _HEAD_BYTES
    head_bytes = data if whole else data[:_HEAD_BYTES]
    if not whole:
        # Cut before the last character, which may be split by the byte limit.
        cut = len(head_bytes) - 1
        while cut > 0 and 0x80 <= head_bytes[cut] < 0xC0:
            cut -= 1
        head_bytes = head_bytes[:cut]
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not whole and "\n" not in head:
        return None  # a first line longer than the head: too odd to judge from it
    lead, body_head = _skip_leading_blank_lines(head)
    if lead or body_head is None or _SEP_LINE.match(head):
        return None
    delimiter, problem = _sniff_delimiter(head, whole=whole)
    if problem is not None:
        return None
    frame, bad_rows = _parse_with_pandas(None, delimiter, data)
    if frame is None or bad_rows:
        return None
    ending: list[Issue] = []
    if not data.endswith(b"\n"):
        unterminated = _cut_short(path.name, frame, 1)
        ending = [] if unterminated is None else [unterminated]
    headers = [str(h).strip() for h in frame.iloc[0].tolist()]
    frame = frame.iloc[1:]
    rows = np.arange(2, 2 + len(frame), dtype=np.int64)
    return _finish_table(
        path, kind, data, frame, headers, rows, 1, ending, encoding="utf-8", delimiter=delimiter
    )


def _cut_short(name: str, frame: pd.DataFrame, header_row: int) -> Issue | None:
    """A warning when a file with data rows does not end with a line break: it may be cut short.

    A copy or download that stopped early ends inside its last row. When that row still has every
    field, only its last value is shorter than it should be, which nothing else can detect; some
    programs do omit the final line break, so that value is named for the user to check rather
    than refused. (A last row with fewer fields, or inside an open quote, is an error elsewhere.)
    """
    if len(frame) <= 1:
        return None
    row = header_row + len(frame) - 1
    return Issue(
        "warning",
        name,
        row,
        str(frame.iat[0, -1]).strip(),
        str(frame.iat[-1, -1]),
        f"the file does not end with a line break, so it may have been cut short by a copy or "
        f"download that did not finish: check that row {row}, the last, is complete (its last "
        "value especially); if it is not, export or copy the file again",
    )


def _decode(name: str, data: bytes) -> tuple[str | None, str | None, list[Issue]]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                return (
                    None,
                    None,
                    [
                        _error(
                            name,
                            _row_at(data, exc.start),
                            None,
                            None,
                            f"the file starts with a {codec} byte-order mark but is not valid {codec} (byte {exc.start}); {_REEXPORT}",
                        )
                    ],
                )
            return text.removeprefix("\ufeff"), codec, []
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as utf8_error:
        first_bad = utf8_error.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        return (
            None,
            None,
            [
                _error(
                    name,
                    _row_at(data, exc.start),
                    None,
                    None,
                    f"the file is neither UTF-8 nor Windows-1252 text (undecodable byte at offset {exc.start}); {_REEXPORT}",
                )
            ],
        )
    return (
        text,
        "cp1252",
        [
            Issue(
                "warning",
                name,
                _row_at(data, first_bad),
                None,
                None,
                "the file is not UTF-8, so it was read as Windows-1252 (Excel's 'CSV (Comma delimited)'); "
                f"check accented characters, and {_REEXPORT} next time",
            )
        ],
    )


def _row_at(data: bytes, offset: int) -> int:
    """The line of a byte offset (1-based); a good guess at the row for encoding problems."""
    chunk = data[:offset]
    return chunk.count(b"\n") + 1 if b"\n" in chunk else chunk.count(b"\r") + 1


def _skip_leading_blank_lines(text: str) -> tuple[int, str | None]:
    lead = 0
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
        if line.strip():
            return lead, text[pos:]
        lead += 1
        if end < 0:
            break
        pos = end + 1
    return lead, None


def _sample_records(body: str, delimiter: str, whole: bool = True) -> list[list[str]]:
    """The first records, read from the start of `body` (`whole`: all of the text, not a head)."""
    sample = body[:_SNIFF_CHARS]
    reader = csv.reader(
        io.StringIO(sample), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
    )
    records: list[list[str]] = []
    try:
        for record in itertools.islice(reader, _SNIFF_RECORDS + 2):
            records.append(record)  # noqa: PERF402 - keeps the records read before an error
    except csv.Error:
        # e.g. a note longer than the csv module's field limit: judge on the records before it.
        pass
    else:
        if (len(body) > len(sample) or not whole) and len(records) > 1:
            records.pop()  # may be cut off by the sample's end
    return [r for r in records if r]


def _sniff_delimiter(body: str, whole: bool = True) -> tuple[str, str | None]:
    """The delimiter from the whitelist, or a message saying the dialect could not be determined.

    `body` may be only the head of the text (`whole` False) if it holds the sniffer's sample.
    """
    cant = (
        "could not determine the CSV dialect (delimiter and quoting): export it again as "
        "comma-separated values with fields quoted by double quotes (\"), e.g. Excel's 'CSV UTF-8'"
    )
    trials: dict[str, list[list[str]]] = {}
    for delimiter in DELIMITERS:
        records = _sample_records(body, delimiter, whole)
        if records:
            trials[delimiter] = records
    if not trials:
        return ",", cant
    widths = {d: len(r[0]) for d, r in trials.items()}
    consistent = [
        d for d, r in trials.items() if widths[d] > 1 and all(len(x) == widths[d] for x in r)
    ]
    if consistent:
        return max(consistent, key=lambda d: (widths[d], -DELIMITERS.index(d))), None
    widest = max(trials, key=lambda d: (widths[d], -DELIMITERS.index(d)))
    if widths[widest] == 1:
        # A single-column file (e.g. patients with only patient_id): prefer a delimiter that never
        # splits a record, so ragged rows still get reported by the structure check.
        for d in DELIMITERS:
            if d in trials and all(len(x) == 1 for x in trials[d]):
                return d, None
        return ",", None
    if any(_FOREIGN_QUOTED.match(field) for record in trials[widest] for field in record):
        return widest, cant
    return widest, None


def _parse_with_pandas(
    body: str | None, delimiter: str, raw: bytes
) -> tuple[pd.DataFrame | None, list[int]]:
    """All records (header first) as text; None when pandas finds a structure error.

    `raw` is `body` as UTF-8 (the C parser is ~2x faster on bytes than on a StringIO); `body` may
    be None, and is then decoded from `raw` if the csv module is needed. The second
    value lists record indexes (0 = header) whose field count differs from the header's: pandas
    raises on a long row but pads a short one with "" silently, so short rows are found here.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            sep=delimiter,
            header=None,
            dtype=object,
            encoding="utf-8",
            quotechar='"',
            doublequote=True,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error):
        return None, []
    width = frame.shape[1]
    if width == 1 or len(frame) <= 1:
        return frame, []
    # A short row's last field is pandas' "" padding, so only rows ending in "" can be short.
    last = frame.iloc[:, width - 1].to_numpy()
    if not (last[1:] == "").any():
        return frame, []
    # No quoting: every delimiter separates fields, and (long rows having raised) the total is
    # exactly what full-width rows need unless some row is short. Blank rows may be empty lines
    # (no delimiter) or bare delimiters, so the shortcut needs there to be none.
    full_width = len(frame) * (width - 1)
    unquoted = raw.find(b'"') < 0
    if unquoted and not _blank_rows(frame).any() and raw.count(delimiter.encode()) == full_width:
        return frame, []
    counts = _record_field_counts(raw, delimiter)
    if len(counts) != len(frame):
        # Stray quotes make the byte-level count and pandas disagree: count with the csv module.
        counted = _field_counts(raw.decode("utf-8") if body is None else body, delimiter)
        if counted is None or len(counted) != len(frame):
            return None, []
        counts = np.asarray(counted)
    bad = counts != width
    bad[0] = False
    if bad.any():
        bad &= ~_blank_rows(frame)
    return frame, [int(i) for i in bad.nonzero()[0]]


def _record_field_counts(raw: bytes, delimiter: str) -> np.ndarray:
    """Fields per record, vectorised: a byte is inside quotes when an odd number of '"' precede it.

    That parity rule is exact for RFC 4180 text (a doubled quote toggles twice); for text with
    stray quotes the record count disagrees with pandas' and the caller falls back to the csv module.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    newline = buf == 10
    delim = buf == ord(delimiter)
    if raw.find(b'"') >= 0:
        # uint8 wraps at 256, which keeps the parity we need and an eighth of int64's memory.
        outside = (np.cumsum(buf == 34, dtype=np.uint8) & 1) == 0
        newline &= outside
        delim &= outside
    ends = np.flatnonzero(newline)
    if not raw.endswith(b"\n"):
        ends = np.append(ends, len(buf))
    # Delimiters before each record's end, differenced: 1M binary searches, not 11M.
    before = np.searchsorted(np.flatnonzero(delim), ends)
    return np.diff(before, prepend=0) + 1


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose every value is "" (blank lines, rows of bare delimiters, empty sheet rows)."""
    return _blank_in([frame.iloc[:, j].to_numpy() for j in range(frame.shape[1])], len(frame))


def _blank_in(arrays: list[np.ndarray], length: int) -> np.ndarray:
    blank = np.ones(length, dtype=bool)
    for values in arrays:
        rows = blank.nonzero()[0]
        if len(rows) == 0:
            break
        # Only rows still blank are compared, so a full-width pass happens only on blank data.
        blank[rows] = values[rows] == ""
    return blank


def _field_counts(body: str, delimiter: str) -> list[int] | None:
    try:
        reader = csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"', strict=False)
        return [len(record) for record in reader]
    except csv.Error:
        return None


def _structure_issues(
    name: str, body: str, delimiter: str, header_row: int, only: set[int] | None = None
) -> list[Issue]:
    """Every record whose field count differs from the header's, found with the csv module."""
    issues: list[Issue] = []
    reader = csv.reader(
        io.StringIO(body), delimiter=delimiter, quotechar='"', doublequote=True, strict=True
    )
    width = None
    index = -1
    sep = _DELIMITER_NAMES[delimiter]
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row = header_row + index + 1
            issues.append(
                _error(
                    name,
                    row,
                    None,
                    None,
                    f'the row starting at row {row} is not valid CSV ({exc}): look for a stray or unclosed double quote (") and export it again',
                )
            )
            break
        index += 1
        if width is None:
            width = len(record)
            continue
        if not record or all(v == "" for v in record) or (only is not None and index not in only):
            continue
        if len(record) != width:
            row = header_row + index
            issues.append(
                _error(
                    name,
                    row,
                    None,
                    delimiter.join(record),
                    f"row {row} has {_fields(len(record))} but the header has {width} ({sep}-separated): "
                    f"a value holds an unquoted {sep} or a field is missing; fix the row and export again",
                )
            )
    if not issues:
        issues.append(
            _file_error(
                name,
                f"the rows do not all have the header's number of fields ({sep}-separated); export the file again",
            )
        )
    return issues


def _fields(count: int) -> str:
    return f"{count} field" if count == 1 else f"{count} fields"


_MAX_NUL_ISSUES = 20


def _nul_issues(name: str, body: str, delimiter: str, header_row: int) -> list[Issue]:
    """Where the NUL bytes sit (the first few cells; a binary file would have thousands)."""
    issues: list[Issue] = []
    header: list[str] = []
    total = body.count("\x00")
    reader = csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"', strict=False)
    with contextlib.suppress(csv.Error):
        for index, record in enumerate(reader):
            if index == 0:
                header = [h.strip() for h in record]
            for j, field in enumerate(record):
                if "\x00" in field and len(issues) < _MAX_NUL_ISSUES:
                    row = header_row + index
                    column = header[j] if index > 0 and j < len(header) else f"{j + 1}"
                    issues.append(
                        _error(
                            name,
                            row,
                            column,
                            field.replace("\x00", "\\x00"),
                            f"NUL byte at row {row}, column {column}: the file is damaged or not a "
                            f"text export; {_REEXPORT}",
                        )
                    )
            if len(issues) >= _MAX_NUL_ISSUES:
                break
    shown = sum(i.value.count("\\x00") for i in issues if i.value)
    if total > shown:
        issues.append(
            _file_error(
                name,
                f"{total - shown:,} more NUL byte(s): the file is damaged or not a text export; "
                f"{_REEXPORT}",
            )
        )
    return issues


# --------------------------------------------------------------------------------------------
# Shared: headers, blank rows, the output frame
# --------------------------------------------------------------------------------------------


def _finish_table(
    path: Path,
    kind: str,
    data: bytes,
    frame: pd.DataFrame,
    headers: list[str],
    rows: np.ndarray,
    header_row: int,
    issues: list[Issue],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    trailing_blank_header_is_warning: bool = False,
) -> tuple[RawTable | None, list[Issue]]:
    """Header checks, blank-row removal and provenance columns, for CSV and XLSX alike."""
    name = path.name
    errors: list[Issue] = []
    arrays = [frame.iloc[:, j].to_numpy() for j in range(frame.shape[1])]
    keep_cols: list[int] = []
    last_named = max((j for j, h in enumerate(headers) if h), default=-1)
    for j, header in enumerate(headers):
        if header:
            keep_cols.append(j)
            continue
        filled = (arrays[j] != "").nonzero()[0]
        if len(filled) == 0:
            continue  # a wholly blank column: an export artefact, nothing is lost
        first = int(filled[0])
        where = f"column {j + 1} ({_column_letter(j)})"
        value = str(arrays[j][first])
        if trailing_blank_header_is_warning and j > last_named:
            issues.append(
                Issue(
                    "warning",
                    name,
                    int(rows[first]),
                    None,
                    value,
                    f"{where} has no header, so its {len(filled)} value(s) beside the table were ignored; give it a header if it is data",
                )
            )
            continue
        errors.append(
            _error(
                name,
                int(rows[first]),
                None,
                value,
                f"{where} has a blank header but holds values: add a header to that column or delete it, then export again",
            )
        )

    if not keep_cols and not errors:
        errors.append(
            _error(
                name,
                header_row,
                None,
                None,
                f"the header row (row {header_row}) holds no column names: put the headers in the first row and export again",
            )
        )
    seen: dict[str, list[int]] = {}
    for j in keep_cols:
        seen.setdefault(headers[j], []).append(j)
    for header, positions in seen.items():
        if len(positions) > 1:
            cols = ", ".join(str(p + 1) for p in positions)
            errors.append(
                _error(
                    name,
                    header_row,
                    header,
                    header,
                    f"duplicate header {header!r} (columns {cols}): rename or delete the extra columns so each header appears once",
                )
            )
        if header in RESERVED_COLUMNS:
            errors.append(
                _error(
                    name,
                    header_row,
                    header,
                    header,
                    f"the header {header!r} is reserved by pkgreport for provenance: rename that column",
                )
            )
    if errors:
        return None, issues + errors

    rows = np.asarray(rows, dtype="int64")
    # Rows holding values only in ignored columns are blank as far as the table goes.
    blank = (
        _blank_in([arrays[j] for j in keep_cols], len(rows))
        if keep_cols
        else np.zeros(len(rows), dtype=bool)
    )
    if blank.any():
        blank_numbers = [int(r) for r in rows[blank]]
        shown = ", ".join(str(r) for r in blank_numbers[:20])
        more = f" and {len(blank_numbers) - 20} more" if len(blank_numbers) > 20 else ""
        issues.append(
            Issue(
                "warning", name, blank_numbers[0], None, None, f"blank row(s) {shown}{more} skipped"
            )
        )
        keep = ~blank
        arrays = [a[keep] for a in arrays]
        rows = rows[keep]

    # A one-byte search (memchr) rules out the usual file at once: no "=" means no ="…" cell,
    # no "+" no 1.01754E+18. A sheet's cells, and UTF-16/32 bytes, are not searched so.
    searchable = sheet is None and not (encoding or "").startswith(("utf-16", "utf-32"))
    if not searchable or b"=" in data:
        # Cliniko writes long ids as ="1558354464010667075" so a spreadsheet keeps every digit.
        arrays = [unwrap_excel_text(a) if j in keep_cols else a for j, a in enumerate(arrays)]
    # dtype=object: pandas 3 would otherwise re-check every value to infer its "str" dtype.
    out = pd.DataFrame({headers[j]: arrays[j] for j in keep_cols}, dtype=object, copy=False)
    source_file = np.empty(len(rows), dtype=object)
    source_file.fill(name)  # np.full is ~15x slower for an object array
    out["source_file"] = pd.Series(source_file, dtype=object, copy=False)
    out["source_row"] = rows
    if len(out) == 0:
        issues.append(
            _warning(
                name,
                "the export looks empty: it has a header row but no data rows; check the export "
                "finished and covered the right dates (if there really is nothing, ignore this)",
            )
        )
    file = InputFile(
        path=path,
        name=name,
        kind=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        rows=len(out),
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
    )
    scientific = not searchable or b"+" in data
    return RawTable(file=file, frame=out, may_hold_scientific=scientific), issues


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _error(
    file: str, row: int | None, column: str | None, value: str | None, message: str
) -> Issue:
    return Issue("error", file, row, column, value, message)


def _file_error(file: str, message: str) -> Issue:
    """An error about the whole file (no row or column)."""
    return Issue("error", file, None, None, None, message)


def _warning(file: str, message: str) -> Issue:
    return Issue("warning", file, None, None, None, message)


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
# Ratio checks on tiny members only produce false alarms (a few KB of spaces compress 500:1).
_RATIO_MIN_BYTES = 1 << 20
# A float holds every whole number below 2**53 exactly; above it, a "whole number" cell (an
# 18-digit id a spreadsheet stored as a number) has lost digits.
_EXACT_WHOLE_NUMBERS = 2**53
_MAX_DATE_SERIAL = 2958465  # 9999-12-31, the last day Excel can show
_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_RESAVE = "open it in Excel and save it again as an Excel Workbook (.xlsx)"


def _load_xlsx(
    path: Path, kind: str, data: bytes, settings: Settings
) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    archive, sheet_extents, problem = _preflight_xlsx(data, settings)
    if problem is not None:
        return None, [_file_error(name, problem)]
    assert archive is not None

    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet_names = list(workbook.sheet_names)
    except _PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's errors, and Rust panics (BaseException)
        return None, [_file_error(name, f"could not read the workbook ({_short(exc)}); {_RESAVE}")]
    if not sheet_names:
        return None, [_file_error(name, f"the workbook has no sheets; {_RESAVE}")]
    sheet_name = sheet_names[0]
    if settings.sheet is not None:
        matches = [s for s in sheet_names if s == settings.sheet] or [
            s for s in sheet_names if s.casefold() == settings.sheet.casefold()
        ]
        if not matches:
            listed = ", ".join(repr(s) for s in sheet_names)
            return None, [
                _error(
                    name,
                    None,
                    None,
                    settings.sheet,
                    f"no sheet named {settings.sheet!r}; the sheets are {listed}: choose one with the sheet setting",
                )
            ]
        sheet_name = matches[0]

    sheet_part = _sheet_part(archive, sheet_name)
    parts = [sheet_part] if sheet_part in sheet_extents else list(sheet_extents)
    error_cells = any(sheet_extents[part][2] for part in parts)
    for part in parts:
        max_row, max_col, _ = sheet_extents[part]
        if max_row * max_col > settings.max_xlsx_cells:
            return None, [
                _file_error(
                    name,
                    f"the sheet spans {max_row:,} rows x {max_col:,} columns, over the limit of {settings.max_xlsx_cells:,} cells; delete unused rows and columns or split the file",
                )
            ]

    try:
        sheet = workbook.get_sheet_by_name(sheet_name)
        end_row, end_col = sheet.end or (0, 0)
        if (end_row + 1) * (end_col + 1) > settings.max_xlsx_cells:
            return None, [
                _file_error(
                    name,
                    f"the sheet spans {end_row + 1:,} rows x {end_col + 1:,} columns, over the limit of {settings.max_xlsx_cells:,} cells; delete unused rows and columns or split the file",
                )
            ]
        grid = sheet.to_python(skip_empty_area=False)
    except _PASS_THROUGH:
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's errors, and Rust panics (BaseException)
        return None, [
            _file_error(name, f"could not read sheet {sheet_name!r} ({_short(exc)}); {_RESAVE}")
        ]

    return _grid_to_table(path, kind, data, archive, sheet_part, sheet_name, grid, error_cells)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _preflight_xlsx(
    data: bytes, settings: Settings
) -> tuple[zipfile.ZipFile | None, dict[str, tuple[int, int, bool]], str | None]:
    """Refuse what a parser should never see: non-zips, encrypted, legacy, zip and XML bombs.

    Returns the open archive and, per worksheet part, the largest (row, column) a cell names, so
    a sparse sheet cannot make the reader allocate a huge dense grid, and whether it has error cells.
    """
    if not data:
        return None, {}, "not a valid xlsx (empty file): export it again from the source system"
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            return (
                None,
                {},
                "the workbook is password protected: open it in Excel, remove the password (File > Info > Protect Workbook) and save it again",
            )
        return (
            None,
            {},
            "this is a legacy .xls workbook (Excel 97-2003): re-save it as .xlsx (File > Save As > Excel Workbook)",
        )
    if not data.startswith(_ZIP_MAGIC):
        return (
            None,
            {},
            f"not a valid xlsx: the file is not a zip archive (a CSV renamed to .xlsx, or damaged); {_RESAVE}",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile raises several types for damaged archives
        return None, {}, f"not a valid xlsx: the zip archive is damaged ({_short(exc)}); {_RESAVE}"
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        return (
            None,
            {},
            f"not a valid xlsx: there is no workbook inside the zip (is it another kind of document?); {_RESAVE}",
        )

    declared = sum(m.file_size for m in members)
    if declared > settings.max_xlsx_uncompressed_bytes:
        return (
            None,
            {},
            f"refused: the workbook unpacks to {declared:,} bytes, over the limit of {settings.max_xlsx_uncompressed_bytes:,} (possible zip bomb); remove unused sheets or split the data",
        )
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size >= _RATIO_MIN_BYTES and ratio > settings.max_xlsx_compression_ratio:
            return (
                None,
                {},
                f"refused: part {m.filename} compresses {ratio:,.0f}:1, over the limit of {settings.max_xlsx_compression_ratio}:1 (possible zip bomb); save the workbook again from Excel",
            )

    extents: dict[str, tuple[int, int, bool]] = {}
    actual = _ActualSize(settings.max_xlsx_uncompressed_bytes)
    try:
        for m in members:
            if m.is_dir():
                continue
            is_xml = m.filename.lower().endswith((".xml", ".rels", ".vml"))
            is_sheet = m.filename.startswith("xl/worksheets/") and is_xml
            scan = _ExtentScan() if is_sheet else None
            with archive.open(m) as stream:
                problem = _scan_member(m, stream, actual, scan, is_xml)
            if problem is not None:
                return None, {}, problem
            if scan is not None:
                bound = scan.bound()
                if bound[0] * bound[1] > settings.max_xlsx_cells:
                    # The cheap bound is over the cap: measure exactly before refusing.
                    exact = _ExtentScan(precise=True)
                    with archive.open(m) as stream:
                        for segment in _segments(stream):
                            exact.feed(segment)
                    bound = exact.bound()
                extents[m.filename] = (*bound, scan.error_cells)
    except Exception as exc:  # noqa: BLE001 - CRC errors, truncated streams, unsupported methods
        return None, {}, f"not a valid xlsx: the zip archive is damaged ({_short(exc)}); {_RESAVE}"
    return archive, extents, None


class _ActualSize:
    """Bytes actually decompressed so far, against the cap (declared sizes can lie)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.over = False


def _segments(stream: Any, carry_limit: int = 4 * _CHUNK, end: bytes = b">") -> Iterator[bytes]:
    """Decompressed XML in pieces cut just after `end`: no tag (no cell, with "c>") is split."""
    carry = b""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            if carry:
                yield carry
            return
        buffer = carry + chunk
        found = buffer.rfind(end)
        cut = found + len(end) if found >= 0 else 0
        if cut == 0 and len(buffer) < carry_limit:
            carry = buffer
            continue
        if cut == 0:
            cut = len(buffer)  # no tag end in megabytes: not XML a spreadsheet program writes
        carry = buffer[cut:]
        yield buffer[:cut]


def _scan_member(
    member: zipfile.ZipInfo,
    stream: Any,
    actual: _ActualSize,
    scan: _ExtentScan | None,
    is_xml: bool,
) -> str | None:
    """Decompress one part, counting real bytes; refuse DTDs; feed worksheets to the extent scan."""
    too_big = (
        f"refused: the workbook unpacks to more than its declared or allowed size (limit "
        f"{actual.limit:,} bytes; possible zip bomb); save it again from Excel"
    )
    size = 0
    if not is_xml:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            actual.total += len(chunk)
            if actual.total > actual.limit or size > member.file_size:
                return too_big
        return None
    previous = b""
    utf16 = False
    for segment in _segments(_Counted(stream, member, actual)):
        if size == 0:
            # A NUL in the first bytes means UTF-16 (with or without a BOM).
            utf16 = b"\x00" in segment[:4]
            if utf16 and scan is not None:
                return (
                    f"refused: worksheet {member.filename} is written in UTF-16, which Excel never "
                    f"does; {_RESAVE}"
                )
        size += len(segment)
        # A little overlap, in case a forced cut split a declaration.
        if _declares_dtd(previous + segment, utf16):
            return (
                f"refused: part {member.filename} declares a DOCTYPE or ENTITY, which Excel never "
                "writes (possible XML entity bomb); do not use this file, export the data again"
            )
        if scan is not None:
            scan.feed(segment)
        previous = segment[-16:]
    if actual.total > actual.limit or actual.over:
        return too_big
    return None


class _Counted:
    """A stream wrapper that stops reading once the real bytes pass the declared or allowed size."""

    def __init__(self, stream: Any, member: zipfile.ZipInfo, actual: _ActualSize) -> None:
        self.stream = stream
        self.member = member
        self.actual = actual
        self.size = 0

    def read(self, n: int) -> bytes:
        chunk = self.stream.read(n)
        self.size += len(chunk)
        self.actual.total += len(chunk)
        if self.actual.total > self.actual.limit or self.size > self.member.file_size:
            self.actual.over = True
            return b""
        return chunk


class _ExtentScan:
    """The largest row and column a worksheet's cells name, bounded cheaply.

    calamine allocates a dense grid from the smallest to the largest cell reference, so two cells at
    A1 and XFD1048576 would abort the process; this bounds the grid before calamine sees the sheet.
    The cheap scan only looks for the rare references (row >= 100000, column >= AA) written the way
    every spreadsheet program writes them (`<c r="A1" ...>`); anything unusual (other attribute
    order, quotes or spacing, a namespace prefix, a cell without a reference) switches to the
    precise scan. It also notes error cells (t="e", e.g. #DIV/0!), which the reader turns into "".
    """

    _RARE = re.compile(rb'<c r="(?:[A-Z]{2,3}[0-9]|[A-Z][0-9]{6})')
    _REF_AT = re.compile(rb"([A-Z]{1,3})([0-9]{1,7})")
    _ODD_CELL = re.compile(rb'<c(?! r=")[\s>/]')
    _ANY_REF = re.compile(rb"""\br\s*=\s*["']\s*([A-Za-z]{0,3})([0-9]{1,7})\s*["']""")
    _CELL = re.compile(rb"<c[\s>/]")
    _CELL_NO_REF = re.compile(rb"<c(?=[\s>/])(?![^>]*\br\s*=)")
    _ROW_NO_REF = re.compile(rb"<row(?=[\s>/])(?![^>]*\br\s*=)")

    def __init__(self, precise: bool = False) -> None:
        self.precise = precise
        self.skimmed = False
        self.max_row = 0
        self.max_col = 0
        # Cells and rows without a reference take the next position, so count them.
        self.cells_without_ref = False
        self.cells_in_row = 0
        self.rows_without_ref = 0
        self.error_cells = False

    def feed(self, segment: bytes) -> None:
        """One piece of the sheet's XML, cut between tags."""
        if not self.error_cells and (segment.find(b't="e"') >= 0 or segment.find(b"t='e'") >= 0):
            self.error_cells = True
        if not self.precise and (self._ODD_CELL.search(segment) or segment.find(b":c") >= 0):
            self.precise = True
        if not self.precise:
            self.skimmed = True
            for match in self._RARE.finditer(segment):
                ref = self._REF_AT.match(segment, match.start() + 6)
                if ref:
                    self.max_col = max(self.max_col, _column_number(ref.group(1)))
                    self.max_row = max(self.max_row, int(ref.group(2)))
            return
        for letters, digits in self._ANY_REF.findall(segment):
            self.max_row = max(self.max_row, int(digits))
            if letters:
                self.max_col = max(self.max_col, _column_number(letters.upper()))
        self.rows_without_ref += len(self._ROW_NO_REF.findall(segment))
        if self.cells_without_ref or self._CELL_NO_REF.search(segment):
            self.cells_without_ref = True
            for k, part in enumerate(segment.split(b"<row")):
                if k:
                    self.cells_in_row = 0
                self.cells_in_row += len(self._CELL.findall(part))
                self.max_col = max(self.max_col, self.cells_in_row)

    def bound(self) -> tuple[int, int]:
        rows = self.max_row + self.rows_without_ref
        if self.skimmed:
            # Skimmed pieces only report references beyond these, so they may hold any below.
            return max(rows, 99_999), max(self.max_col, 26)
        return max(rows, 1), max(self.max_col, 1)


def _declares_dtd(window: bytes, utf16: bool) -> bool:
    """Whether XML text holds <!DOCTYPE or <!ENTITY (UTF-8 or UTF-16); comments and CDATA pass."""
    markers = ((b"<!", 1), (b"<\x00!\x00", 2), (b"\x00<\x00!", 2)) if utf16 else ((b"<!", 1),)
    for marker, step in markers:
        start = window.find(marker)
        while start >= 0:
            after = window[start + len(marker) : start + len(marker) + 6 * step]
            word = after[::step] if step == 1 or marker.startswith(b"<") else after[1::step]
            if word[:1].upper() in (b"D", b"E"):
                return True
            start = window.find(marker, start + 1)
    return False


def _column_number(letters: bytes) -> int:
    number = 0
    for byte in letters:
        number = number * 26 + (byte - 64)
    return number


def _sheet_part(archive: zipfile.ZipFile, sheet_name: str) -> str | None:
    """The zip member holding a sheet (via workbook.xml and its relationships), or None."""
    from defusedxml import ElementTree as SafeET

    try:
        workbook = SafeET.fromstring(archive.read("xl/workbook.xml"))
        rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # noqa: BLE001 - a missing or odd part only loses the extra checks
        return None
    rel_id = None
    for sheet in workbook.iter(f"{_NS_MAIN}sheet"):
        if sheet.get("name") == sheet_name:
            rel_id = sheet.get(f"{_NS_REL}id")
            break
    for rel in rels.iter(f"{_NS_PKG_REL}Relationship"):
        if rel.get("Id") == rel_id:
            target = rel.get("Target") or ""
            return (
                target.lstrip("/") if target.startswith("/") else "xl/" + target.removeprefix("./")
            )
    return None


_BUILTIN_DATE_FORMATS = frozenset(
    [*range(14, 23), *range(27, 37), 45, 46, 47, *range(50, 59), *range(71, 82)]
)
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')


def _date_styles(archive: zipfile.ZipFile) -> frozenset[int]:
    """The style indices (a cell's `s`) whose number format shows a date or a time."""
    from defusedxml import ElementTree as SafeET

    try:
        styles = SafeET.fromstring(archive.read("xl/styles.xml"))
        custom: dict[int, str] = {}
        for fmt in styles.iter(f"{_NS_MAIN}numFmt"):
            custom[int(fmt.get("numFmtId", "-1"))] = fmt.get("formatCode", "")
        cell_xfs = styles.find(f"{_NS_MAIN}cellXfs")
        date_styles = set()
        for index, xf in enumerate(cell_xfs if cell_xfs is not None else []):
            fmt_id = int(xf.get("numFmtId", "0"))
            code = _FORMAT_LITERALS.sub("", custom.get(fmt_id, "")).lower()
            if fmt_id in _BUILTIN_DATE_FORMATS or (
                fmt_id in custom and any(c in code for c in "dmyhs") and "general" not in code
            ):
                date_styles.add(index)
        return frozenset(date_styles)
    except Exception:  # noqa: BLE001 - without styles we cannot tell a date from a number
        return frozenset()


# A cell's style attribute naming a date style and the end of its start tag; then (the value
# part) an optional cached formula and a value that is negative, has seven or more digits before
# the point, or an exponent: every number past 2,958,465 or below 0 has one of these shapes.
# Starting with the letter s lets the regex engine skip ahead to candidates. "P:" stands for an
# optional namespace prefix.
_DATE_STYLE_ATTRIBUTE = rb"s\s*=\s*(?P<q>[\"'])\s*0*(?:STYLES)\s*(?P=q)[^>]*(?<!/)>"
_UNSTYLED_CELL = rb"<P:c(?![^>]*\ss\s*=)(?:\s[^>]*)?(?<!/)>"  # style 0, the default
_VALUE_BEYOND_DATES = (
    rb"\s*(?:<P:f\b[^>]*/>\s*|<P:f\b[^>]*>[^<]*</P:f>\s*)?"
    rb"<P:v>\s*(?P<value>(?:-|\+?[0-9]{7}|[+-]?[0-9.]*[eE])[^<]*)"
)
_CELL_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s")
_REF_ATTRIBUTE = re.compile(rb"""\sr\s*=\s*["']\s*([A-Z]{1,3})([0-9]{1,7})\s*["']""")


def _date_cell_patterns(styles: frozenset[int]) -> list[re.Pattern[bytes]]:
    """Patterns for a cell in one of these styles whose number may be past the dates Excel shows."""
    indices = b"|".join(str(i).encode() for i in sorted(styles, reverse=True))
    sources = [_DATE_STYLE_ATTRIBUTE.replace(b"STYLES", indices)]
    if 0 in styles:
        sources.append(_UNSTYLED_CELL)
    prefix = rb"(?:[A-Za-z_][\w.-]*:)?"
    return [re.compile((source + _VALUE_BEYOND_DATES).replace(b"P:", prefix)) for source in sources]


def _date_styled(archive: zipfile.ZipFile, sheet_part: str | None) -> list[tuple[int, int, str]]:
    """(row, column, number) of the cells in a date or time format whose number may be out of range.

    Rows and columns count from 0; the number is as the sheet's XML holds it.

    One streaming byte scan of the sheet, and none when the workbook has no date format: a
    number in any other format (every id) is never looked at. The pre-flight has already
    measured the decompressed part and refused DTDs and entities, and no XML parser runs here.
    """
    date_styles = _date_styles(archive)
    if sheet_part is None or not date_styles:
        return []
    patterns = _date_cell_patterns(date_styles)
    cells: list[tuple[int, int, str]] = []
    try:
        with archive.open(sheet_part) as stream:
            # Cut just after a cell's end tag, so no cell is split between two pieces.
            for segment in _segments(stream, end=b"c>"):
                for pattern in patterns:
                    for match in pattern.finditer(segment):
                        cell = _cell_holding(segment, match.start())
                        if cell is not None:
                            cells.append((*cell, match["value"].strip().decode("ascii", "replace")))
    except Exception:  # noqa: BLE001 - the reader already accepted the sheet; keep what we found
        return cells
    return cells


def _cell_holding(segment: bytes, match_at: int) -> tuple[int, int] | None:
    """(row, column) of the cell whose start tag begins at, or holds the attribute at, match_at."""
    tag_at = segment.rfind(b"<", 0, match_at + 1)
    tag = segment[tag_at:match_at]  # up to the s attribute; empty when the match is the tag
    in_cell_tag = bool(_CELL_START.match(tag)) and tag[-1:].isspace() and b">" not in tag
    if tag_at < 0 or (tag and not in_cell_tag):
        return None  # an s= outside a cell's start tag: a row's style, text, an attribute ...s=
    ref = _REF_ATTRIBUTE.search(segment, tag_at, segment.find(b">", match_at))
    return (int(ref[2]) - 1, _column_number(ref[1]) - 1) if ref else None


_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


def _error_cell_issues(
    name: str,
    archive: zipfile.ZipFile,
    sheet_part: str | None,
    cells: np.ndarray,
    header_index: int,
) -> list[Issue]:
    """One error per cell holding an Excel error (#DIV/0!, #N/A, ...), which the reader blanks."""
    from defusedxml import ElementTree as SafeET

    def advice(value: str) -> str:
        return f"the cell holds the Excel error {value} instead of a value: fix the formula or type the value, then save again"

    generic = _file_error(name, advice("#N/A or similar") + " (the workbook has error cells)")
    if sheet_part is None:
        return [generic]
    issues: list[Issue] = []
    try:
        with archive.open(sheet_part) as stream:
            for _, element in SafeET.iterparse(stream):
                if element.tag != f"{_NS_MAIN}c":
                    continue
                if element.get("t") == "e":
                    value = element.findtext(f"{_NS_MAIN}v") or "#ERROR"
                    match = _CELL_REF.fullmatch(element.get("r") or "")
                    row = int(match.group(2)) if match else None
                    column = None
                    if match:
                        j = _column_number(match.group(1).encode()) - 1
                        if 0 <= j < cells.shape[1] and header_index < cells.shape[0]:
                            column = str(cells[header_index, j]).strip() or match.group(1)
                    issues.append(_error(name, row, column, value, advice(value)))
                element.clear()
    except Exception:  # noqa: BLE001 - the reader already accepted the sheet; keep what we found
        return issues or [generic]
    return issues or [generic]


def _cell_text(value: object) -> str:
    """A cell as canonical text: what a CSV export of the same sheet would most sensibly hold."""
    if type(value) is str:
        return value if "\r" not in value else value.replace("\r\n", "\n").replace("\r", "\n")
    if type(value) is float:
        if value.is_integer() and abs(value) < _EXACT_WHOLE_NUMBERS:
            return str(int(value))
        if value.is_integer():
            # Written as a spreadsheet shows it (1.01754e+18): its last digits are gone, and the
            # id check refuses it rather than inventing them as zeros.
            return f"{value:.15g}"
        return _float_text(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is dt.datetime or type(value) is dt.date or type(value) is dt.time:
        return value.isoformat()
    if type(value) is dt.timedelta:
        # A duration cell ([h]:mm:ss) reads as Excel shows it: hours past 24 keep counting.
        seconds = value.total_seconds()
        sign = "-" if seconds < 0 else ""
        whole, frac = divmod(abs(seconds), 1)
        hours, rest = divmod(int(whole), 3600)
        minutes, secs = divmod(rest, 60)
        text = f"{sign}{hours}:{minutes:02d}:{secs:02d}"
        return text + f"{frac:.6f}".rstrip("0")[1:] if frac else text
    if value is None:
        return ""
    return str(value)


# A binary float this close to a whole cent is that cent with the float's representation error.
_CENT_TOLERANCE = 1e-9


def _float_text(value: float) -> str:
    """The shortest text that reads back as the same float, except near a whole cent.

    Excel stores =0.1+0.2 as 0.30000000000000004 and shows 0.30; a number within 1e-9 of a whole
    cent is written as that cent (0.3), so the strict money parser does not refuse what the user
    sees as 0.30. Only spreadsheet numbers pass here: money typed as text stays strict.
    """
    text = repr(value)
    decimals = text.partition(".")[2]
    if "e" in text or len(decimals) <= 2:
        return text
    cents = round(value * 100)
    if abs(value - cents / 100) <= _CENT_TOLERANCE:
        return repr(cents / 100)
    return text


def _out_of_range_dates(
    grid: list[list[Any]], date_styled: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """(row, column, number) of the date-styled cells holding a date Excel cannot show.

    The reader hands back the raw number for a date after 9999-12-31, and a time of day for a
    negative one (before 1900), which would otherwise pass for a real value.
    """
    out_of_range = {}
    for i, j, number in date_styled:
        value = grid[i][j] if i < len(grid) and j < len(grid[i]) else None
        if type(value) is float and (value > _MAX_DATE_SERIAL or value < 0):
            out_of_range[i, j] = _cell_text(value)
        elif number.startswith("-") and type(value) in (dt.time, dt.date, dt.datetime):
            out_of_range[i, j] = number
    return sorted((i, j, number) for (i, j), number in out_of_range.items())


def _grid_to_table(
    path: Path,
    kind: str,
    data: bytes,
    archive: zipfile.ZipFile,
    sheet_part: str | None,
    sheet_name: str,
    grid: list[list[Any]],
    error_cells: bool = False,
) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    issues: list[Issue] = []
    if not grid:
        return None, [
            _file_error(
                name,
                f"sheet {sheet_name!r} is empty: no header row; put the header in the first row",
            )
        ]
    width = max(len(r) for r in grid)
    if any(len(r) != width for r in grid):
        grid = [list(r) + [""] * (width - len(r)) for r in grid]
    cells = np.empty((len(grid), width), dtype=object)
    cells[:] = grid
    for j in range(width):
        column = cells[:, j]
        try:
            # join type-checks every cell in C: a column of text passes in one step.
            if "\r" not in "".join(column):
                continue
        except TypeError:
            pass
        cells[:, j] = list(map(_cell_text, column))

    non_blank_rows = (cells != "").any(axis=1).nonzero()[0]
    if len(non_blank_rows) == 0:
        return None, [
            _file_error(
                name,
                f"sheet {sheet_name!r} is empty: no header row; put the header in the first row",
            )
        ]
    header_index = int(non_blank_rows[0])
    last_index = int(non_blank_rows[-1])
    header_row = header_index + 1

    errors: list[Issue] = []
    for i, j, number in _out_of_range_dates(grid, _date_styled(archive, sheet_part)):
        ref = f"{_column_letter(j)}{i + 1}"
        column_name = str(cells[header_index, j]).strip() or _column_letter(j)
        errors.append(
            _error(
                name,
                i + 1,
                column_name,
                number,
                f"date out of range in cell {ref} (after 9999-12-31 or before 1900): type the date again in that cell",
            )
        )
    if error_cells:
        errors.extend(_error_cell_issues(name, archive, sheet_part, cells, header_index))
    if errors:
        return None, errors

    headers = [str(h).strip() for h in cells[header_index]]
    frame = pd.DataFrame(cells[header_index + 1 : last_index + 1], dtype=object)
    rows = pd.RangeIndex(header_row + 1, last_index + 2).to_numpy(dtype="int64")
    return _finish_table(
        path,
        kind,
        data,
        frame,
        headers,
        rows,
        header_row,
        issues,
        sheet=sheet_name,
        trailing_blank_header_is_warning=True,
    )
