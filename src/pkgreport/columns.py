"""Which output columns hold money: the one place every output (CSV, JSON, workbook, page) asks."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

# Integer columns that are counts, numbers or row references, not money. Every other integer
# column an engine produces holds cents: a new money column is formatted as money without being
# listed anywhere, and a count forgotten here shows as `4.00`, never a figure 100 times too big.
COUNT_COLUMNS: frozenset[str] = frozenset(
    {
        "max_sessions",
        "counted",
        "attended",
        "upcoming",
        "cancelled",
        "dna",
        "remaining",
        "over_booked_by",
        "used",
        "unused",
        "number",
        "source_row",
        "row",
        "rows",
        "count",
        # the figures per location and per practitioner (engine/breakdown.py)
        "patients_with_credit",
        "cases_over_booked",
        "cases_expiring",
        "cases_active",
        "upcoming_sessions",
    }
)


def is_money(name: str, values: pd.Series) -> bool:
    """True when `values` (the column `name`) holds integer cents."""
    return (
        name not in COUNT_COLUMNS
        and pd.api.types.is_integer_dtype(values.dtype)
        and not pd.api.types.is_bool_dtype(values.dtype)
    )


def money_columns(frame: pd.DataFrame, only: Iterable[str] | None = None) -> list[str]:
    """The columns of `frame` (or of `only`) that hold integer cents."""
    names = frame.columns if only is None else [c for c in only if c in frame.columns]
    return [str(c) for c in names if is_money(str(c), frame[c])]
