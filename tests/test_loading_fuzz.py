"""Fuzzing the loader: any bytes, as .csv or .xlsx, give a RawTable or issues, never an exception."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_csv_arrow import FIELD, assert_read_alike

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.loading import load_file
from pkgreport.inputs.surrogates import holds_lone_surrogate

# Small caps keep every example fast whatever hypothesis builds.
SETTINGS = Settings(max_xlsx_uncompressed_bytes=4 << 20, max_xlsx_cells=100_000)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _workbook() -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = book.add_worksheet("Appointments")
    ws.write_row(0, 0, ["id", "patient_id", "starts_at", "note"])
    ws.write_row(1, 0, ["A1", 7, 45000.5, "first\r\nvisit"])
    ws.write_datetime(
        2, 2, dt.datetime(2026, 7, 21, 3, 45), book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    )
    book.close()
    return buffer.getvalue()


WORKBOOK = _workbook()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def check(folder: Path, content: bytes, suffix: str) -> None:
    path = folder / f"appointments{suffix}"
    path.write_bytes(content)
    table, issues = load_file(path, "appointments", SETTINGS)
    assert all(isinstance(i, Issue) for i in issues)
    if table is None:
        # A file that cannot be read always says why.
        assert any(i.severity == "error" for i in issues)
        return
    frame = table.frame
    assert list(frame.columns[-2:]) == ["source_file", "source_row"]
    assert str(frame["source_row"].dtype) == "int64"
    assert (frame["source_file"] == path.name).all()
    assert frame["source_row"].is_monotonic_increasing and (frame["source_row"] >= 2).all()
    # Every reader decodes strictly: no cell or header holds a lone surrogate (U+D800..U+DFFF).
    assert not table.may_hold_lone_surrogates
    assert not any(holds_lone_surrogate(str(c)) for c in frame.columns)
    for column in frame.columns[:-2]:
        assert all(type(v) is str and not holds_lone_surrogate(v) for v in frame[column])
        assert not frame[column].str.contains("\r", regex=False).any()
    assert table.file.rows == len(frame)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_csv(folder: Path, content: bytes) -> None:
    check(folder, content, ".csv")


CSVISH = st.text(alphabet=st.sampled_from(list('ab1,;|\t"\n\r #é\x00')), max_size=120)


@FUZZ
@given(CSVISH, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_csv_like_text_in_any_supported_encoding(folder: Path, text: str, encoding: str) -> None:
    check(folder, text.encode(encoding, errors="ignore"), ".csv")


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_read_alike_with_and_without_pyarrow(folder: Path, content: bytes) -> None:
    assert_read_alike(folder / "appointments.csv", content)


@FUZZ
@given(CSVISH, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_csv_like_text_reads_alike_with_and_without_pyarrow(
    folder: Path, text: str, encoding: str
) -> None:
    assert_read_alike(folder / "appointments.csv", text.encode(encoding, errors="ignore"))


@FUZZ
@given(
    st.lists(st.lists(FIELD, min_size=1, max_size=4), min_size=1, max_size=6),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_exports_quoted_or_not_read_alike_with_and_without_pyarrow(
    folder: Path, records: list[list[str]], delimiter: str, line_end: str, quote_all: bool
) -> None:
    # Ragged, blank and quoted records, as the exports and the damage to them write them.
    def field(value: str) -> str:
        if quote_all or any(c in value for c in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = line_end.join(delimiter.join(field(v) for v in record) for record in records)
    assert_read_alike(folder / "appointments.csv", (text + line_end).encode())


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_xlsx(folder: Path, content: bytes) -> None:
    check(folder, content, ".xlsx")


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(WORKBOOK) - 1), st.integers(0, 255)), min_size=1, max_size=8
    )
)
def test_damaged_workbooks(folder: Path, flips: list[tuple[int, int]]) -> None:
    content = bytearray(WORKBOOK)
    for at, value in flips:
        content[at] = value
    check(folder, bytes(content), ".xlsx")


PARTS = {
    name: zipfile.ZipFile(io.BytesIO(WORKBOOK)).read(name)
    for name in zipfile.ZipFile(io.BytesIO(WORKBOOK)).namelist()
}
XML_PARTS = sorted(n for n in PARTS if n.startswith("xl/"))


@FUZZ
@given(st.sampled_from(XML_PARTS), st.data())
def test_damaged_xml_inside_a_sound_zip(folder: Path, part: str, data: st.DataObject) -> None:
    # Re-zipping after the damage keeps the CRCs right, so the XML reaches the reader itself.
    xml = bytearray(PARTS[part])
    for at, value in data.draw(
        st.lists(
            st.tuples(st.integers(0, len(xml) - 1), st.integers(0, 255)), min_size=1, max_size=6
        )
    ):
        xml[at] = value
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in PARTS.items():
            z.writestr(name, bytes(xml) if name == part else content)
    check(folder, out.getvalue(), ".xlsx")


@FUZZ
@given(st.integers(0, len(WORKBOOK)))
def test_truncated_workbooks(folder: Path, length: int) -> None:
    check(folder, WORKBOOK[:length], ".xlsx")


def test_the_undamaged_fuzz_workbook_loads(folder: Path) -> None:
    path = folder / "appointments.xlsx"
    path.write_bytes(WORKBOOK)
    table, issues = load_file(path, "appointments", SETTINGS)
    assert issues == [] and table is not None
    assert table.frame.values.tolist() == [
        ["A1", "7", "45000.5", "first\nvisit", "appointments.xlsx", 2],
        ["", "", "2026-07-21T03:45:00", "", "appointments.xlsx", 3],
    ]
