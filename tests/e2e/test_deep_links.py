"""Every URL a user might type works as the very first request of a fresh server.

With no pages/ folder beside app.py Streamlit never enters its legacy pages-directory
mode, so the router always runs: a page's URL, or an alias people type (a file's stem,
/home, /welcome), shows that page with the sidebar; a URL that names no page shows the
home page with Streamlit's "Page not found" notice. Each URL gets its own fresh server.
"""

from __future__ import annotations

import pytest

from tests.e2e.server import browser_page, streamlit_server, url_params, wait_for_page
from ui.nav import ALIASES, PAGES

pytestmark = pytest.mark.e2e

UNKNOWN = ["nope", "steps.py", "Normalization-Steps"]  # (a nested path such as /a/b is not an app URL at all)


def _open_first(browser, path: str):
    with streamlit_server() as (url, _proc):
        page, console_errors = browser_page(browser)
        page.goto(f"{url}/{path}?seed=5")
        wait_for_page(page)
        page.wait_for_timeout(800)  # the not-found notice arrives after the first run
        facts = {
            "h1": page.locator("h1").first.inner_text(),
            "sidebar": page.locator("[data-testid=stSidebar]").get_by_label("Global seed", exact=True).input_value(),
            "nav": page.locator("[data-testid=stSidebar] [data-testid=stSidebarNavLink]").count(),
            "not_found": page.get_by_text("Page not found").count(),
            "exceptions": page.locator("[data-testid=stException]").count(),
            "params": url_params(page),
            "errors": console_errors,
        }
        page.close()
        return facts


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_a_page_url_as_the_first_request_shows_the_routed_page(browser, info):
    facts = _open_first(browser, "" if info is PAGES[0] else info.url_path)
    assert info.title.split()[-1] in facts["h1"] or info is PAGES[0], facts["h1"]
    assert facts["sidebar"] == "5" and facts["nav"] == len(PAGES)  # the router's sidebar, not a bare page
    assert facts["not_found"] == 0 and facts["exceptions"] == 0
    assert facts["errors"] == [], facts["errors"]


@pytest.mark.parametrize("alias", ALIASES)
def test_a_typed_alias_as_the_first_request_shows_its_page(browser, alias):
    """A file's stem (/steps), /home and /welcome hand over to their page, keeping the link's parameters."""
    facts = _open_first(browser, alias)
    info = next(p for p in PAGES if p.path == ALIASES[alias])
    assert (facts["h1"] == "BatchNorm Lab") if info is PAGES[0] else info.title.split()[-1] in facts["h1"], facts
    assert facts["sidebar"] == "5" and facts["nav"] == len(PAGES) and facts["not_found"] == 0
    assert facts["exceptions"] == 0 and facts["errors"] == [], facts


@pytest.mark.parametrize("path", UNKNOWN)
def test_a_url_naming_no_page_falls_back_home_with_a_notice(browser, path):
    facts = _open_first(browser, path)
    assert facts["h1"] == "BatchNorm Lab" and facts["not_found"] == 1
    assert facts["sidebar"] == "5" and facts["nav"] == len(PAGES) and facts["exceptions"] == 0
