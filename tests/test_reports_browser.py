"""The HTML report in a real browser (Debian's chromium, headless, via Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_report_context
from pkgreport.reports.atomic import write_atomic
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


def _require_browser() -> None:
    """Fail (CI must run this) unless PKGREPORT_SKIP_EXTERNAL=1 asks to skip."""
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright's Python API (pip install playwright; no browser download needed)")
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


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table}-table tbody tr:not([hidden])",
        f"rows => rows.map(r => r.cells[{index}].textContent.trim())",
    )


def test_report_loads_clean_sorts_filters_and_is_screenshotted(browser, report_url) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = _Watch(page, report_url)
    page.goto(report_url, wait_until="load")

    assert page.title() == "Packages and account credit — Demo Clinic"
    # The hostile name is text on the page, and no script of its ran.
    assert page.get_by_text("<script>alert(1)</script>").count() == 2
    assert watch.dialogs == []

    assert _column(page, "credit", 0) == ["P003", "P004", "P005", "P006"]
    page.click("#credit-table th:nth-child(6) button")  # Credit, ascending
    assert _column(page, "credit", 0) == ["P006", "P004", "P005", "P003"]
    assert _column(page, "credit", 5) == ["$0.00", "$9.99", "$40.00", "$120.50"]
    assert page.get_attribute("#credit-table th:nth-child(6)", "aria-sort") == "ascending"
    page.click("#credit-table th:nth-child(6) button")  # descending
    assert _column(page, "credit", 0) == ["P003", "P005", "P004", "P006"]
    page.click("#credit-table th:nth-child(7) button")  # Last movement: dates, not text
    assert _column(page, "credit", 6) == ["01/06/2025", "15/10/2026", "02/11/2026", "19/11/2026"]

    page.fill("input[data-table='credit']", "sum(")
    assert _column(page, "credit", 0) == ["P004"]
    assert page.text_content("#credit-count") == "1 of 4 rows shown"
    page.fill("input[data-table='credit']", "")
    assert len(_column(page, "credit", 0)) == 4

    # Charts render as inline SVG with their accessible names.
    assert page.locator("svg[role=img]").count() == 3

    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert watch.errors == []
    assert watch.requests == []
    page.close()


def test_readable_on_a_phone_and_printable(browser, report_url) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2)
    watch = _Watch(page, report_url)
    page.goto(report_url, wait_until="load")
    # The page itself never scrolls sideways; wide tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    wrap = page.eval_on_selector("#cases .table-wrap", "e => [e.scrollWidth, e.clientWidth]")
    assert wrap[0] > wrap[1]
    page.screenshot(path=str(ARTIFACTS / "report-phone.png"), full_page=False)
    page.emulate_media(media="print")
    assert page.is_hidden("input[data-table='credit']")
    assert watch.errors == [] and watch.requests == []
    page.close()
