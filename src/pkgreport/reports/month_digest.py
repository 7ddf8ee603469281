"""The digest of one month's invoices or payments kept in the run history: SHA-256 over
canonical bytes of the typed columns, the same on every machine and pandas release.

Summary format 2 (format 1 hashed rows with pandas' `hash_pandas_object`, whose values pandas
does not promise to keep): SHA-256 over, for each column but `source_file` and `source_row` in
order of column name,

- the name: its UTF-8 length as a little-endian int64, then its UTF-8 bytes;
- a tag byte: `i` for integers, money, booleans and datetimes, `t` for text;
- one byte per row, 1 where the value is missing and 0 where not;
- `i`: each value as a little-endian int64 (0 where missing): cents, 0/1 for a boolean,
  nanoseconds since 1970-01-01 for a date or time;
- `t`: each value's length in characters as a little-endian int64 (0 where missing), then the
  values' UTF-8 bytes one after the other.

The rows are those dated in the month, live or not, ordered by their id (the invoice or payment
id, unique once validated) in code-point order, so neither the row order of the export nor the
rows of other months change a month's digest.
"""

from __future__ import annotations

import gc
import hashlib
import pickle
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pkgreport.reports.second_process import Beside

PROVENANCE = ("source_file", "source_row")
# The kinds whose months the run history digests, with the date that puts a row in its month and
# the id that orders a month's rows.
DIGESTED_KINDS = {"invoices": ("issue_date", "invoice_id"), "payments": ("paid_at", "payment_id")}
# From this many invoice and payment rows together, a process forked before the engines run
# digests them beside them (`DigestsBeside`, about 0.5 microseconds a row); below, the
# summary digests them itself, for less than starting a process costs.
BESIDE_MIN_ROWS = 200_000
_INT64 = np.dtype("<i8")


def _as_int64(values: pd.Series, order: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The column's missing flags and its values as little-endian int64 (missing values 0), in
    `order`; None when it holds text."""
    dtype = values.dtype
    if dtype.kind == "M":
        ints = values.to_numpy(dtype="datetime64[ns]").view(np.int64)
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        ints = values.to_numpy(dtype=np.int64, na_value=0)
    else:
        return None
    missing = values.isna().to_numpy()[order]
    ints = np.asarray(ints, dtype=_INT64)[order]  # a copy of its own, to zero the missing values in
    ints[missing] = 0
    return missing, ints


class _Text(NamedTuple):
    """A text column's canonical parts: missing flags, lengths in characters, and the UTF-8 bytes
    of its values one after the other, `data[starts[i]:starts[i + 1]]` being value i's."""

    missing: np.ndarray
    lengths: np.ndarray
    data: bytes | memoryview
    starts: np.ndarray

    def span(self, lo: int, hi: int) -> bytes | memoryview:
        return self.data[int(self.starts[lo]) : int(self.starts[hi])]


def _as_text(values: pd.Series, order: np.ndarray) -> _Text:
    """The column's values as text ("" where missing), in `order`: by pyarrow when every value
    is a `str` it can hold (one pass in C, rows put in order by Arrow), else value by value (a
    value that is not text is digested as it prints; a lone surrogate from a mis-decoded export
    is kept by "surrogatepass")."""
    objects = values.to_numpy(dtype=object)
    text = _arrow_text(objects)
    if text is not None:
        text = text.take(order)
        _, offsets, data = text.buffers()
        return _Text(
            missing=text.is_null().to_numpy(zero_copy_only=False),
            lengths=pc.utf8_length(text).fill_null(0).to_numpy().astype(_INT64),
            data=b"" if data is None else memoryview(data),
            starts=np.frombuffer(offsets, dtype=np.int64, count=len(text) + 1),
        )
    objects = objects[order]
    missing = pd.isna(objects)
    texts = objects.copy()
    texts[missing] = ""
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":
        texts = np.array([str(v) for v in texts], dtype=object)  # digested as it prints
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(texts)), out=starts[1:])
    return _Text(missing, lengths.astype(_INT64, copy=False), b"".join(encoded), starts)


def _arrow_text(objects: np.ndarray) -> pa.LargeStringArray | None:
    """The values as an Arrow text array when each is a `str` or missing (None, NaN, NA, NaT),
    else None. Arrow infers the values' type reading them in C, without a reference count
    written: a process forked to digest the frames then copies none of the pages holding the
    strings (pandas' `infer_dtype` writes the count of every value, which copied about 0.2 GB
    of them at 1M rows)."""
    try:
        text = pa.array(objects, from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None  # a lone surrogate, which UTF-8 cannot hold, or values Arrow cannot mix
    if text.type not in (pa.string(), pa.large_string(), pa.null()):
        return None
    if isinstance(text, pa.ChunkedArray):  # more than 2 GB of text
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.large_string())
    return text.cast(pa.large_string())


def _column_parts(
    values: pd.Series, order: np.ndarray
) -> tuple[bytes, np.ndarray, Callable[[int, int], tuple[bytes | memoryview, ...]]]:
    """A column's tag, its missing flags, and what rows lo..hi add after the flags, its rows
    taken in `order`."""
    numbers = _as_int64(values, order)
    if numbers is not None:
        missing, ints = numbers
        return b"i", missing, lambda lo, hi: (ints[lo:hi].tobytes(),)
    text = _as_text(values, order)
    return b"t", text.missing, lambda lo, hi: (text.lengths[lo:hi].tobytes(), text.span(lo, hi))


def _by_month_then_id(ids: pd.Series, month: np.ndarray) -> np.ndarray:
    """The rows' order by month, then by id in code-point order: Arrow sorts the ids' UTF-8
    bytes, which is that order, in C; ids it cannot hold as text are sorted by numpy."""
    try:
        text = pa.array(ids.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        text = None
    if text is not None and text.null_count == 0:
        by_id = pc.sort_indices(text).to_numpy()
    else:
        by_id = np.argsort(ids.to_numpy(dtype=object).astype(str), kind="stable")
    return by_id[np.argsort(month[by_id], kind="stable")]


def month_digests(frame: pd.DataFrame, month: np.ndarray, id_column: str) -> dict[int, str]:
    """Month (numpy months since 1970-01) -> hex digest, for every month in `month` (one per
    row; rows with no date must be left out of `frame` and `month` beforehand)."""
    order = _by_month_then_id(frame[id_column], month)
    sorted_month = month[order]
    bounds = np.flatnonzero(np.r_[True, sorted_month[1:] != sorted_month[:-1], True])
    spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    hashes = {int(sorted_month[lo]): hashlib.sha256() for lo, _ in spans}
    for name in sorted(c for c in frame.columns if c not in PROVENANCE):
        tag, missing, values_of = _column_parts(frame[name], order)
        encoded = name.encode("utf-8")
        head = np.int64(len(encoded)).astype(_INT64).tobytes() + encoded + tag
        flags = missing.astype(np.uint8)
        for lo, hi in spans:
            digest = hashes[int(sorted_month[lo])]
            digest.update(head)
            digest.update(flags[lo:hi].tobytes())
            for part in values_of(lo, hi):
                digest.update(part)
        del values_of
        # The column's Arrow buffers, given back before the next column's: a process forked to
        # digest the frames then holds one column's at a time (about 80 MB less at 1M rows).
        pa.default_memory_pool().release_unused()
    return {key: digest.hexdigest() for key, digest in hashes.items()}


def dated_months(frame: pd.DataFrame, date_column: str) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the rows with a date, and every row's month (numpy months since 1970-01;
    meaningless where there is no date)."""
    at = frame[date_column].to_numpy(dtype="datetime64[ns]")
    return np.flatnonzero(~np.isnat(at)), at.astype("datetime64[M]").astype(np.int64)


def kind_digests(frame: pd.DataFrame, kind: str) -> dict[int, str]:
    """`month_digests` of the dated rows of a kind in DIGESTED_KINDS."""
    date_column, id_column = DIGESTED_KINDS[kind]
    rows, month = dated_months(frame, date_column)
    dated = frame if len(rows) == len(frame) else frame.iloc[rows]
    return month_digests(dated, month[rows], id_column)


Digests = dict[str, dict[int, str]]


def all_digests(frames: Mapping[str, pd.DataFrame | None]) -> Digests:
    """Kind -> `kind_digests`, for each kind given whose frame has rows."""
    return {
        kind: kind_digests(frame, kind)
        for kind, frame in frames.items()
        if frame is not None and not frame.empty
    }


class DigestsBeside(Mapping[str, dict[int, str]]):
    """`all_digests` of validated frames, worked out by a process forked at once (before the
    engines run, `pipeline`), beside them; joined when first read (the summary being built).

    The engines leave the second core idle, so the digests are done before the rendering shares
    the two cores with the workbook's process. The child reads the frames' strings without
    writing to them (`_arrow_text`) and gives back each column's buffers before the next, so
    the pages it holds are mostly those it shares with this process. Whatever goes wrong in the
    child (an exception, a crash, a kill), the digests are worked out here instead from the same
    frames: the same either way. A run whose summary is never built (`pkgreport credit`, say)
    stops and reaps the child when this object goes, or at exit; `close()` does it at once.
    Pickled, it is the plain dict of its digests.
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame | None]) -> None:
        self._digests: Digests | None = None
        self._child = Beside(lambda: pickle.dumps(all_digests(frames)))
        self._stop = weakref.finalize(self, self._child.__exit__, None, None, None)

    def _joined(self) -> Digests:
        if self._digests is None:
            forked = self._child.started
            self._digests = pickle.loads(self._child.result())
            self._stop()  # nothing left to stop
            if forked:
                # Reaping the child unfroze the collector's objects, while the workbook's
                # process, forked after it, still shares their pages: frozen again, the
                # collector does not make this process copy them (that process's reaping
                # unfreezes them).
                gc.freeze()
        return self._digests

    def close(self) -> None:
        """Stop the child without its digests (the run was let go)."""
        self._stop()

    def __getitem__(self, kind: str) -> dict[int, str]:
        return self._joined()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined())

    def __len__(self) -> int:
        return len(self._joined())

    def __reduce__(self) -> tuple[type[dict[str, dict[int, str]]], tuple[Digests]]:
        return dict, (self._joined(),)


def digests_beside(frames: Mapping[str, pd.DataFrame | None]) -> DigestsBeside | None:
    """The digests worked out beside (`DigestsBeside`) when the frames have BESIDE_MIN_ROWS
    rows or more; None when fewer, for the summary to work them out itself."""
    rows = sum(len(frame) for frame in frames.values() if frame is not None)
    return DigestsBeside(frames) if rows >= BESIDE_MIN_ROWS else None
