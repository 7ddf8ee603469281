"""Export files -> all-text frames with `source_file` and `source_row`; encodings, dialects, xlsx safety."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue


@dataclass(frozen=True)
class InputFile:
    """What was read: enough to reproduce and audit a run (the report lists it with its SHA-256)."""

    path: Path
    name: str
    kind: str
    sha256: str
    size: int
    rows: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class RawTable:
    """One file's rows as text.

    `frame` has the file's headers exactly as written (surrounding whitespace stripped), every value
    a `str` (a blank cell is ""), plus `source_file` (str) and `source_row` (int64: the row as the
    user's spreadsheet numbers it, header = row 1).
    """

    file: InputFile
    frame: pd.DataFrame


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
_KIND_LIST = "appointments, cases, invoices, payments, allocations, patients"
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def kind_of(path: Path) -> str | None:
    """The kind a file holds, from the first word of its name (case-insensitive), or None."""
    match = _FIRST_WORD.match(Path(path).name)
    return KIND_WORDS.get(match.group(0).casefold()) if match else None


def discover_inputs(input_dir: Path) -> tuple[list[tuple[str, Path]], list[Issue]]:
    """The (kind, path) of each input file in the folder (not its sub-folders), sorted by name."""
    folder = str(input_dir)
    try:
        if not input_dir.exists():
            return [], [_error(folder, None, None, None, "input folder not found: check the path you gave")]
        if not input_dir.is_dir():
            return [], [_error(folder, None, None, None, "the input path is a file, not a folder: give the folder that holds the exports")]
        entries = sorted(input_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        return [], [_error(folder, None, None, None, f"cannot read the input folder ({exc.strerror or exc}): check it exists and you may read it")]

    found: list[tuple[str, Path]] = []
    issues: list[Issue] = []
    for path in entries:
        name = path.name
        if name.startswith("."):
            issues.append(_warning(name, "ignored: hidden file"))
            continue
        if name.startswith("~$"):
            issues.append(_warning(name, "ignored: Excel lock file (the workbook is open in Excel); close Excel if the real file is missing"))
            continue
        try:
            is_dir = path.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            issues.append(_warning(name, "ignored: sub-folder (only files directly in the input folder are read); move its files up if they are needed"))
            continue
        kind = kind_of(path)
        if kind is None:
            issues.append(
                _warning(
                    name,
                    "ignored: the file name does not start with a known kind "
                    f"({_KIND_LIST}); rename it, e.g. 'appointments-{name}', if it should be read",
                )
            )
            continue
        found.append((kind, path))
    return found, issues


def load_folder(input_dir: Path, settings: Settings) -> tuple[list[RawTable], list[Issue]]:
    """Every readable input file in the folder; issues from all files are collected, never raised."""
    found, issues = discover_inputs(input_dir)
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [_error(name, None, None, None, f"could not read the file ({exc.strerror or exc}): check it exists and is not open in another program")]
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return _load_csv(path, kind, data)
        if suffix in XLSX_SUFFIXES:
            return _load_xlsx(path, kind, data, settings)
    except Exception as exc:  # noqa: BLE001 - bad input must become an issue, never a traceback
        return None, [_error(name, None, None, None, f"could not read the file ({type(exc).__name__}: {exc}); open it and export it again as CSV UTF-8 or .xlsx")]
    return None, [_error(name, None, None, None, f"unsupported file type {suffix or '(none)'!r}: export it as CSV (.csv) or Excel (.xlsx)")]


# --------------------------------------------------------------------------------------------
# CSV / TSV
# --------------------------------------------------------------------------------------------

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_RECORDS = 100
_SNIFF_CHARS = 1 << 20
# Quote characters other than '"' that some tools use: a field wrapped in one of them means the
# file's dialect is not the one we can read reliably.
_FOREIGN_QUOTED = re.compile(r"^\s*([#'~`])(.*)\1\s*$", re.S)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_REEXPORT = "export it again as 'CSV UTF-8 (Comma delimited)'"


def _load_csv(path: Path, kind: str, data: bytes) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    text, encoding, issues = _decode(name, data)
    if text is None:
        return None, issues
    if "\r" in text:
        # Excel on Windows writes CRLF, classic Mac CR; inside quoted notes too.
        text = text.replace("\r\n", "\n").replace("\r", "\n")

    lead, body = _skip_leading_blank_lines(text)
    if body is None:
        return None, issues + [_error(name, None, None, None, "empty file: no header row; export the data again with its header row")]
    header_row = lead + 1

    delimiter, problem = _sniff_delimiter(body)
    if problem is not None:
        return None, issues + [_error(name, None, None, None, problem)]

    if "\x00" in body:
        return None, issues + _nul_issues(name, body, delimiter, header_row)

    frame, bad_rows = _parse_with_pandas(body, delimiter)
    if frame is None:
        return None, issues + _structure_issues(name, body, delimiter, header_row)
    if bad_rows:
        return None, issues + _structure_issues(name, body, delimiter, header_row, only=set(bad_rows))

    headers = [str(h).strip() for h in frame.iloc[0].tolist()]
    frame = frame.iloc[1:]
    rows = pd.RangeIndex(header_row + 1, header_row + 1 + len(frame))
    return _finish_table(path, kind, data, frame, headers, rows.to_numpy(dtype="int64"), header_row, issues, encoding=encoding, delimiter=delimiter)


def _decode(name: str, data: bytes) -> tuple[str | None, str | None, list[Issue]]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                return None, None, [_error(name, _row_at(data, exc.start), None, None, f"the file starts with a {codec} byte-order mark but is not valid {codec} (byte {exc.start}); {_REEXPORT}")]
            return text.removeprefix("\ufeff"), codec, []
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as utf8_error:
        first_bad = utf8_error.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        return None, None, [_error(name, _row_at(data, exc.start), None, None, f"the file is neither UTF-8 nor Windows-1252 text (undecodable byte at offset {exc.start}); {_REEXPORT}")]
    return text, "cp1252", [
        Issue(
            "warning",
            name,
            _row_at(data, first_bad),
            None,
            None,
            "the file is not UTF-8, so it was read as Windows-1252 (Excel's 'CSV (Comma delimited)'); "
            f"check accented characters, and {_REEXPORT} next time",
        )
    ]


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


def _sample_records(body: str, delimiter: str) -> list[list[str]] | None:
    sample = body[:_SNIFF_CHARS]
    try:
        reader = csv.reader(io.StringIO(sample), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
        records = list(itertools.islice(reader, _SNIFF_RECORDS + 2))
    except csv.Error:
        return None
    if len(body) > len(sample) and len(records) > 1:
        records.pop()  # may be cut off by the sample's end
    return [r for r in records if r]


def _sniff_delimiter(body: str) -> tuple[str, str | None]:
    """The delimiter from the whitelist, or a message saying the dialect could not be determined."""
    cant = (
        "could not determine the CSV dialect (delimiter and quoting): export it again as "
        "comma-separated values with fields quoted by double quotes (\"), e.g. Excel's 'CSV UTF-8'"
    )
    trials: dict[str, list[list[str]]] = {}
    for delimiter in DELIMITERS:
        records = _sample_records(body, delimiter)
        if records:
            trials[delimiter] = records
    if not trials:
        return ",", cant
    widths = {d: len(r[0]) for d, r in trials.items()}
    consistent = [d for d, r in trials.items() if widths[d] > 1 and all(len(x) == widths[d] for x in r)]
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


def _parse_with_pandas(body: str, delimiter: str) -> tuple[pd.DataFrame | None, list[int]]:
    """All records (header first) as text; None when pandas finds a structure error.

    The second value lists record indexes (0 = header) whose field count differs from the header's,
    found for short rows pandas pads silently.
    """
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            sep=delimiter,
            header=None,
            dtype=object,
            quotechar='"',
            doublequote=True,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
            low_memory=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error):
        return None, []
    width = frame.shape[1]
    if width == 1 or len(frame) <= 1:
        return frame, []
    # A short row is padded with "" by pandas, so its last field is "" (a blank line too, which is
    # dropped later as blank): only those rows need their fields counted.
    last = frame.iloc[1:, width - 1].to_numpy()
    candidates = (last == "").nonzero()[0] + 1
    if len(candidates) == 0:
        return frame, []
    values = frame.to_numpy()
    candidates = [int(i) for i in candidates if any(v != "" for v in values[i])]
    if not candidates:
        return frame, []
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) == len(frame):
        # Every record is one line (no quoted newlines), so line i is record i.
        bad = []
        for i in candidates:
            line = lines[i]
            fields = line.count(delimiter) + 1 if '"' not in line else len(next(csv.reader([line], delimiter=delimiter), [""]))
            if fields != width:
                bad.append(i)
        return frame, bad
    counts = _field_counts(body, delimiter)
    if counts is None or len(counts) != len(frame):
        return None, []
    return frame, [i for i in candidates if counts[i] != width]


def _field_counts(body: str, delimiter: str) -> list[int] | None:
    try:
        return [len(r) for r in csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"', strict=False)]
    except csv.Error:
        return None


def _structure_issues(name: str, body: str, delimiter: str, header_row: int, only: set[int] | None = None) -> list[Issue]:
    """Every record whose field count differs from the header's, found with the csv module."""
    issues: list[Issue] = []
    reader = csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
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
            issues.append(_error(name, row, None, None, f"the row starting at row {row} is not valid CSV ({exc}): look for a stray or unclosed double quote (\") and export it again"))
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
                    f"row {row} has {len(record)} fields but the header has {width} ({sep}-separated): "
                    f"a value holds an unquoted {sep} or a field is missing; fix the row and export again",
                )
            )
    if not issues:
        issues.append(_error(name, None, None, None, f"the rows do not all have the header's number of fields ({sep}-separated); export the file again"))
    return issues


def _nul_issues(name: str, body: str, delimiter: str, header_row: int) -> list[Issue]:
    issues: list[Issue] = []
    header: list[str] = []
    try:
        for index, record in enumerate(csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"', strict=False)):
            if index == 0:
                header = [h.strip() for h in record]
            for j, field in enumerate(record):
                if "\x00" in field:
                    row = header_row + index
                    column = header[j] if index > 0 and j < len(header) else f"{j + 1}"
                    issues.append(
                        _error(name, row, column, field.replace("\x00", "\\x00"),
                               f"NUL byte at row {row}, column {column}: the file is damaged or not a text export; {_REEXPORT}")
                    )
    except csv.Error:
        pass
    if not issues:
        issues.append(_error(name, None, None, None, f"the file holds NUL bytes, so it is damaged or not a text export; {_REEXPORT}"))
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
    rows,
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
    values = frame.to_numpy(dtype=object) if frame.shape[1] else None

    blank_row = (frame == "").all(axis=1).to_numpy() if frame.shape[1] else None
    keep_cols: list[int] = []
    last_named = max((j for j, h in enumerate(headers) if h), default=-1)
    for j, header in enumerate(headers):
        if header:
            keep_cols.append(j)
            continue
        column = frame.iloc[:, j].to_numpy()
        filled = (column != "").nonzero()[0]
        if len(filled) == 0:
            continue  # a wholly blank column: an export artefact, nothing is lost
        first = int(filled[0])
        where = f"column {j + 1} ({_column_letter(j)})"
        if trailing_blank_header_is_warning and j > last_named:
            issues.append(
                Issue("warning", name, int(rows[first]), None, str(values[first, j]),
                      f"{where} has no header, so its {len(filled)} value(s) beside the table were ignored; give it a header if it is data")
            )
            continue
        errors.append(
            _error(name, int(rows[first]), None, str(values[first, j]),
                   f"{where} has a blank header but holds values: add a header to that column or delete it, then export again")
        )

    seen: dict[str, list[int]] = {}
    for j in keep_cols:
        seen.setdefault(headers[j], []).append(j)
    for header, positions in seen.items():
        if len(positions) > 1:
            cols = ", ".join(str(p + 1) for p in positions)
            errors.append(_error(name, header_row, header, header, f"duplicate header {header!r} (columns {cols}): rename or delete the extra columns so each header appears once"))
        if header in RESERVED_COLUMNS:
            errors.append(_error(name, header_row, header, header, f"the header {header!r} is reserved by pkgreport for provenance: rename that column"))
    if errors:
        return None, issues + errors

    if blank_row is not None and blank_row.any():
        blank_numbers = [int(r) for r in rows[blank_row]]
        shown = ", ".join(str(r) for r in blank_numbers[:20])
        more = f" and {len(blank_numbers) - 20} more" if len(blank_numbers) > 20 else ""
        issues.append(Issue("warning", name, blank_numbers[0], None, None, f"blank row(s) {shown}{more} skipped"))
        frame = frame.loc[~blank_row]
        rows = rows[~blank_row]

    out = frame.iloc[:, keep_cols]
    out.columns = [headers[j] for j in keep_cols]
    out = out.reset_index(drop=True)
    out = out.assign(source_file=name, source_row=pd.Series(rows, dtype="int64"))
    out["source_file"] = out["source_file"].astype(object)
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
    return RawTable(file=file, frame=out), issues


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _error(file: str, row: int | None, column: str | None, value: str | None, message: str) -> Issue:
    return Issue("error", file, row, column, value, message)


def _warning(file: str, message: str) -> Issue:
    return Issue("warning", file, None, None, None, message)


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_ZIP_MAGIC = b"PK\x03\x04"
_XML_DECLARATION = re.compile(rb"<!(?i:doctype|entity)|<\x00!\x00[dDeE]\x00|\x00<\x00!\x00[dDeE]")
_CHUNK = 1 << 20
# Ratio checks on tiny members only produce false alarms (a few KB of spaces compress 500:1).
_RATIO_MIN_BYTES = 1 << 20
_MAX_DATE_SERIAL = 2958465  # 9999-12-31, the last day Excel can show
_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_RESAVE = "open it in Excel and save it again as an Excel Workbook (.xlsx)"


def _load_xlsx(path: Path, kind: str, data: bytes, settings: Settings) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    archive, sheet_extents, problem = _preflight_xlsx(data, settings)
    if problem is not None:
        return None, [_error(name, None, None, None, problem)]
    assert archive is not None

    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet_names = list(workbook.sheet_names)
    except Exception as exc:  # noqa: BLE001 - calamine raises its own family plus panics as exceptions
        return None, [_error(name, None, None, None, f"could not read the workbook ({_short(exc)}); {_RESAVE}")]
    if not sheet_names:
        return None, [_error(name, None, None, None, f"the workbook has no sheets; {_RESAVE}")]
    sheet_name = sheet_names[0]
    if settings.sheet is not None:
        matches = [s for s in sheet_names if s == settings.sheet] or [s for s in sheet_names if s.casefold() == settings.sheet.casefold()]
        if not matches:
            listed = ", ".join(repr(s) for s in sheet_names)
            return None, [_error(name, None, None, settings.sheet, f"no sheet named {settings.sheet!r}; the sheets are {listed}: choose one with the sheet setting")]
        sheet_name = matches[0]

    sheet_part = _sheet_part(archive, sheet_name)
    parts = [sheet_part] if sheet_part in sheet_extents else list(sheet_extents)
    for part in parts:
        max_row, max_col = sheet_extents[part]
        if max_row * max_col > settings.max_xlsx_cells:
            return None, [_error(name, None, None, None, f"the sheet spans {max_row:,} rows x {max_col:,} columns, over the limit of {settings.max_xlsx_cells:,} cells; delete unused rows and columns or split the file")]

    try:
        sheet = workbook.get_sheet_by_name(sheet_name)
        end_row, end_col = sheet.end or (0, 0)
        if (end_row + 1) * (end_col + 1) > settings.max_xlsx_cells:
            return None, [_error(name, None, None, None, f"the sheet spans {end_row + 1:,} rows x {end_col + 1:,} columns, over the limit of {settings.max_xlsx_cells:,} cells; delete unused rows and columns or split the file")]
        grid = sheet.to_python(skip_empty_area=False)
    except Exception as exc:  # noqa: BLE001
        return None, [_error(name, None, None, None, f"could not read sheet {sheet_name!r} ({_short(exc)}); {_RESAVE}")]

    return _grid_to_table(path, kind, data, archive, sheet_part, sheet_name, grid)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _preflight_xlsx(data: bytes, settings: Settings) -> tuple[zipfile.ZipFile | None, dict[str, tuple[int, int]], str | None]:
    """Refuse what a parser should never see: non-zips, encrypted, legacy, zip and XML bombs.

    Returns the open archive and, per worksheet part, the largest (row, column) a cell names, so
    a sparse sheet cannot make the reader allocate a huge dense grid.
    """
    if not data:
        return None, {}, "not a valid xlsx (empty file): export it again from the source system"
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            return None, {}, "the workbook is password protected: open it in Excel, remove the password (File > Info > Protect Workbook) and save it again"
        return None, {}, "this is a legacy .xls workbook (Excel 97-2003): re-save it as .xlsx (File > Save As > Excel Workbook)"
    if not data.startswith(_ZIP_MAGIC):
        return None, {}, f"not a valid xlsx: the file is not a zip archive (a CSV renamed to .xlsx, or damaged); {_RESAVE}"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile raises several types for damaged archives
        return None, {}, f"not a valid xlsx: the zip archive is damaged ({_short(exc)}); {_RESAVE}"
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        return None, {}, f"not a valid xlsx: there is no workbook inside the zip (is it another kind of document?); {_RESAVE}"

    declared = sum(m.file_size for m in members)
    if declared > settings.max_xlsx_uncompressed_bytes:
        return None, {}, f"refused: the workbook unpacks to {declared:,} bytes, over the limit of {settings.max_xlsx_uncompressed_bytes:,} (possible zip bomb); remove unused sheets or split the data"
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size >= _RATIO_MIN_BYTES and ratio > settings.max_xlsx_compression_ratio:
            return None, {}, f"refused: part {m.filename} compresses {ratio:,.0f}:1, over the limit of {settings.max_xlsx_compression_ratio}:1 (possible zip bomb); save the workbook again from Excel"

    extents: dict[str, tuple[int, int]] = {}
    total = 0
    try:
        for m in members:
            if m.is_dir():
                continue
            is_xml = m.filename.lower().endswith((".xml", ".rels", ".vml"))
            is_sheet = m.filename.startswith("xl/worksheets/") and is_xml
            scan = _ExtentScan() if is_sheet else None
            size = 0
            tail = b""
            with archive.open(m) as stream:
                while True:
                    # Declared sizes can lie, so count what actually comes out, chunk by chunk.
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    total += len(chunk)
                    if total > settings.max_xlsx_uncompressed_bytes or size > m.file_size:
                        return None, {}, f"refused: the workbook unpacks to more than its declared or allowed size (limit {settings.max_xlsx_uncompressed_bytes:,} bytes; possible zip bomb); save it again from Excel"
                    if is_xml:
                        if _XML_DECLARATION.search(tail + chunk):
                            return None, {}, f"refused: part {m.filename} declares a DOCTYPE or ENTITY, which Excel never writes (possible XML entity bomb); do not use this file, export the data again"
                        if scan is not None:
                            scan.feed(tail, chunk)
                        tail = chunk[-32:]
            if scan is not None:
                extents[m.filename] = scan.bound()
                if extents[m.filename][0] * extents[m.filename][1] > settings.max_xlsx_cells:
                    # The cheap bound is over the cap: measure exactly before refusing.
                    exact = _ExtentScan(precise=True)
                    with archive.open(m) as stream:
                        tail = b""
                        while chunk := stream.read(_CHUNK):
                            exact.feed(tail, chunk)
                            tail = chunk[-32:]
                    extents[m.filename] = exact.bound()
    except Exception as exc:  # noqa: BLE001 - CRC errors, truncated streams, unsupported methods
        return None, {}, f"not a valid xlsx: the zip archive is damaged ({_short(exc)}); {_RESAVE}"
    return archive, extents, None


class _ExtentScan:
    """The largest row and column a worksheet's cells name, bounded cheaply.

    calamine allocates a dense grid from the smallest to the largest cell reference, so two cells at
    A1 and XFD1048576 would abort the process; this bounds the grid before calamine sees the sheet.
    The cheap scan only looks for the rare references (row >= 100000, column >= AA) written the way
    every spreadsheet program writes them; anything unusual switches to the precise scan.
    """

    _BIG_ROW = re.compile(rb'<c r="[A-Z]{1,3}([0-9]{6,7})"|<row r="([0-9]{6,7})"')
    _WIDE_COL = re.compile(rb'<c r="([A-Z]{2,3})[0-9]')
    _ANY_REF = re.compile(rb"""\br\s*=\s*["']\s*([A-Za-z]{0,3})([0-9]{1,7})\s*["']""")
    _ODD = (b":c ", b"<c\t", b"<c\n", b"<c\r", b"r='", b"r =", b"r= ")

    def __init__(self, precise: bool = False) -> None:
        self.precise = precise
        self.skimmed = False
        self.max_row = 0
        self.max_col = 0

    def feed(self, tail: bytes, chunk: bytes) -> None:
        window = tail + chunk
        if not self.precise and (chunk.count(b"<c ") != chunk.count(b'<c r="') or any(o in window for o in self._ODD)):
            self.precise = True
        if self.precise:
            for letters, digits in self._ANY_REF.findall(window):
                self.max_row = max(self.max_row, int(digits))
                if letters:
                    self.max_col = max(self.max_col, _column_number(letters.upper()))
            return
        self.skimmed = True
        for cell_row, row_row in self._BIG_ROW.findall(window):
            self.max_row = max(self.max_row, int(cell_row or row_row))
        for letters in self._WIDE_COL.findall(window):
            self.max_col = max(self.max_col, _column_number(letters))

    def bound(self) -> tuple[int, int]:
        if self.skimmed:
            # Skimmed chunks only report references beyond these, so they may hold any below.
            return max(self.max_row, 99_999), max(self.max_col, 26)
        return max(self.max_row, 1), max(self.max_col, 1)


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
            return target.lstrip("/") if target.startswith("/") else "xl/" + target.removeprefix("./")
    return None


_BUILTIN_DATE_FORMATS = frozenset([*range(14, 23), *range(27, 37), 45, 46, 47, *range(50, 59), *range(71, 82)])
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')


def _date_styled(archive: zipfile.ZipFile, sheet_part: str | None, refs: set[str]) -> set[str]:
    """Which of the cell references carry a date/time number format."""
    if sheet_part is None or not refs:
        return set()
    from defusedxml import ElementTree as SafeET

    try:
        styles = SafeET.fromstring(archive.read("xl/styles.xml"))
        custom: dict[int, str] = {}
        for fmt in styles.iter(f"{_NS_MAIN}numFmt"):
            custom[int(fmt.get("numFmtId", "-1"))] = fmt.get("formatCode", "")
        date_xfs: set[int] = set()
        cell_xfs = styles.find(f"{_NS_MAIN}cellXfs")
        for index, xf in enumerate(cell_xfs if cell_xfs is not None else []):
            fmt_id = int(xf.get("numFmtId", "0"))
            code = _FORMAT_LITERALS.sub("", custom.get(fmt_id, "")).lower()
            if fmt_id in _BUILTIN_DATE_FORMATS or (fmt_id in custom and any(c in code for c in "dmyhs") and "general" not in code):
                date_xfs.add(index)
        found: set[str] = set()
        with archive.open(sheet_part) as stream:
            for _, element in SafeET.iterparse(stream):
                if element.tag == f"{_NS_MAIN}c":
                    ref = element.get("r")
                    if ref in refs and int(element.get("s", "0")) in date_xfs:
                        found.add(ref)
                    element.clear()
        return found
    except Exception:  # noqa: BLE001 - without styles we cannot tell a date from a number
        return set()


def _cell_text(value: object) -> str:
    kind = type(value)
    if kind is str:
        return value if "\r" not in value else value.replace("\r\n", "\n").replace("\r", "\n")  # type: ignore[union-attr]
    if kind is float:
        if value.is_integer():  # type: ignore[union-attr]
            return str(int(value))  # type: ignore[call-overload]
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is dt.datetime or kind is dt.date or kind is dt.time:
        return value.isoformat()  # type: ignore[union-attr]
    if kind is dt.timedelta:
        seconds = value.total_seconds()  # type: ignore[union-attr]
        sign = "-" if seconds < 0 else ""
        whole, frac = divmod(abs(seconds), 1)
        hours, rest = divmod(int(whole), 3600)
        minutes, secs = divmod(rest, 60)
        text = f"{sign}{hours}:{minutes:02d}:{secs:02d}"
        return text + f"{frac:.6f}".rstrip("0")[1:] if frac else text
    if value is None:
        return ""
    return str(value)


def _grid_to_table(
    path: Path,
    kind: str,
    data: bytes,
    archive: zipfile.ZipFile,
    sheet_part: str | None,
    sheet_name: str,
    grid: list[list[object]],
) -> tuple[RawTable | None, list[Issue]]:
    name = path.name
    issues: list[Issue] = []
    if not grid:
        return None, [_error(name, None, None, None, f"sheet {sheet_name!r} is empty: no header row; put the header in the first row")]
    width = max(len(r) for r in grid)
    columns: list[list[str]] = []
    suspects: dict[str, tuple[int, int, str]] = {}
    for j, column in enumerate(itertools.zip_longest(*grid, fillvalue="")):
        if all(type(v) is str for v in column):
            texts = [v if "\r" not in v else _cell_text(v) for v in column]  # type: ignore[operator]
        else:
            texts = [_cell_text(v) for v in column]
            for i, v in enumerate(column):
                # calamine hands back the raw serial when a date is beyond what Excel can show.
                if type(v) is float and (v > _MAX_DATE_SERIAL or v < 0):
                    suspects[f"{_column_letter(j)}{i + 1}"] = (i, j, texts[i])
        columns.append(texts)

    filled = np.zeros(len(grid), dtype=bool)
    for texts in columns:
        filled |= np.asarray(texts, dtype=object) != ""
    non_blank_rows = filled.nonzero()[0]
    if len(non_blank_rows) == 0:
        return None, [_error(name, None, None, None, f"sheet {sheet_name!r} is empty: no header row; put the header in the first row")]
    header_index = int(non_blank_rows[0])
    last_index = int(non_blank_rows[-1])
    header_row = header_index + 1

    errors: list[Issue] = []
    if suspects:
        for ref in sorted(_date_styled(archive, sheet_part, set(suspects)), key=lambda r: suspects[r][:2]):
            i, j, text = suspects[ref]
            column_name = columns[j][header_index].strip() or _column_letter(j)
            errors.append(_error(name, i + 1, column_name, text, f"date out of range in cell {ref} (after 9999-12-31 or before 1900): type the date again in that cell"))
    if errors:
        return None, errors

    headers = [columns[j][header_index].strip() for j in range(width)]
    body = {j: columns[j][header_index + 1 : last_index + 1] for j in range(width)}
    frame = pd.DataFrame(body, dtype=object) if body else pd.DataFrame(index=range(0))
    if frame.shape[1] == 0:
        frame = pd.DataFrame(index=range(last_index - header_index))
    rows = pd.RangeIndex(header_row + 1, last_index + 2).to_numpy(dtype="int64")
    return _finish_table(path, kind, data, frame, headers, rows, header_row, issues, sheet=sheet_name, trailing_blank_header_is_warning=True)


