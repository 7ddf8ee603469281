"""Id codes made once at load and kept as rows are left out: always the codes that encoding what
is left would give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.config import Settings
from pkgreport.ids import MISSING, IdSpace, RunIds, encode, encode_ids
from pkgreport.pipeline import dataset_ids, load_dataset
from pkgreport.result import Dataset

IDS = st.one_of(st.sampled_from(["1", "01", "2", "é3", "1 ", "x" * 40, "10"]), st.just(np.nan))
KINDS = ("appointments", "cases", "invoices", "payments", "patients")
COLUMNS = ("patient_id", "case_id", "appointment_id")


def frames_of(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    frames = {}
    for kind in KINDS:
        n = draw(st.integers(0, 8))
        frames[kind] = pd.DataFrame(
            {
                c: pd.Series(draw(st.lists(IDS, min_size=n, max_size=n)), dtype=object)
                for c in COLUMNS
            }
        )
    return frames


@st.composite
def frames_and_masks(draw: st.DrawFn) -> tuple[dict[str, pd.DataFrame], str, np.ndarray]:
    frames = frames_of(draw)
    kind = draw(st.sampled_from(KINDS))
    n = len(frames[kind])
    mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return frames, kind, mask


def assert_same(got: RunIds, expected: RunIds) -> None:
    for name in ("patients", "cases", "appointments"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.ids.tolist() == b.ids.tolist(), name
        assert {k: (v.dtype, v.tolist()) for k, v in a.codes.items()} == {
            k: (v.dtype, v.tolist()) for k, v in b.codes.items()
        }, name
        assert a.text_order == b.text_order


@settings(max_examples=200, deadline=None)
@given(frames_and_masks())
def test_leaving_rows_out_gives_the_codes_of_what_is_left(
    drawn: tuple[dict[str, pd.DataFrame], str, np.ndarray],
) -> None:
    frames, kind, keep = drawn
    kept = encode_ids(**frames).kept(kind, keep)
    left = {**frames, kind: frames[kind][keep].reset_index(drop=True)}
    assert_same(kept, encode_ids(**left))
    assert kept.fit(left.get)


@settings(max_examples=200, deadline=None)
@given(frames_and_masks())
def test_clearing_a_case_id_gives_the_codes_of_the_blank(
    drawn: tuple[dict[str, pd.DataFrame], str, np.ndarray],
) -> None:
    frames, kind, rows = drawn
    if kind not in ("appointments", "cases", "invoices"):
        kind = "appointments"
        rows = np.zeros(len(frames[kind]), dtype=bool)
    cleared = encode_ids(**frames).cleared("cases", kind, rows)
    blanked = frames[kind].copy()
    blanked.loc[rows, "case_id"] = np.nan
    assert_same(cleared, encode_ids(**{**frames, kind: blanked}))


def test_each_code_finds_the_last_row_holding_its_id() -> None:
    space = IdSpace(
        np.array(["a", "b", "c"], dtype=object),
        {"cases": np.array([1, MISSING, 0, 1], dtype=np.int32)},
    )
    # Per code, then the slot a blank id's code picks.
    assert space.last_rows("cases").tolist() == [2, 3, -1, -1]


def test_codes_fit_only_frames_of_their_lengths() -> None:
    frames = {kind: pd.DataFrame({c: ["1", "2"] for c in COLUMNS}) for kind in KINDS}
    ids = encode_ids(**frames)
    assert ids.fit(frames.get)
    assert not ids.fit({**frames, "invoices": frames["invoices"].iloc[:1]}.get)
    assert not ids.fit({**frames, "cases": None}.get)


def _sample_edited(tmp_path: Path, edit: Callable[[str, list[str]], list[str]]) -> Dataset:
    """The sample clinic validated with each export's lines (header first) as `edit(name,
    lines)` gives them."""
    sample = Path(__file__).resolve().parents[1] / "sample_data"
    for path in sample.glob("*.csv"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (tmp_path / path.name).write_text("".join(edit(path.name, lines)), encoding="utf-8")
    return load_dataset(Settings(input_dir=tmp_path))


def test_validation_hands_on_the_codes_of_the_frames_it_keeps(tmp_path: Path) -> None:
    """The sample clinic with a case and some patients not exported: the checks across files
    leave out the appointments of that case and the invoices and payments of those patients,
    and the codes validation hands the engines are those of the rows kept."""

    def unexported(name: str, lines: list[str]) -> list[str]:
        if name.startswith(("Patients", "Cases")):
            return lines[:1] + lines[6:]  # the first five records not exported
        return lines

    dataset = _sample_edited(tmp_path, unexported)
    left_out = {
        (i.file.split("-")[0], i.column) for i in dataset.errors if "is not in the" in i.message
    }
    assert left_out == {
        ("Appointments", "Patient Case"),
        ("Invoices", "Patient ID"),
        ("Payments", "Patient ID"),
    }
    assert dataset.ids is not None
    assert_same(dataset.ids, dataset_ids(replace(dataset, ids=None)))


def test_codes_are_those_of_the_rows_the_duplicate_checks_keep(tmp_path: Path) -> None:
    """The sample clinic with an invoice and an appointment repeated exactly (copies, counted
    once) and an invoice id used by two different rows (both left out): validation hands on
    the codes of the rows kept, as encoding them afresh gives."""

    def repeated(name: str, lines: list[str]) -> list[str]:
        if name.startswith(("Invoices", "Appointments")):
            lines = [*lines, lines[3]]  # an exact copy
        if name.startswith("Invoices"):
            lines = [*lines, lines[5].replace(",Paid,", ",Open,", 1)]  # its id, other content
        return lines

    dataset = _sample_edited(tmp_path, repeated)
    copies = sorted(
        (kind, reason.split(" row")[0])
        for kind, reason in dataset.excluded[["kind", "reason"]].itertuples(index=False)
        if kind in ("invoices", "appointments") and reason.startswith("exact copy of")
    )
    assert copies == [
        ("appointments", "exact copy of Appointments-Cliniko-20261101.csv"),
        ("invoices", "exact copy of Invoices-Cliniko-20261101.csv"),
    ]
    clashes = [i for i in dataset.errors if "is used by 2 different rows" in i.message]
    assert [i.file for i in clashes] == ["Invoices-Cliniko-20261101.csv"]
    assert dataset.ids is not None
    assert_same(dataset.ids, dataset_ids(replace(dataset, ids=None)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(IDS, max_size=10), min_size=1, max_size=3), st.booleans())
def test_encoding_numbers_ids_as_a_plain_loop_does(
    columns: list[list[object]], text_order: bool
) -> None:
    """The reference: ids numbered in the order they first appear (or in text order), blank
    ones MISSING, equal text one code across every column."""
    seen: list[str] = []
    for value in (v for column in columns for v in column):
        if not pd.isna(value) and value not in seen:
            seen.append(value)
    if text_order:
        seen.sort()
    space = encode(
        {f"c{j}": pd.Series(column, dtype=object) for j, column in enumerate(columns)},
        text_order=text_order,
    )
    assert space.ids.tolist() == seen
    for j, column in enumerate(columns):
        expected = [MISSING if pd.isna(v) else seen.index(v) for v in column]
        assert space.of(f"c{j}").tolist() == expected
        assert space.of(f"c{j}").dtype == np.int32
