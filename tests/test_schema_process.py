"""pandera's checks run by a process started before the exports are read: the same verdict as
checking here, and checked here instead whenever that process fails."""

from __future__ import annotations

import gc
import os
import signal
import weakref
from pathlib import Path

import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.validation import AssumedValid, schema_failures, validate_tables
from pkgreport.schema_process import ChecksAfterTyping, ChecksBeside

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
