"""Frames to the plain CSV/JSON the commands print: money as `1150.00`, dates ISO, no symbols."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.columns import money_columns
from pkgreport.money import format_plain


def _missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
    )


def format_cents(cents: object) -> str:
    """Integer cents as a plain decimal with two places (`-1150.05`); blank when missing."""
    if _missing(cents):
        return ""
    return format_plain(int(cents))  # type: ignore[call-overload]


def money_record(cents: object) -> dict[str, Any]:
    """Money in JSON: exact integer cents and the decimal a person reads (`null` when missing)."""
    if _missing(cents):
        return {"cents": None, "amount": None}
    return {"cents": int(cents), "amount": format_cents(cents)}  # type: ignore[call-overload]


# A CSV opened in a spreadsheet runs a cell that starts with one of these as a formula
# (`=HYPERLINK(...)` in a patient's name): such text is written behind an apostrophe, which the
# spreadsheet shows as plain text. Numbers and dates are written by pkgreport, never from a cell.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_text(text: str) -> str:
    """Text for a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _dates_as_text(series: pd.Series) -> pd.Series:
    present = series.dropna()
    has_time = bool((present != present.dt.normalize()).any())
    return series.dt.strftime("%Y-%m-%dT%H:%M:%S" if has_time else "%Y-%m-%d")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    money = set(money_columns(frame))
    for col in out.columns:
        series = out[col]
        if col in money:
            out[col] = [format_cents(v) for v in series]
        elif pd.api.types.is_datetime64_any_dtype(series):
            out[col] = _dates_as_text(series).fillna("")
        elif pd.api.types.is_bool_dtype(series):
            out[col] = np.where(series.to_numpy(dtype=bool), "true", "false")
        else:
            text = series.astype(object).where(series.notna(), "").map(str)
            is_text = not pd.api.types.is_numeric_dtype(series.dtype)
            out[col] = text.map(csv_safe_text) if is_text else text
    return out


def _json_values(series: pd.Series, money: bool) -> list[Any]:
    """One column as JSON values: money as `money_record`, counts as numbers, blanks as null."""
    if money:
        return [money_record(v) for v in series]
    if pd.api.types.is_datetime64_any_dtype(series):
        series = _dates_as_text(series)
    elif pd.api.types.is_bool_dtype(series):
        return [None if _missing(v) else bool(v) for v in series]
    elif pd.api.types.is_integer_dtype(series.dtype):
        return [None if _missing(v) else int(v) for v in series]
    return [None if _missing(v) else str(v) for v in series]


def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV with LF line endings, money as plain decimals; deterministic."""
    buf = io.StringIO()
    _plain(frame).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def to_json_text(frame: pd.DataFrame) -> str:
    """A JSON array of objects: numbers as numbers, money as exact cents plus its decimal text."""
    money = set(money_columns(frame))
    columns = {str(c): _json_values(frame[c], c in money) for c in frame.columns}
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
