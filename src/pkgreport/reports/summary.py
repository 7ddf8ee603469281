"""The machine-readable run summary (`pkgreport-<as-of>.json`): settings, inputs, totals, findings."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from pkgreport import __version__
from pkgreport.engine.findings import findings_by_code
from pkgreport.pipeline import RunResult
from pkgreport.tabular import format_cents

SUMMARY_FORMAT = 1


def _int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[arg-type]


def _money(cents: int | None) -> dict[str, Any]:
    return {"cents": cents, "amount": None if cents is None else format_cents(cents)}


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
        "sheet": s.sheet,
    }


def _frame_digest(frame: pd.DataFrame | None) -> str:
    """Content hash of a frame's rows, ignoring provenance and row order."""
    if frame is None or frame.empty:
        return hashlib.sha256(b"").hexdigest()
    body = frame.drop(columns=["source_file", "source_row"], errors="ignore")
    hashed = pd.util.hash_pandas_object(body, index=False).sort_values(kind="mergesort")
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def period_figures(result: RunResult) -> dict[str, dict[str, Any]]:
    """Per calendar month: invoiced and received totals and a digest of that month's records.

    A later run whose figures for an already-reported month differ means an invoice or payment
    of a closed period was edited or deleted after it was reported.
    """
    ds = result.dataset
    months: dict[str, dict[str, Any]] = {}
    sources = (("invoices", ds.invoices, "issue_date", "total"), ("payments", ds.payments, "paid_at", "amount"))
    for name, frame, date_col, amount_col in sources:
        if frame is None:
            continue
        keys = frame[date_col].dt.strftime("%Y-%m")
        for month, part in frame.groupby(keys, sort=True):
            live = part
            if "deleted_at" in part:
                live = part[part["deleted_at"].isna() & part["archived_at"].isna()]
            entry = months.setdefault(str(month), {})
            entry[f"{name}_count"] = int(len(live))
            entry[f"{name}_total_cents"] = int(live[amount_col].sum())
            entry[f"{name}_digest"] = _frame_digest(part)
    return dict(sorted(months.items()))


def build_summary(result: RunResult, *, title: str, generated_at: str | None,
                  changes: dict[str, Any] | None = None) -> dict[str, Any]:
    ds = result.dataset
    findings = result.findings
    credit_total = (
        int(result.credit.patients["credit"].clip(lower=0).sum()) if result.credit is not None else None
    )
    open_total = (
        int(result.credit.patients["open_outstanding"].sum()) if result.credit is not None else None
    )
    package_total = (
        int(result.packages["undelivered"].sum()) if result.packages is not None else None
    )
    counts: dict[str, int | None] = {
        kind: (None if getattr(ds, kind) is None else int(len(getattr(ds, kind))))
        for kind in ("appointments", "cases", "invoices", "payments", "allocations", "patients")
    }
    if result.cases is not None:
        statuses = result.cases.cases["status"].value_counts()
        counts["cases_over_booked"] = int(statuses.get("over-booked", 0))
        counts["cases_expired"] = int(statuses.get("expired", 0))
    if result.credit is not None:
        counts["patients_with_credit"] = int((result.credit.patients["credit"] > 0).sum())
    counts["findings"] = int(len(findings))
    counts["warnings"] = sum(1 for i in ds.issues if i.severity == "warning")
    counts["excluded_rows"] = int(len(ds.excluded))
    roll = None
    if result.rollforward is not None:
        total = result.rollforward.iloc[-1]
        roll = {k: _money(_int(total[k])) for k in ("opening", "created", "applied", "refunded", "closing")}
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "pkgreport_version": __version__,
        "title": title,
        "generated_at": generated_at,
        "settings": settings_record(result),
        "inputs": [
            {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256,
             "encoding": f.encoding, "delimiter": f.delimiter, "sheet": f.sheet}
            for f in ds.files
        ],
        "counts": counts,
        "totals": {
            "credit_liability": _money(credit_total),
            "open_invoices_outstanding": _money(open_total),
            "package_value_undelivered": _money(package_total),
            "rollforward": roll,
        },
        "skipped_sections": dict(sorted(result.skipped.items())),
        "findings_by_code": dict(findings_by_code(findings)),
        "findings": [
            {
                "code": r.code,
                "severity": r.severity,
                "patient_id": r.patient_id,
                "subject_type": r.subject_type,
                "subject_id": r.subject_id,
                "amount": _money(_int(r.amount)),
                "appointment_ids": r.appointment_ids,
                "message": r.message,
                "source_file": r.source_file,
                "source_row": _int(r.source_row),
            }
            for r in findings.itertuples(index=False)
        ],
        "period_figures": period_figures(result),
    }
    if changes is not None:
        summary["changes_since_last_run"] = changes
    return summary


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
