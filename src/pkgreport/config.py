"""One frozen `Settings` object: every knob a run has, with its default, built from options."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pkgreport.engine.registry import ALLOCATION_POLICIES as POLICY_REGISTRY
from pkgreport.engine.registry import CREDIT_TIMINGS, FINDINGS

DateOrder = Literal["dmy", "mdy", "ymd"]
AllocationPolicy = Literal["oldest-first", "newest-first", "source-only", "none"]
CreditApplies = Literal["on-payment", "on-issue"]

DATE_ORDERS: tuple[str, ...] = ("dmy", "mdy", "ymd")
ALLOCATION_POLICIES: tuple[str, ...] = tuple(POLICY_REGISTRY)
CREDIT_APPLIES: tuple[str, ...] = tuple(CREDIT_TIMINGS)
DEFAULT_AGEING_BUCKETS: tuple[int, ...] = (30, 60, 90, 180, 365)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's output. Same settings + same inputs = same bytes out."""

    input_dir: Path | None = None
    output_dir: Path | None = None
    timezone: str = "UTC"
    date_order: DateOrder = "dmy"
    columns_file: Path | None = None
    # The practice system whose mapping preset to use (`--source`), under `columns_file`.
    source: str | None = None
    sheet: str | None = None
    allocation: AllocationPolicy = "oldest-first"
    # When waiting credit meets an open invoice: when a payment ($0 included) is recorded, as
    # Cliniko does, or as soon as the invoice is issued (systems that spend credit automatically).
    credit_applies: CreditApplies = "on-payment"
    as_of: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    dormant_days: int = 365
    nearly_used_up: int = 1
    ageing_buckets: tuple[int, ...] = DEFAULT_AGEING_BUCKETS
    min_date: date = date(1990, 1, 1)
    max_date: date = date(2100, 12, 31)
    title: str = "Packages and account credit"
    fail_on: tuple[str, ...] = ()
    generated_at: str | None = None
    # Limits that keep a hostile or broken workbook from exhausting the machine.
    max_xlsx_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_xlsx_compression_ratio: int = 200
    max_xlsx_cells: int = 50_000_000
    # Limits on any export: a file's size, and one cell's length (far beyond any real field:
    # Excel itself stops at 32,767 characters; a 100 MB "name" would swell every report).
    max_file_bytes: int = 1024 * 1024 * 1024
    max_cell_chars: int = 1_000_000
    # A scheduled run stops (exit 1) when a kind of export the previous run read is missing, or
    # has fewer rows than this fraction of last time's, unless allowed: a half-copied folder
    # must not replace a good report.
    allow_shrink: bool = False
    shrink_threshold: float = 0.5
    # The HTML report caps long tables (the workbook holds more: WORKBOOK_ALL_ROWS_MAX).
    html_max_rows: int = 1000
    # The largest amount, in whole dollars, one row may hold; above it the row is refused.
    max_amount: int = 10_000_000
    quiet: bool = False
    # The mapping file's TOML (`pkgreport.inputs.mapping`): renames and transforms per kind.
    column_map: dict[str, dict[str, Any]] = field(default_factory=dict)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Scheduled runs: settings from a TOML file, then PKGREPORT_* environment variables, then options.

# A bound on the per-row bound: with it, a million rows still total far inside int64.
MAX_AMOUNT_LIMIT = 1_000_000_000_000

FINDING_CODES: tuple[str, ...] = tuple(FINDINGS)

# A clinic group (`[[clinic]]` tables, `pkgreport.group`): each table names a clinic and its input
# folder, and may set these where the clinic differs from the settings above it.
CLINIC_TABLE = "clinic"
CLINIC_KEYS: tuple[str, ...] = (
    "name",
    "input",
    "timezone",
    "date_order",
    "columns",
    "source",
    "allocation",
    "credit_applies",
    "dormant_days",
    "nearly_used_up",
    "ageing_buckets",
    "max_amount",
    "max_file_bytes",
    "max_cell_chars",
    "title",
)
CLINIC_NAME_MAX = 64


def clinic_name_problem(name: object) -> str | None:
    """Why `name` cannot name a clinic (it names the clinic's report folder too), or None."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]*", name):
        return (
            "must start with a letter or digit and hold only letters, digits, spaces, dots, "
            "hyphens and underscores (it names the clinic's report folder)"
        )
    if len(name) > CLINIC_NAME_MAX or name.endswith((" ", ".")):
        return f"must be at most {CLINIC_NAME_MAX} characters and not end with a space or a dot"
    return None


class ConfigError(ValueError):
    """A bad key or value in a config file or environment variable; the CLI exits 2."""


@dataclass(frozen=True)
class PeriodSpec:
    """`previous-month`, `current-month`, or explicit inclusive dates."""

    kind: Literal["previous-month", "current-month", "explicit"]
    start: date | None = None
    end: date | None = None

    def resolve(self, run_date: date) -> tuple[date, date]:
        from calendar import monthrange

        if self.kind == "explicit":
            assert self.start is not None and self.end is not None
            return self.start, self.end
        first = run_date.replace(day=1)
        if self.kind == "previous-month":
            first = (first - timedelta(days=1)).replace(day=1)
        last = first.replace(day=monthrange(first.year, first.month)[1])
        return first, last


def _line_of(text: str, key: str) -> int | None:
    import re

    pattern = re.compile(rf'^\s*["\']?{re.escape(key)}["\']?\s*=')
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def parse_period(value: object) -> PeriodSpec:
    """`previous-month`, `current-month`, `YYYY-MM`, `YYYY-MM-DD..YYYY-MM-DD` or {from, to}."""
    from calendar import monthrange

    if isinstance(value, dict):
        unknown = set(value) - {"from", "to"}
        if unknown or not {"from", "to"} <= set(value):
            raise ConfigError("period table needs exactly `from` and `to` dates")
        start, end = (_as_date(value["from"]), _as_date(value["to"]))
    elif isinstance(value, str) and value in ("previous-month", "current-month"):
        return PeriodSpec(value)  # type: ignore[arg-type]
    elif isinstance(value, str) and len(value) == 7 and value[4] == "-":
        try:
            year, month = int(value[:4]), int(value[5:])
            start = date(year, month, 1)
        except ValueError:
            raise ConfigError(f"{value!r} is not a month: write YYYY-MM, e.g. 2026-10") from None
        end = start.replace(day=monthrange(year, month)[1])
    elif isinstance(value, str) and ".." in value:
        left, right = value.split("..", 1)
        start, end = _as_date(left.strip()), _as_date(right.strip())
    else:
        raise ConfigError(
            f"{value!r} is not a period: use previous-month, current-month, YYYY-MM, "
            "or YYYY-MM-DD..YYYY-MM-DD"
        )
    if start > end:
        raise ConfigError(f"the period starts ({start}) after it ends ({end})")
    return PeriodSpec("explicit", start, end)


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{value!r} is not a date: write YYYY-MM-DD") from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("must be a non-empty string")
    return value


def _whole(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"must be a whole number >= {minimum}")
        return value

    return check


def _one_of(choices: Callable[[], Sequence[str]]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in choices():
            raise ConfigError(f"must be one of {', '.join(choices())}")
        return value

    return check


def _source_names() -> Sequence[str]:
    from pkgreport.inputs.presets import preset_names

    return preset_names()


def _time_zone(value: object) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(_text(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("is not an IANA time zone name (e.g. Australia/Sydney)") from None
    return str(value)


def _max_amount(value: object) -> int:
    amount = _whole(1)(value)
    if amount > MAX_AMOUNT_LIMIT:
        raise ConfigError(f"must be at most {MAX_AMOUNT_LIMIT:,} (whole dollars)")
    return amount


def _true_or_false(value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError("must be true or false")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError("must be a fraction from 0 to 1, e.g. 0.5 (stop below half)")
    return float(value)


def _ageing_buckets(value: object) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
        or list(value) != sorted(set(value))
    ):
        raise ConfigError(
            "must be a list of increasing whole numbers of days, e.g. [30, 60, 90, 180, 365]"
        )
    return tuple(value)


def _finding_codes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ConfigError('must be a list of finding codes, e.g. ["OVER_BOOKED"]')
    unknown = [v for v in value if v not in FINDING_CODES]
    if unknown:
        raise ConfigError(
            f"unknown finding code(s) {', '.join(unknown)}; known: {', '.join(FINDING_CODES)}"
        )
    return tuple(value)


# Every config key, in the order the example and messages list them, with how its value is
# checked and normalised (each check raises ConfigError with the reason).
VALUE_CHECKS: dict[str, Callable[[object], object]] = {
    "input": lambda value: Path(_text(value)),
    "output": lambda value: Path(_text(value)),
    "timezone": _time_zone,
    "date_order": _one_of(lambda: DATE_ORDERS),
    "columns": lambda value: Path(_text(value)),
    "source": _one_of(_source_names),
    "allocation": _one_of(lambda: ALLOCATION_POLICIES),
    "credit_applies": _one_of(lambda: CREDIT_APPLIES),
    "period": parse_period,
    "dormant_days": _whole(1),
    "nearly_used_up": _whole(0),
    "ageing_buckets": _ageing_buckets,
    "title": _text,
    "fail_on": _finding_codes,
    # Safe unattended runs: shrunken inputs, and the limits on what one file may hold.
    "allow_shrink": _true_or_false,
    "shrink_threshold": _fraction,
    "max_file_bytes": _whole(1),
    "max_cell_chars": _whole(1),
    # The largest amount one row may hold (whole dollars).
    "max_amount": _max_amount,
}
CONFIG_KEYS: tuple[str, ...] = tuple(VALUE_CHECKS)


def _check_value(key: str, value: object) -> object:
    """Type-check one config value; returns it normalised. Raises ConfigError with the reason."""
    return VALUE_CHECKS[key](value)


def read_config_file(path: Path) -> dict[str, object]:
    """Read and check a TOML config; every problem names the key, the file and the line."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the config file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    out: dict[str, object] = {}
    base = path.parent
    for key, value in data.items():
        line = _line_of(text, key)
        where = f"{path}, line {line}" if line else str(path)
        if key == CLINIC_TABLE:
            out[key] = _read_clinic_tables(value, path)
            continue
        if key not in CONFIG_KEYS:
            import difflib

            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(CONFIG_KEYS)}"
            )
        try:
            checked = _check_value(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {key} = {value!r} {exc}") from None
        if isinstance(checked, Path) and not checked.is_absolute():
            checked = base / checked  # paths in a config file are relative to the file
        out[key] = checked
    return out


def _read_clinic_tables(tables: object, path: Path) -> list[dict[str, object]]:
    """The `[[clinic]]` tables: each checked like the keys above, paths relative to the file."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(
            f"{path}: `clinic` must be [[clinic]] tables, each with a name and an input folder"
        )
    clinics: list[dict[str, object]] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, start=1):
        where = f"{path}, [[clinic]] table {number}"
        missing = [k for k in ("name", "input") if k not in table]
        if missing:
            raise ConfigError(f"{where}: add {' and '.join(missing)} (every clinic needs both)")
        problem = clinic_name_problem(table["name"])
        if problem:
            raise ConfigError(f"{where}: name = {table['name']!r} {problem}")
        name = str(table["name"])
        if name.casefold() in seen:
            raise ConfigError(f"{where}: a clinic named {name!r} is already listed: rename one")
        seen.add(name.casefold())
        checked: dict[str, object] = {"name": name}
        for key, value in table.items():
            if key == "name":
                continue
            if key not in CLINIC_KEYS:
                raise ConfigError(
                    f"{where} ({name}): {key!r} cannot differ per clinic; a clinic may set "
                    f"{', '.join(CLINIC_KEYS)}"
                )
            try:
                value = _check_value(key, value)
            except ConfigError as exc:
                raise ConfigError(f"{where} ({name}): {key} = {value!r} {exc}") from None
            if isinstance(value, Path) and not value.is_absolute():
                value = path.parent / value
            checked[key] = value
        clinics.append(checked)
    if not clinics:
        raise ConfigError(f"{path}: the group lists no clinic: add [[clinic]] tables")
    return clinics


def read_environment(environ: dict[str, str]) -> dict[str, object]:
    """PKGREPORT_<KEY> variables; lists are comma-separated, numbers plain."""
    out: dict[str, object] = {}
    for key in CONFIG_KEYS:
        name = f"PKGREPORT_{key.upper()}"
        if name not in environ or environ[name] == "":
            continue
        raw = environ[name]
        value: object = raw
        try:
            if key in (
                "dormant_days",
                "nearly_used_up",
                "max_file_bytes",
                "max_cell_chars",
                "max_amount",
            ):
                try:
                    value = int(raw)
                except ValueError:
                    raise ConfigError("must be a whole number") from None
            elif key == "allow_shrink":
                value = _env_flag(raw)
            elif key == "shrink_threshold":
                try:
                    value = float(raw)
                except ValueError:
                    raise ConfigError("must be a fraction from 0 to 1, e.g. 0.5") from None
            elif key in ("ageing_buckets",):
                try:
                    value = [int(v) for v in raw.split(",")]
                except ValueError:
                    raise ConfigError(
                        "must be comma-separated whole numbers, e.g. 30,60,90,180,365"
                    ) from None
            elif key == "fail_on":
                value = [v.strip() for v in raw.split(",") if v.strip()]
            out[key] = _check_value(key, value)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {name}={raw!r} {exc}") from None
    return out


def _env_flag(raw: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if raw.strip().casefold() not in words:
        raise ConfigError("must be true or false (or 1 or 0)")
    return words[raw.strip().casefold()]


CONFIG_TO_SETTINGS: dict[str, str] = {
    "input": "input_dir",
    "output": "output_dir",
    "timezone": "timezone",
    "date_order": "date_order",
    "columns": "columns_file",
    "source": "source",
    "allocation": "allocation",
    "credit_applies": "credit_applies",
    "dormant_days": "dormant_days",
    "max_amount": "max_amount",
    "nearly_used_up": "nearly_used_up",
    "ageing_buckets": "ageing_buckets",
    "title": "title",
    "fail_on": "fail_on",
    "allow_shrink": "allow_shrink",
    "shrink_threshold": "shrink_threshold",
    "max_file_bytes": "max_file_bytes",
    "max_cell_chars": "max_cell_chars",
}

EXAMPLE_CONFIG = """\
# pkgreport configuration for unattended (scheduled) runs: `pkgreport run --config pkgreport.toml`.
# Precedence: this file, then PKGREPORT_* environment variables (e.g. PKGREPORT_OUTPUT), then
# command-line options. Relative paths are relative to this file.

# Folder holding this month's exports (appointments, cases, invoices, payments, ...).
input = "exports/"
# Folder for pkgreport-<as-of>.xlsx/.html/.json, the run log and history/.
output = "reports/"
# The clinic's IANA time zone; timestamps with an offset are converted to it.
timezone = "Australia/Sydney"
# Order of day, month and year in non-ISO dates: "dmy" (31/12/2026), "mdy" or "ymd".
date_order = "dmy"
# The practice system the exports come from, when not Cliniko's data exports: a mapping
# preset shipped with pkgreport (`pkgreport mapping --list`), e.g. "mindbody-api" (optional).
# source = "cliniko"
# A TOML file mapping another system's headers to pkgreport's columns (optional; over the
# source's preset when both are given).
# columns = "columns.toml"
# How unallocated payments and credit are applied: oldest-first (Cliniko's default),
# newest-first, source-only or none.
allocation = "oldest-first"
# When account credit pays an open invoice: "on-payment" (when a payment, $0 included, is
# recorded: Cliniko's behaviour) or "on-issue" (as soon as the invoice is issued).
credit_applies = "on-payment"
# The reporting period: "previous-month" (the month before the run date), "current-month",
# "YYYY-MM", or "YYYY-MM-DD..YYYY-MM-DD".
period = "previous-month"
# Credit with no movement for this many days is reported as dormant.
dormant_days = 365
# Packages with this many sessions (or fewer) left are flagged as nearly used up.
nearly_used_up = 1
# The largest amount (whole dollars) one row of an export may hold; larger amounts are refused.
max_amount = 10000000
# Upper edges (days) of the credit ageing buckets.
ageing_buckets = [30, 60, 90, 180, 365]
# Title shown on the workbook and HTML report.
title = "Packages and account credit"
# Exit with code 4 when any of these findings occur (for monitoring); [] never fails.
fail_on = ["OVER_BOOKED", "NEGATIVE_CREDIT"]
# Stop (exit 1, previous reports untouched) when a kind of export the last run read is missing
# or has fewer rows than this fraction of last time's; allow_shrink = true publishes anyway.
allow_shrink = false
shrink_threshold = 0.5
# Refuse an export file larger than this many bytes, or holding a cell longer than this.
max_file_bytes = 1073741824
max_cell_chars = 1000000
"""
