"""The HTML report: visible text (golden), escaping, self-containment, caps and charts."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import HOSTILE_NAMES, make_report_context
from pkgreport.reports import charts
from pkgreport.reports.filters import (
    excel_money_format,
    format_cell,
    format_date,
    format_datetime,
    format_money,
    sort_key,
)
from pkgreport.reports.html import _column_total, make_environment, render_html, templates_dir
from pkgreport.reports.model import ChartData, Column, RollRow, Table

_BLOCK = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "tr",
    "li",
    "section",
    "table",
    "caption",
    "figcaption",
    "nav",
    "header",
    "summary",
    "dt",
    "dd",
    "details",
    "article",
    "label",
}


class _TextExtractor(HTMLParser):
    """Visible text, one block per line; skips <script>, <style> and chart drawings (not titles)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.in_svg = 0
        self.svg_title = False

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "svg":
            self.in_svg += 1
        elif tag == "title" and self.in_svg:
            self.svg_title = True
            self._flush()
        elif tag in ("td", "th"):
            self.current.append(" | ")
        if tag in _BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "svg":
            self.in_svg -= 1
        elif tag == "title" and self.in_svg:
            self.svg_title = False
            self._flush()
        if tag in _BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip or (self.in_svg and not self.svg_title):
            return
        self.current.append(data)


def visible_text(page: str) -> str:
    parser = _TextExtractor()
    parser.feed(page)
    parser.close()
    parser._flush()
    return "\n".join(parser.lines) + "\n"


def test_html_text_matches_golden(report_context, golden) -> None:
    golden("report.html.txt", visible_text(render_html(report_context)))


def test_same_context_same_page_without_a_clock(report_context) -> None:
    page = render_html(report_context)
    assert render_html(make_report_context()) == page
    assert "generated" not in visible_text(page)
    stamped = render_html(make_report_context(generated_at="2026-11-21 09:30"))
    assert "generated 2026-11-21 09:30" in visible_text(stamped)


def test_hostile_names_are_escaped_text(report_context) -> None:
    page = render_html(report_context)
    assert "<script>alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # its finding and its case
    # The only script element is the report's own.
    assert len(re.findall(r"<script\b", page)) == 1
    text = visible_text(page)
    for name in HOSTILE_NAMES.values():
        if name.strip() != "-Minus Smith":
            assert name.strip() in text


def test_page_is_self_contained_with_a_strict_csp(report_context) -> None:
    page = render_html(report_context)
    # No attribute or CSS may point anywhere but inside the page.
    refs = re.findall(
        r"""\b(?:src|href|action|srcset|poster|data|formaction)\s*=\s*["']?([^"'\s>]*)""", page
    )
    assert refs and all(ref.startswith("#") for ref in refs)
    assert not re.search(r"url\((?!#)", page)
    assert "@import" not in page and "<link" not in page and "<iframe" not in page
    [script] = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    [csp] = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp == (
        "default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src data:; "
        f"script-src &#39;sha256-{digest}&#39;; base-uri &#39;none&#39;; "
        "form-action &#39;none&#39;"
    )


def test_tables_are_capped_with_a_note_pointing_to_the_workbook() -> None:
    page = render_html(make_report_context(max_rows=2))
    cases = page[page.index('id="cases-table"') :]
    cases = cases[: cases.index("</table>")]
    assert cases.count("<tr") == 1 + 2 + 1  # header, two shown rows, totals
    text = visible_text(page)
    assert "The page holds 2 of 4 rows — see the workbook for all of them." in text
    # Totals still cover every row, not only those shown, and say so.
    assert "The totals add up all 4 rows, shown or not." in text
    assert "| Total | | | | | | | 2 | | | $1,670.00" in text


def test_a_capped_table_keeps_the_rows_needing_attention_first() -> None:
    ctx = make_report_context(max_rows=2)
    credit = next(t for t in ctx.tables if t.key == "credit")
    frame = credit.frame.copy()
    frame["holds_credit"] = [False, True, False, True]  # P004 and P006 need attention
    tables = tuple(
        Table(**{**vars(t), "frame": frame}) if t.key == "credit" else t for t in ctx.tables
    )
    page = render_html(make_report_context(max_rows=2, tables=tables))
    body = _between(_between(page, 'id="credit-table"', "</table>"), "<tbody>", "</tbody>")
    assert re.findall(r"<tr[^>]*>\n<td>(P\d+)</td>", body) == ["P004", "P006"]
    text = visible_text(page)
    assert (
        "The page holds 2 of 4 rows, those that need attention first — see the workbook "
        "for all of them."
    ) in text


def test_a_table_the_workbook_also_cuts_points_to_its_csv() -> None:
    ctx = make_report_context()
    credit = next(t for t in ctx.tables if t.key == "credit")
    changed = Table(**{**vars(credit), "all_rows_in": "pkgreport credit"})
    tables = tuple(changed if t.key == "credit" else t for t in ctx.tables)
    page = render_html(make_report_context(max_rows=2, workbook_all_rows_max=3, tables=tables))
    assert (
        "The page holds 2 of 4 rows, those that need attention first — see the CSV from "
        '"pkgreport credit <exports folder>" for all of them.'
    ) in visible_text(page)


def test_workbook_only_tables_stay_out_of_the_page(report_context) -> None:
    page = render_html(report_context)
    assert "31/02/2026" not in page
    assert 'id="validation' not in page


def test_sort_keys_make_numbers_and_dates_sortable(report_context) -> None:
    page = render_html(report_context)
    assert '<td class="num" data-sort="12050">$120.50</td>' in page
    assert '<td data-sort="2027-03-31T00:00:00">31/03/2027</td>' in page
    assert '<th scope="col" class="num" data-kind="num" data-title="Credit">' in page


def _between(page: str, start: str, end: str) -> str:
    """The part of `page` from the first `start` up to the next `end`."""
    part = page[page.index(start) :]
    return part[: part.index(end)]


def test_rows_needing_no_attention_are_hidden_behind_a_counted_switch(report_context) -> None:
    table = _between(render_html(report_context), '<section id="credit"', "</section>")
    # P006 holds no credit: on the page, hidden until "show all"; its totals still count.
    [quiet] = re.findall(r'<tr class="quiet" hidden>.*?</tr>', table, flags=re.DOTALL)
    assert "<td>P006</td>" in quiet
    assert table.count("<tr") == 1 + 4 + 1
    text = visible_text(table)
    assert "Show all rows (1 hidden: nothing to act on)" in text
    assert "3 of 4 rows shown" in text
    assert "The totals add up all 4 rows, shown or not." in text


def test_secondary_columns_come_after_the_figures_and_row_numbers_are_plain(report_context) -> None:
    kind = _between(render_html(report_context), 'id="kind-findings-dormant-credit"', "</article>")
    header = re.findall(
        r'<th scope="col" class="([^"]+)"[^>]*><button type="button" class="sort">'
        r"([^<]+)</button>",
        _between(kind, "<thead>", "</thead>"),
    )
    assert header == [
        ("txt", "Severity"),
        ("txt", "Patient"),
        ("txt", "Patient name"),
        ("txt", "Record"),
        ("num", "Amount"),
        ("txt", "What it means"),
        ("txt", "File"),
        ("num sec", "Row"),
    ]
    # A spreadsheet row number is looked up, not read as a quantity: no thousands separator.
    assert '<td class="num sec" data-sort="1096">1096</td>' in kind


def test_workbook_only_columns_stay_off_the_page() -> None:
    ctx = make_report_context()
    columns = (*ctx.findings.columns, Column("code", "Code", "id", html=False))
    findings = Table(**{**vars(ctx.findings), "columns": columns[1:]})
    page = render_html(make_report_context(findings=findings))
    assert "OVER_BOOKED" not in page and "UNAPPLIED_CREDIT" not in page


def test_findings_grouped_by_kind_with_explanations(report_context) -> None:
    text = visible_text(render_html(report_context))
    over = text.index("High Cases over-booked (2 findings)")
    unapplied = text.index("Medium Credit not applied to open invoices (2 findings)")
    dormant = text.index("Low Dormant credit (1 finding)")
    assert over < unapplied < dormant
    assert "What to do: Apply the credit to the open invoice in Cliniko." in text


def test_three_charts_inline_with_accessible_titles(report_context) -> None:
    page = render_html(report_context)
    assert len(re.findall(r'<svg role="img" aria-labelledby="chart-[a-z]+-title"', page)) == 3
    assert '<title id="chart-ageing-title">Unapplied credit by age</title>' in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # ids unique across charts and tables


def test_empty_chart_series_leave_the_chart_out() -> None:
    page = render_html(make_report_context(charts=ChartData(ageing=(("0-30", 100),))))
    assert page.count("<svg") == 1


def test_utilisation_chart_shows_unlimited_cases_apart_and_says_so(report_context) -> None:
    svg = charts.utilisation_chart((("up to 25%", 2), ("used up", 1)), "Use", unlimited=4)
    # pygal writes horizontal bars bottom up: the grey "no maximum", last on screen, comes first.
    assert re.findall(r">([^<>]+)</text>", svg) == [
        "no maximum",
        "used up",
        "up to 25%",
        "4",
        "1",
        "2",
    ]
    assert re.findall(r'<g class="bar" style="fill: (#[0-9a-f]{6})', svg) == [
        "#a5a5a5",
        "#4472c4",
        "#4472c4",
    ]
    assert re.findall(r"<desc [^>]*>([^<]*)</desc>", svg) == [
        "up to 25%: 2 cases; used up: 1 case; no maximum: 4 cases."
    ]
    text = visible_text(render_html(report_context))
    assert (
        "Case utilisation. How much of each package has been used (3 cases with a maximum). "
        "1 case with no maximum (unlimited) counted apart, in grey."
    ) in text


def test_charts_are_deterministic_and_label_exact_amounts() -> None:
    rows = [RollRow("Oct 2026", 0, 1001, 0, 0, 1001)]
    assert charts.rollforward_chart(rows, "t") == charts.rollforward_chart(rows, "t")
    svg = charts.ageing_chart([("0-30", 123456789)], "Ageing")
    assert "$1,234,567.89" in svg
    assert "<!--" not in svg and "<script" not in svg and "pygal.org" not in svg


def test_no_findings_and_empty_tables_render() -> None:
    ctx = make_report_context()
    empty = Table(
        key="findings",
        sheet="Findings",
        title="Findings",
        description="d",
        columns=ctx.findings.columns,
        frame=ctx.findings.frame.iloc[0:0],
    )
    text = visible_text(render_html(make_report_context(findings=empty, finding_kinds=())))
    assert "No findings: nothing needs attention." in text


def test_templates_come_from_the_checkout_and_undefined_is_an_error(report_context) -> None:
    import pkgreport

    package = Path(pkgreport.__file__).resolve().parent
    checkout = package.parents[1]
    if (checkout / "pyproject.toml").is_file():  # running from the source tree
        assert templates_dir() == checkout / "templates"
    else:  # an installed wheel: the templates ship inside the package
        assert templates_dir() == package / "templates"
    assert (templates_dir() / "base.html.j2").is_file()
    assert (templates_dir() / "partials" / "findings.html.j2").is_file()
    env = make_environment(report_context)
    assert env.autoescape is True
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


@pytest.mark.parametrize(
    ("cents", "expected"),
    [
        (0, "$0.00"),
        (1, "$0.01"),
        (-1, "-$0.01"),
        (123456789, "$1,234,567.89"),
        (-100, "-$1.00"),
        (10**17 + 5, "$1,000,000,000,000,000.05"),
        (pd.NA, ""),
        (None, ""),
    ],
)
def test_format_money_is_exact(cents, expected: str) -> None:
    assert format_money(cents) == expected


def test_formatters_by_kind_and_date_order() -> None:
    ts = pd.Timestamp("2026-03-04 05:06")
    assert format_date(ts, "dmy") == "04/03/2026"
    assert format_date(ts, "mdy") == "03/04/2026"
    assert format_date(date(2026, 3, 4), "ymd") == "2026-03-04"
    assert format_datetime(ts) == "04/03/2026 05:06"
    assert format_cell(pd.NaT, "date") == ""
    assert format_cell(1234567, "int") == "1,234,567"
    assert format_cell(0.755, "percent") == "76%"
    assert format_cell(True, "bool") == "yes"
    assert format_cell(float("nan"), "text") == ""
    assert sort_key(-5, "money") == "-5"
    assert sort_key(pd.NA, "money") == ""
    assert excel_money_format("€") == '"€"#,##0.00;-"€"#,##0.00'


def test_column_kinds_and_table_checks() -> None:
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError, match="unknown kind"):
        Column("a", "A", "currency")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lacks columns"):
        Table(
            key="t", sheet="T", title="t", description="", columns=(Column("b", "B"),), frame=frame
        )
    with pytest.raises(ValueError, match="forbids"):
        Table(key="t", sheet="a/b", title="t", description="", columns=(), frame=frame)
    with pytest.raises(ValueError, match="unique"):
        make_report_context(
            tables=(
                Table(key="t", sheet="Summary", title="t", description="", columns=(), frame=frame),
            )
        )


def test_outputs_are_identical_across_processes(report_context) -> None:
    # pygal names each drawing with a random uuid unless pinned; a fresh
    # interpreter catches anything left to chance (hash seeds, salts, clocks).
    import hashlib
    import subprocess
    import sys

    import pkgreport
    from pkgreport.reports.excel import render_workbook

    tests = Path(__file__).parent
    # The child imports the very pkgreport this process uses (checkout or installed).
    package_root = Path(pkgreport.__file__).resolve().parents[1]
    code = (
        "import sys, hashlib; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import conftest\n"
        "from pkgreport.reports.excel import render_workbook\n"
        "from pkgreport.reports.html import render_html\n"
        "c = conftest.make_report_context()\n"
        "print(hashlib.sha256(render_workbook(c)).hexdigest(),"
        " hashlib.sha256(render_html(c).encode()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(package_root), str(tests)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert out == [
        hashlib.sha256(render_workbook(report_context)).hexdigest(),
        hashlib.sha256(render_html(report_context).encode()).hexdigest(),
    ]


def test_one_date_style_per_date_order_prose_and_tables() -> None:
    text = visible_text(render_html(make_report_context(date_order="mdy")))
    assert "As of Nov 20, 2026 · period Nov 1, 2026 to Nov 30, 2026" in text
    assert (
        '| P001 | =HYPERLINK("http://x") | 10 x Physio | 10 | 11 | 0 | 1 | over-booked | 03/31/2027 |'
        in text
    )
    text = visible_text(render_html(make_report_context(date_order="dmy")))
    assert "As of 20 Nov 2026 · period 1 Nov 2026 to 30 Nov 2026" in text
    assert "over-booked | 31/03/2027 |" in text


def test_phone_cards_label_each_cell_with_its_column_title_escaped_for_css() -> None:
    ctx = make_report_context()
    credit = next(t for t in ctx.tables if t.key == "credit")
    columns = (*credit.columns[:-1], Column("last_movement", 'Last "move" </style>', "date"))
    tables = tuple(
        Table(**{**vars(t), "columns": columns}) if t.key == "credit" else t for t in ctx.tables
    )
    page = render_html(make_report_context(tables=tables))
    [style] = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    rules = re.findall(r"#credit-table td:nth-child\((\d)\)::before \{ content: (.*?); \}", style)
    assert rules == [
        ("1", '"Patient"'),
        ("2", '"Patient name"'),
        ("3", '"Received"'),
        ("4", '"Applied"'),
        ("5", '"Refunded"'),
        ("6", '"Credit"'),
        ("7", '"Last \\22 move\\22  \\3c /style\\3e "'),
    ]
    assert "</style>" not in style


_CENTS = st.integers(-(2**63) + 1, 2**63 - 1)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-(10**9), 10**9), _CENTS, st.none()), max_size=20),
    st.sampled_from(["int64", "Int64", "object"]),
)
def test_a_total_is_the_exact_sum_even_past_int64(values: list[int | None], dtype: str) -> None:
    if dtype == "int64":
        values = [v for v in values if v is not None]
    column = pd.Series(values, dtype=dtype)
    assert _column_total(column) == sum(v for v in values if v is not None)
    assert type(_column_total(column)) is int
