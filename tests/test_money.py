"""Money formatting: exact text from integer cents, for people and for plain output."""

from __future__ import annotations

import pytest

from pkgreport.money import format_dollars, format_plain


@pytest.mark.parametrize(
    ("cents", "dollars", "plain"),
    [
        (123456, "$1,234.56", "1234.56"),
        (-5000, "-$50.00", "-50.00"),
        (7, "$0.07", "0.07"),
        (-7, "-$0.07", "-0.07"),
        (0, "$0.00", "0.00"),
        (10**17 - 1, "$999,999,999,999,999.99", "999999999999999.99"),
    ],
)
def test_formats(cents: int, dollars: str, plain: str) -> None:
    assert format_dollars(cents) == dollars
    assert format_plain(cents) == plain


def test_other_symbols() -> None:
    assert format_dollars(-123456, "£") == "-£1,234.56"
