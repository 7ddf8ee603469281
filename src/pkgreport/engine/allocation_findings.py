"""Findings for allocations the credit engine could not apply: both records named, money kept."""

from __future__ import annotations

import pandas as pd

from pkgreport.engine.findings import empty_findings, make_findings
from pkgreport.money import format_dollars


def _source(row: pd.Series) -> str:
    """Where the allocated money came from, as a person finds it in the exports."""
    if pd.isna(row["payment_id"]) if "payment_id" in row else True:
        return "account credit"
    return f"payment {row['payment_id']} (patient {row['patient_id']}, {row['payment_place']})"


def _message(row: pd.Series) -> str:
    amount = format_dollars(int(row["amount"]))
    head = (
        f"Allocation of {amount} from {_source(row)} to invoice {row['invoice_id']} "
        f"(patient {row['invoice_patient_id']}, {row['invoice_place']}), "
        f"{row['source_file']} row {row['source_row']}: "
    )
    if row["code"] == "ALLOCATION_OTHER_PATIENT":
        return head + (
            f"a payment can only pay its own patient's invoices, so it was not applied and the "
            f"{amount} stays with patient {row['patient_id']}. Move the allocation in the practice "
            f"system to one of patient {row['patient_id']}'s invoices or to account credit."
        )
    when = pd.Timestamp(row["invoice_gone_at"])
    return head + (
        f"the invoice was deleted or archived on {when:%Y-%m-%d}, so the allocation was not "
        f"applied and the {amount} stays with patient {row['patient_id']}. Remove the "
        "allocation in the practice system, or restore the invoice."
    )


def set_aside_findings(set_aside: pd.DataFrame | None) -> pd.DataFrame:
    """One finding per set-aside allocation (see `validation._set_aside_inconsistent`)."""
    if set_aside is None or set_aside.empty:
        return empty_findings()
    parts = []
    for code, rows in set_aside.groupby("code", sort=True):
        messages = pd.Series(
            [_message(r) for _, r in rows.iterrows()], index=rows.index, dtype=object
        )
        parts.append(
            make_findings(
                str(code),
                rows,
                messages,
                subject_type="allocation",
                subject_id="invoice_id",
                amount=rows["amount"],
            )
        )
    return pd.concat(parts, ignore_index=True)
