"""Frames to the plain CSV/JSON the commands print: money as `1150.00`, dates ISO, no symbols."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pkgreport.money import format_plain


def format_cents(cents: object) -> str:
    """Integer cents as a plain decimal with two places (`-1150.05`); blank when missing."""
    if cents is None or cents is pd.NA or (isinstance(cents, float) and np.isnan(cents)):
        return ""
    return format_plain(int(cents))  # type: ignore[call-overload]


def _plain(frame: pd.DataFrame, money: Iterable[str]) -> pd.DataFrame:
    out = frame.copy()
    money_set = set(money)
    for col in out.columns:
        series = out[col]
        if col in money_set:
            out[col] = [format_cents(v) for v in series]
        elif pd.api.types.is_datetime64_any_dtype(series):
            has_time = bool(
                (series.dropna() != series.dropna().dt.normalize()).any()
            )
            fmt = "%Y-%m-%dT%H:%M:%S" if has_time else "%Y-%m-%d"
            out[col] = series.dt.strftime(fmt).fillna("")
        elif pd.api.types.is_bool_dtype(series):
            out[col] = np.where(series.to_numpy(dtype=bool), "true", "false")
        else:
            out[col] = series.astype(object).where(series.notna(), "")
            out[col] = out[col].map(str)
    return out


def to_csv_text(frame: pd.DataFrame, money: Iterable[str] = ()) -> str:
    """CSV with LF line endings, money as plain decimals; deterministic."""
    buf = io.StringIO()
    _plain(frame, money).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def to_json_text(frame: pd.DataFrame, money: Iterable[str] = ()) -> str:
    """A JSON array of objects; money as decimal strings so no float ever touches a figure."""
    rows = _plain(frame, money).to_dict(orient="records")
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
