"""Batch-Size experiments: noise theory, every stacked network == bn_core.train, verdicts both ways, quiz, bad input."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import bn_core.experiments.batch_size as bs
from bn_core.data import DataConfig, load_dataset
from bn_core.experiments.batch_size import (
    BatchSizeSweepConfig,
    BatchSizeSweepResult,
    Network,
    NoiseConfig,
    NonIIDConfig,
    NonIIDResult,
    NormSettings,
    check_sweep,
    network_train_config,
    run_batch_of_one,
    run_batch_size_sweep,
    run_noise,
    run_non_iid,
    std_of_mean,
    std_of_variance,
    sweep_points,
)
from bn_core.experiments.batch_size import verdicts as v
from bn_core.experiments.batch_size.sweep import train_networks
from bn_core.train import evaluate, train

DIGITS = load_dataset(DataConfig("digits"))
N_TRAIN = len(DIGITS.y_train)
LABEL_TO_VARIANT = {label: variant for variant, label in bs.VARIANT_LABELS.items()}

# -- 1. noise theory --------------------------------------------------------------

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
    with pytest.raises(ValueError, match="largest batch of 8"):
        run_noise(NoiseConfig(m_max=4))


def _with_ratio(r: bs.NoiseResult, statistic: str, m: int, empirical: float) -> bs.NoiseResult:
    """``r`` with one measured std replaced (and its ratio to theory recomputed)."""
    ratio = r.ratio.copy()
    row = (ratio["m"] == m) & (ratio["statistic"] == statistic)
    ratio.loc[row, "empirical"] = empirical
    ratio.loc[row, "ratio"] = empirical / ratio.loc[row, "theory"]
    return replace(r, ratio=ratio)


def test_noise_verdicts_hold_for_a_normal_law_and_say_so_when_the_numbers_disagree():
    r = run_noise(NoiseConfig(n_batches=4000, m_max=64, seed=2))
    said = bs.noise_verdicts(r)
    assert said.theory.holds and said.halving.holds and said.jitter.holds
    factor = float(bs.noise.num(r.empirical(64, "mu_B"))) / float(bs.noise.num(r.empirical(16, "mu_B")))
    assert f"×{bs.noise.num(factor)}" in said.halving.text  # the quotient of the two numbers printed beside it
    off = _with_ratio(r, "var_B", 32, 1.3 * r.ratio.query("m == 32 and statistic == 'var_B'")["theory"].iloc[0])
    assert not bs.noise_verdicts(off).theory.holds and "30 %" in bs.noise_verdicts(off).theory.text
    slow = _with_ratio(r, "mu_B", 64, 0.8 * r.empirical(16, "mu_B"))
    assert not bs.noise_verdicts(slow).halving.holds and "should halve" in bs.noise_verdicts(slow).halving.text
    jitter = r.jitter.copy()
    jitter.loc[(jitter["m"] == 1) & (jitter["metric"] == "p95"), "value"] = 0.5
    assert not bs.noise_verdicts(replace(r, jitter=jitter)).jitter.holds


# -- 2. every stacked network is train() ----------------------------------------------

SMALL = BatchSizeSweepConfig(
    variants=("batch", "group", "layer", "none", "ghost", "renorm"),
    batch_sizes=(6,),
    n_seeds=2,
    epochs=0.1,  # 22 steps at B = 6
    lr=0.1,
    width=12,
    settings=NormSettings(groups=3, ghost_batch=3, r_max=1.5, d_max=0.5),
    dtype="float64",
)


def test_every_network_of_a_batch_size_equals_training_it_alone():
    """Six normalizations × two seeds in one stack: eval/train-mode test error and last-epoch loss == train()."""
    B, nets = 6, sweep_points(SMALL, 6)
    records = train_networks(SMALL, B, nets, DIGITS, None).set_index(["variant", "seed"])
    assert len(nets) == 12
    for net in nets:
        cfg, factory = network_train_config(SMALL, B, net, N_TRAIN)
        alone = train(cfg, data=DIGITS, norm_factory=factory)
        mine = records.loc[(net.variant, net.seed)]
        assert mine["test_error"] == pytest.approx(1 - alone.final_test_acc, abs=1e-12), net
        last_epoch = alone.metric("loss").iloc[-(N_TRAIN // B) :].mean()
        assert mine["train_loss"] == pytest.approx(last_epoch, rel=1e-9), net
        if net.variant == "batch":  # 6 divides the 450 test digits
            test_mode = evaluate(alone.model, DIGITS.x_test.double(), DIGITS.y_test, batch_size=B, mode="train")
            assert mine["test_error_train_mode"] == pytest.approx(1 - test_mode.accuracy, abs=1e-12)
        else:
            assert pd.isna(mine.get("test_error_train_mode"))


def test_bn_is_bitwise_the_same_whatever_other_curves_are_switched_on():
    """The curve switches add networks to the stack; BN's numbers (and its train-mode test) do not move a bit."""
    cfg = replace(SMALL, batch_sizes=(2, 8), dtype="float32", width=16, settings=NormSettings(groups=4))
    alone = run_batch_size_sweep(replace(cfg, variants=("batch",))).runs
    crowded = run_batch_size_sweep(cfg).runs
    pd.testing.assert_frame_equal(
        alone[alone["variant"] == "batch"].reset_index(drop=True),
        crowded[crowded["variant"] == "batch"].reset_index(drop=True),
    )
    assert {"test_error", "test_error_train_mode"} <= set(alone["metric"])


def test_the_sweep_reports_its_schedule_and_is_seeded():
    cfg = replace(SMALL, variants=("batch", "group"), batch_sizes=(4, 8), epochs=0.05, dtype="float32")
    a, b = run_batch_size_sweep(cfg), run_batch_size_sweep(cfg)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    sched = a.schedule.set_index("batch_size")
    assert sched.loc[8, "lr"] == pytest.approx(0.1 * 8 / 32) and sched.loc[4, "lr"] == pytest.approx(0.1 * 4 / 32)
    assert sched.loc[4, "steps"] == round(0.05 * N_TRAIN / 4) and sched.loc[8, "steps"] == round(0.05 * N_TRAIN / 8)
    constant = run_batch_size_sweep(replace(cfg, lr_rule="constant")).schedule
    assert (constant["lr"] == 0.1).all()
    assert set(a.runs["metric"]) == {"test_error", "test_error_train_mode", "train_loss"}
    assert set(a.runs[a.runs["metric"] == "test_error_train_mode"]["variant"]) == {"batch"}
    assert set(a.summary["series"]) == {"BN", "GN", "BN (train-mode test)"}
    assert a.error("BN", 4) == pytest.approx(
        a.runs.query("variant == 'batch' and batch_size == 4 and metric == 'test_error'")["value"].mean()
    )


def test_a_diverging_network_is_reported_and_left_out_of_the_means():
    cfg = replace(
        SMALL, variants=("none", "batch"), batch_sizes=(6,), lr=1e20, dtype="float32"
    )  # ReLU nets die at big lr; 1e20 overflows
    result = run_batch_size_sweep(cfg)
    diverged = result.runs[result.runs["diverged_at"].notna() & (result.runs["metric"] == "test_error")]
    assert len(diverged) and diverged["value"].isna().all()
    assert all("diverged at step" in line for line in result.divergences())
    assert len(result.divergences()) == len(diverged)


@pytest.mark.slow
def test_bn_error_grows_at_small_batches_while_group_norm_stays_flat():
    """Wu & He 2018, Fig. 1 in miniature: 3 seeds, batch 2 vs 32, every batch size 2 epochs."""
    cfg = BatchSizeSweepConfig(variants=("batch", "group"), batch_sizes=(2, 32), n_seeds=3, epochs=2.0)
    result = run_batch_size_sweep(cfg)
    err = result.summary[result.summary["metric"] == "test_error"].set_index(["variant", "batch_size"])["mean"]
    assert err[("batch", 2)] > err[("batch", 32)] + 0.15  # clearly worse at the smallest batch
    assert abs(err[("group", 2)] - err[("group", 32)]) < 0.05  # roughly flat
    assert err[("group", 2)] < err[("batch", 2)] - 0.15
    said = bs.sweep_verdicts(result)
    assert said.bn.holds and all(verdict.holds for verdict in said.batch_free)


@pytest.mark.slow
def test_class_sorted_batches_collapse_bn_but_not_group_norm():
    cfg = NonIIDConfig(variants=("batch", "group"), batch_size=32, lr=0.005, epochs=10.0)
    result = run_non_iid(cfg)
    s = result.summary.set_index(["variant", "order", "metric"])["mean"]
    assert s[("batch", "class_sorted", "test_error")] > s[("batch", "shuffled", "test_error")] + 0.2
    assert s[("batch", "class_sorted", "train_loss")] > 2.0  # chance level is ln 10 ≈ 2.30: BN learned nothing
    assert s[("group", "class_sorted", "test_error")] < s[("batch", "class_sorted", "test_error")] - 0.15
    assert s[("group", "class_sorted", "train_loss")] < 1.0
    assert bs.non_iid_verdict(result).holds


# -- 3. verdicts, both ways, on small synthetic results ----------------------------------------------------------


def _result(errors: dict[str, dict[int, float]], steps: dict[int, int] | None = None, **cfg) -> BatchSizeSweepResult:
    """A sweep result with the given mean test error per chart series and batch size (no training)."""
    rows = []
    for series, by_batch in errors.items():
        variant = LABEL_TO_VARIANT.get(series, "batch")
        metric = "test_error_train_mode" if series == bs.TRAIN_MODE_SERIES else "test_error"
        for B, e in by_batch.items():
            rows.append({"batch_size": B, "variant": variant, "metric": metric, "mean": e, "series": series})
    sizes = sorted({B for by_batch in errors.values() for B in by_batch})
    steps = steps or {B: 500 for B in sizes}
    schedule = pd.DataFrame({"batch_size": sizes, "steps": [steps[B] for B in sizes], "lr": [0.05] * len(sizes)})
    variants = tuple(dict.fromkeys(LABEL_TO_VARIANT.get(s, "batch") for s in errors))
    config = BatchSizeSweepConfig(variants=variants, batch_sizes=tuple(sizes), **cfg)
    return BatchSizeSweepResult(config, pd.DataFrame(), pd.DataFrame(rows), schedule, (), 0.0)


def test_bn_verdict_both_ways():
    hurt = v.bn_verdict(_result({"BN": {2: 0.38, 8: 0.05, 32: 0.03}}))
    assert hurt.holds and "38 %" in hurt.text and "3 %" in hurt.text and "B = 32" in hurt.text
    flat = v.bn_verdict(_result({"BN": {2: 0.05, 8: 0.04, 32: 0.03}}))
    assert not flat.holds and "did not hurt BN" in flat.text
    best_small = v.bn_verdict(_result({"BN": {16: 0.03, 32: 0.05}}))
    assert not best_small.holds and "lowest at the smallest batch" in best_small.text


def test_group_norm_is_flat_or_the_page_names_the_condition():
    flat = v.batch_free_verdict(_result({"BN": {2: 0.4, 64: 0.03}, "GN": {2: 0.06, 64: 0.07}}), "group")
    assert flat.holds and "stays within 1 points" in flat.text and "never reaches its statistics" in flat.text
    extremes = _result({"BN": {2: 0.4, 1024: 0.15}, "GN": {2: 0.059, 1024: 0.845}}, steps={2: 2020, 1024: 4})
    short = v.batch_free_verdict(extremes, "group")
    assert not short.holds
    assert "GN degrades here because at B = 1024 it gets only 4 steps" in short.text
    assert "5.9 % at B = 2 → 84.5 % at B = 1024" in short.text
    long = v.batch_free_verdict(_result({"GN": {2: 0.06, 64: 0.2}, "BN": {2: 0.4, 64: 0.03}}), "group")
    assert not long.holds and "moves with the batch size" in long.text
    assert "no statistics at all" in v.batch_free_verdict(_result({"no norm": {2: 0.07, 8: 0.07}}), "none").text


def test_steps_verdict_both_ways():
    assert v.steps_verdict(_result({"BN": {2: 0.4, 64: 0.03}}, steps={2: 2020, 64: 63})).holds
    short = v.steps_verdict(_result({"BN": {2: 0.4, 512: 0.1, 1024: 0.15}}, steps={2: 2020, 512: 8, 1024: 4}))
    assert not short.holds and "B = 512: 8 steps, B = 1024: 4 steps" in short.text


def test_takeaway_never_says_gn_is_untouched_when_its_error_moved():
    noise = run_noise(NoiseConfig(n_batches=500, m_max=16))
    flat = v.takeaway(noise, _result({"BN": {2: 0.38, 32: 0.03}, "GN": {2: 0.07, 32: 0.06}, "LN": {2: 0.07, 32: 0.07}}))
    assert flat.holds and "GN and LN stayed within 5 points at every batch size here" in flat.text
    moved = v.takeaway(
        noise, _result({"BN": {2: 0.38, 1024: 0.15}, "GN": {2: 0.06, 1024: 0.85}}, steps={2: 2020, 1024: 4})
    )
    assert not moved.holds and "stayed within" not in moved.text
    assert "GN degrades here because at B = 1024 it gets only 4 steps" in moved.text
    untrained = v.takeaway(noise, None)
    assert "Train the sweep" in untrained.text and "1/√m" in untrained.text


def test_remedy_and_train_mode_verdicts_both_ways():
    helps = _result(
        {"BN": {2: 0.38, 32: 0.03}, "Batch Renorm": {2: 0.15, 32: 0.04}, bs.TRAIN_MODE_SERIES: {2: 0.2, 32: 0.04}}
    )
    verdict = v.remedy_verdict(helps, "Batch Renorm", "corrects")
    assert verdict.holds and "**15 %** test error at B = 2, against BN's 38 %" in verdict.text
    assert v.train_mode_verdict(helps).holds
    worse = _result(
        {"BN": {2: 0.38, 32: 0.03}, "Batch Renorm": {2: 0.37, 32: 0.04}, bs.TRAIN_MODE_SERIES: {2: 0.64, 32: 0.04}}
    )
    assert not v.remedy_verdict(worse, "Batch Renorm", "corrects").holds
    assert not v.train_mode_verdict(worse).holds and "not what hurts BN" in v.train_mode_verdict(worse).text


def test_ghost_verdict_both_ways():
    settings = NormSettings(ghost_batch=4)
    follows = _result({"BN": {4: 0.09, 64: 0.03}, "Ghost BN": {4: 0.09, 64: 0.1}}, settings=settings)
    assert v.ghost_verdict(follows).holds and "sits with BN at B = 4" in v.ghost_verdict(follows).text
    apart = _result({"BN": {4: 0.2, 64: 0.03}, "Ghost BN": {4: 0.2, 64: 0.04}}, settings=settings)
    assert not v.ghost_verdict(apart).holds
    assert not v.ghost_verdict(_result({"BN": {2: 0.3, 4: 0.1}, "Ghost BN": {2: 0.3, 4: 0.1}}, settings=settings)).holds


def _non_iid(bn_sorted: float, bn_loss: float) -> NonIIDResult:
    rows = []
    for variant, shuffled, sorted_, loss in (("batch", 0.04, bn_sorted, bn_loss), ("group", 0.05, 0.06, 0.3)):
        for order, err in (("shuffled", shuffled), ("class_sorted", sorted_)):
            rows += [{"variant": variant, "order": order, "metric": "test_error", "mean": err}]
            rows += [{"variant": variant, "order": order, "metric": "train_loss", "mean": loss}]
    return NonIIDResult(NonIIDConfig(variants=("batch", "group")), pd.DataFrame(), pd.DataFrame(rows), 0.0)


def test_non_iid_verdict_both_ways():
    collapsed = bs.non_iid_verdict(_non_iid(0.4, 2.2))
    assert collapsed.holds and "BN 4 % → **40 %**" in collapsed.text and "ln 10" in collapsed.text
    fine = bs.non_iid_verdict(_non_iid(0.08, 0.5))
    assert not fine.holds and "did not collapse" in fine.text


def test_one_verdict_both_ways():
    r = run_batch_of_one(seed=0)
    assert bs.one_verdict(r).holds and "the example is erased" in bs.one_verdict(r).text
    leaky = replace(r, functional=r.functional.assign(x_hat=0.5, dx=0.3))
    assert not bs.one_verdict(leaky).holds and "not erased" in bs.one_verdict(leaky).text


# -- check yourself: the answers are the live numbers ----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7])
def test_questions_answer_with_the_live_numbers(seed):
    noise = run_noise(NoiseConfig(n_batches=300, m_max=32, seed=seed, population="digits layer 1"))
    one = run_batch_of_one(seed)
    cfg = replace(SMALL, variants=("batch", "group"), batch_sizes=(8, 16), epochs=0.05, seed=seed, dtype="float32")
    sweep = run_batch_size_sweep(cfg)
    qs = {q.key: q for q in bs.questions(noise, one, sweep)}
    assert 3 <= len(qs) <= 5 and len(bs.questions(noise, one)) == 3
    sigma2 = noise.population.set_index("quantity").loc["variance σ²", "value"]
    assert qs["std_mu"].check(math.sqrt(sigma2 / 16)) and not qs["std_mu"].check(math.sqrt(sigma2 / 8))
    runs = sweep.runs[(sweep.runs["variant"] == "batch") & (sweep.runs["metric"] == "test_error")]
    bn_at_8 = 100 * runs[runs["batch_size"] == 8]["value"].mean()
    assert qs["bn_error"].check(round(bn_at_8, 1)) and not qs["bn_error"].check(bn_at_8 + 1)
    spread = {}
    for variant, label in (("batch", "BN"), ("group", "GN")):
        err = sweep.runs[(sweep.runs["variant"] == variant) & (sweep.runs["metric"] == "test_error")]
        means = err.groupby("batch_size")["value"].mean()
        spread[label] = means.max() - means.min()
    assert qs["flattest"].answer == min(spread, key=spread.get)
    assert qs["quadruple"].check(bs.quiz.QUADRUPLE_ANSWER) and qs["one"].check(bs.quiz.ONE_ANSWER)


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
        check_sweep(replace(BatchSizeSweepConfig(), **change))
    with pytest.raises(ValueError, match=message):
        run_batch_size_sweep(replace(BatchSizeSweepConfig(), **change))


def test_batch_of_one_leaves_bn_out_with_a_note_and_trains_the_rest():
    cfg = replace(SMALL, variants=("batch", "group"), batch_sizes=(1, 2), epochs=0.01, dtype="float32")
    result = run_batch_size_sweep(cfg)
    at_one = result.runs[result.runs["batch_size"] == 1]
    assert set(at_one["variant"]) == {"group"}
    assert any("cannot train with a batch of 1" in note for note in result.notes)
    assert bs.network_count(cfg) == 2 * 1 + 2 * 2  # GN × 2 seeds at B = 1; BN and GN × 2 seeds at B = 2
    assert Network("group", 0) in sweep_points(cfg, 1)


# -- 4. a batch of one ------------------------------------------------------------------
def test_batch_of_one_messages_and_the_erased_example():
    result = run_batch_of_one(seed=0)
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
