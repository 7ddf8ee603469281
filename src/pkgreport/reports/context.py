"""RunResult -> ReportContext: choose the sections, columns, headlines and chart series."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pandas as pd

from pkgreport.columns import is_money
from pkgreport.engine.breakdown import (
    EXPIRING_DAYS,
    LOCATION_COLUMNS,
    PRACTITIONER_COLUMNS,
    UNASSIGNED,
)
from pkgreport.reports import figures
from pkgreport.reports.credit_sections import credit_tables, package_tables
from pkgreport.reports.filters import (
    format_prose_date,
    plural,
    prose_dates,
    prose_dates_column,
    with_article,
)
from pkgreport.reports.model import (
    ChartData,
    Column,
    ReportContext,
    Table,
)
from pkgreport.reports.table_parts import (
    PatientNames,
    column,
    finding_title,
    finding_titles,
    id_column,
    row_number_column,
    with_names,
)
from pkgreport.result import RunResult, excluded_rows

# The finding's title is what people read; the code stays as a filterable workbook column.
FINDING_COLUMNS = (
    Column("finding", "Finding", html=False),
    column("severity", "Severity", secondary=True),
    column("patient_name", "Patient name"),
    column("amount", "Amount", "money"),
    column("message", "What we found", width=70),
    column("appointment_ids", "Appointments", secondary=True),
    id_column("patient_id", "Patient"),
    column("subject_type", "Subject", secondary=True),
    id_column("subject_id", "Subject ID"),
    column("source_file", "Source file", secondary=True),
    row_number_column("source_row", "Source row"),
    Column("code", "Code", "id", html=False),
)


def _findings_table(result: RunResult, names: PatientNames) -> Table:
    frame = with_names(result.findings, names)
    frame["finding"] = finding_titles(frame["code"])
    order = result.settings.date_order
    frame["message"] = prose_dates_column(frame["message"].tolist(), order)
    return Table(
        key="findings",
        sheet="Findings",
        title="Findings",
        description="Everything that needs a look, most serious first, with the source file and "
        "row of the record involved.",
        columns=FINDING_COLUMNS,
        frame=frame,
    )


def _cases_tables(result: RunResult, names: PatientNames) -> list[Table]:
    if result.cases is None:
        return []
    cases = with_names(result.cases.cases, names)
    cases["flagged"] = cases["findings"].fillna("") != ""
    cases["findings"] = finding_titles(cases["findings"])
    cases["attention"] = cases["flagged"] | cases["status"].isin(["active", "over-booked"])
    columns = (
        column("patient_name", "Patient name"),
        column("case_name", "Package"),
        column("status", "Status"),
        column("max_sessions", "Maximum", "int", total=False),
        column("counted", "Counted", "int"),
        column("remaining", "Remaining", "int"),
        column("over_booked_by", "Over-booked by", "int"),
        column("expiry_date", "Expires", "date"),
        column("findings", "Findings", width=30),
        column("attended", "Attended", "int", secondary=True),
        column("upcoming", "Upcoming", "int", secondary=True),
        column("cancelled", "Cancelled", "int", secondary=True),
        column("dna", "Did not arrive", "int", secondary=True),
        column("issue_date", "Issued", "date", secondary=True),
        id_column("case_id", "Case"),
        id_column("patient_id", "Patient"),
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
                column("patient_name", "Patient name"),
                column("case_name", "Package"),
                column("max_sessions", "Maximum", "int", total=False),
                column("counted", "Counted", "int"),
                column("over_booked_by", "Over-booked by", "int"),
                column("over_booked_appointments", "Over-booked appointments", width=40),
                id_column("case_id", "Case"),
                id_column("patient_id", "Patient"),
            ),
            frame=ob.reset_index(drop=True),
            total_row=True,
        )
    )
    return tables


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


Breakdowns = tuple[pd.DataFrame, pd.DataFrame]
# The keys of the tables made from them.
BREAKDOWN_TABLES = ("by_location", "by_practitioner")


def no_breakdowns() -> Breakdowns:
    """The figures per location and per practitioner with no rows: a context built with them
    has every sheet of the workbook, which can then be started before the figures are known
    (`with_breakdowns` puts them in)."""
    return (
        pd.DataFrame({c: pd.Series(dtype=object) for c in LOCATION_COLUMNS}),
        pd.DataFrame({c: pd.Series(dtype=object) for c in PRACTITIONER_COLUMNS}),
    )


def _breakdown_tables(result: RunResult, breakdowns: Breakdowns) -> list[Table]:
    locations, practitioners = breakdowns
    soon = f"Expiring within {EXPIRING_DAYS} days"
    tables = [
        Table(
            key=BREAKDOWN_TABLES[0],
            sheet="By location",
            title="By location",
            description=LOCATION_RULE,
            columns=_computed(
                (
                    column("business", "Business"),
                    column("credit_liability", "Credit liability", "money"),
                    column("patients_with_credit", "Patients with credit", "int"),
                    column("open_invoices", "Open invoices", "money"),
                    column("package_value_undelivered", "Package value undelivered", "money"),
                    column("cases_over_booked", "Over-booked packages", "int"),
                    column("cases_expiring", soon, "int"),
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
                key=BREAKDOWN_TABLES[1],
                sheet="By practitioner",
                title="Packages by practitioner",
                description="Each package counted once, with the practitioner of its latest counted "
                f'appointment ("{UNASSIGNED}" when none counts yet).',
                columns=(
                    column("practitioner", "Practitioner"),
                    column("cases_active", "Active packages", "int"),
                    column("upcoming_sessions", "Upcoming sessions", "int"),
                    column("cases_over_booked", "Over-booked packages", "int"),
                    column("cases_expiring", soon, "int"),
                    column("package_value_undelivered", "Package value undelivered", "money"),
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
                column("change", "Change"),
                column("code", "Finding"),
                column("subject", "Subject"),
                column("detail", "Detail", width=70),
                column("before", "Before", "money"),
                column("after", "After", "money"),
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
            column("severity", "Severity"),
            column("file", "File"),
            row_number_column("row", "Row"),
            column("column", "Column"),
            column("value", "Value"),
            column("message", "Message", width=70),
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


def _ageing_series(result: RunResult) -> tuple[tuple[str, int], ...]:
    """(bucket, cents of credit in it) for the ageing chart; none without an ageing."""
    if result.ageing is None:
        return ()
    buckets = [
        c for c in result.ageing.columns if c not in ("patient_id", "patient_name", "credit")
    ]
    return tuple((b, int(result.ageing[b].sum())) for b in buckets)


def _settings_rows(result: RunResult) -> tuple[tuple[str, str], ...]:
    """The settings the run used, as the user would type them."""
    s = result.settings

    def prose(day: date) -> str:
        return format_prose_date(day, s.date_order)

    return (
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


def build_context(
    result: RunResult,
    *,
    title: str | None = None,
    generated_at: str | None = None,
    changes: dict[str, Any] | None = None,
    breakdowns: Breakdowns | None = None,
) -> ReportContext:
    """Everything the workbook and the page show of one run: sections, headlines, chart series,
    inputs and settings (`changes`: the comparison with the previous run, when there is one;
    `breakdowns`: the figures per location and practitioner, `result.breakdowns` by default)."""
    names = PatientNames(result)
    s = result.settings
    tables = [
        _money_shown_as_money(t)
        for t in (
            *(_changes_table(changes, s.date_order)),
            *_breakdown_tables(result, result.breakdowns if breakdowns is None else breakdowns),
            *_cases_tables(result, names),
            *credit_tables(result, names),
            *package_tables(result, names),
            _validation_table(result),
        )
    ]
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
            ageing=_ageing_series(result),
            utilisation=figures.utilisation(result),
            rollforward=figures.roll_series(result.monthly),
            unlimited=figures.unlimited_cases(result),
        ),
        skipped=tuple(sorted(result.skipped.items())),
        unchecked=figures.unchecked(result),
        inputs=tuple(
            {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256}
            for f in result.dataset.files
        ),
        settings=_settings_rows(result),
        generated_at=generated_at,
        max_rows=s.html_max_rows,
        date_order=s.date_order,
    )


def with_breakdowns(ctx: ReportContext, result: RunResult, breakdowns: Breakdowns) -> ReportContext:
    """`ctx` with its tables per location and per practitioner made from `breakdowns`; every
    other table stays the very same object."""
    made = {t.key: _money_shown_as_money(t) for t in _breakdown_tables(result, breakdowns)}
    return replace(ctx, tables=tuple(made.get(t.key, t) for t in ctx.tables))
