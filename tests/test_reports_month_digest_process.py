"""The months' digests worked out by a thread beside the engines: the same digests as working
them out here, worked out here instead whenever that thread fails, and a thread stopped when
the run is let go."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pkgreport import arrow_text
from pkgreport.config import Settings
from pkgreport.pipeline import load_dataset
from pkgreport.reports import month_digest
from pkgreport.reports.month_digest import (
    DigestsBeside,
    all_digests,
    dated_months,
    digests_beside,
    kind_digests,
    month_digests,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

Frames = dict[str, pd.DataFrame | None]


@pytest.fixture(scope="module")
def frames() -> Frames:
    dataset = load_dataset(Settings(input_dir=SAMPLE))
    return {"invoices": dataset.invoices, "payments": dataset.payments}


@pytest.fixture(autouse=True)
def collector_unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # as the workbook's process's reaping leaves it after a report


def test_the_thread_digests_what_digesting_here_digests(frames: Frames) -> None:
    here = all_digests(frames)
    invoices = frames["invoices"]
    assert invoices is not None and list(here) == ["invoices", "payments"]
    assert here["invoices"] == kind_digests(invoices, "invoices")
    assert len(here["invoices"]) >= 3 and len(here["payments"]) >= 3
    beside = DigestsBeside(frames)
    assert gc.get_freeze_count() > 0  # frozen for the engines' passes
    assert beside.result() == here
    assert not beside._thread.is_alive()


def test_only_from_the_limit_are_the_digests_worked_out_beside(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = sum(len(frame) for frame in frames.values() if frame is not None)
    assert rows < month_digest.BESIDE_MIN_ROWS
    assert digests_beside(frames) is None  # the summary works them out
    monkeypatch.setattr(month_digest, "BESIDE_MIN_ROWS", rows)
    beside = digests_beside(frames)
    assert isinstance(beside, DigestsBeside)
    assert beside.result() == all_digests(frames)


def test_a_thread_that_fails_is_replaced_by_digesting_here(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(frame: pd.DataFrame, kind: str) -> Iterator[None]:
        raise MemoryError("the thread ran out of memory")
        yield

    here = all_digests(frames)
    with monkeypatch.context() as patched:
        patched.setattr(month_digest, "_kind_steps", fails)
        beside = DigestsBeside(frames)  # the thread digests with `fails`
        beside._thread.join()
    assert beside.result() == here


def test_closing_stops_the_thread_after_the_column_it_is_on(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns: list[int] = []

    def endless(frame: pd.DataFrame, kind: str) -> Iterator[None]:
        while True:  # a column digested, then the next, never done
            columns.append(len(columns))
            yield

    here = all_digests(frames)
    with monkeypatch.context() as patched:
        patched.setattr(month_digest, "_kind_steps", endless)
        beside = DigestsBeside(frames)
        beside.close()
    assert not beside._thread.is_alive()
    done = len(columns)
    assert done >= 1 and columns == list(range(done))
    assert beside.result() == here  # worked out here: the thread left none
    assert len(columns) == done


def test_without_invoices_or_payments_there_is_nothing_to_digest(frames: Frames) -> None:
    invoices, payments = frames["invoices"], frames["payments"]
    assert invoices is not None and payments is not None
    assert all_digests({"invoices": None, "payments": None}) == {}
    assert DigestsBeside({"invoices": invoices.iloc[:0], "payments": None}).result() == {}
    only_payments: Frames = {"invoices": invoices.iloc[:0], "payments": payments}
    assert DigestsBeside(only_payments).result() == {"payments": kind_digests(payments, "payments")}


def test_rows_with_no_date_are_left_out_as_if_the_frame_had_none_of_them(frames: Frames) -> None:
    payments = frames["payments"]
    assert payments is not None
    undated = payments.assign(paid_at=payments["paid_at"].mask(np.arange(len(payments)) % 3 == 1))
    rows, month = dated_months(undated, "paid_at")
    assert 0 < len(rows) < len(undated)
    dated = undated.iloc[rows].reset_index(drop=True)
    expected = month_digests(dated, month[rows], "payment_id")
    assert kind_digests(undated, "payments") == expected
    assert expected != kind_digests(payments, "payments")


def _read_a_few_at_a_time(
    frames: Mapping[str, pd.DataFrame | None], monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[int, str]]:
    with monkeypatch.context() as patched:
        patched.setattr(arrow_text, "TEXT_ROWS", 3)
        return all_digests(frames)


def test_text_read_a_few_values_at_a_time_gives_the_same_digests(
    frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    payments = frames["payments"]
    assert payments is not None and len(payments) > 3
    assert _read_a_few_at_a_time(frames, monkeypatch) == all_digests(frames)
    # A value that is not text, in one slice of the column, sends the whole column value by
    # value (digested as it prints), the same bytes as if the column were text throughout.
    notes = payments["notes"].astype(object).copy()
    notes.iloc[-1] = 7
    with_number = {"payments": payments.assign(notes=notes)}
    notes.iloc[-1] = "7"
    as_text = {"payments": payments.assign(notes=notes)}
    digests = _read_a_few_at_a_time(with_number, monkeypatch)
    assert digests == all_digests(with_number) == all_digests(as_text)
    assert digests != all_digests({"payments": payments})
