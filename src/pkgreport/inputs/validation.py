"""Raw all-text tables -> a `Dataset` of typed frames, the rows left out, and every issue found."""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.errors import Issue, UsageError
from pkgreport.excluded import EXCLUDED_DTYPES, empty_excluded
from pkgreport.ids import encode_frames
from pkgreport.inputs.column_typing import provenance, type_table, with_provenance
from pkgreport.inputs.cross_checks import check_across_files
from pkgreport.inputs.duplicates import collapse_duplicates
from pkgreport.inputs.mapping import read_mapping_file
from pkgreport.inputs.mapping_split import split_table
from pkgreport.inputs.schemas import (
    CHECK_MESSAGES,
    COLUMNS,
    FRAME_CHECK_COLUMNS,
    KINDS,
    empty_frame,
    schema_for,
)
from pkgreport.inputs.surrogates import (
    REEXPORT,
    broken_character,
    holds_lone_surrogate,
    lone_surrogate_cells,
    shown_name,
    shown_safely,
)
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation_run import ValidationRun
from pkgreport.memory import release_freed_memory
from pkgreport.money import format_dollars
from pkgreport.result import Dataset, InputFile

_MONEY_COLUMNS = {s.name for specs in COLUMNS.values() for s in specs if s.type == "money"}


# --- column map -------------------------------------------------------------------------------


def load_column_map(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a mapping file (`pkgreport.inputs.mapping`): renames and transforms per kind."""
    return read_mapping_file(path)


# The pandera schema check of one typed frame: its failure cases, or None when it passes.
SchemaFailures = Callable[[str, pd.DataFrame], pd.DataFrame | None]


def schema_failures(
    kind: str, frame: pd.DataFrame, *, arrow_ids: bool = False
) -> pd.DataFrame | None:
    """pandera over the typed frame of `kind`: its failure cases, or None when every row passes.
    With `arrow_ids`, the kind's own id column may be held as Arrow text (`schema_for`).

    pandera is imported here, when a frame is first checked: its import and the registration of
    its pandas backends cost about 0.3 s, which a run that checks nothing in this process (the
    checks run beside it, `pkgreport.pipeline`) never pays.
    """
    from pandera.errors import SchemaErrors

    try:
        schema_for(kind, arrow_ids=arrow_ids).validate(frame, lazy=True, inplace=True)
    except SchemaErrors as exc:
        return exc.failure_cases
    return None


class AssumedValid:
    """Stands in for `schema_failures` in a validation that goes ahead as if every frame passes.

    Each frame is kept as it was checked (a copy: later steps may change theirs), so that
    `failures()`, run in a forked process beside the engines, can tell whether the assumption
    held: pandera's failure cases by kind, empty when every frame passed.
    """

    def __init__(self) -> None:
        self.checked: list[tuple[str, pd.DataFrame]] = []

    def __call__(self, kind: str, frame: pd.DataFrame) -> None:
        self.checked.append((kind, frame.copy(deep=True)))
        return None

    def failures(self) -> dict[str, pd.DataFrame]:
        return failures_by_kind(self.checked)


class TypedFrames(dict[str, pd.DataFrame]):
    """Every kind's typed frame (a kind not read has none), as `validate_tables` hands them to
    `on_typed`, holding the exports' cells they were typed from (`ValidationRun.cells`, which
    messages quote) for as long as they are held. A process forked to check the frames has them
    kept until its verdict is joined (`pkgreport.schema_process.ChecksAfterTyping`): letting the
    cells go at the end of validation, while it may still check, would write the reference
    count of every string they hold, the ids the frames share among them (about 0.35 GB of
    pages copied at 1M rows)."""

    def __init__(
        self, frames: dict[str, pd.DataFrame | None], cells: dict[str, pd.DataFrame]
    ) -> None:
        super().__init__({kind: frame for kind, frame in frames.items() if frame is not None})
        self.cells = cells


def failures_by_kind(checked: Iterable[tuple[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """pandera's failure cases of each frame that fails its checks, by kind (empty: all pass)."""
    found = {kind: schema_failures(kind, frame) for kind, frame in checked}
    return {kind: cases for kind, cases in found.items() if cases is not None}


def _schema_check(
    run: ValidationRun, kind: str, frame: pd.DataFrame, failures: pd.DataFrame | None
) -> tuple[pd.DataFrame, np.ndarray]:
    """pandera's failures over the typed frame; each becomes an issue and its row is removed.

    Returns the remaining rows and a mask over them of rows whose id is repeated: those are
    resolved by `collapse_duplicates` (an exact copy is a warning, not an error).
    """
    repeated = np.zeros(len(frame), dtype=bool)
    if failures is None:
        return frame, repeated
    failures = failures.assign(
        check=failures["check"].astype(str),
        column=[
            FRAME_CHECK_COLUMNS.get(str(c), col) if context == "DataFrameSchema" else col
            for c, col, context in zip(
                failures["check"], failures["column"], failures["schema_context"], strict=True
            )
        ],
    ).drop_duplicates(subset=["check", "column", "index"])
    whole = failures["index"].isna().to_numpy()
    for check, column in failures.loc[whole, ["check", "column"]].itertuples(index=False):
        # A whole-column failure (a dtype) means validation itself built the frame wrong.
        run.issues.append(
            Issue(
                "error",
                kind,
                None,
                str(column),
                None,
                f"internal check {check} failed on column {column}: please "
                "report this with the input files",
            )
        )
    unique = (failures["check"] == "field_uniqueness").to_numpy()
    if (unique & ~whole).any():
        labels = failures.loc[unique & ~whole, "index"].astype(np.int64)
        repeated[frame.index.get_indexer(labels)] = True
    rows = failures[~whole & ~unique]
    if rows.empty:
        return frame, repeated
    positions = frame.index.get_indexer(rows["index"].astype(np.int64))
    reasons = np.full(len(frame), None, dtype=object)
    for (check, column), group in rows.assign(_pos=positions).groupby(
        ["check", "column"], sort=True
    ):
        at = group["_pos"].to_numpy()
        picked = frame.iloc[at]
        message = CHECK_MESSAGES.get(str(check), f"fails the check {check}")
        values: list[Any] = picked[column].tolist() if column in picked else [None] * len(picked)
        if column in _MONEY_COLUMNS:
            values = [None if pd.isna(v) else format_dollars(int(v)) for v in values]
        texts = run.row_issues(kind, picked, str(column), values, message)
        fresh = pd.isna(reasons[at])
        reasons[at[fresh]] = np.array(texts, dtype=object)[fresh]
    bad = ~pd.isna(reasons)
    run.exclude(kind, frame[bad], reasons[bad])
    return frame[~bad].reset_index(drop=True), repeated[~bad]


def _without_lone_surrogates(run: ValidationRun, tables: list[RawTable]) -> list[RawTable]:
    """The tables without text no stage can hold (`surrogates`), which only a table built by
    hand may hold: refused before anything reads it (`_refuse_lone_surrogates`)."""
    kept = (_refuse_lone_surrogates(run, t) if t.file.kind in KINDS else t for t in tables)
    return [table for table in kept if table is not None]


def _refuse_lone_surrogates(run: ValidationRun, table: RawTable) -> RawTable | None:
    """The table without the rows whose cells hold a lone surrogate (each such cell an error),
    or None when a header holds one (the file is refused, its rows left out). A table the
    loader read holds none (`surrogates`) and is returned as it is, unread."""
    if not table.may_hold_lone_surrogates:
        return table
    kind = table.file.kind
    frame = with_provenance(table)
    rows = _provenance_shown_safely(frame)
    header = next((str(c) for c in frame.columns if holds_lone_surrogate(str(c))), None)
    if header is not None:
        shown = shown_safely(header)
        message = f"the header {shown!r} holds {broken_character(header)}; {REEXPORT}"
        file = shown_name(table.file.name)
        run.issues.append(Issue("error", file, None, shown, None, message))
        run.exclude(kind, rows, message)
        return None
    reasons = np.full(len(frame), None, dtype=object)
    for label in frame.columns:
        column = shown_safely(str(label))
        for at in np.flatnonzero(lone_surrogate_cells(frame[label])):
            value = str(frame[label].iat[at])
            shown = shown_safely(value)
            message = (
                f"{column} {shown} holds {broken_character(value)}, so the row is left out; "
                f"{REEXPORT}"
            )
            file, row = rows["source_file"].iat[at], int(rows["source_row"].iat[at])
            run.issues.append(Issue("error", file, row, column, shown, message))
            reasons[at] = reasons[at] or message
    bad = ~pd.isna(reasons)
    if not bad.any():
        return table
    run.exclude(kind, rows[bad], reasons[bad])
    kept = frame[~bad].reset_index(drop=True)
    return dataclasses.replace(table, frame=kept, may_hold_lone_surrogates=False)


def _provenance_shown_safely(frame: pd.DataFrame) -> pd.DataFrame:
    """`provenance`, a file's name holding a lone surrogate shown safely."""
    rows = provenance(frame)
    files = [shown_name(f) if isinstance(f, str) else f for f in rows["source_file"]]
    rows["source_file"] = pd.Series(files, dtype=object)
    return rows


def _split_tables(run: ValidationRun, tables: list[RawTable]) -> list[RawTable]:
    """Each file a mapping splits (`[payments.split.allocations]`) -> one table per kind."""
    out: list[RawTable] = []
    for table in tables:
        kind_map = run.mapping.kind(table.file.kind) if table.file.kind in KINDS else None
        if kind_map is None or not kind_map.splits:
            out.append(table)
            continue
        parts, issues = split_table(
            table.file.kind, kind_map, with_provenance(table), table.file.name
        )
        run.issues.extend(issues)
        if not parts:
            out.append(table)
        for kind, frame in parts.items():
            file = dataclasses.replace(table.file, kind=kind or table.file.kind)
            out.append(dataclasses.replace(table, file=file, frame=frame))
    return out


def _combined(typed: dict[str, list[pd.DataFrame]]) -> dict[str, pd.DataFrame | None]:
    """Each kind's typed parts as one frame, by kind in KINDS order; None for a kind not read."""
    frames: dict[str, pd.DataFrame | None] = {}
    for kind in KINDS:
        parts = typed.get(kind)
        if parts is None:
            frames[kind] = None
        elif not parts:
            frames[kind] = empty_frame(kind)
        elif len(parts) == 1:
            frames[kind] = parts[0]
        else:
            frames[kind] = pd.concat(parts, ignore_index=True)
    return frames


# --- entry point ------------------------------------------------------------------------------


def validate_tables(
    tables: list[RawTable],
    settings: Settings,
    files: list[InputFile] | None = None,
    failures_of: SchemaFailures = schema_failures,
    on_typed: Callable[[dict[str, pd.DataFrame]], None] | None = None,
) -> Dataset:
    """Map headers, parse, schema-check, de-duplicate and cross-check every table.

    Returns every issue found (sorted); rows with an error are left out of the typed frames and
    listed in `excluded`. Raises `UsageError` only for a bad setting (column map, time zone).
    `failures_of` gives the schema check's failures of each kind's frame: pandera here, or
    what it found elsewhere (`AssumedValid`, and `pkgreport.pipeline.run`). `on_typed` is
    handed every kind's typed frame and their cells before any is checked (`TypedFrames`).
    """
    try:
        zoneinfo.ZoneInfo(settings.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {settings.timezone!r}: use an IANA name like Australia/Sydney"
        ) from exc
    run = ValidationRun(settings)
    typed: dict[str, list[pd.DataFrame]] = {}
    files = list(files) if files is not None else [t.file for t in tables]
    for table in _split_tables(run, _without_lone_surrogates(run, tables)):
        kind = table.file.kind
        if kind not in KINDS:
            run.issues.append(
                Issue(
                    "warning",
                    table.file.name,
                    None,
                    None,
                    None,
                    "is not one of the exports pkgreport reads "
                    f"({', '.join(KINDS)}) and was ignored: name the file after "
                    "its kind",
                )
            )
            continue
        frame = type_table(run, kind, table)
        typed.setdefault(kind, [])
        if frame is not None:
            typed[kind].append(frame)

    frames = _combined(typed)
    if on_typed is not None:
        on_typed(TypedFrames(frames, run.cells))
    for kind, frame in frames.items():
        if frame is not None:
            frame, repeated_id = _schema_check(run, kind, frame, failures_of(kind, frame))
            frames[kind] = collapse_duplicates(run, kind, frame, repeated_id)

    # Each id space encoded once: the checks across files look ids up by these codes, and the
    # engines join on them (`Dataset.ids`).
    ids = encode_frames(frames.get)
    release_freed_memory()  # the hashing's, which Arrow's pool would hold beside pandera's process
    ids = check_across_files(run, frames, ids)

    excluded = pd.concat(run.excluded, ignore_index=True) if run.excluded else empty_excluded()
    if run.excluded:
        rank = {k: i for i, k in enumerate(KINDS)}
        excluded = (
            excluded.assign(_rank=excluded["kind"].map(rank))
            .sort_values(["_rank", "source_file", "source_row"], kind="stable")
            .drop(columns="_rank")
            .reset_index(drop=True)
        )
        excluded = excluded.astype(EXCLUDED_DTYPES)
    issues = sorted(run.issues, key=lambda i: (*i.sort_key(), i.message, i.value or ""))
    return Dataset(
        **frames,  # type: ignore[arg-type]
        files=files,
        issues=issues,
        excluded=excluded,
        set_aside_allocations=(
            pd.concat(run.set_aside, ignore_index=True) if run.set_aside else None
        ),
        ids=ids,
    )
