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

import hashlib

import numpy as np
import pandas as pd

PROVENANCE = ("source_file", "source_row")
_INT64 = np.dtype("<i8")


def _as_int64(values: pd.Series, missing: np.ndarray) -> np.ndarray | None:
    """The column as little-endian int64 (missing values 0), or None when it holds text."""
    dtype = values.dtype
    if dtype.kind == "M":
        ints = values.to_numpy(dtype="datetime64[ns]").view(np.int64)
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        ints = values.to_numpy(dtype=np.int64, na_value=0)
    else:
        return None
    ints = np.array(ints, dtype=_INT64)  # a copy of its own, to zero the missing values in
    ints[missing] = 0
    return ints


def _as_text(values: pd.Series, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The column's values as str ("" where missing) and their lengths in characters."""
    texts = values.to_numpy(dtype=object).copy()
    texts[missing] = ""
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":
        texts = np.array([str(v) for v in texts], dtype=object)  # digested as it prints
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return texts, lengths.astype(_INT64, copy=False)


def month_digests(frame: pd.DataFrame, month: np.ndarray, id_column: str) -> dict[int, str]:
    """Month (numpy months since 1970-01) -> hex digest, for every month in `month` (one per
    row; rows with no date must be left out of `frame` and `month` beforehand)."""
    ids = frame[id_column].to_numpy(dtype=object).astype(str)
    order = np.argsort(ids, kind="stable")
    order = order[np.argsort(month[order], kind="stable")]
    sorted_month = month[order]
    bounds = np.flatnonzero(np.r_[True, sorted_month[1:] != sorted_month[:-1], True])
    spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    hashes = {int(sorted_month[lo]): hashlib.sha256() for lo, _ in spans}
    for name in sorted(c for c in frame.columns if c not in PROVENANCE):
        values = frame[name].iloc[order]
        missing = values.isna().to_numpy()
        ints = _as_int64(values, missing)
        if ints is None:
            texts, lengths = _as_text(values, missing)
        encoded = name.encode("utf-8")
        head = np.int64(len(encoded)).astype(_INT64).tobytes() + encoded
        flags = missing.astype(np.uint8)
        for lo, hi in spans:
            digest = hashes[int(sorted_month[lo])]
            digest.update(head + (b"i" if ints is not None else b"t"))
            digest.update(flags[lo:hi].tobytes())
            if ints is not None:
                digest.update(ints[lo:hi].tobytes())
            else:
                digest.update(lengths[lo:hi].tobytes())
                digest.update("".join(texts[lo:hi]).encode("utf-8", "surrogatepass"))
    return {key: digest.hexdigest() for key, digest in hashes.items()}
