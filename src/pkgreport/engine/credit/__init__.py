"""Account credit: allocate payments to invoices, keep a dated credit ledger, flag what is off.

`compute_credit` runs the stages in order, each a pure function in its own module returning a
small frozen dataclass: `records` (live records) -> `allocations` (explicit allocations) ->
`events` (the queue) -> `matching` (per policy) -> `ledger` -> `snapshot` (at a date) ->
`findings` (one function per code).

The allocation model
====================

Money is int64 cents; datetimes are naive clinic-local. Everything is computed over the *whole*
history in the exports; the ``as_of`` snapshot (inclusive: every event before the end of that day)
is then read off the dated results, so a snapshot, the ledger and a roll-forward always agree.

1. Live records only. Invoices and payments with ``deleted_at`` or ``archived_at`` set are left out
   and listed in ``excluded`` with the reason; so are allocations that name a missing or excluded
   invoice or payment, a refund, a credit note or zero invoice, or a payment of another patient.

2. Explicit allocations (the allocations export) are kept as given and come before anything
   automatic. Each takes effect at ``allocated_at``, or when that is blank at the later of the
   payment's and the invoice's dates (a credit allocation: the invoice date); it never takes
   effect before its invoice is issued or its payment received (those dates are a floor).

   * ``source == "payment"``: the payment pays the invoice. On the payment's own day that is a
     *direct* payment (no credit movement). Later, the money sits as credit from the payment's
     date (ledger ``created``) and is ``applied`` on the allocation date.
     A payment whose explicit allocations exceed it (inconsistent data) pays them in date order,
     then file order; the excess is taken from the patient's credit as a credit allocation.
   * ``source == "credit"``: a "$0 payment": the amount is taken from the patient's credit
     (ledger ``applied``) on the allocation date.

   An invoice's *auto-payable* balance is its total less all its explicit allocations (whenever
   dated), because exported allocations are applied before any automatic one. Explicit
   allocations above an invoice's total are kept (the invoice shows a negative outstanding) and
   reported as OVER_ALLOCATED_INVOICE.

   Cliniko exports no allocations, but its invoices export says what account credit paid on
   each invoice (``credit_applied``). With no allocations export, those figures are taken as
   given: each is a credit allocation dated by the invoice's ``closed_at`` (else its issue date),
   credit is spent only as they record it, and a payment pays open invoices with its own money
   alone (``allocations.recorded_credit``, ``matching._settled_by_own_money``). With an allocations export, it wins
   and ``credit_applied`` is only compared with it.

3. Events per patient are replayed in order of (day, rank, id): rank 1 invoices and credit
   notes, rank 2 payments and refunds, rank 3 credit allocations; ids compare as text. So an
   invoice issued on a payment's day is open when the payment arrives, and a credit allocation
   sees the day's payments.

   * supply: a payment's remainder (amount less its explicit allocations); a credit note
     (negative total) creates credit of ``|total|`` on its date (Cliniko "Create credit").
   * demand: an invoice's auto-payable balance (policies ``oldest-first``/``newest-first`` only);
     a refund (negative payment, paid out of credit); a credit allocation.

   Supply first pays open demand, the rest sits as credit; new demand first takes credit, the
   rest stays open. Refunds and credit allocations are recorded in full on their own date. If
   the credit cannot cover them the balance goes negative (reported as NEGATIVE_CREDIT, never
   clamped) and they wait in the queue of open demand until later money covers them.

   * ``oldest-first`` (Cliniko's default): open demand is a queue (oldest issue date first, ties
     by id) and credit is spent oldest first. Both sides are FIFO, so supply unit *x* meets demand
     unit *x* of the patient's cumulative streams: fully vectorised with cumulative sums and one
     global ``searchsorted`` (patients sit at disjoint offsets on one number line).
   * ``newest-first``: open demand is a stack (newest first), credit still spent oldest first.
     A LIFO match has no cumulative-sum form, so it is one linear pass over the events in plain
     Python: O(n), not vectorised, about 0.75 s per million events on this machine.
   * ``source-only`` (Cliniko "only the source invoice"): a payment pays only the invoices it is
     explicitly allocated to (its source invoices). Its remainder tops those invoices up to their
     totals (oldest first, payments in event order) and the rest stays as credit; credit is never
     applied automatically to any other invoice.
   * ``none``: only explicit allocations; every payment remainder stays as credit.

   When credit waiting on the account meets a newly issued invoice is a second switch,
   ``credit_applies`` (auto policies only):

   * ``on-payment`` (the default: Cliniko as its help centre and ``sample_data`` describe it;
     credit is spent by recording a payment, a $0 one included, so credit can sit on file beside
     an open invoice - the CREDIT_WITH_OPEN_INVOICES finding): invoices only queue; each payment sweeps its own
     remainder, then the credit, onto the open invoices per the policy. Refunds and credit
     allocations take credit at once. Vectorised too: with Y the cumulative supply less those
     drains and D the cumulative auto-payable demand, the amount settled after a sweep is the
     running maximum of min(D, Y) over the patient's sweeps (``matching._sweep_segments``).
   * ``on-issue`` (for systems that spend credit automatically): the invoice takes waiting credit
     on its issue date, so a payment received before an invoice pays it when it is issued.

4. The ledger has one row per credit movement: ``created`` (a payment's part that did not pay an
   open invoice on arrival, a credit note, a payment allocated later than received), ``applied``
   (credit used on an invoice: at the invoice date when credit was waiting, at a credit note's
   date when it paid an older open invoice, at a credit allocation's date) and ``refunded``.
   Per patient, at every date::

       credit = created - applied - refunded
       received + credit_notes - refunded = paid_direct + applied + credit

   where ``received`` sums positive payments, ``refunded`` the refunds, ``credit_notes`` the
   credit notes' ``|total|``, ``paid_direct`` what payments paid on their own day and
   ``applied`` what invoices received from credit. For each invoice with a positive total,
   ``total = paid_direct + paid_from_credit + outstanding``.

5. Findings as of ``as_of``: UNAPPLIED_CREDIT (credit > 0), CREDIT_WITH_OPEN_INVOICES (credit > 0
   and open invoices; amount = what could be applied), DORMANT_CREDIT (credit > 0 and at least
   ``dormant_days`` whole days from the last ledger movement's day to ``as_of``), NEGATIVE_CREDIT
   (an end-of-day balance below zero on or before ``as_of``; intra-day order never raises it),
   OVER_ALLOCATED_INVOICE, PACKAGE_SESSION_CHARGED (an appointment of a case whose package invoice
   - ``case_id`` set, no ``appointment_id`` - is paid in full was itself invoiced above $0).

6. Present-state checks use the final state of the exports (after every event), because the
   exported status and "Unapplied Account Credit" describe the day of the export, not ``as_of``:
   INVOICE_STATUS_MISMATCH compares ``status_reported`` with ``status_final``,
   ``difference = reported_credit - final_credit``, and INVOICE_BALANCE_MISMATCH compares
   Cliniko's ``outstanding_reported`` and ``paid_reported`` (and ``credit_applied`` when
   allocations were exported) with ``final_outstanding``, ``final_paid_direct`` and
   ``final_paid_from_credit`` of every invoice with a positive total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import end_of_day
from pkgreport.engine.credit import findings as find
from pkgreport.engine.credit.allocations import (
    ExplicitAllocations,
    explicit_allocations,
    recorded_credit,
    recorded_credit_rows,
    records_credit,
)
from pkgreport.engine.credit.events import PatientCodes, build_event_queue, code_patients
from pkgreport.engine.credit.ledger import Ledger, build_ledger, ledger_frame
from pkgreport.engine.credit.matching import match_events
from pkgreport.engine.credit.records import (
    InvoiceArrays,
    LiveRecords,
    PaymentArrays,
    live_records,
)
from pkgreport.engine.credit.snapshot import (
    PATIENT_COLUMNS,
    InvoicePayments,
    invoice_payments,
    invoice_snapshot,
    patient_snapshot,
)
from pkgreport.engine.findings import combine_findings
from pkgreport.engine.links import InvoiceLinks
from pkgreport.engine.registry import ALLOCATION_POLICIES, CREDIT_TIMINGS, DEFAULT_SYSTEM
from pkgreport.excluded import empty_excluded
from pkgreport.ids import RunIds, encode_ids

POLICIES: tuple[str, ...] = tuple(ALLOCATION_POLICIES)
CREDIT_APPLIES: tuple[str, ...] = tuple(CREDIT_TIMINGS)

__all__ = ["CREDIT_APPLIES", "POLICIES", "CreditResult", "compute_credit"]


@dataclass(frozen=True)
class CreditResult:
    """Everything `compute_credit` finds; money int64 cents, snapshot columns as of `as_of`.

    ``patients`` (sorted by patient_id; every patient in any input): received, refunded,
    credit_notes, invoiced (positive invoices), paid_direct, applied, credit, open_outstanding,
    last_movement (last ledger movement) as of `as_of`; final_credit after every event;
    reported_credit and difference = reported_credit - final_credit (Int64, NA when not
    exported); findings (codes joined by ", ").
    ``invoices`` (file order, issued by `as_of`): explicit_allocated (all explicit allocations as
    given), paid_direct, paid_from_credit, outstanding and status_computed (open, paid, zero,
    credit note, over-allocated) as of `as_of`; final_outstanding and status_final after every
    event; status_reported normalised; status_mismatch.
    ``ledger`` (sorted by patient_id, at): patient_id, at, kind (created|applied|refunded), amount
    (> 0), ref_type (payment|invoice|credit_note), ref_id, lot_date (the day a created lot
    arrived; NaT on uses). Every event in the exports, including those after `as_of`.
    ``excluded``: kind, source_file, source_row, id, reason (`pkgreport.excluded`).
    """

    patients: pd.DataFrame
    invoices: pd.DataFrame
    ledger: pd.DataFrame
    excluded: pd.DataFrame
    findings: pd.DataFrame
    as_of: date
    policy: str


def compute_credit(
    invoices: pd.DataFrame | None,
    payments: pd.DataFrame | None,
    allocations: pd.DataFrame | None,
    patients: pd.DataFrame | None,
    as_of: date,
    *,
    policy: str = "oldest-first",
    dormant_days: int = 365,
    credit_applies: str = "on-payment",
    appointments: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    links: InvoiceLinks | None = None,
    system: str = DEFAULT_SYSTEM,
    ids: RunIds | None = None,
) -> CreditResult:
    """Allocate payments to invoices per `policy`, build the credit ledger and the findings.

    `links` ties invoices whose appointment id is not intact to their appointment by invoice
    number (`engine.links`); without it, invoices are linked by their own appointment id.
    `system` names the practice system in the findings' advice ("apply it in Mindbody").
    `ids`: the id codes of these frames (`pkgreport.ids`), made here when not given.
    """
    _check_choices(policy, credit_applies)
    cutoff = end_of_day(as_of)
    frames = {"invoices": invoices, "payments": payments, "patients": patients}
    ids = ids or encode_ids(**frames, appointments=appointments, cases=cases)
    live = live_records(invoices, payments)
    invoice_arrays = InvoiceArrays.of(live.invoices)
    payment_arrays = PaymentArrays.of(live.payments)
    allocations_exported = allocations is not None
    # Cliniko's own Credit Applied column says how much credit each invoice used: taken as given,
    # credit is then spent only as recorded, and payments pay with their own money.
    credit_recorded = not allocations_exported and records_credit(live.invoices)
    allocations, recorded_rows = _given_allocations(allocations, live)
    explicit = explicit_allocations(
        allocations, live, invoice_arrays, payment_arrays, policy, invoice_rows=recorded_rows
    )
    patient_codes = code_patients(invoice_arrays, payment_arrays, patients, ids.patients, live)

    sweep = ALLOCATION_POLICIES[policy].automatic and (
        credit_applies == "on-payment" or credit_recorded
    )
    ledger, paid, record_ids = _allocate(
        invoice_arrays, payment_arrays, explicit, patient_codes, policy, sweep, credit_recorded
    )
    invoice_state = invoice_snapshot(live.invoices, invoice_arrays, explicit, paid, cutoff)
    patient_table = patient_snapshot(
        patients, patient_codes, invoice_arrays, payment_arrays, invoice_state, ledger, cutoff
    )
    invoice_table = invoice_state.frame
    findings = combine_findings(
        find.unapplied_credit(patient_table, as_of),
        find.credit_with_open_invoices(patient_table, system),
        find.dormant_credit(patient_table, as_of, dormant_days),
        find.negative_credit(patient_table, _by_cutoff(ledger, cutoff), system),
        find.reported_credit_mismatch(patient_table, system),
        find.invoice_status_mismatch(invoice_table, system),
        find.over_allocated_invoice(invoice_table, allocations),
        find.package_session_charged(
            invoice_table, live, invoice_state.issued, appointments, cases, links, ids
        ),
        find.invoice_balance_mismatch(invoice_table, system, check_credit=allocations_exported),
    )
    patient_table["findings"] = find.codes_per_patient(findings, patient_codes.ids)
    ledger_table = ledger_frame(ledger, patient_codes.ids, record_ids)
    excluded = _excluded(live.excluded_invoices, live.excluded_payments, explicit.excluded)
    return CreditResult(
        patient_table[PATIENT_COLUMNS],
        invoice_table,
        ledger_table,
        excluded,
        findings,
        as_of,
        policy,
    )


def _allocate(
    invoices: InvoiceArrays,
    payments: PaymentArrays,
    explicit: ExplicitAllocations,
    patient_codes: PatientCodes,
    policy: str,
    sweep: bool,
    credit_recorded: bool,
) -> tuple[Ledger, InvoicePayments, np.ndarray]:
    """Stages 3 to 5: the event queue matched per `policy`, as the ledger and the payments of
    each invoice, with the queue's record ids. The queue's and the matches' event-long arrays
    are let go on return: kept to the end of `compute_credit`, they were its peak memory."""
    automatic = ALLOCATION_POLICIES[policy].automatic
    queue = build_event_queue(
        invoices, payments, explicit, patient_codes, auto=automatic, sweep=sweep
    )
    matches = match_events(queue, policy, sweep=sweep, own_money=credit_recorded)
    newest_first = ALLOCATION_POLICIES[policy].open_demand == "stack"
    ledger = build_ledger(queue, matches, explicit, patient_codes, newest_first=newest_first)
    return ledger, invoice_payments(explicit, matches), queue.record_ids


def _given_allocations(
    allocations: pd.DataFrame | None, live: LiveRecords
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The allocations to apply: those exported, else Cliniko's recorded credit (with each one's
    live invoice row, known already), else none."""
    if allocations is not None or not records_credit(live.invoices):
        return allocations, None
    return recorded_credit(live.invoices), recorded_credit_rows(live.invoices)


def _excluded(*frames: pd.DataFrame) -> pd.DataFrame:
    """The excluded invoices, payments and allocations as one frame."""
    return pd.concat([x for x in frames if len(x)] or [empty_excluded()], ignore_index=True)


def _check_choices(policy: str, credit_applies: str) -> None:
    if policy not in ALLOCATION_POLICIES:
        raise ValueError(f"unknown allocation policy {policy!r}; use one of {', '.join(POLICIES)}")
    if credit_applies not in CREDIT_TIMINGS:
        raise ValueError(
            f"unknown credit_applies {credit_applies!r}; use one of {', '.join(CREDIT_APPLIES)}"
        )


def _by_cutoff(ledger: Ledger, cutoff: np.datetime64) -> Ledger:
    """The ledger's movements before `cutoff` (still sorted by patient, then time)."""
    keep = ledger.at < cutoff
    return Ledger(
        ledger.patient[keep],
        ledger.at[keep],
        ledger.kind[keep],
        ledger.amount[keep],
        ledger.ref_type[keep],
        ledger.ref[keep],
    )
