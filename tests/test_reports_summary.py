"""Run summary: each month's digest is SHA-256 over the documented canonical bytes, stable across
machines and pandas releases, blind to row order and provenance, and counts live rows only."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.reports.month_digest import month_digests
from pkgreport.reports.summary import findings_records, period_figures
from pkgreport.tabular import money_record


def _frame(n: int) -> pd.DataFrame:
    ids = np.array([f"INV{i:05d}" for i in range(n)], dtype=object)
    status = np.array([["paid", "open", None][i % 3] for i in range(n)], dtype=object)
    appt = np.array([f"A{i}é" if i % 10 else None for i in range(n)], dtype=object)
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
            "paid": np.arange(n) % 2 == 0,
        }
    )


def _months(frame: pd.DataFrame) -> np.ndarray:
    return frame["issue_date"].to_numpy().astype("datetime64[M]").astype(np.int64)


def _reference_digest(frame: pd.DataFrame) -> str:
    """The documented format, value by value in plain Python (the module under test is
    vectorised). Object columns are text; every other column an integer."""
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: str(frame["invoice_id"].iloc[i]))]
    digest = hashlib.sha256()
    for name in sorted(k for k in frame.columns if k not in ("source_file", "source_row")):
        text = frame[name].dtype == object
        values = frame[name].astype(object).tolist()
        missing = [v is None or v is pd.NaT or v is pd.NA or v != v for v in values]
        encoded = name.encode()
        digest.update(struct.pack("<q", len(encoded)) + encoded + (b"t" if text else b"i"))
        digest.update(bytes(int(m) for m in missing))
        for v, m in zip(values, missing, strict=True):
            if m:
                digest.update(struct.pack("<q", 0))
            elif text:
                digest.update(struct.pack("<q", len(v)))
            elif isinstance(v, pd.Timestamp):
                digest.update(struct.pack("<q", v.value))
            else:
                digest.update(struct.pack("<q", int(v)))
        if text:
            digest.update(
                "".join(v for v, m in zip(values, missing, strict=True) if not m).encode()
            )
    return digest.hexdigest()


def test_a_month_digest_is_the_documented_sha256_and_does_not_change() -> None:
    frame = _frame(100)
    digests = month_digests(frame, _months(frame), "invoice_id")
    january = int(np.datetime64("2026-01", "M").astype(np.int64))
    assert digests[january] == _reference_digest(frame.iloc[[0, 1, 70, 71]])
    # Fixed: a release of pandas or numpy, or another machine, must give the very same digests.
    assert digests[january] == "cdb49b392e263420f88f82e85e1bb3257aeba543181e49f68fe4be4a0511ba5d"


def test_text_with_every_kind_of_missing_value_is_digested_as_documented() -> None:
    # pandas' missing values, mixed among strings, are all missing; numbers in a text column
    # are digested as they print; a lone surrogate (a mis-decoded export) as "surrogatepass"
    # encodes it. Each goes by Arrow or value by value, whichever can hold it: the same bytes.
    notes = ["a", None, np.nan, pd.NA, pd.NaT, "né", ""]
    frame = pd.DataFrame(
        {
            "invoice_id": pd.Series([f"I{i}" for i in range(len(notes))], dtype=object),
            "notes": pd.Series(notes, dtype=object),
        }
    )
    month = np.zeros(len(frame), dtype=np.int64)
    assert month_digests(frame, month, "invoice_id")[0] == _reference_digest(frame)
    as_text = frame.assign(notes=pd.Series(["7", None, "2.5"] + ["x"] * 4, dtype=object))
    as_numbers = frame.assign(notes=pd.Series([7, None, 2.5] + ["x"] * 4, dtype=object))
    assert month_digests(as_numbers, month, "invoice_id") == month_digests(
        as_text, month, "invoice_id"
    )
    surrogate = frame.assign(notes=pd.Series(["\udcff"] + ["x"] * 6, dtype=object))
    expected = hashlib.sha256()
    for name in ("invoice_id", "notes"):
        texts = surrogate[name].tolist()
        expected.update(struct.pack("<q", len(name)) + name.encode() + b"t" + bytes(len(texts)))
        expected.update(b"".join(struct.pack("<q", len(t)) for t in texts))
        expected.update("".join(texts).encode("utf-8", "surrogatepass"))
    assert month_digests(surrogate, month, "invoice_id")[0] == expected.hexdigest()


def test_row_order_provenance_and_other_months_leave_a_digest_as_it_was() -> None:
    frame = _frame(100)
    digests = month_digests(frame, _months(frame), "invoice_id")
    shuffled = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    shuffled["source_file"] = "Invoices export.csv"
    shuffled["source_row"] = np.arange(2, 102)
    assert month_digests(shuffled, _months(shuffled), "invoice_id") == digests
    february = frame.iloc[2:30]
    january = int(np.datetime64("2026-01", "M").astype(np.int64))
    assert (
        month_digests(
            frame.drop(index=february.index),
            _months(frame.drop(index=february.index)),
            "invoice_id",
        )[january]
        == digests[january]
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=30), st.data())
def test_any_change_of_one_value_changes_the_digest(
    values: list[str | None], data: st.DataObject
) -> None:
    frame = pd.DataFrame(
        {
            "invoice_id": pd.Series([f"I{i}" for i in range(len(values))], dtype=object),
            "notes": pd.Series(values, dtype=object),
        }
    )
    month = np.zeros(len(values), dtype=np.int64)
    before = month_digests(frame, month, "invoice_id")[0]
    assert before == _reference_digest(frame)
    row = data.draw(st.integers(0, len(values) - 1))
    new = data.draw(st.one_of(st.none(), st.text(max_size=6)).filter(lambda v: v != values[row]))
    frame.loc[row, "notes"] = new
    assert month_digests(frame, month, "invoice_id")[0] != before


def test_period_figures_count_live_rows_and_digest_all_rows_per_month() -> None:
    frame = _frame(100)
    frame["source_file"] = "Invoices.csv"
    frame["source_row"] = np.arange(2, 102)

    class Dataset:
        invoices = frame
        payments = None

    class Result:
        dataset = Dataset
        month_digests = None

    figures = period_figures(Result)  # type: ignore[arg-type]
    assert list(figures) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    # Days 0..69 from 30 Jan, then again: Jan has 2 days per cycle -> rows 0,1,70,71.
    jan = figures["2026-01"]
    assert jan["invoices_count"] == 4
    assert jan["invoices_total_cents"] == (0 + 150 + 70 * 150 + 71 * 150) - 4 * 700
    assert jan["invoices_digest"] == _reference_digest(frame.iloc[[0, 1, 70, 71]])
    # The deleted last row (day 99 % 70 = 29 -> 28 Feb) is digested but not counted.
    feb_rows = [i for i in range(100) if 2 <= i % 70 <= 29]
    assert figures["2026-02"]["invoices_count"] == len(feb_rows) - 1
    assert figures["2026-02"]["invoices_total_cents"] == sum(i * 150 - 700 for i in feb_rows[:-1])
    assert figures["2026-02"]["invoices_digest"] == _reference_digest(frame.iloc[feb_rows])


def _plain_findings_records(findings: pd.DataFrame) -> list[dict[str, object]]:
    """The findings' records row by row, as the summary listed them before (the reference)."""

    def whole(value: object) -> int | None:
        return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]

    return [
        {
            "code": r.code,
            "severity": r.severity,
            "patient_id": r.patient_id,
            "subject_type": r.subject_type,
            "subject_id": r.subject_id,
            "amount": money_record(whole(r.amount)),
            "appointment_ids": r.appointment_ids,
            "message": r.message,
            "source_file": r.source_file,
            "source_row": whole(r.source_row),
        }
        for r in findings.itertuples(index=False)
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(10**12), 10**12)),
            st.one_of(st.none(), st.integers(1, 10**6)),
            st.one_of(st.none(), st.text(max_size=4)),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_findings_records_equal_the_row_by_row_records(
    rows: list[tuple[int | None, int | None, str | None]], rows_as_floats: bool
) -> None:
    amounts = [amount for amount, _, _ in rows]
    source_rows = [row for _, row, _ in rows]
    findings = pd.DataFrame(
        {
            "code": ["CREDIT_NEGATIVE"] * len(rows),
            "severity": ["high"] * len(rows),
            "patient_id": pd.Series([text for _, _, text in rows], dtype=object),
            "subject_type": ["patient"] * len(rows),
            "subject_id": [f"P{i}" for i in range(len(rows))],
            "amount": pd.array(amounts, dtype="Int64"),
            "appointment_ids": pd.Series([None] * len(rows), dtype=object),
            "message": [f"message {i}" for i in range(len(rows))],
            "source_file": ["payments.csv"] * len(rows),
            # Row numbers with a blank among them come as floats from some frames.
            "source_row": pd.Series(source_rows, dtype="float64" if rows_as_floats else "Int64"),
        }
    )
    records = findings_records(findings)
    assert records == _plain_findings_records(findings)
    assert [type(r["source_row"]) for r in records] == [
        type(r["source_row"]) for r in _plain_findings_records(findings)
    ]
