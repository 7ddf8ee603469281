"""The options the commands share, and how options, environment and a config file become `Settings`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from pkgreport.config import ALLOCATION_POLICIES, CREDIT_APPLIES, DATE_ORDERS, Settings
from pkgreport.errors import UsageError
from pkgreport.inputs.presets import preset_names


def parse_date(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-10-31"
        ) from None


def validate_timezone(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not an IANA time zone name: use e.g. Australia/Sydney, Europe/London, UTC"
        ) from None
    return value


def input_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads exports."""
    decorators = [
        click.option(
            "--date-order",
            type=click.Choice(DATE_ORDERS),
            default=None,
            help="Order of day, month and year in non-ISO dates (default dmy: 31/12/2026). "
            "ISO dates (2026-12-31) always parse.",
        ),
        click.option(
            "--timezone",
            callback=validate_timezone,
            default=None,
            help="The clinic's IANA time zone (default UTC). Timestamps with an offset are "
            "converted to it; those without one are taken as clinic-local.",
        ),
        click.option(
            "--columns",
            "columns_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="TOML file mapping another system's headers to pkgreport's columns "
            "(over the --source preset when both are given).",
        ),
        # --- issue 15: presets (`pkgreport mapping --list`) ---
        click.option(
            "--source",
            type=click.Choice(preset_names()),
            default=None,
            help="The practice system the exports come from: its mapping preset is used "
            "(see pkgreport mapping --list). Default: Cliniko's data exports.",
        ),
        click.option(
            "--sheet", default=None, help="Worksheet to read in XLSX files (default: the first)."
        ),
    ]
    return stacked(decorators, func)


def settings_from(base: Settings | None = None, /, **options: Any) -> Settings:
    """Apply command-line options (None = not given) over a base Settings."""
    from pkgreport.inputs.presets import mapping_data

    settings = base or Settings()
    changes = {k: v for k, v in options.items() if v is not None}
    if "columns_file" in changes or "source" in changes:
        changes["column_map"] = mapping_data(changes.get("source"), changes.get("columns_file"))
    return settings.replace(**changes)


INPUT_DIR = click.argument(
    "input_dir", type=click.Path(file_okay=False, path_type=Path), metavar="INPUT_DIR"
)
AS_OF = click.option(
    "--as-of",
    callback=parse_date,
    default=None,
    metavar="YYYY-MM-DD",
    help="Compute as at the end of this day (inclusive). Default: the latest date on which "
    "something happened in the data; never today's date.",
)
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="Output format.",
)
OUT = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (atomically) instead of stdout.",
)
ALLOCATION = click.option(
    "--allocation",
    type=click.Choice(ALLOCATION_POLICIES),
    default=None,
    help="How unallocated payments and credit are applied to open invoices "
    "(default oldest-first, Cliniko's default).",
)
QUIET = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    default=False,
    help="Print only the results and errors: no progress, notes or names of files written.",
)
CREDIT_APPLIES_OPTION = click.option(
    "--credit-applies",
    type=click.Choice(CREDIT_APPLIES),
    default=None,
    help="When waiting account credit pays an open invoice: on-payment (default; when a payment, "
    "$0 included, is recorded, as Cliniko does) or on-issue (as soon as the invoice is issued).",
)


def period_from_options(
    period: str | None, period_start: date | None, period_end: date | None
) -> dict[str, date]:
    from pkgreport.config import ConfigError, parse_period

    if period is not None and (period_start or period_end):
        raise UsageError("give either --period or --from/--to, not both")
    if (period_start is None) != (period_end is None):
        raise UsageError("--from and --to go together: give both")
    if period is not None:
        try:
            spec = parse_period(period)
        except ConfigError as exc:
            raise UsageError(f"--period: {exc}") from None
        if spec.kind != "explicit":
            raise UsageError(
                "--period takes YYYY-MM here; previous-month/current-month belong to `run`"
            )
        assert spec.start and spec.end
        return {"period_start": spec.start, "period_end": spec.end}
    if period_start is not None and period_end is not None:
        if period_start > period_end:
            raise UsageError(
                "--from is after --to: the period must start on or before its last day"
            )
        return {"period_start": period_start, "period_end": period_end}
    return {}


def report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options of `report`, shared with `run`."""
    decorators = [
        AS_OF,
        click.option(
            "--period",
            default=None,
            metavar="YYYY-MM",
            help="Reporting period for the roll-forward (default: the month of --as-of).",
        ),
        click.option(
            "--from",
            "period_start",
            callback=parse_date,
            default=None,
            metavar="YYYY-MM-DD",
            help="First day of the reporting period (with --to).",
        ),
        click.option(
            "--to",
            "period_end",
            callback=parse_date,
            default=None,
            metavar="YYYY-MM-DD",
            help="Last day of the reporting period (with --from).",
        ),
        ALLOCATION,
        CREDIT_APPLIES_OPTION,
        click.option("--title", default=None, help="Title on the workbook and HTML report."),
        click.option(
            "--generated-at",
            default=None,
            metavar="TEXT",
            help="A timestamp to print in the reports (none by default, so the same "
            "inputs give byte-identical files).",
        ),
        click.option(
            "--dormant-days",
            type=click.IntRange(min=1),
            default=None,
            help="Credit with no movement for this many days is dormant (default 365).",
        ),
        click.option(
            "--nearly-used-up",
            type=click.IntRange(min=0),
            default=None,
            help="Flag packages with this many sessions or fewer left (default 1).",
        ),
        QUIET,
    ]
    return stacked(decorators, func)


def today_in(timezone: str) -> date:
    """The run date in the clinic's zone: the one place pkgreport reads the clock.

    Only `run` needs it, to resolve `period = "previous-month"`; `--today` pins it.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(timezone)).date()


def resolve_run_settings(
    config: Path | None, environ: dict[str, str], options: dict[str, Any], today: date | None
) -> tuple[Settings, list[dict[str, Any]]]:
    """Config file, then PKGREPORT_* variables, then command-line options (highest); and the
    config file's `[[clinic]]` tables (a clinic group, `pkgreport.group`), [] when it has none."""
    from pkgreport.config import CONFIG_TO_SETTINGS, ConfigError, read_config_file, read_environment
    from pkgreport.inputs.presets import mapping_data

    try:
        merged: dict[str, Any] = {}
        if config is not None:
            merged.update(read_config_file(config))
        merged.update(read_environment(environ))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    period_spec = merged.pop("period", None)
    clinics: list[dict[str, Any]] = merged.pop("clinic", [])  # type: ignore[assignment]
    values = {CONFIG_TO_SETTINGS[k]: v for k, v in merged.items()}
    cli_period = period_from_options(
        options.pop("period"), options.pop("period_start"), options.pop("period_end")
    )
    values.update({k: v for k, v in options.items() if v is not None})
    if values.get("input_dir") is None and not clinics:
        raise UsageError(
            "no input folder: give INPUT_DIR, `input` in the config file or PKGREPORT_INPUT"
        )
    if values.get("output_dir") is None:
        raise UsageError(
            "no output folder: give -o, `output` in the config file or PKGREPORT_OUTPUT"
        )
    if "columns_file" in values or "source" in values:
        values["column_map"] = mapping_data(values.get("source"), values.get("columns_file"))
    settings = Settings().replace(**values)
    if cli_period:
        settings = settings.replace(**cli_period)
        if settings.as_of is None:
            settings = settings.replace(as_of=cli_period["period_end"])
    elif period_spec is not None:
        run_date = today or today_in(settings.timezone)
        start, end = period_spec.resolve(run_date)
        settings = settings.replace(period_start=start, period_end=end)
        if settings.as_of is None and period_spec.kind != "current-month":
            settings = settings.replace(as_of=end)
    return settings, clinics


GROUP = click.option(
    "--group",
    "group",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A group TOML file ([[clinic]] tables: name, input, own settings) or a folder of "
    "sub-folders, one clinic each: each clinic's reports go to OUTPUT/<clinic>/, then the "
    "group report.",
)


def fanout_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where the clinics of a group run (`pkgreport.group`): this process, or Dask."""
    decorators = [
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=None,
            help="Run the clinics in parallel on a Dask cluster of this many worker processes "
            "on this machine (needs pkgreport[dask]).",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="tcp://HOST:8786",
            help="Run the clinics on the Dask cluster of this scheduler (needs pkgreport[dask]).",
        ),
        click.option(
            "--partitions",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Split each clinic by patient into this many parts whose case and credit "
            "engines run as Dask tasks; the same output (needs pkgreport[dask]).",
        ),
    ]
    return stacked(decorators, func)


def schedule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options of `run` alone: the day it runs as, the output folder's lock, the shrink guard."""
    decorators = [
        click.option(
            "--today",
            callback=parse_date,
            default=None,
            metavar="YYYY-MM-DD",
            help="Run as if today were this date (resolves period = previous-month).",
        ),
        click.option(
            "--lock-wait",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            help="Seconds to wait for another run on the same output folder before failing.",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Print the files written on stdout."),
        click.option(
            "--allow-shrink",
            is_flag=True,
            default=None,
            help="Publish even when an export kind the last run read is missing or has far "
            "fewer rows (by default the run stops with exit 1).",
        ),
    ]
    return stacked(decorators, func)


def stacked(decorators: list[Callable[..., Any]], func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` under `decorators`, the first listed outermost (as written above a function)."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
