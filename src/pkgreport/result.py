"""What a run is made of and gives back: the files read, the typed `Dataset`, the `RunResult`.

A leaf module: the reports read a `RunResult` without importing loading, validation or the
pipeline (and so without pandera), and the types it names are imported for type checking only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkgreport.arrow_text import rows_at
from pkgreport.engine.links import InvoiceLinks
from pkgreport.excluded import empty_excluded
from pkgreport.memory import release_freed_memory

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pkgreport.config import Settings
    from pkgreport.engine.cases import CaseTally
    from pkgreport.engine.credit import CreditResult
    from pkgreport.errors import Issue
    from pkgreport.ids import RunIds

# What pkgreport writes into an output folder (reports, their manifest, the run log, history),
# spelled here because the loader must never read them back; the writers import these names.
OWN_OUTPUT_PREFIX = "pkgreport-"
MANIFEST_SUFFIX = ".sha256"
OWN_OUTPUT_SUFFIXES = frozenset({".xlsx", ".html", ".json", ".log", MANIFEST_SUFFIX})


def report_set_names(stem: str) -> dict[str, str]:
    """The files of one report set, by kind: `<stem>.xlsx`, `.html`, `.json` and the manifest."""
    return {
        "xlsx": f"{stem}.xlsx",
        "html": f"{stem}.html",
        "json": f"{stem}.json",
        "manifest": f"{stem}{MANIFEST_SUFFIX}",
    }


HISTORY_FOLDER = "history"
LOCK_NAME = ".pkgreport.lock"


@dataclass(frozen=True)
class InputFile:
    """What was read: enough to reproduce and audit a run (the report lists it with its SHA-256)."""

    path: Path
    name: str
    kind: str
    sha256: str
    size: int
    rows: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass
class Dataset:
    """Typed frames per kind (None when the kind was not supplied), the files, and the issues.

    Rows with an error are not in the typed frames; each is in `excluded` with the reason.
    Archived and deleted rows stay: the engines leave them out and say why.
    """

    appointments: pd.DataFrame | None = None
    cases: pd.DataFrame | None = None
    invoices: pd.DataFrame | None = None
    payments: pd.DataFrame | None = None
    allocations: pd.DataFrame | None = None
    patients: pd.DataFrame | None = None
    files: list[InputFile] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    excluded: pd.DataFrame = field(default_factory=empty_excluded)
    # Allocations the engine cannot apply but can account for: each becomes a finding naming the
    # allocation, its payment and its invoice (columns of allocations plus code, places, dates).
    set_aside_allocations: pd.DataFrame | None = None
    # The id spaces of these frames as integer codes, encoded once by validation (`pkgreport.ids`);
    # None for a dataset made otherwise (the engines then encode them).
    ids: RunIds | None = field(default=None, compare=False, repr=False)

    def frame(self, kind: str) -> pd.DataFrame | None:
        return getattr(self, kind)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


@dataclass(frozen=True)
class RunResult:
    """Everything a report needs; computed from the inputs and settings alone."""

    settings: Settings
    dataset: Dataset
    as_of: date
    as_of_source: str
    period_start: date
    period_end: date
    cases: CaseTally | None
    credit: CreditResult | None
    ageing: pd.DataFrame | None
    rollforward: pd.DataFrame | None
    monthly: pd.DataFrame | None
    packages: pd.DataFrame | None
    findings: pd.DataFrame
    skipped: dict[str, str]
    # How invoices were tied to appointments (by appointment id, or by invoice number).
    links: InvoiceLinks = field(default_factory=InvoiceLinks)
    # Wall-clock seconds per stage: for the log and benchmarks only, never written into a report.
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    # The months' history digests by kind, when a process works them out beside the engines
    # (`reports.month_digest.DigestsBeside`, joined when read); None: the summary works them out.
    month_digests: Mapping[str, Mapping[int, str]] | None = field(
        default=None, compare=False, repr=False
    )

    @cached_property
    def breakdowns(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The figures per business and per practitioner: derived from this result when a report
        first asks, then shared by the page, the workbook and the JSON summary."""
        from pkgreport.engine.breakdown import by_location, by_practitioner, case_frame

        ds, credit, tally = self.dataset, self.credit, self.cases
        cases = case_frame(
            as_of=self.as_of,
            cases=None if tally is None else tally.cases,
            case_appointments=None if tally is None else tally.appointments,
            appointments=ds.appointments,
            packages=self.packages,
        )
        # What the case owners' look-ups let go, given back before the invoices' (about 60 MB
        # at 1M rows, worked out beside the workbook's forked process).
        release_freed_memory()
        locations = by_location(
            as_of=self.as_of,
            invoices=ds.invoices,
            credit_patients=None if credit is None else credit.patients,
            credit_invoices=None if credit is None else credit.invoices,
            cases=cases,
            # Each invoice's patient found by the code validation gave its id, when it did.
            patient_codes=None if ds.ids is None else ds.ids.patients,
        )
        return locations, by_practitioner(cases)


# Which skipped section stops which engine's checks (the registry's `stage` of each finding).
STAGE_SECTIONS: dict[str, str] = {"cases": "Cases", "credit": "Credit"}


def checks_not_run(result: RunResult) -> dict[str, str]:
    """Finding code -> why it could not be checked, for the checks whose inputs are missing."""
    from pkgreport.engine.registry import FINDINGS

    return {
        code: result.skipped[STAGE_SECTIONS[kind.stage]]
        for code, kind in FINDINGS.items()
        if STAGE_SECTIONS[kind.stage] in result.skipped
    }


def excluded_rows(result: RunResult) -> pd.DataFrame:
    """Every input row left out of the figures, with the reason: file, row, value, message.

    The one list behind the Validation sheet and the summary's `excluded_rows` count: rows the
    validation dropped, rows an engine left out, and archived or deleted appointments of a case.
    """
    parts = [
        p
        for p in (result.dataset.excluded, getattr(result.credit, "excluded", None))
        if p is not None and not p.empty
    ]
    frames = [
        pd.DataFrame(
            {
                "file": part["source_file"],
                "row": part["source_row"],
                "value": part.get("id", part.get("kind")),
                "message": part["reason"],
            }
        )
        for part in parts
    ]
    if result.cases is not None:
        appts = result.cases.appointments
        # A few rows of a long frame: their text read by Arrow, not taken (`arrow_text.rows_at`).
        gone = rows_at(
            appts,
            np.flatnonzero(appts["reason"].isin(["archived", "deleted"]).to_numpy(dtype=bool)),
            ["source_file", "source_row", "appointment_id", "reason", "case_id"],
        )
        if not gone.empty:
            frames.append(
                pd.DataFrame(
                    {
                        "file": gone["source_file"],
                        "row": gone["source_row"],
                        "value": gone["appointment_id"],
                        "message": "appointment "
                        + gone["reason"]
                        + ": not counted toward case "
                        + gone["case_id"].astype(str),
                    }
                )
            )
    columns = ["file", "row", "value", "message"]
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]
