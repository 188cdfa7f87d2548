"""Training Comparison experiments: the page's views agree with the engine, and the paper's claims hold.

The engine (bn_core.train, bn_core.sweep) has its own tests; these check what the page
builds on top: the BN/no-norm pairing, the histograms, the grids, the backend check, and
the scientific claims at the experiment level, on small configs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bn_core.data import DataConfig, load_dataset
from bn_core.experiments.training import (
    VARIANTS,
    ComparisonConfig,
    GridConfig,
    band_drift,
    comparison_report,
    estimated_seconds,
    grid_config,
    grid_divergence,
    grid_estimated_seconds,
    grid_summary,
    grid_verdict,
    percentile_bands,
    questions,
    run_backend_check,
    run_comparison,
    run_grid,
    side_config,
    snapshot_steps,
    steps_to_target,
)
from bn_core.experiments.training.verdicts import (
    FLOAT64_AGREEMENT,
    LEARNED_SHARE,
    SATURATION_MARGIN,
    Outcome,
    backend_verdict,
    drift_verdict,
    learned,
    saturation_verdict,
    speed_verdict,
    takeaway,
)
from bn_core.models import build_model
from bn_core.train import collect_taps, fixed_rows, train

SMALL = ComparisonConfig(depth=2, width=24, steps=48)  # 2 × 24 sigmoid units, 48 steps: a fraction of a second


@pytest.fixture(scope="module")
def small():
    return run_comparison(SMALL)


def test_both_variants_are_the_engine_runs_with_identical_init(small):
    for norm, variant in (("batch", "BN"), ("none", "no norm")):
        alone = train(side_config(SMALL, norm))
        ours = small.curves[small.curves["variant"] == variant].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, alone.curves, check_exact=True)
    bn, plain = (build_model(_sized(SMALL, norm), seed=SMALL.seed) for norm in ("batch", "none"))
    for a, b in zip(bn.blocks, plain.blocks, strict=True):
        assert np.array_equal(a.linear.weight.detach(), b.linear.weight.detach())  # the only difference is BN
    assert list(small.summary["variant"]) == list(VARIANTS)
    assert (small.summary["status"] == "trained 48 steps").all()


def _sized(cfg: ComparisonConfig, norm: str):
    """The model config of one side, with the digits' input and output sizes."""
    return replace(side_config(cfg, norm).model, in_features=64, n_classes=10)


def test_same_config_gives_identical_frames_and_the_seed_matters(small):
    again = run_comparison(SMALL)
    for name in ("curves", "layers", "hist", "summary"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name), check_exact=True)
    other = run_comparison(replace(SMALL, seed=1))
    assert not np.array_equal(other.curves["value"], small.curves["value"])


def test_histograms_are_the_probe_batch_at_every_snapshot(small):
    hist = small.hist
    assert set(hist["step"]) == set(snapshot_steps(SMALL)) == {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48}
    totals = hist.groupby(["variant", "layer", "quantity", "step"])["count"].sum()
    assert (totals == 128 * 24).all()  # every value of the 128-example probe, every unit
    np.testing.assert_allclose(hist.groupby(["variant", "layer", "quantity", "step"])["share"].sum(), 1.0)
    # step 0 = the freshly built net on the engine's probe: recount its layer-1 input by hand
    tcfg = side_config(SMALL, "none")
    split = load_dataset(DataConfig("digits"))
    probe_idx, _ = fixed_rows(tcfg, split)
    model = build_model(_sized(SMALL, "none"), seed=SMALL.seed)
    pre = collect_taps(model, split.x_train[probe_idx])[1].pre.double().numpy()
    rows = hist[(hist["variant"] == "no norm") & (hist["layer"] == 1) & (hist["quantity"] == "pre")]
    rows = rows[rows["step"] == 0]
    edges = np.append(rows["bin_start"].to_numpy(), rows["bin_end"].to_numpy()[-1])
    assert edges[0] <= pre.min() and pre.max() <= edges[-1] + 1e-9
    np.testing.assert_array_equal(rows["count"], np.histogram(pre, bins=edges)[0])


def test_histogram_medians_agree_with_the_engine_percentiles(small):
    """The histograms and the engine's layer records describe the same tensors at the same steps."""
    wide = small.layers.pivot_table(index=["variant", "layer", "step"], columns="metric", values="value")
    pre = small.hist[small.hist["quantity"] == "pre"]
    for (variant, layer, step), rows in pre.groupby(["variant", "layer", "step"]):
        cum = rows["share"].cumsum().to_numpy()
        k = int(np.searchsorted(cum, 0.5))  # the bin holding the median
        p50 = wide.loc[(variant, layer, step), "pre_p50"]
        width = rows["bin_end"].iloc[0] - rows["bin_start"].iloc[0]
        assert rows["bin_start"].iloc[k] - width <= p50 <= rows["bin_end"].iloc[k] + width, (variant, layer, step)


def test_bn_layer_inputs_are_normalized_at_step_zero(small):
    """With BN before the sigmoid, the layer input on the probe batch has mean β = 0 and std γ = 1 at init."""
    wide = small.layers.pivot_table(index=["variant", "layer", "step"], columns="metric", values="value")
    for layer in (1, 2):
        assert abs(wide.loc[("BN", layer, 0), "pre_mean"]) < 1e-5
        assert wide.loc[("BN", layer, 0), "pre_std"] == pytest.approx(1.0, abs=1e-3)


def test_steps_to_target_and_band_views_on_known_numbers():
    curves = pd.DataFrame(
        {
            "step": [0, 10, 20, 0, 10, 20],
            "variant": ["BN"] * 3 + ["no norm"] * 3,
            "metric": "test_acc",
            "value": [0.1, 0.92, 0.95, 0.1, 0.5, 0.89],
        }
    )
    reached = steps_to_target(curves, 0.9)
    assert reached["BN"] == 10 and pd.isna(reached["no norm"])
    assert steps_to_target(curves, 0.5)["no norm"] == 10
    layers = pd.DataFrame(
        [
            (step, v, 2, f"unit_p{q}", base + shift * step + q / 100)
            for v, base, shift in (("BN", 0.0, 0.0), ("no norm", 1.0, 0.1))
            for step in (0, 10)
            for q in (15, 50, 85)
        ],
        columns=["step", "variant", "layer", "metric", "value"],
    )
    bands = percentile_bands(layers, 2)
    assert list(bands.columns) == ["step", "variant", "p15", "p50", "p85"] and len(bands) == 4
    drift = band_drift(layers, 2)
    assert drift["BN"] == 0.0
    assert drift["no norm"] == pytest.approx(0.5)  # moved by 1.0 at step 10, 0 at step 0: mean 0.5


def test_grid_maps_every_axis_onto_the_engine_exactly():
    """A grid point is the page's own engine run for that value and seed (float64: equal to rounding)."""
    base = replace(SMALL, steps=20, dtype="float64")
    for axis, values, field in (("lr", (0.5, 3.0), "lr"), ("init_scale", (0.5, 2.0), "init_scale")):
        result = run_grid(GridConfig(base=base, axis=axis, values=values, n_seeds=2))
        assert len(result.runs) == 2 * 2 * 2
        pick = result.runs[(result.runs[field] == values[1]) & (result.runs["seed"] == 1) & result.runs["bn"]]
        ours = result.curves[(result.curves["config_id"] == pick["config_id"].iloc[0])]
        # seeds 1, 2, … vary the init and the batches; the data split stays the global seed's
        alone = train(replace(side_config(replace(base, **{field: values[1]}), "batch"), seed=1))
        np.testing.assert_allclose(ours[ours["metric"] == "loss"]["value"], alone.metric("loss"), atol=1e-10)
    result = run_grid(GridConfig(base=base, axis="depth", values=(1.0, 3.0), n_seeds=1))
    assert sorted(set(result.runs["depth"])) == [1, 3] and result.runs["config_id"].is_unique
    ours = result.curves[(result.curves["depth"] == 3) & ~result.curves["bn"] & (result.curves["metric"] == "loss")]
    alone = train(side_config(replace(base, depth=3), "none"))
    np.testing.assert_allclose(ours["value"], alone.metric("loss"), atol=1e-10)


def test_grid_config_shares_one_grid_across_the_swept_value():
    a = grid_config(ComparisonConfig(lr=2.0), "lr", 300)
    b = grid_config(ComparisonConfig(lr=10.0, backend="torch"), "lr", 300)
    assert a == b and 10.0 in a.values and 60.0 in a.values  # the paper's ×5 and ×30 of the Fig. 1 rate
    assert grid_config(replace(SMALL, init_scale=0.1), "init_scale", 300) == grid_config(SMALL, "init_scale", 300)
    assert grid_config(SMALL, "depth", 300) != grid_config(replace(SMALL, width=32), "depth", 300)


def test_grid_summary_marks_diverged_cells_and_counts_seeds():
    relu = replace(SMALL, activation="relu", init_scale=3.0, steps=30)
    result = run_grid(GridConfig(base=relu, axis="lr", values=(0.05, 1e4), n_seeds=2))
    summary = grid_summary(result, 0.5).set_index(["value", "variant"])
    assert summary.loc[(1e4, "no norm"), "diverged"] == 2
    assert np.isnan(summary.loc[(1e4, "no norm"), "mean_acc"])
    assert summary.loc[(1e4, "no norm"), "first_diverged_at"] >= 1
    assert summary.loc[(0.05, "BN"), "diverged"] == 0 and summary.loc[(0.05, "BN"), "n_seeds"] == 2
    # steps to the target come from the curves: they match the engine's own per-config count
    for value, variant in [(0.05, "BN"), (0.05, "no norm")]:
        ids = result.runs[(result.runs["lr"] == value) & (result.runs["bn"] == (variant == "BN"))]["config_id"]
        first = steps_to_target(result.curves[result.curves["config_id"].isin(ids)], 0.5, by=("config_id",))
        expected = float(np.median(first.dropna())) if first.notna().any() else np.nan
        assert summary.loc[(value, variant), "steps_to_target"] == pytest.approx(expected, nan_ok=True)


def test_cnn_and_invalid_combinations_raise_clear_value_errors():
    with pytest.raises(ValueError, match="MLPs only"):
        run_grid(grid_config(replace(SMALL, arch="cnn", activation="relu"), "lr", 50))
    with pytest.raises(ValueError, match="image data"):
        run_comparison(replace(SMALL, arch="cnn", dataset="moons"))
    with pytest.raises(ValueError, match="batch_size must be in 1"):
        run_comparison(replace(SMALL, dataset="moons", batch_size=1024))


def test_a_diverging_run_is_reported_and_its_records_stop():
    result = run_comparison(replace(SMALL, activation="relu", lr=1000.0))
    summary = result.summary.set_index("variant")
    k = summary.loc["no norm", "diverged_at"]
    assert k is not None and summary.loc["no norm", "status"] == f"diverged at step {k}"
    assert np.isnan(summary.loc["no norm", "final_test_acc"])
    plain = result.curves[result.curves["variant"] == "no norm"]
    assert plain["step"].max() < k and np.isfinite(plain["value"]).all()
    assert np.isfinite(result.hist["share"]).all()


def test_cnn_comparison_has_two_conv_layers():
    result = run_comparison(ComparisonConfig(arch="cnn", activation="relu", lr=0.1, steps=24))
    assert sorted(set(result.hist["layer"])) == [1, 2]
    totals = result.hist.groupby(["variant", "layer", "quantity", "step"])["count"].sum()
    assert set(totals.xs(1, level="layer")) == {128 * 16 * 8 * 8}  # conv 1: 16 channels of 8×8
    assert set(result.layers[result.layers["metric"] == "zero_frac"]["layer"]) == {1, 2}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_manual_and_torch_bn_train_the_same_curves(dtype):
    check = run_backend_check(replace(SMALL, steps=40, dtype=dtype))
    assert set(check.curves["variant"]) == {"BN (manual)", "BN (torch)"}
    assert check.worst == check.diffs["max_abs_diff"].max() and check.verdict.holds == (dtype == "float64")
    diffs = check.diffs.set_index("quantity")["max_abs_diff"]
    assert set(diffs.index) == {"loss", "train_acc", "test_acc", "test_loss", "layer statistics"}
    if dtype == "float64":
        assert (diffs < 1e-9).all(), diffs
    else:
        assert diffs["loss"] < 1e-3 and diffs["test_acc"] <= 1 / 450  # at most one test digit flips
    assert (diffs > 0).any() or dtype == "float64"


@pytest.mark.slow
def test_fig1_bn_reaches_90_percent_sooner_and_its_bands_move_less():
    """Ioffe & Szegedy Fig. 1 on digits, 3 seeds, as the page runs it (300 steps to stay quick)."""
    for seed in (0, 1, 2):
        result = run_comparison(ComparisonConfig(steps=300, seed=seed))
        reached = steps_to_target(result.curves, 0.9)
        assert not pd.isna(reached["BN"]) and reached["BN"] <= 150, (seed, reached)
        assert pd.isna(reached["no norm"]) or reached["no norm"] > 2 * reached["BN"], (seed, reached)
        for which in ("unit", "pre"):
            drift = band_drift(result.layers, 3, which)
            assert drift["BN"] < drift["no norm"], (seed, which, drift)


@pytest.mark.slow
def test_lr_grid_bn_trains_where_plain_sgd_stalls():
    """The learning-rate grid at the Fig. 1 rate and ×5, 3 seeds: BN trains at both, the plain net stalls at ×5."""
    cfg = GridConfig(base=ComparisonConfig(steps=300), axis="lr", values=(2.0, 10.0), n_seeds=3)
    summary = grid_summary(run_grid(cfg), 0.9).set_index(["value", "variant"])
    for lr in (2.0, 10.0):
        assert summary.loc[(lr, "BN"), "min_acc"] > 0.85 and summary.loc[(lr, "BN"), "reached"] == 3
    plain = summary.loc[(10.0, "no norm")]
    assert plain["diverged"] == 3 or plain["max_acc"] < 0.2, plain
    assert summary.loc[(2.0, "no norm"), "reached"] == 0  # no plain net gets to 90 % in 300 steps


@pytest.mark.slow
def test_depth_and_init_grids_bn_is_robust():
    base = ComparisonConfig(steps=300)
    depth = grid_summary(run_grid(GridConfig(base=base, axis="depth", values=(2.0, 6.0), n_seeds=3)), 0.9)
    depth = depth.set_index(["value", "variant"])
    assert depth.loc[(6.0, "BN"), "mean_acc"] > 0.6 and depth.loc[(6.0, "no norm"), "max_acc"] < 0.2
    init = grid_summary(run_grid(GridConfig(base=base, axis="init_scale", values=(0.1, 1.0), n_seeds=3)), 0.9)
    init = init.set_index(["value", "variant"])
    assert init.loc[(0.1, "BN"), "min_acc"] > 0.85 and init.loc[(0.1, "no norm"), "max_acc"] < 0.5


def test_the_cost_guard_refuses_only_extreme_combinations():
    """Calibrated on the default (≈ 2 s of CPU): every preset and every single extreme control passes."""
    assert 1.0 < estimated_seconds(ComparisonConfig()) < 4.0
    for one in ({"depth": 10, "steps": 1000}, {"batch_size": 1024}, {"width": 256}, {"steps": 2000}, {"depth": 10}):
        assert estimated_seconds(replace(ComparisonConfig(), **one)) < 30, one
    huge = ComparisonConfig(depth=10, width=256, batch_size=1024, steps=2000)
    for run in (run_comparison, run_backend_check):
        with pytest.raises(ValueError, match="would take about"):
            run(huge)
    assert grid_estimated_seconds(grid_config(ComparisonConfig(), "depth", 300)) < 20
    with pytest.raises(ValueError, match="would take about"):
        run_grid(grid_config(replace(ComparisonConfig(), width=256, batch_size=1024), "lr", 1000, 5))


# -- a batch of 1: BN is skipped with its lesson, the net without normalization still trains ------------


def test_a_batch_of_one_skips_bn_and_trains_the_plain_net_exactly():
    cfg = replace(SMALL, batch_size=1, steps=24)
    result = run_comparison(cfg)
    assert result.trained == ("no norm",) and [s.variant for s in result.skipped] == ["BN"]
    assert "batch of at least 2" in result.skipped[0].reason
    alone = train(side_config(cfg, "none"))
    pd.testing.assert_frame_equal(result.curves.reset_index(drop=True), alone.curves, check_exact=True)
    assert set(result.hist["variant"]) == {"no norm"} and set(result.layers["variant"]) == {"no norm"}
    summary = result.summary.set_index("variant")
    assert summary.loc["BN", "status"] == "not trained (batch of 1)" and summary.loc["BN", "steps_run"] == 0
    report = comparison_report(result, 0.5, 2)
    assert report.bn is None and any("BN: not trained" in n and "batch of at least 2" in n for n in report.notes)
    assert not report.takeaway.holds and "batch of 1" in report.takeaway.text
    assert len(questions(result, report)) >= 3


def test_a_grid_at_batch_one_trains_only_the_plain_nets():
    base = replace(SMALL, batch_size=1, steps=12)
    result = run_grid(GridConfig(base=base, axis="lr", values=(0.5, 3.0), n_seeds=1))
    assert not result.runs["bn"].any() and len(result.runs) == 2
    assert [s.variant for s in result.skipped] == ["BN"]
    summary = grid_summary(result, 0.5)
    assert set(summary["variant"]) == {"no norm"}
    verdict = grid_verdict(summary, "learning rate", 0.5, result.skipped[0].reason)
    assert not verdict.holds and "BN was not trained" in verdict.text


# -- verdicts: every sentence, both outcomes, on synthetic outcomes --------------------------------------


def _o(variant="BN", acc=0.95, steps=None, diverged=None, drift=1.0, sat=0.1, grad=0.5) -> Outcome:
    return Outcome(variant, acc, steps, diverged, band_drift=drift, saturation=sat, grad_norm_1=grad)


def test_speed_verdict_ratio_is_the_quotient_of_the_printed_steps():
    v = speed_verdict(_o(steps=75), _o("no norm", steps=300), 0.9, 600)
    assert v.holds and "BN reached 90 % 4.00× sooner (300 vs 75 steps)" in v.text
    only = speed_verdict(_o(steps=75), _o("no norm", acc=0.3), 0.9, 600)
    assert (
        only.holds and "Only BN reached 90 % within 600 steps" in only.text and "did not reach 90 % in 600" in only.text
    )
    slower = speed_verdict(_o(steps=300), _o("no norm", steps=75), 0.9, 600)
    assert not slower.holds and slower.text.startswith("BN was not faster")
    neither = speed_verdict(_o(acc=0.2), _o("no norm", acc=0.1), 0.9, 600)
    assert not neither.holds and neither.text.startswith("Neither net reached 90 %")
    diverged = speed_verdict(_o(steps=50), _o("no norm", acc=np.nan, diverged=7), 0.9, 600)
    assert diverged.holds and "**no norm** diverged at step 7" in diverged.text


def test_takeaway_states_the_opposite_when_no_net_trained():
    """Issue 12: at ×30 BN ended at 20 % and the old takeaway still said 'much larger learning rates still train'."""
    x30 = takeaway(_o(acc=0.20), _o("no norm", acc=0.10), 0.9, 0.1, 600)
    assert not x30.holds and x30.text.startswith("No net trained at these settings") and "BN 20.0 %" in x30.text
    assert "still train" not in x30.text
    only = takeaway(_o(acc=0.96), _o("no norm", acc=0.10), 0.9, 0.1, 600)
    assert only.holds and only.text.startswith("Only the BN net trained within 600 steps here")
    faster = takeaway(_o(acc=0.96, steps=75), _o("no norm", acc=0.93, steps=300), 0.9, 0.1, 600)
    assert faster.holds and "BN reached 90 % sooner" in faster.text
    no_gain = takeaway(_o(acc=0.96, steps=300), _o("no norm", acc=0.93, steps=75), 0.9, 0.1, 600)
    assert not no_gain.holds and "no speed-up" in no_gain.text
    worse = takeaway(_o(acc=0.12), _o("no norm", acc=0.9), 0.9, 0.1, 600)
    assert not worse.holds and "the BN net did not" in worse.text
    assert not takeaway(None, _o("no norm", acc=0.4), 0.9, 0.1, 600).holds


def test_learned_threshold_is_a_quarter_of_the_way_from_chance():
    assert learned(_o(acc=0.1 + LEARNED_SHARE * 0.9), 0.1) and not learned(_o(acc=0.32), 0.1)
    assert not learned(_o(acc=np.nan), 0.1) and not learned(None, 0.1)
    assert learned(_o(acc=0.63), 0.5) and not learned(_o(acc=0.62), 0.5)  # two classes: chance is 50 %


def test_drift_verdict_both_ways_with_the_printed_quotient():
    v = drift_verdict(_o(drift=0.85), _o("no norm", drift=4.0), 3)
    assert v.holds and "4.71× (4.000 vs 0.850)" in v.text and round(4.0 / 0.85, 2) == 4.71
    w = drift_verdict(_o(drift=0.002), _o("no norm", drift=0.001), 3)
    assert not w.holds and "2.00× (0.00200 vs 0.00100)" in w.text and "**more** with BN" in w.text
    assert not drift_verdict(_o(drift=np.nan), _o("no norm"), 3).holds


def test_saturation_verdict_both_ways():
    v = saturation_verdict(_o(sat=0.03, grad=0.12), _o("no norm", sat=0.41, grad=0.0031), "sigmoid")
    assert v.holds and "Fewer saturated outputs with BN" in v.text and "3.0 %" in v.text and "0.0031" in v.text
    close = saturation_verdict(_o(sat=0.105), _o("no norm", sat=0.1 + SATURATION_MARGIN), "sigmoid")
    assert not close.holds and close.text.startswith("BN did not reduce")
    relu = saturation_verdict(_o(sat=0.5), _o("no norm", sat=0.3), "relu")
    assert not relu.holds and "ReLU outputs exactly 0" in relu.text


def test_backend_verdict_decides_in_float64_only():
    assert backend_verdict("float64", FLOAT64_AGREEMENT / 10, 600).holds
    far = backend_verdict("float64", 1e-3, 600)
    assert not far.holds and "differ here" in far.text and "**0.001**" in far.text
    f32 = backend_verdict("float32", 8e-16, 600)
    assert not f32.holds and "**8e-16**" in f32.text and "Turn on float64" in f32.text


def test_grid_verdict_counts_values_where_every_seed_reached_the_target():
    def row(value, variant, reached, diverged=0):
        return {"value": value, "variant": variant, "reached": reached, "n_seeds": 3, "diverged": diverged,
                "first_diverged_at": 4 if diverged else None}  # fmt: skip

    rows = [row(2.0, "BN", 3), row(2.0, "no norm", 0), row(10.0, "BN", 3), row(10.0, "no norm", 0, diverged=2)]
    summary = pd.DataFrame(rows)
    v = grid_verdict(summary, "learning rate", 0.9)
    assert v.holds and "BN at 2 of 2 learning rate values (2, 10), no norm at 0 of 2" in v.text
    even = grid_verdict(pd.DataFrame([row(2.0, "BN", 3), row(2.0, "no norm", 3)]), "depth", 0.9)
    assert not even.holds and "did not widen" in even.text
    note = grid_divergence(summary, "learning rate")
    assert note == "Diverged runs, marked ✕ in the grid: no norm at learning rate 10: 2 of 3 (first at step 4)."
    assert grid_divergence(pd.DataFrame([row(2.0, "BN", 3)]), "depth") is None


# -- the report and the questions come from the live numbers ---------------------------------------------


def test_report_numbers_are_the_records(small):
    report = comparison_report(small, 0.5, 2, "pre")
    reached = steps_to_target(small.curves, 0.5)
    drift = band_drift(small.layers, 2, "pre")
    for o in (report.bn, report.plain):
        assert o.steps_to_target == (None if pd.isna(reached[o.variant]) else int(reached[o.variant]))
        assert o.band_drift == drift[o.variant]
    assert list(report.table["variant"]) == list(VARIANTS) and "steps to 50 % test acc" in report.table.columns
    assert report.chance == pytest.approx(0.1) and report.notes == ()


@pytest.mark.parametrize("seed", [0, 1])
def test_questions_answer_with_the_live_numbers(seed):
    result = run_comparison(replace(SMALL, seed=seed))
    report = comparison_report(result, 0.5, 2)
    qs = {q.key: q for q in questions(result, report)}
    assert 3 <= len(qs) <= 5
    test = result.curves[result.curves["metric"] == "test_acc"]
    for variant in VARIANTS:
        rows = test[(test["variant"] == variant) & (test["value"] >= 0.5)]
        q = qs[f"steps_{variant.replace(' ', '_')}"]
        if len(rows):
            assert q.kind == "number" and q.answer == rows["step"].min() and q.check(rows["step"].min())
            assert not q.check(rows["step"].min() + 2 * result.eval_every)
        else:
            assert q.kind == "choice" and q.answer == "no"
    final = test[test["variant"] == "BN"]["value"].iloc[-1]
    assert qs["final_BN"].answer == round(100 * final, 1) and not qs["final_BN"].check(100 * final + 1)
    drift = band_drift(result.layers, 2)
    assert qs["drift"].answer == drift.idxmax()
    assert str(round(drift["BN"], 3))[:4] in qs["drift"].explain
