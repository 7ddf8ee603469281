"""The months' digests worked out by a process forked beside the rendering: the same digests as
working them out here, and worked out here instead whenever that process fails."""

from __future__ import annotations

import gc
import os
import pickle
import signal
from pathlib import Path

import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.pipeline import load_dataset
from pkgreport.reports import month_digest
from pkgreport.reports.month_digest import (
    DigestsBeside,
    all_digests,
    digests_beside,
    kind_digests,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

Frames = dict[str, pd.DataFrame | None]


@pytest.fixture(scope="module")
def frames() -> Frames:
    dataset = load_dataset(Settings(input_dir=SAMPLE))
    return {"invoices": dataset.invoices, "payments": dataset.payments}


@pytest.fixture(autouse=True)
def collector_unfrozen() -> object:
    yield
    gc.unfreeze()  # as the workbook's process's reaping leaves it after a report


def test_the_child_digests_what_digesting_here_digests(frames: Frames) -> None:
    here = all_digests(frames)
    invoices = frames["invoices"]
    assert invoices is not None and list(here) == ["invoices", "payments"]
    assert here["invoices"] == kind_digests(invoices, "invoices")
    assert len(here["invoices"]) >= 3 and len(here["payments"]) >= 3
    beside = DigestsBeside(frames)
    assert beside._child.started
    assert dict(beside) == here
    assert not beside._child.started  # joined and reaped
    assert gc.get_freeze_count() > 0  # frozen again for the workbook's process


def test_only_from_the_limit_are_the_digests_worked_out_beside(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = sum(len(frame) for frame in frames.values() if frame is not None)
    assert rows < month_digest.BESIDE_MIN_ROWS
    assert digests_beside(frames) is None  # the summary works them out
    monkeypatch.setattr(month_digest, "BESIDE_MIN_ROWS", rows)
    beside = digests_beside(frames)
    assert isinstance(beside, DigestsBeside) and beside._child.started
    assert dict(beside) == all_digests(frames)


def test_a_child_that_dies_is_replaced_by_digesting_here(frames: Frames) -> None:
    beside = DigestsBeside(frames)
    os.kill(beside._child._pid, signal.SIGKILL)  # as by the OOM killer
    assert dict(beside) == all_digests(frames)


def test_a_child_that_fails_is_replaced_by_digesting_here(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(frames: Frames) -> object:
        raise MemoryError("the child ran out of memory")

    here = all_digests(frames)
    with monkeypatch.context() as patched:
        patched.setattr(month_digest, "all_digests", fails)
        beside = DigestsBeside(frames)  # the child digests with `fails`
    assert dict(beside) == here


def test_when_the_system_refuses_a_fork_the_digests_are_worked_out_here(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> int:
        raise OSError("fork: Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    beside = DigestsBeside(frames)
    assert not beside._child.started
    assert dict(beside) == all_digests(frames)
    assert gc.get_freeze_count() == 0  # nothing was frozen for a child


def test_closing_stops_and_reaps_the_child_and_the_digests_are_then_worked_out_here(
    frames: Frames,
) -> None:
    beside = DigestsBeside(frames)
    pid = beside._child._pid
    assert pid
    beside.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert dict(beside) == all_digests(frames)


def test_letting_go_unread_stops_and_reaps_the_child(frames: Frames) -> None:
    beside = DigestsBeside(frames)
    pid = beside._child._pid
    assert pid
    del beside
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_pickled_it_is_the_plain_dict_of_its_digests(frames: Frames) -> None:
    copy = pickle.loads(pickle.dumps(DigestsBeside(frames)))
    assert type(copy) is dict
    assert copy == all_digests(frames)


def test_without_invoices_or_payments_there_is_nothing_to_digest(frames: Frames) -> None:
    invoices, payments = frames["invoices"], frames["payments"]
    assert invoices is not None and payments is not None
    assert all_digests({"invoices": None, "payments": None}) == {}
    assert dict(DigestsBeside({"invoices": invoices.iloc[:0], "payments": None})) == {}
    only_payments: Frames = {"invoices": invoices.iloc[:0], "payments": payments}
    assert dict(DigestsBeside(only_payments)) == {"payments": kind_digests(payments, "payments")}
