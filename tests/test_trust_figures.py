"""Figures that must agree between outputs: counts, liability, package value at the as-of date."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def report(folder: Path, out: Path, *options: str) -> dict:
    result = CliRunner().invoke(cli, ["report", str(folder), "-o", str(out), "-q", *options])
    assert result.exit_code == 0, result.stderr
    return json.loads(next(out.glob("pkgreport-*.json")).read_text(encoding="utf-8"))


def test_excluded_rows_count_is_the_validation_sheet_list(tmp_path: Path) -> None:
    summary = report(SAMPLE, tmp_path)
    sheet = openpyxl.load_workbook(next(tmp_path.glob("*.xlsx")), read_only=True)["Validation"]
    excluded = [row for row in sheet.iter_rows(values_only=True) if row and row[0] == "excluded"]
    assert len(excluded) == 2
    assert summary["counts"]["excluded_rows"] == 2
