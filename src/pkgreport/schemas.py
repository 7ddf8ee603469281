"""The one place column names and header aliases are spelled, and the pandera model of each kind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ValueType = Literal["id", "text", "timestamp", "date", "money", "count", "bool", "status", "source"]

KINDS: tuple[str, ...] = ("appointments", "cases", "invoices", "payments", "allocations", "patients")


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column: how it is typed, whether it must be present, what else it is called."""

    name: str
    type: ValueType
    required: bool = False
    aliases: tuple[str, ...] = ()
    default: object = None


def normalise_header(header: str) -> str:
    """Header matching ignores case, spaces, underscores and punctuation."""
    return re.sub(r"[^0-9a-z]", "", str(header).casefold())


def _c(name: str, type_: ValueType, *aliases: str, required: bool = False, default: object = None) -> ColumnSpec:
    return ColumnSpec(name, type_, required, aliases, default)


# Aliases are Cliniko's own field names (API and CSV export headers) and common other spellings.
# Matching is on normalise_header(), so "Appointment ID", "appointment_id" and "appointment-id" agree.
COLUMNS: dict[str, tuple[ColumnSpec, ...]] = {
    "appointments": (
        _c("appointment_id", "id", "id", "appointment", required=True),
        _c("patient_id", "id", required=True),
        _c("starts_at", "timestamp", "appointment_start", "start_time", "start", "appointment_date", required=True),
        _c("ends_at", "timestamp", "appointment_end", "end_time", "end"),
        _c("case_id", "id", "patient_case", "patient_case_id", "case"),
        _c("cancelled_at", "timestamp", "cancellation_time", "cancelled"),
        _c("did_not_arrive", "bool", "dna", "did_not_attend", "no_show", default=False),
        _c("arrived", "bool", default=False),
        _c("archived_at", "timestamp"),
        _c("deleted_at", "timestamp"),
        _c("patient_name", "text", "patient"),
        _c("practitioner", "text", "practitioner_name"),
        _c("business", "text", "business_name", "location"),
        _c("appointment_type", "text", "appointment_type_name", "type"),
    ),
    "cases": (
        _c("case_id", "id", "id", "patient_case", "patient_case_id", "case", required=True),
        _c("patient_id", "id", required=True),
        _c("case_name", "text", "name"),
        _c("max_sessions", "count", "maximum_appointments", "max_appointments", "maximum_sessions"),
        _c("include_cancelled", "bool", "include_cancelled_attendees", "include_cancelled_appointments", default=False),
        _c("include_dna", "bool", "include_dna_attendees", "include_did_not_arrive", "include_did_not_arrive_appointments", default=False),
        _c("issue_date", "date", "referral_issue_date", "issued"),
        _c("expiry_date", "date", "referral_expiry_date", "expires", "expiry"),
        _c("closed_at", "timestamp", "closed"),
        _c("archived_at", "timestamp"),
        _c("package_price", "money", "price"),
    ),
    "invoices": (
        _c("invoice_id", "id", "id", "invoice", required=True),
        _c("patient_id", "id", required=True),
        _c("issue_date", "date", "invoice_date", "date", "issued_at", required=True),
        _c("total", "money", "total_amount", "invoice_total", "amount", required=True),
        _c("number", "text", "invoice_number", "invoice_no"),
        _c("status", "status", "invoice_status"),
        _c("appointment_id", "id", "appointment"),
        _c("case_id", "id", "patient_case", "patient_case_id"),
        _c("original_invoice_id", "id", "original_invoice", "credit_note_for"),
        _c("archived_at", "timestamp"),
        _c("deleted_at", "timestamp"),
        _c("practitioner", "text", "practitioner_name"),
        _c("business", "text", "business_name", "location"),
        _c("item", "text", "billable_item", "items", "invoice_items"),
    ),
    "payments": (
        _c("payment_id", "id", "id", "payment", required=True),
        _c("patient_id", "id", required=True),
        _c("paid_at", "timestamp", "payment_date", "date", "paid", "received_at", required=True),
        _c("amount", "money", "total", "total_amount", "payment_amount", required=True),
        _c("payment_type", "text", "payment_method", "method", "payment_source"),
        _c("archived_at", "timestamp"),
        _c("deleted_at", "timestamp"),
        _c("notes", "text", "note"),
    ),
    "allocations": (
        _c("invoice_id", "id", "invoice", required=True),
        _c("payment_id", "id", "payment"),
        _c("source", "source", "allocation_source", "paid_from"),
        _c("amount", "money", "allocated", "amount_allocated", required=True),
        _c("allocated_at", "timestamp", "date", "allocation_date"),
    ),
    "patients": (
        _c("patient_id", "id", "id", "patient", required=True),
        _c("patient_name", "text", "name", "full_name"),
        _c("reported_credit", "money", "unapplied_account_credit", "account_credit", "unapplied_credit"),
    ),
}

INVOICE_STATUS_CODES: dict[str, str] = {
    # Cliniko's numeric invoice status codes and the words its exports show.
    "10": "open",
    "20": "paid",
    "30": "closed",
    "40": "open_credit",
    "open": "open",
    "paid": "paid",
    "closed": "closed",
    "opencredit": "open_credit",
}


def spec_for(kind: str) -> dict[str, ColumnSpec]:
    return {c.name: c for c in COLUMNS[kind]}


def id_column(kind: str) -> str | None:
    """The column that identifies a row of this kind (allocations have none)."""
    return {
        "appointments": "appointment_id",
        "cases": "case_id",
        "invoices": "invoice_id",
        "payments": "payment_id",
        "patients": "patient_id",
    }.get(kind)
