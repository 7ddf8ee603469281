"""Vectorised text -> typed value parsers: money cents, dates, timestamps, booleans, status, ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from pkgreport.schemas import INVOICE_STATUS_CODES

# How the parsers stay fast without a Python loop per row (no pyarrow here, and pandas `.str`
# methods on python-backed strings cost ~1 s per regex per million rows):
# - every column but ids and text is factorised when its values repeat, and each *distinct*
#   value is read once (values are read on their own, never from their neighbours, so this is
#   exact): small vocabularies (booleans, status, counts) in Python;
# - money and dates (which repeat too: a few thousand distinct per million rows) are reduced to a
#   "shape" per distinct value (every digit replaced by 9, letters lower case: "21/07/2026
#   3:45pm" -> "99/99/9999 9:99pm"). A column has a handful of shapes; each is checked once with
#   a regex, and the digits at its fixed positions are turned into numbers with numpy over all
#   values of that shape at once;
# - ids and text are stripped by `map(str.strip)`, which iterates in C.

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S

# A longer value cannot be a date or an amount; capping the width bounds the char matrix memory.
_MAX_SHAPE_CHARS = 40

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


def _objects(values: pd.Series) -> np.ndarray:
    """The column as an object array of `str` ("" for missing)."""
    raw = values.to_numpy(dtype=object)
    # The loader's columns are all str: one C pass confirms it and the rest is skipped.
    if pd.api.types.infer_dtype(raw, skipna=False) in ("string", "empty"):
        return raw
    return np.array(
        [v if isinstance(v, str) else ("" if pd.isna(v) else str(v)) for v in raw], dtype=object
    )


def _stripped_objects(values: pd.Series) -> np.ndarray:
    """The column as a new object array of stripped `str`.

    `map(str.strip, ...)` iterates in C (no bytecode per row) and returns the very same object
    when there is nothing to strip: ~0.06 s per million, faster than converting to numpy strings.
    `str.strip` raises TypeError on anything but a `str`, so the usual all-text column needs no
    separate type scan; any other value sends the column through `_objects` first.
    """
    raw = values.to_numpy(dtype=object)
    try:
        return np.fromiter(map(str.strip, raw), dtype=object, count=len(raw))
    except TypeError:
        raw = _objects(values)
        return np.fromiter(map(str.strip, raw), dtype=object, count=len(raw))


# A spread sample of this many values tells whether a column's values repeat.
_REPEAT_SAMPLE = 4096


def _distinct(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code per row, the values to read, their lengths): row i reads as value codes[i].

    Dates and amounts repeat: a year of appointment starts holds ~15,000 distinct values per
    million rows, invoice dates a few hundred, amounts a handful. Each value is read on its own
    (nothing is inferred from its neighbours), so reading the distinct values once and spreading
    the results by code is exact; factorising (~0.1 s per million) costs a fraction of shaping
    every row. When a spread sample holds no repeat (timestamps to the second), factorising
    would be wasted: every row is then read, with codes 0..n-1. Knowing the lengths first keeps
    one huge cell from sizing the character matrix.
    """
    raw = _objects(values)
    # A str is true unless empty. Optional columns (`cancelled_at`) are mostly blank: only the
    # filled cells are read, and the blanks take the code of a last value "".
    filled = raw.astype(bool)
    mostly_blank = 4 * (len(raw) - int(filled.sum())) > len(raw)
    at = np.flatnonzero(filled) if mostly_blank else None
    cells = raw[at] if at is not None else raw
    sample = cells[:: max(1, len(cells) // _REPEAT_SAMPLE)]
    if len(pd.unique(sample)) < len(sample):
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


# --- text and ids -----------------------------------------------------------------------------


def parse_text(values: pd.Series) -> Parsed:
    """Strip surrounding whitespace; "" becomes missing (NaN). Never fails. Object dtype out.

    Ids go through here too and stay text exactly as written: "00123" keeps its zeros, and
    "1234.0" stays "1234.0". Turning "1234.0" into "1234" would be right only when a spreadsheet
    stored the id as a number, which this layer cannot see (it gets text); the loader is where a
    numeric XLSX cell is known to be numeric. Guessing here would silently merge "1234" and
    "1234.0" (or split them) across files, and a wrong join is worse than a visible mismatch.
    """
    stripped = _stripped_objects(values)
    blank = stripped == ""
    if blank.any():
        stripped[blank] = np.nan
    out = pd.Series(stripped, index=values.index, dtype=object, copy=False)
    return _result(out, np.zeros(len(stripped), dtype=np.int8), (), blank, values.index)


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
    cells = _objects(values)
    if may_hold_scientific and _scientific_in(cells):
        for cell in cells:
            found = _SCIENTIFIC.search(cell)
            if found:
                return found.group(0)
    sample = cells[:: max(1, len(cells) // _REPEAT_SAMPLE)]
    # A group appointment lists several ids in one cell.
    long_ids = {i for cell in sample if len(cell) > SPREADSHEET_DIGITS
                for i in _ID_SEPARATOR.split(cell.strip()) if _LONG_NUMBER.fullmatch(i)}
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

    None when no cell lists more than one (the usual case, found by one pass over the joined
    text). Cells are expected stripped (as `parse_text` leaves them); blank cells give no id.
    """
    cells = _objects(values)
    joined = "".join(cells)
    if not any(sep in joined for sep in ID_SEPARATORS):
        return None
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    ends = np.cumsum(lengths)
    # The rows holding a separator, found from the separators' places in the joined text.
    places = [m.start() for m in _ID_SEPARATOR.finditer(joined)]
    listed = np.zeros(len(cells), dtype=bool)
    listed[np.searchsorted(ends, places, side="right")] = True
    counts = np.where(cells != "", 1, 0)
    parts = {at: [i for i in _ID_SEPARATOR.split(cells[at]) if i] for at in np.flatnonzero(listed)}
    for at, ids in parts.items():
        counts[at] = len(ids)
    rows = np.repeat(np.arange(len(cells)), counts)
    ids = np.repeat(cells, counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for at, found in parts.items():
        ids[starts[at]:starts[at + 1]] = found
    return rows, ids


# --- per distinct value -----------------------------------------------------------------------


def _by_distinct(values: pd.Series, parse_one: Callable[[str], tuple[object, int]],
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse each distinct stripped value once; return (value per row, code per row, blank)."""
    # Reading each distinct raw text once keeps the per-row work to one hash pass.
    keys, distinct, _ = _distinct(values)
    uniques = [u.strip() for u in distinct]
    parsed = [parse_one(u) for u in uniques]
    table = np.empty(len(parsed), dtype=object)
    table[:] = [v for v, _ in parsed]
    codes = np.array([c for _, c in parsed], dtype=np.int8)[keys]
    blank = np.array([u == "" for u in uniques], dtype=bool)[keys]
    return table[keys], codes, blank


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

    parsed, codes, blank = _by_distinct(values, one)
    out = pd.Series(parsed.astype(bool), index=values.index, dtype=bool)
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
    return _result(out, codes, (_STATUS_MESSAGE,), blank, values.index)


_COUNT_MESSAGES = (
    "is not a whole number of sessions: write it like 4, or leave it blank for no maximum",
    ("must be 1 or more: write the number of sessions in the package, or leave it blank for no "
    "maximum"),
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

    parsed, codes, blank = _by_distinct(values, one)
    numbers = parsed.astype(np.int64)
    out = pd.Series(pd.arrays.IntegerArray(numbers, blank | (codes > 0)), index=values.index)
    messages = _COUNT_FROM_ZERO_MESSAGES if minimum == 0 else _COUNT_MESSAGES
    return _result(out, codes, messages, blank, values.index)


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
    return _result(out, codes, (_SOURCE_MESSAGE,), blank, values.index)


# --- shapes -----------------------------------------------------------------------------------

# Fixed weights for the two 32-bit shape hashes (a deterministic stand-in for hashing each row).
_WEIGHTS = np.random.default_rng(20260721).integers(1, 2**32 - 1, size=(2, _MAX_SHAPE_CHARS),
                                                    dtype=np.uint64).astype(np.uint32)


_SHAPE_TABLE = np.arange(0x10000, dtype=np.uint32)
_SHAPE_TABLE[ord("0"):ord("9") + 1] = ord("9")
_SHAPE_TABLE[ord("A"):ord("Z") + 1] += ord("a") - ord("A")


@dataclass
class _Shapes:
    """Rows grouped by shape: `chars` holds code points (n x width), `group` each row's shape."""

    chars: np.ndarray
    group: np.ndarray
    shapes: list[str]
    too_long: np.ndarray
    _order: np.ndarray | None = field(default=None, repr=False)
    _starts: np.ndarray | None = field(default=None, repr=False)

    def rows(self, g: int) -> np.ndarray | slice:
        """Row positions of shape `g` (a slice over everything when there is one shape)."""
        if len(self.shapes) == 1:
            return slice(None)
        if self._order is None:
            self._order = np.argsort(self.group, kind="stable")
            counts = np.bincount(self.group, minlength=len(self.shapes))
            self._starts = np.concatenate([[0], np.cumsum(counts)])
        assert self._starts is not None
        return self._order[self._starts[g]:self._starts[g + 1]]

    def spread(self, codes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per-shape message codes -> (code per row, blank per row), without a loop over shapes.

        A column of free text mistaken for money has as many shapes as rows; only the few valid
        shapes are then visited one by one.
        """
        blank_shape = np.array([not s.strip() for s in self.shapes], dtype=bool)
        code_shape = np.where(blank_shape, 0, np.array(codes, dtype=np.int8)).astype(np.int8)
        return code_shape[self.group], blank_shape[self.group]

    def numbers(self, rows: np.ndarray | slice,
                parts: dict[str, list[tuple[int, int]]]) -> dict[str, np.ndarray]:
        """Each part's value: the sum of digit x multiplier over its (position, multiplier)s."""
        used = [pos for positions in parts.values() for pos, _ in positions]
        if not used:
            return {}
        lo, hi = min(used), max(used) + 1
        # One pass turns the code points of the digit span into small digit values; the
        # per-digit arithmetic then runs over compact uint8 columns.
        digits = (self.chars[rows, lo:hi] - 48).astype(np.uint8)
        out = {}
        for name, positions in parts.items():
            if not positions:
                continue
            # int32 halves the work where the largest possible value fits (every date part);
            # larger amounts of money need int64.
            largest = sum(9 * mult for _, mult in positions)
            kind: type[np.signedinteger] = np.int32 if largest < 2**31 else np.int64
            total = np.zeros(len(digits), dtype=kind)
            for pos, mult in positions:
                total += digits[:, pos - lo].astype(kind) * mult
            out[name] = total.astype(np.int64)
        return out


def _shapes(raw: np.ndarray, lengths: np.ndarray) -> _Shapes:
    n = len(raw)
    too_long = lengths > _MAX_SHAPE_CHARS
    if too_long.any():
        raw = raw.copy()
        raw[too_long] = ""
    width = int(min(lengths.max(initial=0), _MAX_SHAPE_CHARS)) or 1
    chars = raw.astype(f"<U{width}").view(np.uint32).reshape(n, width)
    # One table lookup maps digits to "9" and A-Z to a-z; characters beyond the BMP (never part
    # of a valid date or amount) all become U+FFFF.
    if n and chars.max() > 0xFFFF:
        chars = np.minimum(chars, 0xFFFF)
    shape = _SHAPE_TABLE[chars]
    key = ((shape @ _WEIGHTS[0, :width]).astype(np.uint64) << np.uint64(32)) | (
        shape @ _WEIGHTS[1, :width]
    ).astype(np.uint64)
    group, uniques = pd.factorize(key)
    # Rows are grouped by a 64-bit hash of their shape, not compared char by char: an accidental
    # collision between two of a column's few shapes has odds around 2**-64, and a file crafted
    # to collide could as well state the wrong value outright.
    first = np.empty(len(uniques), dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    texts = shape[first].view(f"<U{width}").ravel().tolist() if n else []
    return _Shapes(chars, np.asarray(group, dtype=np.int64), texts, too_long)


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
    keys, distinct, lengths = _distinct(values)
    cents, codes, blank = (part[keys] for part in _money_core(distinct, lengths))
    ok = ~blank & (codes == 0)
    out = pd.Series(pd.arrays.IntegerArray(cents, ~ok), index=values.index)
    return _result(out, codes, _MONEY_MESSAGES, blank, values.index)


def _money_core(raw: np.ndarray, lengths: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shapes = _shapes(raw, lengths)
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


# --- dates and timestamps ---------------------------------------------------------------------

_TIME = r"(?P<h>99?):(?P<mi>99)(?::(?P<s>99)(?:[.,](?P<f>9{1,9}))?)?"
_OFFSET = r"(?:(?P<z>z)|(?P<sign>[+-])(?P<oh>99)(?::?(?P<om>99))?)"
_ISO_SHAPE = re.compile(
    rf"\s*(?P<y>9999)-(?P<m>99)-(?P<d>99)(?:(?:t|\s+){_TIME}\s*{_OFFSET}?)?\s*"
)
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
        (f"is not a real date or time when read as {DATE_ORDER_NAMES[order]}: check the day and "
        f"month (or the date order setting), and {how}"),
        (f"is outside the accepted dates {min_date.isoformat()} to {max_date.isoformat()}: check "
        "the year (the range is the min_date/max_date setting)"),
        ("has a time-zone offset but is not an ISO 8601 timestamp: write it like "
        "2026-07-21T03:45:00+10:00, or leave the offset out for clinic-local time"),
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
    keys, distinct, lengths = _distinct(values)
    stamps, codes, blank = (
        part[keys]
        for part in _datetimes_core(distinct, lengths, date_order, timezone, min_date, max_date,
                                    date_only)
    )
    out = pd.Series(stamps.view("datetime64[ns]"), index=values.index)
    return _result(out, codes, _date_messages(date_order, date_only, min_date, max_date), blank,
                   values.index)


def _datetimes_core(raw: np.ndarray, lengths: np.ndarray, date_order: str, timezone: str,
                    min_date: date, max_date: date, date_only: bool,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nanoseconds or NaT's int, message codes, blank) for an object array of text."""
    shapes = _shapes(raw, lengths)
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
        shaped & (month >= 1) & (month <= 12) & (day >= 1)
        & (day <= _days_in_month(year, month)) & hour_ok & (minute <= 59) & (second <= 59)
        & (part["oh"] <= 23) & (part["om"] <= 59)
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
        offset_s = offset_sign[converting] * (part["oh"][converting] * 3600
                                              + part["om"][converting] * 60)
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
    return parse_datetimes(values, date_order=date_order, timezone=timezone, min_date=min_date,
                           max_date=max_date, date_only=True)
