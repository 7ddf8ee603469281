"""The charts drawn by a process started before the exports are read: the same SVG as drawn here,
and drawn here instead whenever that process fails."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest

from pkgreport import pipeline
from pkgreport.config import Settings
from pkgreport.reports import publish
from pkgreport.reports.chart_process import ChartsBeside
from pkgreport.reports.charts import draw_charts
from pkgreport.reports.context import build_context
from pkgreport.reports.excel import render_workbook
from pkgreport.reports.model import ChartData, ReportContext, RollRow

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

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


@pytest.fixture(scope="module")
def sample_context() -> ReportContext:
    return build_context(pipeline.run(Settings(input_dir=SAMPLE)), title="Month end")


def test_the_child_renders_the_workbook_after_the_charts_with_the_same_bytes(
    sample_context: ReportContext,
) -> None:
    with ChartsBeside() as charts:
        charts.send(sample_context.charts, "$", workbook=sample_context)
        drawn, book = charts.drawn(), charts.workbook()
        assert charts._answer == (drawn, book)  # both came from the child
    assert drawn == draw_charts(sample_context.charts, "$")
    assert book == render_workbook(sample_context)


@pytest.mark.parametrize("fork", [True, False])
def test_a_workbook_is_rendered_here_when_the_child_died_or_was_never_forked(
    sample_context: ReportContext, fork: bool
) -> None:
    with ChartsBeside(fork=fork) as charts:
        if fork:
            os.kill(charts._pid, signal.SIGKILL)
        charts.send(sample_context.charts, "$", workbook=sample_context)
        book, drawn = charts.workbook(), charts.drawn()
        assert charts._answer == (None, None)  # nothing came from a child
    assert drawn == draw_charts(sample_context.charts, "$")
    assert book == render_workbook(sample_context)


def test_asking_for_a_workbook_never_sent_is_a_programming_error() -> None:
    with ChartsBeside() as charts:
        charts.send(DATA, "$")
        with pytest.raises(
            RuntimeError, match=r"^ChartsBeside.workbook\(\) called without a workbook sent$"
        ):
            charts.workbook()
        assert charts.drawn() == draw_charts(DATA, "$")


def test_a_small_runs_workbook_is_rendered_by_the_charts_process() -> None:
    result = pipeline.run(Settings(input_dir=SAMPLE))
    assert publish._table_rows(result) < publish.SECOND_PROCESS_MIN_ROWS
    with ChartsBeside() as charts:
        files = publish.render_outputs(result, charts=charts)
        assert charts._answer is not None and charts._answer[1]  # the child's workbook
    assert files == publish.render_outputs(result)  # rendered here, without a charts process


def test_a_workbook_the_child_cannot_render_is_rendered_here_and_raises_as_it_does_here(
    sample_context: ReportContext,
) -> None:
    first, *rest = sample_context.tables
    no_columns = dataclasses.replace(first)
    object.__setattr__(no_columns, "frame", first.frame.iloc[:, :0])  # broken once checked
    broken = dataclasses.replace(sample_context, tables=(no_columns, *rest))
    with pytest.raises(KeyError) as here:
        render_workbook(broken)
    with ChartsBeside() as charts:
        charts.send(broken.charts, "$", workbook=broken)
        assert charts.drawn() == draw_charts(broken.charts, "$")
        assert charts._answer == (None, None)  # the child failed: each is made here
        with pytest.raises(KeyError) as raised:
            charts.workbook()
    assert str(raised.value) == str(here.value)
