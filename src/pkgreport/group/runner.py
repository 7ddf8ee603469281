"""One clinic computed exactly as a single-clinic run would be, and the outcome the group reads.

`compute_clinic` is what a Dask worker runs: it takes the clinic's settings and input paths,
reads and computes everything itself, and hands back the rendered files and the clinic's own
JSON summary (bytes and plain data: nothing that depends on the driver's memory).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pkgreport.errors import InputError, Issue, PkgReportError
from pkgreport.group.clinics import Clinic

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClinicOutcome:
    """What became of one clinic: its reports (file name -> bytes) and summary, or why not."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: str = ""
    # The clinic's own JSON summary, read back from the bytes written: the group report's source.
    summary: dict[str, Any] | None = None
    # Why the clinic was not computed (None when it was), with the issues found in its exports.
    problem: str | None = None
    issues: tuple[Issue, ...] = ()

    @property
    def computed(self) -> bool:
        return self.problem is None


def not_computed(name: str, problem: str, issues: Sequence[Issue] = ()) -> ClinicOutcome:
    return ClinicOutcome(name, problem=problem, issues=tuple(issues))


def compute_clinic(
    clinic: Clinic, generated_at: str | None = None, partitions: int = 1
) -> ClinicOutcome:
    """Load, validate, compute and render one clinic; a clinic whose exports need fixing (or
    whose settings do not fit them) comes back not computed, with its issues."""
    from pkgreport import pipeline
    from pkgreport.memory import use_returning_allocator

    use_returning_allocator()  # a Dask worker's process has not run the command line
    try:
        if partitions > 1:
            from pkgreport.group.partition import run_partitioned

            result = run_partitioned(clinic.settings, partitions)
        else:
            result = pipeline.run(clinic.settings)
    except InputError as exc:
        errors = [i for i in exc.issues if i.severity == "error"] or exc.issues
        return not_computed(clinic.name, str(exc), errors)
    except PkgReportError as exc:
        return not_computed(clinic.name, str(exc))
    return render_clinic(clinic.name, result, generated_at)


def render_clinic(name: str, result: Any, generated_at: str | None) -> ClinicOutcome:
    """The clinic's three reports and manifest name, exactly as `pkgreport report` writes them."""
    from pkgreport.reports.publish import output_names, render_outputs

    names = output_names(result)
    files = render_outputs(result, generated_at=generated_at)
    summary = json.loads(files[names["json"]].decode("utf-8"))
    return ClinicOutcome(name, files=files, manifest=names["manifest"], summary=summary)


def run_serially(
    clinics: Sequence[Clinic], generated_at: str | None, progress: Progress
) -> list[ClinicOutcome]:
    """The clinics one after another in this process (no Dask)."""
    outcomes = []
    for number, clinic in enumerate(clinics, start=1):
        progress(f"clinic {number} of {len(clinics)}: {clinic.name}")
        outcomes.append(compute_clinic(clinic, generated_at))
    return outcomes
