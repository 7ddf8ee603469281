"""The charts drawn by a process started before the exports are read: the same SVG as drawn here,
and drawn here instead whenever that process fails."""

from __future__ import annotations

import os
import signal

import pytest

from pkgreport.reports.chart_process import ChartsBeside
from pkgreport.reports.charts import draw_charts
from pkgreport.reports.model import ChartData, RollRow

DATA = ChartData(
    ageing=(("0-30", 12_500), ("31-60", 4_000), ("61-90", 0)),
    utilisation=(("0-25%", 3), ("26-50%", 5), ("51-75%", 2), ("76-100%", 7)),
    rollforward=(
        RollRow("Sep 2026", 10_000, 50_000, -20_000, -5_000, 35_000),
        RollRow("Oct 2026", 35_000, 12_000, -30_000, 0, 17_000),
    ),
    unlimited=4,
)


def test_the_child_draws_the_same_charts_as_this_process() -> None:
    with ChartsBeside() as charts:
        assert charts.started
        charts.send(DATA, "A$")
        drawn = charts.drawn()
    assert list(drawn) == ["ageing", "utilisation", "rollforward"]
    assert drawn == draw_charts(DATA, "A$")


def test_empty_series_draw_no_chart() -> None:
    with ChartsBeside() as charts:
        charts.send(ChartData(), "$")
        assert charts.drawn() == {}


def test_a_child_that_dies_is_replaced_by_drawing_here() -> None:
    with ChartsBeside() as charts:
        os.kill(charts._pid, signal.SIGKILL)  # as by the OOM killer, before the series arrive
        charts.send(DATA, "$")
        assert charts.drawn() == draw_charts(DATA, "$")


def test_leaving_early_stops_and_reaps_the_child() -> None:
    with pytest.raises(RuntimeError, match=r"^the exports could not be read$"):
        with ChartsBeside() as charts:
            pid = charts._pid
            assert pid
            raise RuntimeError("the exports could not be read")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_without_fork_the_charts_are_drawn_here() -> None:
    with ChartsBeside(fork=False) as charts:
        assert not charts.started
        charts.send(DATA, "$")
        assert charts.drawn() == draw_charts(DATA, "$")


def test_asking_for_the_charts_before_sending_the_series_is_a_programming_error() -> None:
    with ChartsBeside(fork=False) as charts:
        with pytest.raises(RuntimeError, match=r"^ChartsBeside.drawn\(\) called before send\(\)$"):
            charts.drawn()
