"""Reading CSV/TSV exports: encodings, delimiters, quoting, structure and NUL checks."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pkgreport.errors import Issue
from pkgreport.inputs.csv_arrow import read_text_columns
from pkgreport.inputs.tables import (
    RawTable,
    TextColumn,
    blank_in,
    file_error,
    finish_columns,
    finish_table,
    row_error,
)

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


def load_csv(
    path: Path, kind: str, data: bytes, *, use_arrow: bool = True
) -> tuple[RawTable | None, list[Issue]]:
    """One CSV/TSV file as text, or None and the issues that say why it cannot be read.

    `use_arrow` False reads without pyarrow, as before it was used: the tests compare the two.
    """
    fast = _load_plain_utf8_csv(path, kind, data, use_arrow)
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
        return None, [
            *issues,
            file_error(
                name, "empty file: no header row; export the data again with its header row"
            ),
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
        return None, [*issues, file_error(name, problem)]

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
        unterminated = _cut_short(name, frame.iloc[:, -1].to_numpy(), header_row)
        if unterminated is not None:
            issues = [*issues, unterminated]
    headers = [str(h).strip() for h in frame.iloc[0].tolist()]
    frame = frame.iloc[1:]
    rows = pd.RangeIndex(header_row + 1, header_row + 1 + len(frame))
    return finish_table(
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
    path: Path, kind: str, data: bytes, use_arrow: bool
) -> tuple[RawTable | None, list[Issue]] | None:
    """The common case without decoding the whole file: None whenever the exact path is needed.

    Decoding a large export to one `str` costs ~0.3 s per 100 MB and twice its size in memory, and
    only the checks of `load_csv` use it. For a file with no byte-order mark, no NUL, no blank
    line before the header and no 'sep=' line, those checks need only the head (its CRLF and CR
    read as LF, as the exact path reads them); the rest of the text is decoded field by field by the reader, strictly, so
    invalid UTF-8 anywhere makes it fail and the exact path then reads the file as Windows-1252,
    as before. Any structure problem also goes to the exact path, which reports it.
    """
    if any(data.startswith(bom) for bom, _ in _BOMS) or b"\x00" in data:
        return None
    crlf = b"\r" in data
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
    if crlf:
        head = head.replace("\r\n", "\n").replace("\r", "\n")  # as the exact path reads it
    if not whole and "\n" not in head:
        return None  # a first line longer than the head: too odd to judge from it
    lead, body_head = _skip_leading_blank_lines(head)
    if lead or body_head is None or _SEP_LINE.match(head):
        return None
    delimiter, problem = _sniff_delimiter(head, whole=whole)
    if problem is not None:
        return None
    read = _read_plain_records(data, head, delimiter, crlf, use_arrow)
    if read is None:
        return None
    columns, longest_cell_bytes = read
    ending: list[Issue] = []
    if not data.endswith((b"\n", b"\r")):
        unterminated = _cut_short(path.name, columns[-1], 1)
        ending = [] if unterminated is None else [unterminated]
    headers = [str(column[0]).strip() for column in columns]
    rows = np.arange(2, 1 + len(columns[0]), dtype=np.int64)
    return finish_columns(
        path,
        kind,
        data,
        [column[1:] for column in columns],
        headers,
        rows,
        1,
        ending,
        encoding="utf-8",
        delimiter=delimiter,
        longest_cell_bytes=longest_cell_bytes,
    )


def _read_plain_records(
    data: bytes, head: str, delimiter: str, crlf: bool, use_arrow: bool
) -> tuple[list[TextColumn], int | None] | None:
    """(every record as text, one array per column; the longest cell's UTF-8 length when
    known), or None when the exact path must read the file.

    pyarrow reads the file when it reads it exactly as pandas would (`csv_arrow`); otherwise
    pandas does, as before, but only a file without CR: pandas keeps a CR inside a quoted
    value, which the exact path writes as LF.
    """
    width = _header_width(head, delimiter) if use_arrow else None
    arrow = None if width is None else read_text_columns(data, delimiter, width)
    if arrow is not None:
        return arrow.columns, arrow.longest_cell_bytes
    if crlf:
        return None
    frame, bad_rows = _parse_with_pandas(None, delimiter, data)
    if frame is None or bad_rows:
        return None
    columns: list[TextColumn] = [frame.iloc[:, j].to_numpy() for j in range(frame.shape[1])]
    return columns, None


def _header_width(head: str, delimiter: str) -> int | None:
    """The number of fields in the header record, or None when the csv module cannot tell."""
    reader = csv.reader(
        io.StringIO(head), delimiter=delimiter, quotechar='"', doublequote=True, strict=True
    )
    try:
        return len(next(reader))
    except (csv.Error, StopIteration):
        return None


def _cut_short(name: str, last_column: TextColumn, header_row: int) -> Issue | None:
    """A warning when a file with data rows does not end with a line break: it may be cut short.

    A copy or download that stopped early ends inside its last row. When that row still has every
    field, only its last value is shorter than it should be, which nothing else can detect; some
    programs do omit the final line break, so that value is named for the user to check rather
    than refused. (A last row with fewer fields, or inside an open quote, is an error elsewhere.)
    """
    if len(last_column) <= 1:
        return None
    row = header_row + len(last_column) - 1
    return Issue(
        "warning",
        name,
        row,
        str(last_column[0]).strip(),
        str(last_column[-1]),
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
                        row_error(
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
                row_error(
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
            records.append(record)  # keeps the records read before an error
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
    return blank_in([frame.iloc[:, j].to_numpy() for j in range(frame.shape[1])], len(frame))


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
                row_error(
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
                row_error(
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
            file_error(
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
                        row_error(
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
            file_error(
                name,
                f"{total - shown:,} more NUL byte(s): the file is damaged or not a text export; "
                f"{_REEXPORT}",
            )
        )
    return issues
