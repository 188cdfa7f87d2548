"""Train vs Inference experiments: running statistics vs torch over long horizons, the recorded run, the labs.

Torch is the oracle in float64. The default run is trained once per module (a few seconds).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.experiments.inference import (
    GAP_SIZES,
    MIN_TRAIN_BATCH,
    InferenceConfig,
    batch_of_one,
    batch_of_one_errors,
    bessel_table,
    ema_slice,
    final_stats,
    finetune_lab,
    fold_lab,
    forgot_eval_lab,
    gap_verdicts,
    half_life,
    lag_lab,
    layer_outputs,
    momentum_table,
    questions,
    run_inference,
    shift_lab,
    trainable_config,
    trained_model,
    two_modes,
    validation_lab,
)
from bn_core.functional import batch_norm_inference, update_running_stats
from bn_core.layers import ManualBatchNorm
from bn_core.precise_bn import adabn, bn_inputs, bn_layers, channel_stats, population_stats

DIGITS = load_dataset(DataConfig("digits"))
TORCH_BATCH_ERROR = "Expected more than 1 value per channel when training"


@pytest.fixture(scope="module")
def run():
    return run_inference(InferenceConfig(), data=DIGITS)


def _metric(run, layer: int, metric: str) -> pd.DataFrame:
    """step × feature table of one recorded metric."""
    rows = run.ema[(run.ema["layer"] == layer) & (run.ema["metric"] == metric)]
    return rows.pivot(index="step", columns="feature", values="value")


# ---------------------------------------------------------------------------
# Running statistics: update_running_stats and ManualBatchNorm vs nn.BatchNorm, 500 steps, float64
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.01, 0.1, 0.9, None])
@pytest.mark.parametrize("spatial", [False, True], ids=["1d", "2d"])
def test_running_stats_chained_by_hand_match_torch_over_500_steps(momentum, spatial):
    gen = torch.Generator().manual_seed(11)
    C = 3
    ref = (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(C, momentum=momentum, dtype=torch.float64)
    layer = ManualBatchNorm(C, momentum=momentum).double()
    running_mean, running_var = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    for k in range(1, 501):
        N = 2 + k % 23  # batch sizes 2 … 24: the unbiased factor n/(n−1) changes every step
        shape = (N, C, 2, 3) if spatial else (N, C)
        drift = torch.tensor([0.01 * k, -3.0, 5.0], dtype=torch.float64).view(1, C, *([1] * (len(shape) - 2)))
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * (1 + k % 5) + drift
        ref(x)
        layer(x)
        dims = (0, 2, 3) if spatial else (0,)
        mu, var = x.mean(dims), x.var(dims, unbiased=False)
        m_k = 1.0 / k if momentum is None else momentum  # None: cumulative average
        running_mean, running_var = update_running_stats(running_mean, running_var, mu, var, x.numel() // C, m_k)
    for ours in ((running_mean, running_var), (layer.running_mean, layer.running_var)):
        torch.testing.assert_close(ours[0], ref.running_mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours[1], ref.running_var, rtol=1e-12, atol=1e-12)
    assert int(layer.num_batches_tracked) == int(ref.num_batches_tracked) == 500


def test_half_life_and_the_keras_convention():
    approx, exact = half_life(0.1)
    assert approx == pytest.approx(math.log(2) / 0.1) and exact == pytest.approx(math.log(2) / -math.log(0.9))
    assert 0.9**exact == pytest.approx(0.5)  # after one exact half-life a batch's weight has halved
    table = momentum_table().set_index("pytorch_momentum")
    assert table.loc["0.01", "keras_momentum"] == pytest.approx(0.99)  # Keras's default 0.99 = PyTorch 0.01
    assert table.loc["0.1", "keras_momentum"] == pytest.approx(0.9)  # PyTorch's default 0.1 = Keras 0.9
    assert math.isnan(table.loc["None", "half_life_exact"])


# ---------------------------------------------------------------------------
# The recorded run
# ---------------------------------------------------------------------------


def test_recorded_statistics_follow_the_ema_rule_step_by_step(run):
    m, B = run.config.momentum, run.config.batch_size
    for layer in (1, 2):
        mu_B, var_B = _metric(run, layer, "mu_B"), _metric(run, layer, "var_B")
        rm, rv = _metric(run, layer, "running_mean"), _metric(run, layer, "running_var")
        assert list(rm.index) == list(range(0, run.config.steps + 1)) and mu_B.index[0] == 1
        expected_mean = (1 - m) * rm.iloc[:-1].to_numpy() + m * mu_B.to_numpy()
        expected_var = (1 - m) * rv.iloc[:-1].to_numpy() + m * var_B.to_numpy() * B / (B - 1)
        np.testing.assert_allclose(rm.iloc[1:].to_numpy(), expected_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv.iloc[1:].to_numpy(), expected_var, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rm.iloc[0], 0.0)
    np.testing.assert_array_equal(rv.iloc[0], 1.0)


def test_last_recorded_buffers_are_the_trained_models(run):
    model = trained_model(run)
    for layer, bn in enumerate(bn_layers(model), start=1):
        np.testing.assert_array_equal(_metric(run, layer, "running_mean").iloc[-1], bn.running_mean.double().numpy())
        np.testing.assert_array_equal(_metric(run, layer, "running_var").iloc[-1], bn.running_var.double().numpy())
    assert run.test_acc > 0.95 and run.status == "trained 300 steps"


def test_precise_bn_is_the_exact_population_statistics_of_the_frozen_net(run):
    model = trained_model(run).double()
    x = DIGITS.x_train.double()
    (mean1, var1), (mean2, var2) = population_stats(model, x)
    b1, b2 = model.blocks
    with torch.no_grad():
        z1 = b1.linear(x)  # layer 1's BN input does not depend on any BN
        torch.testing.assert_close(mean1, z1.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(var1, z1.var(0, unbiased=True), rtol=1e-12, atol=1e-12)
        h1 = torch.relu(batch_norm_inference(z1, mean1, var1, b1.norm.weight, b1.norm.bias, b1.norm.eps))
        z2 = b2.linear(h1)  # layer 2 sees layer 1 normalized with *its* population statistics
        torch.testing.assert_close(mean2, z2.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(var2, z2.var(0, unbiased=True), rtol=1e-12, atol=1e-12)
    assert not torch.equal(mean1.float(), model.blocks[0].norm.running_mean.float())  # the buffers were restored


def test_precise_checkpoints_match_a_recomputation_at_the_last_step(run):
    stats = population_stats(trained_model(run), DIGITS.x_train)
    for layer, (mean, var) in enumerate(stats, start=1):
        np.testing.assert_allclose(_metric(run, layer, "precise_mean").iloc[-1], mean.double().numpy(), rtol=1e-6)
        np.testing.assert_allclose(_metric(run, layer, "precise_var").iloc[-1], var.double().numpy(), rtol=1e-6)


def test_same_seed_same_numbers_and_the_global_rng_is_untouched():
    cfg = InferenceConfig(steps=30, precise_every=10, seed=3, momentum=None, batch_size=8)
    state = torch.random.get_rng_state()
    a, b = run_inference(cfg, data=DIGITS), run_inference(cfg, data=DIGITS)
    assert torch.equal(state, torch.random.get_rng_state())
    pd.testing.assert_frame_equal(a.ema, b.ema, check_exact=True)
    pd.testing.assert_frame_equal(a.checks, b.checks, check_exact=True)
    # momentum=None: the running mean is the plain average of every batch mean so far
    np.testing.assert_allclose(
        _metric(a, 1, "running_mean").iloc[-1], _metric(a, 1, "mu_B").mean(axis=0), rtol=1e-5, atol=1e-6
    )
    c = run_inference(replace(cfg, seed=4), data=DIGITS)
    assert not np.array_equal(a.ema["value"].to_numpy(), c.ema["value"].to_numpy())


def test_momentum_changes_eval_but_never_training():
    """Train mode normalizes with batch statistics: the weights are bitwise the same for every momentum."""
    a = run_inference(InferenceConfig(steps=60, momentum=0.9), data=DIGITS)
    b = run_inference(InferenceConfig(steps=60, momentum=None), data=DIGITS)
    for key, value in a.state.items():
        same = torch.equal(value, b.state[key])
        assert same == (not key.endswith(("running_mean", "running_var"))), key
    pd.testing.assert_frame_equal(_metric(a, 1, "mu_B"), _metric(b, 1, "mu_B"), check_exact=True)


def test_bessel_correction_shows_in_the_data(run):
    b = bessel_table(run, 1, 0)
    assert b.factor == pytest.approx(32 / 31) and b.m == 32 and b.width == 64
    assert b.var_unbiased == pytest.approx(b.var_B * 32 / 31)
    assert b.var_B == _metric(run, 1, "var_B").iloc[-1, 0]  # the last recorded batch of unit 0
    assert b.ratio_biased == pytest.approx((32 - 1) / 32, abs=0.015)  # E[σ²_B] = (m−1)/m · σ²
    assert abs(b.ratio_unbiased - 1) < abs(b.ratio_biased - 1)


def test_ema_ends_close_to_precise_bn_and_slices_have_every_series(run):
    s = final_stats(run, 1, 0)
    assert s.mean_error_in_std < 0.5 and 0.7 < s.var_ratio < 1.3
    assert s.running_mean == _metric(run, 1, "running_mean").iloc[-1, 0]
    assert s.var_ratio == pytest.approx(s.running_var / s.precise_var)
    frame = ema_slice(run, 2, 63)
    counts = frame.groupby(["series", "stat"]).size()
    assert counts[("running (EMA)", "mean")] == 301 and counts[("batch (μ_B, σ²_B)", "variance")] == 300
    assert counts[("precise BN (population)", "mean")] == 31


def test_invalid_configs_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="momentum"):
        run_inference(InferenceConfig(momentum=1.5), data=DIGITS)
    with pytest.raises(ValueError, match="batch of at least 2"):
        run_inference(InferenceConfig(batch_size=1), data=DIGITS)


def test_a_diverging_run_is_reported_not_raised():
    poisoned = DataSplit(**{**vars(DIGITS), "x_train": DIGITS.x_train.clone()})
    poisoned.x_train[:, 5] = math.inf  # every batch's loss is NaN at step 1
    result = run_inference(InferenceConfig(steps=20), data=poisoned)
    assert result.diverged_at == 1 and result.status == "diverged at step 1"
    assert result.ema["step"].max() == 0 and math.isnan(result.test_acc)


# ---------------------------------------------------------------------------
# Section 2: one batch, two modes
# ---------------------------------------------------------------------------


def test_two_modes_differ_only_in_the_statistics_used(run):
    tm = two_modes(run, 32, data=DIGITS)
    model = trained_model(run)
    x = DIGITS.x_test[:32]
    for bn, z in zip(bn_layers(model), bn_inputs(model, x), strict=True):
        y_train, y_eval = layer_outputs(bn, z)
        mu_B, var_unbiased = channel_stats(z)
        by_hand = bn.weight * (z - mu_B) / torch.sqrt(var_unbiased * 31 / 32 + bn.eps) + bn.bias
        torch.testing.assert_close(y_train, by_hand, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            y_eval, batch_norm_inference(z, bn.running_mean, bn.running_var, bn.weight, bn.bias), rtol=0, atol=0
        )
        assert int(bn.num_batches_tracked) == run.config.steps  # the train-mode pass left no trace
    assert (tm.summary["max_abs_diff"] > 0.1).all()
    assert set(tm.hist["series"]) == {"train mode", "eval mode", "train − eval"}
    assert (tm.features["max_abs_diff"] >= 0).all() and len(tm.features) == 2 * run.config.width


def test_a_batch_of_one_shows_torchs_own_error(run):
    tm = two_modes(run, 1, data=DIGITS)
    errors = {e.impl: e for e in tm.errors}
    assert TORCH_BATCH_ERROR in errors["torch.nn.BatchNorm1d"].text
    assert TORCH_BATCH_ERROR in errors["bn_core ManualBatchNorm"].text
    assert all(e.raised for e in tm.errors)
    assert set(tm.hist["series"]) == {"eval mode"}
    with pytest.raises(ValueError, match="1 … 450"):
        two_modes(run, 451, data=DIGITS)


def test_the_train_eval_gap_shrinks_with_the_batch_and_with_training(run):
    gap = run.gap_sizes[run.gap_sizes["metric"] == "gap_mean"].pivot(
        index="batch_size", columns="layer", values="value"
    )
    assert list(gap.index) == list(GAP_SIZES)
    assert (gap.iloc[0] > 4 * gap.iloc[-1]).all()  # batch 2 vs 256
    steps = run.checks[run.checks["metric"] == "gap_mean"].pivot(index="step", columns="layer", values="value")
    assert (steps.iloc[0] > 3 * steps.iloc[-1]).all()  # step 0: running statistics still 0 and 1


# ---------------------------------------------------------------------------
# The misconception labs
# ---------------------------------------------------------------------------


def test_forgot_eval_lab(run):
    r = forgot_eval_lab(run, data=DIGITS)
    acc = r.accuracy.set_index(["batch_size", "mode"])["accuracy"]
    assert acc[(1, "eval mode")] == acc[(2, "eval mode")] == pytest.approx(run.test_acc)  # all 450, any batch
    assert math.isnan(acc[(1, "train mode")])
    assert acc[(2, "train mode")] < acc[(2, "eval mode")] - 0.3
    assert acc[(2, "train mode")] < acc[(8, "train mode")] < acc[(128, "train mode")]
    assert TORCH_BATCH_ERROR in next(e.text for e in r.errors if e.impl == "torch.nn.BatchNorm1d")


def test_validation_in_train_mode_moves_the_running_statistics(run):
    r = validation_lab(run, data=DIGITS)
    s = r.summary.set_index("order")
    assert (s["drift"] > 0.05).all()
    assert s.loc["class-sorted", "reported_acc"] < 0.5  # single-class batches: BN erases the class signal
    assert s.loc["class-sorted", "eval_after"] != s.loc["class-sorted", "eval_before"]
    assert s["eval_before"].tolist() == pytest.approx([run.test_acc] * 2)
    with pytest.raises(ValueError, match="2 or more"):
        validation_lab(replace(run, config=replace(run.config, batch_size=1)), data=DIGITS)


def test_frozen_finetuning_updates_bn_statistics_unless_bn_is_in_eval_mode(run):
    r = finetune_lab(run, data=DIGITS)
    s = r.summary.set_index("variant")
    train_mode, eval_mode = s.iloc[0], s.iloc[1]
    assert (s["param_change"] == 0).all()  # requires_grad=False really froze W, b, γ, β
    assert train_mode["drift"] > 0.1 and eval_mode["drift"] == 0
    assert eval_mode["old_task_acc"] == pytest.approx(run.test_acc)  # untouched backbone, untouched task
    assert r.old_task_before == pytest.approx(run.test_acc)
    assert train_mode["old_task_acc"] < eval_mode["old_task_acc"]
    assert (s["new_task_acc"] > 0.9).all()


def test_adabn_recovers_at_least_half_of_the_accuracy_lost_to_the_shift(run):
    r = shift_lab(run, contrast=1.0, brightness=0.5, noise=0.0, data=DIGITS)  # the page's default lab settings
    assert r.clean == pytest.approx(run.test_acc)
    assert r.shifted < r.clean - 0.05
    assert r.recovered >= 0.5
    assert r.adapted >= r.shifted + 0.5 * (r.clean - r.shifted)
    inverted = shift_lab(run, contrast=-1.0, brightness=1.0, noise=0.0, data=DIGITS)  # a sign flip: not fixable
    assert inverted.adapted < 0.3


def test_adabn_leaves_the_original_model_alone(run):
    model = trained_model(run)
    before = [b.clone() for b in model.buffers()]
    adapted = adabn(model, DIGITS.x_test + 0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers(), strict=True))
    assert not torch.equal(bn_layers(adapted)[0].running_mean, bn_layers(model)[0].running_mean)


@pytest.mark.slow
def test_ema_is_staler_at_a_high_learning_rate_and_precise_bn_fixes_it():
    """Three seeds, Keras-like momentum 0.01: the EMA trails the weights more at lr 3 than at lr 0.1."""
    gaps = []
    for seed in (0, 1, 2):
        calm = run_inference(InferenceConfig(momentum=0.01, lr=0.1, seed=seed), data=DIGITS)
        fast = run_inference(InferenceConfig(momentum=0.01, lr=3.0, seed=seed), data=DIGITS)
        s = lag_lab(calm, fast).summary.set_index("lr")
        assert s.loc[3.0, "stat_error"] > 1.2 * s.loc[0.1, "stat_error"], seed
        gaps.append(s.loc[3.0, "gap"])
    assert np.mean(gaps) > 0.01  # recomputing the statistics raised test accuracy on average


def test_fold_lab_on_the_trained_mlp(run):
    r = fold_lab(run, "mlp", rounds=5, data=DIGITS)
    assert r.checks["ok"].all() and (r.checks["same_predictions"] == 1).all()
    assert r.acc_folded == r.acc_unfolded == pytest.approx(run.test_acc)
    assert set(r.timing["variant"]) == {"hand-written BN (eval)", "torch nn.BatchNorm (eval)", "folded"}
    assert (r.timing["median_ms"] > 0).all() and r.n_folded == 2


@pytest.mark.slow
def test_fold_lab_on_a_trained_cnn(run):
    r = fold_lab(run, "cnn", rounds=3, data=DIGITS)
    assert r.checks["ok"].all() and r.n_folded == 2
    assert r.acc_folded == pytest.approx(r.acc_unfolded, abs=1 / 450)


# ---------------------------------------------------------------------------
# A batch of 1: the lesson on the page's network, and the stand-in the other sections use
# ---------------------------------------------------------------------------


def test_a_batch_of_one_trains_nothing_and_the_other_sections_use_b_2():
    cfg = InferenceConfig(batch_size=1, steps=50)
    assert trainable_config(cfg) == replace(cfg, batch_size=MIN_TRAIN_BATCH) == replace(cfg, batch_size=2)
    assert trainable_config(InferenceConfig()) == InferenceConfig()
    lesson = batch_of_one(cfg, data=DIGITS)
    t = lesson.table
    np.testing.assert_array_equal(t["mu_B"], t["x"])  # one value per channel: μ_B is that value
    assert (t["var_B"] == 0).all() and (t["x_hat"] == 0).all()
    assert (t["y"] == 0).all()  # y = β, and β starts at 0
    assert (t["x"] != 0).any()  # the input was not zero: BN erased it
    assert lesson.max_abs_dx == 0.0  # no gradient reaches the layer below
    assert TORCH_BATCH_ERROR in lesson.torch_error and TORCH_BATCH_ERROR in lesson.lesson.text
    assert not lesson.lesson.holds


# ---------------------------------------------------------------------------
# Check yourself: answers equal the numbers computed independently from the result, for two seeds
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 5])
def test_questions_come_from_the_live_run(seed):
    run = run_inference(InferenceConfig(steps=40, seed=seed), data=DIGITS)
    qs = {q.key: q for q in questions(run, batch_of_one_errors(run, DIGITS))}
    assert 3 <= len(qs) <= 5 and set(qs) == {"bessel", "half_life", "batch_of_one", "keras", "gap_factor"}
    last_var_B = _metric(run, 1, "var_B").iloc[-1, 0]  # unit 0 of layer 1, the last batch (biased)
    assert qs["bessel"].answer == pytest.approx(last_var_B * 32 / 31, rel=1e-12)
    assert qs["bessel"].check(last_var_B * 32 / 31) and not qs["bessel"].check(last_var_B)
    assert qs["half_life"].answer == pytest.approx(math.log(2) / -math.log(0.9))
    assert qs["half_life"].check(6.58) and not qs["half_life"].check(6.93)  # ln 2 / m is the approximation
    assert qs["batch_of_one"].check(qs["batch_of_one"].options[0]) and TORCH_BATCH_ERROR in qs["batch_of_one"].explain
    assert qs["keras"].check("Almost only the last batch")
    gap = run.gap_sizes[(run.gap_sizes["layer"] == 1) & (run.gap_sizes["metric"] == "gap_mean")]["value"]
    sentence = gap_verdicts(run, 1).by_size.text  # what the page prints beside the charts
    a, b = (float(v) for v in re.search(r"\(([\d.]+) vs ([\d.]+)\)", sentence).groups())
    assert a == pytest.approx(gap.iloc[0], rel=2e-3) and b == pytest.approx(gap.iloc[-1], rel=2e-3)
    assert qs["gap_factor"].answer == pytest.approx(a / b, rel=1e-12)  # the quotient of the printed numbers
    assert f"{a / b:.2f}×" in sentence and f"{a / b:.3g}×" in qs["gap_factor"].explain


def test_questions_change_with_the_seed_and_with_momentum_none():
    a = run_inference(InferenceConfig(steps=40, seed=0), data=DIGITS)
    b = run_inference(InferenceConfig(steps=40, seed=1, momentum=None), data=DIGITS)
    qa = {q.key: q for q in questions(a, batch_of_one_errors(a, DIGITS))}
    qb = {q.key: q for q in questions(b, batch_of_one_errors(b, DIGITS))}
    assert qa["bessel"].answer != qb["bessel"].answer
    assert "half_life" not in qb and qb["weight_last"].answer == pytest.approx(1 / 40)
