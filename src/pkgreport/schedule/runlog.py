"""A scheduled run: lock the output folder, compute, compare with history, write reports and a log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pkgreport import __version__, pipeline
from pkgreport.atomic import write_atomic
from pkgreport.config import Settings
from pkgreport.errors import InputError, Issue
from pkgreport.inputs.discovery import kind_of
from pkgreport.reports.chart_process import ChartsBeside
from pkgreport.reports.publish import output_names, render_outputs, write_all
from pkgreport.reports.summary import build_summary, summary_json
from pkgreport.result import OWN_OUTPUT_PREFIX, Dataset
from pkgreport.schedule import history
from pkgreport.schedule.runlock import output_lock


@dataclass
class Outcome:
    written: list[Path]
    headline: str
    failed_on: dict[str, int]
    log_path: Path
    history_path: Path | None
    lines: list[str] = field(default_factory=list)


class _Log:
    """Collects the run log; it is operational (timings vary) and is not a report output."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.lines.append(f"[{time.perf_counter() - self.started:8.2f}s] {message}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def run_scheduled(
    settings: Settings,
    *,
    generated_at: str | None,
    progress: Callable[[str], None],
    lock_wait: float,
    charts: ChartsBeside | None = None,
) -> Outcome:
    """One scheduled run under the output folder's lock; `charts` as for `render_outputs`."""
    assert settings.output_dir is not None
    out_dir = settings.output_dir
    log = _Log()

    def note(message: str) -> None:
        log(message)
        progress(message)

    with output_lock(out_dir, wait_seconds=lock_wait):
        note(f"pkgreport {__version__}: input {settings.input_dir}, output {out_dir}")
        note(
            f"settings: timezone {settings.timezone}, date order {settings.date_order}, "
            f"allocation {settings.allocation}, as of {settings.as_of or 'from the data'}, "
            f"period {settings.period_start or '-'} to {settings.period_end or '-'}"
        )
        entries = history.list_history(out_dir)
        try:
            result = _computed_unless_shrunk(settings, entries, note, log)
        except InputError as exc:
            for issue in exc.issues:
                log(str(issue))
            stem = (
                f"{OWN_OUTPUT_PREFIX}{settings.as_of.isoformat() if settings.as_of else 'failed'}"
            )
            name = f"{stem}.log"
            log(f"stopped: {exc}")
            write_atomic(out_dir / name, log.text())
            raise
        for f in result.dataset.files:
            log(f"read {f.name}: {f.kind}, {f.rows} rows, sha256 {f.sha256}")
        for stage, seconds in result.timings.items():
            log(f"timing {stage}: {seconds:.3f} s")
        title = settings.title
        plain = build_summary(result, title=title, generated_at=generated_at)
        current = history.fingerprint(plain)
        previous = history.baseline(entries, current)
        changes = history.diff_summaries(previous, plain)
        older = history.older_history_note(previous, plain)
        if older is not None:
            note(older)
        full = {**plain, "changes_since_last_run": changes}
        files = render_outputs(
            result,
            title=title,
            generated_at=generated_at,
            changes=changes,
            summary=full,
            charts=charts,
        )
        written = write_all(out_dir, files, output_names(result)["manifest"])
        for path in written:
            log(f"wrote {path.name} ({path.stat().st_size} bytes)")
        entry = history.record(out_dir, full, summary_json(full), entries)
        if entry is None:
            log("nothing changed since the last run: no new history entry")
        else:
            log(f"history: {entry.relative_to(out_dir)}")
        counts = result.findings["code"].value_counts() if len(result.findings) else {}
        failed_on = {code: int(counts[code]) for code in settings.fail_on if code in counts}
        headline = (
            f"as of {result.as_of.isoformat()}: {len(result.findings)} finding(s), "
            f"{len(changes['new_findings'])} new, {len(changes['resolved_findings'])} resolved"
        )
        log(headline)
        if failed_on:
            log("fail-on findings: " + ", ".join(f"{k} x{v}" for k, v in failed_on.items()))
        log_path = out_dir / output_names(result)["xlsx"].replace(".xlsx", ".log")
        write_atomic(log_path, log.text())
    return Outcome(written, headline, failed_on, log_path, entry, log.lines)


SHRINK_ADVICE = (
    "is the export folder half-copied, or an export cut short? Put the full exports in the "
    "folder and run again; if the clinic really has less, run with --allow-shrink "
    "(allow_shrink = true in the config file)"
)


def _computed_unless_shrunk(
    settings: Settings,
    entries: list[history.HistoryEntry],
    note: Callable[[str], None],
    log: Callable[[str], None],
) -> pipeline.RunResult:
    """`pipeline.run`, with the shrink check between loading and validation's verdict: a
    half-copied folder is reported as that, not as the hundreds of errors it also causes."""
    started = time.perf_counter()
    dataset = pipeline.load_dataset(settings, note)
    load_seconds = time.perf_counter() - started
    _refuse_shrunken_inputs(dataset, entries, settings, log)
    pipeline.require_clean(dataset)
    result = pipeline.compute(dataset, settings, note)
    result.timings["load+validate"] = load_seconds
    return result


def _refuse_shrunken_inputs(
    dataset: Dataset,
    entries: list[history.HistoryEntry],
    settings: Settings,
    log: Callable[[str], None],
) -> None:
    """Stop before anything is published when the inputs shrank since the last recorded run.

    A folder with no export at all is already an error of its own ("no exports found"), and a
    kind whose file could not be read is not "missing": its own errors say why. Any other
    errors are listed after what shrank, which is most often their cause.
    """
    if not entries or not dataset.files:
        return
    errors = [i for i in dataset.issues if i.severity == "error"]
    unread = {kind_of(Path(i.file)) for i in errors} - {f.kind for f in dataset.files}
    shrunk = [
        (where, what)
        for kind, where, what in history.shrunk_inputs(
            entries[-1].load(), dataset.files, settings.shrink_threshold
        )
        if kind not in unread
    ]
    if settings.allow_shrink:
        for where, what in shrunk:
            log(f"allowed by allow_shrink: {where}: {what}")
        return
    if shrunk:
        problems = [
            Issue("error", where, None, None, None, f"{what}: {SHRINK_ADVICE}")
            for where, what in shrunk
        ] + errors
        raise InputError(
            f"the inputs shrank since the last run, so nothing was published and the previous "
            f"reports are untouched ({len(problems)} problem(s))",
            problems,
        )
