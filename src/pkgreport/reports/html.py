"""The self-contained HTML report: Jinja2 templates fed with pre-formatted view data."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
from markupsafe import Markup

from pkgreport.reports import charts
from pkgreport.reports.filters import (
    filters_for,
    format_cell,
    format_column,
    format_date,
    is_blank,
    plural,
    sort_keys,
)
from pkgreport.reports.model import Column, ReportContext, Table

_NUMERIC_KINDS = frozenset({"money", "int", "percent"})
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


class Cell(NamedTuple):
    """One table cell (a tuple: a table holds thousands, built much faster than dataclasses)."""

    text: str
    sort: str | None
    num: bool


@dataclass(frozen=True)
class RowView:
    cells: list[Cell]
    flagged: bool


@dataclass(frozen=True)
class ColumnView:
    title: str
    kind: str
    numeric: bool


@dataclass(frozen=True)
class TableView:
    id: str
    title: str
    description: str
    note: str
    columns: list[ColumnView]
    rows: list[RowView]
    totals: list[str] | None
    shown: int
    total_rows: int
    capped_note: str
    has_flag: bool


def render_html(ctx: ReportContext) -> str:
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
        "as_of": format_date(ctx.as_of, ctx.date_order),
        "period": (
            f"{format_date(ctx.period_start, ctx.date_order)} to "
            f"{format_date(ctx.period_end, ctx.date_order)}"
        ),
        "generated_at": ctx.generated_at,
        "csp": csp,
        "css": Markup(css),
        "script": Markup(script),
    }
    used_ids: set[str] = set()
    kinds = []
    code_col = ctx.findings.frame["code"]
    finding_columns = [c for c in ctx.findings.columns if c.key != "code"]
    for kind in ctx.finding_kinds:
        frame = ctx.findings.frame[code_col == kind.code]
        view = _table_view(
            ctx, ctx.findings, frame, _unique_id(f"findings-{kind.code}", used_ids),
            columns=finding_columns, title=kind.title,
        )
        kinds.append(
            {
                "code": kind.code,
                "title": kind.title,
                "count": plural(kind.count, "finding"),
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
        charts=_charts(ctx),
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


def _table_view(
    ctx: ReportContext,
    table: Table,
    frame: Any,
    table_id: str,
    *,
    columns: list[Column] | None = None,
    title: str | None = None,
) -> TableView:
    cols = list(columns if columns is not None else table.columns)
    order, symbol = ctx.date_order, ctx.currency_symbol
    total_rows = len(frame)
    shown_frame = frame.iloc[: ctx.max_rows]
    # Column-wise formatting: one pass per column, then zip into rows.
    texts = [format_column(shown_frame[c.key].tolist(), c.kind, order, symbol) for c in cols]
    # Text sorts by what is shown; only values whose text doesn't sort right carry a key.
    sorts = [
        sort_keys(shown_frame[c.key].tolist(), c.kind)
        if c.kind not in ("text", "id")
        else [None] * len(shown_frame)
        for c in cols
    ]
    if table.highlight is not None:
        flags = [False if is_blank(v) else bool(v) for v in shown_frame[table.highlight].tolist()]
    else:
        flags = [False] * len(shown_frame)
    numeric = [c.kind in _NUMERIC_KINDS for c in cols]
    rows = [
        RowView(list(map(Cell, row_texts, row_sorts, numeric)), flag)
        for row_texts, row_sorts, flag in zip(zip(*texts), zip(*sorts), flags)
    ]
    totals = None
    if table.total_row and total_rows:
        totals = []
        for j, c in enumerate(cols):
            if c.summed:
                values = frame[c.key].dropna().to_numpy().tolist()
                # Python ints: exact, no int64 overflow (an int column's tolist() gives ints).
                amount = sum(map(int, values))
                totals.append(format_cell(amount, c.kind, order, symbol))
            else:
                totals.append("Total" if j == 0 else "")
    shown = len(shown_frame)
    capped = ""
    if shown < total_rows:
        capped = f"Showing {shown:,} of {total_rows:,} rows — see the workbook for all of them."
    return TableView(
        id=table_id,
        title=title if title is not None else table.title,
        description=table.description if title is None else "",
        note=(table.note or "") if title is None else "",
        columns=[ColumnView(c.title, c.kind, c.kind in _NUMERIC_KINDS) for c in cols],
        rows=rows,
        totals=totals,
        shown=shown,
        total_rows=total_rows,
        capped_note=capped,
        has_flag=table.highlight is not None,
    )


def _charts(ctx: ReportContext) -> list[dict[str, Any]]:
    out = []
    data, symbol = ctx.charts, ctx.currency_symbol
    if data.ageing:
        title = "Unapplied credit by age"
        out.append({"title": title, "caption": "How long patients' credit has been held.",
                    "svg": Markup(charts.ageing_chart(data.ageing, title, symbol))})
    if data.utilisation:
        title = "Case utilisation"
        out.append({"title": title, "caption": "How much of each package has been used.",
                    "svg": Markup(charts.utilisation_chart(data.utilisation, title))})
    if data.rollforward:
        title = "Monthly credit liability roll-forward"
        out.append({"title": title,
                    "caption": "Credit created, applied and refunded each month, and the "
                               "liability left at each month end.",
                    "svg": Markup(charts.rollforward_chart(data.rollforward, title, symbol))})
    return out
