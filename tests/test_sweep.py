"""Batched sweep engine: equals sequential training, isolates divergence, reproduces the paper's Fig. 1 claims."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bn_core.data import DataConfig, load_dataset
from bn_core.models import CNNConfig, MLPConfig
from bn_core.sweep import SweepConfig, SweepPoint, point_config, run_sweep, sweep_grid
from bn_core.train import FIG1_LR, TrainConfig, fig1_config, train

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
