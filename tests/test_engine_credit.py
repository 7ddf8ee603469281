"""Account credit engine: hand-computed cases per rule, and properties against a plain event loop."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pkgreport.engine.credit import POLICIES
from pkgreport.engine.credit import compute_credit as engine_compute_credit


def compute_credit(*args: Any, **kwargs: Any) -> Any:
    """The hand-computed tables below were worked out with credit spent when an invoice is issued.

    The engine's default is Cliniko's `on-payment`; its own tests name it explicitly.
    """
    kwargs.setdefault("credit_applies", "on-issue")
    return engine_compute_credit(*args, **kwargs)


D0 = date(2026, 1, 1)


def ts(day: int, hour: int = 0) -> pd.Timestamp:
    return pd.Timestamp(D0) + pd.Timedelta(days=day, hours=hour)


def invoices(*rows: tuple, **extra: list) -> pd.DataFrame:
    """rows: (invoice_id, patient_id, day, total[, status])."""
    frame = pd.DataFrame(
        {
            "invoice_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "issue_date": pd.to_datetime([ts(r[2]) for r in rows]).astype("datetime64[ns]"),
            "total": np.array([r[3] for r in rows], dtype=np.int64),
            "number": [f"N{r[0]}" for r in rows],
            "status": [r[4] if len(r) > 4 else None for r in rows],
            "archived_at": pd.to_datetime([pd.NaT] * len(rows)).astype("datetime64[ns]"),
            "deleted_at": pd.to_datetime([pd.NaT] * len(rows)).astype("datetime64[ns]"),
            "source_file": "invoices.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )
    for key, values in extra.items():
        frame[key] = values
    return frame


def payments(*rows: tuple) -> pd.DataFrame:
    """rows: (payment_id, patient_id, day, amount[, hour])."""
    return pd.DataFrame(
        {
            "payment_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "paid_at": pd.to_datetime([ts(r[2], r[4] if len(r) > 4 else 10) for r in rows]).astype(
                "datetime64[ns]"
            ),
            "amount": np.array([r[3] for r in rows], dtype=np.int64),
            "archived_at": pd.to_datetime([pd.NaT] * len(rows)).astype("datetime64[ns]"),
            "deleted_at": pd.to_datetime([pd.NaT] * len(rows)).astype("datetime64[ns]"),
            "source_file": "payments.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )


def allocations(*rows: tuple) -> pd.DataFrame:
    """rows: (invoice_id, payment_id or None, amount[, day])."""
    return pd.DataFrame(
        {
            "invoice_id": [r[0] for r in rows],
            "payment_id": [r[1] for r in rows],
            "source": ["payment" if r[1] is not None else "credit" for r in rows],
            "amount": np.array([r[2] for r in rows], dtype=np.int64),
            "allocated_at": pd.to_datetime(
                [ts(r[3]) if len(r) > 3 else pd.NaT for r in rows]
            ).astype("datetime64[ns]"),
            "patient_id": [None] * len(rows),
            "source_file": "allocations.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )


def patients(*rows: tuple) -> pd.DataFrame:
    """rows: (patient_id, reported_credit or None)."""
    return pd.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "patient_name": [f"Name {r[0]}" for r in rows],
            "reported_credit": pd.array([r[1] for r in rows], dtype="Int64"),
            "source_file": "patients.csv",
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def pat(result, pid: str = "p") -> dict:
    row = result.patients.loc[result.patients["patient_id"] == pid]
    assert len(row) == 1
    return row.iloc[0].to_dict()


def inv_row(result, iid: str) -> dict:
    row = result.invoices.loc[result.invoices["invoice_id"] == iid]
    assert len(row) == 1
    return row.iloc[0].to_dict()


def codes(result) -> list[str]:
    return sorted(result.findings["code"])


def ledger_rows(result) -> list[tuple]:
    lg = result.ledger
    return [
        (str(a)[:10], k, int(m), t, r)
        for a, k, m, t, r in zip(
            lg["at"], lg["kind"], lg["amount"], lg["ref_type"], lg["ref_id"], strict=True
        )
    ]


# ----------------------------------------------------------------------------- rules by hand


def test_payment_before_invoice_sits_as_credit_then_pays_it_on_issue():
    inv = invoices(("i1", "p", 10, 8000))
    pay = payments(("y1", "p", 2, 10000))
    before = compute_credit(inv, pay, None, None, day(1))
    between = compute_credit(inv, pay, None, None, day(5))
    after = compute_credit(inv, pay, None, None, day(10))
    assert pat(before)["credit"] == 0 and pat(before)["received"] == 0
    assert pat(between)["credit"] == 10000 and between.invoices.empty
    assert (pat(after)["credit"], pat(after)["applied"], pat(after)["paid_direct"]) == (
        2000,
        8000,
        0,
    )
    assert inv_row(after, "i1")["paid_from_credit"] == 8000
    assert inv_row(after, "i1")["outstanding"] == 0
    assert ledger_rows(after) == [
        ("2026-01-03", "created", 10000, "payment", "y1"),
        ("2026-01-11", "applied", 8000, "invoice", "i1"),
    ]
    assert codes(between) == ["UNAPPLIED_CREDIT"]


def test_same_day_invoice_comes_before_payment_so_it_is_paid_directly():
    inv = invoices(("i1", "p", 3, 5000))
    pay = payments(("y1", "p", 3, 5000, 0))  # midnight payment still counts after the invoice
    r = compute_credit(inv, pay, None, None, day(3))
    assert r.ledger.empty
    assert (inv_row(r, "i1")["paid_direct"], inv_row(r, "i1")["status_computed"]) == (5000, "paid")
    assert pat(r)["credit"] == 0


def test_partial_payments_leave_the_rest_outstanding():
    inv = invoices(("i1", "p", 0, 10000, "paid"))
    pay = payments(("y1", "p", 1, 3000), ("y2", "p", 2, 5000))
    r = compute_credit(inv, pay, None, None, day(1))
    assert inv_row(r, "i1")["outstanding"] == 7000
    r = compute_credit(inv, pay, None, None, day(9))
    row = inv_row(r, "i1")
    assert (row["paid_direct"], row["outstanding"], row["status_computed"]) == (8000, 2000, "open")
    assert row["status_mismatch"]
    assert codes(r) == ["INVOICE_STATUS_MISMATCH"]
    assert r.findings.iloc[0]["amount"] == 2000


def test_open_status_on_a_settled_invoice_is_a_mismatch_and_paid_is_not():
    inv = invoices(
        ("i1", "p", 0, 1000, "Open"), ("i2", "p", 0, 1000, "paid"), ("i3", "p", 0, 1000, "open")
    )
    pay = payments(("y1", "p", 0, 2000))
    r = compute_credit(inv, pay, None, None, day(0))
    assert list(r.invoices["status_mismatch"]) == [True, False, False]
    assert list(r.invoices["status_computed"]) == ["paid", "paid", "open"]


def test_refund_is_paid_out_of_credit():
    pay = payments(("y1", "p", 0, 10000), ("r1", "p", 5, -4000))
    r = compute_credit(None, pay, None, None, day(6))
    p = pat(r)
    assert (p["received"], p["refunded"], p["credit"]) == (10000, 4000, 6000)
    assert ledger_rows(r)[-1] == ("2026-01-06", "refunded", 4000, "payment", "r1")


def test_refund_larger_than_credit_goes_negative_and_is_reported_not_clamped():
    pay = payments(("y1", "p", 0, 1000), ("r1", "p", 2, -3000), ("y2", "p", 6, 5000))
    r = compute_credit(None, pay, None, None, day(3))
    assert pat(r)["credit"] == -2000
    neg = r.findings.loc[r.findings["code"] == "NEGATIVE_CREDIT"].iloc[0]
    assert (neg["severity"], neg["amount"]) == ("high", 2000)
    later = compute_credit(None, pay, None, None, day(7))
    assert pat(later)["credit"] == 3000
    assert "NEGATIVE_CREDIT" in codes(later)  # it happened within the period up to as_of


def test_credit_note_creates_credit_that_pays_an_older_open_invoice_on_its_date():
    inv = invoices(("i1", "p", 0, 6000), ("c1", "p", 4, -10000))
    r = compute_credit(inv, None, None, None, day(4))
    assert ledger_rows(r) == [
        ("2026-01-05", "created", 10000, "credit_note", "c1"),
        ("2026-01-05", "applied", 6000, "invoice", "i1"),
    ]
    assert pat(r)["credit"] == 4000 and pat(r)["credit_notes"] == 10000
    assert inv_row(r, "c1")["status_computed"] == "credit note"
    assert inv_row(r, "i1")["paid_from_credit"] == 6000


def test_explicit_allocation_first_and_only_the_remainder_is_auto_allocated():
    inv = invoices(("i1", "p", 0, 5000), ("i2", "p", 1, 3000))
    pay = payments(("y1", "p", 2, 10000))
    alloc = allocations(("i2", "y1", 3000))
    r = compute_credit(inv, pay, alloc, None, day(2))
    assert inv_row(r, "i2")["paid_direct"] == 3000
    assert inv_row(r, "i1")["paid_direct"] == 5000
    assert pat(r)["credit"] == 2000
    # Without the allocation oldest-first also pays both; with a smaller payment it matters:
    pay = payments(("y1", "p", 2, 4000))
    alloc = allocations(("i2", "y1", 3000))
    r = compute_credit(inv, pay, alloc, None, day(2))
    assert (inv_row(r, "i1")["outstanding"], inv_row(r, "i2")["outstanding"]) == (4000, 0)


def test_explicit_allocation_dated_later_passes_through_credit():
    inv = invoices(("i1", "p", 5, 3000))
    pay = payments(("y1", "p", 1, 3000))
    alloc = allocations(("i1", "y1", 3000, 8))
    mid = compute_credit(inv, pay, alloc, None, day(6), policy="none")
    assert pat(mid)["credit"] == 3000 and inv_row(mid, "i1")["outstanding"] == 3000
    assert codes(mid) == ["CREDIT_WITH_OPEN_INVOICES", "UNAPPLIED_CREDIT"]
    end = compute_credit(inv, pay, alloc, None, day(8), policy="none")
    assert ledger_rows(end) == [
        ("2026-01-02", "created", 3000, "payment", "y1"),
        ("2026-01-09", "applied", 3000, "invoice", "i1"),
    ]
    assert inv_row(end, "i1")["paid_from_credit"] == 3000 and pat(end)["credit"] == 0


def test_blank_allocation_date_is_the_later_of_payment_and_invoice():
    inv = invoices(("i1", "p", 5, 3000))
    pay = payments(("y1", "p", 1, 3000))
    r = compute_credit(inv, pay, allocations(("i1", "y1", 3000)), None, day(5), policy="none")
    assert ledger_rows(r) == [
        ("2026-01-02", "created", 3000, "payment", "y1"),
        ("2026-01-06", "applied", 3000, "invoice", "i1"),
    ]


def test_credit_allocation_takes_from_credit_like_a_zero_payment():
    inv = invoices(("i1", "p", 3, 2500))
    pay = payments(("y1", "p", 0, 4000))
    r = compute_credit(inv, pay, allocations(("i1", None, 2500, 4)), None, day(4), policy="none")
    assert pat(r)["credit"] == 1500 and inv_row(r, "i1")["paid_from_credit"] == 2500
    assert ledger_rows(r)[-1] == ("2026-01-05", "applied", 2500, "invoice", "i1")


def test_over_allocated_invoice_is_kept_as_given_and_reported():
    inv = invoices(("i1", "p", 0, 1000))
    pay = payments(("y1", "p", 0, 5000))
    r = compute_credit(inv, pay, allocations(("i1", "y1", 1500)), None, day(0))
    row = inv_row(r, "i1")
    assert (row["paid_direct"], row["outstanding"], row["status_computed"]) == (
        1500,
        -500,
        "over-allocated",
    )
    over = r.findings.loc[r.findings["code"] == "OVER_ALLOCATED_INVOICE"].iloc[0]
    assert (over["amount"], over["subject_id"], over["source_row"]) == (500, "i1", 2)
    assert pat(r)["credit"] == 3500


def test_payment_allocated_beyond_its_amount_takes_the_excess_from_credit():
    inv = invoices(("i1", "p", 0, 5000))
    pay = payments(("y0", "p", 0, 1000, 8), ("y1", "p", 0, 3000, 9))
    r = compute_credit(inv, pay, allocations(("i1", "y1", 5000)), None, day(0), policy="none")
    # y1 pays 3000 directly; 2000 more comes from y0's credit.
    assert inv_row(r, "i1")["paid_direct"] == 3000
    assert inv_row(r, "i1")["paid_from_credit"] == 2000
    assert pat(r)["credit"] == -1000
    assert "NEGATIVE_CREDIT" in codes(r)


@pytest.mark.parametrize(
    ("policy", "paid", "credit"),
    [
        ("oldest-first", {"i1": 10000, "i2": 2000}, 0),
        ("newest-first", {"i1": 4000, "i2": 8000}, 0),
        ("source-only", {"i1": 10000, "i2": 0}, 2000),
        ("none", {"i1": 4000, "i2": 0}, 8000),
    ],
)
def test_each_policy(policy, paid, credit):
    inv = invoices(("i1", "p", 0, 10000), ("i2", "p", 1, 10000))
    pay = payments(("y1", "p", 2, 12000))
    alloc = allocations(("i1", "y1", 4000))
    r = compute_credit(inv, pay, alloc, None, day(3), policy=policy)
    got = {
        i: int(r.invoices.set_index("invoice_id").loc[i, ["paid_direct", "paid_from_credit"]].sum())
        for i in ("i1", "i2")
    }
    assert got == paid
    assert pat(r)["credit"] == credit


def test_newest_first_credit_pays_a_new_invoice_and_payment_pays_newest_open():
    inv = invoices(("i1", "p", 0, 3000), ("i2", "p", 1, 3000), ("i3", "p", 2, 3000))
    pay = payments(("y1", "p", 3, 4000))
    r = compute_credit(inv, pay, None, None, day(3), policy="newest-first")
    assert list(r.invoices["outstanding"]) == [3000, 2000, 0]


def test_same_day_ties_are_broken_by_id():
    inv = invoices(("b", "p", 0, 1000), ("a", "p", 0, 1000))
    pay = payments(("y2", "p", 1, 1000), ("y1", "p", 1, 500))
    r = compute_credit(inv, pay, None, None, day(1))
    assert inv_row(r, "a")["outstanding"] == 0
    assert inv_row(r, "b")["outstanding"] == 500


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown allocation policy"):
        compute_credit(None, None, None, None, D0, policy="random")


def test_archived_and_deleted_records_are_excluded_and_listed():
    inv = invoices(("i1", "p", 0, 1000), ("i2", "p", 0, 2000))
    inv.loc[1, "deleted_at"] = ts(3)
    pay = payments(("y1", "p", 0, 500), ("y2", "p", 0, 700))
    pay.loc[0, "archived_at"] = ts(3)
    alloc = allocations(("i2", "y2", 700), ("i1", "y1", 100), ("zz", "y2", 1))
    r = compute_credit(inv, pay, alloc, None, day(5))
    ex = r.excluded.set_index("id")
    assert set(ex.index) == {"i2", "y1", "i2/y2", "i1/y1", "zz/y2"}
    assert ex.loc["i2", "reason"].startswith("deleted invoice")
    assert ex.loc["y1", "reason"].startswith("archived payment")
    assert ex.loc["zz/y2", "reason"].startswith("invoice zz is not in the invoices export")
    assert ex.loc["i2/y2", "source_row"] == 2
    assert list(r.invoices["invoice_id"]) == ["i1"]
    assert inv_row(r, "i1")["paid_direct"] == 700 and pat(r)["credit"] == 0


def test_credit_with_open_invoices_amount_is_what_could_be_applied():
    inv = invoices(("i1", "p", 0, 5000))
    pay = payments(("y1", "p", 1, 2000))
    r = compute_credit(inv, pay, None, None, day(1), policy="none")
    f = r.findings.set_index("code")
    assert f.loc["CREDIT_WITH_OPEN_INVOICES", "amount"] == 2000
    assert f.loc["CREDIT_WITH_OPEN_INVOICES", "severity"] == "high"
    assert f.loc["UNAPPLIED_CREDIT", "amount"] == 2000
    assert pat(r)["open_outstanding"] == 5000
    assert pat(r)["findings"] == "CREDIT_WITH_OPEN_INVOICES, UNAPPLIED_CREDIT"


@pytest.mark.parametrize(("days_after", "dormant"), [(364, False), (365, True), (366, True)])
def test_dormant_threshold(days_after, dormant):
    pay = payments(("y1", "p", 0, 1000, 15))
    r = compute_credit(None, pay, None, None, day(days_after), dormant_days=365)
    assert ("DORMANT_CREDIT" in codes(r)) is dormant


def test_reported_credit_is_compared_with_the_final_balance():
    pay = payments(("y1", "p", 0, 1000), ("y2", "q", 0, 500), ("y3", "p", 20, 300))
    pts = patients(("p", 1300), ("q", 400), ("z", None))
    r = compute_credit(None, pay, None, pts, day(5))
    p, q, z = pat(r, "p"), pat(r, "q"), pat(r, "z")
    assert (p["credit"], p["final_credit"], p["difference"]) == (1000, 1300, 0)
    assert (q["difference"], q["patient_name"]) == (-100, "Name q")
    assert pd.isna(z["difference"]) and z["credit"] == 0
    mismatch = r.findings.loc[r.findings["code"] == "REPORTED_CREDIT_MISMATCH"]
    assert list(mismatch["subject_id"]) == ["q"] and list(mismatch["amount"]) == [100]
    assert list(mismatch["source_file"]) == ["patients.csv"] and list(mismatch["source_row"]) == [3]
    assert list(r.patients["patient_id"]) == ["p", "q", "z"]


def test_package_session_charged_when_the_package_invoice_is_paid():
    inv = invoices(
        ("pk", "p", 0, 40000),
        ("s1", "p", 5, 9000),
        ("s2", "p", 6, 0),
        case_id=["c1", None, None],
        appointment_id=[None, "a1", "a2"],
    )
    pay = payments(("y1", "p", 0, 40000))
    appts = pd.DataFrame(
        {
            "appointment_id": ["a1", "a2"],
            "patient_id": ["p", "p"],
            "case_id": ["c1", "c1"],
            "starts_at": pd.to_datetime([ts(5), ts(6)]).astype("datetime64[ns]"),
            "source_file": "appointments.csv",
            "source_row": np.array([2, 3]),
        }
    )
    cases = pd.DataFrame(
        {"case_id": ["c1"], "patient_id": ["p"], "max_sessions": pd.array([4], dtype="Int64")}
    )
    r = compute_credit(inv, pay, None, None, day(9), appointments=appts, cases=cases)
    f = r.findings.loc[r.findings["code"] == "PACKAGE_SESSION_CHARGED"]
    assert list(f["subject_id"]) == ["s1"] and list(f["appointment_ids"]) == ["a1"]
    assert list(f["amount"]) == [9000] and list(f["severity"]) == ["high"]
    unpaid = compute_credit(inv, None, None, None, day(9), appointments=appts, cases=cases)
    assert "PACKAGE_SESSION_CHARGED" not in codes(unpaid)


def test_package_session_charged_only_for_the_attendee_whose_package_it_is():
    # A group class g1 for p (on p's paid package c1) and q (no package): each is invoiced $30.
    inv = invoices(
        ("pk", "p", 0, 40000),
        ("sp", "p", 5, 3000),
        ("sq", "q", 5, 3000),
        case_id=["c1", None, None],
        appointment_id=[None, "g1", "g1"],
    )
    pay = payments(("y1", "p", 0, 40000), ("y2", "q", 5, 3000))
    appts = pd.DataFrame(
        {
            "appointment_id": ["g1", "g1"],
            "patient_id": ["p", "q"],
            "case_id": ["c1", None],
            "starts_at": pd.to_datetime([ts(5), ts(5)]).astype("datetime64[ns]"),
            "source_file": "appointments.csv",
            "source_row": np.array([2, 2]),
        }
    )
    cases = pd.DataFrame(
        {"case_id": ["c1"], "patient_id": ["p"], "max_sessions": pd.array([4], dtype="Int64")}
    )
    r = compute_credit(inv, pay, None, None, day(9), appointments=appts, cases=cases)
    f = r.findings.loc[r.findings["code"] == "PACKAGE_SESSION_CHARGED"]
    assert f[["subject_id", "patient_id", "appointment_ids"]].values.tolist() == [["sp", "p", "g1"]]


def test_package_session_charged_skips_deleted_and_unissued_records():
    # A deleted invoice first and an invoice after as_of last: the snapshot rows must still line
    # up with their case and appointment ids.
    inv = invoices(
        ("gone", "p", 0, 500),
        ("pk", "p", 1, 40000),
        ("s1", "p", 5, 9000),
        ("s3", "p", 6, 7000),
        ("s4", "q", 7, 6000),
        ("late", "p", 20, 8000),
        case_id=[None, "c1", None, None, None, None],
        appointment_id=["a1", None, "a1", "a3", "a4", "a1"],
    )
    inv.loc[0, "deleted_at"] = ts(2)
    pay = payments(("y1", "p", 1, 40000))
    appts = pd.DataFrame(
        {
            "appointment_id": ["a1", "a3", "a4"],
            "patient_id": ["p", "p", "q"],
            "case_id": ["c1", "c1", "c1"],
            "starts_at": pd.to_datetime([ts(5), ts(6), ts(7)]).astype("datetime64[ns]"),
            "deleted_at": pd.to_datetime([pd.NaT, ts(6), pd.NaT]).astype("datetime64[ns]"),
            "source_file": "appointments.csv",
            "source_row": np.array([2, 3, 4]),
        }
    )
    cases = pd.DataFrame(
        {"case_id": ["c1"], "patient_id": ["p"], "max_sessions": pd.array([4], dtype="Int64")}
    )
    r = compute_credit(inv, pay, None, None, day(9), appointments=appts, cases=cases)
    f = r.findings.loc[r.findings["code"] == "PACKAGE_SESSION_CHARGED"]
    # s3's appointment is deleted; "late" is issued after as_of; s4 (another patient's invoice
    # for an appointment of the case) is still a charge for a package session.
    assert list(f["subject_id"]) == ["s1", "s4"]
    assert list(f["appointment_ids"]) == ["a1", "a4"]
    assert list(f["amount"]) == [9000, 6000]
    assert list(f["source_row"]) == [4, 6]
    assert (
        f["message"].iloc[0].startswith("Invoice Ns1 charges $90.00 for an appointment on case c1")
    )
    assert "package invoice Npk is already paid in full" in f["message"].iloc[0]


def test_inputs_are_not_modified():
    inv = invoices(("i1", "p", 0, 1000))
    pay = payments(("y1", "p", 0, 500))
    before = (inv.copy(), pay.copy())
    compute_credit(inv, pay, None, None, day(0))
    pd.testing.assert_frame_equal(inv, before[0])
    pd.testing.assert_frame_equal(pay, before[1])


# ----------------------------------------------------------------------------- reference


def reference(
    inv: pd.DataFrame,
    pay: pd.DataFrame,
    alloc: pd.DataFrame | None,
    policy: str,
    as_of: date,
    credit_applies: str = "on-issue",
    own_money: bool = False,
) -> dict:
    """The allocation model as a plain event loop per patient: obviously correct, slow.

    `own_money`: credit is spent only by the credit allocations given (Cliniko's Credit Applied),
    so a payment pays open invoices with its own money alone.
    """
    sweep = (credit_applies == "on-payment" or own_money) and policy in (
        "oldest-first",
        "newest-first",
    )
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    invs = {r.invoice_id: r for r in inv.itertuples()}
    pays = {r.payment_id: r for r in pay.itertuples()}
    explicit: dict[str, int] = defaultdict(int)
    from_pay: dict[str, int] = defaultdict(int)
    sources: dict[str, list[str]] = defaultdict(list)
    paid = []  # (invoice, at, amount, direct)
    ledger = []  # (patient, at, signed)
    drains = []  # (patient, day, rank, id, at, amount, kind)
    if alloc is not None:
        for a in alloc.itertuples():
            i = invs[a.invoice_id]
            explicit[a.invoice_id] += a.amount
            if not pd.isna(a.payment_id):
                p = pays[a.payment_id]
                at = (
                    max(p.paid_at, i.issue_date)
                    if pd.isna(a.allocated_at)
                    else max(a.allocated_at, p.paid_at, i.issue_date)
                )
                from_pay[a.payment_id] += a.amount
                sources[a.payment_id].append(a.invoice_id)
                direct = at.normalize() == p.paid_at.normalize()
                paid.append((a.invoice_id, at, a.amount, direct))
                if not direct:
                    ledger += [(p.patient_id, p.paid_at, a.amount), (p.patient_id, at, -a.amount)]
            else:
                at = i.issue_date if pd.isna(a.allocated_at) else max(a.allocated_at, i.issue_date)
                drains.append(
                    (i.patient_id, at.normalize(), 3, a.invoice_id, at, a.amount, "credit")
                )
    topped: dict[str, int] = defaultdict(int)
    events = []
    for i in invs.values():
        rank_day = i.issue_date.normalize()
        if i.total < 0:
            events.append((i.patient_id, rank_day, 1, i.invoice_id, i.issue_date, -i.total, "cn"))
        elif (
            i.total > 0
            and policy in ("oldest-first", "newest-first")
            and i.total > explicit[i.invoice_id]
        ):
            events.append(
                (
                    i.patient_id,
                    rank_day,
                    1,
                    i.invoice_id,
                    i.issue_date,
                    i.total - explicit[i.invoice_id],
                    "inv",
                )
            )
    for p in pays.values():
        if p.amount < 0:
            events.append(
                (
                    p.patient_id,
                    p.paid_at.normalize(),
                    2,
                    p.payment_id,
                    p.paid_at,
                    -p.amount,
                    "refund",
                )
            )
        elif p.amount - from_pay[p.payment_id] > 0 or sweep:
            events.append(
                (
                    p.patient_id,
                    p.paid_at.normalize(),
                    2,
                    p.payment_id,
                    p.paid_at,
                    p.amount - from_pay[p.payment_id],
                    "pay",
                )
            )
    events += drains
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    by_patient: dict[str, list] = defaultdict(list)
    for e in events:
        by_patient[e[0]].append(e)
    for pid, evs in by_patient.items():
        pool = 0
        open_items: list[list] = []  # [kind, ref, remaining]
        for _, _, _, ref, at, amount, kind in evs:
            if sweep:
                # Credit meets open invoices only when a payment arrives; drains take it at once.
                if kind == "inv":
                    open_items.append(["inv", ref, amount])
                elif kind == "cn":
                    ledger.append((pid, at, amount))
                    pool += amount
                elif kind == "pay":
                    pool += amount
                    reach = amount if own_money else max(pool, 0)
                    settle = min(reach, sum(item[2] for item in open_items))
                    direct_left = min(amount, settle)
                    ledger.append((pid, at, amount - direct_left))
                    ledger.append((pid, at, -(settle - direct_left)))
                    pool -= settle
                    while settle:
                        item = open_items[0] if policy == "oldest-first" else open_items[-1]
                        m = min(settle, item[2])
                        d = min(m, direct_left)
                        if d:
                            paid.append((item[1], at, d, True))
                        if m - d:
                            paid.append((item[1], at, m - d, False))
                        direct_left -= d
                        settle -= m
                        item[2] -= m
                        if not item[2]:
                            open_items.remove(item)
                else:
                    ledger.append((pid, at, -amount))
                    if kind == "credit":
                        paid.append((ref, at, amount, False))
                    pool -= amount
                continue
            if kind == "pay" and policy == "source-only":
                for iid in sorted(set(sources[ref]), key=lambda x: (invs[x].issue_date, x)):
                    room = invs[iid].total - explicit[iid] - topped[iid]
                    m = min(amount, max(room, 0))
                    if m > 0:
                        topped[iid] += m
                        amount -= m
                        t = max(at, invs[iid].issue_date)
                        direct = t.normalize() == at.normalize()
                        paid.append((iid, t, m, direct))
                        if not direct:
                            ledger += [(pid, at, m), (pid, t, -m)]
            if kind in ("pay", "cn"):
                if kind == "cn":
                    ledger.append((pid, at, amount))
                while amount and open_items:
                    item = open_items[0] if policy != "newest-first" else open_items[-1]
                    m = min(amount, item[2])
                    if item[0] == "inv":
                        paid.append((item[1], at, m, kind == "pay"))
                        if kind == "cn":
                            ledger.append((pid, at, -m))
                    elif kind == "pay":
                        ledger.append((pid, at, m))
                    amount -= m
                    item[2] -= m
                    if not item[2]:
                        open_items.remove(item)
                if amount:
                    pool += amount
                    if kind == "pay":
                        ledger.append((pid, at, amount))
            elif kind == "inv":
                m = min(pool, amount)
                pool -= m
                if m:
                    paid.append((ref, at, m, False))
                    ledger.append((pid, at, -m))
                if amount - m:
                    open_items.append(["inv", ref, amount - m])
            else:
                ledger.append((pid, at, -amount))
                if kind == "credit":
                    paid.append((ref, at, amount, False))
                m = min(pool, amount)
                pool -= m
                if amount - m:
                    open_items.append(["drain", ref, amount - m])
    credit: dict[str, int] = defaultdict(int)
    final: dict[str, int] = defaultdict(int)
    for pid, at, signed in ledger:
        final[pid] += signed
        if at < cutoff:
            credit[pid] += signed
    invoice_paid: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for iid, at, amount, direct in paid:
        if at < cutoff:
            invoice_paid[iid][0 if direct else 1] += amount
    out_inv = {}
    for i in invs.values():
        if i.issue_date < cutoff:
            d, c = invoice_paid[i.invoice_id]
            out_inv[i.invoice_id] = (d, c, i.total - d - c if i.total > 0 else 0)
    return {"credit": dict(credit), "final": dict(final), "invoices": out_inv}


@st.composite
def ledgers(draw):
    n_pat = draw(st.integers(1, 3))
    pids = [f"p{k}" for k in range(n_pat)]
    inv_rows, pay_rows = [], []
    for k in range(draw(st.integers(0, 7))):
        total = draw(st.sampled_from([0, 1, 250, 1000, 3333, 5000, -700, -2000]))
        inv_rows.append((f"i{k}", draw(st.sampled_from(pids)), draw(st.integers(0, 20)), total))
    for k in range(draw(st.integers(0, 7))):
        amount = draw(st.sampled_from([1, 300, 1000, 2500, 6000, -200, -1500]))
        pay_rows.append(
            (
                f"y{k}",
                draw(st.sampled_from(pids)),
                draw(st.integers(0, 20)),
                amount,
                draw(st.integers(0, 23)),
            )
        )
    alloc_rows = []
    room_inv = {r[0]: r[3] for r in inv_rows if r[3] > 0}
    room_pay = {r[0]: r[3] for r in pay_rows if r[3] > 0}
    for _ in range(draw(st.integers(0, 4))):
        if not room_inv:
            break
        iid = draw(st.sampled_from(sorted(room_inv)))
        owner = next(r[1] for r in inv_rows if r[0] == iid)
        choices = [
            y
            for y in sorted(room_pay)
            if next(r[1] for r in pay_rows if r[0] == y) == owner and room_pay[y] > 0
        ]
        use_credit = draw(st.booleans()) or not choices
        yid = None if use_credit else draw(st.sampled_from(choices))
        cap = room_inv[iid] if yid is None else min(room_inv[iid], room_pay[yid])
        if cap <= 0:
            continue
        amount = draw(st.integers(1, cap))
        room_inv[iid] -= amount
        if yid is not None:
            room_pay[yid] -= amount
        when = draw(st.one_of(st.none(), st.integers(0, 25)))
        alloc_rows.append((iid, yid, amount) + (() if when is None else (when,)))
    return inv_rows, pay_rows, alloc_rows


def frames(data):
    inv_rows, pay_rows, alloc_rows = data
    return (
        invoices(*inv_rows) if inv_rows else invoices(("_", "_", 0, 0)).iloc[0:0],
        payments(*pay_rows) if pay_rows else payments(("_", "_", 0, 0)).iloc[0:0],
        allocations(*alloc_rows) if alloc_rows else None,
    )


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    data=ledgers(),
    policy=st.sampled_from(POLICIES),
    as_of=st.integers(-1, 27),
    applies=st.sampled_from(["on-issue", "on-payment"]),
)
def test_engine_equals_reference(data, policy, as_of, applies):
    inv, pay, alloc = frames(data)
    r = compute_credit(inv, pay, alloc, None, day(as_of), policy=policy, credit_applies=applies)
    ref = reference(inv, pay, alloc, policy, day(as_of), applies)
    got = {k: v for k, v in zip(r.patients["patient_id"], r.patients["credit"], strict=True) if v}
    assert got == {k: v for k, v in ref["credit"].items() if v}
    got_final = {
        k: v for k, v in zip(r.patients["patient_id"], r.patients["final_credit"], strict=True) if v
    }
    assert got_final == {k: v for k, v in ref["final"].items() if v}
    got_inv = {
        row.invoice_id: (row.paid_direct, row.paid_from_credit, row.outstanding)
        for row in r.invoices.itertuples()
    }
    assert got_inv == ref["invoices"]


@FAST
@given(
    data=ledgers(),
    policy=st.sampled_from(POLICIES),
    as_of=st.integers(0, 27),
    applies=st.sampled_from(["on-issue", "on-payment"]),
)
def test_conservation_and_no_invoice_overpaid(data, policy, as_of, applies):
    inv, pay, alloc = frames(data)
    r = compute_credit(inv, pay, alloc, None, day(as_of), policy=policy, credit_applies=applies)
    p = r.patients
    # received + credit notes - refunded = paid directly + applied from credit + credit left
    assert (
        (p["received"] + p["credit_notes"] - p["refunded"])
        == (p["paid_direct"] + p["applied"] + p["credit"])
    ).all()
    positive = r.invoices.loc[r.invoices["total"] > 0]
    assert (
        positive["paid_direct"] + positive["paid_from_credit"] + positive["outstanding"]
        == positive["total"]
    ).all()
    assert (positive["outstanding"] >= 0).all()  # generated allocations never exceed a total
    assert (r.ledger["amount"] > 0).all()
    lg = r.ledger.loc[r.ledger["at"] < pd.Timestamp(day(as_of + 1))]
    applied = lg.loc[lg["kind"] == "applied"].groupby("patient_id")["amount"].sum()
    assert applied.reindex(p["patient_id"], fill_value=0).tolist() == p["applied"].tolist()
    neg = set(r.findings.loc[r.findings["code"] == "NEGATIVE_CREDIT", "patient_id"])
    assert set(p.loc[p["credit"] < 0, "patient_id"]) <= neg


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ledgers(), policy=st.sampled_from(POLICIES), seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(data, policy, seed):
    inv, pay, alloc = frames(data)
    r1 = compute_credit(inv, pay, alloc, None, day(30), policy=policy)
    rng = np.random.default_rng(seed)

    def shuffle(f: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if f is None else f.iloc[rng.permutation(len(f))].reset_index(drop=True)

    r2 = compute_credit(shuffle(inv), shuffle(pay), shuffle(alloc), None, day(30), policy=policy)
    pd.testing.assert_frame_equal(r1.patients, r2.patients)
    pd.testing.assert_frame_equal(r1.ledger, r2.ledger)
    pd.testing.assert_frame_equal(r1.findings, r2.findings)
    key = ["invoice_id"]
    pd.testing.assert_frame_equal(
        r1.invoices.sort_values(key).reset_index(drop=True),
        r2.invoices.sort_values(key).reset_index(drop=True),
    )


def test_nothing_supplied_gives_empty_frames_with_their_columns():
    r = compute_credit(None, None, None, None, D0)
    assert (
        r.patients.empty,
        r.invoices.empty,
        r.ledger.empty,
        r.excluded.empty,
        r.findings.empty,
    ) == (True,) * 5
    assert list(r.ledger.columns) == [
        "patient_id",
        "at",
        "kind",
        "amount",
        "ref_type",
        "ref_id",
        "lot_date",
    ]
    only = compute_credit(None, None, None, patients(("p", 100)), D0)
    assert pat(only)["difference"] == 100 and codes(only) == ["REPORTED_CREDIT_MISMATCH"]


def test_allocations_that_cannot_apply_are_listed_with_the_reason():
    inv = invoices(("i1", "p", 0, 1000), ("c1", "p", 0, -500), ("i2", "q", 0, 1000))
    pay = payments(("y1", "p", 0, 1000), ("r1", "p", 0, -100))
    alloc = allocations(
        ("c1", "y1", 100), ("i1", "r1", 100), ("i2", "y1", 100), ("i1", "nope", 100)
    )
    r = compute_credit(inv, pay, alloc, None, day(0), policy="none")
    reasons = dict(zip(r.excluded["id"], r.excluded["reason"], strict=True))
    assert reasons["c1/y1"].startswith("allocation to a credit note")
    assert reasons["i1/r1"].startswith("allocation from a refund")
    assert reasons["i2/y1"].startswith("the payment and the invoice belong to different patients")
    assert reasons["i1/nope"].startswith("payment nope is not in the payments export")
    assert inv_row(r, "i1")["outstanding"] == 1000


def test_on_payment_mode_leaves_credit_beside_an_open_invoice_until_a_payment_sweeps_it():
    inv = invoices(("i1", "p", 8, 9500))
    pay = payments(("y1", "p", 1, 19000), ("z0", "p", 12, 0))
    mid = compute_credit(inv, pay, None, None, day(10), credit_applies="on-payment")
    assert (pat(mid)["credit"], inv_row(mid, "i1")["outstanding"]) == (19000, 9500)
    found = mid.findings.set_index("code")
    assert found.loc["CREDIT_WITH_OPEN_INVOICES", "amount"] == 9500
    end = compute_credit(inv, pay, None, None, day(12), credit_applies="on-payment")
    assert (pat(end)["credit"], inv_row(end, "i1")["paid_from_credit"]) == (9500, 9500)
    assert ledger_rows(end)[-1] == ("2026-01-13", "applied", 9500, "invoice", "i1")
    on_issue = compute_credit(inv, pay, None, None, day(10))
    assert (pat(on_issue)["credit"], inv_row(on_issue, "i1")["outstanding"]) == (9500, 0)


def test_on_payment_sweep_pays_with_the_payment_first_then_credit():
    inv = invoices(("i1", "p", 8, 9500))
    pay = payments(("y1", "p", 1, 19000), ("y2", "p", 12, 5000), ("r1", "p", 10, -1000))
    r = compute_credit(inv, pay, None, None, day(12), credit_applies="on-payment")
    row = inv_row(r, "i1")
    assert (row["paid_direct"], row["paid_from_credit"]) == (5000, 4500)
    # 19000 - 1000 refunded - 4500 applied; y2 created nothing (all of it paid i1 directly).
    assert pat(r)["credit"] == 13500
    assert [x for x in ledger_rows(r) if x[4] == "y2"] == []
    with pytest.raises(ValueError, match="unknown credit_applies"):
        compute_credit(inv, pay, None, None, day(12), credit_applies="later")


def test_default_spends_credit_only_when_a_payment_is_recorded() -> None:
    """Cliniko: $100 pre-paid, a $60 invoice issued later stays open beside the credit until a
    $0 payment is recorded; then the credit pays it."""
    inv = invoices(("i1", "p1", 5, 6000))
    pay = payments(("y1", "p1", 1, 10000), ("y0", "p1", 9, 0))
    mid = engine_compute_credit(inv, pay, None, None, day(6))
    row = mid.patients.set_index("patient_id").loc["p1"]
    assert (row["credit"], row["open_outstanding"]) == (10000, 6000)
    assert "CREDIT_WITH_OPEN_INVOICES" in set(mid.findings["code"])
    end = engine_compute_credit(inv, pay, None, None, day(9))
    row = end.patients.set_index("patient_id").loc["p1"]
    assert (row["credit"], row["open_outstanding"], row["applied"]) == (4000, 0, 6000)


# ----------------------------------------------------------------------------- Cliniko's own figures


def cliniko_invoices(*rows: tuple) -> pd.DataFrame:
    """rows: (invoice_id, patient_id, day, total, credit_applied, closed day or None,
    outstanding_reported, paid_reported); money columns None when not exported."""
    return invoices(
        *(r[:4] for r in rows),
        credit_applied=pd.array([r[4] for r in rows], dtype="Int64"),
        closed_at=pd.to_datetime([ts(r[5]) if r[5] is not None else pd.NaT for r in rows]).astype(
            "datetime64[ns]"
        ),
        outstanding_reported=pd.array([r[6] for r in rows], dtype="Int64"),
        paid_reported=pd.array([r[7] for r in rows], dtype="Int64"),
    )


def test_credit_applied_without_allocations_pays_the_invoice_from_credit_on_its_closing_day():
    # $300 pre-paid; the $100 invoice of day 2 is paid from credit in Cliniko, closed on day 3.
    inv = cliniko_invoices(("i1", "p", 2, 10000, 10000, 3, 0, 0))
    pay = payments(("y1", "p", 0, 30000))
    before = engine_compute_credit(inv, pay, None, None, day(2))
    assert (inv_row(before, "i1")["outstanding"], pat(before)["credit"]) == (10000, 30000)
    after = engine_compute_credit(inv, pay, None, None, day(3))
    row = inv_row(after, "i1")
    assert (row["paid_direct"], row["paid_from_credit"], row["outstanding"]) == (0, 10000, 0)
    assert pat(after)["credit"] == 20000
    assert ledger_rows(after) == [
        ("2026-01-01", "created", 30000, "payment", "y1"),
        ("2026-01-04", "applied", 10000, "invoice", "i1"),
    ]
    assert codes(after) == ["UNAPPLIED_CREDIT"]


def test_credit_applied_without_a_closing_date_is_dated_by_the_issue_date():
    inv = cliniko_invoices(("i1", "p", 2, 10000, 10000, None, None, None))
    r = engine_compute_credit(inv, payments(("y1", "p", 0, 30000)), None, None, day(2))
    assert ledger_rows(r)[-1] == ("2026-01-03", "applied", 10000, "invoice", "i1")
    # Closed before it was issued: never applied before the invoice exists.
    early = cliniko_invoices(("i1", "p", 2, 10000, 10000, 1, None, None))
    r = engine_compute_credit(early, payments(("y1", "p", 0, 30000)), None, None, day(2))
    assert ledger_rows(r)[-1] == ("2026-01-03", "applied", 10000, "invoice", "i1")


def test_payments_pay_the_rest_with_their_own_money_and_credit_is_spent_only_as_recorded():
    # $150 invoice: Cliniko took $20 from credit and a $110 payment; $20 is still owing although
    # $80 of credit waits on the account (no payment may spend credit Cliniko did not apply).
    inv = cliniko_invoices(("i1", "p", 2, 15000, 2000, None, 2000, 11000))
    pay = payments(("y1", "p", 0, 10000), ("y2", "p", 2, 11000))
    for applies in ("on-payment", "on-issue"):
        r = engine_compute_credit(inv, pay, None, None, day(2), credit_applies=applies)
        row = inv_row(r, "i1")
        assert (row["paid_direct"], row["paid_from_credit"], row["outstanding"]) == (
            11000,
            2000,
            2000,
        )
        assert (pat(r)["credit"], codes(r)) == (
            8000,
            ["CREDIT_WITH_OPEN_INVOICES", "UNAPPLIED_CREDIT"],
        )
    # A payment larger than what is owing pays it and leaves the rest as credit.
    bigger = payments(("y1", "p", 0, 10000), ("y2", "p", 2, 20000))
    r = engine_compute_credit(inv, bigger, None, None, day(2))
    assert (inv_row(r, "i1")["outstanding"], pat(r)["credit"]) == (0, 15000)
    assert ledger_rows(r)[-1] == ("2026-01-03", "created", 7000, "payment", "y2")


def test_exported_allocations_win_and_credit_applied_is_only_checked_against_them():
    inv = cliniko_invoices(("i1", "p", 2, 10000, 10000, 3, 0, 0))
    pay = payments(("y1", "p", 0, 30000))
    alloc = allocations(("i1", None, 6000, 3))
    r = engine_compute_credit(inv, pay, alloc, None, day(3))
    row = inv_row(r, "i1")
    assert (row["paid_from_credit"], row["outstanding"]) == (6000, 4000)
    found = r.findings.loc[r.findings["code"] == "INVOICE_BALANCE_MISMATCH"]
    assert found[["subject_id", "amount", "source_row"]].values.tolist() == [["i1", 4000, 2]]
    assert found["message"].tolist() == [
        (
            "Invoice Ni1 does not add up to Cliniko's own figures (outstanding $0.00 in Cliniko, "
            "$40.00 recomputed; paid from credit $100.00 in Cliniko, $60.00 recomputed): check for "
            "payments, credit or allocations missing from the exports."
        )
    ]


def test_invoice_balance_is_compared_with_the_state_after_every_exported_event():
    # Cliniko says $30 still owing and $70 paid; the exports hold a later $30 payment as well.
    inv = cliniko_invoices(
        ("i1", "p", 2, 10000, None, None, 3000, 7000), ("i2", "p", 2, 0, None, None, 500, 0)
    )
    pay = payments(("y1", "p", 2, 7000), ("y2", "p", 9, 3000))
    early = engine_compute_credit(inv, pay, None, None, day(2))
    assert inv_row(early, "i1")["outstanding"] == 3000  # the as-of snapshot agrees with Cliniko...
    found = early.findings.loc[early.findings["code"] == "INVOICE_BALANCE_MISMATCH"]
    # ...but the export was taken after day 9, when nothing is owing: a finding, naming both.
    assert found[["subject_id", "amount"]].values.tolist() == [["i1", 3000]]
    assert found["message"].tolist() == [
        (
            "Invoice Ni1 does not add up to Cliniko's own figures (outstanding $30.00 in Cliniko, "
            "$0.00 recomputed; paid by payments $70.00 in Cliniko, $100.00 recomputed): check for "
            "payments, credit or allocations missing from the exports."
        )
    ]
    agreeing = cliniko_invoices(("i1", "p", 2, 10000, None, None, 0, 10000))
    r = engine_compute_credit(agreeing, pay, None, None, day(9))
    assert "INVOICE_BALANCE_MISMATCH" not in codes(r)
    assert inv_row(r, "i1")["final_paid_direct"] == 10000


@FAST
@given(
    data=ledgers(),
    policy=st.sampled_from(POLICIES),
    as_of=st.integers(-1, 27),
    applies=st.sampled_from(["on-issue", "on-payment"]),
    closed=st.lists(st.integers(-3, 25)),
)
def test_credit_applied_is_the_same_as_exported_credit_allocations(
    data, policy, as_of, applies, closed
):
    """Cliniko's Credit Applied, dated by Date Closed, is a credit allocation: the reference
    ledger (fed the equivalent allocations export) must agree with the engine fed the column."""
    inv_rows, _, alloc_rows = data
    credit_rows = [a for a in alloc_rows if a[1] is None]
    applied = {a[0]: 0 for a in credit_rows}
    for a in credit_rows:
        applied[a[0]] += a[2]
    close_day = {
        iid: (closed[k] if k < len(closed) else None) for k, iid in enumerate(sorted(applied))
    }
    rows = [(*r, applied.get(r[0], 0), close_day.get(r[0]), None, None) for r in inv_rows]
    inv = cliniko_invoices(*rows) if rows else frames(data)[0]
    pay = frames(data)[1]
    equivalent = [
        (iid, None, amount) + (() if close_day[iid] is None else (max(close_day[iid], issue),))
        for iid, amount in applied.items()
        for issue in [next(r[2] for r in inv_rows if r[0] == iid)]
    ]
    r = engine_compute_credit(
        inv, pay, None, None, day(as_of), policy=policy, credit_applies=applies
    )
    recorded = bool(rows)  # every invoice carries Credit Applied, $0 included
    ref = reference(
        frames(data)[0],
        pay,
        allocations(*equivalent) if equivalent else None,
        policy,
        day(as_of),
        applies,
        own_money=recorded,
    )
    assert {
        k: v for k, v in zip(r.patients["patient_id"], r.patients["credit"], strict=True) if v
    } == {k: v for k, v in ref["credit"].items() if v}
    got_inv = {
        row.invoice_id: (row.paid_direct, row.paid_from_credit, row.outstanding)
        for row in r.invoices.itertuples()
    }
    assert got_inv == ref["invoices"]
