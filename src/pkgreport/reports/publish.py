"""Render every output of a run in memory, then write them all atomically (all or nothing)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pkgreport.pipeline import RunResult
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
    """Write every file to a temporary name in `out_dir`, then rename them all into place.

    If anything fails before the renames, no output file is created or changed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            staged.append((name, Path(tmp)))
        written = []
        for name, tmp in staged:
            target = out_dir / name
            os.replace(tmp, target)
            written.append(target)
        return written
    finally:
        for _, tmp in staged:
            if tmp.exists():
                tmp.unlink()
