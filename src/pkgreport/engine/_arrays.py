"""The numpy idioms every engine shares: day cut-offs, group sums, runs, exact text ranks, text
look-ups, live rows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def end_of_day(as_of: date) -> np.datetime64:
    """The first instant after `as_of` (ns): events strictly before it happened by `as_of`."""
    return np.datetime64(as_of + timedelta(days=1), "ns")


def sum_by(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 group sums (bincount would go through float64 and lose cents past 2**53)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, codes.astype(np.int64), values.astype(np.int64))
    return out


def run_start_mask(values: np.ndarray) -> np.ndarray:
    """True where a run of equal adjacent values begins."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.concatenate([[True], values[1:] != values[:-1]])


def run_starts(values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal adjacent values begins."""
    return np.flatnonzero(run_start_mask(values))


def group_cumsum(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group (rows sorted by group)."""
    cum = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    base = np.r_[0, cum[starts[1:] - 1]]
    cum -= np.repeat(base, np.diff(np.r_[starts, len(groups)]))  # in place: one array less
    return cum


def factorize_exact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize` of text ids, exact on every pandas version.

    pandas 2 hashes text only up to a NUL, so "c\x00" and "c" share a code there; the check
    (each value equals its unique) costs one comparison per value, and the rare breach falls
    back to a dictionary.
    """
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object)
    present = codes >= 0  # missing values keep code -1, as pd.factorize gives them
    if bool((uniques[codes[present]] == values[present]).all()):
        return codes, uniques
    first: dict[object, int] = {}
    exact = np.full(len(values), -1, dtype=codes.dtype)
    exact[present] = [first.setdefault(v, len(first)) for v in values[present]]
    return exact, np.asarray(list(first), dtype=object)


def text_ranks(values: np.ndarray, *, unique: bool = False) -> np.ndarray:
    """Dense rank of each string in Python's string order (`unique`: no value repeats)."""
    if unique:
        codes, uniques = np.arange(len(values)), values
    else:
        ranks = _fixed_width_ranks(values)
        if ranks is not None:
            return ranks
        codes, uniques = factorize_exact(values)
    order: np.ndarray | None = None
    if len(uniques) and pd.Series(uniques, dtype=object).str.len().max() <= 64:
        # numpy's fixed-width strings sort ~4x faster than objects, but drop trailing NULs;
        # two distinct ids becoming equal is the only way that could misorder, so check it.
        fixed = uniques.astype(str)
        order = np.argsort(fixed, kind="stable")
        ranked = fixed[order]
        if (ranked[1:] == ranked[:-1]).any():
            order = None
    if order is None:
        order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    return rank[codes]


def is_among(
    values: np.ndarray | pd.Series, wanted: np.ndarray | pd.Series, *, missing_matches: bool
) -> np.ndarray:
    """Per value: whether it is one of `wanted`, texts compared exactly. A missing value matches
    a missing one in `wanted` only with `missing_matches` (as pandas' `isin` does).

    Arrow looks the values up in a hash of the wanted ones, comparing UTF-8 bytes in C (about
    four times as fast as pandas hashing a million Python strings); what Arrow cannot take as
    text (a non-string id, a lone surrogate) pandas compares, with the same answer.
    """
    try:
        held = pc.is_in(
            pa.array(values, type=pa.large_string(), from_pandas=True),
            value_set=pa.array(wanted, type=pa.large_string(), from_pandas=True),
            skip_nulls=not missing_matches,
        )
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        found = pd.Series(values, dtype=object).isin(pd.Series(wanted, dtype=object)).to_numpy()
        # Missing values (None, NaN) decided here, alike, as Arrow decides them above.
        missing = pd.isna(np.asarray(values, dtype=object))
        found = found & ~missing
        if missing_matches and pd.isna(np.asarray(wanted, dtype=object)).any():
            found = found | missing
        return found
    flags: np.ndarray = held.fill_null(False).to_numpy(zero_copy_only=False)
    return flags


def live_mask(frame: pd.DataFrame) -> np.ndarray:
    """The live records: neither deleted (`deleted_at`) nor archived (`archived_at`)."""
    live = np.ones(len(frame), dtype=bool)
    for column in ("deleted_at", "archived_at"):
        if column in frame.columns:
            live &= frame[column].isna().to_numpy(dtype=bool)
    return live


def _fixed_width_ranks(values: np.ndarray) -> np.ndarray | None:
    """`text_ranks` by one sort of numpy fixed-width strings (no factorize: the fast path for
    the engines' tie-breaks), or None when that could be wrong: a value that is not text (or
    missing), a very long one, or two distinct values that differ only by trailing NULs (numpy
    drops them, so they would tie)."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        return None
    fixed = values.astype(str)
    if fixed.dtype.itemsize > 64 * 4:  # longer than 64 characters: objects sort with less memory
        return None
    order = np.argsort(fixed, kind="stable")
    ranked = fixed[order]
    tie = ranked[1:] == ranked[:-1]
    in_order = values[order]
    if (in_order[1:][tie] != in_order[:-1][tie]).any():
        return None
    dense = np.empty(len(values), dtype=np.int64)
    dense[order] = np.concatenate(([0], np.cumsum(~tie)))
    return dense


def as_column(values: np.ndarray) -> Any:
    """Object arrays stay object dtype: letting pandas infer `str` re-checks every element."""
    return pd.Series(values, dtype=object, copy=False) if values.dtype == object else values
