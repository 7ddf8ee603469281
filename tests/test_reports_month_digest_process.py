"""The months' digests worked out by a process forked beside the engines: the same digests as
working them out here, and worked out here instead whenever that process fails."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest

from pkgreport.config import Settings
from pkgreport.pipeline import load_dataset
from pkgreport.reports.month_digest import DigestsBeside, all_digests, kind_digests
from pkgreport.result import Dataset

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_dataset(Settings(input_dir=SAMPLE))


def _frames(dataset: Dataset) -> dict[str, object]:
    return {"invoices": dataset.invoices, "payments": dataset.payments}


def test_the_child_digests_what_digesting_here_digests(dataset: Dataset) -> None:
    here = all_digests(_frames(dataset))  # type: ignore[arg-type]
    assert list(here) == ["invoices", "payments"]
    assert here["invoices"] == kind_digests(dataset.invoices, "invoices")  # type: ignore[arg-type]
    assert len(here["invoices"]) >= 3 and len(here["payments"]) >= 3
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    assert beside._child.started
    assert dict(beside) == here
    assert not beside._child.started  # joined and reaped


def test_a_child_that_dies_is_replaced_by_digesting_here(dataset: Dataset) -> None:
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    os.kill(beside._child._pid, signal.SIGKILL)  # as by the OOM killer
    assert dict(beside) == all_digests(_frames(dataset))  # type: ignore[arg-type]


def test_a_child_that_fails_is_replaced_by_digesting_here(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(frames: object) -> object:
        raise MemoryError("the child ran out of memory")

    here = all_digests(_frames(dataset))  # type: ignore[arg-type]
    with monkeypatch.context() as patched:
        patched.setattr("pkgreport.reports.month_digest.all_digests", fails)
        beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
        os.waitid(os.P_PID, beside._child._pid, os.WEXITED | os.WNOWAIT)  # the child is done
    assert dict(beside) == here


def test_when_the_system_refuses_a_fork_the_digests_are_worked_out_here(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> int:
        raise OSError("fork: Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    assert not beside._child.started
    assert dict(beside) == all_digests(_frames(dataset))  # type: ignore[arg-type]


def test_closing_stops_and_reaps_the_child_and_the_digests_are_then_worked_out_here(
    dataset: Dataset,
) -> None:
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    pid = beside._child._pid
    assert pid
    beside.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert dict(beside) == all_digests(_frames(dataset))  # type: ignore[arg-type]


def test_letting_go_unread_stops_and_reaps_the_child(dataset: Dataset) -> None:
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    pid = beside._child._pid
    del beside
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_pickled_it_is_the_plain_dict_of_its_digests(dataset: Dataset) -> None:
    beside = DigestsBeside(_frames(dataset))  # type: ignore[arg-type]
    copy = pickle.loads(pickle.dumps(beside))
    assert type(copy) is dict
    assert copy == all_digests(_frames(dataset))  # type: ignore[arg-type]


def test_without_invoices_or_payments_there_is_nothing_to_digest(dataset: Dataset) -> None:
    for frames in ({"invoices": None, "payments": None}, {"invoices": dataset.invoices.iloc[:0]}):  # type: ignore[union-attr]
        assert all_digests(frames) == {}  # type: ignore[arg-type]
        assert dict(DigestsBeside(frames)) == {}  # type: ignore[arg-type]
    only = {"invoices": None, "payments": dataset.payments}
    assert list(DigestsBeside(only)) == ["payments"]  # type: ignore[arg-type]
