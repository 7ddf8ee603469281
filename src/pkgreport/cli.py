"""Click commands: parse options, call `pipeline`, print results, map errors to exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

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
    resolve_run_settings,
    settings_from,
)
from pkgreport.config import Settings
from pkgreport.errors import (
    ISSUE_COLUMNS,
    ExitCode,
    InputError,
    Issue,
    PkgReportError,
    UsageError,
)
from pkgreport.group.hooks import GROUP_INPUT_DIR, report_group_options, run_group_options
from pkgreport.inputs.presets import preset_names

SHOWN_ISSUES = 20


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _all_issues_hint(ctx: click.Context) -> str:
    """How to see every issue, naming only an option this command really has."""
    command = ctx.command
    if isinstance(command, click.Group) and ctx.invoked_subcommand:
        command = command.commands.get(ctx.invoked_subcommand, command)
    if any("--issues-out" in p.opts for p in command.params):
        return "write them all with --issues-out FILE"
    return "see them all with: pkgreport validate INPUT_DIR --issues-out FILE"


def _print_issues(issues: list[Issue], hint: str, limit: int = SHOWN_ISSUES) -> None:
    for issue in issues[:limit]:
        _echo_err(f"  {issue}")
    if len(issues) > limit:
        _echo_err(f"  ... and {len(issues) - limit} more ({hint})")


def write_issues_csv(path: Path, issues: list[Issue]) -> None:
    import csv
    import io

    from pkgreport.atomic import write_atomic
    from pkgreport.tabular import csv_safe_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ISSUE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for issue in issues:
        writer.writerow(
            {k: ("" if v is None else csv_safe_text(str(v))) for k, v in issue.as_dict().items()}
        )
    write_atomic(path, buf.getvalue())


class Handled(click.Group):
    """A group that turns pkgreport errors into one clear message and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            _echo_err(f"Error: {exc}")
            _print_issues(
                [i for i in exc.issues if i.severity == "error"] or exc.issues,
                _all_issues_hint(ctx),
            )
            ctx.exit(ExitCode.DATA_NEEDS_FIXING)
        except PkgReportError as exc:
            _echo_err(f"Error: {exc}")
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
                _echo_err(
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


def main() -> None:
    cli(prog_name="pkgreport")


def _note(quiet: bool, message: str) -> None:
    """A message for a person on stderr; `-q` leaves only results and errors."""
    if not quiet:
        _echo_err(message)


def _emit(text: str, out: Path | None, quiet: bool) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        from pkgreport.atomic import write_atomic

        write_atomic(out, text)
        _note(quiet, f"wrote {out}")


def _emit_frame(frame: Any, fmt: str, out: Path | None, quiet: bool) -> None:
    """A table on stdout or in `--out`; which columns are money is known to `tabular` alone."""
    from pkgreport.tabular import to_csv_text, to_json_text

    text = to_json_text(frame) if fmt == "json" else to_csv_text(frame)
    _emit(text, out, quiet)


def _computed(settings: Settings) -> Any:
    from pkgreport import pipeline

    result = pipeline.run(settings, progress=_progress(settings.quiet))
    _note(settings.quiet, f"as of {result.as_of.isoformat()} ({result.as_of_source})")
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
    import json

    from pkgreport import pipeline

    settings = settings_from(input_dir=input_dir, **options)
    dataset = pipeline.load_dataset(settings)
    errors = [i for i in dataset.issues if i.severity == "error"]
    warnings = [i for i in dataset.issues if i.severity == "warning"]
    inconsistent = pipeline.inconsistent_records(dataset, settings)
    left_out = pipeline.sections_left_out(dataset) if not errors else {}
    rows = {f.kind: 0 for f in dataset.files}
    for f in dataset.files:
        rows[f.kind] += f.rows
    if issues_out is not None:
        write_issues_csv(issues_out, dataset.issues)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "files": [
                        {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256}
                        for f in dataset.files
                    ],
                    "rows_per_kind": rows,
                    "errors": len(errors),
                    "warnings": len(warnings),
                    "left_out": left_out,
                    "verdict": _validate_verdict(errors, warnings, left_out),
                    "issues": [i.as_dict() for i in dataset.issues],
                    "inconsistent_records": [
                        {
                            "code": r.code,
                            "file": r.source_file,
                            "row": int(r.source_row),
                            "message": r.message,
                        }
                        for r in inconsistent.itertuples(index=False)
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(f"Files read: {len(dataset.files)}")
        for f in dataset.files:
            click.echo(f"  {f.name}: {f.kind}, {f.rows:,} rows")
        click.echo("Rows per kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(rows.items())))
        click.echo(
            f"Errors: {len(errors)}   Warnings: {len(warnings)}   "
            f"Inconsistent records: {len(inconsistent)}"
        )
        shown = errors + warnings
        if shown:
            click.echo("First issues:")
            for issue in shown[:SHOWN_ISSUES]:
                click.echo(f"  {issue}")
            if len(shown) > SHOWN_ISSUES and issues_out is None:
                click.echo(
                    f"  ... and {len(shown) - SHOWN_ISSUES} more: write them all with --issues-out FILE"
                )
        if len(inconsistent):
            click.echo(
                "Inconsistent records (reported as findings; the figures are still computed):"
            )
            for record in inconsistent.itertuples(index=False):
                click.echo(
                    f"  INCONSISTENT: {record.source_file}, row {record.source_row}: "
                    f"{record.message}"
                )
        for section, reason in left_out.items():
            click.echo(f"Left out: {section}: {reason}")
        click.echo("Result: " + _validate_verdict(errors, warnings, left_out))
    if issues_out is not None:
        _echo_err(f"wrote {len(dataset.issues)} issue(s) to {issues_out}")
    if errors:
        sys.exit(ExitCode.DATA_NEEDS_FIXING)


def _validate_verdict(errors: list[Issue], warnings: list[Issue], left_out: dict[str, str]) -> str:
    """The last line of `validate`: never an unqualified "can be used" beside unread files, or
    when the exports make no figure at all."""
    from pkgreport.inputs.discovery import IGNORED

    if errors:
        return "the exports need fixing before the figures can be trusted"
    if {"Cases", "Credit"} <= left_out.keys():
        return (
            "the exports can be read, but no figures can be computed from them: add the "
            "exports named above (appointments with cases, or invoices with payments)"
        )
    ignored = sorted({i.file for i in warnings if i.message.startswith(IGNORED)})
    if not ignored:
        return "the exports can be used"
    return (
        f"the exports read can be used, but {len(ignored)} file(s) were ignored "
        f"({', '.join(ignored)}): see the warnings, and rename any that should be read"
    )


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

        _emit_frame(result.cases.findings[FINDING_COLUMNS], fmt, out, settings.quiet)
    else:
        _emit_frame(result.cases.cases[CASE_COLUMNS], fmt, out, settings.quiet)


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
        _emit_frame(result.ageing, fmt, out, settings.quiet)
    elif view == "invoices":
        _emit_frame(result.credit.invoices, fmt, out, settings.quiet)
    elif view == "findings":
        from pkgreport.engine.findings import FINDING_COLUMNS

        _emit_frame(result.credit.findings[FINDING_COLUMNS], fmt, out, settings.quiet)
    else:
        _emit_frame(result.credit.patients[CREDIT_COLUMNS], fmt, out, settings.quiet)


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
    _emit_frame(result.rollforward, fmt, out, settings.quiet)


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
    return lambda message: _echo_err(f"pkgreport: {message}")


@cli.command()
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
    from pkgreport import pipeline
    from pkgreport.reports.publish import output_names, render_outputs, write_all

    period_dates = period_from_options(
        period, options.pop("period_start"), options.pop("period_end")
    )
    settings = settings_from(input_dir=input_dir, output_dir=output_dir, **period_dates, **options)
    progress = _progress(quiet)
    result = pipeline.run(settings, progress=progress)
    _note(
        quiet,
        f"as of {result.as_of.isoformat()} ({result.as_of_source}); "
        f"period {result.period_start.isoformat()} to {result.period_end.isoformat()}",
    )
    progress("rendering the workbook, HTML report and summary")
    files = render_outputs(result, generated_at=generated_at)
    for path in write_all(output_dir, files, output_names(result)["manifest"]):
        if not quiet:
            click.echo(str(path))
    for section, reason in sorted(result.skipped.items()):
        _note(quiet, f"note: {section} left out: {reason}")


@cli.command("run")
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
@click.option(
    "--today",
    callback=parse_date,
    default=None,
    metavar="YYYY-MM-DD",
    help="Run as if today were this date (resolves period = previous-month).",
)
@click.option(
    "--lock-wait",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for another run on the same output folder before failing.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print the files written on stdout.")
@click.option(
    "--allow-shrink",
    is_flag=True,
    default=None,
    help="Publish even when an export kind the last run read is missing or has far "
    "fewer rows (by default the run stops with exit 1).",
)
def run_command(
    config: Path | None,
    generated_at: str | None,
    quiet: bool,
    today: date | None,
    lock_wait: float,
    verbose: bool,
    **options: Any,
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
    import os

    from pkgreport.schedule.runlog import run_scheduled

    settings, _ = resolve_run_settings(config, dict(os.environ), options, today)
    outcome = run_scheduled(
        settings, generated_at=generated_at, progress=_progress(quiet), lock_wait=lock_wait
    )
    if verbose:
        for path in outcome.written:
            click.echo(str(path))
    _note(quiet, outcome.headline)
    if outcome.failed_on:
        _echo_err("fail-on: " + ", ".join(f"{code} x{n}" for code, n in outcome.failed_on.items()))
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
