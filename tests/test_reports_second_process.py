"""The workbook rendered by a second process: the same bytes, and any failure there surfaces
exactly as it does when rendered here."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pkgreport import pipeline
from pkgreport.config import Settings
from pkgreport.reports import publish
from pkgreport.reports.context import build_context
from pkgreport.reports.excel import render_workbook
from pkgreport.reports.second_process import Beside, Handover

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def test_the_bytes_come_back_from_the_child() -> None:
    parent = os.getpid()
    with Beside(
        lambda: f"rendered by {'child' if os.getpid() != parent else 'parent'}".encode()
    ) as b:
        assert b.result() == b"rendered by child"


def test_large_bytes_come_back_whole() -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: far more than a pipe holds at once
    with Beside(lambda: data) as beside:
        assert beside.result() == data


def test_an_error_in_the_child_is_raised_here_as_rendering_here_raises_it() -> None:
    def render() -> bytes:
        raise ValueError("the workbook could not be rendered")

    with pytest.raises(ValueError, match=r"^the workbook could not be rendered$"):
        with Beside(render) as beside:
            beside.result()


def test_a_child_that_dies_is_replaced_by_rendering_here() -> None:
    parent = os.getpid()
    calls: list[int] = []

    def render() -> bytes:
        if os.getpid() != parent:
            os._exit(9)  # killed mid-way, as by the OOM killer
        calls.append(1)
        return b"rendered here"

    with Beside(render) as beside:
        assert beside.result() == b"rendered here"
    assert calls == [1]


def test_leaving_early_stops_and_reaps_the_child() -> None:
    parent = os.getpid()

    def render() -> bytes:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGSTOP)  #: it would never finish on its own
        return b""

    with pytest.raises(RuntimeError, match=r"^the page failed$"):
        with Beside(render) as beside:
            pid = beside._pid
            assert pid
            raise RuntimeError("the page failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_without_fork_it_renders_here() -> None:
    parent = os.getpid()
    with Beside(lambda: str(os.getpid() == parent).encode(), fork=False) as beside:
        assert beside.result() == b"True"


def test_outputs_are_the_same_bytes_rendered_beside_or_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = pipeline.run(Settings(input_dir=SAMPLE))
    monkeypatch.setattr(publish, "SECOND_PROCESS_MIN_ROWS", 0)
    beside = publish.render_outputs(result)
    monkeypatch.setattr(publish, "SECOND_PROCESS_MIN_ROWS", 10**12)
    here = publish.render_outputs(result)
    assert beside == here


def test_a_handover_reaches_the_child_after_the_fork() -> None:
    handover = Handover()

    def render() -> bytes:
        handover.child_side()
        return repr(handover.receive()).encode()

    with Beside(render) as beside:
        handover.parent_side()
        handover.send({"figures": [1, 2, 3]})
        assert beside.result() == b"{'figures': [1, 2, 3]}"


def test_a_child_left_without_its_handover_fails_and_is_rendered_here() -> None:
    parent = os.getpid()
    handover = Handover()

    def render() -> bytes:
        if os.getpid() == parent:
            return b"rendered here"
        handover.child_side()
        handover.receive()  # raises EOFError: this process gave up before sending
        return b"rendered by the child"

    with Beside(render) as beside:
        handover.parent_side()
        handover.close()
        assert beside.result() == b"rendered here"


def test_receiving_what_was_never_sent_is_an_error() -> None:
    handover = Handover()
    handover.child_side()  # the only writing end closed, nothing sent
    with pytest.raises(
        EOFError, match=r"^the parent process went away before handing its value over$"
    ):
        handover.receive()


def test_the_workbooks_second_process_renders_the_same_bytes_from_its_two_passes() -> None:
    # The second process's own path, run here: every sheet and number before the figures per
    # location are handed over, then the rest; byte for byte the workbook rendered in one go.
    result = pipeline.run(Settings(input_dir=SAMPLE))
    handover = Handover()
    handover.send(result.breakdowns)  # small enough to wait in the pipe
    options = {"title": "Month end", "generated_at": None, "changes": None}
    two_passes = publish._workbook_beside(result, options, handover)
    ctx = build_context(result, **options)
    locations = next(t for t in ctx.tables if t.key == "by_location")
    assert len(locations.frame) > 1  # figures the first pass did not have
    assert two_passes == render_workbook(ctx)


def test_when_the_workbooks_process_dies_the_workbook_is_rendered_here_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This process lets the page's report context go once the page is rendered: the workbook is
    # then rendered here from a context built again, with the same bytes as rendered in one go.
    result = pipeline.run(Settings(input_dir=SAMPLE))
    monkeypatch.setattr(publish, "SECOND_PROCESS_MIN_ROWS", 10**12)
    here = publish.render_outputs(result, title="Month end")
    children: list[int] = []

    def dying(*args: object) -> bytes:
        children.append(os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("killed")

    monkeypatch.setattr(publish, "SECOND_PROCESS_MIN_ROWS", 0)
    monkeypatch.setattr(publish, "_workbook_beside", dying)
    assert publish.render_outputs(result, title="Month end") == here
    assert children == []  # only the child ran it, and died
