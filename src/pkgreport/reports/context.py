"""RunResult -> ReportContext: choose the sections, columns, headlines and chart series."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.columns import is_money
from pkgreport.engine.breakdown import EXPIRING_DAYS, UNASSIGNED
from pkgreport.reports import figures
from pkgreport.reports.filters import format_prose_date, plural, prose_dates, with_article
from pkgreport.reports.model import (
    ChartData,
    Column,
    ReportContext,
    Table,
)
from pkgreport.result import RunResult, excluded_rows


def _c(
    key: str,
    title: str,
    kind: str = "text",
    width: int | None = None,
    total: bool = True,
    *,
    secondary: bool = False,
) -> Column:
    return Column(key, title, kind, width, total, secondary)  # type: ignore[arg-type]


def _id(key: str, title: str) -> Column:
    """An id column: text, after the figures, off the phone and the printed page."""
    return _c(key, title, "id", secondary=True)


def _row_number(key: str, title: str) -> Column:
    """A spreadsheet row number: looked up, not added, so no total and no thousands separator."""
    return Column(key, title, "int", total=False, secondary=True, grouped=False)


# The finding's title is what people read; the code stays as a filterable workbook column.
FINDING_COLUMNS = (
    Column("finding", "Finding", html=False),
    _c("severity", "Severity", secondary=True),
    _c("patient_name", "Patient name"),
    _c("amount", "Amount", "money"),
    _c("message", "What we found", width=70),
    _c("appointment_ids", "Appointments", secondary=True),
    _id("patient_id", "Patient"),
    _c("subject_type", "Subject", secondary=True),
    _id("subject_id", "Subject ID"),
    _c("source_file", "Source file", secondary=True),
    _row_number("source_row", "Source row"),
    Column("code", "Code", "id", html=False),
)


def finding_title(code: str) -> str:
    """The finding's title from the registry (the code itself for one the registry lacks)."""
    return figures.FINDING_TEXT.get(code, (code,))[0]


def finding_titles(codes: pd.Series) -> pd.Series:
    """Each cell's comma-joined finding codes as their titles from the registry, joined by "; ".

    Cells repeat (most are blank), so each distinct cell is translated once.
    """

    def titles(joined: object) -> str:
        if not isinstance(joined, str) or not joined:
            return ""
        return "; ".join(finding_title(code) for code in joined.split(", "))

    position, distinct = pd.factorize(codes.astype(object), use_na_sentinel=False)
    translated = np.array([titles(cell) for cell in distinct], dtype=object)
    return pd.Series(translated[position], index=codes.index, dtype=object)


def _first_names(frame: pd.DataFrame | None) -> pd.Series:
    """patient_id -> the first non-blank patient_name of `frame` in row order."""
    if frame is None or "patient_name" not in frame.columns:
        return pd.Series(dtype=object)
    named = frame.loc[frame["patient_name"].notna(), ["patient_id", "patient_name"]]
    return (
        named.drop_duplicates("patient_id").set_index("patient_id")["patient_name"].astype(object)
    )


class _Names:
    """patient_id -> name, from the patients export, else the patient's first named appointment.

    The appointments (a million rows at scale) are searched only for the patients shown that
    have no name in the patients export, usually none.
    """

    def __init__(self, result: RunResult) -> None:
        ds = result.dataset
        self._patients = _first_names(ds.patients)
        self._appointments = ds.appointments

    def lookup(self, ids: pd.Series) -> pd.Series:
        mapped = ids.map(self._patients)
        missing = (mapped.isna() & ids.notna()).to_numpy()
        if missing.any() and self._appointments is not None:
            appts = self._appointments
            wanted = appts["patient_id"].isin(ids[missing].unique())
            fallback = _first_names(appts.loc[wanted.to_numpy()])
            mapped = mapped.where(~missing, ids.map(fallback))
        # Names are text even when none exists anywhere: an all-blank column must still accept
        # a label such as the roll-forward's "All patients" (ids.map gives float NaN otherwise).
        return mapped.astype(object)


def _with_names(frame: pd.DataFrame, names: _Names, rows: pd.Series | None = None) -> pd.DataFrame:
    """A copy of `frame` with patient_name filled in (only on `rows` when given)."""
    out = frame.copy()
    ids = out["patient_id"] if rows is None else out["patient_id"].where(rows)
    mapped = names.lookup(ids)
    if "patient_name" in out:
        out["patient_name"] = out["patient_name"].where(out["patient_name"].notna(), mapped)
    else:
        out["patient_name"] = mapped
    return out


def _findings_table(result: RunResult, names: _Names) -> Table:
    frame = _with_names(result.findings, names)
    frame["finding"] = finding_titles(frame["code"])
    order = result.settings.date_order
    frame["message"] = [prose_dates(m, order) for m in frame["message"].tolist()]
    return Table(
        key="findings",
        sheet="Findings",
        title="Findings",
        description="Everything that needs a look, most serious first, with the source file and "
        "row of the record involved.",
        columns=FINDING_COLUMNS,
        frame=frame,
    )


def _cases_tables(result: RunResult, names: _Names) -> list[Table]:
    if result.cases is None:
        return []
    cases = _with_names(result.cases.cases, names)
    cases["flagged"] = cases["findings"].fillna("") != ""
    cases["findings"] = finding_titles(cases["findings"])
    cases["attention"] = cases["flagged"] | cases["status"].isin(["active", "over-booked"])
    columns = (
        _c("patient_name", "Patient name"),
        _c("case_name", "Package"),
        _c("status", "Status"),
        _c("max_sessions", "Maximum", "int", total=False),
        _c("counted", "Counted", "int"),
        _c("remaining", "Remaining", "int"),
        _c("over_booked_by", "Over-booked by", "int"),
        _c("expiry_date", "Expires", "date"),
        _c("findings", "Findings", width=30),
        _c("attended", "Attended", "int", secondary=True),
        _c("upcoming", "Upcoming", "int", secondary=True),
        _c("cancelled", "Cancelled", "int", secondary=True),
        _c("dna", "Did not arrive", "int", secondary=True),
        _c("issue_date", "Issued", "date", secondary=True),
        _id("case_id", "Case"),
        _id("patient_id", "Patient"),
    )
    tables = [
        Table(
            key="cases",
            sheet="Cases",
            title="Packages (patient cases)",
            description="Session tally of every case, recomputed from the appointments as the "
            "practice system counts them. Counted = attended + upcoming.",
            columns=columns,
            frame=cases,
            highlight="flagged",
            total_row=True,
            attention="attention",
            all_rows_in="pkgreport cases",
        )
    ]
    appts = result.cases.appointments
    over = appts[appts["over_booked"]]
    ids = (
        over.sort_values(["case_id", "number"], kind="mergesort")
        .groupby("case_id", sort=True)["appointment_id"]
        .agg(lambda s: ", ".join(map(str, s)))
        .rename("over_booked_appointments")
    )
    ob = cases[cases["over_booked_by"] > 0].merge(
        ids, left_on="case_id", right_index=True, how="left"
    )
    tables.append(
        Table(
            key="over_booked",
            sheet="Over-booked",
            title="Over-booked packages",
            description="Cases with more counted appointments than sessions; the appointments listed "
            "are those numbered above the maximum.",
            columns=(
                _c("patient_name", "Patient name"),
                _c("case_name", "Package"),
                _c("max_sessions", "Maximum", "int", total=False),
                _c("counted", "Counted", "int"),
                _c("over_booked_by", "Over-booked by", "int"),
                _c("over_booked_appointments", "Over-booked appointments", width=40),
                _id("case_id", "Case"),
                _id("patient_id", "Patient"),
            ),
            frame=ob.reset_index(drop=True),
            total_row=True,
        )
    )
    return tables


def _credit_tables(result: RunResult, names: _Names) -> list[Table]:
    if result.credit is None:
        return []
    tables = [_credit_table(result, names)]
    if result.ageing is not None:
        tables.append(_ageing_table(result.ageing, names))
    if result.rollforward is not None:
        tables.append(_rollforward_table(result, names))
    tables.append(_open_invoices_table(result.credit.invoices, names))
    return tables


def _credit_table(result: RunResult, names: _Names) -> Table:
    assert result.credit is not None
    patients = _with_names(result.credit.patients, names)
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
            _c("patient_name", "Patient name"),
            _c("credit", "Credit", "money"),
            _c("open_outstanding", "Open invoices", "money"),
            _c("reported_credit", "Reported credit", "money"),
            _c("difference", "Difference", "money"),
            _c("findings", "Findings", width=30),
            _c("received", "Received", "money", secondary=True),
            _c("refunded", "Refunded", "money", secondary=True),
            _c("invoiced", "Invoiced", "money", secondary=True),
            _c("applied", "Applied", "money", secondary=True),
            _id("patient_id", "Patient"),
        ),
        frame=patients,
        highlight="flagged",
        total_row=True,
        attention="attention",
        all_rows_in="pkgreport credit",
    )


def _ageing_table(aged: pd.DataFrame, names: _Names) -> Table:
    ageing = _with_names(aged, names)
    ageing["attention"] = ageing["credit"] != 0
    buckets = [c for c in aged.columns if c not in ("patient_id", "patient_name", "credit")]
    return Table(
        key="ageing",
        sheet="Ageing",
        title="Ageing of unapplied credit",
        description="Each patient's credit aged by the date each unspent amount was received, "
        "oldest spent first (days before the as-of date).",
        columns=(
            _c("patient_name", "Patient name"),
            _c("credit", "Credit", "money"),
            *(_c(b, b + " days" if b[0].isdigit() else b, "money") for b in buckets),
            _id("patient_id", "Patient"),
        ),
        frame=ageing,
        total_row=True,
        attention="attention",
    )


def _rollforward_table(result: RunResult, names: _Names) -> Table:
    assert result.rollforward is not None
    # The engine's TOTAL row becomes the table's own total row (never sorted or filtered).
    is_total = result.rollforward["patient_id"] == "TOTAL"
    roll = _with_names(result.rollforward[~is_total].reset_index(drop=True), names)
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
            _c("patient_name", "Patient name"),
            _c("opening", "Opening", "money"),
            _c("created", "Created", "money"),
            _c("applied", "Applied", "money"),
            _c("refunded", "Refunded", "money"),
            _c("closing", "Closing", "money"),
            _id("patient_id", "Patient"),
        ),
        frame=roll,
        total_row=True,
        attention="attention",
    )


def _open_invoices_table(invoices: pd.DataFrame, names: _Names) -> Table:
    open_inv = _with_names(invoices[invoices["outstanding"] > 0], names).reset_index(drop=True)
    return Table(
        key="open_invoices",
        sheet="Open invoices",
        title="Open invoices",
        description="Invoices with money still owing after payments and credit are applied.",
        columns=(
            _c("number", "Number", "id"),
            _c("patient_name", "Patient name"),
            _c("issue_date", "Issued", "date"),
            _c("total", "Total", "money"),
            _c("paid_direct", "Paid", "money"),
            _c("paid_from_credit", "Paid from credit", "money"),
            _c("outstanding", "Outstanding", "money"),
            _c("status_reported", "Exported status", secondary=True),
            _id("invoice_id", "Invoice"),
            _id("patient_id", "Patient"),
            _c("source_file", "Source file", secondary=True),
            _row_number("source_row", "Source row"),
        ),
        frame=open_inv,
        total_row=True,
    )


def _package_table(result: RunResult, names: _Names) -> list[Table]:
    if result.packages is None:
        return []
    priced = result.packages["package_price"].notna()
    frame = _with_names(result.packages[priced].reset_index(drop=True), names)
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
                _c("patient_name", "Patient name"),
                _c("package_price", "Price", "money"),
                _c("max_sessions", "Maximum", "int", total=False),
                _c("used", "Used", "int"),
                _c("unused", "Unused", "int"),
                _c("undelivered", "Undelivered value", "money"),
                _id("case_id", "Case"),
                _id("patient_id", "Patient"),
            ),
            frame=frame,
            total_row=True,
            attention="attention",
        )
    ]


LOCATION_RULE = (
    "Credit belongs to a patient, not a location: each patient's credit is counted at the "
    "business of the patient's most recent invoice, and as \"" + UNASSIGNED + '" when the patient '
    "has no invoice naming a business. An open invoice counts where it was issued; a package "
    "where its latest counted appointment was. Each column adds up to the practice-wide figure."
)


def _computed(columns: tuple[Column, ...], frame: pd.DataFrame) -> tuple[Column, ...]:
    """The columns holding a figure: one whose section could not be computed is all blank, and a
    total of it would claim a zero."""
    return tuple(c for c in columns if c.kind == "text" or not frame[c.key].isna().all())


def _breakdown_tables(result: RunResult) -> list[Table]:
    locations, practitioners = result.breakdowns
    soon = f"Expiring within {EXPIRING_DAYS} days"
    tables = [
        Table(
            key="by_location",
            sheet="By location",
            title="By location",
            description=LOCATION_RULE,
            columns=_computed(
                (
                    _c("business", "Business"),
                    _c("credit_liability", "Credit liability", "money"),
                    _c("patients_with_credit", "Patients with credit", "int"),
                    _c("open_invoices", "Open invoices", "money"),
                    _c("package_value_undelivered", "Package value undelivered", "money"),
                    _c("cases_over_booked", "Over-booked packages", "int"),
                    _c("cases_expiring", soon, "int"),
                ),
                locations,
            ),
            frame=locations,
            total_row=True,
        )
    ]
    if result.cases is not None:
        tables.append(
            Table(
                key="by_practitioner",
                sheet="By practitioner",
                title="Packages by practitioner",
                description="Each package counted once, with the practitioner of its latest counted "
                f'appointment ("{UNASSIGNED}" when none counts yet).',
                columns=(
                    _c("practitioner", "Practitioner"),
                    _c("cases_active", "Active packages", "int"),
                    _c("upcoming_sessions", "Upcoming sessions", "int"),
                    _c("cases_over_booked", "Over-booked packages", "int"),
                    _c("cases_expiring", soon, "int"),
                    _c("package_value_undelivered", "Package value undelivered", "money"),
                ),
                frame=practitioners,
                total_row=True,
            )
        )
    return tables


def _changes_table(changes: dict[str, Any] | None, order: str) -> list[Table]:
    if changes is None:
        return []
    rows: list[dict[str, Any]] = []
    prev = changes.get("previous")
    for label, key in (("new", "new_findings"), ("resolved", "resolved_findings")):
        for f in changes.get(key, []):
            rows.append(
                {
                    "change": f"{label} finding",
                    "code": finding_title(f["code"]),
                    "subject": f"{f['subject_type']} {f['subject_id']}",
                    "detail": prose_dates(f["message"], order),
                    "before": None,
                    "after": None,
                }
            )
    for m in changes.get("moved_periods", []):
        for part in m["changed"]:
            before, after = m[f"{part}_total_before"], m[f"{part}_total_after"]
            cb, ca = m[f"{part}_count_before"], m[f"{part}_count_after"]
            month = pd.Period(m["month"], "M").strftime("%b %Y")
            detail = (
                f"{part} of {month} changed after that month was reported "
                f"({cb:,} -> {plural(ca, 'record')}): {with_article(part[:-1])} was "
                "edited, added or deleted"
                if before != after or cb != ca
                else f"{part} of {month} were edited after that month was reported "
                "(totals unchanged)"
            )
            rows.append(
                {
                    "change": "closed period moved",
                    "code": "",
                    "subject": f"{part} {month}",
                    "detail": detail,
                    "before": before,
                    "after": after,
                }
            )
    frame = pd.DataFrame(rows, columns=["change", "code", "subject", "detail", "before", "after"])
    frame["before"] = pd.array(frame["before"], dtype="Int64")
    frame["after"] = pd.array(frame["after"], dtype="Int64")
    if prev is None:
        note = "This is the first run in this output folder: there is nothing to compare with."
    else:
        as_of, start, end = (
            format_prose_date(date.fromisoformat(prev[k]), order)
            for k in ("as_of", "period_from", "period_to")
        )
        over, dormant = len(changes["became_over_booked"]), len(changes["became_dormant"])
        note = (
            f"Compared with the run as of {as_of} (period {start} to {end}). "
            f"{plural(over, 'case')} became over-booked; the credit of "
            f"{plural(dormant, 'patient')} became dormant."
        )
    return [
        Table(
            key="changes",
            sheet="Changes",
            title="Changed since the last run",
            description="New and resolved findings, and figures of already-reported months that moved.",
            columns=(
                _c("change", "Change"),
                _c("code", "Finding"),
                _c("subject", "Subject"),
                _c("detail", "Detail", width=70),
                _c("before", "Before", "money"),
                _c("after", "After", "money"),
            ),
            frame=frame,
            note=note,
        )
    ]


def _validation_table(result: RunResult) -> Table:
    ds = result.dataset
    issues = pd.DataFrame(
        [
            {
                "severity": i.severity,
                "file": i.file,
                "row": i.row,
                "column": i.column,
                "value": i.value,
                "message": i.message,
            }
            for i in ds.issues
        ],
        columns=["severity", "file", "row", "column", "value", "message"],
    )
    excluded = excluded_rows(result)
    extra = [excluded.assign(severity="excluded", column=None)] if len(excluded) else []
    # Empty parts left out: pandas 2 warns about (and will change) their effect on the dtypes.
    parts = [part for part in (issues, *extra) if len(part)]
    frame = pd.concat(parts, ignore_index=True)[list(issues.columns)] if extra else issues
    frame["row"] = pd.array(frame["row"], dtype="Int64")
    return Table(
        key="validation",
        sheet="Validation",
        title="Validation: warnings and excluded rows",
        description="Every warning about the inputs, and every row left out of the figures "
        "(archived, deleted or invalid) with the reason.",
        columns=(
            _c("severity", "Severity"),
            _c("file", "File"),
            _row_number("row", "Row"),
            _c("column", "Column"),
            _c("value", "Value"),
            _c("message", "Message", width=70),
        ),
        frame=frame,
    )


def _money_shown_as_money(table: Table) -> Table:
    """Every column holding cents (the one registry in `columns.py` decides) is shown as money."""
    columns = tuple(
        replace(c, kind="money")
        if c.key in table.frame.columns and is_money(c.key, table.frame[c.key])
        else c
        for c in table.columns
    )
    return table if columns == table.columns else replace(table, columns=columns)


def _links_setting(result: RunResult) -> tuple[tuple[str, str], ...]:
    """How invoices were tied to appointments, when both exports are there."""
    ds = result.dataset
    if ds.invoices is None or ds.appointments is None:
        return ()
    return (("Invoices linked to appointments", result.links.describe()),)


def build_context(
    result: RunResult,
    *,
    title: str | None = None,
    generated_at: str | None = None,
    changes: dict[str, Any] | None = None,
) -> ReportContext:
    names = _Names(result)
    s = result.settings
    tables = [
        _money_shown_as_money(t)
        for t in (
            *(_changes_table(changes, s.date_order)),
            *_breakdown_tables(result),
            *_cases_tables(result, names),
            *_credit_tables(result, names),
            *_package_table(result, names),
            _validation_table(result),
        )
    ]
    ageing_series: tuple[tuple[str, int], ...] = ()
    if result.ageing is not None:
        buckets = [
            c for c in result.ageing.columns if c not in ("patient_id", "patient_name", "credit")
        ]
        ageing_series = tuple((b, int(result.ageing[b].sum())) for b in buckets)
    roll_series = figures.roll_series(result.monthly)

    def prose(day: date) -> str:
        return format_prose_date(day, s.date_order)

    settings = (
        ("As of", f"{prose(result.as_of)} ({result.as_of_source})"),
        ("Period", f"{prose(result.period_start)} to {prose(result.period_end)}"),
        ("Time zone", s.timezone),
        ("Date order", s.date_order),
        ("Allocation policy", s.allocation),
        (
            "Credit applied",
            "when a payment is recorded"
            if s.credit_applies == "on-payment"
            else "when an invoice is issued",
        ),
        ("Dormant after (days)", str(s.dormant_days)),
        ("Nearly used up at (sessions left)", str(s.nearly_used_up)),
        ("Ageing buckets (days)", ", ".join(map(str, s.ageing_buckets))),
        (
            "Column mapping",
            " + ".join(
                [
                    *([f"{s.source} preset"] if s.source else []),
                    *([s.columns_file.name] if s.columns_file else []),
                ]
            )
            or "none",
        ),
        *_links_setting(result),
    )
    return ReportContext(
        title=title or s.title,
        as_of=result.as_of,
        period_start=result.period_start,
        period_end=result.period_end,
        findings=_money_shown_as_money(_findings_table(result, names)),
        headlines=figures.headlines(result),
        finding_kinds=figures.finding_kinds(result),
        tables=tuple(tables),
        charts=ChartData(
            ageing=ageing_series,
            utilisation=figures.utilisation(result),
            rollforward=roll_series,
            unlimited=figures.unlimited_cases(result),
        ),
        skipped=tuple(sorted(result.skipped.items())),
        unchecked=figures.unchecked(result),
        inputs=tuple(
            {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256}
            for f in result.dataset.files
        ),
        settings=settings,
        generated_at=generated_at,
        max_rows=s.html_max_rows,
        date_order=s.date_order,
    )
