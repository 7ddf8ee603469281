"""The third-party corpus (shared/corpus, never copied here): each file loads or is refused as its MANIFEST says."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from tests.test_csv_arrow import assert_read_alike

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.discovery import CSV_SUFFIXES
from pkgreport.inputs.loading import load_file
from pkgreport.inputs.tables import RawTable

_HERE = Path(__file__).resolve()
_CANDIDATES = [
    _HERE.parents[2] / "shared" / "corpus",
    _HERE.parents[1].parent / "shared" / "corpus",
    _HERE.parents[1] / "shared" / "corpus",
]
CORPUS = next((c for c in _CANDIDATES if (c / "MANIFEST.md").is_file()), None)
if CORPUS is None:
    pytest.skip("the shared corpus folder is not beside the repository", allow_module_level=True)

SETTINGS = Settings()
SECONDS_PER_FILE = 5.0


@dataclass(frozen=True)
class Load:
    check: Callable[[pd.DataFrame, RawTable, list[Issue]], None]


@dataclass(frozen=True)
class Reject:
    says: str
    rows: tuple[int | None, ...] | None = None


def cells(frame: pd.DataFrame) -> list[list[object]]:
    return frame.drop(columns="source_file").values.tolist()


def _unterminated(file: str, row: int, column: str, value: str) -> Issue:
    """The warning for a file whose last row has no line break (several public files do not)."""
    return Issue(
        "warning",
        file,
        row,
        column,
        value,
        "the file does not end with a line break, so it may have been cut short by a copy or "
        f"download that did not finish: check that row {row}, the last, is complete (its last "
        "value especially); if it is not, export or copy the file again",
    )


def _header_only(file: str) -> Issue:
    return Issue(
        "warning",
        file,
        None,
        None,
        None,
        "the export looks empty: it has a header row but no data rows; check the export "
        "finished and covered the right dates (if there really is nothing, ignore this)",
    )


def _expect(
    rows: list[list[object]],
    columns: list[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    warns: str | None = None,
    unterminated: tuple[str, str] | None = None,
) -> Load:
    """`unterminated`: the last row's last column and value, when the file ends without a line
    break."""

    def check(frame: pd.DataFrame, table: RawTable, issues: list[Issue]) -> None:
        name = table.file.name
        ending = [_unterminated(name, rows[-1][-1], *unterminated)] if unterminated else []
        ending += [_header_only(name)] if not rows else []
        assert [i for i in issues if i in ending] == ending
        issues = [i for i in issues if i not in ending]
        assert cells(frame) == rows
        if columns is not None:
            assert list(frame.columns) == [*columns, "source_file", "source_row"]
        if encoding is not None:
            assert table.file.encoding == encoding
        if delimiter is not None:
            assert table.file.delimiter == delimiter
        if warns is None:
            assert issues == []
        else:
            assert [i.severity for i in issues] == ["warning"] and warns in issues[0].message

    return Load(check)


def _check_test_xlsx(frame: pd.DataFrame, table: RawTable, issues: list[Issue]) -> None:
    # Mac Excel 2011, 1904 epoch, =TRUE() formulas read from their cached values.
    assert list(frame.columns) == [
        "text",
        "date",
        "integer",
        "boolean",
        "float",
        "datetime",
        "empty_column",
        "source_file",
        "source_row",
    ]
    assert cells(frame) == [
        ["Chicago Reader", "1971-01-01", "40", "true", "1", "1971-01-01T04:14:00", "", 2],
        ["Chicago Sun-Times", "1948-01-01", "63", "true", "1.27", "1948-01-01T14:57:13", "", 3],
        ["Chicago Tribune", "1920-01-01", "164", "false", "41800000.01", "1920-01-01", "", 4],
        ["This row has blanks", "", "", "", "", "", "", 5],
        ["Unicode! Σ", "", "", "", "", "", "", 6],
    ]
    # The stray note beside the table (H3, no header) is dropped, and said so.
    assert [(i.severity, i.row, i.value) for i in issues] == [
        ("warning", 3, "Extra data beyond headers will be trimmed")
    ]


def _check_sparse(frame: pd.DataFrame, table: RawTable, issues: list[Issue]) -> None:
    # Excel Online re-save: only A1 has a header; rows 2-66 hold 53 values in column A (openpyxl agrees).
    assert list(frame.columns) == ["String Value 32", "source_file", "source_row"]
    assert (
        len(frame) == 53 and frame["source_row"].iloc[0] == 7 and frame["source_row"].iloc[-1] == 66
    )
    assert (frame["String Value 32"] != "").all()
    assert issues[-1].message == "blank row(s) 2, 3, 4, 5, 6, 9, 52, 61, 62, 63, 64, 65 skipped"
    assert all(i.severity == "warning" for i in issues)


DATE_ROWS = [["2021-01-02", "16", 2], ["255:10:10", "17", 3]]  # header row: 2021-01-01, 15

EXPECTED: dict[str, Load | Reject] = {
    "csvspectrum__comma_in_quotes.csv": _expect(
        [["John", "Doe", "120 any st.", "Anytown, WW", "08123", 2]],
        ["first", "last", "address", "city", "zip"],
        unterminated=("zip", "08123"),
    ),
    "csvspectrum__escaped_quotes.csv": _expect([["1", 'ha "ha" ha', 2], ["3", "4", 3]], ["a", "b"]),
    "csvspectrum__quotes_and_newlines.csv": _expect(
        [["1", 'ha \n"ha" \nha', 2], ["3", "4", 3]], ["a", "b"]
    ),
    "csvspectrum__newlines_crlf.csv": _expect(
        [["1", "2", "3", 2], ["Once upon \na time", "5", "6", 3], ["7", "8", "9", 4]],
        ["a", "b", "c"],
    ),
    "csvspectrum__utf8.csv": _expect(
        [["1", "2", "3", 2], ["4", "5", "ʤ", 3]], ["a", "b", "c"], "utf-8", unterminated=("c", "ʤ")
    ),
    "csvkit__test_utf8_bom.csv": _expect(
        [["1", "2", "3", 2], ["4", "5", "ʤ", 3]], ["foo", "bar", "baz"], "utf-8-sig"
    ),
    "csvkit__test_latin1.csv": _expect(
        [["1", "2", "3", 2], ["4", "5", "©", 3]],
        ["a", "b", "c"],
        "cp1252",
        warns="read as Windows-1252",
        unterminated=("c", "©"),
    ),
    "csvkit__test_utf16_little.csv": _expect(
        [["1", "2", "3", 2], ["4", "5", "ʤ", 3]], ["a", "b", "c"], "utf-16", unterminated=("c", "ʤ")
    ),
    "csvkit__test_utf16_big.csv": _expect(
        [["1", "2", "3", 2], ["4", "5", "ʤ", 3]], ["a", "b", "c"], "utf-16", unterminated=("c", "ʤ")
    ),
    "csvkit__mac_newlines.csv": _expect(
        [["1", "2", "3", 2], ["Once upon\na time", "5", "6", 3]], ["a", "b", "c"]
    ),
    "csvkit__null_byte.csv": Reject("NUL byte at row 2, column a", (2,)),
    "csvkit__bad.csv": Reject("fields but the header has 3", (2, 3)),
    # Loading keeps money text exactly; "not an AUD amount" is validation's verdict on these.
    "csvkit__test_locale.csv": _expect([["1,7", "200.000.000", "", 2]], ["a", "b", "c"]),
    # Loading keeps dates as text; the dmy date order is applied by parsing.
    "csvkit__test_date_format.csv": _expect([["02/01/2014", 2], ["31/12/2012", 3]], ["a"]),
    "csvkit__test_skip_lines.csv": _expect([["1", "2", "3", 5]], ["a", "b", "c"]),
    "csvkit__empty.csv": Reject("empty file: no header row", (None,)),
    "csvkit__blanks.csv": _expect(
        [["", "NA", "N/A", "NONE", "NULL", ".", 2]], ["a", "b", "c", "d", "e", "f"]
    ),
    "csvkit__dummy.tsv": _expect([["1", "2", "3", 2]], ["a", "b", "c"], delimiter="\t"),
    "frictionless__delimiter.csv": _expect(
        [["1", "english", 2], ["2", "中国人", 3]], ["id", "name"], delimiter=";"
    ),
    "frictionless__dialect.csv": Reject("could not determine the CSV dialect", (None,)),
    # Offsets are converted to the clinic's zone by validation; loading keeps the text.
    "frictionless__issue-1105-timezone.csv": _expect(
        [["0", "2020-01-01T15:00:00Z", 2], ["1", "2020-01-01T15:00:00+03:00", 3]],
        ["id", "timestamp"],
        delimiter=";",
    ),
    "frictionless__duplicate-headers.csv": Reject("duplicate header 'id' (columns 1, 3, 5)", (1,)),
    "frictionless__blank-headers.csv": Reject("column 2 (B) has a blank header", (2,)),
    "frictionless__structure-errors.csv": Reject("row 5 has 6 fields but the header has 3", (5,)),
    "frictionless__leading-zeros.csv": _expect(
        [["01", 2], ["002", 3], ["00003", 4]], ["value"], unterminated=("value", "00003")
    ),
    "calamine__date.xlsx": _expect(DATE_ROWS, ["2021-01-01", "15"]),
    "calamine__date_1904.xlsx": _expect(DATE_ROWS, ["2021-01-01", "15"]),
    "calamine__no-header.xlsx": _expect([["b", "1", 4]], ["a", "0"]),
    "calamine__issue_261_fixed_by_excel.xlsx": Load(_check_sparse),
    "calamine__has_x000D_.xlsx": _expect([], ["ABC\nDEF"]),
    "calamine__pass_protected.xlsx": Reject("the workbook is password protected", (None,)),
    "csvkit__test.xlsx": Load(_check_test_xlsx),
    "pycalamine__issue139.xlsx": Reject("date out of range in cell A2", (2,)),
    "openpyxl__null_file.xlsx": Reject("not a valid xlsx (empty file)", (None,)),
    "poi__54764.xlsx": Reject("declares a DOCTYPE or ENTITY", (None,)),
    "poi__54764-2.xlsx": Reject("declares a DOCTYPE or ENTITY", (None,)),
    "poi__poc-xmlbomb.xlsx": Reject("declares a DOCTYPE or ENTITY", (None,)),
    # 12,000 cells naming one 1 MB shared text: 12 GB for any reader, refused before reading.
    "poi__poc-shared-strings.xlsx": Reject("would unpack to 12,583,200,000 bytes of text", (None,)),
    "poi__clusterfuzz-XLSX2CSV-5636439151607808.xlsx": Reject("not a valid xlsx", (None,)),
    "poi__clusterfuzz-POIFuzzer-5040805309710336.xlsx": Reject("not a valid xlsx", (None,)),
}


def _manifest_files() -> list[str]:
    text = (CORPUS / "MANIFEST.md").read_text(encoding="utf-8")
    return [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]


def test_every_manifest_file_has_an_expectation() -> None:
    files = _manifest_files()
    assert len(files) == 40
    assert sorted(files) == sorted(EXPECTED)
    assert sorted(
        p.name for p in CORPUS.iterdir() if p.is_file() and p.name != "MANIFEST.md"
    ) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    table, issues = load_file(CORPUS / name, "appointments", SETTINGS)
    elapsed = time.perf_counter() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert elapsed < SECONDS_PER_FILE, f"{name} took {elapsed:.2f} s"
    assert grown_mb < 200, f"{name} grew peak memory by {grown_mb:.0f} MB"
    assert all(i.file == name for i in issues)

    expected = EXPECTED[name]
    if isinstance(expected, Reject):
        assert table is None
        problems = [i for i in issues if i.severity == "error"]
        assert problems and all(expected.says in i.message for i in problems), [
            str(i) for i in issues
        ]
        if expected.rows is not None:
            assert tuple(i.row for i in problems) == expected.rows
    else:
        assert table is not None, [str(i) for i in issues]
        assert table.file.name == name and table.file.rows == len(table.frame)
        assert (table.frame["source_file"] == name).all()
        expected.check(table.frame, table, issues)


@pytest.mark.parametrize(
    "name", sorted(n for n in EXPECTED if Path(n).suffix.lower() in CSV_SUFFIXES)
)
def test_corpus_file_reads_alike_with_and_without_pyarrow(name: str, tmp_path: Path) -> None:
    assert_read_alike(tmp_path / name, (CORPUS / name).read_bytes())


def _column(name: str, column: str) -> pd.Series:
    table, _ = load_file(CORPUS / name, "appointments", SETTINGS)
    assert table is not None
    return table.frame[column]


def test_corpus_european_numbers_are_not_amounts() -> None:
    from pkgreport.inputs.parsing import parse_money

    parsed = parse_money(pd.concat([_column("csvkit__test_locale.csv", c) for c in ("a", "b")]))
    assert parsed.bad.tolist() == [True, True]
    assert list(parsed.errors) == [
        "has a misplaced thousands separator or a decimal comma: write it like 1234.50 or 1,234.50",
        "has more than one decimal point: write it like 1234.50 (no thousands points)",
    ]


def test_corpus_day_first_dates_follow_the_setting_only() -> None:
    from pkgreport.inputs.dates import parse_dates

    dates = _column("csvkit__test_date_format.csv", "a")
    dmy = parse_dates(dates, date_order="dmy")
    assert not dmy.bad.any()
    assert dmy.values.dt.date.tolist() == [date(2014, 1, 2), date(2012, 12, 31)]
    mdy = parse_dates(dates, date_order="mdy")  # 31/12/2012 has no 31st month
    assert mdy.bad.tolist() == [False, True]


def test_corpus_mixed_offsets_convert_to_the_clinic_zone() -> None:
    from pkgreport.inputs.dates import parse_datetimes

    frame_col = next(c for c in _column_names("frictionless__issue-1105-timezone.csv") if c != "id")
    stamps = parse_datetimes(
        _column("frictionless__issue-1105-timezone.csv", frame_col), timezone="Australia/Sydney"
    )
    assert not stamps.bad.any()
    # 15:00Z is 02:00 next day in Sydney (AEDT, +11); 15:00+03:00 is 12:00Z, 23:00 in Sydney.
    assert [str(v) for v in stamps.values] == ["2020-01-02 02:00:00", "2020-01-01 23:00:00"]


def _column_names(name: str) -> list[str]:
    table, _ = load_file(CORPUS / name, "appointments", SETTINGS)
    assert table is not None
    return [c for c in table.frame.columns if c not in ("source_file", "source_row")]
