"""pandera's schema checks run by a forked process beside validation's other steps and the engines:
forked before the exports are read (a small folder), or once the frames are typed (a large one)."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

import numpy as np
import pandas as pd

from pkgreport.arrow_text import arrow_text
from pkgreport.inputs.schemas import arrow_id_columns, prepare_schemas
from pkgreport.inputs.validation import AssumedValid, schema_failures
from pkgreport.memory import release_freed_memory
from pkgreport.reports.second_process import Beside, Handover


class _Pending:
    """The verdict not yet joined."""


_PENDING = _Pending()


class ChecksBeside(Beside):
    """A forked child that imports pandera and builds its schemas while this process reads the
    exports, then checks the typed frames validation went ahead with (`AssumedValid`).

    pandera's import and the registration of its backends (about 0.3 s) then run on the second
    core while this process reads, validates and computes; `send()` hands the child the frames
    as they were checked and `failures()` receives pandera's failure cases by kind (empty when
    every frame passed: the checks themselves take a few hundredths of a second). Whatever goes
    wrong in the child, `failures()` runs the checks in this process instead, with the same
    verdict. Use as a context manager, as `Beside`.
    """

    # Whether the run joins the verdict before the engines run (and so computes nothing when a
    # check failed) rather than after them.
    verdict_before_engines = False
    # Validation's `on_typed`: nothing, the frames are sent once validated (`send`).
    on_typed: Callable[[dict[str, pd.DataFrame]], None] | None = None

    def __init__(self, *, fork: bool = True) -> None:
        self._verdict: dict[str, pd.DataFrame] | _Pending | None = _PENDING
        self._going_ahead = AssumedValid()
        self._assumed: AssumedValid | None = None
        self._writer: threading.Thread | None = None
        self._frames = Handover()
        super().__init__(self._check_in_child, fork=fork)
        if self.started:
            self._frames.parent_side()
        else:
            self._frames.close()

    def _check_in_child(self) -> bytes:
        self._frames.child_side()
        prepare_schemas()  # the work this process is here to do before the frames arrive
        assumed: AssumedValid = self._frames.receive()
        return pickle.dumps(assumed.failures())

    def failures_of(self, kind: str, frame: pd.DataFrame) -> pd.DataFrame | None:
        """Validation's `failures_of`: every frame is assumed to pass, and kept as it was
        checked for `send()` (`AssumedValid`)."""
        self._going_ahead(kind, frame)
        return None

    def send(self, assumed: AssumedValid | None = None) -> None:
        """Hand the child the frames to check: those `failures_of` kept, unless others are
        given. A thread writes them: the child reads them only once pandera is ready, and this
        process goes on meanwhile. Only the first call sends."""
        if self._assumed is not None:
            return
        self._assumed = assumed = assumed if assumed is not None else self._going_ahead
        if self.started:
            self._writer = threading.Thread(target=self._frames.send, args=(assumed,))
            self._writer.start()

    def failures(self) -> dict[str, pd.DataFrame] | None:
        """pandera's failure cases by kind: found by the child, or here if it failed. None only
        from a `ChecksAfterTyping` whose child failed: the frames it checked are gone. Joined
        once; a second call gives the same verdict."""
        if isinstance(self._verdict, _Pending):
            self._verdict = self._joined()
        return self._verdict

    def _joined(self) -> dict[str, pd.DataFrame] | None:
        assumed = self._assumed
        if assumed is None:
            raise RuntimeError("ChecksBeside.failures() called before send()")
        self.fall_back_to(lambda: pickle.dumps(assumed.failures()))
        found: dict[str, pd.DataFrame] = pickle.loads(self.result())
        self._join_writer()
        return found

    def _join_writer(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        super().__exit__(kind, error, trace)  # a child still checking is stopped first
        self._join_writer()  # its pipe closed, a pending write fails at once
        self._frames.close()


class ChecksAfterTyping(ChecksBeside):
    """`ChecksBeside` started at its second point: forked once validation has typed every frame
    (`validate_tables`' `on_typed`), for a folder too large to hand its frames down a pipe.

    The child inherits the typed frames copy-on-write, as they were before any step after
    typing changed them, imports pandera and checks them; this process goes on with
    `failures_of`, which assumes every frame passes while the child checks. `send()` is then
    nothing to do, and `failures()` joins the verdict: None when the child failed (validate
    again with pandera here). Without a fork, `failures_of` runs pandera here as each frame
    comes, and `failures()` is empty.
    """

    # At 1M rows the child checks in about as long as de-duplication and the cross-checks take
    # here, so waiting for it before the engines costs little, and a failed check (an exact
    # copy of a row, say) does not compute the figures twice.
    verdict_before_engines = True

    def __init__(self, *, fork: bool = True) -> None:
        self._can_fork = fork
        self._typed: dict[str, pd.DataFrame] = {}
        self.on_typed = self.typed
        super().__init__(fork=False)

    def typed(self, frames: dict[str, pd.DataFrame]) -> None:
        """Validation's `on_typed`: fork the child that checks these frames.

        This process keeps the frames, and the exports' cells they were typed from
        (`TypedFrames`), until the verdict is joined (`failures()`): a frame validation replaces
        (rows left out, a column put right), and the cells once validation is done, are then
        let go once the child is gone. Let go while it checks, their every value would be
        written (a reference count each), and the child would end up holding its own copy of
        every page written (about 0.4 GB at 1M rows)."""
        if self._can_fork and hasattr(os, "fork") and not self.started:
            self._typed = frames
            self._render = self._check_typed
            self._start()

    def _check_typed(self) -> bytes:
        return pickle.dumps(failures_of_shared(self._typed.items()))

    def failures_of(self, kind: str, frame: pd.DataFrame) -> pd.DataFrame | None:
        """Validation's `failures_of`: None while the child checks, else pandera here."""
        return None if self.started else schema_failures(kind, frame)

    def send(self, assumed: AssumedValid | None = None) -> None:
        """Nothing to hand over: the child inherited its frames."""

    def _joined(self) -> dict[str, pd.DataFrame] | None:
        if not self.started:  # never forked: `failures_of` checked here
            return {}
        self.fall_back_to(lambda: pickle.dumps(None))
        found: dict[str, pd.DataFrame] | None = pickle.loads(self.result())
        self._typed = {}  # the child is gone (`typed`)
        return found


def failures_of_shared(checked: Iterable[tuple[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """`failures_by_kind` of frames this process shares copy-on-write with the one that typed
    them (`ChecksAfterTyping`), with the same failure cases: the ids pandera reads one by one
    (`arrow_id_columns`: a string of its own in every row for a kind's own id) are read into
    Arrow text first, a frame at a time.

    Testing a Python string for a blank or a repeat writes its reference count, and every page
    written is then held twice, once by each process (about 0.2 GB of ids at 1M rows); Arrow
    reads the strings without a write. The frames' own columns are kept as they are: letting
    one go would write the count of every string it holds."""
    found = {}
    for kind, frame in checked:
        cases = _failures_reading_ids_by_arrow(kind, frame)
        release_freed_memory()  # the Arrow text and its sorting, before the next frame's
        if cases is not None:
            found[kind] = cases
    return found


def _failures_reading_ids_by_arrow(kind: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    ids = {}
    for column in arrow_id_columns(kind):
        text = None
        if column in frame and frame[column].dtype == object:
            text = arrow_text(frame[column].to_numpy())
        if text is not None:  # else a value that is not text: that column is checked as it is
            ids[column] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=frame.index)
    if not ids:
        return schema_failures(kind, frame)
    # The other columns as they are: a copy of an object column would write each value's count.
    checked = pd.DataFrame({name: ids.get(name, frame[name]) for name in frame.columns}, copy=False)
    cases = schema_failures(kind, checked, arrow_ids=True)
    return None if cases is None else _values_as_held(cases, frame, list(ids))


def _values_as_held(cases: pd.DataFrame, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """pandera's failure cases with each value of `columns` as the frame holds it (a blank id is
    NaN there, <NA> in Arrow text): only the failing rows are read."""
    at = (cases["column"].isin(columns) & cases["index"].notna()).to_numpy()
    if not at.any():
        return cases
    values = cases["failure_case"].to_numpy(dtype=object, copy=True)
    rows = frame.index.get_indexer(cases.loc[at, "index"].astype(np.int64))
    for column in columns:
        of_column = (cases.loc[at, "column"] == column).to_numpy()
        where = np.flatnonzero(at)[of_column]
        values[where] = frame[column].to_numpy()[rows[of_column]]
    return cases.assign(failure_case=pd.Series(values, index=cases.index, dtype=object))
