"""The report's charts drawn by a process forked before the exports are read, on the second core."""

from __future__ import annotations

import os
import pickle
import struct
from types import TracebackType
from typing import TYPE_CHECKING

from pkgreport.reports.second_process import Beside

if TYPE_CHECKING:
    from pkgreport.reports.model import ChartData

_LENGTH = struct.Struct("<Q")


class ChartsBeside(Beside):
    """A forked child that imports the charting library while this process reads and computes,
    then draws.

    Started before the exports are read, the child holds none of the data; `send()` hands it the
    charts' series (a few dozen numbers) and `drawn()` receives the SVG. pygal's import and the
    drawing (a few hundredths of a second) then run beside loading instead of after it. Whatever
    goes wrong in the child, `drawn()` draws in this process instead, with the same bytes (the
    drawing is deterministic). Use as a context manager, as `Beside`.
    """

    def __init__(self, *, fork: bool = True) -> None:
        self._series: tuple[ChartData, str] | None = None
        self._series_read, self._series_write = os.pipe() if fork else (-1, -1)
        super().__init__(self._draw_in_child, fork=fork)
        if self._series_read >= 0:
            os.close(self._series_read)
            if not self.started:
                self._close_series_pipe()

    def _draw_in_child(self) -> bytes:
        os.close(self._series_write)
        from pkgreport.reports.charts import draw_charts  # the import this process is here for

        with os.fdopen(self._series_read, "rb") as pipe:
            (length,) = _LENGTH.unpack(pipe.read(_LENGTH.size))
            data, symbol = pickle.loads(pipe.read(length))
        return pickle.dumps(draw_charts(data, symbol))

    def send(self, data: ChartData, symbol: str) -> None:
        """Hand the child the series to draw (a length, then the pickled series)."""
        self._series = (data, symbol)
        if self._series_write >= 0:
            message = pickle.dumps(self._series)
            try:
                os.write(self._series_write, _LENGTH.pack(len(message)) + message)
            except OSError:  # the child is gone: `drawn()` sees it and draws here
                pass
            self._close_series_pipe()

    def drawn(self) -> dict[str, str]:
        """The charts, as SVG by name: drawn by the child, or here if it failed."""
        if self._series is None:
            raise RuntimeError("ChartsBeside.drawn() called before send()")
        data, symbol = self._series

        def draw_here() -> bytes:
            from pkgreport.reports.charts import draw_charts

            return pickle.dumps(draw_charts(data, symbol))

        self._render = draw_here  # what `result()` falls back to; the child keeps its own
        charts: dict[str, str] = pickle.loads(self.result())
        return charts

    def _close_series_pipe(self) -> None:
        if self._series_write >= 0:
            os.close(self._series_write)
            self._series_write = -1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close_series_pipe()
        super().__exit__(kind, error, trace)
