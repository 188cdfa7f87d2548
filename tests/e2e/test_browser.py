"""A real browser: `streamlit run` on 127.0.0.1 and headless Debian Chromium driven by Playwright.

Every page is opened by URL on a fresh server, waited on until its script has
finished and its charts are drawn, and checked for exception boxes and console
errors. Screenshots go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.server import SCREENSHOTS, browser_page, wait_for_page
from tests.e2e.server import streamlit_server as streamlit_server_ctx
from ui.nav import PAGES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_chromium(streamlit_server, browser, info):
    page, console_errors = browser_page(browser)
    url = f"{streamlit_server}/" if info is PAGES[0] else f"{streamlit_server}/{info.url_path}"
    page.goto(url)
    wait_for_page(page, min_charts=info.min_charts)
    assert page.locator("[data-testid=stException]").count() == 0
    assert page.locator("[data-testid=stVegaLiteChart]").count() >= info.min_charts
    title = page.locator("h1").first.inner_text()
    assert info.title.split()[0] in title or info is PAGES[0]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{info.url_path}.png"), full_page=True)
    assert console_errors == [], console_errors
    page.close()


def test_steps_page_reacts_to_a_click(streamlit_server, browser):
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/normalization-steps")
    wait_for_page(page, min_charts=2)
    seed_box = page.get_by_label("Global seed", exact=True)
    assert seed_box.input_value() == "0"
    page.get_by_role("button", name="New batch").click()
    page.wait_for_function("() => document.querySelector('[aria-label=\"Global seed\"]').value === '1'")
    wait_for_page(page, min_charts=2)
    assert "seed=1" in page.url
    assert page.locator("[data-testid=stException]").count() == 0
    assert console_errors == [], console_errors
    page.close()


def test_a_deep_link_as_the_first_request_of_a_fresh_server(browser):
    """The class scenario: the app just woke up and a student opens a shared page link first."""
    with streamlit_server_ctx() as (url, _proc):
        page, console_errors = browser_page(browser)
        page.goto(f"{url}/normalization-steps?seed=5")
        wait_for_page(page, min_charts=2)
        assert page.locator("text=does not seem to exist").count() == 0
        assert console_errors == [], console_errors
        assert page.get_by_label("Global seed", exact=True).input_value() == "5"
        page.close()


def test_a_download_delivers_the_table_as_csv(streamlit_server, browser):
    """The download is made on click (deferred): the file arrives and holds the page's table."""
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/normalization-steps?N=16&C=3")
    wait_for_page(page, min_charts=2)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the table (CSV)").click()
    assert download.value.suggested_filename == "batchnorm_steps.csv"
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "example,x[f0],x̂[f0],y[f0],x[f1],x̂[f1],y[f1],x[f2],x̂[f2],y[f2]"
    assert len(rows) == 1 + 16 and all(len(r.split(",")) == 10 for r in rows[1:])
    assert console_errors == [], console_errors
    page.close()
