"""Integer codes for the id spaces the engines join on, made once per run; text only in outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from pkgreport.engine._arrays import factorize_exact, text_ranks

MISSING = -1  # the code of a blank id

# A column of ids as a frame holds it (object or Arrow-backed text) or as an array.
Column: TypeAlias = "pd.Series | np.ndarray"


@dataclass(frozen=True)
class IdSpace:
    """One id space: its distinct ids (`ids[code]`) and, per column holding them, each row's code
    (`MISSING` where blank; int32 below 2**31 ids). Equal text, equal code, in every column of
    the space."""

    ids: np.ndarray
    codes: Mapping[str, np.ndarray]

    def of(self, column: str) -> np.ndarray:
        """The codes of one column, by the name it was encoded under."""
        return self.codes[column]

    def present(self, column: str) -> np.ndarray:
        """Per code: whether any row of `column` holds that id."""
        seen = np.zeros(len(self.ids), dtype=bool)
        codes = self.codes[column]
        seen[codes[codes >= 0]] = True
        return seen


def encode(columns: Mapping[str, Column], *, text_order: bool) -> IdSpace:
    """One factorization of every column of a space. With `text_order` the codes follow the ids'
    text order (Python's string order), so sorting by code sorts by id; only the distinct ids are
    ranked. Without it codes follow first appearance: for joins, which only compare them."""
    codes, uniques = _factorize(list(columns.values()))
    if text_order and len(uniques):
        rank = text_ranks(uniques, unique=True)
        ordered = np.empty_like(uniques)
        ordered[rank] = uniques
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], MISSING)
        uniques = ordered
    if len(uniques) < 2**31:  # held through every engine: half the memory of int64
        codes = codes.astype(np.int32)
    bounds = np.cumsum([0] + [len(c) for c in columns.values()])
    split = {
        name: codes[start:end]
        for name, start, end in zip(columns, bounds[:-1], bounds[1:], strict=True)
    }
    return IdSpace(uniques, split)


def _factorize(columns: list[Column]) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int64, `MISSING` for blank) of the columns one after the other, and the distinct
    ids in first-appearance order.

    Arrow hashes the UTF-8 bytes in C: exact, and about twice as fast as hashing Python strings
    (a column already held by Arrow is not even copied). Anything it cannot take as text (a
    non-string id, a lone surrogate) goes to `factorize_exact`, which gives the same codes."""
    try:
        chunks = [pa.array(_plain(c), type=pa.large_string(), from_pandas=True) for c in columns]
        encoded = pa.chunked_array(chunks, type=pa.large_string()).dictionary_encode()
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        texts = [np.asarray(c, dtype=object) for c in columns]
        codes, uniques = factorize_exact(
            np.concatenate(texts) if texts else np.zeros(0, dtype=object)
        )
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)
    if not encoded.num_chunks:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    # Chunks share one dictionary: the hashing carries on from chunk to chunk.
    codes = np.concatenate(
        [c.indices.fill_null(MISSING).to_numpy(zero_copy_only=False) for c in encoded.chunks]
    ).astype(np.int64, copy=False)
    dictionary = encoded.chunks[-1].dictionary
    if all(_plain(c).dtype == object for c in columns):
        # The first row of each id holds it as a Python string already: no new strings.
        values = np.concatenate([_plain(c) for c in columns])
        first = np.empty(len(dictionary), dtype=np.int64)
        rows = np.flatnonzero(codes >= 0)[::-1]
        first[codes[rows]] = rows
        uniques = values[first]
    else:
        uniques = np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return codes, uniques


def _plain(column: Column) -> Column:
    """An object column as its numpy array (Arrow reads that faster than the Series)."""
    if isinstance(column, pd.Series) and column.dtype == object:
        return column.to_numpy()
    return column


def compact(space_size: int, *codes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Renumber the codes that `codes` use to 0..k-1, keeping their order: the space's codes
    (`kept`, so `space.ids[kept]` are the ids) and each array recoded (`MISSING` stays)."""
    used = np.zeros(space_size, dtype=bool)
    for c in codes:
        used[c[c >= 0]] = True
    kept = np.flatnonzero(used)
    new = np.full(space_size, MISSING, dtype=np.int64)
    new[kept] = np.arange(len(kept))
    return kept, [np.where(c >= 0, new[np.maximum(c, 0)], MISSING) for c in codes]


def _column(frame: pd.DataFrame | None, column: str) -> pd.Series | None:
    if frame is None or column not in frame.columns:
        return None
    return frame[column]


@dataclass(frozen=True)
class RunIds:
    """The id spaces of one dataset, each column keyed by its frame's name ("invoices", ...):

    * ``patients``: patient_id of cases, invoices, payments, patients (text order: the engines'
      outputs are sorted by patient id; the appointments' are left out, as no engine joins all
      of them by patient, and they would add a fifth to the cost);
    * ``cases``: case_id of cases, appointments, invoices (text order: cases sort by it);
    * ``appointments``: appointment_id of appointments, invoices (first appearance: joins only).

    A frame that is absent (or lacks the column) has no entry.
    """

    patients: IdSpace
    cases: IdSpace
    appointments: IdSpace


def encode_ids(
    *,
    appointments: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    invoices: pd.DataFrame | None = None,
    payments: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
) -> RunIds:
    """Encode each id space of these frames once (every engine then joins on integers)."""
    frames = {
        "appointments": appointments,
        "cases": cases,
        "invoices": invoices,
        "payments": payments,
        "patients": patients,
    }

    def space(column: str, kinds: tuple[str, ...], *, text_order: bool) -> IdSpace:
        found = {kind: _column(frames[kind], column) for kind in kinds}
        return encode({k: v for k, v in found.items() if v is not None}, text_order=text_order)

    return RunIds(
        patients=space(
            "patient_id", ("cases", "invoices", "payments", "patients"), text_order=True
        ),
        cases=space("case_id", ("cases", "appointments", "invoices"), text_order=True),
        appointments=space("appointment_id", ("appointments", "invoices"), text_order=False),
    )
