"""RunResult -> ReportContext: choose the sections, columns, headlines and chart series."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine.findings import FINDINGS
from pkgreport.pipeline import RunResult
from pkgreport.reports.model import (
    ChartData,
    Column,
    FindingKind,
    Headline,
    ReportContext,
    RollRow,
    Table,
)

# Plain-language title, explanation and remedy for each finding code (from the registry).
FINDING_TEXT: dict[str, tuple[str, str, str]] = {
    code: (kind.title, kind.explanation, kind.todo) for code, kind in FINDINGS.items()
}

SEVERITY_TONE = {"high": "bad", "medium": "warn", "low": "ok"}


def _c(key: str, title: str, kind: str = "text", width: int | None = None, total: bool = True) -> Column:
    return Column(key, title, kind, width, total)  # type: ignore[arg-type]


FINDING_COLUMNS = (
    _c("severity", "Severity"), _c("code", "Finding"), _c("patient_id", "Patient", "id"),
    _c("patient_name", "Patient name"), _c("subject_type", "Subject"),
    _c("subject_id", "Subject ID", "id"), _c("amount", "Amount", "money"),
    _c("appointment_ids", "Appointments"), _c("message", "What we found", width=70),
    _c("source_file", "Source file"), _c("source_row", "Source row", "int", total=False),
)


def _first_names(frame: pd.DataFrame | None) -> pd.Series:
    """patient_id -> the first non-blank patient_name of `frame` in row order."""
    if frame is None or "patient_name" not in frame.columns:
        return pd.Series(dtype=object)
    named = frame.loc[frame["patient_name"].notna(), ["patient_id", "patient_name"]]
    return named.drop_duplicates("patient_id").set_index("patient_id")["patient_name"].astype(object)


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
    return Table(
        key="findings", sheet="Findings", title="Findings",
        description="Everything that needs a look, most serious first, with the source file and "
                    "row of the record involved.",
        columns=FINDING_COLUMNS, frame=frame,
    )


def _cases_tables(result: RunResult, names: _Names) -> list[Table]:
    if result.cases is None:
        return []
    cases = _with_names(result.cases.cases, names)
    cases["flagged"] = cases["findings"].fillna("") != ""
    columns = (
        _c("case_id", "Case", "id"), _c("patient_id", "Patient", "id"),
        _c("patient_name", "Patient name"), _c("case_name", "Package"),
        _c("max_sessions", "Maximum", "int", total=False), _c("counted", "Counted", "int"),
        _c("attended", "Attended", "int"), _c("upcoming", "Upcoming", "int"),
        _c("cancelled", "Cancelled", "int"), _c("dna", "Did not arrive", "int"),
        _c("remaining", "Remaining", "int"), _c("over_booked_by", "Over-booked by", "int"),
        _c("status", "Status"), _c("issue_date", "Issued", "date"),
        _c("expiry_date", "Expires", "date"), _c("findings", "Findings", width=30),
    )
    tables = [Table(
        key="cases", sheet="Cases", title="Packages (patient cases)",
        description="Session tally of every case, recomputed from the appointments as the "
                    "practice system counts them. Counted = attended + upcoming.",
        columns=columns, frame=cases, highlight="flagged", total_row=True,
    )]
    appts = result.cases.appointments
    over = appts[appts["over_booked"]]
    ids = (
        over.sort_values(["case_id", "number"], kind="mergesort")
        .groupby("case_id", sort=True)["appointment_id"]
        .agg(lambda s: ", ".join(map(str, s)))
        .rename("over_booked_appointments")
    )
    ob = cases[cases["over_booked_by"] > 0].merge(ids, left_on="case_id", right_index=True, how="left")
    tables.append(Table(
        key="over_booked", sheet="Over-booked", title="Over-booked packages",
        description="Cases with more counted appointments than sessions; the appointments listed "
                    "are those numbered above the maximum.",
        columns=(
            _c("case_id", "Case", "id"), _c("patient_id", "Patient", "id"),
            _c("patient_name", "Patient name"), _c("case_name", "Package"),
            _c("max_sessions", "Maximum", "int", total=False), _c("counted", "Counted", "int"),
            _c("over_booked_by", "Over-booked by", "int"),
            _c("over_booked_appointments", "Over-booked appointments", width=40),
        ),
        frame=ob.reset_index(drop=True), total_row=True,
    ))
    return tables


def _credit_tables(result: RunResult, names: _Names) -> list[Table]:
    if result.credit is None:
        return []
    tables = []
    patients = _with_names(result.credit.patients, names)
    patients["flagged"] = patients["findings"].fillna("") != ""
    tables.append(Table(
        key="credit", sheet="Credit", title="Account credit by patient",
        description=f"Recomputed as at {result.as_of:%d %B %Y} with the "
                    f"{result.settings.allocation} allocation policy. Credit is what the clinic "
                    "owes the patient.",
        columns=(
            _c("patient_id", "Patient", "id"), _c("patient_name", "Patient name"),
            _c("received", "Received", "money"), _c("refunded", "Refunded", "money"),
            _c("invoiced", "Invoiced", "money"), _c("applied", "Applied", "money"),
            _c("credit", "Credit", "money"), _c("open_outstanding", "Open invoices", "money"),
            _c("reported_credit", "Reported credit", "money"),
            _c("difference", "Difference", "money"), _c("findings", "Findings", width=30),
        ),
        frame=patients, highlight="flagged", total_row=True,
    ))
    if result.ageing is not None:
        ageing = _with_names(result.ageing, names)
        buckets = [c for c in result.ageing.columns if c not in ("patient_id", "patient_name", "credit")]
        tables.append(Table(
            key="ageing", sheet="Ageing", title="Ageing of unapplied credit",
            description="Each patient's credit aged by the date each unspent amount was received, "
                        "oldest spent first (days before the as-of date).",
            columns=(
                _c("patient_id", "Patient", "id"), _c("patient_name", "Patient name"),
                _c("credit", "Credit", "money"),
                *(_c(b, b + " days" if b[0].isdigit() else b, "money") for b in buckets),
            ),
            frame=ageing, total_row=True,
        ))
    if result.rollforward is not None:
        is_total = result.rollforward["patient_id"] == "TOTAL"
        roll = _with_names(result.rollforward, names, rows=~is_total)
        roll.loc[is_total, "patient_name"] = "All patients"
        tables.append(Table(
            key="rollforward", sheet="Roll-forward",
            title=f"Credit roll-forward {result.period_start:%d %b %Y} to {result.period_end:%d %b %Y}",
            description="Opening credit + credit created - credit applied - credit refunded = "
                        "closing credit, to the cent, for every patient; the last row is the total.",
            columns=(
                _c("patient_id", "Patient", "id"), _c("patient_name", "Patient name"),
                _c("opening", "Opening", "money"), _c("created", "Created", "money"),
                _c("applied", "Applied", "money"), _c("refunded", "Refunded", "money"),
                _c("closing", "Closing", "money"),
            ),
            frame=roll,
        ))
    invoices = result.credit.invoices
    open_inv = _with_names(invoices[invoices["outstanding"] > 0], names).reset_index(drop=True)
    tables.append(Table(
        key="open_invoices", sheet="Open invoices", title="Open invoices",
        description="Invoices with money still owing after payments and credit are applied.",
        columns=(
            _c("invoice_id", "Invoice", "id"), _c("number", "Number", "id"),
            _c("patient_id", "Patient", "id"), _c("patient_name", "Patient name"),
            _c("issue_date", "Issued", "date"), _c("total", "Total", "money"),
            _c("paid_direct", "Paid", "money"), _c("paid_from_credit", "Paid from credit", "money"),
            _c("outstanding", "Outstanding", "money"), _c("status_reported", "Exported status"),
            _c("source_file", "Source file"), _c("source_row", "Source row", "int", total=False),
        ),
        frame=open_inv, total_row=True,
    ))
    return tables


def _package_table(result: RunResult, names: _Names) -> list[Table]:
    if result.packages is None:
        return []
    frame = _with_names(result.packages, names)
    return [Table(
        key="packages", sheet="Package value", title="Package value not yet delivered",
        description="For packages paid in full: price x unused sessions / maximum, rounded half-up "
                    "to the cent.",
        columns=(
            _c("case_id", "Case", "id"), _c("patient_id", "Patient", "id"),
            _c("patient_name", "Patient name"), _c("package_price", "Price", "money"),
            _c("max_sessions", "Maximum", "int", total=False), _c("used", "Used", "int"),
            _c("unused", "Unused", "int"), _c("undelivered", "Undelivered value", "money"),
        ),
        frame=frame, total_row=True,
    )]


def _changes_table(changes: dict[str, Any] | None) -> list[Table]:
    if changes is None:
        return []
    rows: list[dict[str, Any]] = []
    prev = changes.get("previous")
    for label, key in (("new", "new_findings"), ("resolved", "resolved_findings")):
        for f in changes.get(key, []):
            rows.append({"change": f"{label} finding", "code": f["code"],
                         "subject": f"{f['subject_type']} {f['subject_id']}",
                         "detail": f["message"], "before": None, "after": None})
    for m in changes.get("moved_periods", []):
        for part in m["changed"]:
            before, after = m[f"{part}_total_before"], m[f"{part}_total_after"]
            cb, ca = m[f"{part}_count_before"], m[f"{part}_count_after"]
            detail = (f"{part} of {m['month']} changed after that month was reported "
                      f"({cb} -> {ca} records): an {part[:-1]} was edited, added or deleted"
                      if before != after or cb != ca else
                      f"{part} of {m['month']} were edited after that month was reported "
                      "(totals unchanged)")
            rows.append({"change": "closed period moved", "code": "",
                         "subject": f"{part} {m['month']}", "detail": detail,
                         "before": before, "after": after})
    frame = pd.DataFrame(rows, columns=["change", "code", "subject", "detail", "before", "after"])
    frame["before"] = pd.array(frame["before"], dtype="Int64")
    frame["after"] = pd.array(frame["after"], dtype="Int64")
    if prev is None:
        note = "This is the first run in this output folder: there is nothing to compare with."
    else:
        note = (f"Compared with the run as of {prev['as_of']} (period {prev['period_from']} to "
                f"{prev['period_to']}). "
                f"{len(changes['became_over_booked'])} case(s) became over-booked; "
                f"{len(changes['became_dormant'])} patient(s)' credit became dormant.")
    return [Table(
        key="changes", sheet="Changes", title="Changed since the last run",
        description="New and resolved findings, and figures of already-reported months that moved.",
        columns=(_c("change", "Change"), _c("code", "Finding"), _c("subject", "Subject"),
                 _c("detail", "Detail", width=70), _c("before", "Before", "money"),
                 _c("after", "After", "money")),
        frame=frame, note=note,
    )]


def _validation_table(result: RunResult) -> Table:
    ds = result.dataset
    issues = pd.DataFrame(
        [{"severity": i.severity, "file": i.file, "row": i.row, "column": i.column,
          "value": i.value, "message": i.message} for i in ds.issues],
        columns=["severity", "file", "row", "column", "value", "message"],
    )
    excluded = ds.excluded
    engine_excluded = [r.excluded for r in (result.credit,) if r is not None and hasattr(r, "excluded")]
    extra = []
    for part in [excluded, *engine_excluded]:
        if part is None or part.empty:
            continue
        extra.append(pd.DataFrame({
            "severity": "excluded", "file": part["source_file"], "row": part["source_row"],
            "column": None, "value": part.get("id", part.get("kind")),
            "message": part["reason"],
        }))
    if result.cases is not None:
        # Archived and deleted appointments attached to a case are left out of its tally.
        appts = result.cases.appointments
        gone = appts[appts["reason"].isin(["archived", "deleted"])]
        if not gone.empty:
            extra.append(pd.DataFrame({
                "severity": "excluded", "file": gone["source_file"], "row": gone["source_row"],
                "column": None, "value": gone["appointment_id"],
                "message": "appointment " + gone["reason"] + ": not counted toward case "
                           + gone["case_id"].astype(str),
            }))
    frame = pd.concat([issues, *extra], ignore_index=True) if extra else issues
    frame["row"] = pd.array(frame["row"], dtype="Int64")
    return Table(
        key="validation", sheet="Validation", title="Validation: warnings and excluded rows",
        description="Every warning about the inputs, and every row left out of the figures "
                    "(archived, deleted or invalid) with the reason.",
        columns=(_c("severity", "Severity"), _c("file", "File"), _c("row", "Row", "int", total=False),
                 _c("column", "Column"), _c("value", "Value"), _c("message", "Message", width=70)),
        frame=frame,
    )


def _utilisation(result: RunResult) -> tuple[tuple[str, int], ...]:
    if result.cases is None:
        return ()
    cases = result.cases.cases
    limited = cases[cases["max_sessions"].notna()]
    if limited.empty:
        return ()
    used = limited["counted"].to_numpy(dtype=np.int64)
    cap = limited["max_sessions"].to_numpy(dtype=np.int64)
    # Integer comparisons (used * 4 vs cap) place each case in a band without floats.
    bands = [
        ("none used", used == 0),
        ("up to 25%", (used > 0) & (used * 4 <= cap)),
        ("26-50%", (used * 4 > cap) & (used * 2 <= cap)),
        ("51-75%", (used * 2 > cap) & (used * 4 <= cap * 3)),
        ("76-99%", (used * 4 > cap * 3) & (used < cap)),
        ("used up", used == cap),
        ("over-booked", used > cap),
    ]
    return tuple((label, int(mask.sum())) for label, mask in bands)


def _headlines(result: RunResult) -> tuple[Headline, ...]:
    heads: list[Headline] = []
    if result.credit is not None:
        credit = result.credit.patients["credit"]
        liability = int(credit.clip(lower=0).sum())
        holders = int((credit > 0).sum())
        heads.append(Headline("Credit liability", liability, "money", "warn" if liability else "ok",
                              f"owed to {holders:,} patient(s) as at {result.as_of:%d %b %Y}"))
        outstanding = int(result.credit.patients["open_outstanding"].sum())
        heads.append(Headline("Open invoices outstanding", outstanding, "money",
                              "warn" if outstanding else "ok", "still owed to the clinic"))
    if result.packages is not None:
        value = int(result.packages["undelivered"].sum())
        heads.append(Headline("Package value not yet delivered", value, "money",
                              "warn" if value else "ok", "sessions paid for in full, not yet used"))
    if result.cases is not None:
        over = int((result.cases.cases["over_booked_by"] > 0).sum())
        heads.append(Headline("Cases over-booked", over, "int", "bad" if over else "ok",
                              f"of {len(result.cases.cases):,} case(s)"))
    high = int((result.findings["severity"] == "high").sum()) if len(result.findings) else 0
    heads.append(Headline("Findings", int(len(result.findings)), "int",
                          "bad" if high else ("warn" if len(result.findings) else "ok"),
                          f"{high:,} of them serious"))
    return tuple(heads)


def _finding_kinds(result: RunResult) -> tuple[FindingKind, ...]:
    findings = result.findings
    if findings.empty:
        return ()
    kinds = []
    grouped = findings.groupby("code", sort=False)
    for code, part in grouped:
        title, explanation, todo = FINDING_TEXT.get(str(code), (str(code), "", ""))
        kinds.append(FindingKind(str(code), title, int(len(part)), str(part["severity"].iloc[0]),
                                 explanation, todo))
    return tuple(kinds)


def _links_setting(result: RunResult) -> tuple[tuple[str, str], ...]:
    """How invoices were tied to appointments, when both exports are there."""
    ds = result.dataset
    if ds.invoices is None or ds.appointments is None:
        return ()
    return (("Invoices linked to appointments", result.links.describe()),)


def build_context(result: RunResult, *, title: str | None = None, generated_at: str | None = None,
                  changes: dict[str, Any] | None = None) -> ReportContext:
    names = _Names(result)
    s = result.settings
    tables = [
        *(_changes_table(changes)),
        *_cases_tables(result, names),
        *_credit_tables(result, names),
        *_package_table(result, names),
        _validation_table(result),
    ]
    ageing_series: tuple[tuple[str, int], ...] = ()
    if result.ageing is not None:
        buckets = [c for c in result.ageing.columns if c not in ("patient_id", "patient_name", "credit")]
        ageing_series = tuple((b, int(result.ageing[b].sum())) for b in buckets)
    roll_series: tuple[RollRow, ...] = ()
    if result.monthly is not None:
        roll_series = tuple(
            RollRow(r.month, int(r.opening), int(r.created), int(r.applied), int(r.refunded), int(r.closing))
            for r in result.monthly.itertuples(index=False)
        )
    settings = (
        ("As of", f"{result.as_of.isoformat()} ({result.as_of_source})"),
        ("Period", f"{result.period_start.isoformat()} to {result.period_end.isoformat()}"),
        ("Time zone", s.timezone),
        ("Date order", s.date_order),
        ("Allocation policy", s.allocation),
        ("Credit applied", "when a payment is recorded" if s.credit_applies == "on-payment"
         else "when an invoice is issued"),
        ("Dormant after (days)", str(s.dormant_days)),
        ("Nearly used up at (sessions left)", str(s.nearly_used_up)),
        ("Ageing buckets (days)", ", ".join(map(str, s.ageing_buckets))),
        ("Column mapping", " + ".join(
            [*([f"{s.source} preset"] if s.source else []),
             *([s.columns_file.name] if s.columns_file else [])]) or "none"),
        *_links_setting(result),
    )
    return ReportContext(
        title=title or s.title,
        as_of=result.as_of,
        period_start=result.period_start,
        period_end=result.period_end,
        findings=_findings_table(result, names),
        headlines=_headlines(result),
        finding_kinds=_finding_kinds(result),
        tables=tuple(tables),
        charts=ChartData(ageing=ageing_series, utilisation=_utilisation(result), rollforward=roll_series),
        skipped=tuple(sorted(result.skipped.items())),
        inputs=tuple(
            {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256}
            for f in result.dataset.files
        ),
        settings=settings,
        generated_at=generated_at,
        max_rows=s.html_max_rows,
        date_order=s.date_order,
    )
