"""Controls never change by themselves: error runs and recovery in a real browser.

A run that halts early does not draw the widgets below the halt; the browser then
recreates them at their first value. AppTest does not do that, so these tests drive
headless Chromium (issue 12's scenarios).
"""

from __future__ import annotations

import pytest

from tests.e2e.server import browser_page, exceptions_and_failures, set_slider, settle, url_params, wait_for_page

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


def test_inference_a_batch_of_one_and_back_keeps_the_link(streamlit_server, browser):
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/train-vs-inference?n=128&keras=0.9&fold=cnn&lab=shift")
    wait_for_page(page, min_charts=4)
    before = url_params(page)
    set_slider(page, "Batch size B", 1)
    assert url_params(page)["B"] == "1"
    assert page.locator("[data-testid=stVegaLiteChart]").count() >= 3  # the other sections still draw
    set_slider(page, "Batch size B", 32)
    set_slider(page, "Training steps", 250)
    wait_for_page(page, min_charts=4)
    after = url_params(page)
    assert {k: after[k] for k in ("n", "keras", "fold", "lab")} == {
        "n": "128",
        "keras": "0.9",
        "fold": "cnn",
        "lab": "shift",
    }
    moved = ("steps", "preset")  # the control moved last, and the preset box that names it
    assert {k: v for k, v in after.items() if k not in moved} == {k: v for k, v in before.items() if k not in moved}
    assert exceptions_and_failures(page) == []
    assert console_errors == [], console_errors
    page.close()


def test_multi_device_one_image_per_replica_and_back_keeps_layer_seeds_and_epochs(streamlit_server, browser):
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/multi-device?layer=2&seeds=2&epochs=3")
    wait_for_page(page, min_charts=3)
    before = url_params(page)
    b_index = float(page.locator('input[type=range][aria-label="Images per replica b"]').input_value())
    set_slider(page, "Images per replica b", 0)  # b = 1: BN cannot train on one value per unit
    assert url_params(page)["b"] == "1"
    assert page.locator("[data-testid=stVegaLiteChart]").count() >= 1  # sync BN's charts still draw
    set_slider(page, "Images per replica b", b_index)
    set_slider(page, "Training steps", float(before["steps"]) + 10)
    after = url_params(page)
    assert {k: after[k] for k in ("layer", "seeds", "epochs")} == {"layer": "2", "seeds": "2", "epochs": "3"}
    moved = ("steps", "preset")  # the control moved last, and the preset box that names it
    assert {k: v for k, v in after.items() if k not in moved} == {k: v for k, v in before.items() if k not in moved}
    assert page.get_by_role("radio", name="2").is_checked()
    assert exceptions_and_failures(page) == []
    assert console_errors == [], console_errors
    page.close()


def test_a_control_in_a_lazy_tab_keeps_its_value_when_the_tab_is_left_and_reopened(streamlit_server, browser):
    """Lazy tabs (Why BN Works; Training's grids) do not build the closed tabs' controls at all."""
    page, console_errors = browser_page(browser)
    page.goto(f"{streamlit_server}/why-bn-works")
    wait_for_page(page, min_charts=1)
    set_slider(page, "Noise mean range n_μ", 1.0)
    page.get_by_role("tab", name="Landscape").click()
    settle(page)
    assert page.locator('input[type=range][aria-label="Noise mean range n_μ"]').count() == 0  # not built
    page.get_by_role("tab", name="Noisy BN").click()
    settle(page, min_charts=1)
    assert url_params(page)["n_mu"] == "1"
    assert page.locator('input[type=range][aria-label="Noise mean range n_μ"]').input_value() == "1"
    assert exceptions_and_failures(page) == []
    assert console_errors == [], console_errors
    page.close()
