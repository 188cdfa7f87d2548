"""Section 5 of Training Comparison: grids of learning rates, init scales and depths, several seeds each.

Every grid is trained by the stacked sweep engine (:func:`bn_core.sweep.run_sweep`), which
reproduces :func:`bn_core.train.train` configuration by configuration. One run can be
lucky; a grid shows whether a claim holds over seeds and settings. BN with a batch of 1
cannot train, so at that batch size a grid trains only the nets without normalization
and says why BN's row is missing.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (§4.2.1: higher learning rates, BN-x5 and
BN-x30; §3.3: less sensitivity to the parameter scale; the ImageNet table, at small scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from bn_core.data import DataSplit, load_dataset
from bn_core.experiments.training.comparison import Skipped
from bn_core.experiments.training.config import (
    MAC_PER_S,
    MAX_GRID_S,
    VARIANTS,
    ComparisonConfig,
    check_cost,
    macs_per_example,
    side_config,
)
from bn_core.experiments.training.measures import steps_to_target
from bn_core.progress import Progress, sub_progress
from bn_core.sweep import SweepResult, run_sweep, sweep_grid
from bn_core.train import BATCH_OF_ONE, FIG1_LR, needs_bigger_batch

__all__ = [
    "GRID_AXES",
    "LR_GRIDS",
    "INIT_GRID",
    "DEPTH_GRID",
    "GridConfig",
    "GridResult",
    "grid_values",
    "grid_config",
    "grid_estimated_seconds",
    "run_grid",
    "grid_summary",
]

GRID_AXES = ("lr", "init_scale", "depth")
# Learning-rate grids per optimizer. The SGD grid holds the Fig. 1 rate (2) and ×5, ×15, ×30 (the paper's
# BN-x5 and BN-x30) and ×150 of it. Momentum 0.9 takes ~10× larger effective steps, so its grid is 10× lower.
LR_GRIDS = {
    "sgd": (0.1, 0.5, 2.0, 10.0, 30.0, 60.0, 300.0),
    "momentum": (0.01, 0.05, 0.2, 1.0, 3.0, 6.0, 30.0),
    "adam": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
}
INIT_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # multiplies PyTorch's default init U(±1/√fan_in)
DEPTH_GRID = (1, 2, 4, 6, 8, 10)
_AXIS_DEFAULT = {"lr": FIG1_LR, "init_scale": 1.0, "depth": 3}


@dataclass(frozen=True)
class GridConfig:
    """A sweep of one axis × {BN, no norm} × seeds, trained by the stacked sweep engine."""

    base: ComparisonConfig  # everything shared; its value on ``axis`` is ignored
    axis: Literal["lr", "init_scale", "depth"] = "lr"  # what varies
    values: tuple[float, ...] = LR_GRIDS["sgd"]  # the axis values
    n_seeds: int = 3  # seeds base.seed, base.seed + 1, …


@dataclass(frozen=True, eq=False)
class GridResult:
    """A grid's records: ``curves`` (config_id, <axis>, seed, bn, step, metric, value) and one row per config."""

    config: GridConfig
    curves: pd.DataFrame  # config_id, value_of_axis, seed, bn, step, metric, value (+ lr, init_scale, depth)
    runs: pd.DataFrame  # config_id, lr, init_scale, depth, seed, bn, final_test_acc, diverged_at, status
    skipped: tuple[Skipped, ...] = ()  # a side of the grid that could not train (BN with a batch of 1)


def grid_values(axis: str, optimizer: str = "sgd") -> tuple[float, ...]:
    """The default values of a grid axis (learning rates depend on the optimizer)."""
    if axis == "lr":
        return LR_GRIDS[optimizer]
    if axis == "init_scale":
        return INIT_GRID
    if axis == "depth":
        return tuple(float(d) for d in DEPTH_GRID)
    raise ValueError(f"Unknown grid axis {axis!r}; choose one of {', '.join(GRID_AXES)}.")


def grid_config(cfg: ComparisonConfig, axis: str, steps: int, n_seeds: int = 3) -> GridConfig:
    """The grid for ``axis`` around ``cfg``; the swept field is reset, so every value of it shares one grid."""
    base = replace(cfg, **{axis: _AXIS_DEFAULT[axis]}, steps=steps, backend="manual")
    return GridConfig(base=base, axis=axis, values=grid_values(axis, cfg.optimizer), n_seeds=n_seeds)


def grid_estimated_seconds(cfg: GridConfig) -> float:
    """Rough CPU seconds for a grid: the stacked sweep is bound by its arithmetic, plus a little per layer."""
    depths = [int(v) for v in cfg.values] if cfg.axis == "depth" else [cfg.base.depth] * len(cfg.values)
    total = 0.0
    for depth in depths:
        base = replace(cfg.base, depth=depth)
        per_net_step = 3 * base.batch_size * macs_per_example(base) / MAC_PER_S + depth * 2e-5
        total += 2 * cfg.n_seeds * base.steps * per_net_step
    return total


def _bns(base: ComparisonConfig) -> tuple[bool, ...]:
    """Which sides a grid can train: both, or only the net without normalization (BN with a batch of 1)."""
    return (False,) if needs_bigger_batch(side_config(base, "batch")) else (True, False)


def _sweep(cfg: GridConfig, split: DataSplit, base: ComparisonConfig, progress: Progress | None, **axes) -> SweepResult:
    tcfg = replace(side_config(base, "batch"), eval_every=max(1, base.steps // 30), record_layers=False)
    seeds = tuple(base.seed + k for k in range(cfg.n_seeds))
    grid = sweep_grid(tcfg, seeds=seeds, bns=_bns(base), **axes)
    return run_sweep(grid, data=split, progress=progress)


def run_grid(cfg: GridConfig, progress: Progress | None = None) -> GridResult:
    """Train the whole grid (axis values × seeds × {BN, no norm}) with the stacked sweep engine.

    Learning rate and init scale are one stacked sweep; depth changes the architecture,
    so it is one sweep per depth. Raises ``ValueError`` for the CNN (the sweep engine
    stacks MLPs only) and for invalid configs.
    """
    if cfg.base.arch != "mlp":
        raise ValueError("The sweep engine trains MLPs only: pick an MLP preset to run the grids.")
    check_cost(grid_estimated_seconds(cfg), MAX_GRID_S, "This grid")
    split = load_dataset(side_config(cfg.base, "batch").data)
    if cfg.axis == "depth":
        parts = []
        for i, depth in enumerate(cfg.values):
            base = replace(cfg.base, depth=int(depth))
            sub = sub_progress(progress, i, len(cfg.values), f"depth {int(depth)}")
            parts.append((int(depth), _sweep(cfg, split, base, sub, lrs=(base.lr,), init_scales=(base.init_scale,))))
    else:
        key = {"lr": "lrs", "init_scale": "init_scales"}[cfg.axis]
        fixed = {"lrs": (cfg.base.lr,), "init_scales": (cfg.base.init_scale,), key: cfg.values}
        parts = [(cfg.base.depth, _sweep(cfg, split, cfg.base, progress, **fixed))]
    return _grid_frames(cfg, parts)


def _grid_frames(cfg: GridConfig, parts: list[tuple[int, SweepResult]]) -> GridResult:
    curves, runs, offset = [], [], 0
    for depth, result in parts:
        n = len(result.summary)
        curves.append(result.curves.assign(config_id=result.curves["config_id"] + offset, depth=depth))
        runs.append(result.summary.assign(config_id=result.summary["config_id"] + offset, depth=depth))
        offset += n
    curves_df = pd.concat(curves, ignore_index=True)
    runs_df = pd.concat(runs, ignore_index=True)
    keep = ["config_id", "lr", "init_scale", "depth", "seed", "bn", "final_test_acc", "diverged_at", "status"]
    skipped = () if True in _bns(cfg.base) else (Skipped(VARIANTS[0], BATCH_OF_ONE),)
    return GridResult(config=cfg, curves=curves_df, runs=runs_df[keep], skipped=skipped)


def _cell(value: float, variant: str, g: pd.DataFrame) -> dict:
    """One (axis value, variant) row of :func:`grid_summary`."""
    acc = g["final_test_acc"].astype(float)
    hit = g["steps_to_target"].dropna()
    div = g["diverged_at"].dropna()
    return {
        "value": value,
        "variant": variant,
        "mean_acc": acc.mean() if acc.notna().any() else math.nan,
        "min_acc": acc.min(),
        "max_acc": acc.max(),
        "steps_to_target": float(np.median(hit)) if len(hit) else math.nan,
        "reached": len(hit),
        "diverged": len(div),
        "n_seeds": len(g),
        "first_diverged_at": int(div.min()) if len(div) else None,
    }


def grid_summary(result: GridResult, target: float) -> pd.DataFrame:
    """One row per (axis value, variant): accuracy and steps to ``target`` over the seeds, and divergences.

    Columns: ``value, variant, mean_acc, min_acc, max_acc, steps_to_target`` (median over
    the seeds that got there), ``reached`` (how many did), ``diverged`` (how many
    diverged), ``n_seeds``, ``first_diverged_at``.
    """
    axis, runs = result.config.axis, result.runs.copy()
    runs["value"] = runs[axis].astype(float)
    runs["variant"] = np.where(runs["bn"], VARIANTS[0], VARIANTS[1])
    reached = steps_to_target(result.curves, target, by=("config_id",))
    runs["steps_to_target"] = reached.reindex(runs["config_id"]).to_numpy()
    rows = [_cell(value, variant, g) for (value, variant), g in runs.groupby(["value", "variant"], sort=True)]
    return pd.DataFrame(rows).astype({"first_diverged_at": "Int64"})
