"""Shared texts bounded before a workbook is read: cells that repeat a long text are refused."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xlsxwriter
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.inputs.loading import load_file
from pkgreport.inputs.xlsx_safety import sheet_parts
from pkgreport.inputs.xlsx_strings import entry_sizes, exact_total
from test_loading_xlsx import refused, rewrite, workbook_bytes

LONG = "x" * 10_000
# The table's XML: <si><t>id</t></si> (18 bytes), then the long entry, <si><t>...</t></si>
# (10,016 bytes) and the table's closing </sst> (6), which the last entry runs to.
ID_ENTRY, LONG_ENTRY = 18, 10_016 + 6
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def repeated(cells: int) -> bytes:
    """A workbook whose header cell names "id" and whose next `cells` cells name LONG."""

    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet()
        sheet.write_string(0, 0, "id")
        for row in range(1, cells + 1):
            sheet.write_string(row, 0, LONG)

    return workbook_bytes(fill)


def test_cells_repeating_a_long_text_past_the_limit_are_refused_before_reading(
    tmp_path: Path,
) -> None:
    # 301 cells unpack to 3 MB of text from a file of a few KB, whose parts unpack to 0.4 MB.
    content = repeated(300)
    total = ID_ENTRY + 300 * LONG_ENTRY
    issue = refused(tmp_path, content, Settings(max_xlsx_uncompressed_bytes=total - 1))
    assert issue.message == (
        "refused: the cells of sheet 'Sheet1' would unpack to 3,006,618 bytes of text (they "
        "repeat long shared texts), over the limit of 3,006,617 (possible zip bomb); export "
        "the data again"
    )


def test_the_same_cells_within_the_limit_are_read(tmp_path: Path) -> None:
    path = tmp_path / "appointments.xlsx"
    path.write_bytes(repeated(300))
    limit = ID_ENTRY + 300 * LONG_ENTRY
    table, issues = load_file(path, "appointments", Settings(max_xlsx_uncompressed_bytes=limit))
    assert issues == [] and table is not None
    assert list(table.frame["id"]) == [LONG] * 300


def test_cells_all_naming_one_place_are_counted_by_their_bytes_not_their_reference(
    tmp_path: Path,
) -> None:
    # 300 cells all written at A2: the grid holds two cells, the reader still meets 301.
    content = repeated(300)
    sheet = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")
    same_place = re.sub(
        rb'<c r="A([0-9]+)"', lambda m: b'<c r="A1"' if m[1] == b"1" else b'<c r="A2"', sheet
    )
    assert same_place.count(b'<c r="A2"') == 300
    limit = ID_ENTRY + 300 * LONG_ENTRY - 1
    issue = refused(
        tmp_path,
        rewrite(content, {"xl/worksheets/sheet1.xml": same_place}),
        Settings(max_xlsx_uncompressed_bytes=limit),
    )
    assert issue.message == (
        "refused: the cells of sheet 'Sheet1' would unpack to 3,006,618 bytes of text (they "
        "repeat long shared texts), over the limit of 3,006,617 (possible zip bomb); export "
        "the data again"
    )


def test_entries_are_measured_with_or_without_a_namespace_prefix() -> None:
    plain = b'<sst count="2"><si><t>ab</t></si><si><t xml:space="preserve"> c</t></si></sst>'
    assert entry_sizes([plain[:22], plain[22:]]).tolist() == [18, 45]
    prefixed = b"<x:sst><x:si><x:t>ab</x:t></x:si><x:si><x:t>c</x:t></x:si></x:sst>"
    assert entry_sizes([prefixed]).tolist() == [26, 33]
    assert entry_sizes([b"<sst/>"]).tolist() == []


def test_a_cell_naming_an_entry_past_the_table_counts_as_the_longest() -> None:
    sizes = np.array([5, 70, 9], dtype=np.int64)
    cells = b'<c r="A1" t="s"><v>1</v></c><c r="A2" t="s"><v>7</v></c><c r="A3"><v>2</v></c>'
    odd = b"<c t='s' r=\"B1\">\n<v> 2 </v></c>"
    # The third cell is a number, not shared text, so it names nothing.
    assert exact_total([cells, odd], sizes) == 70 + 70 + 9


@pytest.mark.skipif(
    not CORPUS.is_dir(), reason="the shared corpus folder is not beside the repository"
)
def test_apache_pois_shared_strings_proof_of_concept_is_refused_by_validate(
    tmp_path: Path,
) -> None:
    # 110 KB: 12,000 cells naming one 1 MB text, 12 GB for the reader.
    source = CORPUS / "poi__poc-shared-strings.xlsx"
    (tmp_path / "appointments.xlsx").write_bytes(source.read_bytes())
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        "  ERROR: appointments.xlsx: refused: the cells of sheet 'Tabelle1' would unpack "
        "to 12,583,200,000 bytes of text (they repeat long shared texts), over the limit of "
        "1,073,741,824 (possible zip bomb); export the data again\n"
    ) in result.output


def test_sheets_are_named_from_the_workbook_and_its_relationships() -> None:
    def two_sheets(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("Appointments").write_string(0, 0, "id")
        book.add_worksheet("Notes & more").write_string(0, 0, "id")

    content = workbook_bytes(two_sheets)
    assert sheet_parts(zipfile.ZipFile(io.BytesIO(content))) == {
        "Appointments": "xl/worksheets/sheet1.xml",
        "Notes & more": "xl/worksheets/sheet2.xml",
    }
    # Relationships that cannot be read place no sheet: a refusal then names the zip part.
    damaged = rewrite(content, {"xl/_rels/workbook.xml.rels": b"not xml"})
    archive = zipfile.ZipFile(io.BytesIO(damaged))
    assert sheet_parts(archive) == {}
