"""The self-contained HTML report: Jinja2 templates fed with pre-formatted view data."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup, escape

from pkgreport.arrow_text import rows_at
from pkgreport.reports.chart_process import ChartsBeside
from pkgreport.reports.filters import (
    filters_for,
    format_cell,
    format_column,
    format_int,
    format_money,
    format_prose_date,
    is_blank,
    plural,
    sort_keys,
)
from pkgreport.reports.model import (
    CHART_TITLES,
    Column,
    ReportContext,
    Table,
    workbook_attention_only,
)

_NUMERIC_KINDS = frozenset({"money", "int", "percent"})
_LONG_TEXT_WIDTH = 30
# A table with at most this many rows showing prints after the one before it, without a page break.
_SHORT_TABLE_ROWS = 20
_SEVERITY_LABEL = {"high": "High", "medium": "Medium", "low": "Low"}


def templates_dir() -> Path:
    """The templates folder: the source checkout's `templates/` if present, else the installed one."""
    checkout = Path(__file__).resolve().parents[3] / "templates"
    if (checkout / "base.html.j2").is_file():
        return checkout
    return Path(str(resources.files("pkgreport.templates")))


def make_environment(ctx: ReportContext) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters_for(ctx.date_order, ctx.currency_symbol))
    return env


@dataclass(frozen=True)
class ColumnView:
    title: str
    kind: str
    numeric: bool
    secondary: bool = False
    # Long free text (messages, lists of findings) wraps; every other cell stays on one line.
    long: bool = False

    @property
    def css(self) -> str:
        """The cell's classes: `num` right-aligns, `sec` marks secondary, `long` lets text wrap."""
        names = (("num", self.numeric), ("sec", self.secondary), ("long", self.long))
        return " ".join(name for name, wanted in names if wanted)


@dataclass(frozen=True)
class TableView:
    id: str
    title: str
    description: str
    note: str
    columns: list[ColumnView]
    # The rows of the table's body, escaped (see `_body`).
    body: Markup
    totals: list[str] | None
    shown: int
    total_rows: int
    capped_note: str
    has_flag: bool
    # Rows on the page that need no attention (hidden until "show every row" is ticked).
    quiet_rows: int = 0
    totals_note: str = ""

    @property
    def count_text(self) -> str:
        """What the row counter says before any filter (report.js words it the same way)."""
        if not self.quiet_rows:
            return f"{plural(self.shown, 'row')} shown"
        return f"{self.shown - self.quiet_rows:,} of {plural(self.shown, 'row')} shown"

    @property
    def starts_page(self) -> bool:
        """In print, a long table starts a page of its own; a short one runs on after the last."""
        return self.shown - self.quiet_rows > _SHORT_TABLE_ROWS

    @property
    def show_all_label(self) -> str:
        return f"Show all rows ({self.quiet_rows:,} hidden: nothing to act on)"


def render_html(ctx: ReportContext, charts: ChartsBeside | None = None) -> str:
    """The report as one HTML document with no external reference; same context, same text."""
    env = make_environment(ctx)
    folder = templates_dir()
    css = (folder / "report.css").read_text(encoding="utf-8")
    script = (folder / "report.js").read_text(encoding="utf-8")
    # A hash-based script-src lets exactly this script run and nothing else.
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    page = {
        "title": ctx.title,
        "as_of": format_prose_date(ctx.as_of, ctx.date_order),
        "period": (
            f"{format_prose_date(ctx.period_start, ctx.date_order)} to "
            f"{format_prose_date(ctx.period_end, ctx.date_order)}"
        ),
        "generated_at": ctx.generated_at,
        "csp": csp,
        "css": Markup(css),
        "script": Markup(script),
    }
    used_ids: set[str] = set()
    kinds = []
    code_col = ctx.findings.frame["code"]
    # Grouped by kind, each table's heading says the finding: its code and title columns go.
    finding_columns = [c for c in ctx.findings.columns if c.key not in ("code", "finding")]
    for kind in ctx.finding_kinds:
        # Read by Arrow, not taken (`arrow_text.rows_at`): findings name ids of the exports.
        frame = rows_at(ctx.findings.frame, np.flatnonzero((code_col == kind.code).to_numpy()))
        view = _table_view(
            ctx,
            ctx.findings,
            frame,
            _unique_id(f"findings-{kind.code}", used_ids),
            columns=finding_columns,
            title=kind.title,
        )
        kinds.append(
            {
                "code": kind.code,
                "title": kind.title,
                "count": plural(kind.count, "finding"),
                "show": "Show the finding"
                if kind.count == 1
                else f"Show the {kind.count:,} findings",
                "severity": kind.severity,
                "severity_label": _SEVERITY_LABEL.get(kind.severity, kind.severity.title()),
                "explanation": kind.explanation,
                "what_to_do": kind.what_to_do,
                "table": view,
            }
        )
    tables = [
        _table_view(ctx, t, t.frame, _unique_id(t.key, used_ids)) for t in ctx.tables if t.html
    ]
    cards = [
        {
            "label": h.label,
            "value": format_cell(h.value, h.kind, ctx.date_order, ctx.currency_symbol),
            "tone": h.tone,
            "detail": h.detail,
        }
        for h in ctx.headlines
    ]
    return env.get_template("base.html.j2").render(
        page=page,
        cards=cards,
        charts=_charts(ctx, _drawn(ctx, charts)),
        kinds=kinds,
        total_findings=plural(sum(k.count for k in ctx.finding_kinds), "finding"),
        tables=tables,
        skipped=list(ctx.skipped),
        unchecked=ctx.unchecked,
        inputs=[_input_view(i) for i in ctx.inputs],
        settings=list(ctx.settings),
    )


def _input_view(item: dict[str, object]) -> dict[str, str]:
    rows = item.get("rows")
    return {
        "file": str(item.get("file", "")),
        "kind": str(item.get("kind", "")),
        "rows": format_cell(rows, "int"),
        "sha256": str(item.get("sha256", "")),
    }


def _unique_id(base: str, used: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-") or "table"
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate


def page_columns(columns: list[Column] | tuple[Column, ...]) -> list[Column]:
    """The columns a page shows, for the reader: the figures first, secondary ones after."""
    shown = [c for c in columns if c.html]
    return [c for c in shown if not c.secondary] + [c for c in shown if c.secondary]


def _shown_frame(table: Table, frame: Any, max_rows: int) -> Any:
    """The rows the page holds: all of them up to the cap, the ones needing attention first.

    A few rows of a long table: their text read by Arrow, not taken (`arrow_text.rows_at`), as the
    page is rendered while the workbook's forked process shares this one's pages."""
    if len(frame) <= max_rows:
        return frame
    if table.attention is None:
        return rows_at(frame, np.arange(max_rows))
    needs = frame[table.attention].fillna(False).to_numpy(dtype=bool)
    first = np.flatnonzero(needs)[:max_rows]
    rest = np.flatnonzero(~needs)[: max_rows - len(first)]
    return rows_at(frame, np.concatenate([first, rest]))


def _flags(frame: Any, column: str | None, default: bool) -> list[bool]:
    if column is None:
        return [default] * len(frame)
    flags = frame[column]
    if flags.dtype == bool:  # numpy's bools: no blank among them, Python bools from tolist()
        return flags.to_numpy().tolist()
    return [False if is_blank(v) else bool(v) for v in flags.tolist()]


def _is_long(column: Column) -> bool:
    # A text column given a wide workbook width holds sentences; they wrap on the page too.
    return column.kind == "text" and (column.width or 0) >= _LONG_TEXT_WIDTH


def _column_texts(frame: Any, column: Column, order: str, symbol: str) -> list[str]:
    values = frame[column.key].tolist()
    if column.kind == "int" and not column.grouped:
        return [format_int(v, grouped=False) for v in values]
    return format_column(values, column.kind, order, symbol)


def _table_view(
    ctx: ReportContext,
    table: Table,
    frame: Any,
    table_id: str,
    *,
    columns: list[Column] | None = None,
    title: str | None = None,
) -> TableView:
    cols = page_columns(columns if columns is not None else table.columns)
    order, symbol = ctx.date_order, ctx.currency_symbol
    total_rows = len(frame)
    shown_frame = _shown_frame(table, frame, ctx.max_rows)
    # Column-wise formatting: one pass per column, then zip into rows.
    texts = [_column_texts(shown_frame, c, order, symbol) for c in cols]
    # Text sorts by what is shown; only values whose text doesn't sort right carry a key.
    sorts = [
        sort_keys(shown_frame[c.key].tolist(), c.kind) if c.kind not in ("text", "id") else None
        for c in cols
    ]
    flags = _flags(shown_frame, table.highlight, False)
    attention = _flags(shown_frame, table.attention, True)
    views = [
        ColumnView(c.title, c.kind, c.kind in _NUMERIC_KINDS, c.secondary, _is_long(c))
        for c in cols
    ]
    body = _body(texts, sorts, [v.css for v in views], flags, attention)
    totals = _totals(frame, cols, order, symbol) if table.total_row and total_rows else None
    shown, quiet = len(shown_frame), attention.count(False)
    capped, totals_note = _notes(
        table,
        shown,
        total_rows,
        quiet,
        totals is not None,
        workbook_attention_only(table, ctx.workbook_all_rows_max),
    )
    return TableView(
        id=table_id,
        title=title if title is not None else table.title,
        description=table.description if title is None else "",
        note=(table.note or "") if title is None else "",
        columns=views,
        body=body,
        totals=totals,
        shown=shown,
        total_rows=total_rows,
        capped_note=capped,
        has_flag=table.highlight is not None,
        quiet_rows=quiet,
        totals_note=totals_note,
    )


# A row's opening tag by (highlighted, needs attention): a row needing no attention is hidden.
_ROW_OPEN = {
    (False, True): "<tr>\n",
    (True, True): '<tr class="flagged">\n',
    (False, False): '<tr class="quiet" hidden>\n',
    (True, False): '<tr class="flagged" hidden>\n',
}
# Joins a column's texts so that they are escaped by one call; a column holding it is escaped
# cell by cell instead.
_SEPARATOR = "\x00"


def _body(
    texts: list[list[str]],
    sorts: list[list[str] | None],
    css: list[str],
    flags: list[bool],
    attention: list[bool],
) -> Markup:
    """The table's rows as HTML, escaped exactly as the template escapes a value.

    Built here rather than by a template loop: a page holds up to 1,000 rows per table (7,000
    findings at a million appointments, 230,000 cells), and a template call per cell cost more
    than everything else on the page. Every row is `<tr>`, one `<td>` per line, `</tr>`; a cell
    carries its column's classes and, for numbers and dates, its sort key.
    """
    cells = [
        _cells(column, keys, classes)
        for column, keys, classes in zip(texts, sorts, css, strict=True)
    ]
    rows = zip(*cells, strict=True) if cells else [()] * len(flags)
    html = [
        _ROW_OPEN[flagged, needs] + "".join(row) + "</tr>\n"
        for row, flagged, needs in zip(rows, flags, attention, strict=True)
    ]
    return Markup("".join(html))


def _cells(texts: list[str], sorts: list[str] | None, css: str) -> list[str]:
    """One column's `<td>` elements, each on a line of its own."""
    start = f'<td class="{escape(css)}"' if css else "<td"
    shown = _escaped(texts)
    if sorts is None:
        return [f"{start}>{text}</td>\n" for text in shown]
    return [
        f'{start} data-sort="{key}">{text}</td>\n'
        for key, text in zip(_escaped(sorts), shown, strict=True)
    ]


def _escaped(values: list[str]) -> list[str]:
    """Each value escaped for HTML, as `markupsafe.escape` (the template's autoescape) does."""
    if not values:
        return []
    joined = _SEPARATOR.join(values)
    if joined.count(_SEPARATOR) != len(values) - 1:
        return [str(escape(value)) for value in values]
    return str(escape(joined)).split(_SEPARATOR)


def _totals(frame: Any, cols: list[Column], order: str, symbol: str) -> list[str]:
    """The footer: every summed column's total over all the rows (shown or not), "Total" first."""
    totals = []
    for j, c in enumerate(cols):
        if c.summed:
            totals.append(format_cell(_column_total(frame[c.key]), c.kind, order, symbol))
        else:
            totals.append("Total" if j == 0 else "")
    return totals


def _column_total(column: Any) -> int:
    """The exact sum of a column's values, blanks left out, as a Python int."""
    values = column.dropna().to_numpy()
    if values.dtype.kind == "i" and len(values):
        # numpy adds int64 exactly while no partial sum can leave its range: n * max |value|.
        largest = max(abs(int(values.max())), abs(int(values.min())))
        if largest * len(values) < 2**63:
            return int(values.sum())
    # Python ints: exact, whatever the size (an int column's tolist() gives ints).
    return sum(map(int, values.tolist()))


def _notes(
    table: Table, shown: int, total_rows: int, quiet: int, has_totals: bool, workbook_capped: bool
) -> tuple[str, str]:
    """What the page says under a table it caps, and under totals that count hidden rows."""
    capped = ""
    if shown < total_rows:
        first = ", those that need attention first" if table.attention is not None else ""
        where = (
            f'the CSV from "{table.all_rows_in} <exports folder>"'
            if workbook_capped
            else "the workbook"
        )
        capped = (
            f"The page holds {shown:,} of {total_rows:,} rows{first} — see {where} for all of them."
        )
    totals_note = ""
    if has_totals and (quiet or shown < total_rows):
        totals_note = f"The totals add up all {plural(total_rows, 'row')}, shown or not."
    return capped, totals_note


def _drawn(ctx: ReportContext, charts: ChartsBeside | None) -> dict[str, str]:
    """The charts as SVG by name: from the process drawing them beside this one, or drawn here."""
    if charts is not None:
        return charts.drawn()
    from pkgreport.reports.charts import draw_charts

    return draw_charts(ctx.charts, ctx.currency_symbol)


def _charts(ctx: ReportContext, drawn: dict[str, str]) -> list[dict[str, Any]]:
    """The charts drawn for this report, each with its title and a caption that explains it."""
    data, symbol = ctx.charts, ctx.currency_symbol
    captions = {"ageing": "How long patients' credit has been held."}
    if data.utilisation:
        limited = sum(count for _, count in data.utilisation)
        captions["utilisation"] = (
            f"How much of each package has been used ({plural(limited, 'case')} with a maximum)."
        )
        if data.unlimited:
            captions["utilisation"] += (
                f" {plural(data.unlimited, 'case')} with no maximum (unlimited) "
                "counted apart, in grey."
            )
    if data.rollforward:
        first = data.rollforward[0]
        captions["rollforward"] = (
            f"Credit created, applied and refunded each month from {first.label}, "
            "and the liability left at each month end; it stood at "
            f"{format_money(first.opening, symbol)} when {first.label} began."
        )
    return [
        {"title": CHART_TITLES[name], "caption": captions[name], "svg": Markup(svg)}
        for name, svg in drawn.items()
    ]
