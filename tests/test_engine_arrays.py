"""The shared numpy idioms of the engines, each exact on its own."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd

from pkgreport.engine._arrays import (
    end_of_day,
    group_cumsum,
    is_among,
    live_mask,
    run_starts,
    sum_by,
    text_ranks,
)


def test_end_of_day_is_the_first_instant_of_the_next_day():
    assert end_of_day(date(2026, 12, 31)) == np.datetime64("2027-01-01T00:00:00", "ns")


def test_group_cumsum_restarts_at_each_group():
    groups = np.array([0, 0, 0, 1, 1, 2])
    values = np.array([5, -2, 10, 7, 1, 3], dtype=np.int64)
    assert group_cumsum(groups, values).tolist() == [5, 3, 13, 7, 8, 3]


def test_sum_by_is_exact_past_two_to_the_53():
    big = 2**53 + 1
    assert sum_by(np.array([1, 1]), np.array([big, 2], dtype=np.int64), 3).tolist() == [
        0,
        big + 2,
        0,
    ]


def test_run_starts():
    assert run_starts(np.array([4, 4, 2, 2, 2, 4])).tolist() == [0, 2, 5]
    assert run_starts(np.array([], dtype=np.int64)).tolist() == []


def test_text_ranks_are_dense_in_python_string_order():
    values = np.array(["b", "a10", "a9", "b", "A"], dtype=object)
    assert text_ranks(values).tolist() == [3, 1, 2, 3, 0]


def test_text_ranks_keep_ids_apart_that_differ_only_by_a_trailing_nul():
    # numpy's fixed-width strings drop trailing NULs: "c\x00" would tie with "c" there.
    values = np.array(["c\x00", "c", "b"], dtype=object)
    assert text_ranks(values).tolist() == [2, 1, 0]


def test_live_mask_leaves_out_deleted_and_archived_rows():
    stamp = pd.Timestamp("2026-10-01")
    frame = pd.DataFrame(
        {
            "deleted_at": pd.Series([pd.NaT, stamp, pd.NaT, pd.NaT], dtype="datetime64[ns]"),
            "archived_at": pd.Series([pd.NaT, pd.NaT, stamp, pd.NaT], dtype="datetime64[ns]"),
        }
    )
    assert live_mask(frame).tolist() == [True, False, False, True]
    assert live_mask(pd.DataFrame({"x": [1, 2]})).tolist() == [True, True]


def test_the_ageing_check_survives_python_dash_o():
    """The ageing invariant is a real check: `python -O` strips an `assert`."""
    script = (
        "import pandas as pd\n"
        "from pkgreport.engine.liability import _check_buckets_add_up\n"
        "bad = pd.DataFrame({'patient_id': ['p1'], 'credit': [500], '0-30': [400]})\n"
        "try:\n"
        "    _check_buckets_add_up(bad, ['0-30'])\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, check=True
    )
    assert run.stdout == "ageing buckets do not add up to the patients' credit\n"


def test_text_ranks_agree_with_python_sorting_on_repeats_and_odd_text():
    values = np.array(["b", "a\x00", "a", "b", "é", "a\x00", "Z", "10", "9"], dtype=object)
    distinct = sorted(set(values.tolist()))
    expected = [distinct.index(v) for v in values.tolist()]
    assert text_ranks(values).tolist() == expected
    assert text_ranks(values[:0]).tolist() == []


def test_is_among_compares_texts_exactly_and_matches_missing_only_when_asked() -> None:
    wanted = np.array(["7", "x\x00", None], dtype=object)
    values = np.array(["7", "07", "x", "x\x00", None, np.nan], dtype=object)
    # By Arrow (every value text), and by pandas (a lone surrogate Arrow cannot hold): the same.
    surrogate = np.array([*values, "\ud800"], dtype=object)
    for among in (values, surrogate):
        expected = [True, False, False, True]
        assert is_among(among, wanted, missing_matches=False).tolist()[:6] == [
            *expected,
            False,
            False,
        ]
        assert is_among(among, wanted, missing_matches=True).tolist()[:6] == [
            *expected,
            True,
            True,
        ]
    assert is_among(surrogate, wanted, missing_matches=True).tolist()[6] is False
