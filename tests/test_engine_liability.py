"""Credit ageing, roll-forward and package value: exact hand-computed figures and invariants."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pkgreport.engine.credit import CREDIT_APPLIES, POLICIES
from pkgreport.engine.credit import compute_credit as engine_compute_credit
from pkgreport.engine.liability import (
    TOTAL,
    age_credit,
    bucket_labels,
    package_value,
    roll_forward,
    roll_forward_by_month,
)


def compute_credit(*args: Any, **kwargs: Any) -> Any:
    """Hand-computed tables below spend credit when an invoice is issued (`on-issue`)."""
    kwargs.setdefault("credit_applies", "on-issue")
    return engine_compute_credit(*args, **kwargs)


D0 = date(2026, 1, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def invoices(*rows: tuple) -> pd.DataFrame:
    """rows: (invoice_id, patient_id, day, total)."""
    return pd.DataFrame(
        {
            "invoice_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "issue_date": pd.to_datetime([pd.Timestamp(day(r[2])) for r in rows]).astype(
                "datetime64[ns]"
            ),
            "total": np.array([r[3] for r in rows], dtype=np.int64),
            "source_file": "invoices.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )


def payments(*rows: tuple) -> pd.DataFrame:
    """rows: (payment_id, patient_id, day, amount)."""
    return pd.DataFrame(
        {
            "payment_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "paid_at": pd.to_datetime(
                [pd.Timestamp(day(r[2])) + pd.Timedelta(hours=11) for r in rows]
            ).astype("datetime64[ns]"),
            "amount": np.array([r[3] for r in rows], dtype=np.int64),
            "source_file": "payments.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )


EMPTY_INV = invoices(("_", "_", 0, 0)).iloc[0:0]
EMPTY_PAY = payments(("_", "_", 0, 0)).iloc[0:0]


def test_bucket_labels_come_from_the_edges():
    assert bucket_labels((30, 60, 90, 180, 365)) == [
        "0-30",
        "31-60",
        "61-90",
        "91-180",
        "181-365",
        "over 365",
    ]
    assert bucket_labels((7,)) == ["0-7", "over 7"]
    with pytest.raises(ValueError, match="increasing"):
        bucket_labels((60, 30))


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(0, "0-30"), (30, "0-30"), (31, "31-60"), (365, "181-365"), (366, "over 365")],
)
def test_ageing_bucket_edges(age, bucket):
    result = compute_credit(EMPTY_INV, payments(("y1", "p", 0, 1234)), None, None, day(age))
    aged = age_credit(result, day(age))
    row = aged.iloc[0]
    assert row["credit"] == 1234 and row[bucket] == 1234
    assert int(row[bucket_labels((30, 60, 90, 180, 365))].sum()) == 1234


def test_ageing_spends_the_oldest_credit_first():
    pay = payments(("y1", "p", 0, 10000), ("y2", "p", 40, 5000))
    inv = invoices(("i1", "p", 50, 12000))
    result = compute_credit(inv, pay, None, None, day(100))
    aged = age_credit(result, day(100), buckets=(30, 60, 90))
    # 12000 spent: all of y1 then 2000 of y2; 3000 of y2 (60 days old) is left.
    assert aged.to_dict("records") == [
        {"patient_id": "p", "credit": 3000, "0-30": 0, "31-60": 3000, "61-90": 0, "over 90": 0}
    ]
    earlier = age_credit(result, day(45), buckets=(30, 60, 90))
    assert earlier.to_dict("records") == [
        {"patient_id": "p", "credit": 15000, "0-30": 5000, "31-60": 10000, "61-90": 0, "over 90": 0}
    ]


def test_negative_credit_is_aged_by_the_first_uncovered_use():
    pay = payments(("y1", "p", 0, 1000), ("r1", "p", 10, -3000))
    result = compute_credit(EMPTY_INV, pay, None, None, day(50))
    aged = age_credit(result, day(50), buckets=(30, 60))
    assert aged.to_dict("records") == [
        {"patient_id": "p", "credit": -2000, "0-30": 0, "31-60": -2000, "over 60": 0}
    ]


def test_ageing_accepts_the_ledger_and_leaves_out_zero_balances():
    pay = payments(("y1", "p", 0, 1000), ("y2", "q", 0, 500), ("r2", "q", 1, -500))
    result = compute_credit(EMPTY_INV, pay, None, None, day(5))
    aged = age_credit(result.ledger, day(5))
    assert list(aged["patient_id"]) == ["p"]


def test_roll_forward_across_months():
    pay = payments(
        ("y1", "p", 9, 10000), ("r1", "p", 50, -1000), ("y2", "p", 61, 3000), ("z1", "q", 40, 700)
    )
    inv = invoices(("i1", "p", 35, 6000))  # Feb 5
    result = compute_credit(inv, pay, None, None, day(90))
    feb = roll_forward(result.ledger, date(2026, 2, 1), date(2026, 2, 28))
    assert feb.to_dict("records") == [
        {
            "patient_id": "p",
            "opening": 10000,
            "created": 0,
            "applied": 6000,
            "refunded": 1000,
            "closing": 3000,
        },
        {
            "patient_id": "q",
            "opening": 0,
            "created": 700,
            "applied": 0,
            "refunded": 0,
            "closing": 700,
        },
        {
            "patient_id": TOTAL,
            "opening": 10000,
            "created": 700,
            "applied": 6000,
            "refunded": 1000,
            "closing": 3700,
        },
    ]
    mar = roll_forward(result, date(2026, 3, 1), date(2026, 3, 31))
    assert mar.iloc[0].to_dict() == {
        "patient_id": "p",
        "opening": 3000,
        "created": 3000,
        "applied": 0,
        "refunded": 0,
        "closing": 6000,
    }
    assert mar["closing"].iloc[-1] == 6700


def test_roll_forward_by_month_in_one_pass():
    # Jan: y1 10000 created (Jan 10). Feb: i1 applies 6000 (Feb 5), r1 refunds 1000 (Feb 20),
    # z1 700 created (Feb 10). Mar: y2 3000 created (Mar 3). Apr: y3 (Apr 11) is after as_of.
    pay = payments(
        ("y1", "p", 9, 10000),
        ("r1", "p", 50, -1000),
        ("y2", "p", 61, 3000),
        ("z1", "q", 40, 700),
        ("y3", "q", 100, 500),
    )
    inv = invoices(("i1", "p", 35, 6000))
    result = compute_credit(inv, pay, None, None, day(90))
    months = roll_forward_by_month(result.ledger, date(2026, 2, 14), day(90))  # as_of Apr 1
    assert months.to_dict("records") == [
        {
            "month": "2026-02",
            "opening": 10000,
            "created": 700,
            "applied": 6000,
            "refunded": 1000,
            "closing": 3700,
        },
        {
            "month": "2026-03",
            "opening": 3700,
            "created": 3000,
            "applied": 0,
            "refunded": 0,
            "closing": 6700,
        },
        {
            "month": "2026-04",
            "opening": 6700,
            "created": 0,
            "applied": 0,
            "refunded": 0,
            "closing": 6700,
        },
    ]
    assert list(months.dtypes[1:]) == [np.dtype(np.int64)] * 5
    # Each month is the TOTAL row of roll_forward over that month (the last ends at as_of).
    for row, (start, end) in zip(
        months.to_dict("records"),
        [
            (date(2026, 2, 1), date(2026, 2, 28)),
            (date(2026, 3, 1), date(2026, 3, 31)),
            (date(2026, 4, 1), day(90)),
        ],
        strict=True,
    ):
        total = roll_forward(result.ledger, start, end).iloc[-1].to_dict()
        assert {k: row[k] for k in total if k != "patient_id"} == {
            k: v for k, v in total.items() if k != "patient_id"
        }
    assert roll_forward_by_month(result.ledger, date(2026, 5, 1), day(90)).empty


def test_roll_forward_refuses_a_backwards_period():
    result = compute_credit(EMPTY_INV, payments(("y1", "p", 0, 1)), None, None, day(1))
    with pytest.raises(ValueError, match="before it starts"):
        roll_forward(result.ledger, date(2026, 2, 1), date(2026, 1, 31))


def test_package_value_rounds_half_up_in_integer_cents():
    cases = pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "d", "e", "f"],
            "patient_id": ["p"] * 6,
            "max_sessions": pd.array([3, 3, 2, pd.NA, 4, 4], dtype="Int64"),
            "package_price": pd.array([10000, 10000, 1, 5000, pd.NA, pd.NA], dtype="Int64"),
        }
    )
    counted = pd.DataFrame(
        {"case_id": ["a", "b", "c", "d", "e", "f"], "counted": [2, 1, 1, 1, 1, 5]}
    )
    inv = pd.DataFrame(
        {
            "invoice_id": ["i1", "i2", "i3"],
            "patient_id": ["p", "p", "p"],
            "total": np.array([50000, 9000, -10000], dtype=np.int64),
            "case_id": ["e", "e", "e"],
            "appointment_id": [None, "a1", None],
        }
    )
    out = package_value(cases, inv, counted)
    assert out["package_price"].tolist() == [10000, 10000, 1, 5000, 40000, pd.NA]
    assert out["price_source"].fillna("-").tolist() == [
        "cases",
        "cases",
        "cases",
        "cases",
        "invoice",
        "-",
    ]
    assert out["used"].tolist() == [2, 1, 1, 1, 1, 5]
    assert out["unused"].tolist() == [1, 2, 1, pd.NA, 3, 0]
    # 10000/3 = 3333.33 -> 3333; 20000/3 = 6666.67 -> 6667; 1/2 = 0.5 -> 1 (half up); 120000/4 = 30000
    assert out["undelivered"].tolist() == [3333, 6667, 1, pd.NA, 30000, pd.NA]
    assert str(out["undelivered"].dtype) == "Int64"


# ----------------------------------------------------------------------------- properties


@st.composite
def histories(draw):
    pids = ["p0", "p1"]
    inv_rows = [
        (
            f"i{k}",
            draw(st.sampled_from(pids)),
            draw(st.integers(0, 120)),
            draw(st.sampled_from([500, 1000, 4000, -800])),
        )
        for k in range(draw(st.integers(0, 6)))
    ]
    pay_rows = [
        (
            f"y{k}",
            draw(st.sampled_from(pids)),
            draw(st.integers(0, 120)),
            draw(st.sampled_from([300, 1000, 5000, -400])),
        )
        for k in range(draw(st.integers(0, 6)))
    ]
    return (
        invoices(*inv_rows) if inv_rows else EMPTY_INV,
        payments(*pay_rows) if pay_rows else EMPTY_PAY,
    )


FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    data=histories(),
    policy=st.sampled_from(POLICIES),
    applies=st.sampled_from(CREDIT_APPLIES),
    start=st.integers(0, 120),
    length=st.integers(0, 60),
)
def test_credit_at_a_date_is_opening_plus_movements_and_ageing_sums(
    data, policy, applies, start, length
):
    inv, pay = data
    end = start + length
    at_end = compute_credit(inv, pay, None, None, day(end), policy=policy, credit_applies=applies)
    before = compute_credit(
        inv, pay, None, None, day(start - 1), policy=policy, credit_applies=applies
    )
    rolled = roll_forward(at_end.ledger, day(start), day(end)).set_index("patient_id")
    body = rolled.drop(index=TOTAL)
    closing = at_end.patients.set_index("patient_id")["credit"]
    opening = before.patients.set_index("patient_id")["credit"]
    assert body["closing"].to_dict() == {k: v for k, v in closing.items() if k in body.index}
    assert body["opening"].to_dict() == {k: opening.get(k, 0) for k in body.index}
    assert rolled.loc[TOTAL, "closing"] == closing.sum()
    aged = age_credit(at_end, day(end))
    labels = bucket_labels((30, 60, 90, 180, 365))
    assert (aged[labels].sum(axis=1) == aged["credit"]).all()
    assert aged.set_index("patient_id")["credit"].to_dict() == {
        k: v for k, v in closing.items() if v
    }


def test_package_value_counts_only_packages_bought_and_sessions_delivered_by_as_of():
    cases = pd.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "patient_id": ["p1", "p2", "p3"],
            "max_sessions": pd.array([4, 5, 3], dtype="Int64"),
            "package_price": pd.array([40000, pd.NA, 30000], dtype="Int64"),
            "issue_date": pd.to_datetime(["2026-09-01", None, "2026-10-21"]),
        }
    )
    inv = pd.DataFrame(
        {
            "invoice_id": ["i1"],
            "patient_id": ["p2"],
            "total": np.array([50000], dtype=np.int64),
            "case_id": ["b"],
            "appointment_id": [None],
            "issue_date": pd.to_datetime(["2026-10-21"]),
        }
    )
    september = package_value(
        cases, inv, pd.DataFrame({"case_id": ["a"], "attended": [1]}), date(2026, 9, 30)
    )
    assert september["case_id"].tolist() == ["a"]
    assert september["undelivered"].tolist() == [30000]  # 3 of 4 sessions of $400 left
    october = package_value(
        cases, inv, pd.DataFrame({"case_id": ["a", "b"], "attended": [2, 1]}), date(2026, 10, 31)
    )
    assert october["case_id"].tolist() == ["a", "b", "c"]
    assert october["price_source"].tolist() == ["cases", "invoice", "cases"]
    assert october["undelivered"].tolist() == [20000, 40000, 30000]


def test_package_value_without_any_package_invoice():
    cases = pd.DataFrame(
        {
            "case_id": ["a"],
            "patient_id": ["p1"],
            "max_sessions": pd.array([2], dtype="Int64"),
            "package_price": pd.array([10000], dtype="Int64"),
            "issue_date": pd.to_datetime([None]),
        }
    )
    inv = pd.DataFrame(
        {
            "invoice_id": ["i1"],
            "patient_id": ["p2"],
            "total": np.array([9500], dtype=np.int64),
            "case_id": [None],
            "appointment_id": [None],
            "issue_date": pd.to_datetime(["2026-10-10"]),
        }
    )
    out = package_value(
        cases, inv, pd.DataFrame({"case_id": ["a"], "attended": [1]}), date(2026, 10, 31)
    )
    assert out["undelivered"].tolist() == [5000]
