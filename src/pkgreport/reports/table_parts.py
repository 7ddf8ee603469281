"""What the report's tables share: column constructors, patient names and finding titles."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pkgreport.arrow_text import arrow_text, text_missing
from pkgreport.reports import figures
from pkgreport.reports.model import Column
from pkgreport.result import RunResult


def column(
    key: str,
    title: str,
    kind: str = "text",
    width: int | None = None,
    total: bool = True,
    *,
    secondary: bool = False,
) -> Column:
    """A column of a report table, its options in `Column`'s order."""
    return Column(key, title, kind, width, total, secondary)  # type: ignore[arg-type]


def id_column(key: str, title: str) -> Column:
    """An id column: text, after the figures, off the phone and the printed page."""
    return column(key, title, "id", secondary=True)


def row_number_column(key: str, title: str) -> Column:
    """A spreadsheet row number: looked up, not added, so no total and no thousands separator."""
    return Column(key, title, "int", total=False, secondary=True, grouped=False)


def finding_title(code: str) -> str:
    """The finding's title from the registry (the code itself for one the registry lacks)."""
    return figures.FINDING_TEXT.get(code, (code,))[0]


def finding_titles(codes: pd.Series) -> pd.Series:
    """Each cell's comma-joined finding codes as their titles from the registry, joined by "; ".

    Cells repeat (most are blank), so each distinct cell is translated once.
    """

    def titles(joined: object) -> str:
        if not isinstance(joined, str) or not joined:
            return ""
        return "; ".join(finding_title(code) for code in joined.split(", "))

    position, distinct = pd.factorize(codes.astype(object), use_na_sentinel=False)
    translated = np.array([titles(cell) for cell in distinct], dtype=object)
    return pd.Series(translated[position], index=codes.index, dtype=object)


def first_names(frame: pd.DataFrame | None) -> pd.Series:
    """patient_id -> the first non-blank patient_name of `frame` in row order."""
    if frame is None or "patient_name" not in frame.columns:
        return pd.Series(dtype=object)
    named = frame.loc[frame["patient_name"].notna(), ["patient_id", "patient_name"]]
    return (
        named.drop_duplicates("patient_id").set_index("patient_id")["patient_name"].astype(object)
    )


class PatientNames:
    """patient_id -> name, from the patients export, else the patient's first named appointment.

    The appointments (a million rows at scale) are searched only for the patients shown that
    have no name in the patients export, usually none. Ids are looked up by Arrow where it
    takes them as text: it reads the ids and names without writing to them, where pandas'
    hashing would copy each page holding one in the workbook's forked process
    (`arrow_text.arrow_text`); the same names either way.
    """

    def __init__(self, result: RunResult) -> None:
        ds = result.dataset
        self._export = ds.patients
        self._appointments = ds.appointments

    @cached_property
    def _patients(self) -> pd.Series:
        return first_names(self._export)

    @cached_property
    def _arrow(self) -> tuple[pa.Array, pa.Array] | None:
        """The export's ids (null in a row without a name) and names as Arrow text; None where
        Arrow cannot take them, or a named row has no id (which pandas would match)."""
        frame = self._export
        if frame is None or "patient_name" not in frame.columns:
            return None
        names = arrow_text(frame["patient_name"].to_numpy(dtype=object))
        if names is None:
            return None
        unnamed = names.is_null().to_numpy(zero_copy_only=False)
        ids = arrow_text(frame["patient_id"].to_numpy(dtype=object), unnamed)
        if ids is None or ids.null_count != names.null_count:
            return None
        return ids, names

    def lookup(self, ids: pd.Series, wanted: np.ndarray | None = None) -> pd.Series:
        """The name of each id (of the `wanted` rows only, when given; NaN where none)."""
        found = self._by_arrow(ids, wanted)
        if found is None:
            found = self._by_hash(ids if wanted is None else ids.where(wanted))
        mapped, missing = found
        if missing.any() and self._appointments is not None:
            appts = self._appointments
            wanted_ids = appts["patient_id"].isin(ids[missing].unique())
            fallback = first_names(appts.loc[wanted_ids.to_numpy()])
            mapped = mapped.where(~missing, ids.map(fallback))
        # Names are text even when none exists anywhere: an all-blank column must still accept
        # a label such as the roll-forward's "All patients" (ids.map gives float NaN otherwise).
        return mapped.astype(object)

    def _by_hash(self, ids: pd.Series) -> tuple[pd.Series, np.ndarray]:
        """Each id's name in the export, and which ids have none there."""
        mapped = ids.map(self._patients)
        return mapped, (mapped.isna() & ids.notna()).to_numpy()

    def _by_arrow(
        self, ids: pd.Series, wanted: np.ndarray | None
    ) -> tuple[pd.Series, np.ndarray] | None:
        """`_by_hash` by Arrow (the unwanted rows: NaN, never missing); None where it cannot."""
        if self._arrow is None:
            return None
        keys, names = self._arrow
        query = arrow_text(ids.to_numpy(dtype=object), None if wanted is None else ~wanted)
        if query is None:
            return None
        positions = pc.index_in(query, value_set=keys, skip_nulls=True)
        named = names.take(positions).to_numpy(zero_copy_only=False)
        unfound = positions.is_null().to_numpy(zero_copy_only=False)
        named[unfound] = np.nan
        missing = unfound & query.is_valid().to_numpy(zero_copy_only=False)
        return pd.Series(named, index=ids.index, dtype=object), missing


def with_names(
    frame: pd.DataFrame, names: PatientNames, rows: pd.Series | None = None
) -> pd.DataFrame:
    """A copy of `frame` with patient_name filled in where blank (only on `rows` when given).

    Only the blank rows are looked up: the engines' tables come with names, so at 125,000
    patients this skips hashing every id of each table and, when some patient is missing from
    the patients export, a search of every appointment. The copy shares the frame's columns
    (the callers only ever set whole columns), and the blanks are found by Arrow: a deep copy,
    or pandas testing each name, would take every id and name of the table, which in the
    workbook's forked process copies each page holding one.
    """
    out = frame.copy(deep=False)
    ids = out["patient_id"]
    wanted = None if rows is None else rows.to_numpy(dtype=bool)
    if "patient_name" not in out:
        out["patient_name"] = names.lookup(ids, wanted)
        return out
    blank = text_missing(out["patient_name"].to_numpy(dtype=object))
    if blank.any():
        mapped = names.lookup(ids, blank if wanted is None else blank & wanted)
        out["patient_name"] = out["patient_name"].where(~blank, mapped)
    return out
