"""Lone surrogates: text no export decodes to, found in a table's text and shown safely.

A Python `str` may hold a code point from U+D800 to U+DFFF on its own (half of a UTF-16 pair),
which strict UTF-8, UTF-16, UTF-32 and Windows-1252 decoding never gives, and which neither
UTF-8 nor pandas' and Arrow's text can hold: a stage building a frame of it would fail. Every
reader of the loader decodes strictly (pyarrow, pandas' C parser and Python's codecs for CSV;
calamine and fastexcel, which parse an XLSX's XML as UTF-8 and refuse `&#xD800;`), so its tables
hold none (`RawTable.may_hold_lone_surrogates`). A table a program builds (`validate_tables`)
may: `validate_tables` searches it first, each cell holding one an error and its row left
out. A file's name may hold one too (Python reads a name's bytes that are not UTF-8 as U+DC80..
U+DCFF), so the loader refuses such a file where it first meets the name (`name_is_text`).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

_LONE = re.compile("[\ud800-\udfff]")
REEXPORT = "export the file again as 'CSV UTF-8 (Comma delimited)' or .xlsx and use that file"


def holds_lone_surrogate(text: str) -> bool:
    """Whether `text` holds a code point of U+D800..U+DFFF (an ASCII text never does)."""
    return not text.isascii() and _LONE.search(text) is not None


def shown_safely(text: str) -> str:
    """`text` with each lone surrogate written as its code point: "10[U+D800]76"."""
    return _LONE.sub(lambda found: f"[U+{ord(found.group()):04X}]", text)


def broken_character(text: str) -> str:
    """What a message says a text holds: its lone surrogates' code points."""
    points = dict.fromkeys(f"U+{ord(c):04X}" for c in _LONE.findall(text))
    return (
        f"a broken character ({', '.join(points)}) that no export can hold: the file's text "
        "was read with the wrong encoding"
    )


def lone_surrogate_cells(values: pd.Series) -> np.ndarray:
    """Mask of the cells of a column holding a lone surrogate (only a `str` can hold one)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        distinct = _holding(values.cat.categories.to_numpy(dtype=object))
        return np.append(distinct, False)[values.cat.codes.to_numpy()]  # code -1: missing
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)  # numbers, or text pandas holds as UTF-8
    return _holding(values.to_numpy(dtype=object))


def _holding(values: np.ndarray) -> np.ndarray:
    """`lone_surrogate_cells` of an object array: one C pass over the joined text answers
    "none" for a column of `str`; only then, or for a column of other values too, each value."""
    try:
        joined: str | None = "".join(values)
    except TypeError:  # not every value is a str
        joined = None
    if joined is not None and not holds_lone_surrogate(joined):
        return np.zeros(len(values), dtype=bool)
    return np.fromiter(
        (isinstance(v, str) and holds_lone_surrogate(v) for v in values),
        dtype=bool,
        count=len(values),
    )


def name_is_text(name: str) -> bool:
    """Whether a file's name is text: each of its bytes was read as UTF-8 (`holds_lone_surrogate`)."""
    return not holds_lone_surrogate(name)


def name_not_text(name: str) -> str:
    """Why a file whose name is not text (`name_is_text`) is refused, and what to do."""
    shown = ", ".join(dict.fromkeys(_byte_or_point(c) for c in _LONE.findall(name)))
    return (
        f"the file's name holds a byte that is not UTF-8 text ({shown}), so no message or report "
        "could name the file: rename it, e.g. to its kind and date (payments-20261101.csv), or "
        "move it out of the folder if it is not an export, and run again"
    )


def _byte_or_point(surrogate: str) -> str:
    """The byte a name read from the file system held (U+DC80..U+DCFF: `\\xff`), else the
    code point."""
    point = ord(surrogate)
    return f"\\x{point - 0xDC00:02x}" if 0xDC80 <= point <= 0xDCFF else f"U+{point:04X}"


def shown_name(name: str) -> str:
    """A file's name as a message shows it: a byte that is not UTF-8 written as `\\xff`."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # not a name read from the file system
        return shown_safely(name)
