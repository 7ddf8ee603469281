"""The workbook's table bodies: column values converted once per distinct value, then written."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from xlsxwriter.worksheet import Worksheet

from pkgreport.arrow_text import arrow_text
from pkgreport.reports.filters import is_blank, to_python
from pkgreport.reports.workbook_bulk import BulkWorksheet, fits_bulk

# Excel's limit on characters in one cell; longer text is cut rather than dropped.
EXCEL_MAX_CELL_CHARS = 32_767
_EXCEL_EPOCH = np.datetime64("1899-12-30T00:00:00", "ns")


def clip(text: str) -> str:
    """Text cut to what one cell holds, with an ellipsis when cut."""
    if len(text) > EXCEL_MAX_CELL_CHARS:
        return text[: EXCEL_MAX_CELL_CHARS - 1] + "…"
    return text


def write_cells(
    ws: Worksheet,
    first_row: int,
    col: int,
    kind: str,
    column: CellColumn,
    span: tuple[int, int],
    fmt: Any,
    *,
    bulk: bool = False,
) -> None:
    """Rows `span` (start, stop) of one column from `first_row` down, in `fmt`; a blank gets no
    cell. With `bulk` (every column of the table `fits_bulk`), a `BulkWorksheet` takes the
    column whole; otherwise each cell is written through xlsxwriter's public API."""
    start, stop = span
    if bulk and isinstance(ws, BulkWorksheet):
        ws.write_body_column(first_row, col, kind, column.codes[start:stop], column.values, fmt)
        return
    write = _WRITERS[kind](ws)
    for row, value in enumerate(column.rows[start:stop], start=first_row):
        if value is not None:
            write(row, col, value, fmt)


# The worksheet method that writes a column's kind of value: text stays text, whatever it holds.
# (One call a cell: `write_column` costs the same for numbers and more for text, which it
# inspects to turn "" into a blank.)
_WRITERS = {
    "money": lambda ws: ws.write_number,
    "int": lambda ws: ws.write_number,
    "percent": lambda ws: ws.write_number,
    "date": lambda ws: ws.write_number,
    "datetime": lambda ws: ws.write_number,
    "bool": lambda ws: ws.write_boolean,
    "text": lambda ws: ws.write_string,
    "id": lambda ws: ws.write_string,
}


# Values repeat a lot (codes, names, amounts, dates), so each distinct value of a column is
# converted once (factorize) and the per-row values are taken from those.


class CellColumn:
    """A column's cells: each distinct value as written (float, int, bool or str; None is a
    blank) and, per row, the index of its value (-1: a blank)."""

    def __init__(self, codes: np.ndarray, values: list[Any]) -> None:
        self.codes = np.asarray(codes, dtype=np.intp)
        self.values = values
        self.fits_bulk = fits_bulk(values)

    @cached_property
    def rows(self) -> list[Any]:
        """Each row's value; None is a blank."""
        table = np.empty(len(self.values) + 1, dtype=object)
        table[:-1] = self.values
        table[-1] = None
        return table[self.codes].tolist()


def cell_column(series: pd.Series, kind: str) -> CellColumn:
    """A column's values as written."""
    if kind in ("money", "int", "percent"):
        codes, converted = _number_cells(series, kind)
    elif kind in ("date", "datetime"):
        codes, converted = _serial_cells(series, kind)
    else:
        codes, uniques = _distinct(series) if kind in ("text", "id") else _factorized(series)
        if kind == "bool":
            converted = [None if is_blank(v) else bool(v) for v in uniques]
        else:
            converted = [_text(u if type(u) is str else str(to_python(u))) for u in uniques]
    return CellColumn(codes, converted)


def _factorized(series: pd.Series) -> tuple[np.ndarray, Any]:
    return pd.factorize(series.astype(object), use_na_sentinel=True)


def _distinct(series: pd.Series) -> tuple[np.ndarray, Any]:
    """`_factorized` of a text column (the same codes and values), by Arrow where it reads every
    value as text: pandas takes each value, which in the workbook's forked process copies every
    page holding one (`arrow_text.arrow_text`)."""
    text = arrow_text(series.to_numpy(dtype=object))
    if text is None:
        return _factorized(series)
    encoded = text.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    return codes, encoded.dictionary.to_numpy(zero_copy_only=False)


def _number_cells(series: pd.Series, kind: str) -> tuple[np.ndarray, list[Any]]:
    numeric = pd.to_numeric(series, errors="coerce")
    blank = numeric.isna().to_numpy()
    if kind == "percent":
        floats = numeric.astype("float64").fillna(0).to_numpy()
        # Factorized by bit pattern: 0.0 and -0.0 are equal but are different cells.
        codes, uniques = pd.factorize(floats.view(np.int64))
        converted: list[Any] = uniques.view(np.float64).tolist()
    else:
        ints = series.where(~numeric.isna(), 0).astype("int64").to_numpy()
        codes, uniques = pd.factorize(ints)
        # int cents -> float dollars: one correctly rounded division, the nearest double.
        converted = [v / 100 for v in uniques.tolist()] if kind == "money" else uniques.tolist()
    codes[blank] = -1
    return codes, converted


def _serial_cells(series: pd.Series, kind: str) -> tuple[np.ndarray, list[Any]]:
    """Excel's serial dates: days since 1899-12-30 (what write_datetime computes, vectorised)."""
    stamps = pd.to_datetime(series, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    blank = stamps.isna().to_numpy()
    delta = stamps.to_numpy(dtype="datetime64[ns]") - _EXCEL_EPOCH
    serial = np.where(blank, 0.0, delta / np.timedelta64(1, "D"))
    if kind == "date":
        codes, uniques = pd.factorize(np.floor(serial).astype("int64"))
        converted: list[Any] = uniques.tolist()
    else:
        codes, uniques = pd.factorize(serial.view(np.int64))
        converted = uniques.view(np.float64).tolist()
    codes[blank] = -1
    return codes, converted


def _text(value: str) -> str:
    """Text as a cell holds it: clipped, and a lone surrogate from a mis-decoded export becomes
    "?" rather than aborting the workbook."""
    text = clip(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
