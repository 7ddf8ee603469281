"""Click commands: parse options, call `pipeline`, print results, map errors to exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from pkgreport import __version__
from pkgreport.cli_options import (
    ALLOCATION,
    AS_OF,
    CREDIT_APPLIES_OPTION,
    FORMAT,
    INPUT_DIR,
    OUT,
    QUIET,
    input_options,
    parse_date,
    period_from_options,
    schedule_options,
    settings_from,
)
from pkgreport.cli_output import (
    ValidationReport,
    all_issues_hint,
    echo_err,
    emit_frame,
    note,
    print_issues,
    write_issues_csv,
)
from pkgreport.cli_process import collector_paused, exit_without_teardown, libraries_loaded_first
from pkgreport.config import Settings
from pkgreport.errors import ExitCode, InputError, PkgReportError, UsageError
from pkgreport.group.hooks import GROUP_INPUT_DIR, report_group_options, run_group_options
from pkgreport.inputs.presets import preset_names
from pkgreport.memory import use_returning_allocator


class Handled(click.Group):
    """A group that turns pkgreport errors into one clear message and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            echo_err(f"Error: {exc}")
            print_issues(
                [i for i in exc.issues if i.severity == "error"] or exc.issues,
                all_issues_hint(ctx),
            )
            ctx.exit(ExitCode.DATA_NEEDS_FIXING)
        except PkgReportError as exc:
            echo_err(f"Error: {exc}")
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # The reader of stdout stopped early (`pkgreport credit exports/ | head`): that is
            # its choice, not an error. Point stdout at /dev/null so closing it raises nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(ExitCode.DONE)
        except Exception as exc:  # noqa: BLE001 - the one place an unexpected error is turned into exit 3
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            else:
                echo_err(
                    f"Internal error: {type(exc).__name__}: {exc}. This is a bug in pkgreport, not in "
                    "your data; run again with --debug for the traceback and report it."
                )
            ctx.exit(ExitCode.INTERNAL)


@click.group(cls=Handled, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pkgreport")
@click.option("--debug", is_flag=True, help="Show the full traceback of an internal error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Reconcile pre-paid packages and account credit from clinic exports.

    Put this month's exports (appointments, cases, invoices, payments, and optionally
    allocations and patients; CSV or XLSX) in one folder, then:

    \b
      pkgreport validate exports/          # can these exports be trusted?
      pkgreport cases exports/             # session tallies, over-booked packages
      pkgreport credit exports/            # account credit per patient
      pkgreport report exports/ -o reports # the workbook and HTML report

    Exit codes: 0 done, 1 the data needs fixing, 2 usage or configuration error,
    3 internal error, 4 a finding listed under fail-on occurred, 5 another run holds the lock.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    use_returning_allocator()  # before any command reads a file


def main() -> NoReturn:
    """The command line, ended by `exit_without_teardown`."""
    try:
        cli(prog_name="pkgreport")
    except SystemExit as done:
        exit_without_teardown(done.code)
    exit_without_teardown(0)  # click always ends with SystemExit; this is for safety


def _computed(settings: Settings) -> Any:
    with collector_paused():
        from pkgreport import pipeline

    result = pipeline.run(settings, progress=_progress(settings.quiet))
    note(settings.quiet, f"as of {result.as_of.isoformat()} ({result.as_of_source})")
    return result


@cli.command()
@INPUT_DIR
@input_options
@click.option(
    "--issues-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every issue (not just the first) to this CSV file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def validate(input_dir: Path, issues_out: Path | None, as_json: bool, **options: Any) -> None:
    """Check that this month's exports can be trusted.

    Reads every export in INPUT_DIR, prints how many files and rows were read and the first
    problems found, each naming the file, row, column and value and what to do.
    Exits 0 when there are no errors (warnings allowed) and 1 when there are.

    \b
    Examples:
      pkgreport validate exports/
      pkgreport validate exports/ --date-order mdy --issues-out issues.csv
      pkgreport validate exports/ --columns jane-columns.toml
    """
    from pkgreport.inputs import read_ahead

    settings = settings_from(input_dir=input_dir, **options)
    # The workbooks are read on the second core while the data libraries load (once the biggest
    # has passed its pre-flight).
    reading = read_ahead.start(settings)
    read_ahead.wait_for_checks()
    # The libraries and the schemas live to the end: loaded with the collector paused, then
    # frozen, so it need not walk them again each time the rows' objects start a collection.
    with collector_paused():
        from pkgreport import pipeline

        if reading:
            from pkgreport.inputs.schemas import prepare_schemas

            prepare_schemas()
    dataset = pipeline.load_dataset(settings)
    inconsistent = pipeline.inconsistent_records(dataset, settings)
    has_errors = any(i.severity == "error" for i in dataset.issues)
    left_out = pipeline.sections_left_out(dataset) if not has_errors else {}
    if issues_out is not None:
        write_issues_csv(issues_out, dataset.issues)
    report = ValidationReport(dataset, inconsistent, left_out)
    click.echo(report.as_json() if as_json else report.as_text(issues_out is not None), nl=False)
    if issues_out is not None:
        echo_err(f"wrote {len(dataset.issues)} issue(s) to {issues_out}")
    if has_errors:
        sys.exit(ExitCode.DATA_NEEDS_FIXING)


CASE_COLUMNS = [
    "case_id",
    "patient_id",
    "case_name",
    "max_sessions",
    "counted",
    "attended",
    "upcoming",
    "cancelled",
    "dna",
    "remaining",
    "over_booked_by",
    "status",
    "findings",
]


@cli.command()
@INPUT_DIR
@input_options
@AS_OF
@FORMAT
@OUT
@click.option(
    "--findings", "show_findings", is_flag=True, help="List the findings instead of the cases."
)
@click.option(
    "--nearly-used-up",
    type=click.IntRange(min=0),
    default=None,
    help="Flag packages with this many sessions or fewer left (default 1).",
)
@QUIET
def cases(input_dir: Path, fmt: str, out: Path | None, show_findings: bool, **options: Any) -> None:
    """Session tallies of every patient case (package).

    One row per case: sessions counted (attended and upcoming), remaining, over-booked by,
    and a status (active, used up, over-booked, expired, closed, unlimited).

    \b
    Examples:
      pkgreport cases exports/
      pkgreport cases exports/ --as-of 2026-10-31 --format json --out cases.json
      pkgreport cases exports/ --findings
    """
    settings = settings_from(input_dir=input_dir, **options)
    result = _computed(settings)
    if result.cases is None:
        raise UsageError(f"cannot tally cases: {result.skipped.get('Cases')}")
    if show_findings:
        from pkgreport.engine.findings import FINDING_COLUMNS

        emit_frame(result.cases.findings[FINDING_COLUMNS], fmt, out, settings.quiet)
    else:
        emit_frame(result.cases.cases[CASE_COLUMNS], fmt, out, settings.quiet)


CREDIT_COLUMNS = [
    "patient_id",
    "patient_name",
    "received",
    "refunded",
    "invoiced",
    "applied",
    "credit",
    "open_outstanding",
    "reported_credit",
    "difference",
    "findings",
]


def _one_view(**flags: bool) -> str | None:
    """The one table asked for; two at once are refused rather than half-honoured."""
    chosen = [name for name, given in flags.items() if given]
    if len(chosen) > 1:
        named = " and ".join(f"--{name}" for name in chosen)
        raise UsageError(f"{named} cannot go together: give one of them per run")
    return chosen[0] if chosen else None


@cli.command()
@INPUT_DIR
@input_options
@AS_OF
@ALLOCATION
@CREDIT_APPLIES_OPTION
@FORMAT
@OUT
@click.option("--ageing", is_flag=True, help="Print the ageing of unapplied credit.")
@click.option("--invoices", is_flag=True, help="Print the per-invoice table.")
@click.option("--findings", "show_findings", is_flag=True, help="Print the findings.")
@click.option(
    "--dormant-days",
    type=click.IntRange(min=1),
    default=None,
    help="Credit with no movement for this many days is dormant (default 365).",
)
@QUIET
def credit(
    input_dir: Path,
    fmt: str,
    out: Path | None,
    ageing: bool,
    invoices: bool,
    show_findings: bool,
    **options: Any,
) -> None:
    """Account credit per patient, recomputed from invoices and payments.

    One row per patient: received, refunded, invoiced, applied, unapplied credit, open
    invoices outstanding, the credit the system reported and the difference. Money is
    written as plain decimals (1150.00).

    \b
    Examples:
      pkgreport credit exports/ --as-of 2026-10-31
      pkgreport credit exports/ --ageing
      pkgreport credit exports/ --allocation newest-first --invoices --out invoices.csv
    """
    view = _one_view(ageing=ageing, invoices=invoices, findings=show_findings)
    settings = settings_from(input_dir=input_dir, **options)
    result = _computed(settings)
    if result.credit is None:
        raise UsageError(f"cannot compute credit: {result.skipped.get('Credit')}")
    if view == "ageing":
        emit_frame(result.ageing, fmt, out, settings.quiet)
    elif view == "invoices":
        emit_frame(result.credit.invoices, fmt, out, settings.quiet)
    elif view == "findings":
        from pkgreport.engine.findings import FINDING_COLUMNS

        emit_frame(result.credit.findings[FINDING_COLUMNS], fmt, out, settings.quiet)
    else:
        emit_frame(result.credit.patients[CREDIT_COLUMNS], fmt, out, settings.quiet)


@cli.command()
@INPUT_DIR
@input_options
@click.option(
    "--from",
    "period_start",
    callback=parse_date,
    required=True,
    metavar="YYYY-MM-DD",
    help="First day of the period (inclusive).",
)
@click.option(
    "--to",
    "period_end",
    callback=parse_date,
    required=True,
    metavar="YYYY-MM-DD",
    help="Last day of the period (inclusive).",
)
@ALLOCATION
@CREDIT_APPLIES_OPTION
@FORMAT
@OUT
@QUIET
def rollforward(input_dir: Path, fmt: str, out: Path | None, **options: Any) -> None:
    """Credit roll-forward for a period, per patient and in total.

    opening + created - applied - refunded = closing, to the cent, for every patient.

    \b
    Example:
      pkgreport rollforward exports/ --from 2026-10-01 --to 2026-10-31
    """
    if options["period_start"] > options["period_end"]:
        raise UsageError("--from is after --to: the period must start on or before its last day")
    settings = settings_from(input_dir=input_dir, as_of=options["period_end"], **options)
    result = _computed(settings)
    if result.rollforward is None:
        raise UsageError(f"cannot roll credit forward: {result.skipped.get('Credit')}")
    emit_frame(result.rollforward, fmt, out, settings.quiet)


@cli.command("sample-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--months", type=click.IntRange(min=1, max=120), default=3, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option("--force", is_flag=True, help="Write into a folder that already holds exports.")
def sample_data(
    out_dir: Path, patients: int, months: int, seed: int, fmt: str, force: bool
) -> None:
    """Write a deterministic demo set of Cliniko-style exports.

    The same options always give the same bytes. Large sizes make benchmark inputs.

    \b
    Examples:
      pkgreport sample-data demo/
      pkgreport sample-data bench/ --patients 100000 --months 12 --seed 1
    """
    from pkgreport.atomic import make_folder, writing
    from pkgreport.demo.generate import generate

    if not force:
        _refuse_a_folder_of_exports(out_dir)
    make_folder(out_dir)
    with writing(out_dir):
        paths = generate(out_dir, patients=patients, months=months, seed=seed, fmt=fmt)
    for path in paths:
        click.echo(str(path))


def _refuse_a_folder_of_exports(folder: Path) -> None:
    """Made-up data must never replace a clinic's exports, nor sit beside them to be read."""
    from pkgreport.inputs.discovery import kind_of

    exports = (
        sorted(p.name for p in folder.glob("*") if p.is_file() and kind_of(p))
        if folder.is_dir()
        else []
    )
    if exports:
        raise UsageError(
            f"{folder} already holds exports ({', '.join(exports)}): made-up sample data would "
            "overwrite them or be read with them; choose an empty folder, or pass --force to "
            "write there anyway"
        )


def _progress(quiet: bool) -> Callable[[str], None]:
    """Stage messages on stderr, only for a person watching a terminal."""
    if quiet or not sys.stderr.isatty():
        return lambda _message: None
    return lambda message: echo_err(f"pkgreport: {message}")


@cli.command()
@libraries_loaded_first
@GROUP_INPUT_DIR
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the reports (created if missing).",
)
@input_options
@report_group_options
def report(
    input_dir: Path,
    output_dir: Path,
    period: str | None,
    generated_at: str | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Write the workbook, the HTML report and the JSON summary.

    Writes pkgreport-<as-of>.xlsx, pkgreport-<as-of>.html and pkgreport-<as-of>.json into
    OUTPUT as one set, then pkgreport-<as-of>.sha256 listing them (check a set with
    `sha256sum -c`): a failed run leaves no partial file, and inputs are never touched.

    \b
    Examples:
      pkgreport report sample_data -o reports
      pkgreport report exports/ -o reports --as-of 2026-10-31 --period 2026-10
      pkgreport report exports/ -o reports --from 2026-07-01 --to 2026-09-30 --title "Q1 pack"
    """
    from pkgreport.reports.chart_process import ChartsBeside

    period_dates = period_from_options(
        period, options.pop("period_start"), options.pop("period_end")
    )
    settings = settings_from(input_dir=input_dir, output_dir=output_dir, **period_dates, **options)
    progress = _progress(quiet)
    # Started before the exports are read: the charts' process imports pygal and xlsxwriter
    # meanwhile (pandas and the pipeline are loaded already, `libraries_loaded_first`).
    with ChartsBeside() as charts:
        from pkgreport import pipeline
        from pkgreport.reports.publish import output_names, render_outputs, write_all

        result = pipeline.run(settings, progress=progress)
        note(
            quiet,
            f"as of {result.as_of.isoformat()} ({result.as_of_source}); "
            f"period {result.period_start.isoformat()} to {result.period_end.isoformat()}",
        )
        progress("rendering the workbook, HTML report and summary")
        files = render_outputs(result, generated_at=generated_at, charts=charts)
    for path in write_all(output_dir, files, output_names(result)["manifest"]):
        if not quiet:
            click.echo(str(path))
    for section, reason in sorted(result.skipped.items()):
        note(quiet, f"note: {section} left out: {reason}")


@cli.command("run")
@libraries_loaded_first
@click.argument("input_dir", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option(
    "-c",
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    envvar="PKGREPORT_CONFIG",
    help="TOML settings file (see init-config).",
)
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the reports, log and history.",
)
@input_options
@run_group_options
@schedule_options
def run_command(
    settings: Settings, generated_at: str | None, quiet: bool, lock_wait: float, verbose: bool
) -> None:
    """Produce the month-end pack unattended (cron, Task Scheduler, CI).

    Settings come from --config, then PKGREPORT_* environment variables, then options.
    Writes the reports, a log and a history entry into the output folder under a lock, and
    adds a "Changed since the last run" section. Re-running on the same inputs rewrites
    byte-identical reports and adds no history entry.

    \b
    Exit codes: 0 done; 1 the inputs need fixing, or shrank since the last run (see
    --allow-shrink); 2 usage or configuration error, or an output that cannot be written;
    3 internal error; 4 done, but a finding listed in fail_on occurred; 5 another run
    holds the output folder.

    \b
    Examples:
      pkgreport run --config pkgreport.toml
      PKGREPORT_OUTPUT=/srv/reports pkgreport run --config pkgreport.toml --today 2026-11-01
      pkgreport run exports/ -o reports --period 2026-10
    """
    from pkgreport.reports.chart_process import ChartsBeside

    # Settings come resolved from config, environment and options (`run_group_options`).
    # Started before the exports are read, as in `report`.
    with ChartsBeside() as charts:
        from pkgreport.schedule.runlog import run_scheduled

        outcome = run_scheduled(
            settings,
            generated_at=generated_at,
            progress=_progress(quiet),
            lock_wait=lock_wait,
            charts=charts,
        )
    if verbose:
        for path in outcome.written:
            click.echo(str(path))
    note(quiet, outcome.headline)
    if outcome.failed_on:
        echo_err("fail-on: " + ", ".join(f"{code} x{n}" for code, n in outcome.failed_on.items()))
        sys.exit(ExitCode.FAIL_ON)


@cli.command("init-config")
@click.argument(
    "path", type=click.Path(dir_okay=False, path_type=Path), default=Path("pkgreport.toml")
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_config(path: Path, force: bool) -> None:
    """Write a commented example configuration for `pkgreport run`.

    \b
    Example:
      pkgreport init-config pkgreport.toml
    """
    from pkgreport.atomic import write_atomic
    from pkgreport.config import EXAMPLE_CONFIG

    if path.exists() and not force:
        raise UsageError(f"{path} exists: pass --force to overwrite it")
    write_atomic(path, EXAMPLE_CONFIG)
    click.echo(str(path))


# --- issue 15: the mapping presets ------------------------------------------------------------


@cli.command("mapping")
@click.option(
    "--show",
    "show",
    type=click.Choice(preset_names()),
    default=None,
    metavar="SOURCE",
    help=f"Print this source's preset ({', '.join(preset_names())}), a mapping file to "
    "start your own from.",
)
@click.option(
    "--list",
    "list_presets",
    is_flag=True,
    help="List the presets, each with what it was built from.",
)
def mapping_command(show: str | None, list_presets: bool) -> None:
    """Show the mapping presets for other practice systems (used with --source).

    A preset is a mapping file (the format --columns reads) for one system's exports. Save one
    with --show, change it for your clinic's files, and give it with --columns.

    \b
    Examples:
      pkgreport mapping --list
      pkgreport mapping --show mindbody-api > mindbody.toml
      pkgreport validate exports/ --source mindbody-api
    """
    from pkgreport.inputs.presets import preset_summary, preset_text

    if show is None and not list_presets:
        raise UsageError("say what to show: --list for the presets, or --show SOURCE for one")
    if list_presets:
        width = max(len(name) for name in preset_names())
        for name in preset_names():
            click.echo(f"{name:<{width}}  {preset_summary(name)}")
    if show is not None:
        click.echo(preset_text(show), nl=False)
