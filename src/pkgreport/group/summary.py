"""The group's figures, built from each clinic's own JSON summary, so the two always tie.

The group JSON (`pkgreport-group-<as-of>.json`) is this record; the page and the workbook
render it. Totals are sums of the clinics' own integer cents, to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pkgreport import __version__
from pkgreport.engine.registry import FINDINGS, SEVERITY_RANK
from pkgreport.group.runner import ClinicOutcome
from pkgreport.result import OWN_OUTPUT_PREFIX, report_set_names
from pkgreport.tabular import money_record

GROUP_FORMAT = 1
GROUP_STEM = f"{OWN_OUTPUT_PREFIX}group-"
SEVERITIES = tuple(SEVERITY_RANK)
# The headline money of each clinic, as its own summary's `totals` names them.
MONEY_FIGURES = ("credit_liability", "open_invoices_outstanding", "package_value_undelivered")
FIGURE_TITLES = {
    "credit_liability": "Credit liability",
    "open_invoices_outstanding": "Open invoices",
    "package_value_undelivered": "Package value undelivered",
    "cases_over_booked": "Over-booked packages",
}


def _cents(record: dict[str, Any] | None) -> int | None:
    return None if record is None else record.get("cents")


def clinic_record(outcome: ClinicOutcome) -> dict[str, Any]:
    """One clinic's row: its headline figures from its own summary, or why it was not computed."""
    if outcome.summary is None:
        return {
            "name": outcome.name,
            "computed": False,
            "problem": outcome.problem,
            "issues": [issue.as_dict() for issue in outcome.issues],
        }
    summary = outcome.summary
    severities = dict.fromkeys(SEVERITIES, 0)
    for finding in summary["findings"]:
        severities[finding["severity"]] += 1
    return {
        "name": outcome.name,
        "computed": True,
        "as_of": summary["settings"]["as_of"],
        "reports": sorted([*outcome.files, outcome.manifest]),
        **{key: summary["totals"][key] for key in MONEY_FIGURES},
        "cases_over_booked": summary["counts"].get("cases_over_booked"),
        "findings_by_severity": severities,
    }


def _total(records: list[dict[str, Any]], key: str) -> int | None:
    """The sum over the clinics that have the figure; None when none has it."""
    values = [r[key] for r in records]
    present = [_cents(v) if isinstance(v, dict) else v for v in values]
    known = [v for v in present if v is not None]
    return sum(known) if known else None


def group_findings(outcomes: Sequence[ClinicOutcome]) -> list[dict[str, Any]]:
    """Every clinic's findings, the clinic named, most serious first (then clinic, then as each
    clinic's report lists them)."""
    rows = [
        {"clinic": outcome.name, "title": FINDINGS[f["code"]].title, **f}
        for outcome in outcomes
        if outcome.summary is not None
        for f in outcome.summary["findings"]
    ]
    # A stable sort keeps each clinic's own order within a severity.
    return sorted(rows, key=lambda row: SEVERITY_RANK[row["severity"]])


def group_as_of(outcomes: Sequence[ClinicOutcome]) -> str | None:
    """The latest as-of date of the clinics computed (each clinic keeps its own)."""
    dates = [o.summary["settings"]["as_of"] for o in outcomes if o.summary is not None]
    return max(dates) if dates else None


def build_group_summary(
    outcomes: Sequence[ClinicOutcome], *, title: str, generated_at: str | None
) -> dict[str, Any]:
    clinics = [clinic_record(o) for o in outcomes]
    computed = [c for c in clinics if c["computed"]]
    totals: dict[str, Any] = {key: money_record(_total(computed, key)) for key in MONEY_FIGURES}
    totals["cases_over_booked"] = _total(computed, "cases_over_booked")
    totals["findings_by_severity"] = {
        s: sum(c["findings_by_severity"][s] for c in computed) for s in SEVERITIES
    }
    as_of_dates = sorted({c["as_of"] for c in computed})
    return {
        "format": GROUP_FORMAT,
        "pkgreport_version": __version__,
        "title": title,
        "generated_at": generated_at,
        "as_of": group_as_of(outcomes),
        # More than one date when the clinics' data end on different days (no --as-of given).
        "clinic_as_of_dates": as_of_dates,
        "clinics_computed": len(computed),
        "clinics_not_computed": [c["name"] for c in clinics if not c["computed"]],
        "clinics": clinics,
        "totals": totals,
        "findings": group_findings(outcomes),
    }


def with_prose_dates(findings: list[dict[str, Any]], date_order: str) -> list[dict[str, Any]]:
    """The findings with their sentences' ISO dates in prose ("17 Aug 2026 12:00")."""
    from pkgreport.reports.filters import prose_dates

    return [{**f, "message": prose_dates(f["message"], date_order)} for f in findings]


def group_output_names(as_of: str) -> dict[str, str]:
    return report_set_names(f"{GROUP_STEM}{as_of}")


def summary_bytes(summary: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
