"""Controls never change by themselves: error runs and recovery in a real browser.

A run that halts early does not draw the widgets below the halt; the browser then
recreates them at their first value. AppTest does not do that, so these tests drive
headless Chromium (issue 12's scenarios).
"""

from __future__ import annotations

import pytest

from tests.e2e.server import browser_page, exceptions_and_failures, settle, url_params, wait_for_page

pytestmark = pytest.mark.e2e


def test_steps_a_bad_csv_then_a_good_one_keeps_eps_and_backend(streamlit_server, browser):
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/normalization-steps?eps=0.001&backend=torch")
    wait_for_page(page, min_charts=2)
    page.get_by_role("radio", name="Paste CSV").click()
    settle(page)
    box = page.get_by_label("Paste CSV: rows are examples, columns are features")
    box.fill("a,b\nx,y\n")
    box.press("Control+Enter")
    settle(page)
    assert page.locator("[data-testid=stAlert]").count() >= 1  # the bad CSV is explained
    box.fill("a,b\n1,2\n3,5\n4,4\n")
    box.press("Control+Enter")
    settle(page, min_charts=1)
    params = url_params(page)
    assert params["eps"] == "0.001" and params["backend"] == "torch", params
    assert page.get_by_role("radio", name="torch (F.batch_norm)").is_checked()
    assert exceptions_and_failures(page) == []
    assert console_errors == [], console_errors
    page.close()
