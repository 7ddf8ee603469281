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
    draws first and sends the charts down a pipe of their own (a length, then their pickle), so
    the page is rendered while the child renders the workbook, whose bytes come back as `Beside`'s.
    """

    def __init__(self, *, fork: bool = True) -> None:
        self._series: tuple[ChartData, str] | None = None
        self._book: ReportContext | None = None
        self._charts: dict[str, str] | None = None
        self._book_bytes: bytes | None = None
        # What this process made itself because the child did not give it ("charts", "workbook").
        self.made_here: list[str] = []
        self._series_read, self._series_write = os.pipe() if fork else (-1, -1)
        self._drawn_read, self._drawn_write = os.pipe() if fork else (-1, -1)
        super().__init__(self._draw_in_child, fork=fork)
        if self._series_read >= 0:
            os.close(self._series_read)
            os.close(self._drawn_write)
            if not self.started:
                self._close_series_pipe()
                self._close_drawn_pipe()

    def _draw_in_child(self) -> bytes:
        os.close(self._series_write)
        os.close(self._drawn_read)
        # The imports this process is here for, made while the other one reads the exports.
        from pkgreport.reports.charts import draw_charts
        from pkgreport.reports.excel import render_workbook

        with os.fdopen(self._series_read, "rb") as pipe:
            (length,) = _LENGTH.unpack(pipe.read(_LENGTH.size))
            data, symbol, book = pickle.loads(pipe.read(length))
        drawn = pickle.dumps(draw_charts(data, symbol))
        with os.fdopen(self._drawn_write, "wb") as pipe:  # the charts first: the page waits
            pipe.write(_LENGTH.pack(len(drawn)) + drawn)
        return b"" if book is None else render_workbook(book)

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
        if self._series is None:
            raise RuntimeError("ChartsBeside.drawn() called before send()")
        if self._charts is None:
            charts = self._charts_from_child()
            if charts is None:
                from pkgreport.reports.charts import draw_charts

                self.made_here.append("charts")
                charts = draw_charts(*self._series)
            self._charts = charts
            if self._book is None:  # nothing more to come: the child is joined
                self._render = lambda: b""
                self.result()
        return self._charts

    def workbook(self) -> bytes:
        """The workbook of the context given to `send()`: rendered by the child, or here if it
        failed (an error rendering it is then raised here, as rendering here raises it)."""
        self.drawn()  # the child answers the charts first
        book = self._book
        if book is None:
            raise RuntimeError("ChartsBeside.workbook() called without a workbook sent")
        if self._book_bytes is None:

            def render_here() -> bytes:
                from pkgreport.reports.excel import render_workbook

                self.made_here.append("workbook")
                return render_workbook(book)

            self._render = render_here  # what `result()` falls back to
            self._book_bytes = self.result()
        return self._book_bytes

    def _charts_from_child(self) -> dict[str, str] | None:
        """The charts the child sent (a length, then their pickle); None if it sent none."""
        if self._drawn_read < 0:
            return None
        read_end, self._drawn_read = self._drawn_read, -1
        with os.fdopen(read_end, "rb") as pipe:
            header = pipe.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                return None
            (length,) = _LENGTH.unpack(header)
            message = pipe.read(length)
        if len(message) < length:
            return None
        charts: dict[str, str] = pickle.loads(message)
        return charts

    def _close_drawn_pipe(self) -> None:
        if self._drawn_read >= 0:
            os.close(self._drawn_read)
            self._drawn_read = -1

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
        self._close_drawn_pipe()
        super().__exit__(kind, error, trace)
