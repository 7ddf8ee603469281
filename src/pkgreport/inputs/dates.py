"""Vectorised date and timestamp parsers: naive clinic-local datetime64, by integer arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from pkgreport.inputs.parsing import (
    DATE_EXAMPLES,
    DATE_ORDER_NAMES,
    Parsed,
    distinct_values,
    parsed_result,
)
from pkgreport.inputs.shapes import group_by_shape

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S

_TIME = r"(?P<h>99?):(?P<mi>99)(?::(?P<s>99)(?:[.,](?P<f>9{1,9}))?)?"
_OFFSET = r"(?:(?P<z>z)|(?P<sign>[+-])(?P<oh>99)(?::?(?P<om>99))?)"
_ISO_SHAPE = re.compile(rf"\s*(?P<y>9999)-(?P<m>99)-(?P<d>99)(?:(?:t|\s+){_TIME}\s*{_OFFSET}?)?\s*")
_ORDERED_TIME = rf"(?:\s+{_TIME}\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?(?P<off>\s*{_OFFSET})?)?\s*"
_ORDERED_SHAPES: dict[str, re.Pattern[str]] = {
    "dmy": re.compile(rf"\s*(?P<d>99?)(?P<sep>[/.-])(?P<m>99?)(?P=sep)(?P<y>9999){_ORDERED_TIME}"),
    "mdy": re.compile(rf"\s*(?P<m>99?)(?P<sep>[/.-])(?P<d>99?)(?P=sep)(?P<y>9999){_ORDERED_TIME}"),
    "ymd": re.compile(rf"\s*(?P<y>9999)(?P<sep>[/.-])(?P<m>99?)(?P=sep)(?P<d>99?){_ORDERED_TIME}"),
}
_DATE_PARTS = ("y", "m", "d", "h", "mi", "s", "f", "oh", "om")


@dataclass(frozen=True)
class _DateShape:
    code: int
    parts: dict[str, list[tuple[int, int]]]
    pm: bool = False
    am: bool = False
    offset: int = 0  # 0 none, +1 / -1 the offset's sign (Z is +1 with no digits)


def _digits(match: re.Match[str], name: str, pad_to: int = 0) -> list[tuple[int, int]]:
    """(position, multiplier) for the digits of group `name`; `pad_to` scales a fraction."""
    if match[name] is None:
        return []
    start, end = match.span(name)
    width = max(end - start, pad_to)
    return [(pos, 10 ** (width - 1 - (pos - start))) for pos in range(start, end)]


def _date_shape(shape: str, order: str) -> _DateShape:
    match = _ISO_SHAPE.fullmatch(shape)
    if not match:
        match = _ORDERED_SHAPES[order].fullmatch(shape)
        if match and match["off"]:
            return _DateShape(4, {})
    if not match:
        return _DateShape(1, {})
    parts = {name: _digits(match, name, 9 if name == "f" else 0) for name in _DATE_PARTS}
    groups = match.groupdict()
    ap = groups.get("ap") or ""
    offset = 0
    if match["z"] or match["sign"]:
        offset = -1 if match["sign"] == "-" else 1
    return _DateShape(0, parts, pm=ap.startswith("p"), am=ap.startswith("a"), offset=offset)


def _date_messages(order: str, date_only: bool, min_date: date, max_date: date) -> tuple[str, ...]:
    example = DATE_EXAMPLES[order]
    if not date_only:
        example += " 14:30"
    iso = "2026-07-21" if date_only else "2026-07-21T14:30:00"
    how = f"write it like {example} ({DATE_ORDER_NAMES[order]}) or ISO {iso}"
    return (
        f"is not a date: {how}",
        (
            f"is not a real date or time when read as {DATE_ORDER_NAMES[order]}: check the day and "
            f"month (or the date order setting), and {how}"
        ),
        (
            f"is outside the accepted dates {min_date.isoformat()} to {max_date.isoformat()}: check "
            "the year (the range is the min_date/max_date setting)"
        ),
        (
            "has a time-zone offset but is not an ISO 8601 timestamp: write it like "
            "2026-07-21T03:45:00+10:00, or leave the offset out for clinic-local time"
        ),
    )


# Index 1..12 is the month; 0 and 13 catch out-of-range months (no days, so never real).
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0], dtype=np.int64)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date, in integer arithmetic.

    H. Hinnant's `days_from_civil`: numpy's datetime64[M] -> [D] casts cost ~10x more.
    """
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    return _DAYS_IN_MONTH[np.clip(month, 0, 13)] + ((month == 2) & leap)


def parse_datetimes(
    values: pd.Series,
    *,
    date_order: str = "dmy",
    timezone: str = "UTC",
    min_date: date = date(1990, 1, 1),
    max_date: date = date(2100, 12, 31),
    date_only: bool = False,
) -> Parsed:
    """Date/timestamp text -> naive clinic-local `datetime64[ns]` (NaT where blank or bad).

    ISO 8601 (`2026-07-21`, `2026-07-21T03:45:00`, `2026-07-21 03:45`, with `Z`/`+10:00`) is always
    read; anything else must follow `date_order` with `/`, `-` or `.` and a 4-digit year, then an
    optional `H:MM[:SS]` time with optional am/pm. Nothing is guessed per file or per value. Values
    with an offset are converted to `timezone`; others are taken as clinic-local already. With
    `date_only`, the time is dropped (after any conversion) and the date kept at midnight.
    Impossible dates and dates outside [min_date, max_date] are errors.
    """
    if date_order not in _ORDERED_SHAPES:
        raise ValueError(f"unknown date order {date_order!r}")
    keys, distinct, lengths = distinct_values(values)
    stamps, codes, blank = (
        part[keys]
        for part in _datetimes_core(
            distinct, lengths, date_order, timezone, min_date, max_date, date_only
        )
    )
    out = pd.Series(stamps.view("datetime64[ns]"), index=values.index)
    return parsed_result(
        out, codes, _date_messages(date_order, date_only, min_date, max_date), blank, values.index
    )


def _datetimes_core(
    raw: np.ndarray,
    lengths: np.ndarray,
    date_order: str,
    timezone: str,
    min_date: date,
    max_date: date,
    date_only: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nanoseconds or NaT's int, message codes, blank) for an object array of text."""
    shapes = group_by_shape(raw, lengths)
    n = len(raw)
    part = {name: np.zeros(n, dtype=np.int64) for name in _DATE_PARTS}
    pm = np.zeros(n, dtype=bool)
    meridiem = np.zeros(n, dtype=bool)
    offset_sign = np.zeros(n, dtype=np.int64)
    read = [_date_shape(text, date_order) for text in shapes.shapes]
    codes, blank = shapes.spread([shape.code for shape in read])
    for g, shape in enumerate(read):
        if shape.code or not shape.parts:
            continue
        rows = shapes.rows(g)
        for name, value in shapes.numbers(rows, shape.parts).items():
            part[name][rows] = value
        if shape.pm or shape.am:
            pm[rows] = shape.pm
            meridiem[rows] = True
        if shape.offset:
            offset_sign[rows] = shape.offset
    blank &= ~shapes.too_long
    codes[shapes.too_long] = 1

    year, month, day = part["y"], part["m"], part["d"]
    hour, minute, second = part["h"], part["mi"], part["s"]
    if meridiem.any():
        hour_ok = np.where(meridiem, (hour >= 1) & (hour <= 12), hour <= 23)
        hour = np.where(meridiem, hour % 12 + np.where(pm, 12, 0), hour)
    else:
        hour_ok = hour <= 23
    shaped = ~blank & (codes == 0)
    real = (
        shaped
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & hour_ok
        & (minute <= 59)
        & (second <= 59)
        & (part["oh"] <= 23)
        & (part["om"] <= 59)
    )
    codes[shaped & ~real] = 2

    epoch_day = _days_from_civil(year, month, day)
    lo_day = (min_date - date(1970, 1, 1)).days
    hi_day = (max_date - date(1970, 1, 1)).days
    # A loose window first, so the nanosecond arithmetic below cannot overflow for year 9999.
    in_window = real & (epoch_day >= lo_day - 2) & (epoch_day <= hi_day + 2)
    seconds = np.where(in_window, epoch_day, 0) * 86_400 + hour * 3600 + minute * 60 + second
    ns = seconds * _NS_PER_S + part["f"]
    converting = in_window & (offset_sign != 0)
    if converting.any():
        offset_s = offset_sign[converting] * (
            part["oh"][converting] * 3600 + part["om"][converting] * 60
        )
        utc = ns[converting] - offset_s * _NS_PER_S
        local = (
            pd.DatetimeIndex(utc.view("datetime64[ns]"))
            .tz_localize("UTC")
            .tz_convert(timezone)
            .tz_localize(None)
        )
        ns[converting] = local.asi8
    if date_only:
        ns = ns // _NS_PER_DAY * _NS_PER_DAY
    in_range = in_window & (ns >= lo_day * _NS_PER_DAY) & (ns < (hi_day + 1) * _NS_PER_DAY)
    codes[real & ~in_range] = 3
    ok = real & in_range
    return np.where(ok, ns, np.iinfo(np.int64).min), codes, blank


def parse_dates(
    values: pd.Series,
    *,
    date_order: str = "dmy",
    timezone: str = "UTC",
    min_date: date = date(1990, 1, 1),
    max_date: date = date(2100, 12, 31),
) -> Parsed:
    """Date-only columns: as `parse_datetimes`, kept at midnight."""
    return parse_datetimes(
        values,
        date_order=date_order,
        timezone=timezone,
        min_date=min_date,
        max_date=max_date,
        date_only=True,
    )
