"""Training Comparison: the same network trained with and without batch norm, side by side.

Every curve comes from real training by :mod:`bn_core.train` (one run per variant) or
by the batched sweep engine :mod:`bn_core.sweep` (grids of learning rates, init scales
and depths, several seeds each). The BN and no-BN nets start from **identical weights**
(same seed, same layer sizes, see :mod:`bn_core.models`) and see the same batches, so
the only difference between them is the normalization.

What goes in: a frozen :class:`ComparisonConfig` (or :class:`GridConfig`). What comes
out: long-format DataFrames (``step, variant, layer, metric, value``), which the page
caches and charts.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 — Fig. 1 (3 × 100 sigmoid units,
batch 60, SGD; the 15/50/85 percentiles of a layer input over training), §4.2.1
(higher learning rates, BN-x5 and BN-x30), §3.3 (less sensitivity to the parameter
scale), §3.1 (sigmoid saturation); Santurkar et al. 2018, arXiv:1805.11604.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import torch

from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.device import pick_device
from bn_core.models import CNNConfig, MLPConfig, ModelConfig, build_model
from bn_core.sweep import run_sweep, sweep_grid
from bn_core.train import FIG1_LR, FIG1_STEPS, Progress, StepContext, TrainConfig, collect_taps, fixed_rows, train

__all__ = [
    "ComparisonConfig",
    "ComparisonResult",
    "GridConfig",
    "GridResult",
    "BackendCheck",
    "VARIANTS",
    "GRID_AXES",
    "run_comparison",
    "run_grid",
    "run_backend_check",
    "estimated_seconds",
    "grid_estimated_seconds",
    "train_config",
    "grid_config",
    "grid_values",
    "n_layers",
    "snapshot_steps",
    "steps_to_target",
    "band_frame",
    "band_drift",
    "grid_summary",
]

VARIANTS = ("BN", "no BN")  # the 'variant' labels, BN first
GRID_AXES = ("lr", "init_scale", "depth")
HIST_BINS = 30
SNAPSHOTS = 12  # layer records (and histograms) at 0 and every steps/12 updates
EVALS = 24  # train/test evaluations per run (and at step 0)
# Learning-rate grids per optimizer. The SGD grid holds the Fig. 1 rate (2) and ×5, ×15, ×30 (the paper's
# BN-x5 and BN-x30) and ×150 of it. Momentum 0.9 takes ~10× larger effective steps, so its grid is 10× lower.
LR_GRIDS = {
    "sgd": (0.1, 0.5, 2.0, 10.0, 30.0, 60.0, 300.0),
    "momentum": (0.01, 0.05, 0.2, 1.0, 3.0, 6.0, 30.0),
    "adam": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
}
INIT_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # multiplies PyTorch's default init U(±1/√fan_in)
DEPTH_GRID = (1, 2, 4, 6, 8, 10)


@dataclass(frozen=True)
class ComparisonConfig:
    """One BN-vs-no-BN comparison: everything the two runs share. Defaults = Ioffe & Szegedy Fig. 1 on digits."""

    dataset: str = "digits"  # bn_core.data.DATASETS; the CNN needs digits (8×8 images)
    ill_scaled: bool = False  # multiply input feature j by a fixed factor in [1, 1000] (log-spaced)
    arch: Literal["mlp", "cnn"] = "mlp"  # fully connected net, or the small CNN (2 conv blocks, BatchNorm2d)
    depth: int = 3  # hidden layers of the MLP, 1 … 10 (the CNN always has 2 conv blocks)
    width: int = 100  # units per hidden layer of the MLP (Fig. 1: 100)
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"  # the nonlinearity (Fig. 1: sigmoid)
    placement: Literal["before", "after"] = "before"  # BN before the nonlinearity (paper) or after it
    init_scale: float = 1.0  # multiplies every default-initialized weight, identically for both nets
    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"  # plain SGD (Fig. 1), SGD + momentum 0.9, or Adam
    lr: float = FIG1_LR  # learning rate, the same for both nets
    batch_size: int = 60  # examples per step (Fig. 1: 60)
    steps: int = FIG1_STEPS  # optimizer updates
    backend: Literal["manual", "torch"] = "manual"  # BN by hand (bn_core.layers) or torch.nn.BatchNorm
    seed: int = 0  # init weights, batch order and the data split
    dtype: Literal["float32", "float64"] = "float32"  # float64 only for exact comparisons


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """The two runs' records, in long format, with ``variant`` ∈ {"BN", "no BN"}."""

    config: ComparisonConfig
    curves: pd.DataFrame  # step, variant, metric, value  (loss every step; train_acc, test_acc, test_loss)
    layers: pd.DataFrame  # step, variant, layer, metric, value  (percentiles, mean, std, saturation, grad_norm)
    hist: pd.DataFrame  # step, variant, layer, quantity (pre/act), bin_start, bin_end, count, share
    summary: pd.DataFrame  # variant, status, diverged_at, steps_run, final_test_acc, final_train_acc, final_loss
    device: str  # where it ran


@dataclass(frozen=True)
class GridConfig:
    """A sweep of one axis × {BN, no BN} × seeds, trained by the batched sweep engine."""

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


@dataclass(frozen=True, eq=False)
class BackendCheck:
    """The BN net trained twice, once per backend, from the same init on the same batches."""

    config: ComparisonConfig
    curves: pd.DataFrame  # step, variant ("manual BN" / "torch BN"), metric, value
    diffs: pd.DataFrame  # quantity, max_abs_diff, at_step


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------


def n_layers(cfg: ComparisonConfig) -> int:
    """Hidden layers the page can inspect: the MLP's depth, or the CNN's 2 conv blocks."""
    return cfg.depth if cfg.arch == "mlp" else 2


def _model(cfg: ComparisonConfig, norm: Literal["batch", "none"]) -> ModelConfig:
    shared = {
        "activation": cfg.activation,
        "norm": norm,
        "backend": cfg.backend,
        "placement": cfg.placement,
        "init_scale": cfg.init_scale,
    }
    if cfg.arch == "cnn":
        return CNNConfig(**shared)
    return MLPConfig(depth=cfg.depth, width=cfg.width, **shared)


def train_config(cfg: ComparisonConfig, norm: Literal["batch", "none"]) -> TrainConfig:
    """The engine config of one side of the comparison (BN: ``norm="batch"``)."""
    if cfg.arch not in ("mlp", "cnn"):
        raise ValueError(f"Unknown architecture {cfg.arch!r}; choose mlp or cnn.")
    return TrainConfig(
        data=DataConfig(cfg.dataset, seed=cfg.seed, ill_scaled=cfg.ill_scaled),
        model=_model(cfg, norm),
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        steps=cfg.steps,
        eval_every=max(1, cfg.steps // EVALS),
        stats_every=max(1, cfg.steps // SNAPSHOTS),
        seed=cfg.seed,
        variant=VARIANTS[0] if norm == "batch" else VARIANTS[1],
        dtype=cfg.dtype,
    )


def snapshot_steps(cfg: ComparisonConfig) -> tuple[int, ...]:
    """The steps with layer records and histograms: 0, every steps/12 updates, and the last."""
    every = max(1, cfg.steps // SNAPSHOTS)
    return tuple(sorted({*range(0, cfg.steps + 1, every), cfg.steps}))


# ---------------------------------------------------------------------------
# Cost guard: one student's extreme settings must not stall a shared 2-core server
# ---------------------------------------------------------------------------

MAX_RUN_S = 30.0  # estimated CPU seconds for a comparison (two nets) or a backend check
MAX_GRID_S = 60.0  # estimated CPU seconds for one grid
_MAC_PER_S = 1e10  # multiply-adds per second, forward + backward, 1 thread (measured order of magnitude here)
_STEP_S, _LAYER_S, _BN_S = 4e-4, 1e-4, 3.5e-4  # Python overhead per step, per layer, per hand-written BN layer


def _macs_per_example(cfg: ComparisonConfig) -> float:
    """Multiply-adds of one forward pass (inputs ≤ 64 features, 10 classes: the largest of our datasets)."""
    if cfg.arch == "cnn":
        c1, c2 = CNNConfig().channels
        return 64 * c1 * 9 + 16 * c2 * 9 * c1 + c2 * 10  # conv 8×8 (stride 1), conv 4×4 (stride 2), head
    return 64 * cfg.width + (cfg.depth - 1) * cfg.width**2 + cfg.width * 10


def estimated_seconds(cfg: ComparisonConfig) -> float:
    """Rough CPU seconds to train the BN and the no-BN net of ``cfg`` (calibrated on Fig. 1: ≈ 2 s)."""
    layers = n_layers(cfg)
    flops = 3 * cfg.batch_size * _macs_per_example(cfg) / _MAC_PER_S  # forward + backward ≈ 3 forwards
    per_step = 2 * (_STEP_S + layers * _LAYER_S + flops) + layers * _BN_S
    return cfg.steps * per_step


def grid_estimated_seconds(cfg: GridConfig) -> float:
    """Rough CPU seconds for a grid: the stacked sweep is bound by its arithmetic, plus a little per layer."""
    depths = [int(v) for v in cfg.values] if cfg.axis == "depth" else [cfg.base.depth] * len(cfg.values)
    total = 0.0
    for depth in depths:
        base = replace(cfg.base, depth=depth)
        per_net_step = 3 * base.batch_size * _macs_per_example(base) / _MAC_PER_S + depth * 2e-5
        total += 2 * cfg.n_seeds * base.steps * per_net_step
    return total


def _check_cost(seconds: float, limit: float, what: str) -> None:
    if pick_device().type == "cpu" and seconds > limit:
        raise ValueError(
            f"{what} would take about {seconds:.0f} s of CPU on this machine; the limit is {limit:.0f} s, so that "
            "one setting cannot stall the lab for the whole class. Lower the steps, batch size, width, depth or "
            "(for the grids) the seeds or steps per network."
        )


# ---------------------------------------------------------------------------
# The default comparison
# ---------------------------------------------------------------------------


class _Snapshots:
    """An ``on_step`` hook: the probe batch's layer inputs and outputs at the snapshot steps."""

    def __init__(self, probe: torch.Tensor, steps: Sequence[int]) -> None:
        self.probe, self.steps, self.taps = probe, set(steps), {}

    def take(self, step: int, model: torch.nn.Module) -> None:
        taps = collect_taps(model, self.probe)  # train mode, as training sees it; buffers restored
        self.taps[step] = {k: (t.pre.float().cpu().numpy(), t.act.float().cpu().numpy()) for k, t in taps.items()}

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step in self.steps:
            self.take(ctx.step, ctx.model)


def _train_with_snapshots(tcfg: TrainConfig, split: DataSplit, progress: Progress | None, snaps: Sequence[int]):
    """One engine run plus the histogram snapshots (step 0 from the identically initialized model)."""
    probe_idx, _ = fixed_rows(tcfg, split)
    hook = _Snapshots(split.x_train[probe_idx], snaps)
    if isinstance(tcfg.model, MLPConfig):
        model = replace(tcfg.model, in_features=split.n_features, n_classes=split.n_classes)
    else:
        model = replace(tcfg.model, image_shape=split.image_shape or (1, 8, 8), n_classes=split.n_classes)
    if split.image_shape is not None or isinstance(model, MLPConfig):  # else train() explains the CNN needs images
        hook.take(0, build_model(model, seed=tcfg.seed).to(getattr(torch, tcfg.dtype)))  # = the engine's init
    return train(tcfg, data=split, progress=progress, on_step=hook), hook.taps


def _counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of every row of ``values`` (T, n) over one set of edges: counts (T, bins), edges (bins + 1,).

    Same edges and counts as :func:`bn_core.binning.binned` (the joint finite range, ±0.5 when it is
    constant), vectorized over the rows: one DataFrame per series cost more than the arithmetic here.
    """
    finite = np.isfinite(values)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, HIST_BINS - 1)  # last bin is closed
    which = np.where(finite, which + HIST_BINS * np.arange(len(values))[:, None], -1)  # (T, n) flat bin ids
    counts = np.bincount(which[finite], minlength=HIST_BINS * len(values)).reshape(len(values), HIST_BINS)
    return counts, edges


def _hist_block(variant: str, layer: int, q: int, by_step: dict[int, dict]) -> pd.DataFrame:
    """Every snapshot of one (variant, layer, quantity) over one set of edges."""
    steps = [step for step, taps in by_step.items() if layer in taps]
    values = np.stack([by_step[step][layer][q].reshape(-1) for step in steps]).astype(np.float64)  # (T, n)
    counts, edges = _counts(values)  # (T, bins)
    T = len(steps)
    return pd.DataFrame(
        {
            "step": np.repeat(np.asarray(steps, dtype=np.int64), HIST_BINS),
            "variant": variant,
            "layer": layer,
            "quantity": ("pre", "act")[q],
            "bin_start": np.tile(edges[:-1], T),
            "bin_end": np.tile(edges[1:], T),
            "count": counts.reshape(-1),
            "share": (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)).reshape(-1),
        }
    )


def _hist(snaps: dict[str, dict[int, dict]], layers: Sequence[int]) -> pd.DataFrame:
    """Pre-binned histograms of the layer input (``pre``) and output (``act``) at every snapshot.

    One set of edges per (variant, layer, quantity), shared by every step, so a layer's drift
    is visible; each variant gets its own range, since BN and no-BN layer inputs can differ by
    orders of magnitude.
    """
    frames = [
        _hist_block(variant, layer, q, by_step)
        for variant, by_step in snaps.items()
        for layer in layers
        for q in (0, 1)
        if any(layer in taps for taps in by_step.values())
    ]
    return pd.concat(frames, ignore_index=True)


def _summary_row(result) -> dict:
    final = result.curves.groupby("metric")["value"].last()
    diverged = result.diverged_at is not None
    return {
        "variant": result.variant,
        "status": result.status,
        "diverged_at": result.diverged_at,
        "steps_run": result.steps_run,
        "final_test_acc": math.nan if diverged else float(final.get("test_acc", math.nan)),
        "final_train_acc": math.nan if diverged else float(final.get("train_acc", math.nan)),
        "final_loss": math.nan if diverged or result.steps_run == 0 else float(result.metric("loss").iloc[-1]),
    }


def _sub_progress(progress: Progress | None, i: int, n: int, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda f, msg: progress((i + f) / n, f"{label}: {msg}")


def run_comparison(cfg: ComparisonConfig, progress: Progress | None = None) -> ComparisonResult:
    """Train the BN and the no-BN net of ``cfg`` and record everything the page shows.

    Raises:
        ValueError: an invalid combination (BN with batch 1, batch larger than the
            training set, the CNN on a non-image dataset, …), with a message for the user.
    """
    _check_cost(estimated_seconds(cfg), MAX_RUN_S, "This comparison")
    split = load_dataset(train_config(cfg, "batch").data)
    snaps_at = snapshot_steps(cfg)
    results, snaps = [], {}
    for i, norm in enumerate(("batch", "none")):
        tcfg = train_config(cfg, norm)
        result, taps = _train_with_snapshots(tcfg, split, _sub_progress(progress, i, 2, tcfg.variant), snaps_at)
        results.append(result)
        snaps[result.variant] = taps
    curves = pd.concat([r.curves for r in results], ignore_index=True)
    layers = pd.concat([r.layers for r in results], ignore_index=True)
    return ComparisonResult(
        config=cfg,
        curves=curves,
        layers=layers,
        hist=_hist(snaps, range(1, n_layers(cfg) + 1)),
        summary=pd.DataFrame([_summary_row(r) for r in results]),
        device=str(pick_device()),
    )


# ---------------------------------------------------------------------------
# Views of the comparison
# ---------------------------------------------------------------------------


def steps_to_target(curves: pd.DataFrame, target: float, by: Sequence[str] = ("variant",)) -> pd.Series:
    """The first evaluated step whose test accuracy is ≥ ``target``, per group; <NA> if never."""
    test = curves[curves["metric"] == "test_acc"]
    reached = test[test["value"] >= target].groupby(list(by))["step"].min()
    groups = test.groupby(list(by)).size().index
    return reached.reindex(groups).astype("Int64")


def band_frame(layers: pd.DataFrame, layer: int, which: Literal["unit", "pre"] = "unit") -> pd.DataFrame:
    """Ioffe Fig. 1 (b, c): ``step, variant, p15, p50, p85`` of one layer's input over training.

    ``which="unit"``: one tracked unit (what the paper plots); ``"pre"``: all units pooled.
    """
    names = {f"{which}_p15": "p15", f"{which}_p50": "p50", f"{which}_p85": "p85"}
    rows = layers[(layers["layer"] == layer) & layers["metric"].isin(names)]
    wide = rows.pivot_table(index=["step", "variant"], columns="metric", values="value").rename(columns=names)
    return wide.reset_index()[["step", "variant", "p15", "p50", "p85"]].sort_values(["variant", "step"])


def band_drift(layers: pd.DataFrame, layer: int, which: Literal["unit", "pre"] = "unit") -> pd.Series:
    """Per variant: how far the 15/50/85 percentiles moved from step 0, averaged over the three and over time.

    This is the "the distribution changes during training" of Fig. 1 (b, c) in one number.
    """
    bands = band_frame(layers, layer, which)
    out = {}
    for variant, rows in bands.groupby("variant"):
        p = rows[["p15", "p50", "p85"]].to_numpy()  # (T, 3)
        out[variant] = float(np.abs(p - p[:1]).mean()) if len(p) else math.nan
    return pd.Series(out, name="band_drift")


# ---------------------------------------------------------------------------
# Grids: learning rate, init scale and depth, by the batched sweep engine
# ---------------------------------------------------------------------------

_AXIS_DEFAULT = {"lr": FIG1_LR, "init_scale": 1.0, "depth": 3}


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


def _sweep(cfg: GridConfig, split: DataSplit, base: ComparisonConfig, progress: Progress | None, **axes):
    tcfg = replace(train_config(base, "batch"), eval_every=max(1, base.steps // 30), record_layers=False)
    seeds = tuple(base.seed + k for k in range(cfg.n_seeds))
    grid = sweep_grid(tcfg, seeds=seeds, **axes)
    return run_sweep(grid, data=split, progress=progress)


def run_grid(cfg: GridConfig, progress: Progress | None = None) -> GridResult:
    """Train the whole grid (axis values × seeds × {BN, no BN}) with the batched sweep engine.

    Learning rate and init scale are one stacked sweep; depth changes the architecture,
    so it is one sweep per depth. Raises ``ValueError`` for the CNN (the sweep engine
    stacks MLPs only) and for invalid configs.
    """
    if cfg.base.arch != "mlp":
        raise ValueError("The sweep engine trains MLPs only: pick an MLP preset to run the grids.")
    _check_cost(grid_estimated_seconds(cfg), MAX_GRID_S, "This grid")
    split = load_dataset(train_config(cfg.base, "batch").data)
    if cfg.axis == "depth":
        parts = []
        for i, depth in enumerate(cfg.values):
            base = replace(cfg.base, depth=int(depth))
            sub = _sub_progress(progress, i, len(cfg.values), f"depth {int(depth)}")
            parts.append((int(depth), _sweep(cfg, split, base, sub, lrs=(base.lr,), init_scales=(base.init_scale,))))
    else:
        key = {"lr": "lrs", "init_scale": "init_scales"}[cfg.axis]
        fixed = {"lrs": (cfg.base.lr,), "init_scales": (cfg.base.init_scale,), key: cfg.values}
        parts = [(cfg.base.depth, _sweep(cfg, split, cfg.base, progress, **fixed))]
    return _grid_frames(cfg, parts)


def _grid_frames(cfg: GridConfig, parts: list) -> GridResult:
    curves, runs, offset = [], [], 0
    for depth, result in parts:
        n = len(result.summary)
        curves.append(result.curves.assign(config_id=result.curves["config_id"] + offset, depth=depth))
        runs.append(result.summary.assign(config_id=result.summary["config_id"] + offset, depth=depth))
        offset += n
    curves_df = pd.concat(curves, ignore_index=True)
    runs_df = pd.concat(runs, ignore_index=True)
    keep = ["config_id", "lr", "init_scale", "depth", "seed", "bn", "final_test_acc", "diverged_at", "status"]
    return GridResult(config=cfg, curves=curves_df, runs=runs_df[keep])


def grid_summary(result: GridResult, target: float) -> pd.DataFrame:
    """One row per (axis value, BN on/off): accuracy and steps to ``target`` over the seeds, and divergences.

    Columns: ``value, variant, mean_acc, min_acc, max_acc, steps_to_target`` (median over
    the seeds that got there), ``reached`` (how many did), ``diverged`` (how many
    diverged), ``n_seeds``, ``first_diverged_at``.
    """
    axis, runs = result.config.axis, result.runs.copy()
    runs["value"] = runs[axis].astype(float)
    runs["variant"] = np.where(runs["bn"], VARIANTS[0], VARIANTS[1])
    reached = steps_to_target(result.curves, target, by=("config_id",))
    runs["steps_to_target"] = reached.reindex(runs["config_id"]).to_numpy()
    rows = []
    for (value, variant), g in runs.groupby(["value", "variant"], sort=True):
        acc = g["final_test_acc"].astype(float)
        hit = g["steps_to_target"].dropna()
        div = g["diverged_at"].dropna()
        rows.append(
            {
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
        )
    return pd.DataFrame(rows).astype({"first_diverged_at": "Int64"})


# ---------------------------------------------------------------------------
# Manual BN vs torch BN
# ---------------------------------------------------------------------------

_COMPARED = ("loss", "train_acc", "test_acc", "test_loss")


def run_backend_check(cfg: ComparisonConfig, progress: Progress | None = None) -> BackendCheck:
    """Train the BN net of ``cfg`` with the hand-written BN and with torch's, and compare the records.

    Both runs start from the same weights and see the same batches; only the BN
    implementation differs. ``diffs`` holds the largest absolute difference of every
    curve and of the layer statistics, and the step where it occurs.
    """
    _check_cost(estimated_seconds(cfg), MAX_RUN_S, "This check")
    split = load_dataset(train_config(cfg, "batch").data)
    runs = []
    for i, backend in enumerate(("manual", "torch")):
        tcfg = replace(train_config(replace(cfg, backend=backend), "batch"), variant=f"{backend} BN")
        runs.append(train(tcfg, data=split, progress=_sub_progress(progress, i, 2, tcfg.variant)))
    a, b = runs
    rows = []
    for metric in _COMPARED:
        d = (a.metric(metric) - b.metric(metric)).abs()  # aligned on step; NaN where one run stopped
        rows.append(_diff_row(metric, d))
    key = ["step", "layer", "metric"]
    merged = a.layers.merge(b.layers, on=key, suffixes=("_a", "_b"))
    d = pd.Series((merged["value_a"] - merged["value_b"]).abs().to_numpy(), index=merged["step"].to_numpy())
    rows.append(_diff_row("layer statistics", d))
    curves = pd.concat([a.curves, b.curves], ignore_index=True)
    return BackendCheck(config=cfg, curves=curves, diffs=pd.DataFrame(rows))


def _diff_row(quantity: str, d: pd.Series) -> dict:
    d = d.dropna()
    if d.empty:
        return {"quantity": quantity, "max_abs_diff": math.nan, "at_step": None}
    return {"quantity": quantity, "max_abs_diff": float(d.max()), "at_step": int(d.idxmax())}
