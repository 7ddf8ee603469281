"""Settings from a TOML file and PKGREPORT_* variables: every bad key or value is named with its line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pkgreport.config import (
    EXAMPLE_CONFIG,
    ConfigError,
    PeriodSpec,
    parse_period,
    read_config_file,
    read_environment,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pkgreport.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    values = read_config_file(write(tmp_path, EXAMPLE_CONFIG))
    assert values["input"] == tmp_path / "exports"
    assert values["output"] == tmp_path / "reports"
    assert values["timezone"] == "Australia/Sydney"
    assert values["period"] == PeriodSpec("previous-month")
    assert values["ageing_buckets"] == (30, 60, 90, 180, 365)
    assert values["fail_on"] == ("OVER_BOOKED", "NEGATIVE_CREDIT")
    assert values["allow_shrink"] is False and values["shrink_threshold"] == 0.5
    assert values["max_file_bytes"] == 1024**3 and values["max_cell_chars"] == 1_000_000


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'input = "x"\n\ntimezon = "UTC"\n')
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert str(err.value) == (
        f"{path}, line 3: unknown key 'timezon' (did you mean 'timezone'?); known keys: input, "
        "output, timezone, date_order, columns, source, allocation, credit_applies, period, dormant_days, "
        "nearly_used_up, ageing_buckets, title, fail_on, allow_shrink, shrink_threshold, "
        "max_file_bytes, max_cell_chars, max_amount"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('date_order = "dym"', "date_order = 'dym' must be one of dmy, mdy, ymd"),
        (
            'timezone = "Mars/Base"',
            "timezone = 'Mars/Base' is not an IANA time zone name (e.g. Australia/Sydney)",
        ),
        ("dormant_days = 0", "dormant_days = 0 must be a whole number >= 1"),
        ("dormant_days = true", "dormant_days = True must be a whole number >= 1"),
        (
            "ageing_buckets = [60, 30]",
            "ageing_buckets = [60, 30] must be a list of increasing whole numbers of days, e.g. [30, 60, 90, 180, 365]",
        ),
        (
            'fail_on = ["OVERBOOKED"]',
            "fail_on = ['OVERBOOKED'] unknown finding code(s) OVERBOOKED; known: ",
        ),
        (
            'allocation = "fifo"',
            "allocation = 'fifo' must be one of oldest-first, newest-first, source-only, none",
        ),
        ('period = "last-month"', "period = 'last-month' 'last-month' is not a period"),
        ('allow_shrink = "yes"', "allow_shrink = 'yes' must be true or false"),
        (
            "shrink_threshold = 2",
            "shrink_threshold = 2 must be a fraction from 0 to 1, e.g. 0.5 (stop below half)",
        ),
        ("max_cell_chars = 0", "max_cell_chars = 0 must be a whole number >= 1"),
    ],
)
def test_bad_values_name_key_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, f'title = "x"\n{line}\n')
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert str(err.value).startswith(f"{path}, line 2: {message}")


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "input = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        read_config_file(path)


def test_environment_values_are_parsed_and_checked() -> None:
    env = {
        "PKGREPORT_DORMANT_DAYS": "90",
        "PKGREPORT_AGEING_BUCKETS": "30,60",
        "PKGREPORT_FAIL_ON": "OVER_BOOKED, DORMANT_CREDIT",
        "PKGREPORT_PERIOD": "2026-10",
        "PKGREPORT_TITLE": "",
        "UNRELATED": "x",
    }
    values = read_environment(env)
    assert values == {
        "dormant_days": 90,
        "ageing_buckets": (30, 60),
        "fail_on": ("OVER_BOOKED", "DORMANT_CREDIT"),
        "period": PeriodSpec("explicit", date(2026, 10, 1), date(2026, 10, 31)),
    }
    with pytest.raises(ConfigError, match="PKGREPORT_DORMANT_DAYS='soon' must be a whole number"):
        read_environment({"PKGREPORT_DORMANT_DAYS": "soon"})


def test_shrink_settings_come_from_the_environment_too() -> None:
    env = {
        "PKGREPORT_ALLOW_SHRINK": "yes",
        "PKGREPORT_SHRINK_THRESHOLD": "0.25",
        "PKGREPORT_MAX_FILE_BYTES": "1000",
    }
    assert read_environment(env) == {
        "allow_shrink": True,
        "shrink_threshold": 0.25,
        "max_file_bytes": 1000,
    }
    with pytest.raises(ConfigError) as err:
        read_environment({"PKGREPORT_ALLOW_SHRINK": "maybe"})
    assert str(err.value) == (
        "environment variable PKGREPORT_ALLOW_SHRINK='maybe' must be true or false (or 1 or 0)"
    )


@pytest.mark.parametrize(
    ("spec", "run_date", "expected"),
    [
        ("previous-month", date(2026, 11, 1), (date(2026, 10, 1), date(2026, 10, 31))),
        ("previous-month", date(2026, 1, 31), (date(2025, 12, 1), date(2025, 12, 31))),
        ("previous-month", date(2024, 3, 15), (date(2024, 2, 1), date(2024, 2, 29))),
        ("current-month", date(2026, 2, 10), (date(2026, 2, 1), date(2026, 2, 28))),
        ("2026-09", date(2030, 1, 1), (date(2026, 9, 1), date(2026, 9, 30))),
        ("2026-07-01..2026-09-30", date(2030, 1, 1), (date(2026, 7, 1), date(2026, 9, 30))),
    ],
)
def test_periods_resolve(spec: str, run_date: date, expected: tuple[date, date]) -> None:
    assert parse_period(spec).resolve(run_date) == expected


def test_period_table_and_reversed_period() -> None:
    assert parse_period({"from": date(2026, 1, 1), "to": date(2026, 1, 5)}).resolve(
        date(2030, 1, 1)
    ) == (date(2026, 1, 1), date(2026, 1, 5))
    with pytest.raises(ConfigError, match=r"starts .* after it ends"):
        parse_period("2026-10-31..2026-10-01")
