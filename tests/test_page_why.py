"""Why BN Works page in AppTest: every tab, its controls, presets, bad input, divergence, the debate, the quiz.

Heavier tabs are opened through the URL with small step counts, so the whole file stays quick.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import alerts, assert_clean, chart_tables, charts, open_page
from tests.test_hostile import _drive, _widget
from tests.test_pages import MAX_CHART_ROWS, _has_tooltip
from ui import why as ui

PAGE = "views/why.py"
SMALL_ICS = {"tab": "ICS", "ics_run": "1", "ics_steps": "50"}
SMALL_LAND = {"tab": "Landscape", "land_run": "1", "land_steps": "50"}


def _markdown(at, phrase: str) -> str:
    return next(m.value for m in at.markdown if phrase in m.value)


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?", text)


def _table(at, column: str):
    return next(df.value for df in at.dataframe if column in getattr(df.value, "columns", []))


def _assert_charts_are_light(at) -> None:
    """Every chart of the open tab has tooltips and ships at most MAX_CHART_ROWS rows (the generic test sees tab 1)."""
    for chart in charts(at):
        assert _has_tooltip(json.loads(chart.proto.spec)), chart.proto.spec[:200]
        assert 0 < sum(table.num_rows for table in chart_tables(chart)) <= MAX_CHART_ROWS


def _answer_box(at, key: str):
    return next(w for w in at.number_input if str(w.key).startswith(f"quiz:why:{key}:"))


@pytest.fixture(scope="module")
def default_page():
    at = open_page(PAGE)
    assert_clean(at)
    return at


# -- tab 1: noisy BN (the default view) ------------------------------------------------------


def test_default_view_trains_three_nets_and_says_what_it_measured(default_page):
    at = default_page
    assert [t.label for t in at.tabs] == list(ui.TABS)
    assert len(charts(at)) == 3  # accuracy, loss, layer-input bands
    verdict = _markdown(at, "Final test accuracy")
    assert "the noisy net trains **as well as** BN" in verdict or "nearly as well as" in verdict
    table = _table(at, "test accuracy").set_index("variant")
    assert table.loc["noisy BN", "test accuracy"] >= 0.9 * table.loc["BN", "test accuracy"]
    assert set(table["status"]) == {f"trained {ui.NOISY.steps} steps"}
    assert not alerts(at, "error") and not alerts(at, "warning")
    assert at.query_params["tab"] == "Noisy BN" and at.query_params["n_mu"] == "2"


def test_the_printed_ratio_is_the_quotient_of_the_printed_accuracies(default_page):
    verdict = _markdown(default_page, "Final test accuracy")
    q, a, b = re.search(r"noisy ÷ BN = (\d+\.\d+)× \((\d+\.\d) vs (\d+\.\d) %\)", verdict).groups()
    assert f"{float(a) / float(b):.2f}" == q


def test_at_learning_rate_100_the_page_says_no_net_trained():
    """Issue 12: every net at chance; the page must not say the noisy net trains as well as BN."""
    at = open_page(PAGE, query={"lr": "100", "steps": "50"})
    assert_clean(at)
    verdict = _markdown(at, "No net trained at this learning rate")
    assert "η = 100" in verdict and "as well as" not in verdict
    assert "cannot test the stable-distribution story" in " ".join(s.value for s in at.success)
    assert "cannot test it" in _markdown(at, "Internal covariate shift")


def test_zero_noise_makes_noisy_bn_identical_to_bn():
    at = open_page(PAGE, query={"steps": "50"})
    at.slider(key="why:n_mu").set_value(0.0)
    at.slider(key="why:n_sigma").set_value(1.0).run()  # both changes in one rerun
    assert_clean(at)
    table = _table(at, "test accuracy").set_index("variant").drop(columns="status")
    assert table.loc["noisy BN"].equals(table.loc["BN"])
    assert "noisy ÷ BN = 1.00×" in _markdown(at, "Final test accuracy")


def test_layer_and_view_controls_change_the_distribution_chart():
    at = open_page(PAGE, query={"steps": "50"})
    before = charts(at)[2].proto.spec
    at.radio(key="why:layer").set_value(1).run()
    at.radio(key="why:view").set_value("pre").run()
    assert_clean(at)
    spec = charts(at)[2].proto.spec
    assert spec != before and "all units" in spec
    assert "layer 1's input median (all units' pooled)" in _markdown(at, "Final test accuracy")
    assert at.query_params["view"] == "pre" and at.query_params["layer"] == "1"


def test_preset_switch_sets_the_noise_controls():
    at = open_page(PAGE, query={"steps": "50"})
    at.selectbox(key="why:preset").set_value("Violent noise (n_μ = 5, n_σ = 25)").run()
    assert_clean(at)
    assert at.slider(key="why:n_mu").value == 5.0 and at.slider(key="why:n_sigma").value == 25.0
    assert at.query_params["preset"] == "Violent noise (n_μ = 5, n_σ = 25)"
    assert len(charts(at)) == 3


def test_switching_tabs_runs_only_the_open_tab():
    at = open_page(PAGE, query={"steps": "50"})
    at.session_state["why:tab"] = "ICS"
    at.run()
    assert_clean(at)
    assert at.query_params["tab"] == "ICS"
    assert not charts(at), "ICS waits for its button; the noisy-BN charts are not drawn"
    assert any(b.label == "Train both nets and measure ICS" for b in at.button)
    assert "The ICS tab has not run yet" in _markdown(at, "Internal covariate shift")


# -- tab 2: ICS ------------------------------------------------------------------------------


def test_ics_button_trains_measures_and_the_debate_reports_it():
    at = open_page(PAGE, query={"tab": "ICS", "ics_steps": "50"})
    assert not charts(at)
    next(b for b in at.button if "measure ICS" in b.label).click().run()
    assert_clean(at)
    assert len(charts(at)) == 2
    _assert_charts_are_light(at)
    verdict = _markdown(at, "cos(G, G′) = ")
    assert "with BN" in verdict and "Final test accuracy" in verdict
    assert at.query_params["ics_run"] == "1"
    cos_bn, cos_plain = re.search(r"cos\(G, G′\) = \*\*(\S+)\*\* with BN, \*\*(\S+)\*\* without", verdict).groups()
    debate = _markdown(at, "Internal covariate shift")
    assert f"cos(G, G′) {cos_bn} with BN vs {cos_plain} without" in debate
    assert "no sign" not in debate


def test_ics_link_round_trips_to_the_same_numbers():
    first = open_page(PAGE, query={**SMALL_ICS, "ics_act": "tanh", "ics_depth": "4", "seed": "2"})
    assert_clean(first)
    link = {k: first.query_params[k] for k in first.query_params}
    second = open_page(PAGE, query=link)
    assert _markdown(second, "cos(G, G′) = ") == _markdown(first, "cos(G, G′) = ")
    assert "layers 2 … 5" in _markdown(second, "cos(G, G′) = ")


# -- tab 3: landscape ------------------------------------------------------------------------


def test_landscape_tab_draws_three_bands_and_compares_them():
    at = open_page(PAGE, query=SMALL_LAND)
    assert_clean(at)
    assert len(charts(at)) == 3
    _assert_charts_are_light(at)
    verdict = _markdown(at, "gradient-predictiveness band")
    assert "β-smoothness" in verdict and len(_numbers(verdict)) >= 6
    assert "the Landscape tab finds" in _markdown(at, "A smoother landscape")
    at.selectbox(key="why:land_act").set_value("tanh").run()  # the tab's own control reruns its experiment
    assert_clean(at)
    assert at.query_params["land_act"] == "tanh" and len(charts(at)) == 3
    assert _markdown(at, "gradient-predictiveness band") != verdict


@pytest.mark.parametrize("query", [SMALL_LAND, SMALL_ICS])
def test_a_diverging_learning_rate_is_reported_in_place_not_crashed(query):
    prefix = "land" if query is SMALL_LAND else "ics"
    at = open_page(PAGE, query={**query, f"{prefix}_lr": "10"})  # the plain 3-layer ReLU net blows up
    assert_clean(at)
    warnings = " ".join(alerts(at, "warning"))
    step = re.search(r"no norm\*\* diverged at step (\d+)", warnings)
    assert step, warnings
    assert _markdown(at, f"no norm diverged at step {step.group(1)}"), "the verdict says it in place of the accuracy"
    assert charts(at), "the records up to the divergence are still drawn"


# -- tab 4: scale invariance -----------------------------------------------------------------


def test_scale_identities_hold_for_every_alpha_on_the_slider():
    at = open_page(PAGE, query={"tab": "Scale invariance", "steps": "50"})
    assert_clean(at)
    assert len(charts(at)) == 3  # α sweep, ‖W‖ over training, turn per step
    _assert_charts_are_light(at)
    for alpha in (ui.ALPHA_GRID[0], ui.ALPHA_GRID[-1]):
        at.select_slider(key="why:alpha").set_value(alpha).run()
        assert_clean(at)
        table = _table(at, "identity")
        errors = table[~table["identity"].str.startswith("tan")][["error (manual)", "error (torch)"]]
        assert (errors.to_numpy() < 1e-6).all(), table
        assert f"At α = {alpha:g}" in _markdown(at, "both identities hold to")
    assert "In the BN net the mean ‖W‖" in " ".join(s.value for s in at.success)


def test_pytorch_eps_breaks_the_invariance_for_small_weights():
    at = open_page(PAGE, query={"steps": "50"})
    at.selectbox(key="why:preset").set_value("Scale invariance with PyTorch's ε = 1e-5").run()
    assert_clean(at)
    assert at.query_params["tab"] == "Scale invariance"
    sentence = _markdown(at, "both identities")
    assert "are off by" in sentence and "ε = 1e-05" in sentence


# -- tab 5: Jacobians ------------------------------------------------------------------------


def test_jacobian_tab_shows_singular_values_and_gradient_norms():
    at = open_page(PAGE, query={"tab": "Jacobians", "jac_depth": "4"})
    assert_clean(at)
    assert len(charts(at)) == 3
    _assert_charts_are_light(at)
    assert "layers 2 … 4" in _markdown(at, "median singular value")
    assert any("showing layer 4 instead of 5" in a for a in alerts(at, "info"))


@pytest.mark.parametrize(
    ("query", "phrase"),
    [({"jac_batch": "1"}, "batch of at least 2"), ({"jac_batch": "64", "jac_width": "64"}, "N·W ≤ 1024")],
)
def test_invalid_jacobian_combinations_fail_alone(query, phrase):
    at = open_page(PAGE, query={"tab": "Jacobians", **query})
    assert_clean(at)
    assert any(phrase in e for e in alerts(at, "error")), alerts(at)
    assert "could not run with its current controls" in _markdown(at, "Gradient explosion")  # the page goes on
    assert any(str(w.key).startswith("quiz:why:") for w in at.number_input)
    at.slider(key="why:jac_batch").set_value(8).run()
    at.radio(key="why:jac_width").set_value(16).run()
    assert_clean(at)
    assert not alerts(at, "error") and len(charts(at)) == 3


# -- check yourself --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["0", "1"])
def test_check_yourself_answers_come_from_the_numbers_on_the_page(seed):
    at = open_page(PAGE, query={"steps": "50", "seed": seed})
    table = _table(at, "test accuracy").set_index("variant")
    live = round(100 * float(table.loc["noisy BN", "test accuracy"]), 1)
    _answer_box(at, "noisy_acc").set_value(live + 5).run()
    assert any("Not quite" in e for e in alerts(at, "error"))
    _answer_box(at, "noisy_acc").set_value(live).run()
    assert_clean(at)
    assert any(s.value.startswith("Right.") and f"{live} %" in s.value for s in at.success)
    assert "noisy_acc" not in " ".join(at.query_params.keys()), "answers never go into the URL"


# -- bad links and extreme widgets -----------------------------------------------------------


def test_tampered_link_is_clamped_with_visible_notices():
    query = {"n_sigma": "0.2", "tab": "Everything", "alpha": "7", "jac_width": "5", "ics_run": "perhaps"}
    at = open_page(PAGE, query={**query, "steps": "50"})
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("clamped to 1", "**tab**", "nearest value", "**width W (Jacobians)**", "not true/false"):
        assert phrase in notes, phrase
    assert at.query_params["n_sigma"] == "1" and at.query_params["tab"] == "Noisy BN"


@pytest.mark.slow
@pytest.mark.parametrize(
    "query",
    [
        {**SMALL_ICS, "ics_steps": "200"},
        {**SMALL_LAND, "land_steps": "200"},
        {"tab": "Scale invariance", "steps": "50"},
        {"tab": "Jacobians"},
    ],
    ids=["ics", "landscape", "scale", "jacobians"],
)
def test_every_control_of_a_tab_at_its_minimum_then_maximum(query):
    """The generic hostile test drives the default tab; this drives the others."""
    at = open_page(PAGE, query=query)
    assert_clean(at)
    for which in (0, 1):
        driven = 0
        for f in ui.STATE.fields:
            widget = _widget(at, ui.STATE.key(f.key))
            if widget is None or f.key in ("steps", "lr", "n_mu", "n_sigma"):  # tab 1's, shown in the scale tab
                continue
            _drive(widget, f, which)
            driven += 1
        at.run()
        assert_clean(at)
        assert driven >= 2
