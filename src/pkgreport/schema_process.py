"""pandera's schema checks run by a forked process beside validation's other steps and the engines:
forked before the exports are read (a small folder), or once the frames are typed (a large one)."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from types import TracebackType

import pandas as pd

from pkgreport.inputs.schemas import prepare_schemas
from pkgreport.inputs.validation import AssumedValid, failures_by_kind, schema_failures
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

        This process keeps the frames until the verdict is joined (`failures()`): a frame
        validation replaces (rows left out, a column put right) is then let go once the child
        is gone. Let go while it checks, its every value would be written (a reference count
        each), and the child would end up holding its own copy of every page written (about
        0.4 GB at 1M rows)."""
        if self._can_fork and hasattr(os, "fork") and not self.started:
            self._typed = frames
            self._render = self._check_typed
            self._start()

    def _check_typed(self) -> bytes:
        return pickle.dumps(failures_by_kind(self._typed.items()))

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
