"""The stacked engine and the Training grids on it: equal sequential training, isolate divergence, Fig. 1's claims."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bn_core.data import DataConfig, load_dataset
from bn_core.engine import NormSpec, StackConfig, StackPoint, norm_module, train_stack, window_rows
from bn_core.engine import point_train_config as stack_point_config
from bn_core.models import CNNConfig, MLPConfig
from bn_core.sweep import SweepConfig, SweepPoint, point_config, run_sweep, sweep_grid
from bn_core.train import FIG1_LR, TrainConfig, evaluate, fig1_config, run_schedule, train

DIGITS = load_dataset(DataConfig("digits"))
BASE = TrainConfig(model=MLPConfig(depth=2, width=24), steps=30, eval_every=10, dtype="float64")


def _assert_matches_sequential(cfg: SweepConfig, result, ids: list[int] | None = None, atol: float = 1e-9) -> None:
    for i in ids if ids is not None else range(len(cfg.points)):
        alone = train(point_config(cfg, i), data=DIGITS)
        ours = result.curves[result.curves["config_id"] == i]
        a = alone.curves.sort_values(["metric", "step"]).reset_index(drop=True)
        b = ours.sort_values(["metric", "step"]).reset_index(drop=True)
        assert a[["step", "metric"]].equals(b[["step", "metric"]]), i
        np.testing.assert_allclose(b["value"], a["value"], rtol=1e-9, atol=atol, err_msg=f"config {i}")
        row = result.summary.loc[i]
        assert (pd.isna(row["diverged_at"]) and alone.diverged_at is None) or row["diverged_at"] == alone.diverged_at


@pytest.mark.parametrize(
    ("optimizer", "lr", "model"),
    [
        ("sgd", 0.5, MLPConfig(depth=2, width=24)),
        ("momentum", 0.05, MLPConfig(depth=2, width=24, activation="tanh", placement="after")),
        ("adam", 0.01, MLPConfig(depth=3, width=16, activation="relu", bn_momentum=None)),
    ],
)
def test_sweep_equals_sequential_training(optimizer: str, lr: float, model: MLPConfig) -> None:
    base = replace(BASE, optimizer=optimizer, lr=lr, model=model)
    cfg = sweep_grid(base, lrs=(lr, 3 * lr), seeds=(0, 1), init_scales=(1.0, 2.0))
    result = run_sweep(cfg, data=DIGITS)
    assert len(result.summary) == 16
    _assert_matches_sequential(cfg, result, ids=[0, 7, 9, 14])  # both groups; every lr, seed and init scale


def test_float32_sweep_is_close_to_sequential_and_reports_the_grid() -> None:
    cfg = sweep_grid(fig1_config("batch", steps=25, eval_every=5), lrs=(0.2, 0.5))
    result = run_sweep(cfg, data=DIGITS)
    _assert_matches_sequential(cfg, result, atol=2e-4)
    assert list(result.curves.columns) == ["config_id", "lr", "seed", "init_scale", "bn", "step", "metric", "value"]
    assert result.summary["bn"].tolist() == [True, True, False, False]
    assert result.summary["lr"].tolist() == [0.2, 0.5, 0.2, 0.5]
    summary_cols = ["final_test_acc", "final_train_acc", "steps_to_target", "diverged_at", "status"]
    assert set(summary_cols) <= set(result.summary.columns)


def test_a_diverging_config_does_not_contaminate_the_others() -> None:
    plain = MLPConfig(depth=2, width=24, activation="relu", init_scale=3.0)
    cfg = SweepConfig(
        base=replace(BASE, model=plain, steps=30),
        points=(
            SweepPoint(lr=0.1, bn=False),
            SweepPoint(lr=1e30, bn=False),  # explodes (float64 needs a lot)
            SweepPoint(lr=0.1, seed=1, bn=False),
            SweepPoint(lr=0.1, bn=True),
            SweepPoint(lr=1e100, bn=True),  # BN survives a lot, but not this
        ),
    )
    result = run_sweep(cfg, data=DIGITS)
    summary = result.summary.set_index("config_id")
    assert summary["diverged_at"].isna().tolist() == [True, False, True, True, False]
    k = summary.loc[1, "diverged_at"]
    assert not pd.isna(k) and summary.loc[1, "status"] == f"diverged at step {k}"
    assert np.isnan(summary.loc[1, "final_test_acc"])
    curves = result.curves
    assert curves[curves["config_id"] == 1]["step"].max() < k
    assert np.isfinite(curves["value"]).all()
    _assert_matches_sequential(cfg, result)  # the survivors train exactly as if alone; diverged_at matches too
    without = run_sweep(replace(cfg, points=(cfg.points[0], cfg.points[2])), data=DIGITS)
    survivors = curves[curves["config_id"] == 2]["value"].to_numpy()
    np.testing.assert_array_equal(without.curves[without.curves["config_id"] == 1]["value"], survivors)


def test_steps_to_target_agree_with_the_curves() -> None:
    cfg = sweep_grid(replace(BASE, lr=1.0, steps=60), lrs=(1.0,), bns=(True,), target_acc=0.8)
    result = run_sweep(cfg, data=DIGITS)
    test_acc = result.curves[result.curves["metric"] == "test_acc"]
    first = test_acc[test_acc["value"] >= 0.8]["step"].min()
    assert result.summary.loc[0, "steps_to_target"] == first
    assert result.summary.loc[0, "final_test_acc"] == test_acc["value"].iloc[-1]


def test_unsupported_sweeps_raise_value_error() -> None:
    with pytest.raises(ValueError, match="MLP only"):
        run_sweep(sweep_grid(replace(BASE, model=CNNConfig()), lrs=(0.1,)))
    with pytest.raises(ValueError):
        run_sweep(SweepConfig(base=BASE, points=()))
    with pytest.raises(ValueError):
        run_sweep(sweep_grid(BASE, lrs=(-1.0,)))


@pytest.mark.slow
def test_fig1_bn_reaches_90_percent_in_far_fewer_steps() -> None:
    """Ioffe & Szegedy Fig. 1 (a) on digits, 3 seeds: 3 × 100 sigmoid, batch 60, plain SGD, the same lr."""
    steps = 800
    cfg = sweep_grid(fig1_config("batch", steps=steps, eval_every=50), lrs=(FIG1_LR,), seeds=(0, 1, 2))
    summary = run_sweep(cfg, data=DIGITS).summary
    for seed in (0, 1, 2):
        bn = summary[(summary["seed"] == seed) & summary["bn"]].iloc[0]
        plain = summary[(summary["seed"] == seed) & ~summary["bn"]].iloc[0]
        assert bn["steps_to_target"] <= 200, bn
        assert pd.isna(plain["steps_to_target"]) or plain["steps_to_target"] > 3 * bn["steps_to_target"], plain
        assert bn["final_test_acc"] > 0.93
        assert 0.2 < plain["final_test_acc"] < bn["final_test_acc"]  # it learns, only much more slowly


@pytest.mark.slow
def test_where_plain_sgd_stalls_bn_still_trains() -> None:
    """At a small lr (sigmoid plateau) and a large one, the plain net is stuck at chance; BN trains at both."""
    cfg = sweep_grid(fig1_config("batch", steps=200, eval_every=25), lrs=(0.5, 10.0), seeds=(0, 1, 2))
    summary = run_sweep(cfg, data=DIGITS).summary
    bn, plain = summary[summary["bn"]], summary[~summary["bn"]]
    assert bn["steps_to_target"].notna().all() and (bn["final_test_acc"] > 0.8).all(), bn
    stalled_or_diverged = plain["diverged_at"].notna() | (plain["final_test_acc"] < 0.2)
    assert stalled_or_diverged.all(), plain


# -- the engine underneath: every norm kind, train-mode testing, isolation ----------------------------------------

NORMS = (
    NormSpec("batch"),
    NormSpec("group", groups=3),
    NormSpec("group", groups=1),  # layer norm
    NormSpec("none"),
    NormSpec("ghost", ghost_batch=3),
    NormSpec("renorm", r_max=1.5, d_max=0.5),
)
SMALL = TrainConfig(
    model=MLPConfig(depth=2, width=12, activation="relu"),
    optimizer="momentum",
    lr=0.05,
    batch_size=6,
    steps=22,
    eval_every=10,
    record_layers=False,
    record_grads=False,
    dtype="float64",
)


def _alone(cfg: StackConfig, i: int, data=DIGITS):
    train_cfg = stack_point_config(cfg, i)
    return train(train_cfg, data=data, norm_factory=norm_module(cfg.points[i].norm, train_cfg.model))


@pytest.mark.parametrize(
    ("placement", "activation", "optimizer"),
    [("before", "relu", "momentum"), ("after", "tanh", "adam"), ("before", "sigmoid", "sgd")],
)
def test_every_norm_kind_in_one_stack_equals_training_it_alone(placement, activation, optimizer):
    """Six kinds of normalization, interleaved in the config, trained as one model: each equals train()."""
    model = replace(SMALL.model, placement=placement, activation=activation)
    base = replace(SMALL, model=model, optimizer=optimizer)
    points = tuple(StackPoint(lr=0.05 * (1 + s), seed=s, norm=n) for s in (0, 1) for n in NORMS)
    cfg = StackConfig(base=base, points=points, test_batch=6)
    result = train_stack(cfg, data=DIGITS)
    for i, point in enumerate(points):
        alone = _alone(cfg, i)
        np.testing.assert_allclose(result.losses[:, i], alone.metric("loss"), rtol=1e-9, atol=1e-11, err_msg=str(point))
        theirs = alone.curves[alone.curves["metric"] != "loss"].sort_values(["metric", "step"])
        mine = result.evals[result.evals["config_id"] == i].sort_values(["metric", "step"])
        assert mine["step"].tolist() == theirs["step"].tolist()
        np.testing.assert_allclose(mine["value"], theirs["value"], rtol=1e-9, atol=1e-12, err_msg=str(point))
        if point.norm.kind == "batch":  # 6 divides the 450 test digits: evaluate()'s chunks are the windows
            test_mode = evaluate(alone.model, DIGITS.x_test.double(), DIGITS.y_test, batch_size=6, mode="train")
            assert result.test_acc_train_mode[i] == pytest.approx(test_mode.accuracy, abs=1e-12)
        else:
            assert np.isnan(result.test_acc_train_mode[i])


def test_train_mode_test_windows_cover_every_example_once_in_batches_of_exactly_b():
    rows, counted = window_rows(10, 4)
    assert rows.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9]  # the last batch overlaps the one before
    assert sorted(rows[counted].tolist()) == list(range(10))
    rows, counted = window_rows(8, 4)
    assert rows.tolist() == list(range(8)) and bool(counted.all())


def test_train_mode_testing_changes_no_trained_number():
    """Asking for the train-mode test leaves every loss and evaluation bitwise as it was (it only reads)."""
    points = tuple(StackPoint(lr=0.05, seed=s, norm=n) for s in (0, 1) for n in NORMS[:2])
    without = train_stack(StackConfig(base=replace(SMALL, dtype="float32"), points=points), data=DIGITS)
    with_test = train_stack(StackConfig(base=replace(SMALL, dtype="float32"), points=points, test_batch=7), data=DIGITS)
    np.testing.assert_array_equal(without.losses, with_test.losses)
    pd.testing.assert_frame_equal(without.evals, with_test.evals)
    assert np.isnan(without.test_acc_train_mode).all() and not np.isnan(with_test.test_acc_train_mode[0])


def test_a_network_computes_the_same_bits_whatever_else_is_in_its_stack():
    """BN seed 0 alone, with GN beside it, and with all six kinds: bitwise the same records (float32, CPU)."""
    base = replace(SMALL, dtype="float32")
    bn = StackPoint(lr=0.05, seed=0, norm=NormSpec("batch"))
    crowds = [
        (bn,),
        (bn, StackPoint(lr=0.05, seed=1, norm=NORMS[1])),
        (*(StackPoint(lr=0.1, norm=n) for n in NORMS), bn),
    ]
    results = [train_stack(StackConfig(base=base, points=points, test_batch=6), data=DIGITS) for points in crowds]
    first = results[0]
    for result, points in zip(results[1:], crowds[1:], strict=True):
        k = points.index(bn)
        np.testing.assert_array_equal(result.losses[:, k], first.losses[:, 0])
        mine = result.evals[result.evals["config_id"] == k]["value"].to_numpy()
        np.testing.assert_array_equal(mine, first.evals["value"].to_numpy())
        assert result.test_acc_train_mode[k] == first.test_acc_train_mode[0]


def test_an_infinite_input_diverges_exactly_the_networks_that_see_it():
    """An infinite pixel in a row only seed 0 draws: both seed-0 networks diverge as train() does; seed 1 does not."""
    split = load_dataset(DataConfig("digits"))
    base = replace(SMALL, batch_size=6)
    seen = {s: set(run_schedule(replace(base, seed=s), split).flatten().tolist()) for s in (0, 1)}
    split.x_train[min(seen[0] - seen[1]), 10] = float("inf")
    points = tuple(StackPoint(lr=0.05, seed=s, norm=n) for s in (0, 1) for n in (NormSpec("batch"), NormSpec("none")))
    cfg = StackConfig(base=base, points=points)
    result = train_stack(cfg, data=split)
    for i, point in enumerate(points):
        alone = _alone(cfg, i, data=split)
        assert result.diverged_at[i] == alone.diverged_at
        if point.seed == 0:
            assert alone.diverged_at is not None and np.isnan(result.final("test_acc")[i])
            assert result.evals[result.evals["config_id"] == i]["step"].max() < alone.diverged_at
        else:
            assert result.final("test_acc")[i] == pytest.approx(alone.final_test_acc, abs=1e-12)


@pytest.mark.parametrize(
    ("norm", "batch", "message"),
    [
        (NormSpec("batch"), 1, "at least 2"),
        (NormSpec("group", groups=5), 6, "must divide the width"),
        (NormSpec("ghost", ghost_batch=4), 6, "divide the batch"),
        (NormSpec("renorm", r_max=0.5), 6, "r_max ≥ 1"),
    ],
)
def test_an_invalid_stack_raises_before_any_work(norm, batch, message):
    cfg = StackConfig(base=replace(SMALL, batch_size=batch), points=(StackPoint(lr=0.1, norm=norm),))
    with pytest.raises(ValueError, match=message):
        train_stack(cfg, data=DIGITS)
