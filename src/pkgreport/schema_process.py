"""pandera's schema checks run by a process forked before the exports are read, beside the engines."""

from __future__ import annotations

import pickle
import threading
from types import TracebackType

import pandas as pd

from pkgreport.inputs.schemas import prepare_schemas
from pkgreport.inputs.validation import AssumedValid
from pkgreport.reports.second_process import Beside, Handover


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

    def __init__(self, *, fork: bool = True) -> None:
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

    def send(self, assumed: AssumedValid) -> None:
        """Hand the child the frames to check. A thread writes them: the child reads them only
        once pandera is ready, and this process goes on meanwhile. Only the first call sends."""
        if self._assumed is not None:
            return
        self._assumed = assumed
        if self.started:
            self._writer = threading.Thread(target=self._frames.send, args=(assumed,))
            self._writer.start()

    def failures(self) -> dict[str, pd.DataFrame]:
        """pandera's failure cases by kind: found by the child, or here if it failed."""
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
