"""Plain CSV/JSON output: money as exact decimals from integer cents."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pkgreport.tabular import format_cents, to_csv_text, to_json_text


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (-5, "-0.05"),
        (115000, "1150.00"),
        (-123456, "-1234.56"),
        (None, ""),
        (pd.NA, ""),
    ],
)
def test_format_cents(cents: object, text: str) -> None:
    assert format_cents(cents) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_cents_round_trips_exactly(cents: int) -> None:
    whole, frac = format_cents(cents).lstrip("-").split(".")
    sign = -1 if format_cents(cents).startswith("-") else 1
    assert sign * (int(whole) * 100 + int(frac)) == cents


def test_frames_render_money_dates_and_blanks() -> None:
    frame = pd.DataFrame(
        {
            "patient_id": ["007", "8"],
            "credit": pd.array([115000, None], dtype="Int64"),
            "counted": [3, 0],
            "day": pd.to_datetime(["2026-10-31", None]),
            "flag": [True, False],
        }
    )
    assert to_csv_text(frame) == (
        "patient_id,credit,counted,day,flag\n007,1150.00,3,2026-10-31,true\n8,,0,,false\n"
    )
    assert json.loads(to_json_text(frame)) == [
        {
            "patient_id": "007",
            "credit": {"cents": 115000, "amount": "1150.00"},
            "counted": 3,
            "day": "2026-10-31",
            "flag": True,
        },
        {
            "patient_id": "8",
            "credit": {"cents": None, "amount": None},
            "counted": 0,
            "day": None,
            "flag": False,
        },
    ]


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_written_as_text() -> None:
    frame = pd.DataFrame(
        {
            "patient_name": ['=HYPERLINK("http://x","Ann")', "+61 400", "-Bo", "@SUM(A1)", "Cy"],
            "credit": pd.array([100, -250, 0, 5, 1], dtype="int64"),
            "counted": pd.array([1, 2, 3, 4, 5], dtype="int64"),
        }
    )
    assert to_csv_text(frame).splitlines() == [
        "patient_name,credit,counted",
        '"\'=HYPERLINK(""http://x"",""Ann"")",1.00,1',
        "'+61 400,-2.50,2",
        "'-Bo,0.00,3",
        "'@SUM(A1),0.05,4",
        "Cy,0.01,5",
    ]
