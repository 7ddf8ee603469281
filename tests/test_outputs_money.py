"""Every command's every output shows money as a decimal with two places, never as raw cents."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.reports.context import _money_shown_as_money
from pkgreport.reports.model import Column, Table

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
DECIMAL = re.compile(r"^-?\d+\.\d{2}$")
ROLL = ["opening", "created", "applied", "refunded", "closing"]

# Hand-written, independent of the registry: the money columns of each command's table.
OUTPUTS = {
    ("cases",): [],
    ("cases", "--findings"): ["amount"],
    ("credit",): [
        "received",
        "refunded",
        "invoiced",
        "applied",
        "credit",
        "open_outstanding",
        "reported_credit",
        "difference",
    ],
    ("credit", "--ageing"): ["credit", "0-30", "31-60", "61-90", "91-180", "181-365", "over 365"],
    ("credit", "--invoices"): [
        "total",
        "explicit_allocated",
        "paid_direct",
        "paid_from_credit",
        "outstanding",
        "final_outstanding",
        "final_paid_direct",
        "final_paid_from_credit",
        "outstanding_reported",
        "paid_reported",
        "credit_applied",
    ],
    ("credit", "--findings"): ["amount"],
    ("rollforward", "--from", "2026-10-01", "--to", "2026-10-31"): ROLL,
}


def _run(args: tuple[str, ...], fmt: str, out: Path | None) -> str:
    argv = [args[0], str(SAMPLE), *args[1:], "--format", fmt, "-q"]
    if out is not None:
        argv += ["--out", str(out)]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out.read_text(encoding="utf-8") if out is not None else result.stdout


@pytest.mark.parametrize("to_file", [False, True])
@pytest.mark.parametrize("args", list(OUTPUTS))
def test_csv_money_is_decimal_and_counts_are_whole(
    args: tuple[str, ...], to_file: bool, tmp_path: Path
) -> None:
    text = _run(args, "csv", tmp_path / "out.csv" if to_file else None)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert len(frame) > 0
    for column in frame.columns:
        values = [v for v in frame[column] if v != ""]
        if column in OUTPUTS[args]:
            assert all(DECIMAL.match(v) for v in values), (column, values[:3])
        else:
            assert not any(DECIMAL.match(v) for v in values), (column, values[:3])


@pytest.mark.parametrize("to_file", [False, True])
@pytest.mark.parametrize("args", list(OUTPUTS))
def test_json_money_is_cents_and_decimal_and_numbers_are_numbers(
    args: tuple[str, ...], to_file: bool, tmp_path: Path
) -> None:
    rows = json.loads(_run(args, "json", tmp_path / "out.json" if to_file else None))
    assert rows
    for row in rows:
        for column, value in row.items():
            if column in OUTPUTS[args]:
                assert set(value) == {"cents", "amount"}, (column, value)
                if value["cents"] is None:
                    assert value["amount"] is None
                    continue
                assert isinstance(value["cents"], int) and DECIMAL.match(value["amount"])
                whole, cents = value["amount"].lstrip("-").split(".")
                sign = -1 if value["amount"].startswith("-") else 1
                assert sign * (int(whole) * 100 + int(cents)) == value["cents"]
            else:
                assert not isinstance(value, (dict, float)), (column, value)


def test_cases_json_counts_are_numbers() -> None:
    rows = json.loads(_run(("cases",), "json", None))
    first = rows[0]
    assert first["case_id"] == "5000001" and first["max_sessions"] == 10
    assert all(
        isinstance(first[k], int)
        for k in (
            "counted",
            "attended",
            "upcoming",
            "cancelled",
            "dna",
            "remaining",
            "over_booked_by",
        )
    )


def test_invoice_allocations_are_dollars_not_cents() -> None:
    frame = pd.read_csv(io.StringIO(_run(("credit", "--invoices"), "csv", None)), dtype=str)
    allocated = frame.loc[frame["explicit_allocated"] != "0.00"].iloc[0]
    assert allocated["explicit_allocated"] == allocated["total"]  # not 100 times the total


def test_report_tables_show_every_cents_column_as_money() -> None:
    frame = pd.DataFrame({"patient_id": ["p1"], "final_outstanding": [9000], "counted": [3]})
    table = Table(
        "t",
        "T",
        "T",
        "",
        (
            Column("patient_id", "Patient", "id"),
            Column("final_outstanding", "Owing", "int"),
            Column("counted", "Counted", "int"),
        ),
        frame,
    )
    kinds = [c.kind for c in _money_shown_as_money(table).columns]
    assert kinds == ["id", "money", "int"]


def test_report_summary_money_is_cents_and_decimal(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(SAMPLE), "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "pkgreport-2026-10-31.json").read_text())
    money = [
        summary["totals"][k]
        for k in ("credit_liability", "open_invoices_outstanding", "package_value_undelivered")
    ]
    money += list(summary["totals"]["rollforward"].values())
    money += [f["amount"] for f in summary["findings"]]
    for value in money:
        assert set(value) == {"cents", "amount"}
        if value["cents"] is not None:
            assert DECIMAL.match(value["amount"]), value
