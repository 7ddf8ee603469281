"""The workbook in a real spreadsheet program: LibreOffice converts every sheet to CSV."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (
    HOSTILE_NAMES,
    make_report_context,
    pdf_pages_text,
    pdftotext_program,
    require_program,
)
from pkgreport.config import Settings
from pkgreport.pipeline import run
from pkgreport.reports.context import build_context
from pkgreport.reports.excel import HEADER_ROW, render_workbook
from pkgreport.reports.filters import format_cell, format_int, format_money
from pkgreport.reports.model import Column, ReportContext, Table

pytestmark = pytest.mark.libreoffice

# Filter options: comma, double quote, UTF-8, from line 1, ..., cells "as shown" (formatted),
# every sheet (-1) into <name>-<sheet>.csv. Needs LibreOffice 7.2 or later.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,true,false,false,-1"
# LibreOffice shows the cached results of an .xlsx's formulas by default; this profile setting
# makes it recalculate every formula on load, so the totals checked are LibreOffice's own sums.
RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode"
 oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def _soffice() -> str:
    return require_program(
        ("soffice", "libreoffice"),
        "the LibreOffice test needs soffice: apt-get install -y libreoffice-calc-nogui",
    )


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    soffice = _soffice()
    folder = tmp_path_factory.mktemp("libreoffice")
    source = folder / "report.xlsx"
    source.write_bytes(render_workbook(make_report_context()))
    out = folder / "csv"
    # A private profile: no clash with a desktop LibreOffice or a parallel test run.
    profile_dir = folder / "profile"
    (profile_dir / "user").mkdir(parents=True)
    (profile_dir / "user" / "registrymodifications.xcu").write_text(RECALC_ALWAYS)
    profile = profile_dir.as_uri()
    result = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            CSV_FILTER,
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    files = sorted(out.glob("report-*.csv"))
    assert result.returncode == 0 and files, f"soffice failed: {result.stdout}\n{result.stderr}"
    parsed = {}
    for path in files:
        with path.open(encoding="utf-8", newline="") as handle:
            parsed[path.stem.removeprefix("report-")] = list(csv.reader(handle))
    return parsed


def test_every_sheet_is_read(sheets) -> None:
    assert set(sheets) == {
        "Summary",
        "Findings",
        "Cases",
        "Credit",
        "Ageing",
        "Roll-forward",
        "Validation",
    }


def _expected_cell(value: object, column: Column) -> str:
    kind = column.kind
    # LibreOffice keeps line breaks in a cell as LF only.
    text = format_cell(value, kind).replace("\r\n", "\n")
    if kind == "int" and not column.grouped and text:
        text = format_int(value, grouped=False)
    if kind == "bool":
        return {"yes": "TRUE", "no": "FALSE"}.get(text, text)
    return text


def _check_table(rows: list[list[str]], table: Table) -> None:
    columns = list(table.columns)
    keys = [c.key for c in columns]
    header = rows[HEADER_ROW]
    assert header[: len(columns)] == [c.title for c in columns]
    body = rows[HEADER_ROW + 1 : HEADER_ROW + 1 + len(table.frame)]
    for i, record in enumerate(table.frame.to_dict("records")):
        expected = [_expected_cell(record[k], c) for k, c in zip(keys, columns, strict=True)]
        assert body[i][: len(columns)] == expected, (table.key, i)


@pytest.mark.parametrize(
    "key", ["findings", "cases", "credit", "ageing", "rollforward", "validation"]
)
def test_table_cells_as_libreoffice_shows_them(sheets, key: str) -> None:
    ctx = make_report_context()
    table = ctx.findings if key == "findings" else next(t for t in ctx.tables if t.key == key)
    _check_table(sheets[table.sheet], table)


def test_totals_recalculated_by_libreoffice_agree_with_the_summary(sheets) -> None:
    summary = {row[0]: row[1] for row in sheets["Summary"] if len(row) > 1}
    assert summary["Credit liability"] == format_money(17049) == "$170.49"
    credit_total = sheets["Credit"][HEADER_ROW + 5]
    assert credit_total[:6] == ["Total", "", "$260.00", "$79.51", "$10.00", "$170.49"]
    ageing_total = sheets["Ageing"][HEADER_ROW + 7]
    assert ageing_total == ["Total", "3", "$170.49"]
    cases_total = sheets["Cases"][HEADER_ROW + 5]
    assert cases_total == ["Total", "", "", "", "", "", "", "2", "", "", "$1,670.00", ""]


def test_hostile_text_stays_text(sheets) -> None:
    names = [row[3] for row in sheets["Findings"][HEADER_ROW + 1 :]]
    assert names == [HOSTILE_NAMES[p] for p in ("P001", "P002", "P003", "P004", "P005")]
    assert sheets["Credit"][HEADER_ROW + 4][1] == "\tTabby Cat"
    assert sheets["Validation"][HEADER_ROW + 2][4] == "=1+1\nline two"  # CR dropped by LibreOffice


# ------------------------------------------------------------------------------------ printing

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
# The sample clinic's workbook, printed by LibreOffice on its default paper, fits in this many.
MAX_PRINTED_PAGES = 30


@pytest.fixture(scope="module")
def sample_printout(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportContext, list[str]]:
    """The sample clinic's workbook printed to PDF by LibreOffice: the text of each page."""
    soffice = _soffice()
    pdftotext_program()  # before the slow conversion: fail or skip at once
    folder = tmp_path_factory.mktemp("printout")
    ctx = build_context(run(Settings(input_dir=SAMPLE)))
    source = folder / "sample.xlsx"
    source.write_bytes(render_workbook(ctx))
    profile = folder / "profile"
    result = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(folder),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    pdf = folder / "sample.pdf"
    assert result.returncode == 0 and pdf.exists(), (
        f"soffice failed: {result.stdout}\n{result.stderr}"
    )
    return ctx, pdf_pages_text(pdf)


def _sheet_of(page: str) -> str:
    # The footer's middle part reads "<sheet>, as of <date>" (see excel._set_up_printing).
    [footer] = [line for line in page.splitlines() if re.search(r"Page \d+ of \d+\s*$", line)]
    title, middle, _page = re.split(r"\s{2,}", footer.strip())
    sheet, as_of = middle.split(", as of ")
    assert (title, as_of) == ("Packages and account credit", "31 Oct 2026")
    return sheet


def test_sample_workbook_prints_one_page_wide_in_few_pages(sample_printout) -> None:
    ctx, pages = sample_printout
    assert 1 <= len(pages) <= MAX_PRINTED_PAGES
    sheets = [_sheet_of(page) for page in pages]
    tables = {t.sheet: t for t in (ctx.findings, *ctx.tables)}
    assert sheets.count("Summary") == 1  # the Summary on one page
    assert sheets[0] == "Summary" and set(sheets) == {"Summary", *tables}
    for page, sheet in zip(pages, sheets, strict=True):
        if sheet == "Summary":
            assert "Settings" in page and "Column mapping" in page  # nothing cut off
            continue
        # The header row repeats on every page, whole: no column went to another page.
        titles = [c.title for c in tables[sheet].columns]
        header = max(page.splitlines(), key=lambda line: sum(t in line for t in titles))
        missing = [t for t in titles if t not in header]
        assert missing == [], (sheet, missing)
