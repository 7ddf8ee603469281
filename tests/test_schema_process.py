"""pandera's checks run by a process started before the exports are read: the same verdict as
checking here, and checked here instead whenever that process fails."""

from __future__ import annotations

import gc
import os
import signal
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.schemas import typed_columns
from pkgreport.inputs.validation import (
    AssumedValid,
    failures_by_kind,
    schema_failures,
    validate_tables,
)
from pkgreport.schema_process import ChecksAfterTyping, ChecksBeside, failures_of_shared

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _assumed(*, break_a_row: bool = False) -> AssumedValid:
    """sample_data validated as if every frame passed; with `break_a_row`, the first case's
    maximum is 0 in the frame the checks see (pandera's `at_least_one` fails on it)."""
    settings = Settings(input_dir=SAMPLE)
    tables, _ = load_folder(SAMPLE, settings)
    assumed = AssumedValid()
    validate_tables(tables, settings, failures_of=assumed)
    if break_a_row:
        kinds = [kind for kind, _ in assumed.checked]
        cases = assumed.checked[kinds.index("cases")][1]
        cases.loc[0, "max_sessions"] = 0
    return assumed


def _cases_failure(failures: dict[str, pd.DataFrame]) -> list[tuple[object, ...]]:
    assert list(failures) == ["cases"]
    cases = failures["cases"]
    return list(cases[["column", "check", "failure_case", "index"]].itertuples(index=False))


def test_the_child_finds_what_checking_here_finds() -> None:
    for broken in (False, True):
        with ChecksBeside() as checks:
            assert checks.started
            checks.send(_assumed(break_a_row=broken))
            found = checks.failures()
        here = _assumed(break_a_row=broken).failures()
        assert list(found) == list(here)
        for kind in found:
            pd.testing.assert_frame_equal(found[kind], here[kind])
    assert _cases_failure(found) == [("max_sessions", "at_least_one", 0, 0)]


def test_a_child_that_dies_is_replaced_by_checking_here() -> None:
    with ChecksBeside() as checks:
        os.kill(checks._pid, signal.SIGKILL)  # as by the OOM killer, before the frames arrive
        checks.send(_assumed(break_a_row=True))
        assert _cases_failure(checks.failures()) == [("max_sessions", "at_least_one", 0, 0)]


def test_leaving_early_stops_and_reaps_the_child() -> None:
    with pytest.raises(RuntimeError, match=r"^the exports could not be read$"):
        with ChecksBeside() as checks:
            pid = checks._pid
            assert pid
            raise RuntimeError("the exports could not be read")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_without_fork_the_checks_run_here() -> None:
    with ChecksBeside(fork=False) as checks:
        assert not checks.started
        checks.send(_assumed())
        assert checks.failures() == {}


def test_asking_for_the_verdict_before_sending_the_frames_is_a_programming_error() -> None:
    with ChecksBeside(fork=False) as checks:
        with pytest.raises(
            RuntimeError, match=r"^ChecksBeside.failures\(\) called before send\(\)$"
        ):
            checks.failures()


def test_only_the_first_frames_sent_are_checked() -> None:
    for fork in (True, False):
        with ChecksBeside(fork=fork) as checks:
            checks.send(_assumed(break_a_row=True))
            checks.send(_assumed())
            assert _cases_failure(checks.failures()) == [("max_sessions", "at_least_one", 0, 0)]


# --- the second start point: forked once the frames are typed -----------------------------------


def _validated_after_typing(checks: ChecksAfterTyping, *, break_a_row: bool = False) -> None:
    """sample_data validated with `checks`; with `break_a_row`, the first case's maximum is 0 in
    the frames the child inherits (validation here goes on with the frames as they were)."""
    settings = Settings(input_dir=SAMPLE)
    tables, _ = load_folder(SAMPLE, settings)

    def typed(frames: dict[str, pd.DataFrame]) -> None:
        if break_a_row:
            frames = {**frames, "cases": frames["cases"].copy()}
            frames["cases"].loc[0, "max_sessions"] = 0
        checks.typed(frames)

    validate_tables(tables, settings, failures_of=checks.failures_of, on_typed=typed)


def test_a_child_forked_after_typing_finds_what_checking_here_finds() -> None:
    for broken in (False, True):
        with ChecksAfterTyping() as checks:
            assert not checks.started  # nothing to check before the frames are typed
            _validated_after_typing(checks, break_a_row=broken)
            assert checks.started
            found = checks.failures()
        here = _assumed(break_a_row=broken).failures()
        assert found is not None and list(found) == list(here)
        for kind in found:
            pd.testing.assert_frame_equal(found[kind], here[kind])
    assert found is not None and _cases_failure(found) == [("max_sessions", "at_least_one", 0, 0)]


def test_a_child_forked_after_typing_that_dies_leaves_no_verdict() -> None:
    # Its frames are gone (the steps after typing changed them): `run` validates again here.
    with ChecksAfterTyping() as checks:
        _validated_after_typing(checks, break_a_row=True)
        os.kill(checks._pid, signal.SIGKILL)
        assert checks.failures() is None


def test_without_fork_the_checks_after_typing_run_as_each_frame_comes() -> None:
    settings = Settings(input_dir=SAMPLE)

    def issues(checks: ChecksAfterTyping | None) -> list[str]:
        def typed(frames: dict[str, pd.DataFrame]) -> None:
            frames["cases"].loc[0, "max_sessions"] = 0  # in the frame validation goes on with
            if checks is not None:
                checks.typed(frames)

        tables, _ = load_folder(SAMPLE, settings)
        checked = checks.failures_of if checks is not None else schema_failures
        dataset = validate_tables(tables, settings, failures_of=checked, on_typed=typed)
        return [str(i) for i in dataset.issues if i.severity == "error"]

    with ChecksAfterTyping(fork=False) as checks:
        found = issues(checks)
        assert not checks.started
        assert checks.failures() == {}
    assert found == issues(None)
    assert found[-1] == (
        "ERROR: Cases-Cliniko-20261101.csv, row 2, column 'Max Sessions', value '0': Max "
        "Sessions must be 1 or more: leave it blank for no maximum"
    )


def test_leaving_early_stops_and_reaps_the_child_forked_after_typing() -> None:
    with pytest.raises(RuntimeError, match=r"^the engines failed$"):
        with ChecksAfterTyping() as checks:
            _validated_after_typing(checks)
            pid = checks._pid
            assert pid
            raise RuntimeError("the engines failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_the_frames_a_child_forked_after_typing_checks_are_kept_until_its_verdict() -> None:
    # Let go while the child checks, their values would be written (a reference count each) and
    # the child left holding its own copy of every page: they go once the verdict is joined.
    settings = Settings(input_dir=SAMPLE)
    tables, _ = load_folder(SAMPLE, settings)
    kept: list[weakref.ref[pd.DataFrame]] = []
    with ChecksAfterTyping() as checks:

        def typed(frames: dict[str, pd.DataFrame]) -> None:
            kept.extend(weakref.ref(frame) for frame in frames.values())
            checks.typed(frames)

        validate_tables(tables, settings, failures_of=checks.failures_of, on_typed=typed)
        gc.collect()
        assert len(kept) == 5 and all(ref() is not None for ref in kept)
        assert checks.failures() == {}
        gc.collect()
        assert [ref() for ref in kept] == [None] * 5


def test_the_cells_the_frames_were_typed_from_are_kept_until_the_verdict() -> None:
    # Let go at the end of validation, they would write the count of every id string the frames
    # share with them while the child may still be checking.
    settings = Settings(input_dir=SAMPLE)
    tables, _ = load_folder(SAMPLE, settings)
    cells = [weakref.ref(table.frame) for table in tables]
    with ChecksAfterTyping() as checks:
        validate_tables(tables, settings, failures_of=checks.failures_of, on_typed=checks.typed)
        tables.clear()
        gc.collect()
        assert len(cells) == 5 and all(ref() is not None for ref in cells)
        assert checks.failures() == {}
        gc.collect()
        assert [ref() for ref in cells] == [None] * 5


# --- the child's way: the ids pandera reads one by one, read into Arrow text first -------------

Checker = Callable[[Iterable[tuple[str, pd.DataFrame]]], dict[str, pd.DataFrame]]


def _break_every_check(frames: dict[str, pd.DataFrame]) -> None:
    """sample_data's typed frames, broken in place: blank, repeated and non-text ids, a repeated
    appointment key, a lone surrogate, a bad status, a maximum of 0 and a bad row number."""
    appointments = frames["appointments"]
    appointments.loc[0, "appointment_id"] = np.nan
    appointments.loc[2, ["appointment_id", "patient_id"]] = appointments.loc[
        1, ["appointment_id", "patient_id"]
    ].to_numpy()
    appointments.loc[3, "patient_id"] = None
    appointments.loc[4, "appointment_id"] = appointments.loc[5, "appointment_id"]  # its own patient
    appointments.loc[6, "source_row"] = 0
    cases = frames["cases"]
    cases.loc[[0, 1], "case_id"] = cases.loc[2, "case_id"]
    cases.loc[3, "max_sessions"] = 0
    cases.loc[4, "patient_id"] = np.nan
    invoices = frames["invoices"]  # a value not text: its ids are checked as Python holds them
    invoices.loc[[0, 1], "invoice_id"] = 300000777
    invoices.loc[2, "invoice_id"] = np.nan
    invoices.loc[3, "status"] = "refunded"
    invoices.loc[4, "patient_id"] = np.nan
    payments = frames["payments"]
    payments.loc[[0, 1, 2], "payment_id"] = "\udcff"  # a lone surrogate: Arrow cannot hold it
    payments.loc[3, "payment_id"] = np.nan
    patients = frames["patients"]
    patients.loc[1, "patient_id"] = patients.loc[0, "patient_id"]
    patients.loc[2, "patient_id"] = np.nan


def _checked_both_ways(checker: Checker) -> tuple[dict[str, pd.DataFrame], list[str], pd.DataFrame]:
    """sample_data validated with every check broken, the failure cases found by `checker` over
    the typed frames: those failure cases, every issue and the rows left out."""
    settings = Settings(input_dir=SAMPLE)
    tables, _ = load_folder(SAMPLE, settings)
    found: dict[str, pd.DataFrame] = {}

    def typed(frames: dict[str, pd.DataFrame]) -> None:
        _break_every_check(frames)
        found.update(checker(frames.items()))

    dataset = validate_tables(
        tables, settings, failures_of=lambda kind, _: found.get(kind), on_typed=typed
    )
    return found, [str(issue) for issue in dataset.issues], dataset.excluded


def test_reading_the_ids_into_arrow_text_gives_the_same_verdict() -> None:
    here, issues_here, excluded_here = _checked_both_ways(failures_by_kind)
    shared, issues_shared, excluded_shared = _checked_both_ways(failures_of_shared)
    assert (
        list(shared) == list(here) == ["appointments", "cases", "invoices", "payments", "patients"]
    )
    for kind in here:
        pd.testing.assert_frame_equal(shared[kind], here[kind])
        # Each value as the frame holds it (NaN and None stay apart, a number stays a number).
        assert list(map(repr, shared[kind]["failure_case"])) == list(
            map(repr, here[kind]["failure_case"])
        )
    assert issues_shared == issues_here
    pd.testing.assert_frame_equal(excluded_shared, excluded_here)
    checks = {(kind, str(c)) for kind, cases in here.items() for c in cases["check"]}
    assert checks == {
        ("appointments", "not_nullable"),
        ("appointments", "field_uniqueness"),
        ("appointments", "row_number"),
        ("cases", "not_nullable"),
        ("cases", "field_uniqueness"),
        ("cases", "at_least_one"),
        ("invoices", "not_nullable"),
        ("invoices", "field_uniqueness"),
        ("invoices", "known_status"),
        ("payments", "not_nullable"),
        ("payments", "field_uniqueness"),
        ("patients", "not_nullable"),
        ("patients", "field_uniqueness"),
    }
    assert len(issues_here) == 52
    for message in (
        "ERROR: Appointments-Cliniko-20261101.csv, row 2, column 'Appointment ID': Appointment ID "
        "is blank: every row needs one; fill it in or delete the row",
        "ERROR: Invoices-Cliniko-20261101.csv, row 5, column 'Status', value 'refunded': Status "
        "is not an invoice status (open, paid, closed, open_credit)",
        "ERROR: Patients-Cliniko-20261101.csv, row 2, column 'ID', value '1000001': ID 1000001 is "
        "used by 2 different rows: Patients-Cliniko-20261101.csv row 2 and "
        "Patients-Cliniko-20261101.csv row 3 (they differ in patient_name, first_name, last_name, "
        "reported_credit). Keep one version: correct the id or remove the out-of-date row",
    ):
        assert message in issues_here


def test_allocations_are_checked_the_same_with_their_invoice_ids_in_arrow_text() -> None:
    rows = [
        ("i1", "y1", "payment", 100),
        (np.nan, np.nan, "credit", 0),
        ("i1", "y2", "credit", 5),
        ("i2", np.nan, "payment", 5),
        ("i3", "y3", "cash", 5),
    ]
    columns: dict[str, pd.Series] = {}
    for name, dtype in typed_columns("allocations").items():
        values: list[object] = [np.nan] * len(rows)
        if name in ("invoice_id", "payment_id", "source", "amount"):
            values = [
                row[("invoice_id", "payment_id", "source", "amount").index(name)] for row in rows
            ]
        elif name == "patient_id":
            values = ["p1"] * len(rows)
        elif name == "source_file":
            values = ["allocations.csv"] * len(rows)
        elif name == "source_row":
            values = list(range(2, len(rows) + 2))
        columns[name] = pd.Series(values, dtype=dtype)
    frame = pd.DataFrame(columns)
    here = failures_by_kind([("allocations", frame)])
    shared = failures_of_shared([("allocations", frame)])
    assert list(shared) == list(here) == ["allocations"]
    pd.testing.assert_frame_equal(shared["allocations"], here["allocations"])
    assert {str(c) for c in here["allocations"]["check"]} == {
        "not_nullable",
        "positive",
        "known_source",
        "source_matches_payment",
    }
