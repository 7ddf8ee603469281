"""The loaded-table records (`InputFile`, `RawTable`) and a grid of text finished into one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from pkgreport.errors import Issue
from pkgreport.inputs.parsing import unwrap_excel_text
from pkgreport.inputs.read_ahead import sha256_of
from pkgreport.result import InputFile

RESERVED_COLUMNS = ("source_file", "source_row")
# A column of a file's text: an object array of `str`, or (values that repeat, read by pyarrow)
# a `pd.Categorical` of `str`: one string per distinct value, a small code per row.
TextColumn: TypeAlias = np.ndarray | pd.Categorical


@dataclass(frozen=True)
class RawTable:
    """One file's rows as text.

    `frame` has the file's headers exactly as written (surrounding whitespace stripped), every value
    a `str` (a blank cell is ""; a column is `object`, or `category` of `str` when pyarrow read
    a CSV column whose values repeat), plus `source_file` (str) and `source_row` (int64: the row as the
    user's spreadsheet numbers it, header = row 1).
    """

    file: InputFile
    frame: pd.DataFrame
    # False when the file's text holds no "+" anywhere, so no cell is written in scientific
    # notation (an id rounded by a spreadsheet): the check per id column can skip its scan.
    may_hold_scientific: bool = True
    # A bound measured while reading (else None): no cell holds more characters. A CSV reader
    # gives the UTF-8 length of the longest cell; a sheet the length of its longest run of cells.
    longest_cell_bytes: int | None = None
    # False when a reader of the loader decoded the text, strictly: no cell or header holds a
    # lone surrogate (`pkgreport.inputs.surrogates`), so validation does not look for one. A
    # copy given other text (`dataclasses.replace(table, frame=...)`) should say True again.
    may_hold_lone_surrogates: bool = True


# --------------------------------------------------------------------------------------------
# Shared: headers, blank rows, the output frame
# --------------------------------------------------------------------------------------------


def finish_table(
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
    arrays = [frame.iloc[:, j].to_numpy() for j in range(frame.shape[1])]
    return finish_columns(
        path,
        kind,
        data,
        arrays,
        headers,
        rows,
        header_row,
        issues,
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
        trailing_blank_header_is_warning=trailing_blank_header_is_warning,
    )


def finish_columns(
    path: Path,
    kind: str,
    data: bytes,
    arrays: list[TextColumn],
    headers: list[str],
    rows: np.ndarray,
    header_row: int,
    issues: list[Issue],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    trailing_blank_header_is_warning: bool = False,
    longest_cell_bytes: int | None = None,
    may_hold_wrapped: bool = True,
) -> tuple[RawTable | None, list[Issue]]:
    """`finish_table` of the data rows as one column of `str` per field (`TextColumn`).

    `may_hold_wrapped` False: the reader's own pass over the cells (`joined_runs`) found no `="`,
    so no cell is unwrapped and `longest_cell_bytes` is that pass's bound.
    """
    name = path.name
    keep_cols, errors = _kept_columns(
        name, headers, arrays, rows, header_row, issues, trailing_blank_header_is_warning
    )
    errors += _header_name_errors(name, headers, keep_cols, header_row)
    if errors:
        return None, issues + errors

    rows = np.asarray(rows, dtype="int64")
    arrays, rows = _without_blank_rows(name, arrays, keep_cols, rows, issues)

    # A one-byte search (memchr) rules out the usual file at once: no "=" means no ="…" cell,
    # no "+" no 1.01754E+18. A sheet's cells, and UTF-16/32 bytes, are not searched so.
    searchable = sheet is None and not (encoding or "").startswith(("utf-16", "utf-32"))
    if may_hold_wrapped and (not searchable or b"=" in data):
        # Cliniko writes long ids as ="1558354464010667075" so a spreadsheet keeps every digit.
        arrays, bound = _unwrapped(arrays, keep_cols)
        if longest_cell_bytes is None:
            longest_cell_bytes = bound
    out = pd.DataFrame({headers[j]: _text_series(arrays[j]) for j in keep_cols}, copy=False)
    source_file = np.empty(len(rows), dtype=object)
    source_file.fill(name)  # np.full is ~15x slower for an object array
    out["source_file"] = pd.Series(source_file, dtype=object, copy=False)
    out["source_row"] = rows
    if len(out) == 0:
        issues.append(
            file_warning(
                name,
                "the export looks empty: it has a header row but no data rows; check the export "
                "finished and covered the right dates (if there really is nothing, ignore this)",
            )
        )
    file = InputFile(
        path=path,
        name=name,
        kind=kind,
        sha256=sha256_of(data),
        size=len(data),
        rows=len(out),
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
    )
    scientific = not searchable or b"+" in data
    table = RawTable(
        file,
        out,
        may_hold_scientific=scientific,
        longest_cell_bytes=longest_cell_bytes,
        may_hold_lone_surrogates=False,
    )
    return table, issues


def _text_series(column: TextColumn) -> pd.Series:
    """A column as it is held: a categorical stays one, an object array stays `object` (pandas
    3 would otherwise re-check every value to infer its "str" dtype)."""
    if isinstance(column, np.ndarray):
        return pd.Series(column, dtype=object, copy=False)
    return pd.Series(column, copy=False)


# Cells joined at a time: a run's length bounds each of its cells, and a run of 1,024 cells
# passes the default cap on a cell (1,000,000 characters) only if they average over 976.
_RUN = 1024


def joined_runs(cells: list[str]) -> list[str]:
    """The cells joined a run at a time (TypeError when one is not a `str`): one C-level pass
    that tells whether any cell holds a text and bounds every cell's length by its run's."""
    return ["".join(cells[i : i + _RUN]) for i in range(0, len(cells), _RUN)]


def _unwrapped(
    arrays: list[TextColumn], keep_cols: list[int]
) -> tuple[list[TextColumn], int | None]:
    """The arrays with `="text"` cells of the kept columns unwrapped, and a bound on the length
    of any kept cell (None when a cell is not text).

    One pass joins each run of cells: a column whose runs hold no `="` is left as it is (no cell
    can be written so), and the longest run bounds every cell, so the check on a cell's length
    (`loading`) need not measure each one.
    """
    out = list(arrays)
    bound: int | None = 0
    for j in keep_cols:
        cells = arrays[j].tolist()
        try:
            runs = joined_runs(cells)
        except TypeError:  # not all text: unwrap_excel_text decides, and nothing is bounded
            out[j] = unwrap_excel_text(np.asarray(arrays[j], dtype=object))
            bound = None
            continue
        if bound is not None:
            bound = max(bound, *map(len, runs), 0)
        if any('="' in run for run in runs):
            out[j] = unwrap_excel_text(np.asarray(arrays[j], dtype=object))
    return out, bound


def _kept_columns(
    name: str,
    headers: list[str],
    arrays: list[TextColumn],
    rows: np.ndarray,
    header_row: int,
    issues: list[Issue],
    trailing_blank_header_is_warning: bool,
) -> tuple[list[int], list[Issue]]:
    """(positions of the named columns, errors): a blank-headed column holding values is an
    error, or a warning appended to `issues` when it sits beyond the table and that is allowed."""
    errors: list[Issue] = []
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
        where = f"column {j + 1} ({column_letter(j)})"
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
            row_error(
                name,
                int(rows[first]),
                None,
                value,
                f"{where} has a blank header but holds values: add a header to that column or delete it, then export again",
            )
        )

    if not keep_cols and not errors:
        errors.append(
            row_error(
                name,
                header_row,
                None,
                None,
                f"the header row (row {header_row}) holds no column names: put the headers in the first row and export again",
            )
        )
    return keep_cols, errors


def _header_name_errors(
    name: str, headers: list[str], keep_cols: list[int], header_row: int
) -> list[Issue]:
    """A header written twice, or one pkgreport reserves for provenance, is an error."""
    errors: list[Issue] = []
    seen: dict[str, list[int]] = {}
    for j in keep_cols:
        seen.setdefault(headers[j], []).append(j)
    for header, positions in seen.items():
        if len(positions) > 1:
            cols = ", ".join(str(p + 1) for p in positions)
            errors.append(
                row_error(
                    name,
                    header_row,
                    header,
                    header,
                    f"duplicate header {header!r} (columns {cols}): rename or delete the extra columns so each header appears once",
                )
            )
        if header in RESERVED_COLUMNS:
            errors.append(
                row_error(
                    name,
                    header_row,
                    header,
                    header,
                    f"the header {header!r} is reserved by pkgreport for provenance: rename that column",
                )
            )
    return errors


def _without_blank_rows(
    name: str,
    arrays: list[TextColumn],
    keep_cols: list[int],
    rows: np.ndarray,
    issues: list[Issue],
) -> tuple[list[TextColumn], np.ndarray]:
    """The arrays and row numbers without the blank rows; one warning lists those skipped."""
    # Rows holding values only in ignored columns are blank as far as the table goes.
    blank = (
        blank_in([arrays[j] for j in keep_cols], len(rows))
        if keep_cols
        else np.zeros(len(rows), dtype=bool)
    )
    if not blank.any():
        return arrays, rows
    blank_numbers = [int(r) for r in rows[blank]]
    shown = ", ".join(str(r) for r in blank_numbers[:20])
    more = f" and {len(blank_numbers) - 20} more" if len(blank_numbers) > 20 else ""
    issues.append(
        Issue("warning", name, blank_numbers[0], None, None, f"blank row(s) {shown}{more} skipped")
    )
    keep = ~blank
    return [a[keep] for a in arrays], rows[keep]


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def row_error(
    file: str, row: int | None, column: str | None, value: str | None, message: str
) -> Issue:
    return Issue("error", file, row, column, value, message)


def file_error(file: str, message: str) -> Issue:
    """An error about the whole file (no row or column)."""
    return Issue("error", file, None, None, None, message)


def file_warning(file: str, message: str) -> Issue:
    return Issue("warning", file, None, None, None, message)


def blank_in(arrays: list[TextColumn], length: int) -> np.ndarray:
    blank = np.ones(length, dtype=bool)
    for values in arrays:
        rows = blank.nonzero()[0]
        if len(rows) == 0:
            break
        # Only rows still blank are compared, so a full-width pass happens only on blank data.
        blank[rows] = values[rows] == ""
    return blank
