"""Export files -> all-text frames with `source_file` and `source_row`; encodings, dialects, xlsx safety."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class InputFile:
    """What was read: enough to reproduce and audit a run (the report lists it with its SHA-256)."""

    path: Path
    name: str
    kind: str
    sha256: str
    size: int
    rows: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class RawTable:
    """One file's rows as text.

    `frame` has the file's headers exactly as written (surrounding whitespace stripped), every value
    a `str` (a blank cell is ""), plus `source_file` (str) and `source_row` (int64: the row as the
    user's spreadsheet numbers it, header = row 1).
    """

    file: InputFile
    frame: pd.DataFrame
