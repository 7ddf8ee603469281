"""pandera's schema checks run by a process forked before the exports are read, beside the engines."""

from __future__ import annotations

import os
import pickle
import threading
from types import TracebackType

import pandas as pd

from pkgreport.inputs.schemas import prepare_schemas
from pkgreport.inputs.validation import AssumedValid
from pkgreport.reports.second_process import Beside


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
        self._frames_read, self._frames_write = os.pipe() if fork else (-1, -1)
        super().__init__(self._check_in_child, fork=fork)
        if self._frames_read >= 0:
            os.close(self._frames_read)
            if not self.started:
                self._close_frames_pipe()

    def _check_in_child(self) -> bytes:
        os.close(self._frames_write)
        prepare_schemas()  # the work this process is here to do before the frames arrive
        with os.fdopen(self._frames_read, "rb") as pipe:
            assumed: AssumedValid = pickle.load(pipe)
        return pickle.dumps(assumed.failures())

    def send(self, assumed: AssumedValid) -> None:
        """Hand the child the frames to check (pickled, written by a thread: the child reads
        them only once pandera is ready, and this process goes on meanwhile). Only the first
        call sends."""
        if self._assumed is not None:
            return
        self._assumed = assumed
        if self._frames_write < 0:
            return
        message = pickle.dumps(assumed, protocol=pickle.HIGHEST_PROTOCOL)
        write_end, self._frames_write = self._frames_write, -1

        def write() -> None:
            try:
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(message)
            except OSError:  # the child is gone: `failures()` sees it and checks here
                pass

        self._writer = threading.Thread(target=write, daemon=True)
        self._writer.start()

    def failures(self) -> dict[str, pd.DataFrame]:
        """pandera's failure cases by kind: found by the child, or here if it failed."""
        assumed = self._assumed
        if assumed is None:
            raise RuntimeError("ChecksBeside.failures() called before send()")
        self._render = lambda: pickle.dumps(assumed.failures())  # `result()`'s fallback
        found: dict[str, pd.DataFrame] = pickle.loads(self.result())
        self._join_writer()
        return found

    def _join_writer(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _close_frames_pipe(self) -> None:
        if self._frames_write >= 0:
            os.close(self._frames_write)
            self._frames_write = -1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close_frames_pipe()
        super().__exit__(kind, error, trace)
        self._join_writer()
