"""Columns of the typed frames as numpy arrays, and numpy arrays back into frame columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import as_column

NAT = np.datetime64("NaT", "ns")


def datetimes_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A datetime column as datetime64[ns]; all NaT when the column is absent."""
    if column not in frame.columns:
        return np.full(len(frame), NAT)
    return frame[column].to_numpy(dtype="datetime64[ns]")


def texts_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A text column as objects, missing values as None; all None when the column is absent."""
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    values = frame[column].to_numpy(dtype=object).copy()
    values[pd.isna(values)] = None
    return values


def raw_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A text column as an object array without the missing-value pass (required ids, outputs)."""
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[column].to_numpy(dtype=object)


def cents_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A money column as int64 cents."""
    return frame[column].to_numpy(dtype=np.int64)


_NS_PER_DAY = 86_400_000_000_000
_NAT_INT = np.iinfo(np.int64).min  # NaT's integer


def days_of(at: np.ndarray) -> np.ndarray:
    """Datetimes as day numbers (days since 1970-01-01, NaT kept as NaT's integer): what
    `astype("datetime64[D]")` gives (it floors too), by integer division, twice as fast."""
    nanoseconds = at.astype("datetime64[ns]", copy=False).view(np.int64)
    days = nanoseconds // _NS_PER_DAY
    days[nanoseconds == _NAT_INT] = _NAT_INT
    return days


def source_rows_of(frame: pd.DataFrame) -> Any:
    """The `source_row` column as nullable Int64; all NA when the column is absent."""
    if "source_row" in frame.columns:
        return pd.array(frame["source_row"].to_numpy(), dtype="Int64")
    return pd.array([pd.NA] * len(frame), dtype="Int64")


def frame_columns(data: dict[str, Any]) -> dict[str, Any]:
    """Numpy arrays as frame columns (`as_column`); anything else as given."""
    return {k: as_column(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}
