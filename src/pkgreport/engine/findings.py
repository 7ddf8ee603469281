"""The findings frame every engine returns: one row per thing a person should look at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import as_column
from pkgreport.engine.registry import FINDINGS, SEVERITY_RANK, FindingKind

FINDING_COLUMNS: list[str] = [
    "code",
    "severity",
    "patient_id",
    "subject_type",
    "subject_id",
    "amount",
    "appointment_ids",
    "message",
    "source_file",
    "source_row",
]

__all__ = [
    "FINDINGS",
    "FINDING_COLUMNS",
    "SEVERITY_RANK",
    "FindingKind",
    "combine_findings",
    "empty_findings",
    "findings_by_code",
    "make_findings",
    "normalise_findings",
]


def empty_findings() -> pd.DataFrame:
    """A findings frame with no rows and the right dtypes."""
    return normalise_findings(pd.DataFrame({c: [] for c in FINDING_COLUMNS}))


def make_findings(
    code: str,
    subjects: pd.DataFrame,
    message: pd.Series,
    *,
    subject_type: str,
    subject_id: str,
    amount: pd.Series | None = None,
    appointment_ids: pd.Series | None = None,
) -> pd.DataFrame:
    """Build findings of one code from the rows of `subjects` (vectorised; severity from FINDINGS).

    `subjects` must carry `patient_id`, `source_file`, `source_row` and the `subject_id` column;
    `message`, `amount` and `appointment_ids` are aligned to `subjects`' index.
    """
    if subjects.empty:
        return empty_findings()
    n = len(subjects)

    def texts(values: Any) -> pd.Series:
        # Objects from the start, as normalise_findings makes them: not a str column first.
        return as_column(np.full(n, values, dtype=object) if isinstance(values, str) else values)

    frame = pd.DataFrame(
        {
            "code": texts(code),
            "severity": texts(FINDINGS[code].severity),
            "patient_id": texts(subjects["patient_id"].to_numpy(dtype=object)),
            "subject_type": texts(subject_type),
            "subject_id": texts(subjects[subject_id].to_numpy(dtype=object)),
            "amount": (amount.to_numpy() if amount is not None else pd.NA),
            "appointment_ids": texts(
                appointment_ids.fillna("").to_numpy(dtype=object)
                if appointment_ids is not None
                else ""
            ),
            "message": texts(message.to_numpy(dtype=object)),
            "source_file": texts(subjects["source_file"].to_numpy(dtype=object)),
            "source_row": subjects["source_row"].to_numpy(),
        }
    )
    return normalise_findings(frame)


def normalise_findings(frame: pd.DataFrame) -> pd.DataFrame:
    """Fix dtypes and column order so findings from any engine concatenate cleanly."""
    out = frame.reindex(columns=FINDING_COLUMNS)
    for col in (
        "code",
        "severity",
        "patient_id",
        "subject_type",
        "subject_id",
        "message",
        "source_file",
        "appointment_ids",
    ):
        out[col] = (
            out[col]
            .astype(object)
            .where(out[col].notna(), "" if col == "appointment_ids" else None)
        )
    out["amount"] = pd.array(out["amount"], dtype="Int64")
    out["source_row"] = pd.array(out["source_row"], dtype="Int64")
    return out.reset_index(drop=True)


def combine_findings(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate findings frames and sort them most serious first, deterministically."""
    parts = [normalise_findings(f) for f in frames if f is not None and not f.empty]
    if not parts:
        return empty_findings()
    out = pd.concat(parts, ignore_index=True)
    out["_rank"] = out["severity"].map(SEVERITY_RANK).fillna(9).astype(int)
    out = out.sort_values(
        ["_rank", "code", "patient_id", "subject_id", "source_file", "source_row"],
        kind="mergesort",
        na_position="last",
    ).drop(columns="_rank")
    return out.reset_index(drop=True)


def findings_by_code(findings: pd.DataFrame) -> Mapping[str, Any]:
    """Count of findings per code, in code order."""
    if findings.empty:
        return {}
    counts = findings.groupby("code", sort=True).size()
    return {str(k): int(v) for k, v in counts.items()}
