"""Column-wise formatting gives exactly what cell-by-cell formatting gives."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.reports.filters import (
    format_cell,
    format_column,
    format_int,
    format_prose_date,
    plural,
    prose_dates,
    prose_dates_column,
    sort_key,
    sort_keys,
    with_article,
)

_VALUES = st.one_of(
    st.integers(-(10**15), 10**15),
    st.none(),
    st.just(pd.NA),
    st.just(np.nan),
    st.integers(-(10**6), 10**6).map(np.int64),
    st.booleans(),
)
# Text columns hold strings too (numpy's among them) beside every kind of blank.
_TEXT_VALUES = st.one_of(_VALUES, st.text(max_size=6), st.text(max_size=6).map(np.str_))


@settings(max_examples=60, deadline=None)
@given(st.lists(_VALUES, max_size=12), st.sampled_from(["money", "int", "bool", "text"]))
def test_format_column_equals_format_cell(values: list[object], kind: str) -> None:
    assert format_column(values, kind, "dmy", "€") == [
        format_cell(v, kind, "dmy", "€") for v in values
    ]
    assert sort_keys(values, kind) == [sort_key(v, kind) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(_TEXT_VALUES, max_size=12), st.sampled_from(["text", "id"]))
def test_format_column_of_text_equals_format_cell(values: list[object], kind: str) -> None:
    assert format_column(values, kind) == [format_cell(v, kind) for v in values]


def test_format_column_money_and_counts_by_hand() -> None:
    assert format_column([123456, -5, 0, None, -100], "money") == [
        "$1,234.56",
        "-$0.05",
        "$0.00",
        "",
        "-$1.00",
    ]
    assert format_column([1234567, -3, None], "int") == ["1,234,567", "-3", ""]
    assert format_column([date(2026, 2, 3)], "date", "mdy") == ["02/03/2026"]
    assert sort_keys([-120, None], "money") == ["-120", ""]


@pytest.mark.parametrize(
    ("order", "expected"),
    [("dmy", "31 Oct 2026"), ("ymd", "31 Oct 2026"), ("mdy", "Oct 31, 2026")],
)
def test_prose_dates_follow_the_date_order(order: str, expected: str) -> None:
    assert format_prose_date(date(2026, 10, 31), order) == expected
    assert format_prose_date(date(2026, 1, 5), "dmy") == "5 Jan 2026"
    assert format_prose_date(None, order) == ""


def test_articles_plurals_and_plain_row_numbers() -> None:
    assert [with_article(n) for n in ("payment", "invoice", "Open invoice")] == [
        "a payment",
        "an invoice",
        "an Open invoice",
    ]
    assert [plural(n, "row") for n in (0, 1, 2, 1096)] == [
        "0 rows",
        "1 row",
        "2 rows",
        "1,096 rows",
    ]
    assert format_int(1096) == "1,096"
    assert format_int(1096, grouped=False) == "1096"


def test_finding_sentences_show_dates_in_the_prose_style_of_the_date_order() -> None:
    text = (
        "Case 7 was closed on 2026-08-17 12:00; credit unapplied on 2026-10-31. "
        "Invoice 2026-99-99 and id 12026-10-310 stay as they are."
    )
    assert prose_dates(text, "dmy") == (
        "Case 7 was closed on 17 Aug 2026 12:00; credit unapplied on 31 Oct 2026. "
        "Invoice 2026-99-99 and id 12026-10-310 stay as they are."
    )
    assert prose_dates("since 2025-06-07", "mdy") == "since Jun 7, 2025"


_SENTENCE_PARTS = st.sampled_from(
    ["2026-08-17", " 12:00", "T09:30", "2026-02-30", "1", "x", " ", "\x00", "on ", "-"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(_SENTENCE_PARTS, max_size=8).map("".join), max_size=8),
    st.sampled_from(["dmy", "mdy", "ymd"]),
)
def test_a_column_of_sentences_reads_as_each_sentence_does(texts: list[str], order: str) -> None:
    assert prose_dates_column(texts, order) == [prose_dates(text, order) for text in texts]


def test_a_column_of_sentences_by_hand() -> None:
    texts = ["paid 2026-10-31 and 2026-10-31 12:00", "", "x2026-10-31", "2026-13-01", "a\x00b"]
    assert prose_dates_column(texts[:4], "dmy") == [
        "paid 31 Oct 2026 and 31 Oct 2026 12:00",
        "",
        "x2026-10-31",
        "2026-13-01",
    ]
    # A sentence holding the separator: each sentence rewritten apart, the same result.
    assert prose_dates_column(texts, "mdy") == [
        "paid Oct 31, 2026 and Oct 31, 2026 12:00",
        "",
        "x2026-10-31",
        "2026-13-01",
        "a\x00b",
    ]
