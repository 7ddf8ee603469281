"""Exact tables for every parser rule, error messages included, and round-trip properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.inputs.dates import parse_dates, parse_datetimes
from pkgreport.inputs.parsing import (
    parse_bools,
    parse_count,
    parse_id,
    parse_money,
    parse_source,
    parse_status,
    parse_text,
    rounded_id,
    split_ids,
    unwrap_excel_text,
)
from pkgreport.inputs.shapes import group_equal_rows
from pkgreport.money import format_dollars, format_plain


def _col(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype=object)


# --- money ------------------------------------------------------------------------------------

MONEY_OK = [
    ("1234.5", 123450),
    ("1234.50", 123450),
    ("1,234.50", 123450),
    ("$1,234.50", 123450),
    ("-$50.00", -5000),
    ("$-50.00", -5000),
    ("($50.00)", -5000),
    ("(50)", -5000),
    ("£12", 1200),
    ("€12", 1200),
    ("AUD 12.00", 1200),
    ("12.00 AUD", 1200),
    ("aud 12.00", 1200),
    ("-AUD 12.00", -1200),
    ("AUD -12.00", -1200),
    ("  7  ", 700),
    ("0", 0),
    ("-0.00", 0),
    (".5", 50),
    ("0.05", 5),
    ("12,345,678.90", 1234567890),
    ("999999999999999.99", 99999999999999999),
    ("999999999999999", 99999999999999900),
    ("99999999", 9999999900),
    ("21474836.48", 2147483648),
    ("$ 1,000", 100000),
]

MONEY_MESSAGES = {
    "word": "is not an amount in dollars and cents: write it like 1234.50 (or -50.00 for a "
    "negative)",
    "decimals": "has more than 2 decimal places: write dollars and cents like 1234.50",
    "comma": "has a misplaced thousands separator or a decimal comma: write it like 1234.50 or "
    "1,234.50",
    "points": "has more than one decimal point: write it like 1234.50 (no thousands points)",
    "big": "is too large to be an amount: check the column holds money",
    "signs": "has more than one minus sign or bracket: write a negative amount like -50.00 or "
    "(50.00)",
}

MONEY_BAD = [
    ("1.234", "decimals"),
    ("1,7", "comma"),
    ("1,23.00", "comma"),
    ("1234,567", "comma"),
    ("1.234,56", "comma"),
    (",123", "comma"),
    ("200.000.000", "points"),
    ("abc", "word"),
    ("twelve dollars", "word"),
    ("12.", "word"),
    ("$", "word"),
    ("-", "word"),
    ("(50.00", "word"),
    ("AUD 12 AUD", "word"),
    ("12 USDX", "word"),
    ("1e5", "word"),
    ("1234567890123456", "big"),
    ("--5", "signs"),
    ("(-5)", "signs"),
    ("-$-5", "signs"),
    ("x" * 500, "word"),
]


@pytest.mark.parametrize(("text", "cents"), MONEY_OK)
def test_money_parses_to_exact_cents(text: str, cents: int) -> None:
    parsed = parse_money(_col(text))
    assert parsed.values.tolist() == [cents]
    assert str(parsed.values.dtype) == "Int64"
    assert not parsed.bad.any() and parsed.errors.empty


@pytest.mark.parametrize(("text", "problem"), MONEY_BAD)
def test_money_rejects_with_a_message(text: str, problem: str) -> None:
    parsed = parse_money(_col("1.00", text))
    assert parsed.bad.tolist() == [False, True]
    assert parsed.errors.to_dict() == {1: MONEY_MESSAGES[problem]}
    assert parsed.values.isna().tolist() == [False, True]


def test_money_whole_table_as_one_column() -> None:
    # Many shapes in one column: each row must still get its own value.
    texts = [t for t, _ in MONEY_OK] + [t for t, _ in MONEY_BAD]
    parsed = parse_money(_col(*texts))
    assert parsed.values[: len(MONEY_OK)].tolist() == [c for _, c in MONEY_OK]
    assert parsed.errors.to_dict() == {
        len(MONEY_OK) + i: MONEY_MESSAGES[p] for i, (_, p) in enumerate(MONEY_BAD)
    }


def test_money_blank_is_missing_not_bad() -> None:
    parsed = parse_money(_col("", "  ", "5", None))
    assert parsed.values.isna().tolist() == [True, True, False, True]
    assert parsed.blank.tolist() == [True, True, False, True]
    assert not parsed.bad.any()


def test_money_mostly_blank_column_keeps_row_positions() -> None:
    texts = [""] * 30
    texts[7], texts[22] = "$3.10", "oops"
    parsed = parse_money(pd.Series(texts, index=range(100, 130), dtype=object))
    assert parsed.values[107] == 310
    assert parsed.values.drop([107]).isna().all()
    assert parsed.errors.index.tolist() == [122]
    assert parsed.blank.sum() == 28


def test_money_keeps_the_input_index() -> None:
    parsed = parse_money(pd.Series(["1", "x"], index=[10, 20], dtype=object))
    assert parsed.values.index.tolist() == [10, 20]
    assert parsed.errors.index.tolist() == [20]


def _formatted(cents: int, style: str) -> str:
    dollars, rest = divmod(abs(cents), 100)
    if style == "symbol":
        return format_dollars(cents)
    if style == "brackets":
        body = f"{dollars:,}.{rest:02d}"
        return f"({body})" if cents < 0 else body
    return format_plain(cents)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-(10**17) + 1, max_value=10**17 - 1), min_size=1, max_size=30),
    st.sampled_from(["symbol", "brackets", "plain"]),
)
def test_money_round_trips(cents: list[int], style: str) -> None:
    parsed = parse_money(_col(*[_formatted(c, style) for c in cents]))
    assert parsed.values.tolist() == cents


# --- dates and timestamps ---------------------------------------------------------------------

SYDNEY = "Australia/Sydney"

TIMESTAMPS_DMY = [
    ("2026-07-21", datetime(2026, 7, 21)),
    ("2026-07-21T03:45:00", datetime(2026, 7, 21, 3, 45)),
    ("2026-07-21 03:45", datetime(2026, 7, 21, 3, 45)),
    ("2026-07-21t03:45:30", datetime(2026, 7, 21, 3, 45, 30)),
    # Sydney is +10:00 in July (winter) and +11:00 in January (daylight saving).
    ("2026-07-21T03:45:00Z", datetime(2026, 7, 21, 13, 45)),
    ("2026-01-21T03:45:00Z", datetime(2026, 1, 21, 14, 45)),
    ("2026-07-21T03:45:00+10:00", datetime(2026, 7, 21, 3, 45)),
    ("2026-07-21T23:30:00-0500", datetime(2026, 7, 22, 14, 30)),
    ("2026-07-21T03:45:00+05", datetime(2026, 7, 21, 8, 45)),
    ("2026-07-21T03:45:00.250Z", datetime(2026, 7, 21, 13, 45, 0, 250000)),
    ("21/07/2026", datetime(2026, 7, 21)),
    ("21-07-2026", datetime(2026, 7, 21)),
    ("21.07.2026", datetime(2026, 7, 21)),
    ("1/7/2026", datetime(2026, 7, 1)),
    ("21/07/2026 3:45", datetime(2026, 7, 21, 3, 45)),
    ("21/07/2026 15:45:10", datetime(2026, 7, 21, 15, 45, 10)),
    ("21/07/2026 3:45pm", datetime(2026, 7, 21, 15, 45)),
    ("21/07/2026 3:45 PM", datetime(2026, 7, 21, 15, 45)),
    ("21/07/2026 12:05 am", datetime(2026, 7, 21, 0, 5)),
    ("21/07/2026 12:05 pm", datetime(2026, 7, 21, 12, 5)),
    ("21/07/2026 11:59:59 p.m.", datetime(2026, 7, 21, 23, 59, 59)),
    ("29/02/2028", datetime(2028, 2, 29)),
    ("  21/07/2026  ", datetime(2026, 7, 21)),
]


def _date_messages(order: str, date_only: bool) -> dict[str, str]:
    example = {"dmy": "21/07/2026", "mdy": "07/21/2026", "ymd": "2026/07/21"}[order]
    name = {"dmy": "day/month/year", "mdy": "month/day/year", "ymd": "year/month/day"}[order]
    if not date_only:
        example += " 14:30"
    iso = "2026-07-21" if date_only else "2026-07-21T14:30:00"
    how = f"write it like {example} ({name}) or ISO {iso}"
    return {
        "shape": f"is not a date: {how}",
        "unreal": f"is not a real date or time when read as {name}: check the day and month (or "
        f"the date order setting), and {how}",
        "range": "is outside the accepted dates 1990-01-01 to 2100-12-31: check the year (the "
        "range is the min_date/max_date setting)",
        "offset": "has a time-zone offset but is not an ISO 8601 timestamp: write it like "
        "2026-07-21T03:45:00+10:00, or leave the offset out for clinic-local time",
    }


TIMESTAMPS_BAD_DMY = [
    ("31/02/2026", "unreal"),
    ("29/02/2027", "unreal"),
    ("13/13/2026", "unreal"),
    ("00/01/2026", "unreal"),
    ("21/07/2026 24:00", "unreal"),
    ("21/07/2026 10:60", "unreal"),
    ("21/07/2026 13:00 pm", "unreal"),
    ("21/07/2026 0:30 am", "unreal"),
    ("2026-07-21T03:45:00+25:00", "unreal"),
    ("31/12/1989", "range"),
    ("01/01/2101", "range"),
    ("9999-12-31", "range"),
    ("0001-01-01", "range"),
    ("21/07/26", "shape"),
    ("2026/07/21", "shape"),
    ("21/07-2026", "shape"),
    ("21/07/2026T03:45", "shape"),
    ("2026-07-21 3:45pm", "shape"),
    ("21 July 2026", "shape"),
    ("yesterday", "shape"),
    ("45000", "shape"),
    ("2026-07", "shape"),
    ("20260721", "shape"),
    ("21/07/2026 03:45+10:00", "offset"),
    ("21/07/2026 03:45 Z", "offset"),
]


@pytest.mark.parametrize(("text", "expected"), TIMESTAMPS_DMY)
def test_timestamps_day_first(text: str, expected: datetime) -> None:
    parsed = parse_datetimes(_col(text), date_order="dmy", timezone=SYDNEY)
    assert parsed.errors.empty
    assert parsed.values.tolist() == [pd.Timestamp(expected)]
    assert parsed.values.dtype == np.dtype("datetime64[ns]")


@pytest.mark.parametrize(("text", "problem"), TIMESTAMPS_BAD_DMY)
def test_timestamps_rejected_with_a_message(text: str, problem: str) -> None:
    parsed = parse_datetimes(_col("21/07/2026", text), date_order="dmy", timezone=SYDNEY)
    assert parsed.errors.to_dict() == {1: _date_messages("dmy", False)[problem]}
    assert parsed.values.isna().tolist() == [False, True]


def test_timestamps_whole_table_as_one_column() -> None:
    texts = [t for t, _ in TIMESTAMPS_DMY] + [t for t, _ in TIMESTAMPS_BAD_DMY] + [""]
    parsed = parse_datetimes(_col(*texts), date_order="dmy", timezone=SYDNEY)
    n = len(TIMESTAMPS_DMY)
    assert parsed.values[:n].tolist() == [pd.Timestamp(e) for _, e in TIMESTAMPS_DMY]
    messages = _date_messages("dmy", False)
    assert parsed.errors.to_dict() == {
        n + i: messages[p] for i, (_, p) in enumerate(TIMESTAMPS_BAD_DMY)
    }
    assert parsed.blank.tolist() == [False] * (len(texts) - 1) + [True]


@pytest.mark.parametrize(
    ("order", "text", "expected"),
    [
        ("mdy", "07/21/2026", datetime(2026, 7, 21)),
        ("mdy", "7/1/2026 9:05 am", datetime(2026, 7, 1, 9, 5)),
        ("mdy", "2026-07-01", datetime(2026, 7, 1)),
        ("dmy", "7/1/2026", datetime(2026, 1, 7)),
        ("ymd", "2026/07/21", datetime(2026, 7, 21)),
        ("ymd", "2026.7.1 14:00", datetime(2026, 7, 1, 14)),
        ("ymd", "2026-7-1", datetime(2026, 7, 1)),
    ],
)
def test_date_order_is_the_setting(order: str, text: str, expected: datetime) -> None:
    parsed = parse_datetimes(_col(text), date_order=order)
    assert parsed.errors.empty
    assert parsed.values.tolist() == [pd.Timestamp(expected)]


@pytest.mark.parametrize(
    ("order", "text", "problem"),
    [
        ("mdy", "21/07/2026", "unreal"),
        ("dmy", "07/21/2026", "unreal"),
        ("ymd", "21/07/2026", "shape"),
        ("dmy", "2026/07/21", "shape"),
    ],
)
def test_other_orders_are_not_guessed(order: str, text: str, problem: str) -> None:
    parsed = parse_dates(_col(text), date_order=order)
    assert parsed.errors.tolist() == [_date_messages(order, True)[problem]]


def test_unknown_date_order_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown date order"):
        parse_datetimes(_col("2026-07-21"), date_order="myd")


def test_dates_keep_midnight_and_drop_given_times() -> None:
    parsed = parse_dates(
        _col("21/07/2026", "21/07/2026 15:45", "2026-07-21T23:30:00Z", "2026-07-21T10:00:00Z"),
        timezone=SYDNEY,
    )
    # 23:30 UTC is already the 22nd in Sydney: the date is the clinic's date.
    assert parsed.values.tolist() == [
        pd.Timestamp(2026, 7, 21),
        pd.Timestamp(2026, 7, 21),
        pd.Timestamp(2026, 7, 22),
        pd.Timestamp(2026, 7, 21),
    ]


def test_date_range_is_the_setting_and_inclusive() -> None:
    parsed = parse_dates(
        _col("01/03/2026", "28/02/2026", "31/03/2026", "01/04/2026"),
        min_date=date(2026, 3, 1),
        max_date=date(2026, 3, 31),
    )
    assert parsed.bad.tolist() == [False, True, False, True]
    assert parsed.errors[1].startswith("is outside the accepted dates 2026-03-01 to 2026-03-31")
    stamps = parse_datetimes(
        _col("31/03/2026 23:59", "01/04/2026 00:00"),
        min_date=date(2026, 3, 1),
        max_date=date(2026, 3, 31),
    )
    assert stamps.bad.tolist() == [False, True]


def test_range_is_checked_after_conversion_to_the_clinic_zone() -> None:
    parsed = parse_datetimes(
        _col("2026-03-31T14:30:00Z"),
        timezone=SYDNEY,
        min_date=date(2026, 3, 1),
        max_date=date(2026, 3, 31),
    )
    # 14:30 UTC on 31 March is 1:30 on 1 April in Sydney: outside a range ending 31 March.
    assert parsed.bad.tolist() == [True]


def test_timestamps_with_no_offset_are_not_converted() -> None:
    parsed = parse_datetimes(_col("2026-07-21T03:45:00"), timezone=SYDNEY)
    assert parsed.values.tolist() == [pd.Timestamp(2026, 7, 21, 3, 45)]


def test_mostly_blank_timestamp_column() -> None:
    texts = [""] * 40
    texts[3] = "21/07/2026 10:00"
    parsed = parse_datetimes(_col(*texts))
    assert parsed.values[3] == pd.Timestamp(2026, 7, 21, 10)
    assert parsed.values.isna().sum() == 39
    assert parsed.blank.sum() == 39 and not parsed.bad.any()


def test_date_parser_takes_non_text_input() -> None:
    parsed = parse_dates(pd.Series([np.nan, None, "21/07/2026"], dtype=object))
    assert parsed.blank.tolist() == [True, True, False]
    assert parsed.values[2] == pd.Timestamp(2026, 7, 21)


_SEPARATORS = st.sampled_from(["/", "-", "."])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31, 23, 59)),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["dmy", "mdy", "ymd"]),
    _SEPARATORS,
    st.sampled_from(["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S%p"]),
    st.booleans(),
)
def test_dates_round_trip_in_every_order(
    stamps: list[datetime], order: str, sep: str, clock: str, padded: bool
) -> None:
    fields = {"dmy": ("%d", "%m", "%Y"), "mdy": ("%m", "%d", "%Y"), "ymd": ("%Y", "%m", "%d")}
    fmt = sep.join(fields[order]) + clock
    texts = []
    for stamp in stamps:
        text = stamp.strftime(fmt)
        if not padded:
            # Single-digit days, months and 12-hour hours are written without a zero too.
            text = " ".join(
                sep.join(p.lstrip("0") if len(p) == 2 else p for p in chunk.split(sep))
                if i == 0
                else chunk
                for i, chunk in enumerate(text.split(" "))
            )
        texts.append(text)
    resolution = "s" if "%S" in clock else ("m" if clock else "D")
    expected = [pd.Timestamp(s).floor({"s": "s", "m": "min", "D": "D"}[resolution]) for s in stamps]
    parsed = parse_datetimes(_col(*texts), date_order=order)
    assert parsed.errors.empty, (texts, parsed.errors.tolist())
    assert parsed.values.tolist() == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2100, 12, 30)),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["Z", "+10:00", "-05:30", "+0930"]),
)
def test_iso_offsets_convert_like_pandas(stamps: list[datetime], offset: str) -> None:
    texts = [s.strftime("%Y-%m-%dT%H:%M:%S") + offset for s in stamps]
    parsed = parse_datetimes(_col(*texts), timezone=SYDNEY)
    reference = (
        pd.to_datetime(pd.Series(texts), format="ISO8601", utc=True)
        .dt.tz_convert(SYDNEY)
        .dt.tz_localize(None)
        .astype("datetime64[ns]")
    )
    assert parsed.values.tolist() == reference.tolist()


# --- small vocabularies -----------------------------------------------------------------------

BOOL_MESSAGE = "is not yes or no: write yes/no, true/false, y/n or 1/0 (blank means no)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Y", True),
        ("TRUE", True),
        ("t", True),
        ("1", True),
        ("1.0", True),
        ("No", False),
        ("n", False),
        ("false", False),
        ("F", False),
        ("0", False),
        (" no ", False),
        ("", False),
    ],
)
def test_bools(text: str, expected: bool) -> None:
    parsed = parse_bools(_col(text))
    assert parsed.values.tolist() == [expected] and parsed.values.dtype == bool
    assert parsed.errors.empty


def test_bool_blank_takes_the_default_and_words_are_errors() -> None:
    parsed = parse_bools(_col("", "maybe", "2", "yes"), default=True)
    assert parsed.values.tolist()[0] is True
    assert parsed.errors.to_dict() == {
        1: "is not yes or no: write yes/no, true/false, y/n or 1/0 (blank means yes)",
        2: "is not yes or no: write yes/no, true/false, y/n or 1/0 (blank means yes)",
    }
    assert parse_bools(_col("maybe")).errors.tolist() == [BOOL_MESSAGE]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "open"),
        ("20", "paid"),
        ("30", "closed"),
        ("40", "open_credit"),
        ("20.0", "paid"),
        ("Open", "open"),
        ("PAID", "paid"),
        ("closed", "closed"),
        ("Open credit", "open_credit"),
        ("open_credit", "open_credit"),
        ("Open-Credit", "open_credit"),
    ],
)
def test_status(text: str, expected: str) -> None:
    parsed = parse_status(_col(text))
    assert parsed.values.tolist() == [expected] and parsed.errors.empty


def test_status_blank_and_unknown() -> None:
    parsed = parse_status(_col("", "Draft", "50"))
    assert pd.isna(parsed.values[0]) and parsed.blank.tolist() == [True, False, False]
    message = (
        "is not an invoice status: write Open, Paid, Closed or Open credit (or Cliniko's "
        "code 10, 20, 30 or 40)"
    )
    assert parsed.errors.to_dict() == {1: message, 2: message}


COUNT_WORD = "is not a whole number of sessions: write it like 4, or leave it blank for no maximum"
COUNT_ZERO = (
    "must be 1 or more: write the number of sessions in the package, or leave it blank "
    "for no maximum"
)


@pytest.mark.parametrize(
    ("text", "expected", "message"),
    [
        ("4", 4, None),
        ("4.0", 4, None),
        ("4.00", 4, None),
        (" 12 ", 12, None),
        ("", None, None),
        ("0", None, COUNT_ZERO),
        ("4.5", None, COUNT_WORD),
        ("-1", None, COUNT_WORD),
        ("four", None, COUNT_WORD),
        ("1e3", None, COUNT_WORD),
        ("1234567890", None, COUNT_WORD),
    ],
)
def test_count(text: str, expected: int | None, message: str | None) -> None:
    parsed = parse_count(_col(text))
    assert str(parsed.values.dtype) == "Int64"
    if expected is None:
        assert parsed.values.isna().all()
    else:
        assert parsed.values.tolist() == [expected]
    assert parsed.errors.tolist() == ([message] if message else [])


def test_source() -> None:
    parsed = parse_source(_col("payment", "Credit", "", "cash"))
    assert parsed.values.tolist()[:2] == ["payment", "credit"]
    assert pd.isna(parsed.values[2])
    assert parsed.errors.to_dict() == {
        3: "is not an allocation source: write payment (paid from the payment named in "
        "payment_id) or credit (paid from the patient's account credit)"
    }


def test_ids_are_text_exactly_as_written_after_strip() -> None:
    parsed = parse_id(_col(" 00123 ", "1234.0", "", "   ", "A-7"))
    assert parsed.values.tolist()[:2] == ["00123", "1234.0"]
    assert parsed.values.isna().tolist() == [False, False, True, True, False]
    assert parsed.blank.tolist() == [False, False, True, True, False]
    assert parsed.values.dtype == object and parsed.errors.empty


def test_text_takes_non_text_input() -> None:
    parsed = parse_text(pd.Series([12, None, "x"], dtype=object))
    assert parsed.values.tolist()[0] == "12" and pd.isna(parsed.values[1])


def test_parsers_accept_pandas_string_dtype() -> None:
    series = pd.Series(["$1.00", None], dtype="str")
    assert parse_money(series).values.tolist()[0] == 100
    assert parse_text(series).values.isna().tolist() == [False, True]


def test_empty_columns() -> None:
    empty = pd.Series([], dtype=object)
    for parser in (
        parse_money,
        parse_datetimes,
        parse_text,
        parse_bools,
        parse_status,
        parse_count,
        parse_source,
    ):
        parsed = parser(empty)
        assert len(parsed.values) == 0 and parsed.errors.empty


def test_parsing_is_vectorised_not_a_loop_per_row() -> None:
    # Guard against a per-row Python fallback creeping in: 200,000 varied rows must finish
    # far inside the time a loop would take (generous for a shared, busy machine).
    import time

    n = 200_000
    cents = np.arange(n, dtype=np.int64) * 37 - 1_000_000
    money = pd.Series([_formatted(int(c), "symbol") for c in cents], dtype=object)
    stamps = pd.Series(
        pd.to_datetime(np.arange(n) * 600 + 1_700_000_000, unit="s")
        .strftime("%d/%m/%Y %H:%M")
        .tolist(),
        dtype=object,
    )
    started = time.perf_counter()
    assert parse_money(money).values.tolist()[:3] == cents[:3].tolist()
    assert not parse_datetimes(stamps).bad.any()
    assert time.perf_counter() - started < 8


def test_wide_value_does_not_size_the_whole_column() -> None:
    parsed = parse_dates(_col("21/07/2026", "9" * 100_000))
    assert parsed.bad.tolist() == [False, True]
    assert timedelta(0) == parsed.values[0] - pd.Timestamp(2026, 7, 21)


# Money and dates are read once per distinct value and spread back by row: a whole column must
# give exactly what each of its values gives on its own, whatever repeats and blanks it holds.
_POOL = st.sampled_from(
    [
        "",
        " ",
        "21/07/2026",
        "21/07/2026 14:30",
        " 1/2/2026 3:45pm ",
        "2026-07-21T03:45:00+10:00",
        "31/02/2026",
        "21/07/1980",
        "x",
        "$1,234.50",
        "(50.00)",
        "-$0.05",
        "1,7",
        "12.345",
        "9" * 50,
    ]
)


def _alone(parser, values: list[str]) -> tuple[list[object], list[bool], list[bool], list[str]]:
    rows = [parser(_col(v)) for v in values]
    return (
        [r.values.iloc[0] for r in rows],
        [bool(r.bad[0]) for r in rows],
        [bool(r.blank[0]) for r in rows],
        [m for r in rows for m in r.errors.tolist()],
    )


@settings(max_examples=80, deadline=None)
@given(st.lists(_POOL, min_size=1, max_size=40))
def test_a_column_reads_like_its_values_one_by_one(values: list[str]) -> None:
    for parser in (parse_money, parse_datetimes, parse_dates):
        parsed = parser(pd.Series(values, index=range(5, 5 + len(values)), dtype=object))
        expected_values, bad, blank, messages = _alone(parser, values)
        got = parsed.values.tolist()
        assert [pd.isna(v) for v in got] == [pd.isna(v) for v in expected_values]
        assert [v for v in got if not pd.isna(v)] == [v for v in expected_values if not pd.isna(v)]
        assert parsed.bad.tolist() == bad and parsed.blank.tolist() == blank
        assert parsed.errors.tolist() == messages
        assert parsed.errors.index.tolist() == [5 + i for i, b in enumerate(bad) if b]


def _assert_same_parse(got, expected) -> None:  # type: ignore[no-untyped-def]
    pd.testing.assert_series_equal(got.values, expected.values)
    assert got.bad.tolist() == expected.bad.tolist()
    assert got.blank.tolist() == expected.blank.tolist()
    pd.testing.assert_series_equal(got.errors, expected.errors)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        _POOL
        | st.sampled_from([" 12 ", "yes", "N/A", "Open", "3", "  "])
        | st.sampled_from(["1.01754E+18", "2e+5", "1017540000000000000", "1017550000000000000"]),
        min_size=1,
    )
)
def test_a_column_held_as_codes_reads_as_the_same_text(values: list[str]) -> None:
    """The loader holds a CSV column whose values repeat as a categorical of `str`: every parser
    reads it from its codes exactly as it reads the same text in an object column."""
    # Unused categories, and codes in another order than the rows', as pyarrow leaves them.
    categories = pd.Index(["header", *sorted(set(values), reverse=True)], dtype=object)
    index = range(5, 5 + len(values))
    coded = pd.Series(pd.Categorical(values, categories=categories), index=index)
    assert coded.dtype == "category"
    plain = pd.Series(values, index=index, dtype=object)
    for parser in (
        parse_money,
        parse_datetimes,
        parse_dates,
        parse_bools,
        parse_status,
        parse_text,
        lambda v: parse_count(v, minimum=0),
    ):
        _assert_same_parse(parser(coded), parser(plain))
    assert rounded_id(coded) == rounded_id(plain)


def test_mostly_blank_column_with_repeats_keeps_row_positions() -> None:
    texts = [""] * 20
    texts[2] = texts[9] = "21/07/2026 10:00"
    texts[15] = "99/99/2026"
    parsed = parse_datetimes(_col(*texts))
    assert parsed.values[2] == parsed.values[9] == pd.Timestamp(2026, 7, 21, 10)
    assert parsed.values.isna().sum() == 18
    assert parsed.bad.tolist() == [i == 15 for i in range(20)]
    assert parsed.blank.sum() == 17


# --- Cliniko's values -------------------------------------------------------------------------


def test_n_a_flags_take_the_default() -> None:
    parsed = parse_bools(_col("N/A", "n/a", "NA", "TRUE", "FALSE"))
    assert parsed.values.tolist() == [False, False, False, True, False]
    assert parsed.errors.empty


def test_day_first_dates_without_zero_padding() -> None:
    assert parse_dates(_col("5/11/2022", "1/1/2023")).values.tolist() == [
        pd.Timestamp("2022-11-05"),
        pd.Timestamp("2023-01-01"),
    ]
    assert parse_datetimes(_col("5/11/2022 9:30", "15/11/2022 14:05")).values.tolist() == [
        pd.Timestamp("2022-11-05 09:30"),
        pd.Timestamp("2022-11-15 14:05"),
    ]


def test_numeric_offsets_on_both_sides_of_daylight_saving_convert() -> None:
    parsed = parse_datetimes(
        _col("2022-11-01 08:00:00 +1100", "2023-04-03 09:00:00 +1000"), timezone=SYDNEY
    )
    assert parsed.errors.empty
    assert parsed.values.tolist() == [
        pd.Timestamp("2022-11-01 08:00"),
        pd.Timestamp("2023-04-03 09:00"),
    ]


def test_a_count_may_start_at_zero() -> None:
    parsed = parse_count(_col("0", "2", ""), minimum=0)
    assert parsed.errors.empty
    assert parsed.values.tolist() == [0, 2, pd.NA]


def test_excel_safe_cells_are_unwrapped() -> None:
    cells = np.array(
        ['="1558354464010667075"', ' ="007" ', '="say ""hi"""', "=SUM(A1)", 'x="1"', "plain"],
        dtype=object,
    )
    assert unwrap_excel_text(cells).tolist() == [
        "1558354464010667075",
        "007",
        'say "hi"',
        "=SUM(A1)",
        'x="1"',
        "plain",
    ]
    unchanged = np.array(["1", "2"], dtype=object)
    assert unwrap_excel_text(unchanged) is unchanged


def test_long_ids_stay_exact() -> None:
    ids = ["1558354464010667075", "999999999999999999", "9223372036854775807"]
    assert parse_id(_col(*ids)).values.tolist() == ids
    assert rounded_id(_col(*ids)) is None


@pytest.mark.parametrize(
    ("values", "example"),
    [
        # Scientific notation is a rounded id wherever it is, even beside intact ids.
        (["1558354464010667075", "1.55835E+18"], "1.55835E+18"),
        (["1,55835E+18"], "1,55835E+18"),
        (["1558354464010667075, 1.55835E+18"], "1.55835E+18"),
        # Two or more different long ids, every one ending in zeros past the 15th digit.
        (["1558354464010660000", "1017540000000000000"], "1017540000000000000"),
        (
            ["1558354464010660000", "1558354464010660000", "1017540000000000000"],
            "1017540000000000000",
        ),
        (["155835446401066000", "101754000000000000", "7"], "101754000000000000"),
        # Not rounded: one long id ending in zeros, or long ids of which one ends otherwise.
        (["1558354464010660000", "1558354464010660000"], None),
        (["1558354464010660000", "1017540000000000001"], None),
        (["1200000", "3400000"], None),
        (["E+1", "note E+"], None),
    ],
)
def test_rounded_ids(values: list[str], example: str | None) -> None:
    assert rounded_id(_col(*values)) == example


def test_split_ids_lists_each_patient_of_a_group() -> None:
    assert split_ids(_col("p1", "p2")) is None
    rows, ids = split_ids(_col("p1", "p2, p3", "p4;p5 p6", "p7"))
    assert rows.tolist() == [0, 1, 1, 2, 2, 2, 3]
    assert ids.tolist() == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]


def test_split_ids_of_a_column_held_as_codes_are_those_of_its_text() -> None:
    # Cells as written (a CSV column whose values repeat is held as codes): each is stripped,
    # a blank gives no id, and a value that lists several but that no row holds lists nothing.
    cells = [" p1 ", "p2, p3", "", "p4;p5 p6", "p2, p3", "p7"]
    categories = ["q1, q2", *dict.fromkeys(cells)]
    held = pd.Series(pd.Categorical(cells, categories=categories))
    for column in (held, _col(*cells)):
        rows, ids = split_ids(column)
        assert rows.tolist() == [0, 1, 1, 3, 3, 3, 4, 4, 5]
        assert ids.tolist() == ["p1", "p2", "p3", "p4", "p5", "p6", "p2", "p3", "p7"]
    alone = pd.Series(pd.Categorical(["p1", " p2"], categories=["p1", " p2", "q1, q2"]))
    assert split_ids(alone) is None


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_shapes_are_grouped_exactly(data: st.DataObject) -> None:
    # Rows of 40 characters (the widest shape) are grouped whole, in order of first appearance:
    # two rows share a group exactly when every character agrees, whatever the code points. The
    # rows come from a small pool, so most repeat and some differ in a single character.
    row = st.lists(st.sampled_from([0, 57, 46, 47, 0xFFFF]), min_size=40, max_size=40)
    pool = data.draw(st.lists(row, min_size=1, max_size=4))
    pool += [[*r[:-1], 57 if r[-1] != 57 else 46] for r in pool]
    rows = data.draw(st.lists(st.sampled_from(pool), max_size=60))
    matrix = np.array(rows, dtype=np.uint32).reshape(len(rows), 40)
    group, group_count = group_equal_rows(matrix)
    first_seen: dict[tuple[int, ...], int] = {}
    expected = [first_seen.setdefault(tuple(row), len(first_seen)) for row in rows]
    assert group.tolist() == expected
    assert group_count == len(first_seen)
