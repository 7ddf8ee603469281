"""The engine-agnostic report model: plain frozen data every report writer consumes.

`reports/context.py` maps a pipeline result into a `ReportContext`; the writers (`excel.py`,
`html.py`) never see engine objects. Conventions inside every `Table.frame`:

* money columns (`kind="money"`) hold integer cents (int64, or nullable `Int64` with NA = blank);
* `int` columns hold integers (int64 / `Int64`);
* `date` / `datetime` columns hold `datetime64` values, `datetime.date` or `datetime.datetime`
  (NaT / None = blank); `date` shows the day only;
* `percent` columns hold a ratio (0.75 means 75 %), not money, so a float is fine;
* `bool` columns hold booleans; `text` / `id` columns hold strings (None / NaN = blank).

Formatting (currency, date order, thousands separators) lives in `filters.py`; nothing here is
formatted text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd

ColumnKind = Literal["text", "id", "money", "int", "date", "datetime", "percent", "bool"]
COLUMN_KINDS: tuple[str, ...] = (
    "text",
    "id",
    "money",
    "int",
    "date",
    "datetime",
    "percent",
    "bool",
)
Tone = Literal["ok", "warn", "bad"]

# Excel forbids these in sheet names and caps a name at 31 characters.
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_MAX = 31
# The workbook holds every row of a table up to this many. A longer table whose every row is in a
# command's CSV (`Table.all_rows_in`) keeps only its rows that need attention: xlsxwriter writes
# a cell in about 4 microseconds, so 150,000 patients by 12 columns alone would take seven seconds.
WORKBOOK_ALL_ROWS_MAX = 10_000


@dataclass(frozen=True)
class Column:
    """One column of a table: `key` names the frame column, `title` is the header a person reads."""

    key: str
    title: str
    kind: ColumnKind = "text"
    # Excel column width in characters; None = chosen from the kind and the data.
    width: int | None = None
    # With `Table.total_row`, money and int columns are summed unless this is False
    # (a count such as "sessions paid" adds up to nothing meaningful).
    total: bool = True
    # Secondary columns (ids, provenance, detail counts) come after the figures and are left off
    # the phone layout and the printed page; the workbook and the desktop page show them.
    secondary: bool = False
    # False for numbers people look up rather than read as quantities (spreadsheet row numbers):
    # shown without thousands separators.
    grouped: bool = True
    # False keeps a column out of the page (the finding code: a filter in the workbook only).
    html: bool = True

    @property
    def summed(self) -> bool:
        return self.total and self.kind in ("money", "int")

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise ValueError(f"column {self.key!r}: unknown kind {self.kind!r}")


@dataclass(frozen=True, eq=False)
class Table:
    """A section of the report: one workbook sheet and (when `html`) one HTML table.

    `highlight` names a bool column of `frame` marking rows to highlight (it need not be among
    `columns`; the workbook then adds it as a visible "Needs attention" column so the conditional format
    and filters can use it). `total_row` sums the money and int columns (those with `total=True`).
    `attention` names a bool column of `frame` marking the rows that need a look: the page shows
    only those until the reader asks for every row (the workbook has every row, up to
    WORKBOOK_ALL_ROWS_MAX when `all_rows_in` names a CSV that has them all).
    """

    key: str
    sheet: str
    title: str
    description: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    highlight: str | None = None
    total_row: bool = False
    attention: str | None = None
    note: str | None = None
    # Some tables (every validation warning, every appointment) belong in the workbook only.
    html: bool = True
    # The command whose CSV holds every row (e.g. "pkgreport credit"); see WORKBOOK_ALL_ROWS_MAX.
    all_rows_in: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        check_sheet_name(self.sheet)
        missing = [c.key for c in self.columns if c.key not in self.frame.columns]
        for flag in (self.highlight, self.attention):
            if flag is not None and flag not in self.frame.columns:
                missing.append(flag)
        if missing:
            raise ValueError(f"table {self.key!r}: frame lacks columns {missing}")
        titles = [c.title.casefold() for c in self.columns]
        if len(set(titles)) != len(titles):
            raise ValueError(
                f"table {self.key!r}: column titles must be unique (Excel requires it)"
            )

    @property
    def row_count(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Headline:
    """A headline figure: a Summary line in the workbook, a card in the HTML report."""

    label: str
    value: int
    kind: Literal["money", "int"] = "int"
    tone: Tone = "ok"
    detail: str = ""


@dataclass(frozen=True)
class FindingKind:
    """One kind of finding with its count and the plain-language explanation and remedy."""

    code: str
    title: str
    count: int
    severity: str
    explanation: str
    what_to_do: str


@dataclass(frozen=True)
class RollRow:
    """One month of the credit liability roll-forward, all in cents (closing = the sum of the rest)."""

    label: str
    opening: int
    created: int
    applied: int
    refunded: int
    closing: int


# Each chart's title, by name: its heading on the page and its accessible name in the SVG.
CHART_TITLES = {
    "ageing": "Unapplied credit by age",
    "utilisation": "Case utilisation",
    "rollforward": "Monthly credit liability roll-forward",
}


@dataclass(frozen=True)
class ChartData:
    """The series behind the HTML charts; an empty series means the chart is left out."""

    # (bucket label, cents of credit in that bucket), oldest bucket last.
    ageing: tuple[tuple[str, int], ...] = ()
    # (utilisation band such as "0-25%", number of cases in it).
    utilisation: tuple[tuple[str, int], ...] = ()
    rollforward: tuple[RollRow, ...] = ()
    # Cases with no maximum: no share of them is used, so they are counted apart from the bands.
    unlimited: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ageing", tuple(self.ageing))
        object.__setattr__(self, "utilisation", tuple(self.utilisation))
        object.__setattr__(self, "rollforward", tuple(self.rollforward))


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Everything a report shows. `findings.frame` must carry a `code` column (to group by kind)."""

    title: str
    as_of: date
    period_start: date
    period_end: date
    findings: Table
    headlines: tuple[Headline, ...] = ()
    finding_kinds: tuple[FindingKind, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: ChartData = field(default_factory=ChartData)
    # (section left out, why) - e.g. ("Cases", "no cases export in the input folder").
    skipped: tuple[tuple[str, str], ...] = ()
    # A sentence naming the checks that could not run and why (None when every check ran): the
    # report must never say "nothing needs attention" when checks were skipped.
    unchecked: str | None = None
    # One dict per input file: keys file, kind, rows, sha256.
    inputs: tuple[dict[str, object], ...] = ()
    # (setting, value as the user would type it).
    settings: tuple[tuple[str, str], ...] = ()
    # A caller-supplied timestamp string; None keeps the output free of any clock.
    generated_at: str | None = None
    # The HTML report shows at most this many rows per table; the workbook has them all (up to
    # `workbook_all_rows_max`, see WORKBOOK_ALL_ROWS_MAX).
    max_rows: int = 1000
    workbook_all_rows_max: int = WORKBOOK_ALL_ROWS_MAX
    date_order: Literal["dmy", "mdy", "ymd"] = "dmy"
    currency_symbol: str = "$"

    def __post_init__(self) -> None:
        for name in ("headlines", "finding_kinds", "tables", "skipped", "inputs", "settings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if "code" not in self.findings.frame.columns:
            raise ValueError("the findings table's frame needs a 'code' column")
        sheets = [self.findings.sheet] + [t.sheet for t in self.tables]
        folded = [s.casefold() for s in ["Summary", *sheets]]
        if len(set(folded)) != len(folded):
            raise ValueError(f"sheet names must be unique (case-insensitively): {sheets}")
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")


def workbook_attention_only(table: Table, all_rows_max: int) -> bool:
    """Whether the workbook holds only the rows of `table` that need attention (its CSV has all)."""
    return (
        table.all_rows_in is not None
        and table.attention is not None
        and len(table.frame) > all_rows_max
    )


def check_sheet_name(name: str) -> None:
    """Raise ValueError unless Excel accepts `name` as a sheet name."""
    if not name or len(name) > SHEET_NAME_MAX:
        raise ValueError(f"sheet name {name!r} must be 1 to {SHEET_NAME_MAX} characters")
    if _BAD_SHEET_CHARS.search(name) or name.startswith("'") or name.endswith("'"):
        raise ValueError(f"sheet name {name!r} contains a character Excel forbids")
