"""The excluded-rows frame: one schema for every input row left out of the figures, and why."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

# Validation (rows that cannot be read) and the engines (archived, deleted or unusable records)
# both list what they leave out in this shape; `result.excluded_rows` reads the two as one.
# `source_row` is NA only for a frame given without provenance (a test or an API caller).
EXCLUDED_DTYPES: dict[str, str] = {
    "kind": "object",
    "source_file": "object",
    "source_row": "Int64",
    "id": "object",
    "reason": "object",
}
EXCLUDED_COLUMNS: tuple[str, ...] = tuple(EXCLUDED_DTYPES)


def excluded_frame(
    kind: str,
    source_file: Iterable[object],
    source_row: Iterable[object] | None,
    ids: Iterable[object] | object,
    reasons: Iterable[str] | str,
) -> pd.DataFrame:
    """Rows of `kind` left out, one per source row: file, row (None: unknown), id and reason.

    `ids` and `reasons` are one value per row, or one value for every row.
    """
    files = np.asarray(list(source_file), dtype=object)
    if source_row is None:
        rows = pd.array([pd.NA] * len(files), dtype="Int64")
    else:
        rows = pd.array(
            source_row if isinstance(source_row, np.ndarray) else list(source_row), dtype="Int64"
        )
    frame = pd.DataFrame(
        {
            "kind": kind,
            "source_file": files,
            "source_row": rows,
            "id": ids if isinstance(ids, str) or not isinstance(ids, Iterable) else list(ids),
            "reason": reasons if isinstance(reasons, str) else list(reasons),
        },
        index=pd.RangeIndex(len(files)),
    )
    return frame.astype(EXCLUDED_DTYPES)


def empty_excluded() -> pd.DataFrame:
    """An excluded-rows frame with no rows."""
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtype) for name, dtype in EXCLUDED_DTYPES.items()}
    )
