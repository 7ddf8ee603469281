"""The credit engine's stages, each on its own: exact values from tiny hand-made inputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pkgreport.engine._arrays import end_of_day
from pkgreport.engine.credit import findings as find
from pkgreport.engine.credit.allocations import explicit_allocations
from pkgreport.engine.credit.columns import days_of
from pkgreport.engine.credit.events import EventType, build_event_queue, code_patients
from pkgreport.engine.credit.ledger import LedgerKind, RefType, build_ledger, ledger_frame
from pkgreport.engine.credit.matching import match_events, match_fifo, match_lifo
from pkgreport.engine.credit.records import InvoiceArrays, PaymentArrays, live_records
from pkgreport.engine.credit.snapshot import invoice_payments, invoice_snapshot


def _at(day: int, hour: int = 9) -> pd.Timestamp:
    return pd.Timestamp(2026, 3, day, hour)


def _invoices(*rows: tuple) -> pd.DataFrame:
    """rows: (invoice_id, patient_id, day, total)."""
    return pd.DataFrame(
        {
            "invoice_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "issue_date": pd.Series([_at(r[2]) for r in rows], dtype="datetime64[ns]"),
            "total": pd.Series([r[3] for r in rows], dtype="int64"),
            "number": [r[0].upper() for r in rows],
            "status": ["open"] * len(rows),
            "source_file": ["invoices.csv"] * len(rows),
            "source_row": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        }
    )


def _payments(*rows: tuple) -> pd.DataFrame:
    """rows: (payment_id, patient_id, day, amount)."""
    return pd.DataFrame(
        {
            "payment_id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "paid_at": pd.Series([_at(r[2], 12) for r in rows], dtype="datetime64[ns]"),
            "amount": pd.Series([r[3] for r in rows], dtype="int64"),
            "source_file": ["payments.csv"] * len(rows),
            "source_row": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        }
    )


def _allocations(*rows: tuple) -> pd.DataFrame:
    """rows: (invoice_id, payment_id or None, amount, day)."""
    return pd.DataFrame(
        {
            "invoice_id": [r[0] for r in rows],
            "payment_id": [r[1] for r in rows],
            "source": ["payment" if r[1] else "credit" for r in rows],
            "amount": pd.Series([r[2] for r in rows], dtype="int64"),
            "allocated_at": pd.Series([_at(r[3], 15) for r in rows], dtype="datetime64[ns]"),
            "source_file": ["allocations.csv"] * len(rows),
            "source_row": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        }
    )


def _stages(invoices, payments, allocations=None, policy="oldest-first", sweep=False):
    live = live_records(invoices, payments)
    inv, pay = InvoiceArrays.of(live.invoices), PaymentArrays.of(live.payments)
    explicit = explicit_allocations(allocations, live, inv, pay, policy)
    codes = code_patients(inv, pay, None)
    queue = build_event_queue(inv, pay, explicit, codes, auto=True, sweep=sweep)
    return live, inv, pay, explicit, codes, queue


def test_live_records_leave_out_deleted_and_archived_rows_with_the_reason():
    invoices = _invoices(("i1", "p1", 1, 5000), ("i2", "p1", 2, 3000))
    invoices["deleted_at"] = pd.Series([pd.NaT, _at(3)], dtype="datetime64[ns]")
    payments = _payments(("y1", "p1", 1, 5000))
    payments["archived_at"] = pd.Series([_at(4)], dtype="datetime64[ns]")
    live = live_records(invoices, payments)
    assert live.invoices["invoice_id"].tolist() == ["i1"]
    assert live.payments.empty
    assert live.excluded_invoices[["id", "source_row", "reason"]].values.tolist() == [
        ["i2", 3, "deleted invoice (deleted_at is set): left out of every total"]
    ]
    assert live.excluded_payments[["id", "source_row", "reason"]].values.tolist() == [
        ["y1", 2, "archived payment (archived_at is set): left out of every total"]
    ]


def test_explicit_allocations_split_an_overspent_payment_and_date_each_part():
    invoices = _invoices(("i1", "p1", 1, 6000), ("i2", "p1", 1, 7000))
    payments = _payments(("y1", "p1", 1, 10000))
    # y1 pays i1 on its own day, i2 two days later; 3000 of i2's 7000 exceed the payment.
    allocations = _allocations(("i1", "y1", 6000, 1), ("i2", "y1", 7000, 3))
    _, _, _, explicit, _, _ = _stages(invoices, payments, allocations)
    alloc = explicit.allocations
    assert explicit.per_invoice.tolist() == [6000, 7000]
    assert explicit.payment_remainders.tolist() == [0]
    assert list(
        zip(alloc.inv.tolist(), alloc.pay.tolist(), alloc.amount.tolist(), strict=True)
    ) == [
        (0, 0, 6000),
        (1, 0, 4000),
        (1, -1, 3000),
    ]
    assert explicit.paid_directly.tolist() == [True, False, False]
    assert explicit.in_transit.tolist() == [False, True, False]
    assert explicit.from_credit.tolist() == [False, False, True]


def test_the_event_queue_replays_invoices_before_payments_on_the_same_day():
    invoices = _invoices(("i2", "p2", 1, 4000), ("i1", "p1", 2, 5000), ("cn", "p1", 1, -1000))
    payments = _payments(("y1", "p1", 2, 6000), ("r1", "p1", 3, -500))
    *_, queue = _stages(invoices, payments)
    assert queue.types.tolist() == [
        EventType.CREDIT_NOTE,
        EventType.INVOICE,
        EventType.PAYMENT,
        EventType.REFUND,
        EventType.INVOICE,
    ]
    assert queue.record_ids[queue.ref].tolist() == ["cn", "i1", "y1", "r1", "i2"]
    assert queue.patient.tolist() == [0, 0, 0, 0, 1]
    assert queue.supply.tolist() == [1000, 0, 6000, 0, 0]
    assert queue.demand.tolist() == [0, 5000, 0, 500, 4000]


def test_fifo_and_lifo_matching_pair_the_same_streams_differently():
    patient = np.array([0, 0, 0])
    supply = np.array([0, 0, 7000])
    demand = np.array([5000, 4000, 0])
    fifo = [a.tolist() for a in match_fifo(patient, supply, demand)]
    lifo = [a.tolist() for a in match_lifo(patient, supply, demand)]
    # (demand event, supply event, amount): oldest first pays 5000 then 2000 of the second.
    assert fifo == [[0, 1], [2, 2], [5000, 2000]]
    assert lifo == [[1, 0], [2, 2], [4000, 3000]]


def test_matching_and_the_ledger_of_an_early_payment_and_a_later_invoice():
    invoices = _invoices(("i1", "p1", 5, 5000))
    payments = _payments(("y1", "p1", 1, 8000))
    live, inv, _, explicit, codes, queue = _stages(invoices, payments)
    matches = match_events(queue, "oldest-first", sweep=False, own_money=False)
    assert matches.invoice.tolist() == [0]
    assert matches.amount.tolist() == [5000]
    assert matches.direct.tolist() == [False]  # the money waited as credit
    ledger = build_ledger(queue, matches, explicit, codes, newest_first=False)
    frame = ledger_frame(ledger, codes.ids, queue.record_ids)
    assert frame[["kind", "amount", "ref_type", "ref_id"]].values.tolist() == [
        ["created", 8000, "payment", "y1"],
        ["applied", 5000, "invoice", "i1"],
    ]
    assert ledger.signed.tolist() == [8000, -5000]
    paid = invoice_payments(explicit, matches)
    before = invoice_snapshot(live.invoices, inv, explicit, paid, end_of_day(date(2026, 3, 4)))
    after = invoice_snapshot(live.invoices, inv, explicit, paid, end_of_day(date(2026, 3, 5)))
    assert before.frame.empty  # not issued yet
    assert after.frame[["paid_from_credit", "outstanding", "status_computed"]].values.tolist() == [
        [5000, 0, "paid"]
    ]


def test_ledger_kinds_and_reference_types_are_spelled_once():
    assert [kind.label for kind in LedgerKind] == ["created", "applied", "refunded"]
    assert [ref.label for ref in RefType] == ["payment", "invoice", "credit_note"]


def _patients(**columns: list) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["source_file"] = "patients.csv"
    frame["source_row"] = range(2, len(frame) + 2)
    return frame


def test_unapplied_credit_names_the_amount_and_the_date():
    patients = _patients(patient_id=["p1", "p2"], credit=[2500, 0])
    found = find.unapplied_credit(patients, date(2026, 3, 31))
    assert found[["code", "subject_id", "amount", "message"]].values.tolist() == [
        [
            "UNAPPLIED_CREDIT",
            "p1",
            2500,
            (
                "$25.00 of account credit is unapplied on 2026-03-31: apply it to the patient's "
                "next invoice or refund it."
            ),
        ]
    ]


def test_credit_with_open_invoices_offers_what_could_be_applied():
    patients = _patients(patient_id=["p1"], credit=[2500], open_outstanding=[1000])
    found = find.credit_with_open_invoices(patients, "Cliniko")
    assert found[["amount", "message"]].values.tolist() == [
        [
            1000,
            (
                "The patient has $25.00 of credit and $10.00 owing on open invoices: "
                "apply $10.00 of the credit to those invoices in Cliniko."
            ),
        ]
    ]


def test_dormant_credit_counts_whole_days_from_the_last_movement():
    patients = _patients(
        patient_id=["p1", "p2"],
        credit=[2500, 2500],
        last_movement=pd.Series([_at(1), _at(2)], dtype="datetime64[ns]"),
    )
    found = find.dormant_credit(patients, date(2026, 3, 31), dormant_days=30)
    assert found[["subject_id", "message"]].values.tolist() == [
        [
            "p1",
            (
                "$25.00 of credit has not moved for 30 days (since 2026-03-01): "
                "contact the patient to use or refund it."
            ),
        ]
    ]


def test_a_finding_with_no_subjects_is_none():
    patients = _patients(patient_id=["p1"], credit=[0], open_outstanding=[0])
    assert find.unapplied_credit(patients, date(2026, 3, 31)) is None
    assert find.credit_with_open_invoices(patients, "Cliniko") is None


@given(
    st.lists(
        # 1823 to 2116 (numpy's own days go wrong within a day of the int64 limit), and NaT
        st.one_of(st.integers(-(2**62), 2**62), st.just(-(2**63))),
        max_size=30,
    )
)
def test_day_numbers_are_numpys_own_days_nat_included(nanoseconds: list[int]) -> None:
    at = np.array(nanoseconds, dtype=np.int64).view("datetime64[ns]")
    expected = at.astype("datetime64[D]").astype(np.int64)
    assert days_of(at).tolist() == expected.tolist()
