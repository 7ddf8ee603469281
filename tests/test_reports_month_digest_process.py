"""The months' digests worked out by a process forked beside the engines: the same digests as
working them out here, and worked out here instead whenever that process fails."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.pipeline import load_dataset
from pkgreport.reports import month_digest
from pkgreport.reports.month_digest import DigestsBeside, all_digests, kind_digests

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

Frames = dict[str, pd.DataFrame | None]


@pytest.fixture(scope="module")
def frames() -> Frames:
    dataset = load_dataset(Settings(input_dir=SAMPLE))
    return {"invoices": dataset.invoices, "payments": dataset.payments}


@pytest.fixture
def beside_from_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(month_digest, "BESIDE_MIN_ROWS", 1)


def test_the_child_digests_what_digesting_here_digests(
    frames: Frames, beside_from_one_row: None
) -> None:
    here = all_digests(frames)
    invoices = frames["invoices"]
    assert invoices is not None and list(here) == ["invoices", "payments"]
    assert here["invoices"] == kind_digests(invoices, "invoices")
    assert len(here["invoices"]) >= 3 and len(here["payments"]) >= 3
    with DigestsBeside(frames) as beside:
        assert beside.started
        assert beside.digests() == here
        assert not beside.started  # joined and reaped


def test_below_the_limit_no_child_is_started_and_the_summary_digests(frames: Frames) -> None:
    rows = sum(len(frame) for frame in frames.values() if frame is not None)
    assert rows < month_digest.BESIDE_MIN_ROWS
    with DigestsBeside(frames) as beside:
        assert not beside.started
        assert beside.digests() is None


def test_a_child_that_dies_is_replaced_by_digesting_here(
    frames: Frames, beside_from_one_row: None
) -> None:
    with DigestsBeside(frames) as beside:
        os.kill(beside._pid, signal.SIGKILL)  # as by the OOM killer
        assert beside.digests() == all_digests(frames)


def test_a_child_that_fails_is_replaced_by_digesting_here(
    frames: Frames, beside_from_one_row: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(frames: Frames) -> object:
        raise MemoryError("the child ran out of memory")

    here = all_digests(frames)
    with monkeypatch.context() as patched:
        patched.setattr(month_digest, "all_digests", fails)
        beside = DigestsBeside(frames)  # the child digests with `fails`
    with beside:
        assert beside.digests() == here


def test_when_the_system_refuses_a_fork_the_summary_digests(
    frames: Frames, beside_from_one_row: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> int:
        raise OSError("fork: Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with DigestsBeside(frames) as beside:
        assert not beside.started
        assert beside.digests() is None


def test_leaving_early_stops_and_reaps_the_child(frames: Frames, beside_from_one_row: None) -> None:
    with pytest.raises(RuntimeError, match=r"^the engines failed$"):
        with DigestsBeside(frames) as beside:
            pid = beside._pid
            assert pid
            raise RuntimeError("the engines failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_without_invoices_or_payments_there_is_nothing_to_digest(
    frames: Frames, beside_from_one_row: None
) -> None:
    invoices, payments = frames["invoices"], frames["payments"]
    assert invoices is not None and payments is not None
    assert all_digests({"invoices": None, "payments": None}) == {}
    assert all_digests({"invoices": invoices.iloc[:0], "payments": None}) == {}
    only_payments: Frames = {"invoices": invoices.iloc[:0], "payments": payments}
    with DigestsBeside(only_payments) as beside:
        assert beside.started
        assert beside.digests() == {"payments": kind_digests(payments, "payments")}
