"""Formatting of report values (money, dates, counts) for people: the only place it happens."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from pkgreport.money import format_dollars

_PY_DATE = {"dmy": "%d/%m/%Y", "mdy": "%m/%d/%Y", "ymd": "%Y-%m-%d"}
_XL_DATE = {"dmy": "dd/mm/yyyy", "mdy": "mm/dd/yyyy", "ymd": "yyyy-mm-dd"}


def is_blank(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT: every way a frame says 'no value'."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bool_)):
        try:
            return bool(pd.isna(value))
        except (TypeError, ValueError):
            return False
    return False


def to_python(value: Any) -> Any:
    """A frame cell as a plain Python value (int, float, bool, str, date, datetime) or None."""
    if is_blank(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).to_pydatetime()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def format_money(cents: Any, symbol: str = "$") -> str:
    """Integer cents as `$1,234.56` / `-$1,234.56` (exact: integer arithmetic, no float)."""
    cents = to_python(cents)
    if cents is None:
        return ""
    return format_dollars(int(cents), symbol)


def format_int(value: Any, grouped: bool = True) -> str:
    """A count with thousands separators; `grouped=False` for numbers looked up, such as rows."""
    value = to_python(value)
    if value is None:
        return ""
    return f"{int(value):,}" if grouped else str(int(value))


def _format_day(value: Any, render: Callable[[Any], str]) -> str:
    """`render(value)` for a date; blank for no value; text already formatted stays as it is."""
    value = to_python(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return render(value)


def format_date(value: Any, order: str = "dmy") -> str:
    """A date in a table: `31/10/2026` (dmy), `10/31/2026` (mdy), `2026-10-31` (ymd)."""
    return _format_day(value, lambda day: day.strftime(_PY_DATE[order]))


def format_prose_date(value: Any, order: str = "dmy") -> str:
    """A date inside a sentence: `31 Oct 2026` (`Oct 31, 2026` for the mdy date order)."""
    if order == "mdy":
        return _format_day(value, lambda day: f"{day:%b} {day.day}, {day:%Y}")
    return _format_day(value, lambda day: f"{day.day} {day:%b %Y}")


_ISO_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}))?\b")


def prose_dates(text: str, order: str = "dmy") -> str:
    """A finding's sentence with its ISO dates in the prose style people read (`2026-08-17 12:00`
    -> `17 Aug 2026 12:00`). The engines write ISO (the JSON keeps it, for machines); the page and
    the workbook show every date in one style that follows the date order."""
    return _ISO_IN_TEXT.sub(lambda match: _prose_match(match, order), text)


def _prose_match(match: re.Match[str], order: str) -> str:
    """One ISO date (and time) found by `_ISO_IN_TEXT`, in prose; an impossible date as it is."""
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return match.group(0)
    time = match.group(2)
    return format_prose_date(day, order) + (f" {time}" if time else "")


# Joins sentences so that their dates are rewritten by one pass; no date holds it.
_SENTENCE_SEPARATOR = "\x00"


def prose_dates_column(texts: list[str], order: str = "dmy") -> list[str]:
    """`prose_dates` over a column of sentences (thousands of findings' messages at scale): the
    sentences joined and rewritten in one pass, each distinct date written once; a column whose
    sentences hold the separator is rewritten sentence by sentence instead."""
    joined = _SENTENCE_SEPARATOR.join(texts)
    if not texts or joined.count(_SENTENCE_SEPARATOR) != len(texts) - 1:
        return [prose_dates(text, order) for text in texts]
    written: dict[str, str] = {}

    def prose(match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in written:
            written[found] = _prose_match(match, order)
        return written[found]

    return _ISO_IN_TEXT.sub(prose, joined).split(_SENTENCE_SEPARATOR)


def format_datetime(value: Any, order: str = "dmy") -> str:
    value = to_python(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        return format_date(value, order)
    return value.strftime(_PY_DATE[order] + " %H:%M")


def format_percent(ratio: Any) -> str:
    ratio = to_python(ratio)
    return "" if ratio is None else f"{float(ratio) * 100:.0f}%"


def format_bool(value: Any) -> str:
    value = to_python(value)
    if value is None:
        return ""
    return "yes" if value else "no"


def format_text(value: Any) -> str:
    value = to_python(value)
    return "" if value is None else str(value)


def format_cell(value: Any, kind: str, order: str = "dmy", symbol: str = "$") -> str:
    """A frame cell as the text a person reads, by column kind."""
    if kind == "money":
        return format_money(value, symbol)
    if kind == "int":
        return format_int(value)
    if kind == "date":
        return format_date(value, order)
    if kind == "datetime":
        return format_datetime(value, order)
    if kind == "percent":
        return format_percent(value)
    if kind == "bool":
        return format_bool(value)
    return format_text(value)


def format_column(values: list[Any], kind: str, order: str = "dmy", symbol: str = "$") -> list[str]:
    """`format_cell` over a column's values; plain Python ints (the usual money and counts) and
    strings (text) take a direct path, equal to `format_money` / `format_int` / `format_text`
    but without their checks."""
    if kind == "money":
        return [
            (
                f"-{symbol}{-v // 100:,}.{-v % 100:02d}"
                if v < 0
                else f"{symbol}{v // 100:,}.{v % 100:02d}"
            )
            if type(v) is int
            else format_money(v, symbol)
            for v in values
        ]
    if kind == "int":
        return [f"{v:,}" if type(v) is int else format_int(v) for v in values]
    if kind in ("text", "id"):
        # A Python str is shown as it is (`format_text`); anything else takes the checks.
        return [v if type(v) is str else format_cell(v, kind, order, symbol) for v in values]
    return [format_cell(v, kind, order, symbol) for v in values]


def sort_keys(values: list[Any], kind: str) -> list[str]:
    """`sort_key` over a column's values, plain Python ints directly."""
    if kind in ("money", "int"):
        return [str(v) if type(v) is int else sort_key(v, kind) for v in values]
    return [sort_key(v, kind) for v in values]


def sort_key(value: Any, kind: str) -> str:
    """A machine-sortable form of a cell for the HTML table sorter ('' = blank, sorts first)."""
    value = to_python(value)
    if value is None:
        return ""
    if kind in ("money", "int"):
        return str(int(value))
    if kind == "percent":
        return repr(float(value))
    if kind == "bool":
        return "1" if value else "0"
    if kind in ("date", "datetime") and isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def excel_date_format(order: str = "dmy") -> str:
    return _XL_DATE[order]


def excel_money_format(symbol: str = "$") -> str:
    # Quote the symbol so characters with a meaning in format codes stay literal.
    sym = symbol if symbol == "$" else f'"{symbol}"'
    return f"{sym}#,##0.00;-{sym}#,##0.00"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 case`, `2 cases`, with thousands separators."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def with_article(noun: str) -> str:
    """`a payment`, `an invoice`: the indefinite article by the noun's first letter."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


_CSS_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,()%$/:")


def css_string(text: str) -> Markup:
    """`text` as a quoted CSS string; every other character is a CSS escape (`\\3c `), so no
    text can close the string or the <style> element it sits in."""
    body = "".join(c if c in _CSS_PLAIN else f"\\{ord(c):x} " for c in text)
    return Markup(f'"{body}"')


def filters_for(order: str, symbol: str) -> dict[str, Any]:
    """The Jinja2 filters, bound to the report's date order and currency symbol."""
    return {
        "money": lambda v: format_money(v, symbol),
        "int": format_int,
        "date": lambda v: format_date(v, order),
        "prose_date": lambda v: format_prose_date(v, order),
        "datetime": lambda v: format_datetime(v, order),
        "percent": format_percent,
        "plural": plural,
        "text": format_text,
        "css_string": css_string,
    }
