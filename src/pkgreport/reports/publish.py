"""Render every output of a run in memory, then write them all atomically (all or nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pkgreport.pipeline import RunResult
from pkgreport.reports.atomic import write_all_atomic
from pkgreport.reports.context import build_context
from pkgreport.reports.excel import render_workbook
from pkgreport.reports.html import render_html
from pkgreport.reports.summary import build_summary, summary_json


def output_names(result: RunResult) -> dict[str, str]:
    stem = f"pkgreport-{result.as_of.isoformat()}"
    return {"xlsx": f"{stem}.xlsx", "html": f"{stem}.html", "json": f"{stem}.json"}


def render_outputs(
    result: RunResult,
    *,
    title: str | None = None,
    generated_at: str | None = None,
    changes: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """File name -> bytes for the workbook, the HTML report and the JSON summary."""
    title = title or result.settings.title
    if summary is None:
        summary = build_summary(result, title=title, generated_at=generated_at, changes=changes)
    ctx = build_context(result, title=title, generated_at=generated_at, changes=changes)
    names = output_names(result)
    return {
        names["xlsx"]: render_workbook(ctx),
        names["html"]: render_html(ctx).encode("utf-8"),
        names["json"]: summary_json(summary).encode("utf-8"),
    }


def write_all(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    """Write every output into `out_dir` all or nothing (see `write_all_atomic`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_all_atomic({out_dir / name: data for name, data in files.items()})
