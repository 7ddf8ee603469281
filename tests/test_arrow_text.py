"""Text read out of shared pages by Arrow: the same values as taking the objects, new strings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pkgreport.arrow_text import arrow_text, rows_at, text_missing, texts_at

NAN = float("nan")


def test_texts_at_gives_the_same_values_as_new_strings_and_the_missing_as_they_were() -> None:
    values = np.array(["a1", None, NAN, "d4", "e5"], dtype=object)
    rows = np.array([3, 0, 1, 2, 3])
    taken = texts_at(values, rows)
    assert taken[:2].tolist() == ["d4", "a1"]
    assert taken[2] is None
    assert taken[3] is values[2]  # the very NaN
    assert taken[4] == "d4"
    assert taken[0] is not values[3]  # read by Arrow, not taken


def test_texts_at_takes_the_objects_where_a_wanted_row_is_not_text() -> None:
    values = np.array(["a1", 5, "c3"], dtype=object)
    assert texts_at(values, np.array([1, 2])).tolist() == [5, "c3"]
    taken = texts_at(values, np.array([2, 0]))  # the row that is not text is not read at all
    assert taken.tolist() == ["c3", "a1"]
    assert taken[0] is not values[2]


def test_rows_at_is_iloc_with_the_same_index_and_types() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3, 4],
            "text": np.array(["w1", None, "y3", "z4"], dtype=object),
            "maybe": pd.array([1, None, 3, 4], dtype="Int64"),
            "when": pd.to_datetime(["2026-01-01", None, "2026-03-01", "2026-04-01"]),
            "mixed": np.array([1, "b", None, 2.5], dtype=object),
        },
        index=[10, 11, 12, 13],
    )
    rows = np.array([3, 1, 1])
    expected = frame.iloc[rows]
    got = rows_at(frame, rows)
    pd.testing.assert_frame_equal(got, expected)
    assert got["text"].iloc[0] is not frame["text"].iloc[3]
    pd.testing.assert_frame_equal(
        rows_at(frame, rows, ["when", "text"]), expected[["when", "text"]]
    )


def test_text_missing_is_isna_and_arrow_text_refuses_what_is_not_text() -> None:
    values = np.array(["a", None, NAN, pd.NA, ""], dtype=object)
    assert text_missing(values).tolist() == pd.isna(values).tolist()
    assert arrow_text(np.array(["a", 1], dtype=object)) is None
    odd = np.array(["a", pd.NaT, 3], dtype=object)
    assert text_missing(odd).tolist() == [False, True, False]
