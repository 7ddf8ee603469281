"""A mapping's `[kind.split.other]`: one file's rows -> one table per kind (a payments export
that lists the invoice each payment was applied to gives payments and allocations)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pkgreport.errors import Issue
from pkgreport.inputs.mapping import KindMapping, absent_issue, alias_lookup
from pkgreport.inputs.schemas import PROVENANCE, normalise_header


def split_table(
    kind: str, kind_map: KindMapping, frame: pd.DataFrame, file: str
) -> tuple[dict[str, pd.DataFrame], list[Issue]]:
    """`[kind.split.other]`: one file's rows -> {other kind: its rows, "": the file's own rows}.

    Each other kind gets the rows with something in its columns. The file's own kind keeps its
    own columns, one row per distinct content: a payment listed once per invoice it pays is one
    payment, not copies of it. A column the split names that the file lacks is an error, and
    the file is then read whole as its own kind.
    """
    written = [str(c) for c in frame.columns if c not in PROVENANCE]
    by_normal = {normalise_header(h): h for h in reversed(written)}
    lookup = alias_lookup(kind)

    def own_kind(header: str) -> bool:
        return bool(kind_map.renames.get(header, lookup.get(normalise_header(header))))

    parts: dict[str, pd.DataFrame] = {}
    taken: list[str] = []
    issues: list[Issue] = []
    carried = np.zeros(len(frame), dtype=bool)
    for other, columns in kind_map.splits.items():
        headers = {t: by_normal.get(normalise_header(s)) for t, s in columns.items()}
        for target, header in headers.items():
            if header is None:
                line = (f"split.{other}", target)
                issues.append(absent_issue(file, written, columns[target], kind, kind_map, line))
        present = [h for h in headers.values() if h is not None]
        if len(present) < len(headers):
            continue
        # A row is the other kind's when a column only it uses is filled in (not Payment ID).
        only_theirs = [h for h in present if not own_kind(h)] or present
        filled = np.zeros(len(frame), dtype=bool)
        for header in only_theirs:
            filled |= (frame[header].astype(str).str.strip() != "").to_numpy()
        parts[other] = frame.loc[filled, [*present, *PROVENANCE]].reset_index(drop=True)
        carried |= filled
        taken += only_theirs
    if not parts:
        return {}, issues
    own_columns = [h for h in written if h not in taken]
    own = frame[[*own_columns, *PROVENANCE]]
    # Only a repeat that carried the other kind's part goes; any other copy is still reported.
    repeat = own.duplicated(subset=own_columns).to_numpy() & carried
    parts[""] = own[~repeat].reset_index(drop=True)
    return parts, issues
