"""No money figure can wrap: one row is bounded by a setting, and the totals by int64."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport import pipeline
from pkgreport.cli import cli
from pkgreport.config import ConfigError, Settings, read_environment
from pkgreport.errors import InputError

HEADER = "ID,Patient ID,Payment Date,Amount\n"


def exports(tmp_path: Path, amounts: list[str]) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "invoices.csv").write_text(
        "ID,Patient ID,Issue Date,Total Amount\ni1,p1,01/10/2026,90.00\n", encoding="utf-8"
    )
    rows = "".join(f"pay{n},p1,02/10/2026,{amount}\n" for n, amount in enumerate(amounts, 1))
    (folder / "payments.csv").write_text(HEADER + rows, encoding="utf-8")
    return folder


def test_an_amount_above_the_row_bound_is_refused_naming_the_row(tmp_path: Path) -> None:
    folder = exports(tmp_path, ["10000000.00", "10000000.01", "-999999999999999.99"])
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    issues = [line.strip() for line in result.stdout.splitlines() if "ERROR" in line]
    reason = (
        "Amount is larger than the largest amount one row may hold ($10,000,000.00, the "
        "max_amount setting): check the column holds money, or raise max_amount in the "
        "config file"
    )
    assert issues == [
        f"ERROR: payments.csv, row 3, column 'Amount', value '10000000.01': {reason}",
        f"ERROR: payments.csv, row 4, column 'Amount', value '-999999999999999.99': {reason}",
    ]


def test_the_issue_93_huge_payments_never_give_a_wrapped_liability(tmp_path: Path) -> None:
    folder = exports(tmp_path, ["999999999999999.99"] * 93)
    result = CliRunner().invoke(cli, ["credit", str(folder), "--as-of", "2026-10-31"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: 93 problem(s) in the inputs must be fixed before figures can be trusted\n"
    )


def test_totals_that_could_overflow_stop_the_run(tmp_path: Path) -> None:
    # 50,000 payments of $999,999,999,999.99 each fit a raised bound but not an int64 total.
    folder = exports(tmp_path, ["999999999999.99"] * 50_000)
    settings = Settings(input_dir=folder, max_amount=1_000_000_000_000)
    with pytest.raises(InputError) as caught:
        pipeline.run(settings)
    assert str(caught.value) == (
        "the amounts in the inputs add up to $49,999,999,999,999,590.00, more than pkgreport "
        "can total exactly ($46,116,860,184,273,879.04): check that the money columns hold "
        "amounts in dollars, or lower max_amount in the config file"
    )


def test_a_raised_bound_still_totals_exactly(tmp_path: Path) -> None:
    folder = exports(tmp_path, ["999999999999.99"] * 3)
    result = pipeline.run(Settings(input_dir=folder, max_amount=1_000_000_000_000))
    assert result.credit is not None
    assert int(result.credit.patients["credit"].sum()) == 3 * 99_999_999_999_999 - 9_000


def test_max_amount_setting_is_checked() -> None:
    assert read_environment({"PKGREPORT_MAX_AMOUNT": "500"}) == {"max_amount": 500}
    with pytest.raises(ConfigError) as caught:
        read_environment({"PKGREPORT_MAX_AMOUNT": "1000000000001"})
    assert str(caught.value) == (
        "environment variable PKGREPORT_MAX_AMOUNT='1000000000001' must be at most "
        "1,000,000,000,000 (whole dollars)"
    )
