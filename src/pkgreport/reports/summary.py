"""The machine-readable run summary (`pkgreport-<as-of>.json`): settings, inputs, totals, findings."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from pkgreport import __version__
from pkgreport.arrow_text import texts_at
from pkgreport.columns import is_money
from pkgreport.engine.findings import FINDING_COLUMNS, findings_by_code
from pkgreport.engine.liability import credit_liability
from pkgreport.reports.context import LOCATION_RULE
from pkgreport.reports.month_digest import DIGESTED_KINDS, dated_months, kind_digests
from pkgreport.result import RunResult, checks_not_run, excluded_rows
from pkgreport.tabular import money_record

# 2: the months' digests are SHA-256 over canonical bytes (`month_digest`); 1: pandas' row
# hashes. History compares digests only between summaries of the same format.
SUMMARY_FORMAT = 2


def _int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def settings_record(result: RunResult) -> dict[str, Any]:
    """The settings that decide the figures (paths reduced to names so machines agree)."""
    s = result.settings
    return {
        "as_of": result.as_of.isoformat(),
        "as_of_source": result.as_of_source,
        "period_from": result.period_start.isoformat(),
        "period_to": result.period_end.isoformat(),
        "timezone": s.timezone,
        "date_order": s.date_order,
        "allocation": s.allocation,
        "credit_applies": s.credit_applies,
        "dormant_days": s.dormant_days,
        "nearly_used_up": s.nearly_used_up,
        "ageing_buckets": list(s.ageing_buckets),
        "columns": s.columns_file.name if s.columns_file else None,
        "source": s.source,
        "sheet": s.sheet,
    }


def period_figures(result: RunResult) -> dict[str, dict[str, Any]]:
    """Per calendar month: invoiced and received totals and a digest of that month's records.

    A later run whose figures for an already-reported month differ means an invoice or payment
    of a closed period was edited or deleted after it was reported. The digest covers every
    record of the month, live or not; the count and total only the live ones.
    """
    ds = result.dataset
    months: dict[str, dict[str, Any]] = {}
    # Worked out beside the engines (`month_digest.DigestsBeside`), else here.
    beside = result.month_digests
    for name, amount_col in (("invoices", "total"), ("payments", "amount")):
        frame = getattr(ds, name)
        if frame is None or frame.empty:
            continue
        totals = _live_month_totals(frame, DIGESTED_KINDS[name][0], amount_col)
        digests = beside[name] if beside is not None else kind_digests(frame, name)
        for key_month in sorted(digests):
            count, total = totals.get(int(key_month), (0, 0))
            entry = months.setdefault(str(np.datetime64(key_month, "M")), {})
            entry[f"{name}_count"] = count
            entry[f"{name}_total_cents"] = total
            entry[f"{name}_digest"] = digests[key_month]
    return dict(sorted(months.items()))


# Rows totalled at a time by `_live_month_totals`: its arrays then take a few MB at a million
# rows where whole columns' took about 50 MB, beside the workbook's process at the run's peak.
_MONTH_ROWS = 1 << 17


def _live_month_totals(
    frame: pd.DataFrame, date_column: str, amount_column: str
) -> dict[int, tuple[int, int]]:
    """Month (as `dated_months` numbers it) -> the count and total cents of its live rows (not
    deleted or archived) with a date, a slice of rows at a time."""
    found: dict[int, tuple[int, int]] = {}
    for start in range(0, len(frame), _MONTH_ROWS):
        part = frame.iloc[start : start + _MONTH_ROWS]
        rows, month = dated_months(part, date_column)
        if "deleted_at" in part:
            live = part["deleted_at"].isna().to_numpy() & part["archived_at"].isna().to_numpy()
            rows = rows[live[rows]]
        amount = part[amount_column].to_numpy(dtype=np.int64)[rows]
        month = month[rows]
        for key in np.unique(month).tolist():
            members = month == key
            count, total = found.get(key, (0, 0))
            found[key] = (count + int(members.sum()), total + int(amount[members].sum()))
    return found


# ----------------------------------------------------------------- by location (issue 13)


def breakdown_record(result: RunResult) -> dict[str, Any]:
    """The figures per business and per practitioner, as the page and workbook show them."""

    def rows(frame: pd.DataFrame, key: str) -> list[dict[str, Any]]:
        out = []
        for record in frame.to_dict("records"):
            row: dict[str, Any] = {key: record.pop(key)}
            for name, value in record.items():
                amount = _int(value)
                row[name] = money_record(amount) if is_money(name, frame[name]) else amount
            out.append(row)
        return out

    locations, practitioners = result.breakdowns
    return {
        "rule": LOCATION_RULE,
        "locations": rows(locations, "business"),
        "practitioners": rows(practitioners, "practitioner"),
    }


# ------------------------------------------------------------- end of by location (issue 13)


def _counts(result: RunResult) -> dict[str, int | None]:
    """Rows per input kind (None when the file is missing), then case, credit and finding counts."""
    ds = result.dataset
    counts: dict[str, int | None] = {
        kind: (None if getattr(ds, kind) is None else len(getattr(ds, kind)))
        for kind in ("appointments", "cases", "invoices", "payments", "allocations", "patients")
    }
    if result.cases is not None:
        statuses = result.cases.cases["status"].value_counts()
        counts["cases_over_booked"] = int(statuses.get("over-booked", 0))
        counts["cases_expired"] = int(statuses.get("expired", 0))
    if result.credit is not None:
        counts["patients_with_credit"] = int((result.credit.patients["credit"] > 0).sum())
    counts["findings"] = len(result.findings)
    counts["warnings"] = sum(1 for i in ds.issues if i.severity == "warning")
    counts["excluded_rows"] = len(excluded_rows(result))
    return counts


def _totals(result: RunResult) -> dict[str, Any]:
    """The money totals: credit liability and its make-up, open invoices, packages, roll-forward."""
    liability = credit_liability(result.credit.patients["credit"]) if result.credit else None
    open_total = (
        int(result.credit.patients["open_outstanding"].sum()) if result.credit is not None else None
    )
    package_total = (
        int(result.packages["undelivered"].sum()) if result.packages is not None else None
    )
    roll = None
    if result.rollforward is not None:
        total = result.rollforward.iloc[-1]
        roll = {
            k: money_record(_int(total[k]))
            for k in ("opening", "created", "applied", "refunded", "closing")
        }
    return {
        # One definition (engine/liability.py): the signed sum of the balances, equal to
        # the roll-forward's closing; how it is made up is stated beside it.
        "credit_liability": money_record(None if liability is None else liability.total),
        "credit_liability_made_up_of": None
        if liability is None
        else {
            "owed_to_patients": money_record(liability.owed),
            "patients_owed": liability.patients_owed,
            "negative_balances": money_record(liability.negative),
            "patients_negative": liability.patients_negative,
        },
        "open_invoices_outstanding": money_record(open_total),
        "package_value_undelivered": money_record(package_total),
        "rollforward": roll,
    }


def build_summary(
    result: RunResult,
    *,
    title: str,
    generated_at: str | None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ds = result.dataset
    findings = result.findings
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "pkgreport_version": __version__,
        "title": title,
        "generated_at": generated_at,
        "settings": settings_record(result),
        "inputs": [
            {
                "file": f.name,
                "kind": f.kind,
                "rows": f.rows,
                "sha256": f.sha256,
                "encoding": f.encoding,
                "delimiter": f.delimiter,
                "sheet": f.sheet,
            }
            for f in ds.files
        ],
        "counts": _counts(result),
        "totals": _totals(result),
        "by_location": breakdown_record(result),
        "skipped_sections": dict(sorted(result.skipped.items())),
        # Finding codes that could not be checked (their inputs are missing) and why.
        "checks_not_run": checks_not_run(result),
        "invoice_links": {
            "by_appointment_id": result.links.by_id,
            "by_invoice_number": len(result.links.by_number),
        },
        "findings_by_code": dict(findings_by_code(findings)),
        "findings": findings_records(findings),
        "period_figures": period_figures(result),
    }
    if changes is not None:
        summary["changes_since_last_run"] = changes
    return summary


# A finding's keys in the summary, in order (the findings frame's columns); all but the amount
# and the row are the column's value.
_FINDING_KEYS = tuple(FINDING_COLUMNS)


def findings_records(findings: pd.DataFrame) -> list[dict[str, Any]]:
    """The findings as the summary lists them, a column at a time (thousands at scale): the
    amounts and row numbers as `_int` makes them, each distinct amount's record made once."""
    amounts = _int_column(findings["amount"])
    money = {cents: money_record(cents) for cents in set(amounts)}
    converted: dict[str, Any] = {
        "amount": [dict(money[cents]) for cents in amounts],
        "source_row": _int_column(findings["source_row"]),
    }
    columns = [
        converted[key] if key in converted else _values(findings[key]) for key in _FINDING_KEYS
    ]
    return [dict(zip(_FINDING_KEYS, row, strict=True)) for row in zip(*columns, strict=True)]


def _values(column: pd.Series) -> Any:
    """A column's values; text read by Arrow, not taken (`arrow_text.texts_at`): the findings name
    ids of the exports, whose pages the workbook's forked process shares with this one."""
    if column.dtype != object:
        return column
    return texts_at(column.to_numpy(), np.arange(len(column)))


def _int_column(column: pd.Series) -> list[int | None]:
    """`_int` of each value of a column; a signed integer column's converted at once."""
    if column.dtype.kind != "i":
        return [_int(value) for value in column]
    blank = column.isna().to_numpy().tolist()
    values = column.fillna(0).to_numpy(dtype=np.int64).tolist()
    return [None if missing else value for value, missing in zip(values, blank, strict=True)]


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
