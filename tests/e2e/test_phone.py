"""Phones: no page scrolls sideways at 400×800; charts take the container's width and
equations scroll inside their own box."""

from __future__ import annotations

import pytest

from tests.e2e.server import browser_page, wait_for_page
from ui.nav import PAGES

pytestmark = pytest.mark.e2e

OVERFLOW = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  return {doc: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          main: main.scrollWidth - main.clientWidth};
}"""


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_no_page_scrolls_sideways_on_a_phone(streamlit_server, browser, info):
    page, console_errors = browser_page(browser, width=400, height=800)
    page.goto(f"{streamlit_server}/" if info is PAGES[0] else f"{streamlit_server}/{info.url_path}")
    wait_for_page(page, min_charts=info.min_charts)
    page.wait_for_timeout(1000)  # charts size themselves after the first paint
    overflow = page.evaluate(OVERFLOW)
    assert overflow == {"doc": 0, "main": 0}, overflow
    assert console_errors == [], console_errors
    page.close()
