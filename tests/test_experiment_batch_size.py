"""Batch-Size experiments: the noise theory, the channel-stacked trainer == bn_core.train, BN vs GN, bad input."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import bn_core.experiments.batch_size as bs
from bn_core.data import DataConfig, load_dataset
from bn_core.experiments.batch_size import (
    NoiseConfig,
    NonIIDConfig,
    NormSettings,
    SweepConfig,
    batch_of_one,
    check_sweep,
    point_train_config,
    run_batch_sweep,
    run_noise,
    run_non_iid,
    std_of_mean,
    std_of_variance,
    sweep_points,
)
from bn_core.train import evaluate, train

DIGITS = load_dataset(DataConfig("digits"))
N_TRAIN = len(DIGITS.y_train)

# -- 1. noise theory --------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4])
def test_variance_of_the_sample_variance_formula_is_exact(m):
    """Enumerate every m-tuple of a 3-point law: the exact Var(σ²_B) equals the closed form."""
    values, probs = np.array([-1.0, 0.5, 3.0]), np.array([0.2, 0.5, 0.3])
    mu = (values * probs).sum()
    sigma2, mu4 = ((values - mu) ** 2 * probs).sum(), ((values - mu) ** 4 * probs).sum()
    var_B, weight = [], []
    for tup in itertools.product(range(3), repeat=m):
        x = values[list(tup)]
        var_B.append(x.var())  # biased, ÷m
        weight.append(np.prod(probs[list(tup)]))
    var_B, weight = np.array(var_B), np.array(weight)
    exact = np.sqrt((weight * var_B**2).sum() - (weight * var_B).sum() ** 2)
    assert std_of_variance(sigma2, mu4, np.array([m]))[0] == pytest.approx(exact, rel=1e-12)
    assert std_of_variance(sigma2, mu4, np.array([1]))[0] == 0.0  # one value: σ²_B ≡ 0
    assert std_of_mean(sigma2, np.array([4]))[0] == pytest.approx(np.sqrt(sigma2) / 2)


@pytest.mark.parametrize("population", ["normal", "uniform", "bimodal", "heavy outliers", "digits layer 1"])
def test_measured_spread_is_within_10_percent_of_theory_at_m_8_and_more(population):
    result = run_noise(NoiseConfig(population=population, n_batches=4000, m_max=256, seed=3))
    big = result.ratio[result.ratio["m"] >= 8]
    assert len(big) == 2 * 6  # m = 8 … 256, μ_B and σ²_B
    assert ((big["ratio"] - 1).abs() < 0.10).all(), big
    assert set(result.spread["source"]) == {"empirical", "theory"}


def test_normal_population_has_kurtosis_3_and_batch_1_erases_the_example():
    result = run_noise(NoiseConfig(population="normal", n_batches=2000, m_max=64))
    pop = result.population.set_index("quantity")["value"]
    assert pop["kurtosis μ4/σ⁴"] == pytest.approx(3.0, abs=0.05)
    j = result.jitter.pivot(index="m", columns="metric", values="value")
    assert (j.loc[1] == 0).all()  # m = 1: x̂ = 0 always
    assert j.loc[2, "p05"] == pytest.approx(-1.0, abs=1e-3) and j.loc[2, "p95"] == pytest.approx(1.0, abs=1e-3)
    stds = j.loc[2:, "std"].to_numpy()
    assert (np.diff(stds) < 0).all()  # the jitter shrinks as the batch grows
    assert j.loc[64, "p50"] == pytest.approx(result.z0, abs=0.05)  # and centres on the population's (x − μ)/σ
    spread = result.spread[(result.spread["statistic"] == "var_B") & (result.spread["m"] == 1)]
    assert (spread["value"] == 0).all()


def test_noise_is_seeded_and_refuses_bad_settings():
    a, b = run_noise(NoiseConfig(n_batches=200, m_max=16)), run_noise(NoiseConfig(n_batches=200, m_max=16))
    pd.testing.assert_frame_equal(a.spread, b.spread)
    c = run_noise(NoiseConfig(n_batches=200, m_max=16, seed=1))
    assert not np.allclose(a.spread["value"], c.spread["value"])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        run_noise(NoiseConfig(tracked_quantile=1.0))
    with pytest.raises(ValueError, match="Unknown population"):
        run_noise(NoiseConfig(population="zipf"))


# -- 2. the channel-stacked trainer is train() ------------------------------------------

SMALL = SweepConfig(
    variants=("batch", "group", "layer", "none", "ghost", "renorm"),
    batch_sizes=(6,),
    n_seeds=2,
    epochs=0.1,  # 22 steps at B = 6
    lr=0.1,
    width=12,
    settings=NormSettings(groups=3, ghost_batch=3, r_max=1.5, d_max=0.5),
    dtype="float64",
    eval_train_mode=True,
)


def test_every_stacked_network_equals_training_it_alone():
    B = 6
    stack = bs._Stack(sweep_points(SMALL, B), bs._base(SMALL, B, N_TRAIN), SMALL.settings)
    model, losses = bs._train_stack(stack, DIGITS, None)
    x_test, y_test = DIGITS.x_test.double(), DIGITS.y_test
    err_eval = bs._errors(model, x_test, y_test, "eval", None)
    err_train = bs._errors(model, x_test, y_test, "train", B)  # 6 divides the 450 test digits
    assert len(stack.points) == 12
    for k, point in enumerate(stack.points):
        cfg, factory = point_train_config(SMALL, B, point, N_TRAIN)
        alone = train(cfg, data=DIGITS, norm_factory=factory)
        np.testing.assert_allclose(losses[:, k].numpy(), alone.metric("loss").to_numpy(), rtol=1e-9, atol=1e-11)
        assert err_eval[k].item() == pytest.approx(1 - alone.final_test_acc, abs=1e-12), point
        mode = evaluate(alone.model, x_test, y_test, batch_size=B, mode="train")
        assert err_train[k].item() == pytest.approx(1 - mode.accuracy, abs=1e-12), point


def test_the_sweep_engine_share_and_the_stack_agree_with_training_alone():
    """BN and no norm go through bn_core.sweep, GN through the stack: every network still equals train()."""
    cfg = replace(SMALL, variants=("batch", "none", "group"), eval_train_mode=False)
    assert [p.variant for p in bs._engine_points(cfg, sweep_points(cfg, 6))[0]] == ["batch", "batch", "none", "none"]
    result = run_batch_sweep(cfg).runs
    for point in sweep_points(cfg, 6):
        train_cfg, factory = point_train_config(cfg, 6, point, N_TRAIN)
        alone = train(train_cfg, data=DIGITS, norm_factory=factory)
        mine = result[(result["variant"] == point.variant) & (result["seed"] == point.seed)].set_index("metric")
        assert mine.loc["test_error", "value"] == pytest.approx(1 - alone.final_test_acc, abs=1e-12), point
        last_epoch = alone.metric("loss").iloc[-(N_TRAIN // 6) :].mean()
        assert mine.loc["train_loss", "value"] == pytest.approx(last_epoch, rel=1e-9), point


def test_a_diverging_network_is_reported_and_leaves_the_others_alone():
    """An infinite pixel in one training row: the network whose batches contain it diverges, alone."""
    cfg = replace(SMALL, variants=("none", "batch"), eval_train_mode=False)
    B, points = 6, sweep_points(cfg, 6)
    base = bs._base(cfg, B, N_TRAIN)
    seen = {s: set(bs.run_schedule(replace(base, seed=s), DIGITS).flatten().tolist()) for s in (0, 1)}
    row = min(seen[0] - seen[1])  # drawn by seed 0 only
    split = load_dataset(DataConfig("digits"))
    split.x_train[row, 10] = float("inf")
    records = pd.DataFrame(bs._stack_records(bs._Stack(points, base, cfg.settings), split, False, None))
    for point, record in zip(points, records.itertuples(), strict=True):
        train_cfg, factory = point_train_config(cfg, B, point, N_TRAIN)
        alone = train(train_cfg, data=split, norm_factory=factory)
        if point.seed == 0:
            assert alone.diverged_at is not None and record.diverged_at == alone.diverged_at
            assert np.isnan(record.test_error)
        else:
            assert pd.isna(record.diverged_at)
            assert record.test_error == pytest.approx(1 - alone.final_test_acc, abs=1e-12)


def test_the_sweep_reports_its_schedule_and_is_seeded():
    cfg = replace(SMALL, variants=("batch", "group"), batch_sizes=(4, 8), epochs=0.05, dtype="float32")
    a, b = run_batch_sweep(cfg), run_batch_sweep(cfg)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    sched = a.schedule.set_index("batch_size")
    assert sched.loc[8, "lr"] == pytest.approx(0.1 * 8 / 32) and sched.loc[4, "lr"] == pytest.approx(0.1 * 4 / 32)
    assert sched.loc[4, "steps"] == round(0.05 * N_TRAIN / 4) and sched.loc[8, "steps"] == round(0.05 * N_TRAIN / 8)
    constant = run_batch_sweep(replace(cfg, lr_rule="constant")).schedule
    assert (constant["lr"] == 0.1).all()
    assert set(a.runs["metric"]) == {"test_error", "test_error_train_mode", "train_loss"}
    assert set(a.runs[a.runs["metric"] == "test_error_train_mode"]["variant"]) == {"batch"}
    assert set(a.summary["series"]) == {"BN", "GN", "BN · train-mode eval"}


@pytest.mark.slow
def test_bn_error_grows_at_small_batches_while_group_norm_stays_flat():
    """Wu & He 2018, Fig. 1 in miniature: 3 seeds, batch 2 vs 32, every batch size 2 epochs."""
    cfg = SweepConfig(variants=("batch", "group"), batch_sizes=(2, 32), n_seeds=3, epochs=2.0)
    result = run_batch_sweep(cfg)
    err = result.summary[result.summary["metric"] == "test_error"].set_index(["variant", "batch_size"])["mean"]
    assert err[("batch", 2)] > err[("batch", 32)] + 0.15  # clearly worse at the smallest batch
    assert abs(err[("group", 2)] - err[("group", 32)]) < 0.05  # roughly flat
    assert err[("group", 2)] < err[("batch", 2)] - 0.15


@pytest.mark.slow
def test_class_sorted_batches_collapse_bn_but_not_group_norm():
    cfg = NonIIDConfig(variants=("batch", "group"), batch_size=32, lr=0.005, epochs=10.0)
    result = run_non_iid(cfg)
    s = result.summary.set_index(["variant", "order", "metric"])["mean"]
    assert s[("batch", "class_sorted", "test_error")] > s[("batch", "shuffled", "test_error")] + 0.2
    assert s[("batch", "class_sorted", "train_loss")] > 2.0  # chance level is ln 10 ≈ 2.30: BN learned nothing
    assert s[("group", "class_sorted", "test_error")] < s[("batch", "class_sorted", "test_error")] - 0.15
    assert s[("group", "class_sorted", "train_loss")] < 1.0


# -- invalid combinations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": NormSettings(groups=5)}, "group count G=5 must divide the width C=64"),
        ({"variants": ("batch", "ghost"), "settings": NormSettings(ghost_batch=3)}, "does not divide B=4"),
        ({"batch_sizes": (2, 2048)}, "larger than the training set"),
        ({"variants": ("batch", "renorm"), "settings": NormSettings(r_max=0.5)}, "r_max ≥ 1"),
        ({"variants": ()}, "at least one normalization"),
        ({"lr": -1.0}, "lr must be a positive number"),
    ],
)
def test_invalid_combinations_raise_a_clear_value_error_before_any_training(change, message):
    with pytest.raises(ValueError, match=message):
        check_sweep(replace(SweepConfig(), **change))
    with pytest.raises(ValueError, match=message):
        run_batch_sweep(replace(SweepConfig(), **change))


def test_batch_of_one_leaves_bn_out_with_a_note_and_trains_the_rest():
    cfg = replace(SMALL, variants=("batch", "group"), batch_sizes=(1, 2), epochs=0.01, dtype="float32")
    result = run_batch_sweep(cfg)
    at_one = result.runs[result.runs["batch_size"] == 1]
    assert set(at_one["variant"]) == {"group"}
    assert any("cannot train with a batch of 1" in note for note in result.notes)


# -- 4. a batch of one ------------------------------------------------------------------


def test_batch_of_one_messages_and_the_erased_example():
    result = batch_of_one(seed=0)
    outcome = result.outcomes.set_index(["implementation", "mode"])
    torch_msg = outcome.loc[("torch nn.BatchNorm1d", "train"), "message"]
    assert "Expected more than 1 value per channel when training" in torch_msg
    manual_msg = outcome.loc[("bn_core ManualBatchNorm", "train"), "message"]
    assert "batch variance is 0" in manual_msg
    assert outcome.loc[("torch nn.BatchNorm1d", "eval"), "outcome"] == "ok"
    assert outcome.loc[("torch nn.BatchNorm2d", "train"), "outcome"] == "ok"
    assert outcome.loc[("bn_core ManualGroupNorm (G=2)", "train"), "outcome"] == "ok"
    assert "at least 2" in outcome.loc[("bn_core.train.train (batch_size=1, BN)", "train"), "message"]
    f = result.functional
    np.testing.assert_array_equal(f["mu_B"], f["x"])
    assert (f["var_B"] == 0).all() and (f["x_hat"] == 0).all()
    np.testing.assert_array_equal(f["y"], f["beta"])
    assert f["dx"].abs().max() < 1e-12 < f["dy"].abs().max()
    np.testing.assert_allclose(result.spatial["x_hat_std"], 1.0, atol=1e-4)  # one image: its own statistics
