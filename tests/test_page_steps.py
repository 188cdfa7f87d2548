"""Normalization Steps page in AppTest: controls change the numbers, bad input gets a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import alerts, assert_clean, charts, open_page
from tests.test_csv import CORPUS, EXPECTED

PAGE = "views/steps.py"


def _stats(at):
    """The per-feature statistics table (the one with a mu_B column)."""
    return next(df.value for df in at.dataframe if "mu_B" in df.value.columns)


def _table(at):
    return next(df.value for df in at.dataframe if "example" in getattr(df.value, "columns", []))


@pytest.fixture
def page():
    at = open_page(PAGE)
    assert_clean(at)
    return at


def test_default_view_shows_every_section(page):
    assert len(page.latex) == 5  # four steps with numbers + the backward formula
    assert len(charts(page)) == 3 + 4  # x, x̂, y histograms + one heatmap per norm kind
    stats = _stats(page)
    np.testing.assert_allclose(stats["y_mean"], 0.0, atol=1e-12)
    np.testing.assert_allclose(stats["y_std"], stats["expected_y_std"], rtol=1e-9)
    assert len(page.get("download_button")) == 1


def test_changing_gamma_scales_the_output(page):
    page.number_input(key="steps:edit_gamma").set_value(2.5).run()
    assert_clean(page)
    stats = _stats(page)
    assert stats["gamma"].iloc[0] == 2.5 and stats["gamma"].iloc[1] == 1.0
    table = _table(page)
    x = table["x[f0]"].to_numpy()  # numpy is the oracle: y = γ·(x − mean)/√(var + ε) + β, biased var
    expected = 2.5 * (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    np.testing.assert_allclose(table["y[f0]"], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(table["y[f1]"], table["x̂[f1]"], rtol=1e-12)  # feature 1 keeps γ = 1, β = 0
    assert "2.5" in page.query_params["gamma"]


def test_apply_to_all_features(page):
    page.toggle(key="steps:all").set_value(True).run()
    page.number_input(key="steps:edit_beta").set_value(-3.0).run()
    np.testing.assert_allclose(_stats(page)["y_mean"], -3.0, atol=1e-9)


def test_large_eps_shrinks_the_output_std(page):
    page.number_input(key="steps:edit_scale").set_value(0.001).run()
    page.select_slider(key="steps:eps").set_value(1e-3).run()
    assert_clean(page)
    stats = _stats(page)
    assert stats["y_std"].iloc[0] < 0.1  # var_B ≈ 1e-6 ≪ ε = 1e-3, so std ≈ sqrt(1e-3) ≈ 0.03
    assert stats["y_std"].iloc[0] == pytest.approx(stats["expected_y_std"].iloc[0], rel=1e-9)


def test_torch_backend_gives_the_same_numbers(page):
    manual = _stats(page)
    page.radio(key="steps:backend").set_value("torch").run()
    assert_clean(page)
    np.testing.assert_allclose(_stats(page)["var_B"], manual["var_B"], rtol=1e-12)
    diffs = next(df.value for df in page.dataframe if "max_abs_diff" in df.value.columns)
    assert (diffs["max_abs_diff"] < 1e-12).all()


def test_gamma_sigma_beta_mu_recovers_the_input(page):
    next(b for b in page.button if b.label.startswith("γ ← σ_B")).click().run()
    assert_clean(page)
    table = _table(page)
    np.testing.assert_allclose(table["y[f0]"], table["x[f0]"], rtol=1e-9, atol=1e-9)


def test_new_batch_button_changes_the_seed_and_the_data(page):
    before = _table(page)["x[f0]"].to_numpy()
    next(b for b in page.button if "New batch" in b.label).click().run()
    assert page.sidebar.number_input[0].value == 1
    assert not np.allclose(_table(page)["x[f0]"].to_numpy(), before)


def test_group_count_that_does_not_divide_is_explained(page):
    page.number_input(key="steps:G").set_value(4).run()
    assert_clean(page)
    assert any("does not divide" in w for w in alerts(page, "warning"))


def test_batch_of_one_gets_a_clear_error():
    at = open_page(PAGE, query={"N": "1"})
    assert_clean(at)
    assert any("more than one value per feature" in e for e in alerts(at, "error"))


def test_tampered_url_is_clamped_with_visible_notices():
    query = {"N": "100000", "dist": "zipf", "eps": "abc", "gamma": "1,x", "bogus": "1", "C": "9" * 500}
    at = open_page(PAGE, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("clamped to 512", "zipf", "not a finite number", "bogus", "characters long"):
        assert phrase in notes
    assert at.query_params["N"] == "512"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_uploading_each_bad_csv_shows_its_message(name):
    at = open_page(PAGE, query={"source": "upload"})
    at.file_uploader[0].set_value((name, (CORPUS / name).read_bytes(), "text/csv")).run()
    assert_clean(at)
    usable, level, phrase, shape = EXPECTED[name]
    if level is not None:
        assert any(phrase in text for text in alerts(at, level)), alerts(at)
    if usable:
        assert _stats(at).shape[0] == shape[1]
        assert len(charts(at)) == 3 + 4
    else:
        assert not charts(at)


def test_pasted_csv_is_normalized():
    at = open_page(PAGE, query={"source": "paste"})
    at.text_area(key="steps:paste").input("h,w\n1.70,65\n1.82,80\n1.65,58\n").run()
    assert_clean(at)
    stats = _stats(at)
    assert list(stats["feature"]) == ["h", "w"]
    assert stats["mu_B"].iloc[1] == pytest.approx((65 + 80 + 58) / 3)


def test_the_tracked_example_is_marked_in_the_table(page):
    assert list(_table(page).query("tracked == '▶'")["example"]) == [0]
    page.number_input(key="steps:i").set_value(5).run()
    assert list(_table(page).query("tracked == '▶'")["example"]) == [5]
    assert "x_{5}" in page.latex[2].value


def test_a_halted_page_still_writes_the_clamped_link():
    at = open_page(PAGE, query={"source": "upload", "N": "100000"})  # no file yet: the body ends early
    assert_clean(at)
    assert at.query_params["N"] == "512"
    assert any("Waiting for data" in i for i in alerts(at, "info"))
