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
import threading
from collections.abc import Callable, Generator, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pkgreport.arrow_text import arrow_text_in_slices
from pkgreport.memory import release_freed_memory

PROVENANCE = ("source_file", "source_row")
# The kinds whose months the run history digests, with the date that puts a row in its month and
# the id that orders a month's rows.
DIGESTED_KINDS = {"invoices": ("issue_date", "invoice_id"), "payments": ("paid_at", "payment_id")}
# From this many invoice and payment rows together, a thread started before the engines run
# digests them beside them (`DigestsBeside`, about 0.4 microseconds of CPU a row); below, the
# summary digests them itself, in less time than the GIL would be shared for.
BESIDE_MIN_ROWS = 200_000
_INT64 = np.dtype("<i8")

# What one span of a column's rows (lo..hi in digest order) adds to its month's digest after
# the column's name and tag: the missing flags, then the values.
Parts = Callable[[int, int], tuple[bytes | memoryview, ...]]
# Digests worked out a column at a time: yields after each column, returns month -> digest.
Steps = Generator[None, None, dict[int, str]]


def _int64_parts(values: pd.Series, positions: np.ndarray) -> Parts | None:
    """What each span of the rows at `positions` adds when the column holds integers, money,
    booleans or datetimes (as little-endian int64, missing values 0); None when it holds text."""
    dtype = values.dtype
    if dtype.kind == "M":
        ints = values.to_numpy(dtype="datetime64[ns]").view(np.int64)
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        ints = values.to_numpy(dtype=np.int64, na_value=0)
    else:
        return None
    missing = values.isna().to_numpy()
    ints = np.asarray(ints, dtype=_INT64)

    def parts(lo: int, hi: int) -> tuple[bytes, ...]:
        rows = positions[lo:hi]
        flags = missing[rows]
        taken = ints[rows]  # a copy of its own, to zero the missing values in
        taken[flags] = 0
        return flags.astype(np.uint8).tobytes(), taken.tobytes()

    return parts


def _text_parts(values: pd.Series, positions: np.ndarray) -> Parts:
    """What each span of the rows at `positions` adds when the column holds text ("" where
    missing). By Arrow when every value is a `str` it can hold (read in file order, then a
    span taken at a time in C, without the GIL), else value by value (`_plain_text`)."""
    objects = values.to_numpy(dtype=object)
    text = arrow_text_in_slices(objects)
    # The pieces it was read in, given back before the spans are taken (Arrow's pool would
    # keep them beside the whole column).
    pa.default_memory_pool().release_unused()
    if text is None:
        ordered = _plain_text(objects[positions])
        return lambda lo, hi: (
            ordered.missing[lo:hi].astype(np.uint8).tobytes(),
            ordered.lengths[lo:hi].tobytes(),
            ordered.span(lo, hi),
        )
    whole = text

    def parts(lo: int, hi: int) -> tuple[bytes | memoryview, ...]:
        taken = whole.take(positions[lo:hi])
        _, offsets, data = taken.buffers()
        starts = np.frombuffer(offsets, dtype=np.int64, count=len(taken) + 1)
        return (
            taken.is_null().to_numpy(zero_copy_only=False).astype(np.uint8).tobytes(),
            pc.utf8_length(taken).fill_null(0).to_numpy().astype(_INT64).tobytes(),
            b"" if data is None else memoryview(data)[starts[0] : starts[-1]],
        )

    return parts


class _Text(NamedTuple):
    """A text column's canonical parts: missing flags, lengths in characters, and the UTF-8 bytes
    of its values one after the other, `data[starts[i]:starts[i + 1]]` being value i's."""

    missing: np.ndarray
    lengths: np.ndarray
    data: bytes
    starts: np.ndarray

    def span(self, lo: int, hi: int) -> bytes:
        return self.data[int(self.starts[lo]) : int(self.starts[hi])]


def _plain_text(objects: np.ndarray) -> _Text:
    """The values as `_Text`, value by value: a value that is not text is digested as it prints;
    a lone surrogate from a mis-decoded export is kept by "surrogatepass"."""
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


def _by_month_then_id(ids: pd.Series, month: np.ndarray) -> np.ndarray:
    """The rows' order by month, then by id in code-point order: Arrow sorts the ids' UTF-8
    bytes, which is that order, in C (reading them a slice at a time); ids it cannot hold
    as text are sorted by numpy."""
    objects = ids.to_numpy(dtype=object)
    text = arrow_text_in_slices(objects)
    by_id = pc.sort_indices(text).to_numpy() if text is not None and not text.null_count else None
    del text  # given back before numpy's sort
    if by_id is None:
        by_id = np.argsort(objects.astype(str), kind="stable")
    return by_id[np.argsort(month[by_id], kind="stable")]


def month_digests(frame: pd.DataFrame, month: np.ndarray, id_column: str) -> dict[int, str]:
    """Month (numpy months since 1970-01) -> hex digest, for every month in `month` (one per
    row; rows with no date must be left out of `frame` and `month` beforehand)."""
    return _run(_digest_steps(frame, id_column, *_months_in_order(frame[id_column], None, month)))


def _months_in_order(
    ids: pd.Series, rows: np.ndarray | None, month: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The positions in the frame of the rows digested (all, or those at `rows`; `month` has
    one per row digested) in digest order (`_by_month_then_id`), and each month's span of
    them: (month, lo, hi)."""
    if rows is not None:
        ids = ids.iloc[rows]
    order = _by_month_then_id(ids, month)
    sorted_month = month[order]
    bounds = np.flatnonzero(np.r_[True, sorted_month[1:] != sorted_month[:-1], True]).tolist()
    keys = sorted_month[bounds[:-1]].tolist()
    positions = order if rows is None else rows[order]
    return positions, list(zip(keys, bounds[:-1], bounds[1:], strict=True))


def _digest_steps(
    frame: pd.DataFrame, id_column: str, positions: np.ndarray, spans: list[tuple[int, int, int]]
) -> Steps:
    """The digests of the frame's rows at `positions`, each month's span of them in `spans`
    (`_months_in_order`), a column at a time: yields after each column, returns the digests.
    A text column is held as Arrow text while its months' rows are taken from it, and given
    back before the next column's."""
    hashes = {key: hashlib.sha256() for key, _, _ in spans}
    for name in sorted(c for c in frame.columns if c not in PROVENANCE):
        values = frame[name]
        tag = b"i"
        parts_of = _int64_parts(values, positions)
        if parts_of is None:
            tag, parts_of = b"t", _text_parts(values, positions)
        encoded = name.encode("utf-8")
        head = np.int64(len(encoded)).astype(_INT64).tobytes() + encoded + tag
        for key, lo, hi in spans:
            digest = hashes[key]
            digest.update(head)
            for part in parts_of(lo, hi):
                digest.update(part)
        del parts_of, values
        release_freed_memory()  # this column's buffers, before the next column's
        yield
    return {key: digest.hexdigest() for key, digest in hashes.items()}


def _run(steps: Steps) -> dict[int, str]:
    """What `steps` returns, run to the end."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            digests: dict[int, str] = done.value
            return digests


def dated_months(frame: pd.DataFrame, date_column: str) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the rows with a date, and every row's month (numpy months since 1970-01;
    meaningless where there is no date)."""
    at = frame[date_column].to_numpy(dtype="datetime64[ns]")
    return np.flatnonzero(~np.isnat(at)), at.astype("datetime64[M]").astype(np.int64)


def kind_digests(frame: pd.DataFrame, kind: str) -> dict[int, str]:
    """`month_digests` of the dated rows of a kind in DIGESTED_KINDS."""
    return _run(_kind_steps(frame, kind))


def _kind_steps(frame: pd.DataFrame, kind: str) -> Steps:
    """`kind_digests` a column at a time (`_digest_steps`): the rows with no date are left out
    by their positions, not by a copy of the frame."""
    id_column = DIGESTED_KINDS[kind][1]
    return (yield from _digest_steps(frame, id_column, *_dated_in_order(frame, kind)))


def _dated_in_order(
    frame: pd.DataFrame, kind: str
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """`_months_in_order` of the rows of a kind with a date."""
    date_column, id_column = DIGESTED_KINDS[kind]
    rows, month = dated_months(frame, date_column)
    if len(rows) == len(frame):
        return _months_in_order(frame[id_column], None, month)
    return _months_in_order(frame[id_column], rows, month[rows])


Digests = dict[str, dict[int, str]]


def all_digests(frames: Mapping[str, pd.DataFrame | None]) -> Digests:
    """Kind -> `kind_digests`, for each kind given whose frame has rows."""
    return {
        kind: kind_digests(frame, kind)
        for kind, frame in frames.items()
        if frame is not None and not frame.empty
    }


class DigestsBeside:
    """`all_digests` of validated frames, worked out by a thread started at once (before the
    engines run, `pipeline`), beside them; `result()` waits for them.

    A thread, not a forked process: a process forked here shares this one's pages, and each
    page the engines then write (a reference count in a string they read) was copied, this
    process taking the copy and the child keeping the original (about 0.2 GB at 1M rows, on
    top of the child's own 0.06 to 0.15 GB). The thread reads the strings through Arrow
    (`arrow_text_in_slices`), a slice at a time, and leaves the GIL to the engines while Arrow takes
    the rows in order and SHA-256 hashes them. Whatever goes wrong in the thread, `result()`
    works the digests out here instead from the same frames, so an error surfaces exactly as
    it would without it; `close()` stops it after the column it is on (the run was let go).
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame | None]) -> None:
        self._frames = frames
        self._digests: Digests | None = None
        self._stop = threading.Event()
        # The collector's objects, unfrozen when pandera's process was reaped, frozen again (as
        # a process forked here froze them): the engines' passes then skip them, and do not
        # copy the pages the charts' process shares with this one by writing to each.
        gc.freeze()
        self._thread = threading.Thread(target=self._work, name="month digests", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        digests: Digests = {}
        try:
            for kind, frame in self._frames.items():
                if frame is None or frame.empty:
                    continue
                steps = _kind_steps(frame, kind)
                while not self._stop.is_set():
                    try:
                        next(steps)
                    except StopIteration as done:
                        digests[kind] = done.value
                        break
                else:
                    return
        except Exception:  # noqa: BLE001 - worked out again by `result()`, which raises it
            return
        self._digests = digests

    def result(self) -> Digests:
        """The digests, once the thread has worked them out (here, should it have failed)."""
        self._thread.join()
        if self._digests is None:
            self._digests = all_digests(self._frames)
        return self._digests

    def close(self) -> None:
        """Stop the thread after the column it is on, and wait for it (the run was let go)."""
        self._stop.set()
        self._thread.join()


def digests_beside(frames: Mapping[str, pd.DataFrame | None]) -> DigestsBeside | None:
    """The digests worked out beside (`DigestsBeside`) when the frames have BESIDE_MIN_ROWS
    rows or more; None when fewer, for the summary to work them out itself."""
    rows = sum(len(frame) for frame in frames.values() if frame is not None)
    return DigestsBeside(frames) if rows >= BESIDE_MIN_ROWS else None
