"""The HTML report in a real browser (Debian's chromium, headless, via Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_report_context, pdf_pages_text
from pkgreport.atomic import write_atomic
from pkgreport.config import Settings
from pkgreport.engine.registry import FINDINGS
from pkgreport.pipeline import run
from pkgreport.reports.context import build_context
from pkgreport.reports.html import render_html

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
DESKTOP, PHONE = 1400, 390
# The sample clinic's page, printed by Chromium on its default paper, fits in this many pages.
MAX_PRINTED_PAGES = 15
# The smallest chart text, in CSS pixels as rendered, that stays legible on a phone.
MIN_CHART_TEXT_PX = 11


def _require_browser() -> None:
    """Fail (CI must run this) unless PKGREPORT_SKIP_EXTERNAL=1 asks to skip."""
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append(
            "Playwright's Python API (pip install playwright; no browser download needed)"
        )
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("PKGREPORT_SKIP_EXTERNAL") == "1":
            pytest.skip(message + " (skipped: PKGREPORT_SKIP_EXTERNAL=1)")
        pytest.fail(message + "; or set PKGREPORT_SKIP_EXTERNAL=1 to skip it locally")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def report_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_atomic(path, render_html(make_report_context()))
    return path.as_uri()


@pytest.fixture(scope="module")
def sample_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample clinic's report, as `pkgreport report sample_data` writes it."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("sample") / "sample.html"
    write_atomic(path, render_html(build_context(run(Settings(input_dir=SAMPLE)))))
    return path.as_uri()


class _Watch:
    """Console errors, page errors, dialogs and every request a page makes."""

    def __init__(self, page, url: str) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r) -> None:
            if r.request.url != url:
                self.requests.append(r.request.url)
                r.abort()
            else:
                r.continue_()

        page.route("**/*", route)
        page.on("request", lambda r: r.url != url and self.requests.append(r.url))


def _open(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    watch = _Watch(page, url)
    page.goto(url, wait_until="load")
    return page, watch


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table}-table tbody tr:not([hidden])",
        f"rows => rows.map(r => r.cells[{index}].textContent.trim())",
    )


def _footer(page, table: str) -> list[str]:
    return page.eval_on_selector(
        f"#{table}-table", "t => Array.from(t.tFoot.rows[0].cells, c => c.textContent.trim())"
    )


# Every figure column (numeric, not secondary) of every table on screen whose right edge lies
# beyond what its scrolling box shows, or beyond the window.
_FIGURES_OUT_OF_SIGHT = """
() => {
  const out = [];
  const width = document.documentElement.clientWidth;
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    if (wrap.offsetParent === null) continue;  // inside a closed group
    const box = wrap.getBoundingClientRect();
    const cells = wrap.querySelectorAll(
      "thead th.num:not(.sec), tbody tr:not([hidden]) td.num:not(.sec), tfoot td.num:not(.sec)");
    for (const cell of cells) {
      if (cell.offsetParent === null) continue;
      const r = cell.getBoundingClientRect();
      if (r.right > Math.min(box.right, width) + 1 || r.left < box.left - 1) {
        out.push(wrap.parentElement.closest("[id]").id + ": " + cell.textContent.trim());
        break;
      }
    }
  }
  return out;
}
"""

_SMALLEST_CHART_TEXT = """
() => Math.min(...Array.from(document.querySelectorAll("svg[role=img]"), svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return Math.min(...Array.from(svg.querySelectorAll("text"),
    t => parseFloat(getComputedStyle(t).fontSize) * scale));
}))
"""


def test_sort_filter_and_the_hidden_rows_switch_keep_the_totals_footer(browser, report_url) -> None:
    page, watch = _open(browser, report_url, DESKTOP)
    assert page.title() == "Packages and account credit — Demo Clinic"
    # The hostile name is text on the page, and no script of its ran.
    assert page.get_by_text("<script>alert(1)</script>").count() == 2
    assert watch.dialogs == []

    totals = ["Total", "", "$260.00", "$79.51", "$10.00", "$170.49", ""]
    # P006 holds no credit: hidden until every row is asked for; the totals count it all along.
    assert _column(page, "credit", 0) == ["P003", "P004", "P005"]
    assert page.text_content("#credit-count") == "3 of 4 rows shown"
    assert _footer(page, "credit") == totals
    page.check("input.show-all[data-table='credit']")
    assert _column(page, "credit", 0) == ["P003", "P004", "P005", "P006"]
    assert page.text_content("#credit-count") == "4 rows shown"

    page.click("#credit-table th:nth-child(6) button")  # Credit, ascending
    assert _column(page, "credit", 0) == ["P006", "P004", "P005", "P003"]
    assert _column(page, "credit", 5) == ["$0.00", "$9.99", "$40.00", "$120.50"]
    assert page.get_attribute("#credit-table th:nth-child(6)", "aria-sort") == "ascending"
    page.click("#credit-table th:nth-child(6) button")  # descending
    assert _column(page, "credit", 0) == ["P003", "P005", "P004", "P006"]
    assert _footer(page, "credit") == totals  # the footer never moves with a sort
    page.click("#credit-table th:nth-child(7) button")  # Last movement: dates, not text
    assert _column(page, "credit", 6) == ["01/06/2025", "15/10/2026", "02/11/2026", "19/11/2026"]

    page.fill("input[data-table='credit']", "sum(")
    assert _column(page, "credit", 0) == ["P004"]
    assert page.text_content("#credit-count") == "1 of 4 rows shown"
    assert _footer(page, "credit") == totals  # nor with a filter
    assert page.is_visible("#credit-table tfoot")
    page.fill("input[data-table='credit']", "")
    page.uncheck("input.show-all[data-table='credit']")
    assert _column(page, "credit", 0) == ["P005", "P004", "P003"]  # still sorted
    assert page.text_content("#credit-count") == "3 of 4 rows shown"

    # Charts render as inline SVG with their accessible names.
    assert page.locator("svg[role=img]").count() == 3
    page.screenshot(path=str(ARTIFACTS / "report-small.png"), full_page=True)
    assert watch.errors == []
    assert watch.requests == []
    page.close()


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_sample_report_fits_the_screen_and_shows_words_not_codes(
    browser, sample_url, width
) -> None:
    page, watch = _open(browser, sample_url, width)
    # The page itself never scrolls sideways, and no figure column needs a scroll to reach.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(_FIGURES_OUT_OF_SIGHT) == []
    text = page.evaluate("document.body.innerText")
    assert [code for code in FINDINGS if code in text] == []
    assert "TRUE" not in text and "FALSE" not in text
    # Findings are read by title, with what to do.
    assert FINDINGS["OVER_BOOKED"].title in text and FINDINGS["OVER_BOOKED"].todo in text
    if width == PHONE:
        # Each row is a card: nothing scrolls inside a table box either.
        boxes = page.eval_on_selector_all(
            ".table-wrap.cards",
            "ws => ws.filter(w => w.offsetParent).map(w => w.scrollWidth - w.clientWidth)",
        )
        assert boxes and max(boxes) <= 0
        assert page.evaluate(_SMALLEST_CHART_TEXT) >= MIN_CHART_TEXT_PX
    name = "report.png" if width == DESKTOP else "report-phone.png"
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)
    assert watch.errors == [] and watch.requests == []
    page.close()


def test_sample_report_prints_in_few_pages_and_hides_the_controls(browser, sample_url) -> None:
    page, watch = _open(browser, sample_url, DESKTOP)
    page.emulate_media(media="print")
    assert page.is_hidden("input[data-table='credit']")
    assert page.is_hidden("input.show-all[data-table='credit']")
    pdf = page.pdf(prefer_css_page_size=True)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    pages = pdf_pages_text(ARTIFACTS / "report.pdf")
    assert 1 <= len(pages) <= MAX_PRINTED_PAGES
    # A long table runs over several pages, each with the table's header row at its top.
    start = next(i for i, text in enumerate(pages) if "Packages (patient cases)" in text)
    end = next(i for i, text in enumerate(pages) if "Over-booked packages\n" in text)
    assert end > start  # the sample's packages fill more than a page
    for text in pages[start + 1 : end + 1]:
        first = next(line for line in text.splitlines() if line.strip())
        assert first.split()[:4] == ["Patient", "name", "Package", "Status"], first
    assert watch.errors == [] and watch.requests == []
    page.close()
