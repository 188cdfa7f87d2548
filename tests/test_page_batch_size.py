"""Batch-Size Sensitivity page in AppTest: every control group changes the numbers, bad input gets a clear message."""

from __future__ import annotations

import re

import pytest

from tests.helpers import alerts, assert_clean, chart_tables, charts, open_page
from ui import batch_size as ui

PAGE = "views/batch_size.py"
CHEAP = {"seeds": "1", "epochs": "1", "b_min": "16", "b_max": "32"}  # 2 sizes × 1 seed × 1 epoch: ~130 steps


@pytest.fixture(autouse=True)
def _fresh_training_cache():
    """Training results are shared by every session of a process; start each test without them."""
    for cached in (ui.compute_sweep, ui.compute_non_iid, ui.sweep_told, ui.closing, ui.check_questions):
        cached.clear()
    ui.finished().clear()
    yield


def _markdown(at, needle: str) -> str:
    return next(md.value for md in at.markdown if needle in md.value)


def _button(at, label: str):
    return next(b for b in at.button if label in b.label)


def _table(at, column: str):
    return next(d.value for d in at.dataframe if column in getattr(d.value, "columns", []))


def _population(at) -> dict:
    df = _table(at, "quantity")
    return dict(zip(df["quantity"], df["value"], strict=True))


def test_default_view_samples_batches_and_waits_for_a_click():
    at = open_page(PAGE)
    assert_clean(at)
    assert len(charts(at)) == 2  # spread vs theory, x̂ jitter
    assert any(r"\mathrm{Var}(\sigma^2_\mathcal{B})" in el.value for el in at.latex)
    within = re.search(r"within \*\*([\d.]+) %\*\*", _markdown(at, "theory lines"))
    assert within and float(within.group(1)) < 10.0
    assert "only halves the noise" in _markdown(at, "theory lines")
    assert _population(at)["kurtosis μ4/σ⁴"] == pytest.approx(3.0, abs=0.05)
    assert "72 networks to train" in " ".join(alerts(at, "info"))
    assert not alerts(at, "error")
    outcomes = at.table[0].value
    assert outcomes.index.name == "implementation"  # a named index: shown (common.table decides it from the frame;
    assert not at.table[0].proto.hide_index  # Streamlit hides only a plain row count)
    assert outcomes["message"].str.contains("Expected more than 1 value per channel when training").any()
    assert set(outcomes["result"]) == {"error", "ok"}
    assert "σ²_B = **0**, x̂ = **0**" in _markdown(at, "Refused")
    assert len(at.get("download_button")) == 1
    assert at.selectbox(key="batch:preset").value == "Class default: BN vs GN, LN, none"  # the defaults match it
    takeaway = at.success[0].value
    assert "1/√m" in takeaway and "Train the sweep" in takeaway and "does not touch" not in takeaway


def test_noise_controls_change_the_numbers():
    at = open_page(PAGE)
    at.selectbox(key="batch:pop").set_value("heavy outliers").run()
    assert_clean(at)
    assert _population(at)["kurtosis μ4/σ⁴"] > 10  # 5 % of values 8σ away: a fat 4th moment
    at.select_slider(key="batch:m_max").set_value(16.0).run()
    assert "to m = 16" in _markdown(at, "theory lines")
    before = _markdown(at, "followed example")
    at.slider(key="batch:q").set_value(0.5).run()
    assert _markdown(at, "followed example") != before
    assert at.query_params["pop"] == "heavy outliers" and at.query_params["q"] == "0.5"
    at.slider(key="batch:R").set_value(100).run()
    assert_clean(at)
    assert len(charts(at)) == 2


def test_training_the_sweep_shows_the_chart_the_paper_and_every_number():
    at = open_page(PAGE, query=CHEAP)
    assert "8 networks to train" in " ".join(alerts(at, "info"))
    _button(at, "Train the networks").click().run()
    assert_clean(at)
    assert len(charts(at)) == 3
    assert at.query_params["run"] == "1"
    verdicts = _markdown(at, "BN's test error")
    for name in ("GN", "LN", "no norm"):
        assert name in verdicts
    paper = _table(at, "BN error %")
    assert paper["BN error %"].tolist() == [23.6, 23.7, 24.8, 27.3, 34.7]
    table = _table(at, "steps")
    assert table["lr"].tolist() == [pytest.approx(0.025), pytest.approx(0.05)]  # linear: 0.05 × B/32
    assert "linear scaling" in " ".join(c.value for c in at.caption)
    assert len(at.get("download_button")) == 2
    assert any("Few steps at the largest batches (B = 32: 42 steps" in w for w in alerts(at, "warning"))


def test_bn_is_the_same_with_the_train_mode_test_switch_on_and_off():
    """The switch only shows BN's train-mode test: no retraining, and BN's own numbers do not move (issue 12)."""
    at = open_page(PAGE, query={**CHEAP, "gn": "0", "ln": "0", "plain": "0", "run": "1"})
    off = _table(at, "steps")
    bn_off = [row for row in chart_tables(charts(at)[2])[0].to_pylist() if row["series"] == "BN"]
    assert "BN (train-mode test)" not in off.columns
    at.toggle(key="batch:train_eval").set_value(True).run()
    assert_clean(at)
    assert len(charts(at)) == 3 and at.query_params["run"] == "1"  # shown at once, no click
    on = _table(at, "steps")
    assert "BN (train-mode test)" in on.columns
    assert on["BN"].tolist() == off["BN"].tolist()
    bn_on = [row for row in chart_tables(charts(at)[2])[0].to_pylist() if row["series"] == "BN"]
    assert bn_on == bn_off
    assert "BN (train-mode test)" in " ".join(md.value for md in at.markdown)


def test_remedies_are_switches_on_the_same_chart():
    at = open_page(PAGE, query={**CHEAP, "run": "1", "gn": "0", "ln": "0", "plain": "0"})
    assert len(charts(at)) == 3
    at.toggle(key="batch:ghost").set_value(True).run()  # a change waits for a click: no surprise training
    assert len(charts(at)) == 2 and at.query_params["run"] == "0"
    at.toggle(key="batch:renorm").set_value(True).run()
    at.number_input(key="batch:g").set_value(8).run()
    at.slider(key="batch:r_max").set_value(2.0).run()
    _button(at, "Train the networks").click().run()
    assert_clean(at)
    assert len(charts(at)) == 3
    remedies = " ".join(md.value for md in at.markdown if md.value.startswith("- "))
    for phrase in ("**Batch Renorm**", "r_max = 2", "**BN (train-mode test)**", "Ghost BN"):
        assert phrase in remedies
    series = {row["series"] for row in chart_tables(charts(at)[2])[0].to_pylist()}
    assert {"BN", "Ghost BN", "Batch Renorm"} <= series
    at.toggle(key="batch:ghost").set_value(False).run()
    at.toggle(key="batch:ghost").set_value(True).run()
    assert len(charts(at)) == 3  # back to a trained configuration: shown from the cache without a click


def test_under_extremes_the_page_says_why_gn_degrades():
    """Issue 12: GN at B = 1024 gets 4 steps; the page names that condition instead of "the batch does not touch it"."""
    at = open_page(PAGE, query={"b_min": "256", "b_max": "1024", "seeds": "1", "ln": "0", "plain": "0", "run": "1"})
    assert_clean(at)
    said = _markdown(at, "BN's test error")
    assert "GN degrades here because at B = 1024 it gets only 4 steps" in said
    assert "does not touch" not in " ".join(md.value for md in at.markdown) + at.success[0].value
    assert "GN degrades here because" in at.success[0].value


def test_preset_switch_sets_the_controls_and_the_lr_rule_is_stated():
    at = open_page(PAGE)
    at.selectbox(key="batch:preset").set_value("Remedies at small batches").run()
    assert_clean(at)
    assert at.toggle(key="batch:ghost").value and at.toggle(key="batch:renorm").value
    assert not at.toggle(key="batch:ln").value
    assert at.query_params["preset"] == "Remedies at small batches"
    at.selectbox(key="batch:preset").set_value("Constant learning rate").run()
    assert at.radio(key="batch:lr_rule").value == "constant"
    assert "at every B (constant)" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"G": "5"}, "group count G=5 must divide the width C=64"),
        ({"ghost": "1", "g": "3"}, "does not divide B=4"),
        ({"ghost": "1", "g": "1"}, "must be at least 2"),
        ({"b_max": "2048"}, "larger than the training set (1,347 examples)"),
        ({"b_min": "64", "b_max": "8"}, "swap them"),
    ],
)
def test_invalid_combinations_get_a_clear_error_and_the_page_keeps_working(query, message):
    at = open_page(PAGE, query={**query, "run": "1"})
    assert_clean(at)
    assert any(message in e for e in alerts(at, "error")), alerts(at)
    assert len(charts(at)) == 2  # the noise section still works
    assert any("Refused" in md.value for md in at.markdown)  # and so does section 4
    assert any("Check yourself" in h.value for h in at.subheader)  # and the questions at the end


def test_batch_of_one_in_the_sweep_is_explained():
    at = open_page(PAGE, query={"b_min": "1", "b_max": "2", "seeds": "1", "epochs": "0.5", "ln": "0", "plain": "0"})
    _button(at, "Train the networks").click().run()
    assert_clean(at)
    assert any("cannot train with a batch of 1" in w for w in alerts(at, "warning"))
    assert len(charts(at)) == 3


def test_non_iid_comparison_trains_on_click():
    at = open_page(PAGE, query={"seeds": "1", "niid_b": "128"})
    _button(at, "class-sorted").click().run()
    assert_clean(at)
    assert len(charts(at)) == 3
    sentence = _markdown(at, "shuffled → class-sorted")
    assert "BN " in sentence and "GN " in sentence and "Batch Renorm " in sentence and "training loss" in sentence
    assert at.query_params["niid_run"] == "1" and at.query_params["niid_b"] == "128"


def test_check_yourself_checks_an_answer_against_the_live_numbers():
    at = open_page(PAGE, query={**CHEAP, "run": "1"})
    boxes = [n for n in at.number_input if n.key.startswith("quiz:batch:")]
    assert {n.key.split(":")[2] for n in boxes} == {"std_mu", "bn_error"}
    table = _table(at, "steps")
    bn_error = next(n for n in boxes if n.key.startswith("quiz:batch:bn_error"))
    bn_error.set_value(float(table["BN"].iloc[0])).run()
    assert any(s.value.startswith("Right.") for s in at.success)
    wrong = next(n for n in at.number_input if n.key.startswith("quiz:batch:std_mu"))
    wrong.set_value(123.0).run()
    assert any(e.value.startswith("Not quite.") for e in at.error)
    assert "123" not in str(dict(at.query_params))  # answers never reach the link


def test_tampered_url_is_clamped_with_visible_notices():
    query = {"R": "999999", "pop": "zipf", "b_min": "3", "lr": "abc", "seeds": "-4", "bogus": "1"}
    at = open_page(PAGE, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("clamped to 20000", "zipf", "nearest value 4", "not a finite number", "clamped to 1", "bogus"):
        assert phrase in notes, phrase
    assert at.query_params["R"] == "20000" and at.query_params["seeds"] == "1"


def test_the_url_the_page_wrote_reproduces_the_view():
    at = open_page(PAGE, query={**CHEAP, "pop": "uniform", "q": "0.3"})
    _button(at, "Train the networks").click().run()
    numbers = (_markdown(at, "theory lines"), _markdown(at, "followed example"), _markdown(at, "BN's test error"))
    ui.finished().clear()  # the new session must get there from the URL alone
    again = open_page(PAGE, query=dict(at.query_params))
    assert_clean(again)
    assert (
        _markdown(again, "theory lines"),
        _markdown(again, "followed example"),
        _markdown(again, "BN's test error"),
    ) == numbers


def test_every_control_at_its_extremes_runs_clean():
    """Every control at its minimum, then at its maximum (B = 1024 keeps the training short: 1-13 steps)."""
    lows = {
        "R": "100",
        "m_max": "8",
        "q": "0.01",
        "lr": "0.001",
        "width": "16",
        "G": "1",
        "g": "2",
        "r_max": "1",
        "d_max": "0",
        "niid_b": "2",
        "seeds": "1",
        "epochs": "10",
        "lr_rule": "constant",
    }
    highs = {
        "R": "20000",
        "m_max": "1024",
        "q": "0.99",
        "lr": "5",
        "width": "128",
        "G": "128",
        "g": "64",
        "r_max": "10",
        "d_max": "10",
        "niid_b": "256",
        "seeds": "5",
        "epochs": "0.5",
    }
    for extreme in (lows, highs):
        query = {
            **extreme,
            "ghost": "1",
            "renorm": "1",
            "train_eval": "1",
            "b_min": "1024",
            "b_max": "1024",
            "run": "1",
        }
        at = open_page(PAGE, query=query)
        assert_clean(at)
        assert not [w for w in alerts(at, "warning") if "clamped" in w or "nearest" in w]
        assert len(charts(at)) == 3, alerts(at)
