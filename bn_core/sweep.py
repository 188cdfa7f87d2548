"""Grids of BN-on / BN-off MLPs (the Training page): learning rate × seed × init scale, on the stacked engine.

A sweep varies, per configuration, the learning rate, the seed (init weights and batch
order), the init scale and BN on/off; everything else (data, depth, width, activation,
placement, optimizer, batch size, steps) is shared. This module only configures and
summarizes: the K configurations are trained as one model by
:func:`bn_core.engine.train_stack` (see :mod:`bn_core.engine` for how they are stacked).

Configuration i is exactly :func:`point_config` (cfg, i) trained by
:func:`bn_core.train.train`: the same init, batch order, evaluation rows and formulas,
so the records agree to float rounding (the tests check it in float64). A configuration
whose loss turns NaN/inf at step t is reported as "diverged at step t" and has no record
from step t on; the others are unaffected.

**Not supported** (use :func:`bn_core.train.train` for these): the CNN; custom
``norm_factory`` s; different batch sizes, step counts, architectures or optimizers
within one sweep; layer statistics; ``on_step`` hooks; returning the trained models.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bn_core.data import DataSplit
from bn_core.engine import NormSpec, StackConfig, StackPoint, StackResult, point_train_config, train_stack
from bn_core.progress import Progress
from bn_core.train import TrainConfig

__all__ = ["SweepPoint", "SweepConfig", "SweepResult", "sweep_grid", "point_config", "run_sweep", "stack_config"]

BN, NO_NORM = NormSpec("batch"), NormSpec("none")


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep: what differs from the shared base."""

    lr: float  # learning rate
    seed: int = 0  # init weights and batch order (as TrainConfig.seed)
    init_scale: float = 1.0  # multiplies the default-initialized weights
    bn: bool = True  # batch norm in every hidden block, or none


@dataclass(frozen=True)
class SweepConfig:
    """K configurations sharing ``base``; ``base.lr``, ``base.seed`` and the model's norm/init_scale are overridden."""

    base: TrainConfig = field(default_factory=TrainConfig)  # shared data, MLP, optimizer, batch size, steps, eval
    points: tuple[SweepPoint, ...] = ()  # the configurations, config_id = position
    target_acc: float = 0.9  # for "steps to reach target_acc test accuracy"


@dataclass(frozen=True, eq=False)
class SweepResult:
    """A sweep's records: one long table of curves and one row per configuration."""

    config: SweepConfig
    curves: pd.DataFrame  # config_id, lr, seed, init_scale, bn, step, metric, value
    summary: pd.DataFrame  # config_id, lr, seed, init_scale, bn, final_test_acc, final_train_acc,
    # steps_to_target, diverged_at, status
    wall_s: float  # seconds spent in run_sweep()


def sweep_grid(
    base: TrainConfig,
    lrs: Sequence[float],
    seeds: Sequence[int] = (0,),
    init_scales: Sequence[float] = (1.0,),
    bns: Sequence[bool] = (True, False),
    target_acc: float = 0.9,
) -> SweepConfig:
    """The full grid bn × lr × seed × init_scale (config ids in that nesting order)."""
    points = tuple(
        SweepPoint(lr=lr, seed=seed, init_scale=scale, bn=bn)
        for bn, lr, seed, scale in itertools.product(bns, lrs, seeds, init_scales)
    )
    return SweepConfig(base=base, points=points, target_acc=target_acc)


def stack_config(cfg: SweepConfig) -> StackConfig:
    """The engine's view of a sweep: one :class:`StackPoint` per configuration."""
    points = tuple(
        StackPoint(lr=p.lr, seed=p.seed, init_scale=p.init_scale, norm=BN if p.bn else NO_NORM) for p in cfg.points
    )
    return StackConfig(base=cfg.base, points=points)


def point_config(cfg: SweepConfig, i: int) -> TrainConfig:
    """The :class:`TrainConfig` that trains configuration ``i`` alone with :func:`bn_core.train.train`."""
    return point_train_config(stack_config(cfg), i)


def run_sweep(cfg: SweepConfig, *, data: DataSplit | None = None, progress: Progress | None = None) -> SweepResult:
    """Train every configuration of ``cfg`` at once; never raises for divergence.

    Returns:
        A :class:`SweepResult`. Raises ``ValueError`` for an unsupported or invalid config.
    """
    started = time.perf_counter()
    result = train_stack(stack_config(cfg), data=data, progress=progress)
    points = _point_columns(cfg)
    curves = points.merge(_long(result), on="config_id").sort_values(["config_id", "step"], kind="stable")
    curves = curves.reset_index(drop=True).astype({"step": "int64", "value": "float64"})
    return SweepResult(cfg, curves, _summary(cfg, result, curves, points), time.perf_counter() - started)


def _point_columns(cfg: SweepConfig) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config_id": np.arange(len(cfg.points), dtype=np.int64),
            "lr": [p.lr for p in cfg.points],
            "seed": np.array([p.seed for p in cfg.points], dtype=np.int64),
            "init_scale": [p.init_scale for p in cfg.points],
            "bn": [p.bn for p in cfg.points],
        }
    )


def _long(result: StackResult) -> pd.DataFrame:
    """Every batch loss before a configuration's divergence, then the evaluations."""
    steps, K = result.losses.shape
    loss = pd.DataFrame(
        {
            "config_id": np.tile(np.arange(K), steps),
            "step": np.repeat(np.arange(1, steps + 1), K),
            "metric": "loss",
            "value": result.losses.ravel(),
        }
    )
    return pd.concat([loss[loss["value"].notna()], result.evals], ignore_index=True)


def _summary(cfg: SweepConfig, result: StackResult, curves: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    test = curves[curves["metric"] == "test_acc"]
    reached = test[test["value"] >= cfg.target_acc].groupby("config_id")["step"].min()
    diverged = pd.array(result.diverged_at, dtype="Int64")
    summary = points.copy()
    summary["final_test_acc"] = result.final("test_acc")
    summary["final_train_acc"] = result.final("train_acc")
    summary["steps_to_target"] = reached.reindex(points["config_id"]).astype("Int64").array
    summary["diverged_at"] = diverged
    summary["status"] = [
        f"diverged at step {d}" if d is not None else f"trained {cfg.base.steps} steps" for d in result.diverged_at
    ]
    return summary
