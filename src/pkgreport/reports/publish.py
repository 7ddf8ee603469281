"""Render every output of a run in memory, then publish them as one set (all or nothing)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from pathlib import Path
from typing import Any

from pkgreport.atomic import (
    make_folder,
    remove_stale_temporaries,
    write_all_atomic,
    writing,
)
from pkgreport.memory import release_freed_memory
from pkgreport.reports.chart_process import ChartsBeside
from pkgreport.reports.context import (
    BREAKDOWN_TABLES,
    build_context,
    no_breakdowns,
    with_breakdowns,
)
from pkgreport.reports.model import ReportContext
from pkgreport.reports.second_process import Beside, Handover
from pkgreport.reports.summary import build_summary, summary_json
from pkgreport.result import OWN_OUTPUT_PREFIX, RunResult, report_set_names

# Fewer rows than this in the engines' tables behind the report's (`_table_rows`), and the
# workbook is rendered by the charts' process when there is one (it imported the writer while
# this process read), else here: starting a third process would cost more than it saves (see
# the README's benchmarks).
SECOND_PROCESS_MIN_ROWS = 5_000


def output_names(result: RunResult) -> dict[str, str]:
    return report_set_names(f"{OWN_OUTPUT_PREFIX}{result.as_of.isoformat()}")


def render_outputs(
    result: RunResult,
    *,
    title: str | None = None,
    generated_at: str | None = None,
    changes: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    charts: ChartsBeside | None = None,
) -> dict[str, bytes]:
    """File name -> bytes for the workbook, the HTML report and the JSON summary.

    `charts`, a process started before the exports were read (`ChartsBeside`), draws the page's
    charts, and renders the workbook of a small run; without it they are made here.
    """
    title = title or result.settings.title
    names = output_names(result)
    options: dict[str, Any] = {"title": title, "generated_at": generated_at, "changes": changes}
    # A second process renders the workbook while this one renders the page and the summary,
    # once there are enough rows to pay for starting it. It is forked first: it builds its own
    # report context, without the figures per location, and writes every sheet it can, while
    # this one works those figures out and hands them over; each process then has its
    # context built on its own core, and neither waits for the other to build it.
    handover = Handover()
    fork = _table_rows(result) >= SECOND_PROCESS_MIN_ROWS
    by_charts = not fork and charts is not None and charts.started
    with Beside(lambda: _workbook_beside(result, options, handover), fork=fork) as workbook:
        if workbook.started:
            handover.parent_side()
        else:
            handover.close()
        handover.send(result.breakdowns)
        page, text = _page_and_summary(result, options, summary, workbook, charts, by_charts)
        if workbook.started:
            release_freed_memory()  # the context's, before waiting for the second process
        # The manifest is written by `write_all`, last, from the bytes actually published.
        book = charts.workbook() if charts is not None and by_charts else workbook.result()
        return {names["xlsx"]: book, names["html"]: page, names["json"]: text}


def _page_and_summary(
    result: RunResult,
    options: dict[str, Any],
    summary: dict[str, Any] | None,
    workbook: Beside,
    charts: ChartsBeside | None,
    by_charts: bool,
) -> tuple[bytes, bytes]:
    """The page and the JSON summary, rendered here while the workbook is rendered beside (by a
    second process, or the charts' process on a small run, each sent what it needs at once).

    With a second process rendering the workbook, this process holds at once only what one of
    its outputs needs: the summary is rendered first and its dict let go, then the page's
    context is built and the page rendered, and that context goes before waiting for the
    process; the memory each step let go (and the figures per location before them) is given
    back to the system. Should the process fail, the workbook is rendered here from a context
    built again (the same bytes)."""
    text = None
    if workbook.started:
        release_freed_memory()  # what working out the figures per location let go
        text = _summary_text(result, options, summary)
        release_freed_memory()
    ctx = build_context(result, **options)
    if workbook.started:
        # Built again should the process fail: this copy goes before the wait.
        workbook.fall_back_to(lambda: _workbook(build_context(result, **options)))
    else:
        workbook.fall_back_to(functools.partial(_workbook, ctx))
    if charts is not None:
        charts.send(ctx.charts, ctx.currency_symbol, workbook=ctx if by_charts else None)
    # Imported here, after the fork: each process imports only the writer it uses, at once.
    from pkgreport.reports.html import render_html

    if text is None:
        text = _summary_text(result, options, summary)
    return render_html(ctx, charts).encode("utf-8"), text


def _summary_text(
    result: RunResult, options: dict[str, Any], summary: dict[str, Any] | None
) -> bytes:
    """The JSON summary's bytes: of `summary` when given, else of the one built here."""
    if summary is None:
        summary = build_summary(result, **options)
    return summary_json(summary).encode("utf-8")


def _table_rows(result: RunResult) -> int:
    """The rows of the engines' tables behind the report's (known before those are built)."""
    frames = (
        result.findings,
        None if result.cases is None else result.cases.cases,
        None if result.credit is None else result.credit.patients,
        result.ageing,
        result.rollforward,
        result.packages,
    )
    return sum(len(frame) for frame in frames if frame is not None)


def _workbook(ctx: ReportContext) -> bytes:
    from pkgreport.reports.excel import render_workbook

    return render_workbook(ctx)


def _workbook_beside(result: RunResult, options: dict[str, Any], handover: Handover) -> bytes:
    """The workbook as the second process renders it: its own report context without the
    figures per location, every sheet and number it can, and the sheets before those per
    location, until their figures arrive from the first process; then the rest (the same bytes
    as rendered in one go)."""
    from pkgreport.reports.excel import WorkbookInProgress, cyclic_gc_paused

    handover.child_side()
    with cyclic_gc_paused():
        started = build_context(result, **options, breakdowns=no_breakdowns())
        book = WorkbookInProgress(started)
        book.write_ahead(started, deferred=frozenset(BREAKDOWN_TABLES))
        release_freed_memory()  # what building the context let go, while the figures come
        return book.finish(with_breakdowns(started, result, handover.receive()))


def write_all(out_dir: Path, files: dict[str, bytes], manifest: str) -> list[Path]:
    """Publish the outputs as one set: every file whole, then the manifest that vouches for them.

    Each file is staged beside its target first (a failure leaves the previous set as it was);
    the previous manifest is removed before the first rename and the new one renamed into place
    after the last, so a run killed between renames leaves no manifest claiming a mixed set.
    Temporary files of earlier killed runs are removed. Returns the paths written, manifest last.
    """
    make_folder(out_dir)
    remove_stale_temporaries(out_dir, f".{OWN_OUTPUT_PREFIX}")
    manifest_path = out_dir / manifest
    targets: dict[Path, bytes | str] = {out_dir / name: data for name, data in files.items()}

    def withdraw_previous_manifest() -> None:
        with writing(manifest_path), contextlib.suppress(FileNotFoundError):
            manifest_path.unlink()

    # The manifest comes last in the dict, so it is renamed into place last.
    return write_all_atomic(
        {**targets, manifest_path: manifest_text(files)}, before_renames=withdraw_previous_manifest
    )


def manifest_text(files: dict[str, bytes]) -> str:
    """The manifest of a set of outputs: a `sha256sum` line per file, so `sha256sum -c` checks a
    set without pkgreport (no clock: a re-run on the same inputs writes the same bytes)."""
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    )
