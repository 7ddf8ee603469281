"""What the report's tables share: column constructors, patient names and finding titles."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    have no name in the patients export, usually none.
    """

    def __init__(self, result: RunResult) -> None:
        ds = result.dataset
        self._patients = first_names(ds.patients)
        self._appointments = ds.appointments

    def lookup(self, ids: pd.Series) -> pd.Series:
        mapped = ids.map(self._patients)
        missing = (mapped.isna() & ids.notna()).to_numpy()
        if missing.any() and self._appointments is not None:
            appts = self._appointments
            wanted = appts["patient_id"].isin(ids[missing].unique())
            fallback = first_names(appts.loc[wanted.to_numpy()])
            mapped = mapped.where(~missing, ids.map(fallback))
        # Names are text even when none exists anywhere: an all-blank column must still accept
        # a label such as the roll-forward's "All patients" (ids.map gives float NaN otherwise).
        return mapped.astype(object)


def with_names(
    frame: pd.DataFrame, names: PatientNames, rows: pd.Series | None = None
) -> pd.DataFrame:
    """A copy of `frame` with patient_name filled in where blank (only on `rows` when given).

    Only the blank rows are looked up: the engines' tables come with names, so at 125,000
    patients this skips hashing every id of each table and, when some patient is missing from
    the patients export, a search of every appointment.
    """
    out = frame.copy()
    ids = out["patient_id"] if rows is None else out["patient_id"].where(rows)
    if "patient_name" not in out:
        out["patient_name"] = names.lookup(ids)
        return out
    named = out["patient_name"].notna()
    blank = ~named.to_numpy()
    mapped = pd.Series(np.nan, index=out.index, dtype=object)
    if blank.any():
        mapped[blank] = names.lookup(ids[blank]).to_numpy()
    out["patient_name"] = out["patient_name"].where(named, mapped)
    return out
