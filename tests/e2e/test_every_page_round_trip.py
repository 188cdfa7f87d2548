"""Every page: controls off their defaults through a shared link, an error run, a recovery, and
the link (and so every control) is unchanged, in a real browser.

Each page's error is the one it teaches: a batch of one value per channel (or an empty CSV)
in the section that needs it. The recovery moves the same control back; after it every other
control must still have the value the shared link gave it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e.server import browser_page, exceptions_and_failures, set_slider, settle, url_params, wait_for_page

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Case:
    url: str  # the shared link: several controls off their defaults
    slider: str  # the control that forces the error run, and back
    error_value: float  # raw slider position (a select-slider counts options from 0)
    back_value: float
    moved: tuple[str, ...]  # URL keys the round trip itself changes (the control, the preset box)
    charts_in_error: int = 1  # charts the other sections keep drawing during the error run


CASES = {
    "normalization-steps": Case("normalization-steps?eps=0.001&backend=torch&G=3&dist=uniform&i=2",
                                "Batch size N", 1, 16, ("N",)),
    "training-comparison": Case("training-comparison?hist=act&band=pre&seeds=2&gsteps=500&target=0.8", "Batch size", 0,
                                4, ("batch", "preset")),
    "batch-size": Case("batch-size?run=1&b_min=2&b_max=8&seeds=1&epochs=1&ghost=1&G=4&lr_rule=constant",
                       "Smallest batch B", 0, 1, ("b_min", "preset", "run")),  # a changed control clears run=1
    "train-vs-inference": Case("train-vs-inference?n=128&keras=0.9&fold=cnn&lab=shift&layer=2", "Batch size B", 1, 32,
                               ("B", "preset")),
    "why-bn-works": Case("why-bn-works?tab=Jacobians&jac_depth=6&jac_act=sigmoid&jac_layer=4&alpha=10", "Batch N", 1,
                         16, ("jac_batch", "preset"), 0),  # tabs are lazy: the open tab is the page
    "multi-device": Case("multi-device?layer=2&seeds=2&epochs=3&W=3", "Images per replica b", 0, 2, ("b", "preset")),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_an_error_run_and_recovery_leave_the_shared_link_unchanged(streamlit_server, browser, name):
    case = CASES[name]
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/{case.url}")
    wait_for_page(page, min_charts=1)
    shared = url_params(page)
    charts_before = page.locator("[data-testid=stVegaLiteChart]").count()
    set_slider(page, case.slider, case.error_value)
    assert exceptions_and_failures(page) == []  # the error is a lesson in its section, not a crash
    assert page.locator("[data-testid=stVegaLiteChart]").count() >= case.charts_in_error
    set_slider(page, case.slider, case.back_value)
    settle(page, min_charts=1)
    after = url_params(page)
    kept = {k: v for k, v in after.items() if k not in case.moved}
    assert kept == {k: v for k, v in shared.items() if k not in case.moved}
    assert page.locator("[data-testid=stVegaLiteChart]").count() >= min(charts_before, 1)
    assert exceptions_and_failures(page) == [] and console_errors == [], console_errors
    page.close()
