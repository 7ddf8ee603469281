"""`run(settings) -> RunResult`: loading -> validation -> engines, the API the CLI and tests call."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pkgreport.columns import money_columns
from pkgreport.config import Settings
from pkgreport.engine.allocation_findings import set_aside_findings
from pkgreport.engine.cases import CaseTally, tally_cases
from pkgreport.engine.credit import CreditResult, compute_credit
from pkgreport.engine.findings import combine_findings
from pkgreport.engine.liability import (
    age_credit,
    package_value,
    roll_forward,
    roll_forward_by_month,
)
from pkgreport.engine.links import InvoiceLinks, link_invoices
from pkgreport.errors import InputError, Issue, UsageError
from pkgreport.ids import RunIds, encode_frames
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.presets import system_name
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation import (
    SchemaFailures,
    schema_failures,
    validate_tables,
)
from pkgreport.memory import release_freed_memory
from pkgreport.money import format_dollars
from pkgreport.reports.month_digest import digests_beside
from pkgreport.result import Dataset, RunResult
from pkgreport.schema_process import ChecksAfterTyping, ChecksBeside

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def load_dataset(settings: Settings, progress: Progress = _quiet) -> Dataset:
    """Read and validate every export in the input folder; issues are collected, not raised."""
    tables, load_issues = _read(settings, progress)
    return _validated(tables, load_issues, settings)


def _read(settings: Settings, progress: Progress) -> tuple[list[RawTable], list[Issue]]:
    if settings.input_dir is None:
        raise UsageError("no input folder given: pass INPUT_DIR or set `input` in the config file")
    tables, load_issues = load_folder(settings.input_dir, settings)
    # What reading let go (Arrow's pool, the C heap: about 0.2 GB at 1M rows) given back before
    # the exports are typed, where this process peaks: typing would reuse only part of it.
    release_freed_memory()
    progress(
        f"read {len(tables)} file(s): "
        + ", ".join(f"{t.file.name} ({len(t.frame):,} rows)" for t in tables)
        if tables
        else "read no files"
    )
    return tables, load_issues


def _validated(
    tables: list[RawTable],
    load_issues: list[Issue],
    settings: Settings,
    failures_of: SchemaFailures = schema_failures,
    on_typed: Callable[[dict[str, pd.DataFrame]], None] | None = None,
) -> Dataset:
    dataset = validate_tables(
        tables,
        settings,
        files=[t.file for t in tables],
        failures_of=failures_of,
        on_typed=on_typed,
    )
    dataset.issues[:0] = load_issues
    dataset.issues.sort(key=lambda i: i.sort_key())
    return dataset


# Every total the engines form adds up at most every input amount (a few times over), so with
# the absolute amounts summing to under 2**62 no int64 sum can wrap.
TOTAL_LIMIT_CENTS = 2**62


def require_totals_fit(dataset: Dataset) -> None:
    """Stop (exit 1) when the amounts are too large for every total to be exact in int64."""
    amounts = [
        frame[column].to_numpy(dtype=np.int64, na_value=0)
        for kind in ("cases", "invoices", "payments", "allocations", "patients")
        if (frame := getattr(dataset, kind)) is not None
        for column in money_columns(frame)
    ]
    # A float sum is a quick bound; only near the limit are the amounts added exactly.
    if sum(float(np.abs(cents).sum(dtype=np.float64)) for cents in amounts) < TOTAL_LIMIT_CENTS / 2:
        return
    grand = sum(abs(int(v)) for cents in amounts for v in cents.tolist())
    if grand >= TOTAL_LIMIT_CENTS:
        raise InputError(
            f"the amounts in the inputs add up to {format_dollars(grand)}, more than pkgreport "
            f"can total exactly ({format_dollars(TOTAL_LIMIT_CENTS)}): check that the money "
            "columns hold amounts in dollars, or lower max_amount in the config file"
        )


def require_clean(dataset: Dataset) -> None:
    """Stop with every error at once when any input row needs fixing (exit 1)."""
    errors = [i for i in dataset.issues if i.severity == "error"]
    if errors:
        raise InputError(
            f"{len(errors)} problem(s) in the inputs must be fixed before figures can be trusted",
            dataset.issues,
        )


def _latest(series: pd.Series | None) -> pd.Timestamp | None:
    if series is None or len(series) == 0:
        return None
    value = series.max()
    return None if pd.isna(value) else pd.Timestamp(value)


def default_as_of(dataset: Dataset) -> tuple[date, str]:
    """The latest date on which something *happened* in the data: never the wall clock.

    Future bookings are excluded (an export always holds appointments booked ahead), so the
    candidates are invoice and payment dates, cancellations, and appointments marked arrived or
    did-not-arrive. Only when none exist does the latest appointment start count.
    """
    candidates: list[tuple[pd.Timestamp, str]] = []
    if dataset.invoices is not None:
        ts = _latest(dataset.invoices["issue_date"])
        if ts is not None:
            candidates.append((ts, "latest invoice date"))
    if dataset.payments is not None:
        ts = _latest(dataset.payments["paid_at"])
        if ts is not None:
            candidates.append((ts, "latest payment date"))
    appts = dataset.appointments
    if appts is not None and len(appts):
        happened = appts.loc[appts["arrived"] | appts["did_not_arrive"], "starts_at"]
        ts = _latest(happened)
        if ts is not None:
            candidates.append((ts, "latest attended or missed appointment"))
        ts = _latest(appts["cancelled_at"])
        if ts is not None:
            candidates.append((ts, "latest cancellation"))
    if not candidates and appts is not None:
        ts = _latest(appts["starts_at"])
        if ts is not None:
            candidates.append((ts, "latest appointment start"))
    if not candidates:
        raise UsageError("the inputs hold no dates to take --as-of from: pass --as-of YYYY-MM-DD")
    ts, source = max(candidates, key=lambda c: (c[0], c[1]))
    return ts.date(), source


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return first, next_first - timedelta(days=1)


def monthly_rollforward(ledger: pd.DataFrame, first_month: date, as_of: date) -> pd.DataFrame:
    """Total roll-forward per calendar month from `first_month` to the month of `as_of`."""
    return roll_forward_by_month(ledger, first_month, as_of)


def sections_left_out(dataset: Dataset) -> dict[str, str]:
    """The sections these exports cannot make for want of a kind, with the reason."""
    left_out: dict[str, str] = {}
    if dataset.appointments is None or dataset.cases is None:
        missing = "cases" if dataset.cases is None else "appointments"
        left_out["Cases"] = (
            f"no {missing} export in the input folder, so package tallies were not computed"
        )
    if dataset.invoices is None or dataset.payments is None:
        missing = " and ".join(k for k in ("invoices", "payments") if getattr(dataset, k) is None)
        left_out["Credit"] = (
            f"no {missing} export in the input folder, so account credit, ageing and the "
            "roll-forward were not computed"
        )
    return left_out


PatientFigures = tuple[CaseTally | None, CreditResult | None]
# Runs the per-patient engines (`patient_engines`, or the same on parts of the dataset).
PatientEngines = Callable[[Dataset, Settings, date, InvoiceLinks], PatientFigures]


def patient_engines(
    dataset: Dataset, settings: Settings, as_of: date, links: InvoiceLinks
) -> PatientFigures:
    """The case tallies and the credit engine: every row they give belongs to one patient, so a
    dataset split by patient can run them part by part (`pkgreport.group.partition`) and
    concatenate. None for a section whose inputs are missing (`sections_left_out` says why)."""
    timings: dict[str, float] = {}
    ids = dataset_ids(dataset)
    return (
        _tally(dataset, settings, as_of, timings, _quiet, ids),
        _credit(dataset, settings, as_of, links, timings, ids),
    )


def dataset_ids(dataset: Dataset) -> RunIds:
    """The dataset's id spaces as integer codes (`pkgreport.ids`) for every engine: those
    validation encoded, else (a dataset made otherwise, or one part of it) encoded here."""
    if dataset.ids is not None and dataset.ids.fit(dataset.frame):
        return dataset.ids
    return encode_frames(dataset.frame)


def compute(
    dataset: Dataset,
    settings: Settings,
    progress: Progress = _quiet,
    engines: PatientEngines | None = None,
) -> RunResult:
    """Run the engines on a clean dataset. Pure apart from the timings it records.

    `engines` runs the per-patient engines instead of `patient_engines` in this process (a
    clinic split by patient: `pkgreport.group.partition`); the same figures either way.
    """
    as_of, as_of_source, period_start, period_end = _dates(dataset, settings)
    timings: dict[str, float] = {}
    skipped = sections_left_out(dataset)
    release_freed_memory()  # what validation let go
    t0 = time.perf_counter()
    ids = dataset_ids(dataset)
    links = link_invoices(dataset.invoices, dataset.appointments, ids)
    release_freed_memory()  # the links' hashing (Arrow's pool would keep it to credit's peak)
    timings["ids+links"] = time.perf_counter() - t0
    if engines is None:
        # Credit first: its working arrays are the engines' peak, which then does not hold
        # the case tally too (the tally's own, smaller, comes once credit's are let go).
        credit = _credit(dataset, settings, as_of, links, timings, ids)
        tally = _tally(dataset, settings, as_of, timings, progress, ids)
    else:
        t0 = time.perf_counter()
        tally, credit = engines(dataset, settings, as_of, links)
        timings["cases+credit"] = time.perf_counter() - t0
    ageing, rollforward, monthly = _credit_figures(
        dataset, settings, credit, as_of, (period_start, period_end), timings, progress
    )
    packages = _packages(dataset, tally, as_of, links, skipped)
    if credit is not None and dataset.set_aside_allocations is not None:
        # Allocations validation set aside are the credit engine's findings too (`credit --findings`).
        credit = replace(
            credit,
            findings=combine_findings(
                credit.findings, set_aside_findings(dataset.set_aside_allocations)
            ),
        )
    findings = combine_findings(*(r.findings for r in (tally, credit) if r is not None))
    release_freed_memory()  # the engines' working arrays, before the reports are rendered
    return RunResult(
        settings=settings,
        dataset=dataset,
        as_of=as_of,
        as_of_source=as_of_source,
        period_start=period_start,
        period_end=period_end,
        cases=tally,
        credit=credit,
        ageing=ageing,
        rollforward=rollforward,
        monthly=monthly,
        packages=packages,
        findings=findings,
        skipped=skipped,
        links=links,
        timings=timings,
    )


def _dates(dataset: Dataset, settings: Settings) -> tuple[date, str, date, date]:
    """The as-of date, where it came from, and the reporting period; refused when inconsistent."""
    if settings.as_of is not None:
        # rollforward (--to) and a scheduled run (its period) set it without any --as-of.
        given_as_period_end = settings.as_of == settings.period_end
        as_of = settings.as_of
        as_of_source = "the last day of the period" if given_as_period_end else "--as-of"
    else:
        as_of, as_of_source = default_as_of(dataset)
    if settings.period_start is not None and settings.period_end is not None:
        period_start, period_end = settings.period_start, settings.period_end
    else:
        period_start, period_end = month_bounds(as_of)
    if period_start > period_end:
        raise UsageError(f"the period starts ({period_start}) after it ends ({period_end})")
    if as_of < period_start:
        raise UsageError(
            f"the as-of date ({as_of}) is before the period starts ({period_start}): the figures "
            "are taken at the as-of date, so it must fall on or after the period's first day; "
            "give a later --as-of or an earlier period"
        )
    return as_of, as_of_source, period_start, period_end


def _tally(
    dataset: Dataset,
    settings: Settings,
    as_of: date,
    timings: dict[str, float],
    progress: Progress,
    ids: RunIds | None = None,
) -> CaseTally | None:
    """The case tallies, or None without cases and appointments (`sections_left_out` says why);
    `ids`: the dataset's id codes (`dataset_ids`), made by the engine when not given."""
    if dataset.appointments is None or dataset.cases is None:
        return None
    t0 = time.perf_counter()
    tally = tally_cases(
        dataset.appointments,
        dataset.cases,
        as_of,
        nearly_used_up=settings.nearly_used_up,
        ids=ids,
    )
    timings["cases"] = time.perf_counter() - t0
    progress(
        f"tallied {len(tally.cases):,} case(s) over {len(tally.appointments):,} appointment(s)"
    )
    return tally


CreditFigures = tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]


def _credit(
    dataset: Dataset,
    settings: Settings,
    as_of: date,
    links: InvoiceLinks,
    timings: dict[str, float],
    ids: RunIds | None = None,
) -> CreditResult | None:
    """Credit per patient and invoice; None without invoices and payments. `ids`: the
    dataset's id codes (`dataset_ids`), made by the engine when not given."""
    if dataset.invoices is None or dataset.payments is None:
        return None
    t0 = time.perf_counter()
    credit = compute_credit(
        dataset.invoices,
        dataset.payments,
        dataset.allocations,
        dataset.patients,
        as_of,
        policy=settings.allocation,
        credit_applies=settings.credit_applies,
        dormant_days=settings.dormant_days,
        appointments=dataset.appointments,
        cases=dataset.cases,
        links=links,
        system=system_name(settings.source, settings.columns_file),
        ids=ids,
    )
    timings["credit"] = time.perf_counter() - t0
    return credit


def _credit_figures(
    dataset: Dataset,
    settings: Settings,
    credit: CreditResult | None,
    as_of: date,
    period: tuple[date, date],
    timings: dict[str, float],
    progress: Progress,
) -> CreditFigures:
    """Credit's ageing, the period's roll-forward and the monthly one; all None without
    invoices and payments (`sections_left_out` says why)."""
    if credit is None:
        return None, None, None
    t0 = time.perf_counter()
    period_start, period_end = period
    ageing = age_credit(credit.ledger, as_of, settings.ageing_buckets)
    rollforward = roll_forward(credit.ledger, period_start, min(period_end, as_of))
    first = _latest_floor(dataset, as_of)
    monthly = monthly_rollforward(credit.ledger, first, as_of)
    timings["liability"] = time.perf_counter() - t0
    progress(
        f"allocated credit for {len(credit.patients):,} patient(s), "
        f"{len(credit.invoices):,} invoice(s)"
    )
    return ageing, rollforward, monthly


def _packages(
    dataset: Dataset,
    tally: CaseTally | None,
    as_of: date,
    links: InvoiceLinks,
    skipped: dict[str, str],
) -> pd.DataFrame | None:
    """The value of each package used and unused, when prices are known."""
    if tally is None:
        return None
    if dataset.invoices is None and not _has_prices(dataset):
        skipped["Package value"] = "no package prices (cases `package_price` or package invoices)"
        return None
    return package_value(
        dataset.cases,
        dataset.invoices,
        tally.cases[["case_id", "attended"]],
        as_of,
        session_invoices=frozenset(links.by_number),
    )


def _has_prices(dataset: Dataset) -> bool:
    cases = dataset.cases
    return cases is not None and bool(cases["package_price"].notna().any())


def _latest_floor(dataset: Dataset, as_of: date) -> date:
    """First month for the monthly roll-forward chart: at most twelve months back from as_of."""
    earliest = as_of.replace(day=1)
    for _ in range(11):
        earliest = (earliest - timedelta(days=1)).replace(day=1)
    starts = []
    if dataset.invoices is not None and len(dataset.invoices):
        starts.append(dataset.invoices["issue_date"].min())
    if dataset.payments is not None and len(dataset.payments):
        starts.append(dataset.payments["paid_at"].min())
    data_start = min((pd.Timestamp(s).date() for s in starts if not pd.isna(s)), default=as_of)
    return max(earliest, data_start.replace(day=1))


# Findings about records that disagree with each other, which `validate` lists beside the errors.
RECORD_FINDINGS = (
    "OVER_ALLOCATED_INVOICE",
    "ALLOCATION_OTHER_PATIENT",
    "ALLOCATION_TO_DELETED_INVOICE",
)


def inconsistent_records(dataset: Dataset, settings: Settings) -> pd.DataFrame:
    """The RECORD_FINDINGS the figures will carry; without the engines (inputs with errors, or
    no date to compute at) only the allocations validation set aside."""
    if not dataset.errors:
        try:
            findings = _credit_findings(dataset, settings)
        except UsageError:
            findings = None
        if findings is not None:
            return findings.loc[findings["code"].isin(RECORD_FINDINGS)].reset_index(drop=True)
    return set_aside_findings(dataset.set_aside_allocations)


def _credit_findings(dataset: Dataset, settings: Settings) -> pd.DataFrame:
    """The credit engine's findings as `compute` gives them (with the set-aside allocations'),
    without the engines whose figures `validate` does not show: RECORD_FINDINGS are all credit's."""
    as_of = _dates(dataset, settings)[0]
    ids = dataset_ids(dataset)
    links = link_invoices(dataset.invoices, dataset.appointments, ids)
    credit = _credit(dataset, settings, as_of, links, {}, ids)
    if credit is None:
        return combine_findings()
    return combine_findings(credit.findings, set_aside_findings(dataset.set_aside_allocations))


# Up to this many bytes of exports in the input folder and rows read, pandera's schema checks run
# in a process forked before reading, sent the frames down a pipe (see `_run_checked_beside`);
# above, in a process forked once the frames are typed, which inherits them (`ChecksAfterTyping`).
SCHEMA_BESIDE_MAX_BYTES = 32 * 2**20
SCHEMA_BESIDE_MAX_ROWS = 100_000


def run(settings: Settings, progress: Progress = _quiet) -> RunResult:
    """Load, validate (fail once with every error) and compute."""
    t0 = time.perf_counter()
    # Started before the exports are read: the checks' process imports pandera meanwhile.
    with ChecksBeside(fork=_is_small(settings.input_dir)) as checks:
        tables, load_issues = _read(settings, progress)
        if checks.started and sum(len(t.frame) for t in tables) <= SCHEMA_BESIDE_MAX_ROWS:
            return _run_checked_beside(tables, load_issues, settings, progress, t0, checks)
    # Too large to hand the frames down a pipe: the checks' process forks once they are typed.
    with ChecksAfterTyping() as late:
        return _run_checked_beside(tables, load_issues, settings, progress, t0, late)


def _is_small(folder: Path | None) -> bool:
    """Whether the input folder's files add up to at most SCHEMA_BESIDE_MAX_BYTES."""
    try:
        sizes = [entry.stat().st_size for entry in os.scandir(folder or "") if entry.is_file()]
    except OSError:  # no such folder: reading it says so
        return False
    return sum(sizes) <= SCHEMA_BESIDE_MAX_BYTES


def _computed(
    dataset: Dataset, settings: Settings, progress: Progress, started: float
) -> RunResult:
    load_seconds = time.perf_counter() - started
    require_clean(dataset)
    require_totals_fit(dataset)
    # The month digests need only the validated invoices and payments: on a large folder a
    # thread works them out now, on the second core, which the engines leave idle; joined
    # once they are done, before the workbook's process is forked (`DigestsBeside`).
    digests = digests_beside({"invoices": dataset.invoices, "payments": dataset.payments})
    try:
        result = compute(dataset, settings, progress)
    except BaseException:
        if digests is not None:
            digests.close()
        raise
    result.timings["load+validate"] = load_seconds
    return result if digests is None else replace(result, month_digests=digests.result())


def _run_checked_beside(
    tables: list[RawTable],
    load_issues: list[Issue],
    settings: Settings,
    progress: Progress,
    started: float,
    checks: ChecksBeside,
) -> RunResult:
    """`run`, with pandera's schema checks in `checks`' process beside validation's other steps
    and the engines, instead of before them (pandera's import alone costs this process ~0.3 s).

    Validation goes ahead as if every frame passes the checks, as exports almost always do,
    while the other process checks the frames as they were; its verdict is joined before
    anything of this run is used: the result, the error it raised, its stage messages. When a
    check failed, the tables are validated again with pandera's failures and computed again,
    so every issue, message and exit code is the one checking first gives; when the process
    fails, `checks` runs them here. `tables` is emptied once typed: the exports' text is not
    needed again unless a check failed (about 190 MB at 1M rows, let go before the checks'
    process forks on a large folder), and a run validated again reads the folder again.
    """
    held: list[str] = []
    outcome: RunResult | Exception | None = _attempt(
        tables, load_issues, settings, checks, held.append, started
    )
    checks.send()  # when validation itself failed (a second send does nothing)
    failures = checks.failures()
    if failures != {}:
        outcome = None  # figures made as if every frame passed: let them go before redoing
        if not tables:
            tables, load_issues = _read(settings, _quiet)
    if failures is None:  # the process checking typed frames failed: validate again here
        return _computed(_validated(tables, load_issues, settings), settings, progress, started)
    if failures:
        dataset = _validated(
            tables, load_issues, settings, failures_of=lambda kind, _: failures.get(kind)
        )
        return _computed(dataset, settings, progress, started)
    for message in held:
        progress(message)
    if isinstance(outcome, Exception):
        raise outcome
    assert outcome is not None
    return outcome


def _attempt(
    tables: list[RawTable],
    load_issues: list[Issue],
    settings: Settings,
    checks: ChecksBeside,
    progress: Progress,
    started: float,
) -> RunResult | Exception | None:
    """Validation (with `checks`' hooks) and the engines as if every frame passes pandera's
    checks: the result, or the error raised, which waits for the checks' verdict to say whose
    error it is; None when the verdict, joined before the engines (`verdict_before_engines`),
    says a check failed."""
    on_typed = checks.on_typed

    def typed(frames: dict[str, pd.DataFrame]) -> None:
        # The exports' text, not needed once typed, let go before the checks' process forks
        # (which gives back the memory it held: `Beside`).
        tables.clear()
        if on_typed is not None:
            on_typed(frames)

    try:
        dataset = _validated(tables, load_issues, settings, checks.failures_of, typed)
        checks.send()
        if checks.verdict_before_engines and checks.failures() != {}:
            return None  # the run is validated again with the failures: nothing to compute
        return _computed(dataset, settings, progress, started)
    except Exception as exc:  # noqa: BLE001 - whose error it is waits for the verdict
        return exc
