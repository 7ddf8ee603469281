"""A folder read by a thread while validation types each table (`inputs/folder_reading.py`):
the same tables, issues, dataset and run as reading the whole folder first."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from pkgreport import pipeline
from pkgreport.config import Settings
from pkgreport.errors import InputError
from pkgreport.inputs import folder_reading
from pkgreport.inputs.folder_reading import FolderReading
from pkgreport.inputs.loading import load_folder
from pkgreport.inputs.tables import RawTable
from pkgreport.result import Dataset, RunResult

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
_HERE = Path(__file__).resolve()
CORPUS = next(
    (
        c
        for c in (_HERE.parents[2] / "shared" / "corpus", _HERE.parents[1] / "shared" / "corpus")
        if (c / "MANIFEST.md").is_file()
    ),
    None,
)


def _assert_same_tables(beside: list[RawTable], first: list[RawTable]) -> None:
    assert [t.file for t in beside] == [t.file for t in first]
    for a, b in zip(beside, first, strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame)
        assert (a.may_hold_scientific, a.longest_cell_bytes) == (
            b.may_hold_scientific,
            b.longest_cell_bytes,
        )


def _assert_same_dataset(beside: Dataset, first: Dataset) -> None:
    assert beside.files == first.files
    assert beside.issues == first.issues
    for kind in ("appointments", "cases", "invoices", "payments", "allocations", "patients"):
        a, b = beside.frame(kind), first.frame(kind)
        assert (a is None) == (b is None), kind
        if a is not None and b is not None:
            pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(beside.excluded, first.excluded)
    if first.set_aside_allocations is None:
        assert beside.set_aside_allocations is None
    else:
        assert beside.set_aside_allocations is not None
        pd.testing.assert_frame_equal(beside.set_aside_allocations, first.set_aside_allocations)


def _validated_both_ways(folder: Path) -> tuple[Dataset, Dataset, list[list[RawTable]]]:
    """The folder validated as a thread reads it, and read whole first; with the tables each
    way and what the reading handed `on_read` (in the thread that iterated)."""
    settings = Settings(input_dir=folder)
    announced: list[list[RawTable]] = []

    def on_read(tables: list[RawTable]) -> None:
        assert threading.current_thread() is threading.main_thread()
        announced.append(list(tables))

    reading = FolderReading(folder, settings, on_read)
    beside = pipeline._validated(reading, reading.issues, settings)
    tables, load_issues = load_folder(folder, settings)
    first = pipeline._validated(tables, load_issues, settings)
    _assert_same_tables(reading.tables, tables)
    assert reading.issues == load_issues
    return beside, first, announced


def test_a_folder_validated_as_it_is_read_is_the_folder_read_first() -> None:
    beside, first, announced = _validated_both_ways(SAMPLE)
    _assert_same_dataset(beside, first)
    assert len(first.files) == 5 and not first.errors
    assert [[t.file.name for t in tables] for tables in announced] == [
        [f.name for f in first.files]
    ]


@pytest.mark.skipif(CORPUS is None, reason="the shared corpus folder is not beside the repository")
def test_the_corpus_beside_the_sample_validates_the_same_as_it_is_read(tmp_path: Path) -> None:
    # Files refused, ignored, read by pandas or by pyarrow, beside exports that type: every
    # issue, row left out and frame as reading first gives them.
    assert CORPUS is not None
    for path in SAMPLE.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    kinds = ("appointments", "invoices", "payments", "patients", "cases")
    corpus = sorted([*CORPUS.glob("*.csv"), *CORPUS.glob("*.tsv")])
    for n, path in enumerate(corpus):  # named as an export of each kind in turn
        shutil.copy(path, tmp_path / f"{kinds[n % len(kinds)]}-{path.name}")
    beside, first, _ = _validated_both_ways(tmp_path)
    _assert_same_dataset(beside, first)
    assert len(first.files) >= 20 and len(first.errors) >= 20  # most read, many refused
    assert first.appointments is not None and len(first.appointments) > 1000


def test_a_reading_is_iterated_once() -> None:
    reading = FolderReading(SAMPLE, Settings(input_dir=SAMPLE), lambda _: None)
    assert len(list(reading)) == 5
    with pytest.raises(RuntimeError) as error:
        list(reading)
    assert str(error.value) == "a folder's reading is iterated once: keep its `tables`"


def test_the_next_files_strings_wait_until_validation_asks_for_it() -> None:
    # pyarrow's parse of the next file runs beside the typing of a table, its Python strings
    # not (they would sit between the typed frames' objects): while a table is held, the next
    # is not handed on however long it is held; asked for, it comes.
    reading = FolderReading(SAMPLE, Settings(input_dir=SAMPLE), lambda _: None)
    tables = iter(reading)
    first = next(tables)
    reading._thread.join(timeout=1.0)  # the whole sample is read in well under a second
    assert reading._thread.is_alive() and reading._arrived.empty()
    assert [first.file.name, *(t.file.name for t in tables)] == [
        t.file.name for t in reading.tables
    ]
    assert len(reading.tables) == 5 and not reading._thread.is_alive()


def test_an_iteration_left_unfinished_lets_the_reading_end() -> None:
    reading = FolderReading(SAMPLE, Settings(input_dir=SAMPLE), lambda _: None)
    tables = iter(reading)
    next(tables)
    tables.close()  # as when the loop over the tables is left
    reading._thread.join(timeout=10.0)
    assert not reading._thread.is_alive()
    assert len(reading.tables) == 5


def _fails_after_one_table(*args: object, **kwargs: object) -> object:
    tables, _ = load_folder(SAMPLE, Settings(input_dir=SAMPLE))
    on_table = kwargs["on_table"]
    assert callable(on_table)
    on_table(tables[0])
    raise RuntimeError("reading stopped")


def test_an_error_while_reading_ends_the_iteration_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_reading, "load_folder", _fails_after_one_table)
    announced: list[object] = []
    reading = FolderReading(SAMPLE, Settings(input_dir=SAMPLE), announced.append)
    seen: list[str] = []
    with pytest.raises(RuntimeError) as error:
        for table in reading:
            seen.append(table.file.name)
    assert str(error.value) == "reading stopped"
    assert seen == ["Appointments-Cliniko-20261101.csv"] and announced == []


def _read_beside(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` takes the large folder's way: each table validated while the next is read."""
    monkeypatch.setattr(pipeline, "SCHEMA_BESIDE_MAX_BYTES", 0)


def test_a_reading_error_is_raised_before_an_error_of_validation_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading first raised the reading's error before validation began: so it is here.
    def stops(*args: object, **kwargs: object) -> object:
        raise RuntimeError("validation stopped")

    _read_beside(monkeypatch)
    monkeypatch.setattr(folder_reading, "load_folder", _fails_after_one_table)
    monkeypatch.setattr(pipeline, "validate_tables", stops)
    shown: list[str] = []
    with pytest.raises(RuntimeError) as error:
        pipeline.run(Settings(input_dir=SAMPLE), progress=shown.append)
    assert str(error.value) == "reading stopped"
    assert shown == []


def test_an_error_of_validation_itself_follows_the_reading_and_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stops(*args: object, **kwargs: object) -> object:
        raise RuntimeError("validation stopped")

    _read_beside(monkeypatch)
    monkeypatch.setattr(pipeline, "validate_tables", stops)
    shown: list[str] = []
    with pytest.raises(RuntimeError) as error:
        pipeline.run(Settings(input_dir=SAMPLE), progress=shown.append)
    assert str(error.value) == "validation stopped"
    assert len(shown) == 1 and shown[0].startswith("read 5 file(s): Appointments-Cliniko")


def _sample_with_payment_row(folder: Path, row: str) -> Path:
    for path in SAMPLE.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        if path.name.startswith("Payments"):
            text += row + "\n"
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def _outcome(folder: Path) -> tuple[object, list[str]]:
    shown: list[str] = []
    try:
        result: object = pipeline.run(Settings(input_dir=folder), progress=shown.append)
    except InputError as exc:
        result = (str(exc), [str(i) for i in exc.issues])
    return result, shown


@pytest.mark.parametrize("amount", [None, "$950.00", "$951.00"])
def test_a_large_folders_run_is_the_run_of_the_folder_read_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amount: str | None
) -> None:
    # Clean; a copied row pandera flags (validated again with its failures); an id two rows
    # use (an error): the same result or error, and the same messages, either way.
    folder = SAMPLE
    if amount is not None:
        row = f"390000042,900022,29/07/2026 16:00,{amount},Credit Card,Pre-payment: 10-session package,"
        folder = _sample_with_payment_row(tmp_path, row)
    monkeypatch.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", 0)  # read first, checked once typed
    first, first_shown = _outcome(folder)
    _read_beside(monkeypatch)
    beside, beside_shown = _outcome(folder)
    assert beside_shown == first_shown and len(first_shown) >= 1
    if amount == "$951.00":
        assert beside == first
        assert isinstance(first, tuple) and first[0].startswith("1 problem(s) in the inputs")
        return
    assert isinstance(beside, RunResult) and isinstance(first, RunResult)
    _assert_same_dataset(beside.dataset, first.dataset)
    pd.testing.assert_frame_equal(beside.findings, first.findings)
    assert beside.credit is not None and first.credit is not None
    pd.testing.assert_frame_equal(beside.credit.patients, first.credit.patients)
