"""The group workbook: Clinics (headline figures and totals), Findings, Not computed; through
xlsxwriter's public API, with a fixed creation time so the same summary gives the same bytes."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from typing import Any

import xlsxwriter

from pkgreport.group.summary import FIGURE_TITLES, MONEY_FIGURES, SEVERITIES
from pkgreport.reports.filters import excel_money_format, prose_dates

FINDING_HEADERS = [
    ("clinic", "Clinic"),
    ("severity", "Severity"),
    ("code", "Code"),
    ("title", "Finding"),
    ("patient_id", "Patient"),
    ("subject_type", "Subject type"),
    ("subject_id", "Subject"),
    ("amount", "Amount"),
    ("message", "What it is and what to do"),
    ("source_file", "File"),
    ("source_row", "Row"),
]
ISSUE_HEADERS = ["Clinic", "Problem", "Severity", "File", "Row", "Column", "Value", "Message"]


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
    money = workbook.add_format({"num_format": excel_money_format()})
    _write_clinics(workbook.add_worksheet("Clinics"), summary, money)
    findings = [  # finding sentences as the clinics' own workbooks word them
        {**f, "message": prose_dates(f["message"], date_order)} for f in summary["findings"]
    ]
    _write_findings(workbook.add_worksheet("Findings"), findings, money)
    failed = [c for c in summary["clinics"] if not c["computed"]]
    if failed:
        _write_not_computed(workbook.add_worksheet("Not computed"), failed)
    workbook.close()
    return buffer.getvalue()


def _put(sheet: Any, row: int, col: int, value: Any, money: Any = None) -> None:
    """One cell: money from its cents record (exact cents / 100 only at the cell), counts, text."""
    if isinstance(value, dict):
        value = value["cents"]
        if value is not None:
            sheet.write_number(row, col, value / 100, money)  # the cell's display value
        return
    if value is None:
        return
    if isinstance(value, int):
        sheet.write_number(row, col, value)
    else:
        sheet.write_string(row, col, str(value))


def _write_clinics(sheet: Any, summary: dict[str, Any], money: Any) -> None:
    keys = [*MONEY_FIGURES, "cases_over_booked"]
    headers = ["Clinic", "As of", *(FIGURE_TITLES[k] for k in keys)]
    headers += [f"{s.title()} findings" for s in SEVERITIES]
    sheet.write_string(0, 0, summary["title"])
    computed = [c for c in summary["clinics"] if c["computed"]]
    for number, clinic in enumerate(computed, start=3):
        values = [clinic["name"], clinic["as_of"], *(clinic[k] for k in keys)]
        values += [clinic["findings_by_severity"][s] for s in SEVERITIES]
        for col, value in enumerate(values):
            _put(sheet, number, col, value, money)
    totals = summary["totals"]
    last = 3 + len(computed)
    total_values = ["Total", "", *(totals[k] for k in keys)]
    total_values += [totals["findings_by_severity"][s] for s in SEVERITIES]
    for col, value in enumerate(total_values):
        _put(sheet, last, col, value, money)
    sheet.add_table(
        2,
        0,
        max(last - 1, 3),
        len(headers) - 1,
        {"name": "Clinics", "columns": [{"header": h} for h in headers], "autofilter": False},
    )
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, len(headers) - 1, 16)


def _write_findings(sheet: Any, findings: list[dict[str, Any]], money: Any) -> None:
    for number, finding in enumerate(findings, start=1):
        for col, (key, _) in enumerate(FINDING_HEADERS):
            _put(sheet, number, col, finding[key], money)
    sheet.add_table(
        0,
        0,
        max(len(findings), 1),
        len(FINDING_HEADERS) - 1,
        {"name": "Findings", "columns": [{"header": title} for _, title in FINDING_HEADERS]},
    )
    sheet.set_column(0, 7, 14)
    sheet.set_column(8, 8, 80)


def _write_not_computed(sheet: Any, failed: list[dict[str, Any]]) -> None:
    number = 0
    for clinic in failed:
        for issue in clinic["issues"] or [{}]:
            number += 1
            values = [clinic["name"], clinic["problem"]]
            values += [issue.get(k) for k in ("severity", "file", "row", "column", "value")]
            values.append(issue.get("message"))
            for col, value in enumerate(values):
                _put(sheet, number, col, value)
    sheet.add_table(
        0,
        0,
        number,
        len(ISSUE_HEADERS) - 1,
        {"name": "NotComputed", "columns": [{"header": h} for h in ISSUE_HEADERS]},
    )
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 1, 60)
    sheet.set_column(7, 7, 80)
