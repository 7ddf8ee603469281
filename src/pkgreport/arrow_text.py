"""Text of object arrays read by Arrow, without a reference count written.

Taking Python objects out of an array (numpy's take, a boolean mask, pandas' row selection, a
pass of pandas or numpy code over them) writes each object's reference count. In a process
forked beside another (pandera's checks, the workbook's process), that copies every page holding
one of them, and a few rows' ids spread over a long column sit on most of its pages: the 2,233
open invoices of the 1M-row month's 844,980 copy about 19 MB of the id strings. pyarrow reads
each `str` in C through a borrowed pointer, without writing to it, and a mask keeps it from
reading the rows not wanted at all (about 5 ms for a column of a million rows). Used wherever a
frame's text is read while another process shares its pages: pandera's process
(`schema_process`), the month digests (`reports.month_digest`), the figures per location and the
rows the reports show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

# Values read at a time by `arrow_text_in_slices`: about 2 ms holding the GIL.
TEXT_ROWS = 1 << 16


def arrow_text(values: np.ndarray, unwanted: np.ndarray | None = None) -> pa.Array | None:
    """An object array's text as Arrow reads it, without writing to it (a missing value and an
    `unwanted` row: null); None where Arrow refuses a value it reads (not text, a lone
    surrogate)."""
    try:
        return pa.array(values, type=pa.large_string(), mask=unwanted, from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None


def text_missing(values: np.ndarray) -> np.ndarray:
    """`pd.isna(values)` of an object array, read by Arrow where it can (see `arrow_text`)."""
    text = arrow_text(values)
    if text is None:
        return np.asarray(pd.isna(values), dtype=bool)
    missing: np.ndarray = text.is_null().to_numpy(zero_copy_only=False)
    return missing


def arrow_text_at(values: np.ndarray, rows: np.ndarray) -> pa.Array | None:
    """`values[rows]` (an object array) as Arrow text, read without writing to the strings of
    `values` (the other rows not read at all); None where Arrow refuses a wanted row's value."""
    unwanted = np.ones(len(values), dtype=bool)
    unwanted[rows] = False
    text = arrow_text(values, unwanted)
    return None if text is None else text.take(pa.array(rows))


def texts_at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`values[rows]` (an object array) with its text read by Arrow into new strings, without
    writing to the strings of `values`. A missing value (None, NaN) is the very object; should
    Arrow refuse what a wanted row holds (not text, a lone surrogate), the objects are taken."""
    rows = np.asarray(rows, dtype=np.intp)
    text = arrow_text_at(values, rows)
    if text is None:
        taken: np.ndarray = values[rows]
        return taken
    texts: np.ndarray = text.to_numpy(zero_copy_only=False)
    missing = np.flatnonzero(pd.isna(texts))
    if len(missing):
        texts[missing] = values[rows[missing]]
    return texts


def rows_at(
    frame: pd.DataFrame, rows: np.ndarray, columns: list[str] | None = None
) -> pd.DataFrame:
    """`frame.iloc[rows]` (of `columns` only, when given), its object columns' text read by
    `texts_at`: the same values, index and column types."""
    rows = np.asarray(rows, dtype=np.intp)
    names = list(frame.columns) if columns is None else columns
    if not frame.columns.is_unique:
        return frame.iloc[rows][names]
    texts = {name for name in names if frame[name].dtype == object}
    out = frame[[name for name in names if name not in texts]].take(rows)
    for name in texts:
        out[name] = pd.Series(texts_at(frame[name].to_numpy(), rows), index=out.index, dtype=object)
    return out[names]


def arrow_text_in_slices(objects: np.ndarray) -> pa.LargeStringArray | None:
    """`arrow_text`, read TEXT_ROWS values at a time: each read holds the GIL, so a thread
    reading a column beside another waits a few milliseconds at most, not the whole column's."""
    pieces = []
    for start in range(0, len(objects), TEXT_ROWS):
        piece = arrow_text(objects[start : start + TEXT_ROWS])
        if piece is None:
            return None
        pieces.append(piece)
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
