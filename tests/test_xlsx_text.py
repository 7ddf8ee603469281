"""A sheet of text read by fastexcel as Arrow text columns (`xlsx_text`) gives exactly the table,
the issues and the typed frames the cell-by-cell read by python-calamine gives: every workbook here
is read both ways (the text read is only tried for a big sheet, so here for every sheet, and a
sheet that is not all text is then split in two halves as a big one is), and every sheet that is
not all text is shown to be read as before."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import xlsxwriter

from pkgreport.config import Settings
from pkgreport.inputs import xlsx_sheet, xlsx_text
from pkgreport.inputs.loading import load_file
from pkgreport.inputs.xlsx_sheet import OpenSheet, open_sheet
from pkgreport.pipeline import load_dataset
from test_xlsx_split import CORPUS, corpus_workbooks, row

SETTINGS = Settings()
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
HEADERS = ["ID", "Patient ID", "Start Time", "Notes", "Did Not Arrive"]


def text_book(rows: list[list[str | None]], first_row: int = 0, first_col: int = 0) -> bytes:
    """A workbook whose every value is a shared string, as xlsxwriter (and Cliniko) write it."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("Appointments")
    for i, values in enumerate(rows):
        for j, value in enumerate(values):
            if value is not None:
                sheet.write_string(first_row + i, first_col + j, value)
    book.close()
    return buffer.getvalue()


def with_parts(content: bytes, parts: dict[str, bytes]) -> bytes:
    """The workbook with these parts' XML replaced."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, parts.get(info.filename, source.read(info.filename)))
    return out.getvalue()


def cliniko_rows(count: int) -> list[list[str | None]]:
    rows: list[list[str | None]] = [list(HEADERS)]
    for i in range(1, count):
        note = None if i % 5 else f"line one\r\nline {i % 7}"
        rows.append(
            [
                f'="{1017540000000000000 + i}"' if i % 11 == 0 else str(200000000 + i),
                str(1000000 + i % 37),
                f"2026-08-{1 + i % 28:02d} 1{i % 10}:00:00 +1000",
                note,
                "TRUE" if i % 9 == 0 else "FALSE",
            ]
        )
    return rows


def raw_strings(texts: list[bytes]) -> bytes:
    """A shared strings part of these `<si>` bodies, written by hand."""
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.'
        b'openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">'
        % (len(texts), len(texts))
        + b"".join(b"<si>" + t + b"</si>" for t in texts)
        + b"</sst>"
    )


# Each the text of one shared string as Excel may write it: escapes, runs of rich text, phonetic
# guides, kept spaces, entities, characters beyond the BMP.
ODD_STRINGS = [
    b"<t>ID</t>",
    b"<t>Notes</t>",
    b"<t>one_x000D_two</t>",
    b"<t>tab_x0009_and_x005F_x0041_</t>",
    b'<r><rPr><b/></rPr><t>bold</t></r><r><t xml:space="preserve"> plain</t></r>',
    b'<t>\xe6\x9d\xb1\xe4\xba\xac</t><rPh sb="0" eb="2"><t>\xe3\x83\x88\xe3\x82\xa6</t></rPh>',
    b'<t xml:space="preserve">  padded  </t>',
    b"<t>a &amp; b &lt;c&gt; &#x263A; &quot;q&quot;</t>",
    b"<t>\xf0\x9f\x98\x80 emoji</t>",
    b"<t></t>",
    b'<t xml:space="preserve">   </t>',
    b"<t>cr\r\nlf\rend</t>",
]


def shared_sheet(rows: list[bytes]) -> bytes:
    """A sheet's XML holding these rows (`<row>` elements) in a default-namespace sheetData."""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData>' + b"".join(rows) + b"</sheetData></worksheet>"
    )


def shared(ref: str, index: int, attrs: str = "") -> bytes:
    return f'<c r="{ref}"{attrs} t="s"><v>{index}</v></c>'.encode()


def odd_strings_book() -> bytes:
    """Two columns headed ID and Notes, each cell one of the odd strings (by its index)."""
    odd = len(ODD_STRINGS) - 2
    rows = [row(1, shared("A1", 0), shared("B1", 1))] + [
        row(i, shared(f"A{i}", 2 + i % odd), shared(f"B{i}", 2 + (i * 5) % odd))
        for i in range(2, 80)
    ]
    return with_parts(
        text_book([["x"]]), {SHEET: shared_sheet(rows), STRINGS: raw_strings(ODD_STRINGS)}
    )


TEXT = {
    "Cliniko's shape": text_book(cliniko_rows(400)),
    "strings Excel writes oddly": odd_strings_book(),
    "from cell C4": text_book(cliniko_rows(50), first_row=3, first_col=2),
    "blank rows and a blank column inside": text_book(
        [[*r[:2], None, *r[2:]] if k % 9 else [None] * 6 for k, r in enumerate(cliniko_rows(90))]
    ),
    "values beside the table with no header": text_book(
        [[*r, None, "stray" if k == 30 else None] for k, r in enumerate(cliniko_rows(60))]
    ),
    "a blank header over values": text_book(
        [[*r[:2], None if k == 0 else "x", *r[2:]] for k, r in enumerate(cliniko_rows(60))]
    ),
    "a header written twice": text_book([[*HEADERS[:-1], "ID"], *cliniko_rows(40)[1:]]),
    "a header row only": text_book([HEADERS]),
    "a reserved header": text_book([[*HEADERS, "source_row"], *cliniko_rows(20)[1:]]),
}


def not_text_books() -> dict[str, bytes]:
    """Sheets holding a value that is not text: never read as Arrow text."""

    def book(fill: Any) -> bytes:
        buffer = io.BytesIO()
        wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = wb.add_worksheet("Appointments")
        for k, values in enumerate(cliniko_rows(300)):
            sheet.write_row(k, 0, [v for v in values if v is not None])
        fill(wb, sheet)
        wb.close()
        return buffer.getvalue()

    date = {"num_format": "dd/mm/yyyy"}
    return {
        "one number far down": book(lambda wb, s: s.write_number(250, 1, 1017540000000000012)),
        "one boolean": book(lambda wb, s: s.write_boolean(200, 4, True)),
        "a date column": book(
            lambda wb, s: s.write_column(1, 6, [45000 + k for k in range(50)], wb.add_format(date))
        ),
        "an error cell": book(lambda wb, s: s.write_formula(100, 3, "=1/0", None, "#DIV/0!")),
        "a formula's text": book(lambda wb, s: s.write_formula(100, 3, '="a"&"b"', None, "ab")),
        "a number in its own column": book(lambda wb, s: s.write_number(5, 8, 12.5)),
    }


def read_both_ways(
    tmp_path: Path, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """load_file's (table, issues): read cell by cell (a small sheet), then as a big one."""
    path = tmp_path / "Appointments-Cliniko.xlsx"
    path.write_bytes(content)
    cells = load_file(path, "appointments", SETTINGS)
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        patch.setattr(xlsx_sheet, "TEXT_MIN_BYTES", 0)
        big = load_file(path, "appointments", SETTINGS)
    return cells, big


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each column of text as `object` (a read keeps repeating text as codes)."""
    return frame.astype({c: object for c in frame.columns if c != "source_row"})


def longest_cell(frame: pd.DataFrame) -> int:
    text = frame.drop(columns=["source_file", "source_row"]).astype(object).to_numpy().ravel()
    return max(map(len, text), default=0)


def assert_same_tables(cells: Any, big: Any) -> None:
    (cells_table, cells_issues), (big_table, big_issues) = cells, big
    assert big_issues == cells_issues
    assert (cells_table is None) == (big_table is None)
    if cells_table is not None:
        pd.testing.assert_frame_equal(as_text(big_table.frame), as_text(cells_table.frame))
        assert big_table.file == cells_table.file
        assert big_table.may_hold_scientific == cells_table.may_hold_scientific
        # Each a bound on the cells' length (the text read measures bytes, the other characters).
        for table in (big_table, cells_table):
            assert (table.longest_cell_bytes or 0) >= longest_cell(table.frame)


def read_as_text(content: bytes, monkeypatch: pytest.MonkeyPatch) -> bool:
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        patch.setattr(xlsx_sheet, "TEXT_MIN_BYTES", 0)
        opened = open_sheet(content, SETTINGS)
    return isinstance(opened, OpenSheet) and opened.text is not None


@pytest.mark.parametrize("name", list(TEXT))
def test_a_sheet_of_text_reads_as_read_cell_by_cell(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = TEXT[name]
    assert read_as_text(content, monkeypatch)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))


@pytest.mark.parametrize("name", list(not_text_books()))
def test_a_sheet_holding_other_values_is_read_as_before(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = not_text_books()[name]
    assert not read_as_text(content, monkeypatch)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))


@pytest.mark.parametrize(
    "name,ways",
    [
        ("Cliniko's shape", ["load_sheet_eager"]),
        ("from cell C4", ["load_sheet_eager", "load_sheet"]),
    ],
)
def test_a_sheet_from_column_a_is_read_eagerly_and_any_other_through_its_sheet(
    name: str, ways: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fastexcel reads a sheet whose values start in column A straight into Arrow; one that
    starts further right is read through fastexcel's sheet, whose columns report their place."""
    import fastexcel

    called: list[str] = []
    for method in ("load_sheet_eager", "load_sheet"):
        real = getattr(fastexcel.ExcelReader, method)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = method, **kw: Any) -> Any:
            called.append(_name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(fastexcel.ExcelReader, method, spy)
    assert read_as_text(TEXT[name], monkeypatch)
    assert called == ways


def test_the_text_reads_repeating_values_as_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (table, _) = read_both_ways(tmp_path, TEXT["Cliniko's shape"], monkeypatch)
    dtypes = table.frame.dtypes.astype(str).to_dict()
    assert dtypes["Did Not Arrive"] == "category" and dtypes["ID"] == "object"


def test_a_long_shared_string_down_a_whole_column_is_read_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100,000 rows (the pre-flight's least bound) of a 30,000-character string pass 2 GiB.
    rows: list[list[str | None]] = [["ID", "Notes"]] + [[str(i), "n" * 30_000] for i in range(9)]
    content = text_book(rows)
    assert not read_as_text(content, monkeypatch)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))
    assert read_as_text(text_book([["ID", "Notes"], ["1", "n" * 20_000]]), monkeypatch)


@pytest.mark.skipif(CORPUS is None, reason="the shared corpus folder is not beside the repository")
@pytest.mark.parametrize("path", corpus_workbooks(), ids=lambda p: p.name)
def test_corpus_workbooks_read_alike_as_text_and_cell_by_cell(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same_tables(*read_both_ways(tmp_path, path.read_bytes(), monkeypatch))


def test_a_hand_written_sheet_of_shared_strings_reads_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cells written `<c r=.. t="s">` in a sheet with odd rows: spans, gaps, a row left empty."""
    rows = [
        row(1, shared("A1", 0), shared("B1", 1)),
        row(2, shared("A2", 2), shared("B2", 3, ' s="0"')),
        row(3, attrs=' spans="1:2"'),
        *(row(i, shared(f"B{i}", 4 + i % 5)) for i in range(4, 300)),
        row(400, shared("C400", 2)),
    ]
    content = with_parts(
        text_book([["x"]]), {SHEET: shared_sheet(rows), STRINGS: raw_strings(ODD_STRINGS)}
    )
    assert read_as_text(content, monkeypatch)
    assert_same_tables(*read_both_ways(tmp_path, content, monkeypatch))


def cliniko_folder(tmp_path: Path) -> Path:
    """The demo set of Cliniko exports as workbooks (every value text)."""
    folder = tmp_path / "exports"
    subprocess.run(
        [sys.executable, "-m", "pkgreport", "sample-data", str(folder), "--format", "xlsx"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


def test_a_folder_of_cliniko_workbooks_validates_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cliniko_folder(tmp_path)
    settings = Settings(input_dir=folder)
    cells = load_dataset(settings)
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        patch.setattr(xlsx_sheet, "TEXT_MIN_BYTES", 0)
        assert all(read_as_text(p.read_bytes(), monkeypatch) for p in folder.iterdir())
        big = load_dataset(settings)
    assert big.issues == cells.issues and cells.issues
    assert big.files == cells.files
    pd.testing.assert_frame_equal(big.excluded, cells.excluded)
    for kind in ("appointments", "cases", "invoices", "payments", "patients"):
        frame, expected = big.frame(kind), cells.frame(kind)
        assert frame is not None and expected is not None and len(expected)
        pd.testing.assert_frame_equal(frame, expected)


@pytest.mark.parametrize(
    "values,held",
    [
        (['="1017540000000000011"', "200000001"], True),
        (["a=", '"b"'], False),  # "=" ending one value and '"' beginning the next is no `="`
        (["x = y", 'say "hi"', None, ""], False),
        ([None, None], False),
        ([], False),
    ],
)
def test_a_column_holds_a_wrapped_value_only_where_a_value_holds_it(
    values: list[str | None], held: bool
) -> None:
    import pyarrow as pa

    column = pa.chunked_array([pa.array(values, type=pa.string())])
    assert xlsx_text._holds_wrapped(column) is held
    assert xlsx_text._holds_wrapped(column.slice(1)) is (held and len(values) > 2)
