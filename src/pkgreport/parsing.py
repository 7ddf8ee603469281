"""Vectorised text -> typed value parsers (money cents, dates, timestamps, booleans, status, ids)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pkgreport.schemas import INVOICE_STATUS_CODES

# numpy's variable-width string dtype: its `np.strings` ufuncs run in C over the whole column,
# 10-50x faster than pandas `.str` methods on python-backed strings (no pyarrow here).
_SD = np.dtypes.StringDType()

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S

CURRENCY_CODES: tuple[str, ...] = ("AUD", "NZD", "USD", "CAD", "GBP", "EUR")
CURRENCY_SYMBOLS: tuple[str, ...] = ("$", "£", "€")

# Cents are computed from digit strings as int64; 15 digits of dollars keeps cents below 2**63.
_MAX_DOLLAR_DIGITS = 15

TRUE_WORDS: tuple[str, ...] = ("yes", "y", "true", "t", "1", "1.0")
FALSE_WORDS: tuple[str, ...] = ("no", "n", "false", "f", "0", "0.0")

DATE_EXAMPLES: dict[str, str] = {"dmy": "21/07/2026", "mdy": "07/21/2026", "ymd": "2026/07/21"}
DATE_ORDER_NAMES: dict[str, str] = {
    "dmy": "day/month/year",
    "mdy": "month/day/year",
    "ymd": "year/month/day",
}


@dataclass(frozen=True)
class Parsed:
    """A parsed column: typed `values` (missing where blank or bad) and a message per bad row.

    `errors` holds only the bad rows, indexed like the input, each a message saying what is wrong
    and how to write the value instead; `bad` is the same as a boolean mask over all rows.
    """

    values: pd.Series
    bad: np.ndarray
    errors: pd.Series
    blank: np.ndarray


def _text(values: pd.Series) -> np.ndarray:
    """The column as a stripped numpy StringDType array; missing values become ""."""
    if values.hasnans:
        values = values.fillna("")
    return np.strings.strip(values.to_numpy().astype(_SD))


def _result(values: pd.Series, codes: np.ndarray, messages: tuple[str, ...], blank: np.ndarray,
            index: pd.Index) -> Parsed:
    """Turn per-row message codes (0 = fine, k = messages[k - 1]) into a `Parsed`."""
    bad = codes > 0
    if bad.any():
        table = np.array(("",) + messages, dtype=object)
        errors = pd.Series(table[codes[bad]], index=index[bad], dtype=object)
    else:
        errors = pd.Series([], index=index[:0], dtype=object)
    return Parsed(values=values, bad=bad, errors=errors, blank=blank)


def _take_prefix(s: np.ndarray, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    hit = np.strings.startswith(s, prefix)
    if hit.any():
        s = np.where(hit, np.strings.lstrip(np.strings.slice(s, len(prefix), None)), s)
    return s, hit


def _take_suffix(s: np.ndarray, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    hit = np.strings.endswith(s, suffix)
    if hit.any():
        s = np.where(hit, np.strings.rstrip(np.strings.slice(s, 0, -len(suffix))), s)
    return s, hit


def _partition(s: np.ndarray, sep: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # The StringDType loop of partition needs the separator as a StringDType too.
    return np.strings.partition(s, np.array(sep, dtype=_SD))


def _to_int(s: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Digit strings -> int64 where `ok`, 0 elsewhere (rows not `ok` may hold anything)."""
    return np.where(ok & (s != ""), s, "0").astype(_SD).astype(np.int64)


# --- text and ids -----------------------------------------------------------------------------


def parse_text(values: pd.Series) -> Parsed:
    """Strip surrounding whitespace; "" becomes missing (NaN).

    Ids go through here too and stay text exactly as written: "00123" keeps its zeros, and
    "1234.0" stays "1234.0". Turning "1234.0" into "1234" would be right only when a spreadsheet
    stored the id as a number, which this layer cannot see; the loader formats whole-number XLSX
    cells without ".0", so a "1234.0" that reaches here was written that way and guessing would
    silently merge or split ids across files.
    """
    raw = values.fillna("") if values.hasnans else values
    arr = raw.to_numpy().astype(_SD)
    stripped = np.strings.strip(arr)
    blank = stripped == ""
    if np.array_equal(np.strings.str_len(stripped), np.strings.str_len(arr)):
        out = pd.Series(raw.to_numpy(), index=values.index, dtype="str")
    else:
        out = pd.Series(stripped.astype(object), index=values.index, dtype="str")
    if blank.any():
        out = out.mask(blank)
    none = np.zeros(len(values), dtype=np.int8)
    return _result(out, none, (), blank, values.index)


parse_id = parse_text


# --- money ------------------------------------------------------------------------------------

_MONEY_MESSAGES = (
    "is not an amount in dollars and cents: write it like 1234.50 (or -50.00 for a negative)",
    "has more than 2 decimal places: write dollars and cents like 1234.50",
    "has a misplaced thousands separator or a decimal comma: write it like 1234.50 or 1,234.50",
    "has more than one decimal point: write it like 1234.50 (no thousands points)",
    "is too large to be an amount: check the column holds money",
    "has more than one minus sign or bracket: write a negative amount like -50.00 or (50.00)",
)


def parse_money(values: pd.Series) -> Parsed:
    """Dollars-and-cents text -> `Int64` cents (NA where blank or bad), by integer arithmetic.

    Accepts `1234.5`, `1,234.50`, `$1,234.50`, `-$50.00`, `$-50.00`, `($50.00)`, `£12`, `€12`,
    `AUD 12.00`, `12.00 AUD`. Rejects more than two decimals, decimal commas (`1,7`), thousands
    points (`200.000.000`), misplaced separators (`1,23.00`) and words.
    """
    s = _text(values)
    blank = s == ""
    paren = np.strings.startswith(s, "(") & np.strings.endswith(s, ")")
    if paren.any():
        s = np.where(paren, np.strings.strip(np.strings.slice(s, 1, -1)), s)
    # Signs, codes and symbols may come in any of the orders exports use: -$5, $-5, AUD -5, -AUD 5.
    s, minus1 = _take_prefix(s, "-")
    code1 = np.zeros(len(s), dtype=bool)
    for code in CURRENCY_CODES:
        s, hit = _take_prefix(s, code)
        code1 |= hit
    s, minus2 = _take_prefix(s, "-")
    symbol = np.zeros(len(s), dtype=bool)
    for sym in CURRENCY_SYMBOLS:
        s, hit = _take_prefix(s, sym)
        symbol |= hit
    s, minus3 = _take_prefix(s, "-")
    code2 = np.zeros(len(s), dtype=bool)
    for code in CURRENCY_CODES:
        s, hit = _take_suffix(s, code)
        code2 |= hit
    signs = paren.astype(np.int8) + minus1 + minus2 + minus3

    body_digits = np.strings.replace(np.strings.replace(s, ",", ""), ".", "")
    shape_ok = (s != "") & np.strings.isdigit(body_digits) & ~(code1 & code2)

    dots = np.strings.count(s, ".")
    whole, dot, frac = _partition(s, ".")
    frac_len = np.strings.str_len(frac)
    has_dot = dot != ""
    commas = np.strings.count(whole, ",")
    digits = np.strings.replace(whole, ",", "")
    n_digits = np.strings.str_len(digits)

    # Thousands separators: exactly (n-1)//3 commas, at 4, 8, ... characters from the right.
    grouping_ok = commas == 0
    if (commas > 0).any():
        length = np.strings.str_len(whole)
        grouped = commas == (n_digits - 1) // 3
        for k in range(1, int(commas.max()) + 1):
            at = np.maximum(length - 4 * k, 0)
            char = np.strings.slice(whole, at, at + 1)
            grouped &= (commas < k) | (char == ",")
        grouping_ok = grouping_ok | ((commas > 0) & grouped & (n_digits > 0))

    codes = np.zeros(len(s), dtype=np.int8)
    problem = ~blank
    codes[problem & ~shape_ok] = 1
    problem &= shape_ok
    many_dots = problem & (dots > 1)
    codes[many_dots] = 4
    problem &= ~many_dots
    misplaced = problem & ~grouping_ok
    codes[misplaced] = 3
    problem &= ~misplaced
    long_frac = problem & (frac_len > 2)
    codes[long_frac] = 2
    problem &= ~long_frac
    # "12." and "." say nothing about cents; "" before the point (".50") is read as 0 dollars.
    empty = problem & ((has_dot & (frac_len == 0)) | (n_digits + frac_len == 0))
    codes[empty] = 1
    problem &= ~empty
    too_big = problem & (n_digits > _MAX_DOLLAR_DIGITS)
    codes[too_big] = 5
    problem &= ~too_big
    sign_clash = problem & (signs > 1)
    codes[sign_clash] = 6
    ok = problem & ~sign_clash

    cents = _to_int(digits, ok) * 100 + _to_int(np.strings.ljust(frac, 2, "0"), ok)
    cents = np.where(signs > 0, -cents, cents)
    out = pd.Series(pd.arrays.IntegerArray(cents, ~ok), index=values.index)
    return _result(out, codes, _MONEY_MESSAGES, blank, values.index)


def format_cents(cents: int) -> str:
    """Cents -> `$1,234.56` / `-$50.00`, the way messages show money."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(int(cents)), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


# --- dates and timestamps ---------------------------------------------------------------------


def _date_messages(order: str, date_only: bool, min_date: date, max_date: date) -> tuple[str, ...]:
    example = DATE_EXAMPLES[order]
    if not date_only:
        example += " 14:30"
    iso = "2026-07-21" if date_only else "2026-07-21T14:30:00"
    how = f"write it like {example} ({DATE_ORDER_NAMES[order]}) or ISO {iso}"
    return (
        f"is not a date: {how}",
        f"is not a real date or time when read as {DATE_ORDER_NAMES[order]}: check the day and "
        f"month (or the date order setting), and {how}",
        f"is outside the accepted dates {min_date.isoformat()} to {max_date.isoformat()}: check "
        "the year (the range is the min_date/max_date setting)",
        "has a time-zone offset but is not an ISO 8601 timestamp: write it like "
        "2026-07-21T03:45:00+10:00, or leave the offset out for clinic-local time",
    )


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
    """
    if date_order not in DATE_EXAMPLES:
        raise ValueError(f"unknown date order {date_order!r}")
    raw = _text(values)
    n = len(raw)
    blank = raw == ""
    low = np.strings.lower(raw)

    # Split the date from the time at the first space or "t" (ISO's "T").
    pos_space = np.strings.find(low, " ")
    pos_t = np.strings.find(low, "t")
    length = np.strings.str_len(low)
    cut = np.where(pos_space >= 0, pos_space, length)
    cut = np.where((pos_t >= 0) & (pos_t < cut), pos_t, cut)
    t_sep = (pos_t >= 0) & (pos_t == cut)
    day_part = np.strings.slice(low, 0, cut)
    rest = np.strings.strip(np.strings.slice(low, np.minimum(cut + 1, length), None))
    has_time = cut < length

    dashes = np.strings.count(day_part, "-")
    slashes = np.strings.count(day_part, "/")
    points = np.strings.count(day_part, ".")
    one_sep = (dashes + slashes + points == 2) & ((dashes == 2) | (slashes == 2) | (points == 2))
    unified = np.strings.replace(np.strings.replace(day_part, "/", "-"), ".", "-")
    p1, _, tail = _partition(unified, "-")
    p2, _, p3 = _partition(tail, "-")
    l1, l2, l3 = (np.strings.str_len(p) for p in (p1, p2, p3))
    digits = np.strings.isdigit(p1) & np.strings.isdigit(p2) & np.strings.isdigit(p3) & one_sep
    small2, small3 = (l2 >= 1) & (l2 <= 2), (l3 >= 1) & (l3 <= 2)
    iso = digits & (dashes == 2) & (l1 == 4) & (l2 == 2) & (l3 == 2)
    if date_order == "ymd":
        ordered = digits & (l1 == 4) & small2 & small3
        ys, ms, ds = p1, p2, p3
    else:
        ordered = digits & (l1 >= 1) & (l1 <= 2) & small2 & (l3 == 4)
        ys, ms, ds = (p3, p2, p1) if date_order == "dmy" else (p3, p1, p2)
    date_ok = iso | ordered
    # An ISO date is read year-month-day whatever the order setting.
    year = np.where(iso, _to_int(p1, iso), _to_int(ys, ordered & ~iso))
    month = np.where(iso, _to_int(p2, iso), _to_int(ms, ordered & ~iso))
    day = np.where(iso, _to_int(p3, iso), _to_int(ds, ordered & ~iso))

    # Time: [H]H:MM[:SS[.fraction]] [am|pm] [Z|+HH:MM|-HH:MM|+HHMM|+HH]
    t = rest
    zulu = np.strings.endswith(t, "z")
    t = np.where(zulu, np.strings.rstrip(np.strings.slice(t, 0, -1)), t)
    pos_off = np.maximum(np.strings.rfind(t, "+"), np.strings.rfind(t, "-"))
    has_off = pos_off >= 0
    off_text = np.strings.replace(np.strings.slice(t, np.maximum(pos_off, 0), None), ":", "")
    off_sign = np.where(np.strings.startswith(off_text, "-"), -1, 1)
    off_digits = np.strings.slice(off_text, 1, None)
    off_len = np.strings.str_len(off_digits)
    off_ok = np.strings.isdigit(off_digits) & ((off_len == 2) | (off_len == 4))
    off_h = _to_int(np.strings.slice(off_digits, 0, 2), has_off & off_ok)
    off_m = _to_int(np.strings.slice(off_digits, 2, 4), has_off & off_ok)
    offset_s = off_sign * (off_h * 3600 + off_m * 60)
    t = np.where(has_off, np.strings.rstrip(np.strings.slice(t, 0, np.maximum(pos_off, 0))), t)
    pm = np.strings.endswith(t, "pm")
    am = np.strings.endswith(t, "am")
    meridiem = am | pm
    t = np.where(meridiem, np.strings.rstrip(np.strings.slice(t, 0, -2)), t)
    hh, _, t2 = _partition(t, ":")
    mi, colon2, sec_full = _partition(t2, ":")
    ss, point, frac = _partition(sec_full, ".")
    lh, lm, ls, lf = (np.strings.str_len(p) for p in (hh, mi, ss, frac))
    time_shape = (
        np.strings.isdigit(hh) & (lh >= 1) & (lh <= 2)
        & np.strings.isdigit(mi) & (lm == 2)
        & ((colon2 == "") | (np.strings.isdigit(ss) & (ls == 2)))
        & ((point == "") | ((colon2 != "") & np.strings.isdigit(frac) & (lf >= 1) & (lf <= 9)))
    )
    time_shape &= ~((zulu | has_off) & ~off_ok & has_off)
    time_ok_shape = ~has_time | (time_shape & ((t_sep & iso) | (~t_sep)))
    offset_used = has_time & (zulu | has_off)
    hour = _to_int(hh, has_time & time_shape)
    minute = _to_int(mi, has_time & time_shape)
    second = _to_int(ss, has_time & time_shape)
    frac_ns = _to_int(np.strings.ljust(np.strings.slice(frac, 0, 9), 9, "0"), has_time & time_shape)
    hour_ok = np.where(meridiem, (hour >= 1) & (hour <= 12), hour <= 23)
    hour = np.where(meridiem, hour % 12 + np.where(pm, 12, 0), hour)
    time_real = ~has_time | (hour_ok & (minute <= 59) & (second <= 59)
                             & (~has_off | ((off_h <= 23) & (off_m <= 59))))

    codes = np.zeros(n, dtype=np.int8)
    shape = ~blank & date_ok & time_ok_shape
    codes[~blank & ~shape] = 1
    # Offsets are an ISO 8601 notion; on a day-first date they are more likely a typo than intent.
    bad_offset = shape & offset_used & ~iso
    codes[bad_offset] = 4
    shape &= ~bad_offset

    month_ok = (month >= 1) & (month <= 12)
    month_start = ((year - 1970) * 12 + np.where(month_ok, month - 1, 0)).astype("datetime64[M]")
    first_day = month_start.astype("datetime64[D]").astype(np.int64)
    days_in_month = (month_start + 1).astype("datetime64[D]").astype(np.int64) - first_day
    real = shape & month_ok & (day >= 1) & (day <= days_in_month) & time_real
    codes[shape & ~real] = 2

    epoch_day = first_day + day - 1
    lo_day = (min_date - date(1970, 1, 1)).days
    hi_day = (max_date - date(1970, 1, 1)).days
    # A loose window first, so the nanosecond arithmetic below cannot overflow for year 9999.
    in_window = real & (epoch_day >= lo_day - 2) & (epoch_day <= hi_day + 2)
    safe_day = np.where(in_window, epoch_day, 0)
    ns = (safe_day * 86_400 + hour * 3600 + minute * 60 + second) * _NS_PER_S + frac_ns
    converting = in_window & offset_used
    if converting.any():
        utc = ns[converting] - offset_s[converting] * _NS_PER_S
        local = (
            pd.DatetimeIndex(utc.astype("datetime64[ns]"))
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

    stamps = np.where(ok, ns, np.iinfo(np.int64).min).astype("datetime64[ns]")
    out = pd.Series(stamps, index=values.index)
    return _result(out, codes, _date_messages(date_order, date_only, min_date, max_date), blank,
                   values.index)


def parse_dates(values: pd.Series, **options: object) -> Parsed:
    """Date-only columns: as `parse_datetimes`, kept at midnight."""
    return parse_datetimes(values, date_only=True, **options)  # type: ignore[arg-type]


# --- small vocabularies -----------------------------------------------------------------------


def parse_bools(values: pd.Series, default: bool = False) -> Parsed:
    """yes/no, y/n, true/false, t/f, 1/0 (any case) -> numpy bool; blank -> `default`."""
    s = np.strings.lower(_text(values))
    blank = s == ""
    yes = np.isin(s, np.array(TRUE_WORDS, dtype=_SD))
    no = np.isin(s, np.array(FALSE_WORDS, dtype=_SD))
    codes = np.where(blank | yes | no, 0, 1).astype(np.int8)
    out = pd.Series(np.where(blank, default, yes), index=values.index, dtype=bool)
    message = "is not yes or no: write yes/no, true/false, y/n or 1/0 (blank means " + (
        "yes)" if default else "no)"
    )
    return _result(out, codes, (message,), blank, values.index)


_STATUS_MESSAGE = (
    "is not an invoice status: write Open, Paid, Closed or Open credit (or Cliniko's code "
    "10, 20, 30 or 40)"
)


def parse_status(values: pd.Series) -> Parsed:
    """Invoice status words or Cliniko codes -> `open|paid|closed|open_credit` (NaN when blank)."""
    s = np.strings.lower(_text(values))
    blank = s == ""
    for ch in (" ", "_", "-"):
        s = np.strings.replace(s, ch, "")
    # Codes read from a spreadsheet cell may arrive as "20.0".
    s = np.where(np.strings.endswith(s, ".0"), np.strings.slice(s, 0, -2), s)
    out = np.full(len(s), np.nan, dtype=object)
    known = np.zeros(len(s), dtype=bool)
    for key, status in INVOICE_STATUS_CODES.items():
        hit = s == key
        out[hit] = status
        known |= hit
    codes = np.where(blank | known, 0, 1).astype(np.int8)
    return _result(pd.Series(out, index=values.index, dtype="str"), codes, (_STATUS_MESSAGE,),
                   blank, values.index)


_COUNT_MESSAGES = (
    "is not a whole number of sessions: write it like 4, or leave it blank for no maximum",
    "must be 1 or more: write the number of sessions in the package, or leave it blank for no "
    "maximum",
)


def parse_count(values: pd.Series) -> Parsed:
    """A positive whole number ("4", or "4.0" as spreadsheets write it) -> `Int64`; blank -> NA."""
    s = _text(values)
    blank = s == ""
    whole, dot, frac = _partition(s, ".")
    zeros = np.strings.replace(frac, "0", "") == ""
    n_digits = np.strings.str_len(whole)
    shape = np.strings.isdigit(whole) & (n_digits <= 9) & ((dot == "") | zeros)
    number = _to_int(whole, shape)
    codes = np.zeros(len(s), dtype=np.int8)
    codes[~blank & ~shape] = 1
    codes[~blank & shape & (number < 1)] = 2
    ok = ~blank & (codes == 0)
    out = pd.Series(pd.arrays.IntegerArray(number, ~ok), index=values.index)
    return _result(out, codes, _COUNT_MESSAGES, blank, values.index)


_SOURCE_MESSAGE = (
    "is not an allocation source: write payment (paid from the payment named in payment_id) or "
    "credit (paid from the patient's account credit)"
)


def parse_source(values: pd.Series) -> Parsed:
    """`payment` / `credit` (any case) -> that word; blank -> NaN (validation fills the default)."""
    s = np.strings.lower(_text(values))
    blank = s == ""
    known = (s == "payment") | (s == "credit")
    out = pd.Series(np.where(known, s.astype(object), np.nan), index=values.index, dtype="str")
    codes = np.where(blank | known, 0, 1).astype(np.int8)
    return _result(out, codes, (_SOURCE_MESSAGE,), blank, values.index)
