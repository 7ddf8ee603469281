"""Run history: identical runs add nothing; the diff names new/resolved findings and moved months."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pkgreport.schedule.history import (
    baseline,
    diff_summaries,
    fingerprint,
    list_history,
    older_history_note,
    record,
)


def summary(as_of: str, findings: list[tuple[str, str]], months: dict[str, int]) -> dict[str, Any]:
    return {
        "format": 1,
        "generated_at": None,
        "settings": {"as_of": as_of, "period_from": as_of[:8] + "01", "period_to": as_of},
        "findings": [
            {"code": code, "subject_type": "case", "subject_id": sid, "message": f"{code} {sid}"}
            for code, sid in findings
        ],
        "period_figures": {
            m: {"invoices_count": 1, "invoices_total_cents": total, "invoices_digest": str(total)}
            for m, total in months.items()
        },
    }


def test_fingerprint_ignores_volatile_keys() -> None:
    a = summary("2026-10-31", [], {})
    b = copy.deepcopy(a)
    b["generated_at"] = "2026-11-01 06:00"
    b["changes_since_last_run"] = {"x": 1}
    assert fingerprint(a) == fingerprint(b)
    b["findings"].append({"code": "X", "subject_type": "case", "subject_id": "1", "message": ""})
    assert fingerprint(a) != fingerprint(b)


def test_record_skips_identical_runs_and_baseline_skips_them_too(tmp_path: Path) -> None:
    oct_ = summary("2026-10-31", [("OVER_BOOKED", "c1")], {"2026-10": 100})
    nov = summary("2026-11-30", [("DORMANT_CREDIT", "p9")], {"2026-10": 100, "2026-11": 50})
    first = record(tmp_path, oct_, json.dumps(oct_), list_history(tmp_path))
    assert first is not None and first.name.startswith("0001-2026-10-31-")
    assert record(tmp_path, oct_, json.dumps(oct_), list_history(tmp_path)) is None
    second = record(tmp_path, nov, json.dumps(nov), list_history(tmp_path))
    assert second is not None and second.name.startswith("0002-2026-11-30-")
    entries = list_history(tmp_path)
    assert [e.sequence for e in entries] == [1, 2]
    # Re-running November compares with October, not with the identical November entry.
    assert baseline(entries, fingerprint(nov)) == oct_
    assert baseline(entries[:1], fingerprint(oct_)) is None


def test_diff_names_new_resolved_and_moved_closed_months() -> None:
    prev = summary(
        "2026-10-31",
        [("OVER_BOOKED", "c1"), ("UNAPPLIED_CREDIT", "p1")],
        {"2026-09": 500, "2026-10": 100},
    )
    cur = summary(
        "2026-11-30",
        [("UNAPPLIED_CREDIT", "p1"), ("OVER_BOOKED", "c2"), ("DORMANT_CREDIT", "p3")],
        {"2026-09": 500, "2026-10": 90, "2026-11": 40},
    )
    diff = diff_summaries(prev, cur)
    assert diff["previous"] == {
        "as_of": "2026-10-31",
        "period_from": "2026-10-01",
        "period_to": "2026-10-31",
    }
    assert [(f["code"], f["subject_id"]) for f in diff["new_findings"]] == [
        ("DORMANT_CREDIT", "p3"),
        ("OVER_BOOKED", "c2"),
    ]
    assert [(f["code"], f["subject_id"]) for f in diff["resolved_findings"]] == [
        ("OVER_BOOKED", "c1")
    ]
    assert diff["became_over_booked"] == ["c2"]
    assert diff["became_dormant"] == ["p3"]
    # October was reported as closed and moved; November is new, September unchanged.
    assert [m["month"] for m in diff["moved_periods"]] == ["2026-10"]
    assert diff["moved_periods"][0]["invoices_total_before"] == 100
    assert diff["moved_periods"][0]["invoices_total_after"] == 90
    assert diff["moved_periods"][0]["changed"] == ["invoices"]


def test_first_run_has_nothing_to_compare() -> None:
    diff = diff_summaries(None, summary("2026-10-31", [("OVER_BOOKED", "c1")], {}))
    assert diff["previous"] is None and diff["new_findings"] == []


def test_a_month_whose_records_all_went_counts_zero_records_at_zero_dollars() -> None:
    # A re-export in which October's invoices are gone: the month is absent from the new figures.
    prev = summary("2026-10-31", [], {"2026-09": 500, "2026-10": 100})
    cur = summary("2026-11-30", [], {"2026-09": 500})
    [moved] = diff_summaries(prev, cur)["moved_periods"]
    assert moved == {
        "month": "2026-10",
        "changed": ["invoices"],
        "invoices_total_before": 100,
        "invoices_total_after": 0,
        "invoices_count_before": 1,
        "invoices_count_after": 0,
        "payments_total_before": 0,
        "payments_total_after": 0,
        "payments_count_before": 0,
        "payments_count_after": 0,
    }


def test_a_summary_of_an_older_format_is_compared_by_count_and_total_and_the_log_says_so() -> None:
    # The same October records, digested the old way (format 1) and the SHA-256 way (format 2).
    prev = summary("2026-10-31", [], {"2026-10": 100})
    cur = summary("2026-11-30", [], {"2026-10": 100, "2026-11": 40})
    cur["format"] = 2
    cur["period_figures"]["2026-10"]["invoices_digest"] = "a different digest"
    assert diff_summaries(prev, cur)["moved_periods"] == []
    assert older_history_note(prev, cur) == (
        "the last run (as of 2026-10-31) was recorded by an older version of pkgreport (summary "
        "format 1, this one writes 2): closed months are compared by their count and total this "
        "time, not by their records' digest; from the next run on, digests are compared again "
        "(nothing to do)"
    )
    # Between summaries of one format a changed digest alone moves the month.
    prev["format"] = 2
    assert [m["month"] for m in diff_summaries(prev, cur)["moved_periods"]] == ["2026-10"]
    assert older_history_note(prev, cur) is None
    assert older_history_note(None, cur) is None
