"""The report's charts drawn by a process forked before the exports are read, on the second core;
on a small run, the workbook rendered there too."""

from __future__ import annotations

import os
import pickle
import struct
from types import TracebackType
from typing import TYPE_CHECKING

from pkgreport.reports.second_process import Beside

if TYPE_CHECKING:
    from pkgreport.reports.model import ChartData, ReportContext

_LENGTH = struct.Struct("<Q")


class ChartsBeside(Beside):
    """A forked child that imports the charting library while this process reads and computes,
    then draws.

    Started before the exports are read, the child holds none of the data; `send()` hands it the
    charts' series (a few dozen numbers) and `drawn()` receives the SVG. pygal's import and the
    drawing (a few hundredths of a second) then run beside loading instead of after it. Whatever
    goes wrong in the child, `drawn()` draws in this process instead, with the same bytes (the
    drawing is deterministic). Use as a context manager, as `Beside`.

    On a small run it renders the workbook too (`send(..., workbook=ctx)`, then `workbook()`):
    the child imports the workbook's writer while this process reads, and no third process is
    forked, nor a second report context built, for a workbook of a few hundred rows. The child
    draws first; its answer is the charts (a length, then their pickle) and then the workbook.
    """

    def __init__(self, *, fork: bool = True) -> None:
        self._series: tuple[ChartData, str] | None = None
        self._book: ReportContext | None = None
        self._answer: tuple[dict[str, str] | None, bytes | None] | None = None
        self._series_read, self._series_write = os.pipe() if fork else (-1, -1)
        super().__init__(self._draw_in_child, fork=fork)
        if self._series_read >= 0:
            os.close(self._series_read)
            if not self.started:
                self._close_series_pipe()

    def _draw_in_child(self) -> bytes:
        os.close(self._series_write)
        # The imports this process is here for, made while the other one reads the exports.
        from pkgreport.reports.charts import draw_charts
        from pkgreport.reports.excel import render_workbook

        with os.fdopen(self._series_read, "rb") as pipe:
            (length,) = _LENGTH.unpack(pipe.read(_LENGTH.size))
            data, symbol, book = pickle.loads(pipe.read(length))
        drawn = pickle.dumps(draw_charts(data, symbol))
        return _LENGTH.pack(len(drawn)) + drawn + (b"" if book is None else render_workbook(book))

    def send(self, data: ChartData, symbol: str, *, workbook: ReportContext | None = None) -> None:
        """Hand the child the series to draw, and the context of the workbook to render if one is
        given (a length, then their pickle)."""
        self._series, self._book = (data, symbol), workbook
        if self._series_write >= 0:
            message = pickle.dumps((data, symbol, workbook))
            write_end, self._series_write = self._series_write, -1
            try:
                with os.fdopen(write_end, "wb") as pipe:  # a context is more than a pipe holds
                    pipe.write(_LENGTH.pack(len(message)) + message)
            except OSError:  # the child is gone: `drawn()` sees it and draws here
                pass

    def drawn(self) -> dict[str, str]:
        """The charts, as SVG by name: drawn by the child, or here if it failed."""
        data, symbol = self._sent()
        charts = self._answered()[0]
        if charts is None:
            from pkgreport.reports.charts import draw_charts

            charts = draw_charts(data, symbol)
        return charts

    def workbook(self) -> bytes:
        """The workbook of the context given to `send()`: rendered by the child, or here if it
        failed (an error rendering it is then raised here, as rendering here raises it)."""
        self._sent()
        if self._book is None:
            raise RuntimeError("ChartsBeside.workbook() called without a workbook sent")
        book = self._answered()[1]
        if book is None:
            from pkgreport.reports.excel import render_workbook

            book = render_workbook(self._book)
        return book

    def _sent(self) -> tuple[ChartData, str]:
        if self._series is None:
            raise RuntimeError("ChartsBeside.drawn() called before send()")
        return self._series

    def _answered(self) -> tuple[dict[str, str] | None, bytes | None]:
        """The child's answer, joined once: the charts and the workbook's bytes; None for what
        the child did not give (it failed, or there was none: each is then made here)."""
        if self._answer is None:
            self._render = lambda: b""  # what `result()` gives when the child failed
            answer = self.result()
            if not answer:
                self._answer = (None, None)
            else:
                (length,) = _LENGTH.unpack_from(answer)
                charts = pickle.loads(answer[_LENGTH.size : _LENGTH.size + length])
                self._answer = (charts, answer[_LENGTH.size + length :])
        return self._answer

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
