"""What `report --group` and `run --config` with `[[clinic]]` tables do: compute every clinic
(serially, on a LocalCluster or on a scheduler), write each one's reports under
`<output>/<clinic>/`, then the group report; exit 1 when any clinic was not computed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from pkgreport.config import Settings
from pkgreport.errors import ExitCode, UsageError
from pkgreport.group.clinics import Clinic, clinics_from_tables, read_group
from pkgreport.group.runner import ClinicOutcome, Progress, run_serially
from pkgreport.group.summary import (
    build_group_summary,
    group_output_names,
    summary_bytes,
    with_prose_dates,
)

Echo = Callable[[str], None]
# Issues printed per clinic not computed; the group report lists them all.
ISSUES_PRINTED = 5


@dataclass(frozen=True)
class Fanout:
    """Where the clinics run: in this process (no Dask), on a new LocalCluster of `workers`
    processes, or on the Dask scheduler at `scheduler`; one clinic split into `partitions`."""

    workers: int | None = None
    scheduler: str | None = None
    partitions: int = 1

    @property
    def on_dask(self) -> bool:
        return self.workers is not None or self.scheduler is not None or self.partitions > 1

    def check(self) -> None:
        from pkgreport.group.cluster import require_dask

        if self.workers is not None and self.scheduler is not None:
            raise UsageError(
                "--workers and --scheduler cannot go together: --workers starts a cluster on "
                "this machine, --scheduler uses one already running; give one of them"
            )
        if self.on_dask:
            option = (
                "--workers" if self.workers else "--scheduler" if self.scheduler else "--partitions"
            )
            require_dask(option)


@dataclass
class GroupRun:
    """What a group run did, for the command to print and exit on."""

    outcomes: list[ClinicOutcome]
    written: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[ClinicOutcome]:
        return [o for o in self.outcomes if not o.computed]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.DATA_NEEDS_FIXING if self.failed else ExitCode.DONE


def compute_clinics(
    clinics: Sequence[Clinic], fanout: Fanout, generated_at: str | None, progress: Progress
) -> list[ClinicOutcome]:
    if not fanout.on_dask:
        return run_serially(clinics, generated_at, progress)
    from pkgreport.group.cluster import dask_client, run_on_dask

    with dask_client(fanout.workers or 1, fanout.scheduler) as client:
        return run_on_dask(client, clinics, generated_at, progress, fanout.partitions)


def write_group(
    outcomes: Sequence[ClinicOutcome],
    output_dir: Path,
    *,
    title: str,
    generated_at: str | None,
    date_order: str,
    html_max_rows: int,
) -> list[Path]:
    """Each computed clinic's set under `<output>/<clinic>/`, then the group's set (none when no
    clinic was computed: there is nothing to total)."""
    from pkgreport.group.page import render_group_html
    from pkgreport.group.workbook import render_group_workbook
    from pkgreport.reports.publish import write_all

    written: list[Path] = []
    for outcome in outcomes:
        if outcome.computed:
            written += write_all(output_dir / outcome.name, outcome.files, outcome.manifest)
    summary = build_group_summary(outcomes, title=title, generated_at=generated_at)
    if summary["as_of"] is None:
        return written
    names = group_output_names(summary["as_of"])
    # The page and the workbook word finding dates as the clinics' own reports do; JSON keeps ISO.
    readable = {**summary, "findings": with_prose_dates(summary["findings"], date_order)}
    files = {
        names["xlsx"]: render_group_workbook(readable, date_order=date_order),
        names["html"]: render_group_html(
            readable, date_order=date_order, max_rows=html_max_rows
        ).encode("utf-8"),
        names["json"]: summary_bytes(summary),
    }
    return written + write_all(output_dir, files, names["manifest"])


def run_group(
    clinics: Sequence[Clinic],
    output_dir: Path,
    fanout: Fanout,
    *,
    title: str,
    generated_at: str | None,
    date_order: str,
    html_max_rows: int,
    progress: Progress,
) -> GroupRun:
    fanout.check()
    outcomes = compute_clinics(clinics, fanout, generated_at, progress)
    written = write_group(
        outcomes,
        output_dir,
        title=title,
        generated_at=generated_at,
        date_order=date_order,
        html_max_rows=html_max_rows,
    )
    return GroupRun(outcomes, written)


def tell_failures(run: GroupRun, echo: Echo) -> None:
    """Each clinic not computed, named, with its first issues (stderr)."""
    for outcome in run.failed:
        echo(f"clinic {outcome.name} not computed: {outcome.problem}")
        for issue in outcome.issues[:ISSUES_PRINTED]:
            echo(f"  {issue}")
        if len(outcome.issues) > ISSUES_PRINTED:
            echo(
                f"  ... and {len(outcome.issues) - ISSUES_PRINTED} more (the group report lists "
                "them all)"
            )
    if run.failed:
        computed = len(run.outcomes) - len(run.failed)
        echo(
            f"{len(run.failed)} of {len(run.outcomes)} clinic(s) not computed; the reports of "
            f"the other {computed} were written"
        )


def _publish_and_tell(run: GroupRun, quiet: bool) -> int:
    if not quiet:
        for path in run.written:
            click.echo(str(path))
    tell_failures(run, lambda message: click.echo(message, err=True))
    return int(run.exit_code)


def _progress(quiet: bool) -> Progress:
    from pkgreport.cli import _progress as progress_for

    return progress_for(quiet)


def report_command(
    group: Path | None,
    fanout: Fanout,
    *,
    input_dir: Path | None,
    output_dir: Path,
    period: str | None,
    generated_at: str | None,
    quiet: bool,
    **options: Any,
) -> int:
    """`pkgreport report --group PATH` (or one clinic with --partitions): the exit code."""
    from pkgreport.cli_options import period_from_options, settings_from

    period_dates = period_from_options(
        period, options.pop("period_start"), options.pop("period_end")
    )
    settings = settings_from(input_dir=input_dir, output_dir=output_dir, **period_dates, **options)
    if group is None:
        return _report_partitioned(settings, fanout, generated_at, quiet)
    if input_dir is not None:
        raise UsageError(
            "give INPUT_DIR for one clinic or --group for a group of clinics, not both"
        )
    shared, clinics = read_group(group, settings, output_dir)
    run = run_group(
        clinics,
        output_dir,
        fanout,
        title=f"{shared.title}: clinic group",
        generated_at=generated_at,
        date_order=shared.date_order,
        html_max_rows=shared.html_max_rows,
        progress=_progress(quiet),
    )
    return _publish_and_tell(run, quiet)


def run_config_command(
    tables: list[dict[str, Any]],
    settings: Settings,
    fanout: Fanout,
    *,
    generated_at: str | None,
    quiet: bool,
    lock_wait: float,
    verbose: bool,
    **_: Any,
) -> int:
    """`pkgreport run --config` with `[[clinic]]` tables: the group under the output folder's
    lock."""
    from pkgreport.schedule.runlock import output_lock

    assert settings.output_dir is not None
    if not tables:
        raise UsageError(
            "--workers, --scheduler and --partitions run the clinics of a config file's "
            "[[clinic]] tables, and none were given: add them to the file given with --config, "
            "or use `pkgreport report INPUT_DIR --partitions K` to split one clinic"
        )
    clinics = clinics_from_tables(tables, settings, settings.output_dir)
    with output_lock(settings.output_dir, wait_seconds=lock_wait):
        run = run_group(
            clinics,
            settings.output_dir,
            fanout,
            title=f"{settings.title}: clinic group",
            generated_at=generated_at,
            date_order=settings.date_order,
            html_max_rows=settings.html_max_rows,
            progress=_progress(quiet),
        )
    code = _publish_and_tell(run, quiet=not verbose)
    return code or _fail_on(run, settings.fail_on)


def _fail_on(run: GroupRun, codes: tuple[str, ...]) -> int:
    """Exit 4 when a finding listed in `fail_on` occurred in any clinic (as a one-clinic run)."""
    from collections import Counter

    found = Counter(
        finding["code"]
        for outcome in run.outcomes
        if outcome.summary is not None
        for finding in outcome.summary["findings"]
        if finding["code"] in codes
    )
    if not found:
        return int(ExitCode.DONE)
    click.echo("fail-on: " + ", ".join(f"{code} x{n}" for code, n in found.items()), err=True)
    return int(ExitCode.FAIL_ON)


def _report_partitioned(
    settings: Settings, fanout: Fanout, generated_at: str | None, quiet: bool
) -> int:
    """One clinic split by patient (--partitions K) on Dask, written as `report` writes it."""
    from pkgreport.group.cluster import dask_client
    from pkgreport.group.partition import run_partitioned
    from pkgreport.reports.publish import output_names, render_outputs, write_all

    if fanout.partitions < 2:
        raise UsageError(
            "--workers and --scheduler run the clinics of a group: give --group (or [[clinic]] "
            "tables in the config file), or --partitions K to split this one clinic by patient"
        )
    if settings.input_dir is None:
        raise UsageError("give INPUT_DIR (the folder of exports), or --group for a clinic group")
    assert settings.output_dir is not None
    fanout.check()
    with dask_client(fanout.workers or 1, fanout.scheduler):
        result = run_partitioned(settings, fanout.partitions)
    files = render_outputs(result, generated_at=generated_at)
    for path in write_all(settings.output_dir, files, output_names(result)["manifest"]):
        if not quiet:
            click.echo(str(path))
    return int(ExitCode.DONE)
