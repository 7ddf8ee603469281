"""Reading CSV with pyarrow: only text every parser reads alike, and exactly what pandas reads."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.errors import Issue
from pkgreport.inputs.csv_arrow import quotes_are_unambiguous, read_text_columns
from pkgreport.inputs.csv_reading import load_csv
from pkgreport.inputs.tables import RawTable


def both_readings(
    path: Path, data: bytes
) -> tuple[tuple[RawTable | None, list[Issue]], tuple[RawTable | None, list[Issue]]]:
    path.write_bytes(data)
    return (
        load_csv(path, "appointments", data, use_arrow=True),
        load_csv(path, "appointments", data, use_arrow=False),
    )


def assert_read_alike(path: Path, data: bytes) -> None:
    """pyarrow's reading and the reading without it give the same table and the same issues."""
    (arrow_table, arrow_issues), (plain_table, plain_issues) = both_readings(path, data)
    assert arrow_issues == plain_issues
    if plain_table is None:
        assert arrow_table is None
        return
    assert arrow_table is not None
    assert arrow_table.file == plain_table.file
    assert arrow_table.may_hold_scientific == plain_table.may_hold_scientific
    # Columns whose values repeat are held as codes (`category`); their values are the same `str`.
    coded = {c: object for c, t in arrow_table.frame.dtypes.items() if t == "category"}
    pd.testing.assert_frame_equal(arrow_table.frame.astype(coded), plain_table.frame)
    if arrow_table.longest_cell_bytes is not None:
        # Skipping the check for overlong cells is safe only if no cell is longer.
        texts = arrow_table.frame.drop(columns=["source_file", "source_row"])
        longest = max((len(v) for column in texts for v in texts[column]), default=0)
        assert arrow_table.longest_cell_bytes >= longest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n", False),
        ('a,b\n"1,5",2\n', True),
        ('"a",b\r\n"x ""y""",""\r\n', True),
        ('a,b\n"one\ntwo",2\n', True),
        ('a,b\n"""",2\n', True),
        ('a,b\n="1",2\n', None),  # a quote inside an unquoted field
        ('a,b\n"1"x,2\n', None),  # text after a closing quote
        ('a,b\n "1",2\n', None),  # a space before an opening quote
        ('a,b\n"1,2\n', None),  # never closed
        ('a,b\n"1""",2"\n', None),
    ],
)
def test_only_rfc_4180_quoting_counts_as_unambiguous(text: str, expected: bool | None) -> None:
    assert quotes_are_unambiguous(text.encode(), ",") is expected


def test_text_stays_as_written(tmp_path: Path) -> None:
    data = b'id,code,note\n007,NA,NULL\n008,,"a, ""b"""\n009,n/a,\n'
    result = read_text_columns(data, ",", 3)
    assert result is not None
    assert [column.tolist() for column in result.columns] == [
        ["id", "007", "008", "009"],
        ["code", "NA", "", "n/a"],
        ["note", "NULL", 'a, "b"', ""],
    ]
    assert all(type(v) is str for column in result.columns for v in column)
    assert result.longest_cell_bytes == 6
    assert_read_alike(tmp_path / "appointments.csv", data)


def test_values_that_repeat_are_held_as_codes_and_ids_as_text(tmp_path: Path) -> None:
    rows = "".join(f"{100 + i},{'yes' if i % 3 else 'no'},00{i % 2}\r\n" for i in range(60))
    data = ("ID,Arrived,Code\r\n" + rows).encode()
    assert_read_alike(tmp_path / "appointments.csv", data)
    (table, issues), _ = both_readings(tmp_path / "appointments.csv", data)
    assert issues == [] and table is not None
    assert {c: str(t) for c, t in table.frame.dtypes.items()} == {
        "ID": "object",
        "Arrived": "category",
        "Code": "category",
        "source_file": "object",
        "source_row": "int64",
    }
    assert table.frame["Arrived"].tolist() == ["yes" if i % 3 else "no" for i in range(60)]
    assert table.frame["Code"].tolist() == [f"00{i % 2}" for i in range(60)]


def test_crlf_and_cr_inside_a_quoted_value_become_lf(tmp_path: Path) -> None:
    data = b'ID,Notes\r\n1,"one\r\ntwo\rthree\r\r\n"\r2,x\r\n'
    result = read_text_columns(data, ",", 2)
    assert result is not None
    assert result.columns[1].tolist() == ["Notes", "one\ntwo\nthree\n\n", "x"]
    assert_read_alike(tmp_path / "appointments.csv", data)
    (table, issues), _ = both_readings(tmp_path / "appointments.csv", data)
    assert issues == [] and table is not None
    assert table.frame["Notes"].tolist() == ["one\ntwo\nthree\n\n", "x"]
    assert table.frame["source_row"].tolist() == [2, 3]


@pytest.mark.parametrize("ending", [b"", b"\r"])
def test_a_last_row_without_a_line_break_is_named_as_before(ending: bytes, tmp_path: Path) -> None:
    data = b"a,b\r1,2\r3,4" + ending
    assert read_text_columns(data, ",", 2) is not None
    assert_read_alike(tmp_path / "appointments.csv", data)
    (_, issues), _ = both_readings(tmp_path / "appointments.csv", data)
    assert [(i.severity, i.row, i.column, i.value) for i in issues] == (
        [("warning", 3, "b", "4")] if not ending else []
    )


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\n1,2\n3\n",  # a short row
        b"a,b\n1,2\n3,4,5\n",  # a long row
        b"a,b\n1,Caf\xe9\n",  # not UTF-8
        b'a,b\n="1",2\n',  # a quote inside a field
    ],
)
def test_what_pyarrow_could_read_otherwise_is_left_to_pandas(data: bytes, tmp_path: Path) -> None:
    assert read_text_columns(data, ",", 2) is None
    assert_read_alike(tmp_path / "appointments.csv", data)


def test_blank_lines_are_skipped_with_the_same_warning(tmp_path: Path) -> None:
    data = b"a,b\r\n1,2\r\n\r\n3,4\r\n"
    assert read_text_columns(data, ",", 2) is not None
    assert_read_alike(tmp_path / "appointments.csv", data)
    (table, issues), _ = both_readings(tmp_path / "appointments.csv", data)
    assert table is not None and table.frame["source_row"].tolist() == [2, 4]
    assert issues == [Issue("warning", "appointments.csv", 3, None, None, "blank row(s) 3 skipped")]


def test_ragged_rows_are_named_as_before(tmp_path: Path) -> None:
    (table, issues), _ = both_readings(tmp_path / "appointments.csv", b"a,b\r\n1,2\r\n3\r\n")
    assert table is None
    assert issues == [
        Issue(
            "error",
            "appointments.csv",
            3,
            None,
            "3",
            "row 3 has 1 field but the header has 2 (comma-separated): a value holds an unquoted "
            "comma or a field is missing; fix the row and export again",
        )
    ]


# Fields as exports write them: words, numbers, amounts, blanks, and the characters that need
# quoting. Quoted when they must be, and sometimes when they need not.
FIELD = st.text(alphabet=st.sampled_from(list('ab1 é$.,;"\n\r\t=')), max_size=8)


@st.composite
def rfc_4180_files(draw: st.DrawFn) -> tuple[bytes, list[list[str]], str]:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 4))
    records = draw(
        st.lists(st.lists(FIELD, min_size=width, max_size=width), min_size=1, max_size=6)
    )
    records[0] = [f"h{j}" for j in range(width)]
    line_end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = []
    for record in records:
        fields = []
        for value in record:
            value = value.replace("\r", "").replace("\n", line_end)
            needs = any(c in value for c in (delimiter, '"', "\n")) or (width == 1 and not value)
            if needs:
                value = '"' + value.replace('"', '""') + '"'
            elif draw(st.booleans()):
                value = '"' + value + '"'
            fields.append(value)
        lines.append(delimiter.join(fields))
    ending = draw(st.sampled_from([line_end, ""]))
    text = line_end.join(lines) + ending
    return text.encode(), records, delimiter


@settings(max_examples=300, deadline=None)
@given(rfc_4180_files())
def test_rfc_4180_text_is_read_by_pyarrow_as_the_csv_module_reads_it(
    made: tuple[bytes, list[list[str]], str],
) -> None:
    data, _, delimiter = made
    text = data.decode()
    expected = list(csv.reader(io.StringIO(text.replace("\r\n", "\n")), delimiter=delimiter))
    width = len(expected[0])
    result = read_text_columns(data, delimiter, width)
    if any(len(record) != width for record in expected):
        assert result is None
        return
    assert result is not None
    assert [list(record) for record in zip(*result.columns, strict=True)] == expected
