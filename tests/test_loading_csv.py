"""Loading CSV/TSV exports: kinds, discovery, encodings, dialects, structure errors, provenance."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from pkgreport.config import Settings
from pkgreport.errors import Issue
from pkgreport.inputs.discovery import KIND_WORDS, discover_inputs
from pkgreport.inputs.loading import load_file, load_folder
from pkgreport.inputs.tables import RawTable

SETTINGS = Settings()


def load(
    tmp_path: Path, content: bytes, name: str = "appointments.csv"
) -> tuple[RawTable | None, list[Issue]]:
    path = tmp_path / name
    path.write_bytes(content)
    return load_file(path, "appointments", SETTINGS)


def loaded(
    tmp_path: Path, content: bytes, name: str = "appointments.csv"
) -> tuple[RawTable, list[Issue]]:
    table, issues = load(tmp_path, content, name)
    assert table is not None, [str(i) for i in issues]
    assert not [i for i in issues if i.severity == "error"]
    return table, issues


def data_rows(table: RawTable) -> list[list[object]]:
    return table.frame.values.tolist()


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


# ---------------------------------------------------------------------------------------------
# kinds and discovery
# ---------------------------------------------------------------------------------------------


def test_kind_words_cover_singular_and_plural_of_every_kind() -> None:
    kinds = ("appointments", "cases", "invoices", "payments", "allocations", "patients")
    assert KIND_WORDS == {**{k: k for k in kinds}, **{k[:-1]: k for k in kinds}}


def test_discover_inputs_sorts_by_name_and_warns_about_everything_ignored(tmp_path: Path) -> None:
    for name in [
        "payments.csv",
        "Cases.xlsx",
        "appointments-2.csv",
        "appointments-1.csv",
        "~$Cases.xlsx",
        ".DS_Store",
        "readme.txt",
        "README.md",
    ]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "invoices-old").mkdir()
    found, issues = discover_inputs(tmp_path)
    assert [(k, p.name) for k, p in found] == [
        ("cases", "Cases.xlsx"),
        ("appointments", "appointments-1.csv"),
        ("appointments", "appointments-2.csv"),
        ("payments", "payments.csv"),
    ]
    assert [(i.severity, i.file, i.message.split(":")[0]) for i in issues] == [
        ("warning", ".DS_Store", "ignored"),
        ("info", "README.md", "ignored"),
        ("warning", "invoices-old", "ignored"),
        ("warning", "readme.txt", "ignored"),
        ("warning", "~$Cases.xlsx", "ignored"),
    ]
    assert "hidden" in issues[0].message
    assert "not an export" in issues[1].message
    assert "sub-folder" in issues[2].message
    assert "names no kind" in issues[3].message
    assert "lock file" in issues[4].message


def test_discover_inputs_missing_folder_is_an_error(tmp_path: Path) -> None:
    found, issues = discover_inputs(tmp_path / "nope")
    assert found == []
    assert [(i.severity, i.file) for i in issues] == [("error", str(tmp_path / "nope"))]
    assert "not found" in issues[0].message


def test_discover_inputs_on_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_bytes(b"a\n")
    found, issues = discover_inputs(tmp_path / "appointments.csv")
    assert found == [] and issues[0].severity == "error" and "not a folder" in issues[0].message


def test_load_folder_collects_every_file_and_every_issue(tmp_path: Path) -> None:
    (tmp_path / "appointments.csv").write_bytes(b"id,patient\n1,7\n")
    (tmp_path / "cases.csv").write_bytes(b"id,id\n1,2\n")
    (tmp_path / "patients.csv").write_bytes(b"patient_id\n01\n")
    (tmp_path / "other.csv").write_bytes(b"a\n")
    tables, issues = load_folder(tmp_path, SETTINGS)
    assert [(t.file.name, t.file.kind, t.file.rows) for t in tables] == [
        ("appointments.csv", "appointments", 1),
        ("patients.csv", "patients", 1),
    ]
    assert sorted((i.severity, i.file) for i in issues) == [
        ("error", "cases.csv"),
        ("warning", "other.csv"),
    ]


def test_unsupported_suffix_and_missing_file_are_errors(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"%PDF-1.4", "appointments.pdf")
    assert table is None and "unsupported file type '.pdf'" in issues[0].message
    table, issues = load_file(tmp_path / "appointments-gone.csv", "appointments", SETTINGS)
    assert (
        table is None
        and issues[0].file == "appointments-gone.csv"
        and "could not read the file" in issues[0].message
    )


# ---------------------------------------------------------------------------------------------
# the output frame
# ---------------------------------------------------------------------------------------------


def test_frame_has_headers_as_written_plus_provenance_and_file_facts(tmp_path: Path) -> None:
    content = b" ID , Patient ID\n 01 ,00003 \n2,NA\n"
    table, issues = loaded(tmp_path, content)
    assert issues == []
    assert list(table.frame.columns) == ["ID", "Patient ID", "source_file", "source_row"]
    # Headers are stripped; values are kept exactly (validation decides what spaces mean).
    assert data_rows(table) == [
        [" 01 ", "00003 ", "appointments.csv", 2],
        ["2", "NA", "appointments.csv", 3],
    ]
    assert str(table.frame["source_row"].dtype) == "int64"
    assert list(table.frame.index) == [0, 1]
    file = table.file
    assert (
        file.name,
        file.kind,
        file.rows,
        file.size,
        file.encoding,
        file.delimiter,
        file.sheet,
    ) == (
        "appointments.csv",
        "appointments",
        2,
        len(content),
        "utf-8",
        ",",
        None,
    )
    assert file.sha256 == hashlib.sha256(content).hexdigest()
    assert file.path == tmp_path / "appointments.csv"


def test_na_like_tokens_and_leading_zeros_stay_text(tmp_path: Path) -> None:
    table, _ = loaded(
        tmp_path,
        b"id,a,b,c,d,e,f,g\n01,,NA,N/A,NONE,NULL,.,nan\n00003,None,null,#N/A,-,TRUE,1e5,1.50\n",
    )
    assert data_rows(table) == [
        ["01", "", "NA", "N/A", "NONE", "NULL", ".", "nan", "appointments.csv", 2],
        ["00003", "None", "null", "#N/A", "-", "TRUE", "1e5", "1.50", "appointments.csv", 3],
    ]
    assert all(type(v) is str for v in table.frame.drop(columns="source_row").to_numpy().ravel())


def test_header_only_file_loads_with_no_rows_and_a_warning_that_it_looks_empty(
    tmp_path: Path,
) -> None:
    table, issues = loaded(tmp_path, b"id,patient_id\n")
    assert list(table.frame.columns) == ["id", "patient_id", "source_file", "source_row"]
    assert len(table.frame) == 0
    assert issues == [
        Issue(
            "warning",
            "appointments.csv",
            None,
            None,
            None,
            "the export looks empty: it has a header row but no data rows; check the export "
            "finished and covered the right dates (if there really is nothing, ignore this)",
        )
    ]


def test_reserved_header_is_an_error(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"id,source_row\n1,2\n")
    assert table is None
    assert [(i.row, i.column) for i in issues] == [(1, "source_row")]


# ---------------------------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------------------------


def test_utf8_bom_is_removed_from_the_first_header(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, codecs.BOM_UTF8 + "foo,bar\n1,ʤ\n".encode())
    assert list(table.frame.columns)[:2] == ["foo", "bar"]
    assert data_rows(table)[0][:2] == ["1", "ʤ"]
    assert table.file.encoding == "utf-8-sig" and issues == []


@pytest.mark.parametrize(
    "bom,codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
)
def test_utf16_with_bom_tab_separated_like_excel_unicode_text(
    tmp_path: Path, bom: bytes, codec: str
) -> None:
    content = bom + "id\tname\r\n1\tZoë\r\n2\t中国\r\n".encode(codec)
    table, issues = loaded(tmp_path, content, "appointments.txt")
    assert data_rows(table) == [
        ["1", "Zoë", "appointments.txt", 2],
        ["2", "中国", "appointments.txt", 3],
    ]
    assert (table.file.encoding, table.file.delimiter, issues) == ("utf-16", "\t", [])


def test_windows_1252_is_read_with_a_warning_never_with_replacement(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"id,name\n1,Caf\xe9\n2,\x80 5\n")
    assert data_rows(table) == [
        ["1", "Café", "appointments.csv", 2],
        ["2", "€ 5", "appointments.csv", 3],
    ]
    assert table.file.encoding == "cp1252"
    assert len(issues) == 1
    warning = issues[0]
    assert (warning.severity, warning.file, warning.row) == ("warning", "appointments.csv", 2)
    assert "Windows-1252" in warning.message and "CSV UTF-8" in warning.message


def test_bytes_neither_utf8_nor_cp1252_are_an_error(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"id,name\n1,ok\n2,\x81\x8d\n")
    assert table is None
    assert [(i.severity, i.row) for i in issues] == [("error", 3)]
    assert "neither UTF-8 nor Windows-1252" in issues[0].message and "\ufffd" not in str(issues[0])


def test_bad_utf16_after_a_bom_is_an_error(tmp_path: Path) -> None:
    table, issues = load(tmp_path, codecs.BOM_UTF16_LE + b"a\x00\n\x00\x00\xd8")
    assert table is None and issues[0].severity == "error" and "utf-16" in issues[0].message


def test_nul_byte_names_row_and_column(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"a,b,c\n1,2,3\n4,\x00x,6\n")
    assert table is None
    assert [(i.severity, i.row, i.column, i.value) for i in issues] == [("error", 3, "b", "\\x00x")]
    assert "NUL byte at row 3, column b" in issues[0].message


def test_nul_bytes_of_a_binary_file_are_summarised(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"a,b\n" + b"\x00,\x00\n" * 30)
    assert table is None
    assert len(issues) == 21
    assert [(i.row, i.column) for i in issues[:3]] == [(2, "a"), (2, "b"), (3, "a")]
    assert issues[-1].row is None and issues[-1].message.startswith("40 more NUL byte(s)")


# ---------------------------------------------------------------------------------------------
# line endings and blank lines
# ---------------------------------------------------------------------------------------------


def test_crlf_and_lone_cr_become_lf_inside_quoted_fields_too(tmp_path: Path) -> None:
    table, _ = loaded(tmp_path, b'a,b\r\n"x\r\ny",2\r"p\rq",3\r\n4,5')
    assert data_rows(table) == [
        ["x\ny", "2", "appointments.csv", 2],
        ["p\nq", "3", "appointments.csv", 3],
        ["4", "5", "appointments.csv", 4],
    ]


def test_leading_blank_lines_are_skipped_and_row_numbers_stay_true(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"\n  \n\r\na,b\n1,2\n3,4\n")
    assert data_rows(table) == [
        ["1", "2", "appointments.csv", 5],
        ["3", "4", "appointments.csv", 6],
    ]
    assert issues == []


def test_later_blank_lines_are_dropped_with_one_warning_listing_them(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"a,b\n1,2\n\n3,4\n,\n\n5,6\n\n")
    assert [r[-1] for r in data_rows(table)] == [2, 4, 7]
    assert [(i.severity, i.row, i.message) for i in issues] == [
        ("warning", 3, "blank row(s) 3, 5, 6, 8 skipped")
    ]


def test_quoted_newline_record_is_one_spreadsheet_row(tmp_path: Path) -> None:
    table, _ = loaded(tmp_path, b'id,note\n1,"a, b"\n2,"say ""hi"""\n3,"line1\nline2"\n4,x\n')
    assert data_rows(table) == [
        ["1", "a, b", "appointments.csv", 2],
        ["2", 'say "hi"', "appointments.csv", 3],
        ["3", "line1\nline2", "appointments.csv", 4],
        ["4", "x", "appointments.csv", 5],
    ]


@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n  \n", b"\r\n\r\n"])
def test_empty_file_has_no_header_row(tmp_path: Path, content: bytes) -> None:
    table, issues = load(tmp_path, content)
    assert table is None
    assert [(i.severity, i.file, i.row) for i in issues] == [("error", "appointments.csv", None)]
    assert issues[0].message.startswith("empty file: no header row")


# ---------------------------------------------------------------------------------------------
# dialects
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_whitelisted_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = (
        delimiter.join(["id", "name", "note"])
        + "\n"
        + delimiter.join(["1", "Ann", '"x, y; z | w"'])
        + "\n"
    )
    table, _ = loaded(tmp_path, text.encode())
    assert data_rows(table) == [["1", "Ann", "x, y; z | w", "appointments.csv", 2]]
    assert table.file.delimiter == delimiter


def test_semicolon_file_with_decimal_commas_is_not_read_as_commas(tmp_path: Path) -> None:
    table, _ = loaded(tmp_path, b"id;amount\n1;1,50\n2;2,75\n")
    assert data_rows(table) == [
        ["1", "1,50", "appointments.csv", 2],
        ["2", "2,75", "appointments.csv", 3],
    ]


def test_excel_sep_line_names_the_delimiter_and_is_not_a_row(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"sep=;\r\nid;amount\r\n1;1,50\r\n")
    assert data_rows(table) == [["1", "1,50", "appointments.csv", 2]]
    assert (table.file.delimiter, issues) == (";", [])
    table, issues = load(tmp_path, b"sep=:\nid:amount\n")
    assert table is None and "unsupported delimiter ':'" in issues[0].message


def test_delimiter_giving_most_consistent_fields_wins(tmp_path: Path) -> None:
    table, _ = loaded(tmp_path, b"a,b;c,d\n1,2;3,4\n5,6;7,8\n")
    assert table.file.delimiter == "," and list(table.frame.columns)[:3] == ["a", "b;c", "d"]


def test_a_note_longer_than_the_csv_module_field_limit_still_sniffs(tmp_path: Path) -> None:
    note = "x" * 200_000
    table, issues = loaded(tmp_path, f'id;note;n\n1;"{note}";2\n3;y;4\n'.encode())
    assert table.file.delimiter == ";" and issues == []
    assert [len(v) for v in table.frame["note"]] == [200_000, 1]


def test_single_column_file_is_fine(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"patient_id\n01\n002\n00003\n", "patients.csv")
    assert data_rows(table) == [
        ["01", "patients.csv", 2],
        ["002", "patients.csv", 3],
        ["00003", "patients.csv", 4],
    ]
    assert issues == []


def test_foreign_quote_character_is_refused_as_an_undetermined_dialect(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"id|name\n1|#english#\n2| -|##\n")
    assert table is None
    assert len(issues) == 1 and issues[0].severity == "error"
    assert (
        "could not determine the CSV dialect" in issues[0].message
        and "double quotes" in issues[0].message
    )


# ---------------------------------------------------------------------------------------------
# structure errors and headers
# ---------------------------------------------------------------------------------------------


def test_every_ragged_row_is_listed_long_and_short(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n13\n\n")
    assert table is None
    assert [(i.severity, i.row, i.value) for i in issues] == [
        ("error", 3, "4,5"),
        ("error", 4, "6,7,8,9"),
        ("error", 6, "13"),
    ]
    assert issues[0].message.startswith("row 3 has 2 fields but the header has 3")
    assert issues[2].message.startswith("row 6 has 1 field but the header has 3")
    assert issues[1].message.startswith("row 4 has 4 fields but the header has 3")


@pytest.mark.parametrize(
    ("content", "bad_rows"),
    [
        (b"a,b,c\n1,2,3\n4,5\n", [3]),  # short only: pandas would pad it silently
        (b'a,b,c\n"1",2,"3"\n"4",5\n"6","7",""\n', [3]),  # quoted file: byte-level field count
        (b'a,b,c\n"x\ny",2,3\n4,5\n7,8,9\n', [3]),  # quoted newline before the short row
        (b"a,b,c\n\n\n1,2\n3,4,5\n", [4]),  # blank lines keep row numbers true
        (b'a,b,c\n5" screen,2,3\n4,5\n6,7,8\n', [3]),  # stray quote: the csv module counts
    ],
)
def test_short_rows_are_found(tmp_path: Path, content: bytes, bad_rows: list[int]) -> None:
    table, issues = load(tmp_path, content)
    assert table is None
    assert [i.row for i in errors(issues)] == bad_rows


@pytest.mark.parametrize(
    "content", [b"a,b,c\n1,2,\n", b'a,b,c\n"1","2",\n', b'a,b,c\n"1,2",,\n3,",",\n']
)
def test_a_blank_last_field_is_not_a_short_row(tmp_path: Path, content: bytes) -> None:
    table, issues = loaded(tmp_path, content)
    assert data_rows(table)[0][2] == "" and issues == []


def test_unclosed_quote_is_an_error_at_its_row(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b'a,b\n1,2\n"x,2\n3,4\n')
    assert table is None
    assert [(i.severity, i.row) for i in issues] == [("error", 3)]
    assert "double quote" in issues[0].message


def test_duplicate_headers_are_an_error(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"id,name, id ,age,id\n1,a,2,3,4\n")
    assert table is None
    assert [(i.row, i.column) for i in issues] == [(1, "id")]
    assert "duplicate header 'id' (columns 1, 3, 5)" in issues[0].message


def test_blank_header_with_data_is_an_error(tmp_path: Path) -> None:
    table, issues = load(tmp_path, b"id,,age\n1101,,30\n1102,Julie,26\n")
    assert table is None
    assert [(i.row, i.column, i.value) for i in issues] == [(3, None, "Julie")]
    assert "column 2 (B) has a blank header" in issues[0].message


def test_wholly_blank_trailing_columns_are_dropped_silently(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, b"a,b,,\n1,2,,\n3,4,,\n")
    assert list(table.frame.columns) == ["a", "b", "source_file", "source_row"]
    assert issues == []


def test_issues_print_without_a_traceback(tmp_path: Path) -> None:
    _, issues = load(tmp_path, b"a,b\n1,2,3\n")
    assert str(issues[0]).startswith(
        "ERROR: appointments.csv, row 2, value '1,2,3': row 2 has 3 fields"
    )


# ---------------------------------------------------------------------------------------------
# large files: only the head is decoded up front, the rest by pandas field by field
# ---------------------------------------------------------------------------------------------

_BIG_ROWS = 330_000  # 13 bytes a row: past the 4 MB head the fast path decodes up front


def _big(last_row: bytes) -> bytes:
    return b"id,name\n" + b"1,abcdefghij\n" * _BIG_ROWS + last_row + b"\n"


def test_windows_1252_after_the_head_is_still_found(tmp_path: Path) -> None:
    table, issues = loaded(tmp_path, _big(b"2,Caf\xe9"))
    assert table.file.encoding == "cp1252" and len(table.frame) == _BIG_ROWS + 1
    assert table.frame["name"].iat[-1] == "Café"
    assert [(i.severity, i.row) for i in issues] == [("warning", _BIG_ROWS + 2)]
    assert "Windows-1252" in issues[0].message


def test_nul_and_cr_after_the_head_are_still_handled(tmp_path: Path) -> None:
    table, issues = load(tmp_path, _big(b"2,a\x00b"))
    assert table is None
    assert [(i.row, i.column, i.value) for i in issues] == [(_BIG_ROWS + 2, "name", "a\\x00b")]
    table, _ = loaded(tmp_path, _big(b'2,"x\r\ny"'))
    assert table.frame["name"].iat[-1] == "x\ny"


@pytest.mark.parametrize("character", ["é", "€", "😀"])
def test_a_character_split_by_the_head_limit_is_read_whole(tmp_path: Path, character: str) -> None:
    from pkgreport.inputs.csv_reading import _HEAD_BYTES

    encoded = character.encode("utf-8")
    header = b"id,name\n"
    # The character starts one byte before the limit, so the limit cuts through it.
    filler = b"x" * (_HEAD_BYTES - 1 - len(header) - len(b"1,"))
    path = tmp_path / "appointments.csv"
    path.write_bytes(header + b"1," + filler + encoded + b"\n2,b\n")
    # The cell must be longer than the head the fast path decodes, so over the default cap.
    table, issues = load_file(path, "appointments", SETTINGS.replace(max_cell_chars=_HEAD_BYTES))
    assert table is not None
    assert table.file.encoding == "utf-8" and issues == []
    assert table.frame["name"].tolist() == [filler.decode() + character, "b"]
    assert table.frame["source_row"].tolist() == [2, 3]


# ---------------------------------------------------------------------------------------------
# Cliniko's own CSV: Excel-safe ids, CRLF records with line breaks inside quoted notes
# ---------------------------------------------------------------------------------------------


def test_excel_safe_cells_are_unwrapped_in_every_column(tmp_path: Path) -> None:
    content = (
        b"ID,Patient ID,Notes\r\n"
        b'="1558354464010667075","=""1558354464010667076""","=""a"" ="""\r\n'
        b'="1558354464010667077",1558354464010667078,="x ""y"""\r\n'
    )
    table, _ = loaded(tmp_path, content)
    assert data_rows(table) == [
        ["1558354464010667075", "1558354464010667076", '="a" ="', "appointments.csv", 2],
        ["1558354464010667077", "1558354464010667078", 'x "y"', "appointments.csv", 3],
    ]


def test_excel_safe_cells_are_unwrapped_in_utf16_too(tmp_path: Path) -> None:
    content = 'ID,Notes\r\n="1558354464010667075",x\r\n'.encode("utf-16")
    table, _ = loaded(tmp_path, content)
    assert data_rows(table) == [["1558354464010667075", "x", "appointments.csv", 2]]


def test_crlf_records_keep_lf_and_crlf_line_breaks_inside_notes(tmp_path: Path) -> None:
    content = (
        "ID,Notes,Type\r\n"
        '1,"one\ntwo","Physio, initial"\r\n'
        '2,"one\r\ntwo\r\n",Massage\r\n'
        '3,"said ""hi"" 😀 “curly”", \r\n'
    ).encode()
    table, issues = loaded(tmp_path, content)
    assert issues == []
    assert data_rows(table) == [
        ["1", "one\ntwo", "Physio, initial", "appointments.csv", 2],
        # Line breaks inside a field read as LF, and rows are records as a spreadsheet shows.
        ["2", "one\ntwo\n", "Massage", "appointments.csv", 3],
        ["3", 'said "hi" 😀 “curly”', " ", "appointments.csv", 4],
    ]
