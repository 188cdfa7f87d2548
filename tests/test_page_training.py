"""Training Comparison page in AppTest: real training behind every chart, every control wired, bad input explained.

The default view is cached for the whole test process, so the tests that start from it
reuse one training; the others use short runs (``steps=50``) unless the claim needs more.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import alerts, assert_clean, chart_tables, charts, open_page
from ui import cache
from ui import training as ui

PAGE = "views/training.py"
SHORT = {"steps": "50"}
# Chart order: loss, accuracy, then one chart per net (BN, no norm) for the bands, histograms, gradients, saturation.
LOSS, ACC, BANDS, HIST, GRADS, SAT = 0, 1, 2, 4, 6, 8
N_CHARTS = 10  # both nets trained; each grid adds two heatmaps, the backend check one chart


def _summary(at):
    """The per-variant summary table (the one with a status column), indexed by variant."""
    return next(df.value for df in at.dataframe if "status" in getattr(df.value, "columns", [])).set_index("variant")


def _markdown(at, phrase: str) -> str:
    return next(m.value for m in at.markdown if phrase in m.value)


def _all_rows(at, index: int) -> list[dict]:
    """Every data row of one chart."""
    return [row for table in chart_tables(charts(at)[index]) for row in table.to_pylist()]


def _spec_steps(at, index: int) -> set[int]:
    """The distinct steps in one chart's data."""
    return {int(r["step"]) for r in _all_rows(at, index) if "step" in r}


@pytest.fixture(scope="module")
def default_page():
    at = open_page(PAGE)
    assert_clean(at)
    return at


def test_default_view_is_fig1_with_every_chart(default_page):
    at = default_page
    assert len(charts(at)) == N_CHARTS
    assert "BN:" in charts(at)[BANDS].proto.spec and "no norm:" in charts(at)[BANDS + 1].proto.spec
    summary = _summary(at)
    assert list(summary.index) == ["BN", "no norm"]
    assert (summary["status"] == "trained 600 steps").all()
    assert summary.loc["BN", "steps to 90 % test acc"] != "not reached"
    assert summary.loc["BN", "final_test_acc"] > 0.9 > summary.loc["no norm", "final_test_acc"]
    assert summary.loc["BN", "band drift, layer 3"] < summary.loc["no norm", "band drift, layer 3"]
    speed = _markdown(at, "test accuracy at step")
    assert "**BN** reached 90 % test accuracy at step" in speed and "**no norm** did not reach 90 % in 600" in speed
    sat = _markdown(at, "saturated outputs")
    bn_sat, plain_sat = (float(x) for x in re.findall(r"\*\* ([0-9.]+) %", sat))
    assert bn_sat < plain_sat and sat.startswith("Fewer saturated outputs with BN")  # §3.1
    assert "Only the BN net trained within 600 steps here" in alerts(at, "success")[0]  # the takeaway, from the numbers
    assert len(at.get("download_button")) == 1
    assert [h.value for h in at.subheader][-1] == "Check yourself"
    assert set(ui.STATE.keys) <= set(at.query_params)
    assert at.query_params["lr"] == "2" and at.query_params["batch"] == "60" and at.query_params["depth"] == "3"
    assert not alerts(at, "error") and not alerts(at, "warning")


def test_layer_band_and_histogram_controls(default_page):
    at = default_page
    at.selectbox(key="training:layer").set_value(1).run()
    at.radio(key="training:band").set_value("pre").run()
    assert_clean(at)
    assert "band drift, layer 1" in _summary(at).columns and at.query_params["layer"] == "1"
    assert "15 / 50 / 85 % of all units" in charts(at)[BANDS].proto.spec
    at.multiselect(key="training:snaps").set_value([0, 300, 600]).run()
    at.radio(key="training:hist").set_value("act").run()
    assert_clean(at)
    assert at.query_params["snaps"] == "0,300,600" and at.query_params["hist"] == "act"
    assert _spec_steps(at, HIST) == _spec_steps(at, HIST + 1) == {0, 300, 600}
    assert "activation output" in charts(at)[HIST].proto.spec
    for key, value in (("layer", 3), ("band", "unit"), ("hist", "pre")):
        getattr(at, "selectbox" if key == "layer" else "radio")(key=f"training:{key}").set_value(value).run()


def test_higher_learning_rate_preset_stalls_the_plain_net_only():
    at = open_page(PAGE)
    assert at.selectbox(key="training:preset").value == "Ioffe & Szegedy 2015, Fig. 1"  # the defaults are Fig. 1
    at.selectbox(key="training:preset").set_value("Higher learning rate ×5").run()
    assert_clean(at)
    assert at.query_params["lr"] == "10" and at.query_params["preset"] == "Higher learning rate ×5"
    summary = _summary(at)
    assert summary.loc["BN", "final_test_acc"] > 0.85 and summary.loc["no norm", "final_test_acc"] < 0.2
    assert len(charts(at)) == N_CHARTS
    at.select_slider(key="training:steps").set_value(50.0).run()  # a control departs from the preset
    assert at.selectbox(key="training:preset").value == "custom" and at.query_params["preset"] == "custom"
    assert at.query_params["lr"] == "10"  # the other controls stay as the preset set them


def test_cnn_preset_trains_the_cnn_and_explains_the_grids():
    at = open_page(PAGE, query={"preset": "ReLU CNN on digits", **SHORT})
    assert_clean(at)
    assert at.query_params["arch"] == "cnn" and at.query_params["act"] == "relu"
    assert at.selectbox(key="training:layer").options == ["hidden 1", "hidden 2"]
    assert sum("MLPs only" in a for a in alerts(at, "info")) == 1  # the open grid tab (the tabs are lazy)
    assert len(charts(at)) == N_CHARTS
    assert "outputs exactly 0" in charts(at)[SAT].proto.spec  # ReLU: dead units instead of saturation


def test_a_diverging_learning_rate_is_reported_not_raised():
    at = open_page(PAGE, query={"act": "relu", "lr": "1000", **SHORT})
    assert_clean(at)
    warnings = alerts(at, "warning")
    assert any("**no norm: diverged at step" in w for w in warnings), warnings
    summary = _summary(at)
    assert summary.loc["no norm", "status"].startswith("diverged at step")
    assert len(charts(at)) == N_CHARTS  # the records up to the divergence are still drawn


@pytest.mark.parametrize(
    ("query", "phrase"),
    [
        ({"data": "moons", "batch": "1024"}, "batch_size must be in 1"),  # larger than the training set
        ({"arch": "cnn", "data": "moons"}, "image data"),  # the CNN needs 8×8 images
        ({"depth": "10", "width": "256", "batch": "1024", "steps": "2000"}, "would take about"),  # cost guard
    ],
)
def test_invalid_combinations_get_a_clear_error(query, phrase):
    at = open_page(PAGE, query={**SHORT, **query})
    assert_clean(at)
    assert any(phrase in e for e in alerts(at, "error")), alerts(at)
    assert not charts(at)


def test_a_batch_of_one_keeps_every_section_that_can_run():
    """Issue 12: a batch of 1 must not wipe the page. BN's lesson shows in section 1; the plain net, its charts,
    the grids (plain nets only) and the questions still come; the BN-only backend check says why in place."""
    at = open_page(PAGE, query={"batch": "1", "seeds": "1", "gsteps": "100", "lr_grid": "1", "check": "1", **SHORT})
    assert_clean(at)
    lessons = [w for w in alerts(at, "warning") if "BN: not trained" in w]
    assert len(lessons) == 2 and all("batch of at least 2" in w for w in lessons)  # section 1 and the grid tab
    assert len(charts(at)) == 8  # loss, accuracy, bands, histograms, gradients, saturation of the plain net, 2 grid
    summary = _summary(at)
    assert summary.loc["BN", "status"] == "not trained (batch of 1)"
    assert summary.loc["no norm", "status"] == "trained 50 steps"
    assert {r["variant"] for r in _all_rows(at, LOSS)} == {"no norm"}  # only the net that could train
    grid = next(df.value for df in at.dataframe if "mean_acc" in getattr(df.value, "columns", []))
    assert set(grid["variant"]) == {"no norm"} and len(grid) == 7
    assert any("batch of at least 2" in e for e in alerts(at, "error"))  # the backend check, BN only, in place
    assert "With a batch of 1 there is no BN net" in alerts(at, "success")[0]
    assert [h.value for h in at.subheader][-1] == "Check yourself"
    at.select_slider(key="training:batch").set_value(60.0).run()  # back to a valid batch: both nets return
    assert_clean(at)
    assert not [w for w in alerts(at, "warning") if "BN: not trained" in w]
    assert set(_summary(at)["status"]) == {"trained 50 steps"} and at.query_params["batch"] == "60"


def test_the_x30_preset_says_no_net_trained():
    """Issue 12: at ×30 BN ends near chance; the takeaway must not claim that large learning rates still train."""
    at = open_page(PAGE, query={"preset": "Higher learning rate ×30"})
    assert_clean(at)
    summary = _summary(at)
    assert summary.loc["BN", "final_test_acc"] < 0.3 and summary.loc["BN", "steps to 90 % test acc"] == "not reached"
    takeaway = alerts(at, "success")[0]
    assert takeaway.startswith("No net trained at these settings") and "still train" not in takeaway


def _quiz_box(at, kind: str, key: str):
    return next(w for w in getattr(at, kind) if w.key.startswith(f"quiz:training:{key}:"))


@pytest.mark.parametrize("seed", ["0", "1"])
def test_check_yourself_answers_come_from_the_live_numbers(seed):
    at = open_page(PAGE, query={"seed": seed, "target": "0.5", **SHORT})
    assert_clean(at)
    summary = _summary(at)
    bn_steps = int(summary.loc["BN", "steps to 50 % test acc"])
    box = _quiz_box(at, "number_input", "steps_BN")
    box.set_value(float(bn_steps)).run()
    assert any(s.startswith("Right.") for s in alerts(at, "success")), alerts(at)
    final = round(100 * summary.loc["BN", "final_test_acc"], 1)
    _quiz_box(at, "number_input", "final_BN").set_value(final + 3).run()
    assert any(e.startswith("Not quite.") and f"{final:g} %" in e for e in alerts(at, "error")), alerts(at)
    drift = summary["band drift, layer 3"]
    _quiz_box(at, "radio", "drift").set_value(drift.idxmax()).run()
    assert sum(s.startswith("Right.") for s in alerts(at, "success")) == 2
    assert "quiz" not in " ".join(at.query_params)  # answers never reach the link


def test_tampered_url_is_clamped_with_visible_notices():
    query = {"lr": "abc", "depth": "-4", "act": "swish", "steps": "77", "bogus": "1", "snaps": "0,x", "seeds": "9"}
    at = open_page(PAGE, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("not a finite number", "clamped to 1", "swish", "bogus", "nearest value 100", "clamped to 5"):
        assert phrase in notes, phrase
    assert at.query_params["depth"] == "1" and at.query_params["steps"] == "100" and at.query_params["lr"] == "2"
    assert _summary(at)["status"].eq("trained 100 steps").all()


def test_layer_beyond_the_depth_is_brought_back():
    at = open_page(PAGE, query={"depth": "2", "layer": "9", **SHORT})
    assert_clean(at)
    assert at.query_params["layer"] == "2" and "band drift, layer 2" in _summary(at).columns


def test_the_url_round_trips_to_the_same_numbers():
    first = open_page(PAGE, query={"lr": "0.5", "init": "3", "layer": "2", "hist": "act", "target": "0.8", **SHORT})
    assert_clean(first)
    link = {k: first.query_params[k] for k in first.query_params}
    assert link["init"] == "3" and link["hist"] == "act" and link["target"] == "0.8"
    table, views = _summary(first), _views(first)
    cache.clear()  # the second session recomputes everything from the link alone
    second = open_page(PAGE, query=link)
    assert_clean(second)
    assert {k: second.query_params[k] for k in second.query_params} == link
    assert _summary(second).equals(table)
    assert len(views) == N_CHARTS and _views(second) == views


def _views(at) -> list[tuple]:
    """Every chart's spec and data, with Altair's per-process selection numbers taken out."""
    return [
        (re.sub(r"param_\d+", "param", c.proto.spec), tuple(d.data.data for d in c.proto.datasets)) for c in charts(at)
    ]


def test_grids_train_and_mark_their_cells():
    at = open_page(PAGE, query={"seeds": "1", "gsteps": "100", "lr_grid": "1", **SHORT})
    assert_clean(at)
    assert len(charts(at)) == N_CHARTS + 2
    grid = next(df.value for df in at.dataframe if "mean_acc" in getattr(df.value, "columns", []))
    assert len(grid) == 2 * 7 and set(grid["n_seeds"]) == {1}
    assert "Final test accuracy" in charts(at)[N_CHARTS].proto.spec
    for tab, flag in (("Init scale", "init_grid"), ("Depth", "depth_grid")):  # the tabs are lazy: one at a time
        at = open_page(PAGE, query={"seeds": "1", "gsteps": "100", "grid": tab, **SHORT})
        assert len(charts(at)) == N_CHARTS and not at.toggle(key=f"training:{flag}").value
        at.toggle(key=f"training:{flag}").set_value(True).run()
        assert_clean(at)
        assert len(charts(at)) == N_CHARTS + 2 and at.query_params[flag] == "1" and at.query_params["grid"] == tab
        assert len(at.get("download_button")) == 2  # the run data and the open grid's


def test_a_diverging_grid_cell_is_marked():
    at = open_page(PAGE, query={"act": "relu", "seeds": "1", "gsteps": "100", "lr_grid": "1", **SHORT})
    assert_clean(at)
    warnings = [w for w in alerts(at, "warning") if "marked ✕" in w]
    assert len(warnings) == 1 and "no norm at learning rate 300: 1 of 1" in warnings[0], alerts(at)
    cells = {(r["label"], r["variant"]): r["acc_text"] for r in _all_rows(at, N_CHARTS)}
    assert cells[("300", "no norm")] == "✕ diverged" and not cells[("0.1", "BN")].startswith("✕")
    assert "(first at step " in warnings[0] and ".0)" not in warnings[0]


def test_manual_and_torch_backends_agree_in_float64():
    at = open_page(PAGE, query={"check": "1", "check64": "1", **SHORT})
    assert_clean(at)
    diffs = next(df.value for df in at.dataframe if "max_abs_diff" in getattr(df.value, "columns", []))
    frame = diffs.data if hasattr(diffs, "data") else diffs
    assert (frame["max_abs_diff"] < 1e-9).all(), frame
    assert "agree to rounding" in _markdown(at, "Largest difference between the two backends")
    assert len(charts(at)) == N_CHARTS + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "key", "values"),
    [
        ("select_slider", "lr", (1e-4, 1e3)),
        ("select_slider", "init", (0.01, 100.0)),
        ("select_slider", "batch", (1.0, 1024.0)),
        ("select_slider", "width", (8.0, 256.0)),
        ("slider", "depth", (1, 10)),
        ("select_slider", "target", (0.5, 0.97)),
        ("slider", "seeds", (1, 5)),
        ("select_slider", "gsteps", (100.0, 1000.0)),
        ("selectbox", "opt", ("momentum", "adam")),
        ("selectbox", "data", ("spirals", "blobs")),
        ("selectbox", "place", ("after",)),
        ("selectbox", "backend", ("torch",)),
        ("toggle", "ill", (True,)),
    ],
)
def test_every_control_at_its_extremes_keeps_the_page_working(kind, key, values):
    at = open_page(PAGE, query=SHORT)
    for value in values:
        getattr(at, kind)(key=f"training:{key}").set_value(value).run()
        assert_clean(at)
        assert charts(at) or alerts(at, "error"), (key, value)


@pytest.mark.slow
def test_the_deep_preset_trains_only_with_bn():
    at = open_page(PAGE, query={"preset": "Deep sigmoid net, 10 layers"})
    assert_clean(at)
    assert at.query_params["depth"] == "10" and at.query_params["layer"] == "10"
    summary = _summary(at)
    assert summary.loc["BN", "final_test_acc"] > 0.6 and summary.loc["no norm", "final_test_acc"] < 0.2


@pytest.mark.slow
def test_the_longest_run_on_a_tiny_net():
    at = open_page(PAGE, query={"depth": "1", "width": "8", **SHORT})
    at.select_slider(key="training:steps").set_value(2000.0).run()
    assert_clean(at)
    assert _summary(at)["status"].eq("trained 2000 steps").all()
    assert max(_spec_steps(at, ACC)) == 2000
