"""Looking ids up across files: each id's row, exactly as a plain loop finds it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.inputs.cross_checks import _find

IDS = st.one_of(st.sampled_from(["1", "01", "2", "é3", "1 ", "x" * 40]), st.just(np.nan))


def last_row_of(keys: list[object], ids: list[object]) -> list[int]:
    """The reference: each id's last row among `keys`; -1 for a blank id or one not there."""
    rows = []
    for ident in ids:
        found = [i for i, key in enumerate(keys) if not pd.isna(ident) and key == ident]
        rows.append(found[-1] if found else -1)
    return rows


@settings(max_examples=200, deadline=None)
@given(st.lists(IDS, max_size=12), st.lists(IDS, max_size=12))
def test_each_id_is_found_at_its_last_row(keys: list[object], ids: list[object]) -> None:
    frame = pd.DataFrame({"case_id": pd.Series(keys, dtype=object)})
    wanted = pd.Series(ids, dtype=object)
    assert _find(frame, "case_id", wanted).tolist() == last_row_of(keys, ids)


def test_ids_that_are_not_text_are_found_too() -> None:
    frame = pd.DataFrame({"case_id": pd.Series(["7", 7, "8", 7], dtype=object)})
    wanted = pd.Series([7, "8", "7", np.nan, 9], dtype=object)
    assert _find(frame, "case_id", wanted).tolist() == [3, 2, 0, -1, -1]
