"""Run summary: the period digests equal pandas' row hashes however the columns are hashed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.reports.summary import _row_hashes, period_figures


def _frame(n: int) -> pd.DataFrame:
    ids = np.array([f"INV{i:05d}" for i in range(n)], dtype=object)  # all distinct
    # Few distinct values, with blanks.
    status = np.array([["paid", "open", None][i % 3] for i in range(n)], dtype=object)
    # Mostly distinct, with blanks: hashed uncategorized, blanks set as the categorized way does.
    appt = np.array([f"A{i}" if i % 10 else None for i in range(n)], dtype=object)
    case = np.array([f"C{i}" if i % 4 == 0 else np.nan for i in range(n)], dtype=object)
    # Object columns, as validation makes them (a plain array would be inferred as `str`).
    return pd.DataFrame(
        {
            "invoice_id": pd.Series(ids, dtype=object),
            "status": pd.Series(status, dtype=object),
            "appointment_id": pd.Series(appt, dtype=object),
            "case_id": pd.Series(case, dtype=object),
            "total": np.arange(n, dtype=np.int64) * 150 - 700,
            "issue_date": pd.to_datetime("2026-01-30") + pd.to_timedelta(np.arange(n) % 70, "D"),
            "deleted_at": pd.Series([pd.NaT] * (n - 1) + [pd.Timestamp("2026-03-01")]),
            "archived_at": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "max_sessions": pd.array([i % 5 if i % 5 else None for i in range(n)], dtype="Int64"),
        }
    )


def test_row_hashes_equal_pandas_categorized_hashes() -> None:
    # The id columns take the uncategorized path, status and case_id the categorized one.
    frame = _frame(3000)
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    np.testing.assert_array_equal(_row_hashes(frame), expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=40))
def test_row_hashes_equal_pandas_for_any_text(values: list[str | None]) -> None:
    frame = pd.DataFrame({"a": pd.Series(values, dtype=object), "b": np.arange(len(values))})
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    np.testing.assert_array_equal(_row_hashes(frame), expected)


def test_period_figures_count_live_rows_and_digest_all_rows_per_month() -> None:
    frame = _frame(100)
    frame["source_file"] = "Invoices.csv"
    frame["source_row"] = np.arange(2, 102)

    class Dataset:
        invoices = frame
        payments = None

    class Result:
        dataset = Dataset

    figures = period_figures(Result)  # type: ignore[arg-type]
    assert list(figures) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    # Days 0..69 from 30 Jan, then again: Jan has 2 days per cycle -> rows 0,1,70,71.
    jan = figures["2026-01"]
    assert jan["invoices_count"] == 4
    assert jan["invoices_total_cents"] == (0 + 150 + 70 * 150 + 71 * 150) - 4 * 700
    body = frame.drop(columns=["source_file", "source_row"])
    rows = body.iloc[[0, 1, 70, 71]]
    hashed = pd.util.hash_pandas_object(rows, index=False).sort_values(kind="mergesort")
    assert jan["invoices_digest"] == hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()
    # The deleted last row (day 99 % 70 = 29 -> 28 Feb) is digested but not counted.
    feb_rows = [i for i in range(100) if 2 <= i % 70 <= 29]
    assert figures["2026-02"]["invoices_count"] == len(feb_rows) - 1
    assert figures["2026-02"]["invoices_total_cents"] == sum(i * 150 - 700 for i in feb_rows[:-1])
