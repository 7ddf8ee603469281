"""XLSX pre-flight, shared texts: the text a worksheet's cells unpack to, bounded before reading.

A cell of shared text names an entry of the workbook's one table of texts, and every reader
gives each such cell its own copy. So a small file can unpack to far more text than the zip
declares: 12,000 cells naming one 1 MB text are 12 GB for the reader (Apache POI's
`poc-shared-strings.xlsx` is such a file, 110 KB). The pre-flight bounds that text first
cheaply (the cells the sheet's bytes can hold times the longest entry), and when that bound is
over the limit, exactly (the entry each shared-text cell names, summed).

Each entry's size is measured in bytes of its XML, from its `<si` to the next one's: never
less than its text's length in characters, so the bound never falls short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

# The tag of a table entry, with or without a namespace prefix (found when no plain one is).
_PREFIXED_ENTRY = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s>/]")
# A cell of shared text (t="s") and the entry its value names.
_SHARED_CELL = re.compile(
    rb"""<(?:[A-Za-z_][\w.-]*:)?c\b[^>]*?\bt\s*=\s*["']s["'][^>]*>\s*"""
    rb"""<(?:[A-Za-z_][\w.-]*:)?v>\s*(\d{1,10})\s*<"""
)
_MIN_CELL_BYTES = len(b'<c t="s"><v>0</v></c>')
_AFTER_NAME = np.frombuffer(b" \t\r\n>/", dtype=np.uint8)


def is_shared_texts(part: str) -> bool:
    """Whether a zip member is a workbook's table of shared texts (`xl/sharedStrings.xml`)."""
    return part.lower().endswith("sharedstrings.xml")


def entry_sizes(segments: Iterable[bytes]) -> np.ndarray:
    """Each entry's size in bytes (int64, in table order), from the table's XML in pieces cut
    after a tag; the last entry runs to the end of the part."""
    starts: list[np.ndarray] = []
    offset = 0
    for segment in segments:
        found = _plain_entry_starts(segment)
        if not found.size and b":si" in segment:  # a table written with a namespace prefix
            found = np.array([m.start() for m in _PREFIXED_ENTRY.finditer(segment)], np.int64)
        starts.append(found + offset)
        offset += len(segment)
    every = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    return np.diff(np.append(every, offset))


def _plain_entry_starts(segment: bytes) -> np.ndarray:
    """Where `<si` followed by a space, `>` or `/` starts in the piece (numpy, no Python loop)."""
    text = np.frombuffer(segment, dtype=np.uint8)
    if text.size < 4:
        return np.zeros(0, dtype=np.int64)
    opens = np.flatnonzero(text[:-3] == ord("<"))
    opens = opens[(text[opens + 1] == ord("s")) & (text[opens + 2] == ord("i"))]
    return opens[np.isin(text[opens + 3], _AFTER_NAME)].astype(np.int64)


def cheap_bound(sheet_bytes: int, sizes: np.ndarray) -> int:
    """At most this many bytes of shared text in a sheet of `sheet_bytes` bytes of XML: no cell
    is written in fewer than `<c t="s"><v>0</v></c>`'s bytes, whatever its reference says."""
    return sheet_bytes // _MIN_CELL_BYTES * int(sizes.max()) if sizes.size else 0


def exact_total(segments: Iterable[bytes], sizes: np.ndarray) -> int:
    """The bytes of shared text the sheet's cells name, summed (an entry past the table's end
    counts as the longest entry: the reader will refuse it, and it may not shrink the bound)."""
    longest = np.int64(sizes.max()) if sizes.size else np.int64(0)
    lookup = np.append(sizes, longest)
    total = 0
    for segment in segments:
        named = _SHARED_CELL.findall(segment)
        if named:
            index = np.minimum(np.array(named).astype(np.int64), sizes.size)
            total += int(lookup[index].sum())
    return total


def too_much_text(where: str, total: int, limit: int) -> str:
    return (
        f"refused: the cells of {where} would unpack to {total:,} bytes of text (they repeat "
        f"long shared texts), over the limit of {limit:,} (possible zip bomb); export the data again"
    )
