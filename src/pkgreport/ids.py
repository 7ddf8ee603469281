"""Integer codes for the id spaces records are joined on, made once per run at load: validation's
checks across files look ids up by them, and the engines join on them; text only in outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
    # Whether codes follow the ids' text order (else their first appearance): kept so that the
    # space renumbered after rows are left out is the one encoding what is left would give.
    text_order: bool = False

    def of(self, column: str) -> np.ndarray:
        """The codes of one column, by the name it was encoded under."""
        return self.codes[column]

    def present(self, column: str) -> np.ndarray:
        """Per code: whether any row of `column` holds that id."""
        seen = np.zeros(len(self.ids), dtype=bool)
        codes = self.codes[column]
        seen[codes[codes >= 0]] = True
        return seen

    def last_rows(self, column: str) -> np.ndarray:
        """Per code, the last row of `column` holding that id (-1 where none does), and one
        more slot, -1, which the code of a blank id (`MISSING`) picks."""
        codes = self.codes[column]
        held = np.flatnonzero(codes >= 0)
        last = np.full(len(self.ids) + 1, -1, dtype=np.int64)
        np.maximum.at(last, codes[held], held)
        return last

    def changed(self, column: str, codes: np.ndarray) -> IdSpace:
        """The space with `column`'s codes replaced (some rows left out, or an id cleared),
        renumbered as encoding every column's ids as they now are would number them."""
        columns = {**self.codes, column: codes}
        joined = np.concatenate(list(columns.values()))
        held = np.flatnonzero(joined >= 0)
        first = np.full(len(self.ids), len(joined), dtype=np.int64)
        np.minimum.at(first, joined[held], held)
        used = np.flatnonzero(first < len(joined))
        # Text order stays as it was; first appearance is found again among what is left.
        kept = used if self.text_order else used[np.argsort(first[used], kind="stable")]
        new = np.full(len(self.ids) + 1, MISSING, dtype=np.int64)
        new[kept] = np.arange(len(kept))
        dtype = np.int32 if len(kept) < 2**31 else np.int64
        return IdSpace(
            self.ids[kept],
            {name: new[c].astype(dtype) for name, c in columns.items()},
            self.text_order,
        )


def encode(columns: Mapping[str, Column], *, text_order: bool) -> IdSpace:
    """One factorization of every column of a space. With `text_order` the codes follow the ids'
    text order (Python's string order), so sorting by code sorts by id; only the distinct ids are
    ranked. Without it codes follow first appearance: for joins, which only compare them."""
    codes, uniques = _factorize(list(columns.values()))
    if text_order and len(uniques):
        rank = text_ranks(uniques, unique=True)
        ordered = np.empty_like(uniques)
        ordered[rank] = uniques
        # One more slot, which the code of a blank id picks: it stays MISSING.
        codes = np.append(rank, MISSING).astype(codes.dtype)[codes]
        uniques = ordered
    if len(uniques) < 2**31:  # held through every engine: half the memory of int64
        codes = codes.astype(np.int32, copy=False)
    bounds = np.cumsum([0] + [len(c) for c in columns.values()])
    split = {
        name: codes[start:end]
        for name, start, end in zip(columns, bounds[:-1], bounds[1:], strict=True)
    }
    return IdSpace(uniques, split, text_order)


def _factorize(columns: list[Column]) -> tuple[np.ndarray, np.ndarray]:
    """Codes (`MISSING` for blank; int32 from Arrow) of the columns one after the other, and
    the distinct ids in first-appearance order.

    Arrow hashes the UTF-8 bytes in C: exact, and about twice as fast as hashing Python strings
    (a column already held by Arrow is not even copied). Anything it cannot take as text (a
    non-string id, a lone surrogate) goes to `factorize_exact`, which gives the same codes.
    Validation encodes while pandera's process checks beside it, so the working copies are
    let go as soon as they are used: less memory held by the two processes at once."""
    try:
        chunks = [pa.array(_plain(c), type=pa.large_string(), from_pandas=True) for c in columns]
        encoded = pa.chunked_array(chunks, type=pa.large_string()).dictionary_encode()
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        texts = [np.asarray(c, dtype=object) for c in columns]
        codes, uniques = factorize_exact(
            np.concatenate(texts) if texts else np.zeros(0, dtype=object)
        )
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)
    del chunks
    if not encoded.num_chunks:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    # Chunks share one dictionary: the hashing carries on from chunk to chunk.
    dictionary = encoded.chunks[-1].dictionary
    codes = np.concatenate(
        [c.indices.fill_null(MISSING).to_numpy(zero_copy_only=False) for c in encoded.chunks]
    )
    del encoded
    if all(_plain(c).dtype == object for c in columns):
        # The first row of each id holds it as a Python string already: no new strings.
        return codes, _first_of_each(columns, codes)
    return codes, np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=object)


def _first_of_each(columns: list[Column], codes: np.ndarray) -> np.ndarray:
    """Each code's id, taken from the first row holding it. Arrow numbers ids in the order they
    first appear, so code k first appears where the largest code so far becomes k."""
    largest = np.maximum.accumulate(codes)
    rises = np.empty(len(codes), dtype=bool)
    rises[:1] = largest[:1] >= 0
    np.not_equal(largest[1:], largest[:-1], out=rises[1:])
    del largest
    first = np.flatnonzero(rises)
    bounds = np.cumsum([0] + [len(c) for c in columns])
    lows = np.searchsorted(first, bounds)
    return np.concatenate(
        [
            _plain(column)[first[low:high] - start]
            for column, start, low, high in zip(
                columns, bounds[:-1], lows[:-1], lows[1:], strict=True
            )
        ]
    )


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

    def spaces(self) -> dict[str, IdSpace]:
        return {"patients": self.patients, "cases": self.cases, "appointments": self.appointments}

    def kept(self, kind: str, keep: np.ndarray) -> RunIds:
        """The codes once only the rows of `kind` in `keep` (a mask) are left."""
        return replace(
            self,
            **{
                name: space.changed(kind, space.of(kind)[keep])
                for name, space in self.spaces().items()
                if kind in space.codes
            },
        )

    def cleared(self, space: str, kind: str, rows: np.ndarray) -> RunIds:
        """The codes once the id of `space` in the rows of `kind` in `rows` (a mask) is blank."""
        held = getattr(self, space)
        codes = np.where(rows, MISSING, held.of(kind)).astype(held.of(kind).dtype)
        return replace(self, **{space: held.changed(kind, codes)})

    def fit(self, frame_of: Callable[[str], pd.DataFrame | None]) -> bool:
        """Whether every coded column has one code per row of its frame (`frame_of(kind)`)."""
        return all(
            (frame := frame_of(kind)) is not None and len(frame) == len(codes)
            for space in self.spaces().values()
            for kind, codes in space.codes.items()
        )


# The kinds whose ids are encoded (`encode_ids`): every kind but allocations.
CODED_KINDS = ("appointments", "cases", "invoices", "payments", "patients")


def encode_frames(frame_of: Callable[[str], pd.DataFrame | None]) -> RunIds:
    """`encode_ids` of each coded kind's frame (`frame_of(kind)`, None when absent)."""
    return encode_ids(**{kind: frame_of(kind) for kind in CODED_KINDS})


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
