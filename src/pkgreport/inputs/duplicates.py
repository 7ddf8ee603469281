"""Repeated rows of one kind: exact copies collapse with a warning, conflicting ids are errors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pkgreport.errors import Issue
from pkgreport.inputs.schemas import (
    PROVENANCE,
    key_columns,
)
from pkgreport.inputs.validation_run import ValidationRun, places


def collapse_duplicates(
    run: ValidationRun, kind: str, frame: pd.DataFrame, repeated_id: np.ndarray
) -> pd.DataFrame:
    """Exact copies collapse to one row (a warning); one id with different content is an error.

    `repeated_id` marks the rows whose id is not unique (pandera's uniqueness check found them).
    """
    content = [c for c in frame.columns if c not in PROVENANCE]
    keys = list(key_columns(kind))
    key = keys[0] if keys else None
    if key is not None:
        if not repeated_id.any():
            return frame
        sub = frame[repeated_id]
        copy = sub.duplicated(subset=content, keep="first")
    else:
        # No unique id (allocations): an exact repeat, in one file or across overlapping files,
        # is counted once. An export that numbers its allocations (`allocation_id`) keeps two
        # equal allocations apart, since their ids are part of the content compared.
        sub = frame
        copy = frame.duplicated(subset=content, keep="first")
    drop = pd.Series(False, index=frame.index)
    if copy.any():
        groups = sub.groupby(content, dropna=False, sort=False).ngroup()
        first_of_group = groups[~copy].drop_duplicates()
        kept = pd.Series(first_of_group.index, index=first_of_group.to_numpy())
        copies = sub[copy.to_numpy()]
        originals = frame.loc[kept[groups[copy].to_numpy()].to_numpy()]
        reasons = [
            f"exact copy of {f} row {r} (counted once)"
            for f, r in zip(originals["source_file"], originals["source_row"], strict=True)
        ]
        run.exclude(kind, copies, reasons)
        _warn_about_copies(run, kind, copies, originals)
        drop[copies.index] = True
    if key is not None:
        rest = sub[~copy.to_numpy()]
        clash = rest[rest.duplicated(subset=keys, keep=False)]
        if not clash.empty:
            clash = clash.sort_values(["source_file", "source_row"], kind="stable")
            for value, rows in clash.groupby(keys, sort=True):
                value = value[0]
                differ = [c for c in content if rows[c].nunique(dropna=False) > 1]
                first = rows.iloc[0]
                header = run.header(kind, first["source_file"], key)
                # A group appointment's id is shared by its patients: name the patient too.
                whose = f" for patient {first['patient_id']}" if len(keys) > 1 else ""
                message = (
                    f"{header} {value}{whose} is used by {len(rows)} different rows: "
                    f"{places(rows)} "
                    f"(they differ in {', '.join(differ)}). Keep one version: correct the id or "
                    "remove the out-of-date row"
                )
                run.issues.append(
                    Issue(
                        "error",
                        first["source_file"],
                        int(first["source_row"]),
                        header,
                        str(value),
                        message,
                    )
                )
                run.exclude(kind, rows, message)
                drop[rows.index] = True
    return frame[~drop.to_numpy()].reset_index(drop=True)


def _warn_about_copies(
    run: ValidationRun, kind: str, copies: pd.DataFrame, originals: pd.DataFrame
) -> None:
    """One warning for copies across files (overlapping exports); one per repeat inside a file,
    naming both rows, since an export does not repeat a row by overlapping itself. A group
    appointment is one row of the file for all its attendees, and is counted and named once."""
    once = ~copies.duplicated(["source_file", "source_row"]).to_numpy()
    copies, originals = copies[once], originals[once]
    same_file = copies["source_file"].to_numpy() == originals["source_file"].to_numpy()
    for copy_row, original_row, file in zip(
        copies["source_row"][same_file],
        originals["source_row"][same_file],
        copies["source_file"][same_file],
        strict=True,
    ):
        run.issues.append(
            Issue(
                "warning",
                file,
                int(copy_row),
                None,
                None,
                f"row {copy_row} repeats row {original_row} exactly and is counted once: if it "
                f"really happened twice, export the {kind} with their ids so the two can be told "
                "apart",
            )
        )
    across = copies[~same_file]
    if across.empty:
        return
    files = sorted(set(across["source_file"]))
    run.issues.append(
        Issue(
            "warning",
            ", ".join(files),
            None,
            None,
            None,
            f"{len(across)} {kind} "
            f"{'rows are exact copies' if len(across) > 1 else 'row is an exact copy'}"
            f" of other rows (overlapping exports?) and counted once; the first is "
            f"{places(across.iloc[:1])}, a copy of {places(originals[~same_file].iloc[:1])}",
        )
    )
