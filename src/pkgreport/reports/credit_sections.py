"""The report's credit sections: credit, ageing, roll-forward, open invoices, package value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pkgreport.arrow_text import rows_at
from pkgreport.reports.filters import format_prose_date, plural
from pkgreport.reports.model import Table
from pkgreport.reports.table_parts import (
    PatientNames,
    column,
    finding_titles,
    id_column,
    row_number_column,
    with_names,
)
from pkgreport.result import RunResult


def credit_tables(result: RunResult, names: PatientNames) -> list[Table]:
    if result.credit is None:
        return []
    tables = [_credit_table(result, names)]
    if result.ageing is not None:
        tables.append(_ageing_table(result.ageing, names))
    if result.rollforward is not None:
        tables.append(_rollforward_table(result, names))
    tables.append(_open_invoices_table(result.credit.invoices, names))
    return tables


def _credit_table(result: RunResult, names: PatientNames) -> Table:
    assert result.credit is not None
    patients = with_names(result.credit.patients, names)
    patients["flagged"] = patients["findings"].fillna("") != ""
    patients["findings"] = finding_titles(patients["findings"])
    patients["attention"] = (
        patients["flagged"]
        | (patients["credit"] != 0)
        | (patients["open_outstanding"] != 0)
        | (patients["difference"].fillna(0) != 0)
    )
    as_of = format_prose_date(result.as_of, result.settings.date_order)
    return Table(
        key="credit",
        sheet="Credit",
        title="Account credit by patient",
        description=f"Recomputed as at {as_of} with the "
        f"{result.settings.allocation} allocation policy. Credit is what the clinic "
        "owes the patient.",
        columns=(
            column("patient_name", "Patient name"),
            column("credit", "Credit", "money"),
            column("open_outstanding", "Open invoices", "money"),
            column("reported_credit", "Reported credit", "money"),
            column("difference", "Difference", "money"),
            column("findings", "Findings", width=30),
            column("received", "Received", "money", secondary=True),
            column("refunded", "Refunded", "money", secondary=True),
            column("invoiced", "Invoiced", "money", secondary=True),
            column("applied", "Applied", "money", secondary=True),
            id_column("patient_id", "Patient"),
        ),
        frame=patients,
        highlight="flagged",
        total_row=True,
        attention="attention",
        all_rows_in="pkgreport credit",
    )


def _ageing_table(aged: pd.DataFrame, names: PatientNames) -> Table:
    ageing = with_names(aged, names)
    ageing["attention"] = ageing["credit"] != 0
    buckets = [c for c in aged.columns if c not in ("patient_id", "patient_name", "credit")]
    return Table(
        key="ageing",
        sheet="Ageing",
        title="Ageing of unapplied credit",
        description="Each patient's credit aged by the date each unspent amount was received, "
        "oldest spent first (days before the as-of date).",
        columns=(
            column("patient_name", "Patient name"),
            column("credit", "Credit", "money"),
            *(column(b, b + " days" if b[0].isdigit() else b, "money") for b in buckets),
            id_column("patient_id", "Patient"),
        ),
        frame=ageing,
        total_row=True,
        attention="attention",
    )


def _rollforward_table(result: RunResult, names: PatientNames) -> Table:
    assert result.rollforward is not None
    # The engine's TOTAL row becomes the table's own total row (never sorted or filtered).
    is_total = result.rollforward["patient_id"] == "TOTAL"
    roll = with_names(result.rollforward[~is_total].reset_index(drop=True), names)
    figures = ["opening", "created", "applied", "refunded", "closing"]
    roll["attention"] = (roll[figures] != 0).any(axis=1)
    order = result.settings.date_order
    start, end = (format_prose_date(d, order) for d in (result.period_start, result.period_end))
    return Table(
        key="rollforward",
        sheet="Roll-forward",
        title=f"Credit roll-forward {start} to {end}",
        description="Opening credit + credit created - credit applied - credit refunded = "
        "closing credit, to the cent, for every patient and in total.",
        columns=(
            column("patient_name", "Patient name"),
            column("opening", "Opening", "money"),
            column("created", "Created", "money"),
            column("applied", "Applied", "money"),
            column("refunded", "Refunded", "money"),
            column("closing", "Closing", "money"),
            id_column("patient_id", "Patient"),
        ),
        frame=roll,
        total_row=True,
        attention="attention",
    )


def _open_invoices_table(invoices: pd.DataFrame, names: PatientNames) -> Table:
    # A few rows of a long frame: their text read by Arrow, not taken (`arrow_text.rows_at`).
    owing = np.flatnonzero((invoices["outstanding"] > 0).to_numpy(dtype=bool))
    open_inv = with_names(rows_at(invoices, owing), names).reset_index(drop=True)
    return Table(
        key="open_invoices",
        sheet="Open invoices",
        title="Open invoices",
        description="Invoices with money still owing after payments and credit are applied.",
        columns=(
            column("number", "Number", "id"),
            column("patient_name", "Patient name"),
            column("issue_date", "Issued", "date"),
            column("total", "Total", "money"),
            column("paid_direct", "Paid", "money"),
            column("paid_from_credit", "Paid from credit", "money"),
            column("outstanding", "Outstanding", "money"),
            column("status_reported", "Exported status", secondary=True),
            id_column("invoice_id", "Invoice"),
            id_column("patient_id", "Patient"),
            column("source_file", "Source file", secondary=True),
            row_number_column("source_row", "Source row"),
        ),
        frame=open_inv,
        total_row=True,
    )


def package_tables(result: RunResult, names: PatientNames) -> list[Table]:
    if result.packages is None:
        return []
    priced = result.packages["package_price"].notna()
    # Read by Arrow, not taken (`arrow_text.rows_at`): each package's ids sit on the pages of the
    # cases export's, which the workbook's forked process would otherwise copy.
    rows = np.flatnonzero(priced.to_numpy(dtype=bool))
    frame = with_names(rows_at(result.packages, rows).reset_index(drop=True), names)
    frame["attention"] = frame["undelivered"].fillna(0) != 0
    unpriced = int((~priced).sum())
    # The caption says which rows are listed, so it stays true to them.
    others = (
        f" The other {plural(unpriced, 'package')} have no price (none on the case and no "
        "invoice names it) and are not listed here."
        if unpriced
        else ""
    )
    return [
        Table(
            key="packages",
            sheet="Package value",
            title="Package value not yet delivered",
            description=f"The {plural(len(frame), 'package')} paid in full: price x unused sessions / "
            "maximum, rounded half-up to the cent." + others,
            columns=(
                column("patient_name", "Patient name"),
                column("package_price", "Price", "money"),
                column("max_sessions", "Maximum", "int", total=False),
                column("used", "Used", "int"),
                column("unused", "Unused", "int"),
                column("undelivered", "Undelivered value", "money"),
                id_column("case_id", "Case"),
                id_column("patient_id", "Patient"),
            ),
            frame=frame,
            total_row=True,
            attention="attention",
        )
    ]
