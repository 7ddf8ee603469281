"""The group's HTML page: totals, the clinics not computed, the clinics' table and chart, and
the findings across the group. Rendered from the group summary alone; no script, no URL."""

from __future__ import annotations

from datetime import date
from typing import Any

import jinja2
from markupsafe import Markup

from pkgreport.errors import Issue
from pkgreport.group.summary import FIGURE_TITLES, MONEY_FIGURES, SEVERITIES
from pkgreport.reports.charts import clinic_liability_chart
from pkgreport.reports.filters import (
    css_string,
    format_money,
    format_prose_date,
    plural,
)
from pkgreport.reports.html import templates_dir

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
CLINIC_COLUMNS = [
    "Clinic",
    "As of",
    *(FIGURE_TITLES[k] for k in (*MONEY_FIGURES, "cases_over_booked")),
    *(f"{s.title()} findings" for s in SEVERITIES),
]
FINDING_COLUMNS = ["Clinic", "Severity", "Finding", "Patient", "Subject", "Amount", "What it is"]
# Issues listed per clinic not computed; the group JSON holds them all.
ISSUES_SHOWN = 50


def _money(record: dict[str, Any] | None) -> str:
    cents = None if record is None else record["cents"]
    return "n/a" if cents is None else format_money(cents)


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _day(text: str | None, order: str) -> str:
    return "" if text is None else format_prose_date(date.fromisoformat(text), order)


def _clinic_row(clinic: dict[str, Any], order: str) -> list[dict[str, str | None]]:
    href = f"{clinic['name']}/" + next(r for r in clinic["reports"] if r.endswith(".html"))
    cells: list[dict[str, str | None]] = [
        {"text": clinic["name"], "href": href},
        {"text": _day(clinic["as_of"], order)},
    ]
    cells += [{"text": _money(clinic[key])} for key in MONEY_FIGURES]
    cells.append({"text": _count(clinic["cases_over_booked"])})
    cells += [{"text": _count(clinic["findings_by_severity"][s])} for s in SEVERITIES]
    return cells


def _cards(totals: dict[str, Any]) -> list[dict[str, str]]:
    cards = [
        {"label": FIGURE_TITLES[key], "value": _money(totals[key]), "tone": "ok", "detail": ""}
        for key in MONEY_FIGURES
    ]
    over = totals["cases_over_booked"]
    cards.append(
        {
            "label": FIGURE_TITLES["cases_over_booked"],
            "value": _count(over),
            "tone": "bad" if over else "ok",
            "detail": "",
        }
    )
    by_severity = totals["findings_by_severity"]
    cards.append(
        {
            "label": "Findings",
            "value": f"{sum(by_severity.values()):,}",
            "tone": "bad" if by_severity["high"] else "warn" if any(by_severity.values()) else "ok",
            "detail": ", ".join(f"{by_severity[s]:,} {s}" for s in SEVERITIES),
        }
    )
    return cards


def _failed(clinic: dict[str, Any]) -> dict[str, Any]:
    issues = [str(Issue(**issue)) for issue in clinic["issues"]]
    more = len(issues) - ISSUES_SHOWN
    return {
        "name": clinic["name"],
        "problem": clinic["problem"],
        "issues": issues[:ISSUES_SHOWN],
        "more": f"... and {more:,} more: the group JSON summary lists them all" if more > 0 else "",
    }


def _finding_cells(row: dict[str, Any]) -> list[str]:
    amount = row["amount"]["cents"]
    return [
        row["clinic"],
        row["severity"].title(),
        row["title"],
        row["patient_id"],
        f"{row['subject_type']} {row['subject_id']}",
        "" if amount is None else format_money(amount),
        row["message"],
    ]


def render_group_html(summary: dict[str, Any], *, date_order: str, max_rows: int) -> str:
    """The group page; same summary, same text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    computed = [c for c in summary["clinics"] if c["computed"]]
    findings = summary["findings"]
    dates = summary["clinic_as_of_dates"]
    page = {
        "title": summary["title"],
        "meta": f"As of {_day(summary['as_of'], date_order)}"
        + ("" if len(dates) < 2 else " (the clinics' data end on different days: see each)"),
        "scope": f"{plural(len(computed), 'clinic')} computed of {len(summary['clinics']):,}.",
        "generated_at": summary["generated_at"],
        "csp": CSP,
        "css": Markup((templates_dir() / "report.css").read_text(encoding="utf-8")),
    }
    totals = summary["totals"]
    total_row = ["Total", ""] + [_money(totals[k]) for k in MONEY_FIGURES]
    total_row += [_count(totals["cases_over_booked"])]
    total_row += [f"{totals['findings_by_severity'][s]:,}" for s in SEVERITIES]
    shown = findings[:max_rows]
    findings_note = f"{plural(len(findings), 'finding')}, most serious first, the clinic named."
    if len(findings) > len(shown):
        findings_note += (
            f" The first {len(shown):,} are shown; the group workbook and JSON hold them all."
        )
    liabilities = [
        (c["name"], c["credit_liability"]["cents"])
        for c in computed
        if c["credit_liability"]["cents"] is not None
    ]
    chart = clinic_liability_chart(liabilities, "Credit liability by clinic") if liabilities else ""
    return env.get_template("group.html.j2").render(
        page=page,
        cards=_cards(totals),
        failed=[_failed(c) for c in summary["clinics"] if not c["computed"]],
        clinic_columns=CLINIC_COLUMNS,
        clinic_rows=[_clinic_row(c, date_order) for c in computed],
        total_row=total_row,
        chart=Markup(chart),
        finding_columns=FINDING_COLUMNS,
        findings=[{"severity": r["severity"], "cells": _finding_cells(r)} for r in shown],
        findings_note=findings_note,
    )
