"""The state one validation run shares: issues, rows left out and the headers each file used."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.excluded import excluded_frame
from pkgreport.inputs.mapping import parse_mapping
from pkgreport.inputs.presets import preset_data
from pkgreport.inputs.schemas import (
    id_column,
)

SINGULAR = {
    "appointments": "appointment",
    "cases": "case",
    "invoices": "invoice",
    "payments": "payment",
    "allocations": "allocation",
    "patients": "patient",
}
# Long lists inside one message are cut here; the full list is in the excluded rows.
MAX_PLACES = 5


class ValidationRun:
    """Collects issues, excluded rows and the headers each file used, across all kinds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Each line the `--source` preset wrote is marked so, for messages to name the preset.
        self.mapping = parse_mapping(
            settings.column_map, "the column map", preset_data(settings.source)
        )
        self.issues: list[Issue] = []
        self.excluded: list[pd.DataFrame] = []
        # Allocations left out of the figures as findings, not errors (`_set_aside_inconsistent`).
        self.set_aside: list[pd.DataFrame] = []
        self.headers: dict[tuple[str, str], dict[str, str]] = {}
        # Each file's cells as written, so an issue shows the value the user can find there.
        self.cells: dict[str, pd.DataFrame] = {}
        self._row_at: dict[str, pd.Index] = {}

    def header(self, kind: str, file: str, column: str) -> str:
        """The header the user wrote for a canonical column in that file."""
        return self.headers.get((kind, file), {}).get(column, column)

    def written(self, kind: str, file: str, row: int, column: str) -> str | None:
        """The cell of `column` in that row as the file has it (not as parsed), if there is one."""
        cells = self.cells.get(file)
        header = self.headers.get((kind, file), {}).get(column)
        if cells is None or header is None:
            return None
        if file not in self._row_at:  # a file without row numbers starts at row 2
            numbers = cells["source_row"] if "source_row" in cells else range(2, len(cells) + 2)
            self._row_at[file] = pd.Index(numbers)
        at = self._row_at[file].get_indexer([row])[0]
        label = next((c for c in cells.columns if str(c) == header), None)
        return None if at < 0 or label is None else str(cells[label].iat[at])

    def exclude(self, kind: str, rows: pd.DataFrame, reasons: Iterable[str] | str) -> None:
        if rows.empty:
            return
        key = id_column(kind) or "invoice_id"
        self.excluded.append(
            excluded_frame(
                kind,
                rows["source_file"].to_numpy(dtype=object),
                rows["source_row"].to_numpy(dtype=np.int64),
                rows[key].to_numpy(dtype=object) if key in rows else np.nan,
                reasons,
            )
        )

    def excluded_ids(self, kind: str) -> set[object]:
        """Ids of the rows of `kind` left out so far."""
        return {
            ident
            for part in self.excluded
            if part["kind"].iat[0] == kind
            for ident in part["id"]
            if not pd.isna(ident)
        }

    def row_issues(
        self,
        kind: str,
        rows: pd.DataFrame,
        column: str,
        values: Iterable[object],
        messages: Iterable[str] | str,
        severity: str = "error",
    ) -> list[str]:
        """One issue per row of `rows`; returns the messages (the exclusion reasons)."""
        out = []
        if isinstance(messages, str):
            messages = [messages] * len(rows)
        for file, row, value, message in zip(
            rows["source_file"], rows["source_row"], values, messages, strict=True
        ):
            header = self.header(kind, file, column)
            text = f"{header} {message}"
            self.issues.append(Issue(severity, file, int(row), header, shown_value(value), text))  # type: ignore[arg-type]
            out.append(text)
        return out


def shown_value(value: object) -> str | None:
    """A typed value as the user would recognise it in a message."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    return str(value)


def written_values(run: ValidationRun, kind: str, rows: pd.DataFrame, column: str) -> list[object]:
    """Each row's `column` as the file writes it (a time with its offset, a date unpadded), so
    the user finds it there; the parsed value when the file has no such cell."""
    return [
        run.written(kind, file, int(row), column) or shown_value(value)
        for file, row, value in zip(
            rows["source_file"], rows["source_row"], rows[column], strict=True
        )
    ]


def drop_rows(
    run: ValidationRun,
    kind: str,
    frame: pd.DataFrame,
    mask: np.ndarray,
    column: str,
    values: list[object],
    messages: list[str] | str,
) -> pd.DataFrame:
    """`frame` without the rows of `mask`, each reported at `column` and left out with its reason."""
    if not mask.any():
        return frame
    rows = frame[mask]
    reasons = run.row_issues(kind, rows, column, values, messages)
    run.exclude(kind, rows, reasons)
    return frame[~mask].reset_index(drop=True)


def places(rows: pd.DataFrame) -> str:
    pairs = [f"{f} row {r}" for f, r in zip(rows["source_file"], rows["source_row"], strict=True)]
    if len(pairs) > MAX_PLACES:
        pairs = [*pairs[:MAX_PLACES], f"{len(rows) - MAX_PLACES} more"]
    return ", ".join(pairs[:-1]) + " and " + pairs[-1] if len(pairs) > 1 else pairs[0]
