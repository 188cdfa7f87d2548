"""The presenter view on every page, in Chromium: one slide at a time, next/previous, at most
three controls in sight, and a link that reopens the same slide."""

from __future__ import annotations

import re

import pytest

from tests.e2e.server import browser_page, exceptions_and_failures, settle, url_params, wait_for_page
from ui.nav import PAGES
from ui.present import MAX_BAR_CONTROLS, SLIDE_KEY

pytestmark = pytest.mark.e2e
CONTENT = [p for p in PAGES[1:]]
CONTROLS = ", ".join(
    f"[data-testid={t}]"
    for t in ("stSlider", "stSelectbox", "stNumberInput", "stRadio", "stCheckbox", "stButtonGroup", "stMultiSelect")
)


def _slide(page) -> tuple[int, int]:
    found = re.search(r"Slide (\d+) of (\d+)", page.locator("[data-testid=stMain]").inner_text())
    assert found, "no presenter bar"
    return int(found.group(1)), int(found.group(2))


def _a_control(element) -> bool:
    """A control in sight; a check-yourself answer box is part of its question, not a control."""
    return element.is_visible() and not element.evaluate("e => !!e.closest('[class*=\"st-key-quiz\"]')")


VISIBLE_SLIDES_JS = f"""() => [...document.querySelectorAll('[class*="st-key-{SLIDE_KEY}"]')]
    .filter(e => e.offsetParent !== null).length"""


def _one_slide_shown(page) -> None:
    """Until the presenter's CSS of this run has arrived (it is drawn last) and one slide shows."""
    page.wait_for_function(f"() => ({VISIBLE_SLIDES_JS})() === 1", timeout=30_000)


def _visible_slides(page) -> list[str]:
    slides = page.locator(f'[class*="st-key-{SLIDE_KEY}"]')
    return [slides.nth(i).get_attribute("class") for i in range(slides.count()) if slides.nth(i).is_visible()]


@pytest.mark.parametrize("info", CONTENT, ids=[p.url_path for p in CONTENT])
def test_presenter_view_shows_one_slide_at_a_time(streamlit_server, browser, info):
    page, console_errors = browser_page(browser, width=1920, height=1080)
    page.goto(f"{streamlit_server}/{info.url_path}?present=1")
    settle(page)
    k, n = _slide(page)
    assert k == 1 and n >= 3
    assert page.locator("[data-testid=stSidebar]").get_attribute("data-collapsed") == "true"  # starts closed
    for slide in range(n):
        _one_slide_shown(page)
        assert len(_visible_slides(page)) == 1, f"slide {slide}: {_visible_slides(page)}"
        visible = [c for c in page.locator("[data-testid=stMain]").locator(CONTROLS).all() if _a_control(c)]
        assert len(visible) <= MAX_BAR_CONTROLS, f"slide {slide + 1}: {len(visible)} controls in sight"
        if slide < n - 1:
            page.get_by_role("button", name="Next").click()
            settle(page)
            assert _slide(page) == (slide + 2, n)
            assert url_params(page)["slide"] == str(slide + 1)
    link = page.url  # the share link of this view
    page.get_by_role("button", name="Previous").click()
    settle(page)
    assert _slide(page)[0] == n - 1
    again, _errors = browser_page(browser, width=1920, height=1080)
    again.goto(link)
    wait_for_page(again)
    assert _slide(again) == (n, n)
    again.get_by_role("button", name="Exit").click()
    settle(again)
    assert "present" not in url_params(again) and again.get_by_text("Slide 1 of").count() == 0
    assert exceptions_and_failures(page) == [] and console_errors == [], console_errors
    page.close()
    again.close()
