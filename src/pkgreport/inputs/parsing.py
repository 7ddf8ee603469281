"""Vectorised text -> typed value parsers: money cents, dates, timestamps, booleans, status, ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkgreport.inputs.schemas import INVOICE_STATUS_CODES
from pkgreport.inputs.shapes import group_by_shape

# How the parsers stay fast without a Python loop per row (they read the loader's object
# columns of `str`, where pandas `.str` methods cost ~1 s per regex per million rows):
# - every column but ids and text is factorised when its values repeat (the CSV loader already
#   shares one `str` per repeated value, so the hashing is cheap), and each *distinct*
#   value is read once (values are read on their own, never from their neighbours, so this is
#   exact): small vocabularies (booleans, status, counts) in Python;
# - money and dates (which repeat too: a few thousand distinct per million rows; dates are read in
#   `dates.py`) are reduced to a "shape" per distinct value (`shapes.py`: every digit replaced by
#   9, letters lower case: "21/07/2026 3:45pm" -> "99/99/9999 9:99pm"). A column has a handful of
#   shapes, grouped exactly (rows compared whole, never by a hash); each is checked once with a
#   regex, and the digits at its fixed positions are turned into numbers with numpy over all
#   values of that shape at once;
# - ids and text are stripped by `map(str.strip)`, which iterates in C.


CURRENCY_CODES: tuple[str, ...] = ("AUD", "NZD", "USD", "CAD", "GBP", "EUR")
CURRENCY_SYMBOLS: tuple[str, ...] = ("$", "£", "€")

# Cents are computed from digit strings as int64; 15 digits of dollars keeps cents below 2**63.
_MAX_DOLLAR_DIGITS = 15

TRUE_WORDS: tuple[str, ...] = ("yes", "y", "true", "t", "1", "1.0")
FALSE_WORDS: tuple[str, ...] = ("no", "n", "false", "f", "0", "0.0")
# Cliniko writes N/A in every flag of a row the flag does not apply to (an unavailable block).
NOT_APPLICABLE_WORDS: tuple[str, ...] = ("n/a", "na")

DATE_EXAMPLES: dict[str, str] = {"dmy": "21/07/2026", "mdy": "07/21/2026", "ymd": "2026/07/21"}
DATE_ORDER_NAMES: dict[str, str] = {
    "dmy": "day/month/year",
    "mdy": "month/day/year",
    "ymd": "year/month/day",
}


@dataclass(frozen=True)
class Parsed:
    """A parsed column: typed `values` (missing where blank or bad) and a message per bad row.

    `errors` holds only the bad rows, indexed like the input, each a message that completes the
    sentence "<column> ..." saying what is wrong and how to write the value; `bad` and `blank` are
    boolean masks over all rows.
    """

    values: pd.Series
    bad: np.ndarray
    errors: pd.Series
    blank: np.ndarray


def parsed_result(
    values: pd.Series,
    codes: np.ndarray,
    messages: tuple[str, ...],
    blank: np.ndarray,
    index: pd.Index,
) -> Parsed:
    """Turn per-row message codes (0 = fine, k = messages[k - 1]) into a `Parsed`."""
    bad = codes > 0
    if bad.any():
        table = np.array(("", *messages), dtype=object)
        errors = pd.Series(table[codes[bad]], index=index[bad], dtype=object)
    else:
        errors = pd.Series([], index=index[:0], dtype=object)
    return Parsed(values=values, bad=bad, errors=errors, blank=blank)


def _objects(values: pd.Series) -> np.ndarray:
    """The column as an object array of `str` ("" for missing)."""
    raw = values.to_numpy(dtype=object)
    # The loader's columns are all str: one C pass confirms it and the rest is skipped.
    if pd.api.types.infer_dtype(raw, skipna=False) in ("string", "empty"):
        return raw
    return np.array(
        [v if isinstance(v, str) else ("" if pd.isna(v) else str(v)) for v in raw], dtype=object
    )


def shared_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(code per row, the distinct values as an object array of `str`) when the loader holds the
    column so (a `category` of `str`, from a CSV read by pyarrow), else None."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return None
    codes = values.cat.codes.to_numpy()
    distinct = values.cat.categories.to_numpy(dtype=object)
    if (codes < 0).any() or pd.api.types.infer_dtype(distinct, skipna=False) != "string":
        return None  # a missing value, or not all text: read it as any other column
    return codes.astype(np.intp), distinct


def _stripped_objects(values: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """(the column's cells as a new object array of stripped `str`, each row's cell): the cells
    are the rows themselves (None) or, for a column held as codes, its distinct values, each
    stripped once.

    `map(str.strip, ...)` iterates in C (no bytecode per row) and returns the very same object
    when there is nothing to strip: ~0.06 s per million, faster than converting to numpy strings.
    `str.strip` raises TypeError on anything but a `str`, so the usual all-text column needs no
    separate type scan; any other value sends the column through `_objects` first.
    """
    shared = shared_values(values)
    if shared is not None:
        codes, distinct = shared
        return np.fromiter(map(str.strip, distinct), dtype=object, count=len(distinct)), codes
    raw = values.to_numpy(dtype=object)
    try:
        return np.fromiter(map(str.strip, raw), dtype=object, count=len(raw)), None
    except TypeError:
        raw = _objects(values)
        return np.fromiter(map(str.strip, raw), dtype=object, count=len(raw)), None


# A spread sample of this many values tells whether a column's values repeat.
_REPEAT_SAMPLE = 4096


def distinct_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code per row, the values to read, their lengths): row i reads as value codes[i].

    Dates and amounts repeat: a year of appointment starts holds ~15,000 distinct values per
    million rows, invoice dates a few hundred, amounts a handful. Each value is read on its own
    (nothing is inferred from its neighbours), so reading the distinct values once and spreading
    the results by code is exact; factorising (~0.1 s per million) costs a fraction of shaping
    every row. When a spread sample holds no repeat (timestamps to the second), factorising
    would be wasted: every row is then read, with codes 0..n-1. Knowing the lengths first keeps
    one huge cell from sizing the character matrix. A column the loader holds as codes
    (`shared_values`) is factorised already.
    """
    shared = shared_values(values)
    if shared is not None:
        codes, read = shared
        return codes, read, np.fromiter(map(len, read), dtype=np.int64, count=len(read))
    raw = _objects(values)
    # A str is true unless empty. Optional columns (`cancelled_at`) are mostly blank: only the
    # filled cells are read, and the blanks take the code of a last value "".
    filled = raw.astype(bool)
    mostly_blank = 4 * (len(raw) - int(filled.sum())) > len(raw)
    at = np.flatnonzero(filled) if mostly_blank else None
    cells = raw[at] if at is not None else raw
    if _repeats(cells):
        # `_objects` leaves only str, so no code is factorize's -1 for a missing value (asking
        # for no sentinel instead would cost an extra pass over the column).
        codes, read = pd.factorize(cells)
    else:
        codes, read = np.arange(len(cells), dtype=np.intp), cells
    read = np.asarray(read, dtype=object)
    if at is not None:
        read = np.append(read, "")
        codes, filled_codes = np.full(len(raw), len(read) - 1, dtype=np.intp), codes
        codes[at] = filled_codes
    lengths = np.fromiter(map(len, read), dtype=np.int64, count=len(read))
    return codes, read, lengths


def _repeats(cells: np.ndarray) -> bool:
    """Whether a spread sample of the cells, or a run of neighbouring cells, holds a repeat.

    Exports are sorted by date, so a spread sample of a million start times may hold each once
    while a run of neighbours repeats them.
    """
    spread = cells[:: max(1, len(cells) // _REPEAT_SAMPLE)]
    run = cells[len(cells) // 2 : len(cells) // 2 + _REPEAT_SAMPLE]
    return any(len(pd.unique(sample)) < len(sample) for sample in (spread, run))


# --- text and ids -----------------------------------------------------------------------------


def parse_text(values: pd.Series) -> Parsed:
    """Strip surrounding whitespace; "" becomes missing (NaN). Never fails. Object dtype out.

    Ids go through here too and stay text exactly as written: "00123" keeps its zeros, and
    "1234.0" stays "1234.0". Turning "1234.0" into "1234" would be right only when a spreadsheet
    stored the id as a number, which this layer cannot see (it gets text); the loader is where a
    numeric XLSX cell is known to be numeric. Guessing here would silently merge "1234" and
    "1234.0" (or split them) across files, and a wrong join is worse than a visible mismatch.
    """
    stripped, codes = _stripped_objects(values)
    # A column held as codes is tested and blanked per distinct value, then spread to its rows.
    blank = stripped == ""
    if blank.any():
        stripped[blank] = np.nan
    if codes is not None:
        stripped, blank = stripped[codes], blank[codes]
    out = pd.Series(stripped, index=values.index, dtype=object, copy=False)
    return parsed_result(out, np.zeros(len(stripped), dtype=np.int8), (), blank, values.index)


parse_id = parse_text


# --- how spreadsheets and exports damage or disguise ids ------------------------------------

# `="1558354464010667075"`: a one-string formula that keeps a long id as text in a spreadsheet.
_EXCEL_TEXT = re.compile(r'\s*="((?:[^"]|"")*)"\s*', re.DOTALL)


def unwrap_excel_text(cells: np.ndarray) -> np.ndarray:
    """Each whole `="text"` cell of an object array of str -> `text` (`""` inside -> `"`).

    Exports write long ids this way so that a spreadsheet keeps every digit; the text inside is
    the value. Returns the same array when no cell is written so.
    """
    try:
        if '="' not in "".join(cells):
            return cells
    except TypeError:  # not all text: nothing a CSV or a sheet's text cell would hold
        return cells
    out = cells.copy()
    for at in np.flatnonzero([cell.lstrip().startswith("=") for cell in cells]):
        match = _EXCEL_TEXT.fullmatch(cells[at])
        if match:
            out[at] = match.group(1).replace('""', '"')
    return out


# A spreadsheet keeps 15 significant digits; a longer number comes back as 1.01754E+18 or with
# zeros in place of its last digits.
SPREADSHEET_DIGITS = 15
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?[eE]\+[0-9]+")
_LONG_NUMBER = re.compile(rf"[0-9]{{{SPREADSHEET_DIGITS + 1},}}")


def rounded_id(values: pd.Series, may_hold_scientific: bool = True) -> str | None:
    """A value showing that a spreadsheet rounded this column's ids, or None when they look intact.

    The rule (README "Inputs"): a column is rounded when any value is written in scientific
    notation (`1.01754E+18`: no id is written so), or when a spread sample of its values holds
    at least two different ids of 16+ digits and every one ends in zeros from the 16th digit
    on, as a spreadsheet leaves them. A real 18- or 19-digit id ends so about once in a thousand
    (or ten thousand), so two or more all ending so is not chance (under one in a million); and
    a spreadsheet rounds every long number of a column, so a sample sees it. The scan for
    scientific notation is skipped when the caller knows the file holds none.
    """
    shared = shared_values(values)
    # A column held as codes is searched value by distinct value, in the order of its rows.
    codes, cells = shared if shared is not None else (None, _objects(values))
    if may_hold_scientific and _scientific_in(cells):
        found = [_SCIENTIFIC.search(cell) for cell in cells]
        hit = np.array([match is not None for match in found], dtype=bool)
        rows_hit = hit if codes is None else hit[codes]
        if rows_hit.any():
            first = int(np.argmax(rows_hit))
            match = found[first if codes is None else codes[first]]
            assert match is not None
            return match.group(0)
    step = max(1, len(values) // _REPEAT_SAMPLE)
    sample = cells[::step] if codes is None else cells[codes[::step]]
    # A group appointment lists several ids in one cell.
    long_ids = {
        i
        for cell in sample
        if len(cell) > SPREADSHEET_DIGITS
        for i in _ID_SEPARATOR.split(cell.strip())
        if _LONG_NUMBER.fullmatch(i)
    }
    zero_tailed = [i for i in long_ids if not i[SPREADSHEET_DIGITS:].strip("0")]
    if len(long_ids) >= 2 and len(zero_tailed) == len(long_ids):
        return min(zero_tailed)
    return None


def _scientific_in(cells: np.ndarray) -> bool:
    # One C pass over the joined text answers "no scientific notation" for the whole column.
    joined = "".join(cells)
    return "E+" in joined or "e+" in joined


# Cliniko's `Patient ID(s)` lists a group booking's patients in one cell; the separator is not
# confirmed by a real export, so a comma, a semicolon and white space are all accepted.
ID_SEPARATORS: tuple[str, ...] = (",", ";", " ", "\t", "\n", "\r")
_ID_SEPARATOR = re.compile("[" + re.escape("".join(ID_SEPARATORS)) + "]+")


def split_ids(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Cells listing several ids -> (the position of each id's row, the ids), in row order.

    Each cell is stripped first (as `parse_text` strips it); a blank cell gives no id. None when
    no row lists more than one (the usual case, found by one pass over the joined text). A column
    held as codes is split per distinct value and spread to its rows.
    """
    cells, codes = _stripped_objects(values)
    joined = "".join(cells)
    if not any(sep in joined for sep in ID_SEPARATORS):
        return None
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    # The cells holding a separator, found from the separators' places in the joined text.
    places = [m.start() for m in _ID_SEPARATOR.finditer(joined)]
    listed = np.zeros(len(cells), dtype=bool)
    listed[np.searchsorted(np.cumsum(lengths), places, side="right")] = True
    cell_of_row = np.arange(len(cells)) if codes is None else codes
    listing_rows = np.flatnonzero(listed[cell_of_row])
    if not len(listing_rows):
        return None  # only a value no row holds lists several
    counts = (lengths > 0).astype(np.int64)
    parts = {at: [i for i in _ID_SEPARATOR.split(cells[at]) if i] for at in np.flatnonzero(listed)}
    for at, listed_ids in parts.items():
        counts[at] = len(listed_ids)
    per_row = counts[cell_of_row]
    rows = np.repeat(np.arange(len(cell_of_row)), per_row)
    ids = cells[np.repeat(cell_of_row, per_row)]
    starts = np.concatenate([[0], np.cumsum(per_row)])
    for row in listing_rows:
        ids[starts[row] : starts[row + 1]] = parts[cell_of_row[row]]
    return rows, ids


# --- per distinct value -----------------------------------------------------------------------


def _by_distinct(
    values: pd.Series,
    parse_one: Callable[[str], tuple[object, int]],
    dtype: type | str = object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse each distinct stripped value once; return (value per row, code per row, blank).

    The values are converted to `dtype` per distinct value, before they are spread to the rows.
    """
    # Reading each distinct raw text once keeps the per-row work to one hash pass.
    keys, distinct, _ = distinct_values(values)
    uniques = [u.strip() for u in distinct]
    parsed = [parse_one(u) for u in uniques]
    table = np.empty(len(parsed), dtype=object)
    table[:] = [v for v, _ in parsed]
    codes = np.array([c for _, c in parsed], dtype=np.int8)[keys]
    blank = np.array([u == "" for u in uniques], dtype=bool)[keys]
    return table.astype(dtype)[keys], codes, blank


def parse_bools(values: pd.Series, default: bool = False) -> Parsed:
    """yes/no, y/n, true/false, t/f, 1/0 (any case) -> numpy bool; blank or N/A -> `default`."""

    def one(text: str) -> tuple[object, int]:
        low = text.casefold()
        if low == "" or low in NOT_APPLICABLE_WORDS:
            return default, 0
        if low in TRUE_WORDS:
            return True, 0
        if low in FALSE_WORDS:
            return False, 0
        return default, 1

    parsed, codes, blank = _by_distinct(values, one, bool)
    out = pd.Series(parsed, index=values.index, dtype=bool, copy=False)
    message = "is not yes or no: write yes/no, true/false, y/n or 1/0 (blank means " + (
        "yes)" if default else "no)"
    )
    return parsed_result(out, codes, (message,), blank, values.index)


_STATUS_MESSAGE = (
    "is not an invoice status: write Open, Paid, Closed or Open credit (or Cliniko's code "
    "10, 20, 30 or 40)"
)


def parse_status(values: pd.Series) -> Parsed:
    """Invoice status words or Cliniko codes -> `open|paid|closed|open_credit` (NaN when blank)."""

    def one(text: str) -> tuple[object, int]:
        key = re.sub(r"[^0-9a-z.]", "", text.casefold())
        # Codes read from a spreadsheet cell may arrive as "20.0".
        key = key.removesuffix(".0")
        if text == "":
            return np.nan, 0
        status = INVOICE_STATUS_CODES.get(key)
        return (status, 0) if status else (np.nan, 1)

    parsed, codes, blank = _by_distinct(values, one)
    out = pd.Series(parsed, index=values.index, dtype=object)
    return parsed_result(out, codes, (_STATUS_MESSAGE,), blank, values.index)


_COUNT_MESSAGES = (
    "is not a whole number of sessions: write it like 4, or leave it blank for no maximum",
    (
        "must be 1 or more: write the number of sessions in the package, or leave it blank for no "
        "maximum"
    ),
)
# A count that may be 0 (patients on a booking, a system's sessions remaining) has no "maximum".
_COUNT_FROM_ZERO_MESSAGES = ("is not a whole number: write it like 4 (0 or more)",)
_COUNT_SHAPE = re.compile(r"([0-9]{1,9})(?:\.0*)?")


def parse_count(values: pd.Series, minimum: int = 1) -> Parsed:
    """A whole number from `minimum` up ("4", or "4.0" as spreadsheets write it) -> `Int64`.

    Blank -> NA.
    """

    def one(text: str) -> tuple[object, int]:
        if text == "":
            return 0, 0
        match = _COUNT_SHAPE.fullmatch(text)
        if not match:
            return 0, 1
        number = int(match.group(1))
        return (number, 0) if number >= minimum else (0, 2)

    numbers, codes, blank = _by_distinct(values, one, np.int64)
    out = pd.Series(pd.arrays.IntegerArray(numbers, blank | (codes > 0)), index=values.index)
    messages = _COUNT_FROM_ZERO_MESSAGES if minimum == 0 else _COUNT_MESSAGES
    return parsed_result(out, codes, messages, blank, values.index)


_SOURCE_MESSAGE = (
    "is not an allocation source: write payment (paid from the payment named in payment_id) or "
    "credit (paid from the patient's account credit)"
)


def parse_source(values: pd.Series) -> Parsed:
    """`payment` / `credit` (any case) -> that word; blank -> NaN (validation fills the default)."""

    def one(text: str) -> tuple[object, int]:
        low = text.casefold()
        if low in ("payment", "credit"):
            return low, 0
        return np.nan, 0 if low == "" else 1

    parsed, codes, blank = _by_distinct(values, one)
    out = pd.Series(parsed, index=values.index, dtype=object)
    return parsed_result(out, codes, (_SOURCE_MESSAGE,), blank, values.index)


# --- money ------------------------------------------------------------------------------------

_MONEY_MESSAGES = (
    "is not an amount in dollars and cents: write it like 1234.50 (or -50.00 for a negative)",
    "has more than 2 decimal places: write dollars and cents like 1234.50",
    "has a misplaced thousands separator or a decimal comma: write it like 1234.50 or 1,234.50",
    "has more than one decimal point: write it like 1234.50 (no thousands points)",
    "is too large to be an amount: check the column holds money",
    "has more than one minus sign or bracket: write a negative amount like -50.00 or (50.00)",
)
_CODES = "|".join(c.lower() for c in CURRENCY_CODES)
_MONEY_SHAPE = re.compile(
    rf"\s*(?P<open>\()?\s*(?P<m1>-)?\s*(?:(?P<c1>{_CODES})\s*)?(?P<m2>-)?\s*"
    rf"(?P<sym>[{re.escape(''.join(CURRENCY_SYMBOLS))}])?\s*(?P<m3>-)?\s*(?P<num>[9.,]+)\s*"
    rf"(?P<c2>{_CODES})?\s*(?P<close>\))?\s*"
)
_GROUPED = re.compile(r"9{1,3}(?:,999)+")


def _money_shape(shape: str) -> tuple[int, bool, list[tuple[int, int]]]:
    """(message code, negative, [(position, multiplier)]) for one shape of an amount."""
    match = _MONEY_SHAPE.fullmatch(shape)
    if not match or bool(match["open"]) != bool(match["close"]) or (match["c1"] and match["c2"]):
        return 1, False, []
    num = match["num"]
    whole, dot, frac = num.partition(".")
    if num.count(".") > 1:
        return 4, False, []
    if "," in frac or ("," in whole and not _GROUPED.fullmatch(whole)):
        return 3, False, []
    if len(frac) > 2:
        return 2, False, []
    if (dot and not frac) or not (whole.replace(",", "") + frac):
        return 1, False, []
    whole_digits = whole.count("9")
    if whole_digits > _MAX_DOLLAR_DIGITS:
        return 5, False, []
    signs = sum(1 for g in ("open", "m1", "m2", "m3") if match[g])
    if signs > 1:
        return 6, False, []
    start = match.start("num")
    positions = []
    seen = 0
    for offset, ch in enumerate(whole):
        if ch == "9":
            seen += 1
            positions.append((start + offset, 10 ** (whole_digits - seen + 2)))
    frac_start = start + len(whole) + 1
    for offset in range(len(frac)):
        positions.append((frac_start + offset, 10 ** (1 - offset)))
    return 0, signs == 1, positions


def parse_money(values: pd.Series) -> Parsed:
    """Dollars-and-cents text -> `Int64` cents (NA where blank or bad), by integer arithmetic.

    Accepts `1234.5`, `1,234.50`, `$1,234.50`, `-$50.00`, `$-50.00`, `($50.00)`, `£12`, `€12`,
    `AUD 12.00`, `12.00 AUD`. Rejects more than two decimals, decimal commas (`1,7`), thousands
    points (`200.000.000`), misplaced separators (`1,23.00`) and words. Never goes via float.
    """
    keys, distinct, lengths = distinct_values(values)
    cents, codes, blank = (part[keys] for part in _money_core(distinct, lengths))
    ok = ~blank & (codes == 0)
    out = pd.Series(pd.arrays.IntegerArray(cents, ~ok), index=values.index)
    return parsed_result(out, codes, _MONEY_MESSAGES, blank, values.index)


def _money_core(
    raw: np.ndarray,
    lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shapes = group_by_shape(raw, lengths)
    cents = np.zeros(len(raw), dtype=np.int64)
    read = [_money_shape(shape) for shape in shapes.shapes]
    codes, blank = shapes.spread([code for code, _, _ in read])
    for g, (code, negative, positions) in enumerate(read):
        if code == 0 and positions:
            rows = shapes.rows(g)
            number = shapes.numbers(rows, {"cents": positions})["cents"]
            cents[rows] = -number if negative else number
    blank &= ~shapes.too_long
    codes[shapes.too_long] = 1
    return cents, codes, blank
