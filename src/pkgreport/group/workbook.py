"""The group workbook: Clinics (headline figures and totals), Findings, Not computed; through
xlsxwriter's public API, with a fixed creation time so the same summary gives the same bytes."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from typing import Any

import xlsxwriter

from pkgreport.group.summary import FIGURE_TITLES, MONEY_FIGURES, SEVERITIES
from pkgreport.reports.excel import fit_wrapped_row, set_up_printing
from pkgreport.reports.filters import (
    excel_date_format,
    excel_money_format,
    format_prose_date,
)

MESSAGE_WIDTH = 80  # characters: the findings' and issues' sentences, wrapped

# Key, header and column width (characters) of the Findings sheet; the finding's title and its
# sentence wrap within their width.
FINDING_HEADERS = [
    ("clinic", "Clinic", 14),
    ("severity", "Severity", 9),
    ("code", "Code", 28),
    ("title", "Finding", 28),
    ("patient_id", "Patient", 12),
    ("subject_type", "Subject type", 12),
    ("subject_id", "Subject", 14),
    ("amount", "Amount", 12),
    ("message", "What it is and what to do", MESSAGE_WIDTH),
    ("source_file", "File", 34),
    ("source_row", "Row", 7),
]
WRAPPED = ("title", "message")
ISSUE_HEADERS = ["Clinic", "Problem", "Severity", "File", "Row", "Column", "Value", "Message"]


class _Formats:
    """The cell formats the group workbook shares between its sheets."""

    def __init__(self, workbook: Any, date_order: str) -> None:
        self.money = workbook.add_format({"num_format": excel_money_format(), "valign": "top"})
        self.date = workbook.add_format({"num_format": excel_date_format(date_order)})
        self.top = workbook.add_format({"valign": "top"})
        self.header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})


def render_group_workbook(summary: dict[str, Any], *, date_order: str) -> bytes:
    """The group workbook: Clinics, Findings and (when a clinic failed) Not computed."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    as_of = summary["as_of"]
    created = datetime.combine(date.fromisoformat(as_of), time(0, 0))
    workbook.set_properties(
        {"title": summary["title"], "comments": "Written by pkgreport", "created": created}
    )
    formats = _Formats(workbook, date_order)
    sheets = [(workbook.add_worksheet("Clinics"), 2)]
    _write_clinics(sheets[0][0], summary, formats)
    sheets.append((workbook.add_worksheet("Findings"), 0))
    _write_findings(sheets[-1][0], summary["findings"], formats)
    failed = [c for c in summary["clinics"] if not c["computed"]]
    if failed:
        sheets.append((workbook.add_worksheet("Not computed"), 0))
        _write_not_computed(sheets[-1][0], failed, formats)
    as_of_text = format_prose_date(date.fromisoformat(as_of), date_order)
    for sheet, header_row in sheets:
        set_up_printing(sheet, summary["title"], as_of_text, header_row=header_row)
    workbook.close()
    return buffer.getvalue()


def _put(sheet: Any, row: int, col: int, value: Any, formats: _Formats, fmt: Any = None) -> None:
    """One cell: money from its cents record (exact cents / 100 only at the cell), dates,
    counts, text."""
    if isinstance(value, dict):
        value = value["cents"]
        if value is not None:
            sheet.write_number(row, col, value / 100, formats.money)  # the cell's display value
        return
    if isinstance(value, date):
        sheet.write_datetime(row, col, datetime.combine(value, time(0, 0)), formats.date)
        return
    if value is None:
        return
    if isinstance(value, int):
        sheet.write_number(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(value), fmt)


def _write_clinics(sheet: Any, summary: dict[str, Any], formats: _Formats) -> None:
    keys = [*MONEY_FIGURES, "cases_over_booked"]
    headers = ["Clinic", "As of", *(FIGURE_TITLES[k] for k in keys)]
    headers += [f"{s.title()} findings" for s in SEVERITIES]
    sheet.write_string(0, 0, summary["title"])
    computed = [c for c in summary["clinics"] if c["computed"]]
    for number, clinic in enumerate(computed, start=3):
        as_of = date.fromisoformat(clinic["as_of"])
        values = [clinic["name"], as_of, *(clinic[k] for k in keys)]
        values += [clinic["findings_by_severity"][s] for s in SEVERITIES]
        for col, value in enumerate(values):
            _put(sheet, number, col, value, formats)
    totals = summary["totals"]
    last = 3 + len(computed)
    total_values = ["Total", "", *(totals[k] for k in keys)]
    total_values += [totals["findings_by_severity"][s] for s in SEVERITIES]
    for col, value in enumerate(total_values):
        _put(sheet, last, col, value, formats)
    sheet.add_table(
        2,
        0,
        max(last - 1, 3),
        len(headers) - 1,
        {
            "name": "Clinics",
            "columns": [{"header": h, "header_format": formats.header} for h in headers],
            "autofilter": False,
        },
    )
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, len(headers) - 1, 16)
    sheet.set_row(2, 30)  # two lines of header: "Package value undelivered" wraps


def _write_findings(sheet: Any, findings: list[dict[str, Any]], formats: _Formats) -> None:
    for number, finding in enumerate(findings, start=1):
        for col, (key, _, _) in enumerate(FINDING_HEADERS):
            fmt = formats.wrap if key in WRAPPED else formats.top
            _put(sheet, number, col, finding[key], formats, fmt)
        fit_wrapped_row(sheet, number, finding["message"], MESSAGE_WIDTH)
    sheet.add_table(
        0,
        0,
        max(len(findings), 1),
        len(FINDING_HEADERS) - 1,
        {"name": "Findings", "columns": [{"header": title} for _, title, _ in FINDING_HEADERS]},
    )
    for col, (_, _, width) in enumerate(FINDING_HEADERS):
        sheet.set_column(col, col, width)


def _write_not_computed(sheet: Any, failed: list[dict[str, Any]], formats: _Formats) -> None:
    number = 0
    for clinic in failed:
        for issue in clinic["issues"] or [{}]:
            number += 1
            values = [clinic["name"], clinic["problem"]]
            values += [issue.get(k) for k in ("severity", "file", "row", "column", "value")]
            values.append(issue.get("message"))
            for col, value in enumerate(values):
                _put(sheet, number, col, value, formats, formats.wrap)
            fit_wrapped_row(sheet, number, str(values[-1] or ""), MESSAGE_WIDTH)
    sheet.add_table(
        0,
        0,
        number,
        len(ISSUE_HEADERS) - 1,
        {"name": "NotComputed", "columns": [{"header": h} for h in ISSUE_HEADERS]},
    )
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 1, 60)
    sheet.set_column(7, 7, MESSAGE_WIDTH)
