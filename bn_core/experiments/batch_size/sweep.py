"""Sections 2–3 of Batch-Size Sensitivity: test error vs batch size, for every normalization and remedy.

Wu & He 2018 (arXiv:1803.08494) Fig. 1 in miniature: BN, group norm, layer norm, no
normalization, Ghost BN (arXiv:1705.08741) and Batch Renorm (arXiv:1702.03275), several
seeds each, at batch sizes B = 1 … 2048. Every batch size sees the same number of
epochs; the learning rate is scaled linearly with the batch (Goyal et al. 2017,
arXiv:1706.02677) or held constant.

This module configures and summarizes; the networks of one batch size (variants ×
seeds) train as one model in the stacked engine :func:`bn_core.engine.train_stack`.
Every BN network is also tested in train mode (test batches of B) in the same run: that
evaluation reads the trained networks and changes nothing, so the page's
"BN, train-mode test" switch only shows or hides a curve, and BN's own curve is the
same bit for bit either way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from bn_core.data import DataConfig, DataSplit, load_dataset, train_size
from bn_core.engine import StackConfig, StackPoint, StackResult, norm_module, train_stack
from bn_core.engine import point_train_config as engine_point_config
from bn_core.experiments.batch_size.variants import (
    BATCH_STAT_VARIANTS,
    TRAIN_MODE_SERIES,
    VARIANT_LABELS,
    VARIANTS,
    NormSettings,
    ghost_size,
    norm_spec,
)
from bn_core.models import MLPConfig
from bn_core.progress import Progress
from bn_core.train import TrainConfig, validate_config

__all__ = [
    "BatchSizeSweepConfig",
    "BatchSizeSweepResult",
    "Network",
    "run_batch_size_sweep",
    "check_sweep",
    "validate_sweep",
    "lr_at",
    "steps_at",
    "sweep_points",
    "network_train_config",
    "train_networks",
    "batch_stack_config",
    "network_count",
]


@dataclass(frozen=True)
class BatchSizeSweepConfig:
    """Test error vs batch size. Every batch size sees ``epochs`` passes over the training set."""

    variants: tuple[str, ...] = ("batch", "group", "layer", "none")  # from VARIANTS
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64)  # optimization batch sizes B
    n_seeds: int = 3  # seeds seed, seed + 1, …: init weights and batch order
    seed: int = 0  # the first seed (the page's global seed)
    epochs: float = 3.0  # passes over the training set at every B: steps = round(epochs·N_train/B)
    lr: float = 0.05  # learning rate at the reference batch ref_batch
    lr_rule: Literal["linear", "constant"] = "linear"  # linear: lr·B/ref_batch (Goyal et al. 2017); constant: lr
    ref_batch: int = 32  # the batch size at which the learning rate is lr
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"  # SGD with momentum 0.9 by default
    width: int = 64  # hidden units per layer
    depth: int = 2  # hidden layers
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    settings: NormSettings = field(default_factory=NormSettings)  # G, ghost g, r_max, d_max, momentum
    batch_order: Literal["shuffled", "class_sorted"] = "shuffled"  # i.i.d. batches or one class per batch
    data: DataConfig = field(default_factory=DataConfig)  # digits by default
    dtype: Literal["float32", "float64"] = "float32"
    device: str | None = None  # passed to pick_device()


@dataclass(frozen=True)
class BatchSizeSweepResult:
    """One row per network and metric in ``runs``; means and ranges over seeds in ``summary``."""

    config: BatchSizeSweepConfig
    runs: pd.DataFrame  # batch_size, variant, seed, order, metric (test_error | test_error_train_mode |
    # train_loss), value, diverged_at
    summary: pd.DataFrame  # batch_size, variant, series, metric, mean, std, lo, hi, n, n_diverged
    schedule: pd.DataFrame  # batch_size, steps, lr, ghost_batch, examples_seen
    notes: tuple[str, ...]  # what was left out and why (e.g. BN at a batch of 1)
    wall_s: float

    def error(self, series: str, batch_size: int) -> float:
        """Mean test error over seeds of a chart series at batch size B (NaN if absent)."""
        s = self.summary
        rows = s[(s["series"] == series) & (s["batch_size"] == batch_size) & s["metric"].str.startswith("test_error")]
        return float(rows["mean"].iloc[0]) if len(rows) else math.nan

    def divergences(self) -> tuple[str, ...]:
        """One line per diverged network: "BN at B = 2, seed 1: diverged at step 17 (…)"."""
        bad = self.runs[self.runs["diverged_at"].notna() & self.runs["metric"].eq("test_error")]
        return tuple(
            f"{VARIANT_LABELS[r.variant]} at B = {r.batch_size}, seed {r.seed}: diverged at step {r.diverged_at} "
            "(left out of the means; lower the learning rate)"
            for r in bad.itertuples()
        )

    def steps(self, batch_size: int) -> int:
        """Optimizer updates every network made at batch size B."""
        return int(self.schedule.set_index("batch_size").loc[batch_size, "steps"])


@dataclass(frozen=True)
class Network:
    """One network of a batch size: its normalization, seed and batch order."""

    variant: str
    seed: int
    order: Literal["shuffled", "class_sorted"] = "shuffled"


def lr_at(cfg: BatchSizeSweepConfig, batch_size: int) -> float:
    """The learning rate used at batch size B."""
    return cfg.lr * batch_size / cfg.ref_batch if cfg.lr_rule == "linear" else cfg.lr


def steps_at(cfg: BatchSizeSweepConfig, batch_size: int, n_train: int) -> int:
    """Optimizer updates at batch size B: the same number of examples seen at every B."""
    return max(1, round(cfg.epochs * n_train / batch_size))


def _base(cfg: BatchSizeSweepConfig, batch_size: int, n_train: int) -> TrainConfig:
    s = cfg.settings
    model = MLPConfig(
        depth=cfg.depth, width=cfg.width, activation=cfg.activation, norm="none", bn_momentum=s.momentum, eps=s.eps
    )
    return TrainConfig(
        data=cfg.data,
        model=model,
        optimizer=cfg.optimizer,
        lr=lr_at(cfg, batch_size),
        batch_size=batch_size,
        steps=steps_at(cfg, batch_size, n_train),
        eval_every=10**9,  # evaluate at step 0 and at the end only
        seed=cfg.seed,
        batch_order=cfg.batch_order,
        record_layers=False,
        record_grads=False,
        dtype=cfg.dtype,
        device=cfg.device,
    )


def sweep_points(cfg: BatchSizeSweepConfig, batch_size: int) -> tuple[Network, ...]:
    """The networks trained at batch size B (BN-type variants cannot train with B = 1)."""
    variants = [v for v in cfg.variants if not (batch_size == 1 and v in BATCH_STAT_VARIANTS)]
    seeds = range(cfg.seed, cfg.seed + cfg.n_seeds)
    return tuple(Network(v, s, cfg.batch_order) for v in variants for s in seeds)


def network_count(cfg: BatchSizeSweepConfig) -> int:
    """How many networks the sweep trains, over all batch sizes."""
    return sum(len(sweep_points(cfg, B)) for B in set(cfg.batch_sizes))


def batch_stack_config(
    cfg: BatchSizeSweepConfig, batch_size: int, nets: Sequence[Network], n_train: int
) -> StackConfig:
    """The engine's view of one batch size: a :class:`StackPoint` per network, BN tested in train mode too."""
    base = _base(cfg, batch_size, n_train)
    points = tuple(
        StackPoint(lr=base.lr, seed=n.seed, norm=norm_spec(n.variant, cfg.settings, batch_size), batch_order=n.order)
        for n in nets
    )
    return StackConfig(base=base, points=points, test_batch=batch_size if batch_size >= 2 else None)


def network_train_config(
    cfg: BatchSizeSweepConfig, batch_size: int, net: Network, n_train: int
) -> tuple[TrainConfig, Callable]:
    """What trains ``net`` alone with :func:`bn_core.train.train`: its config and ``norm_factory``."""
    stack = batch_stack_config(cfg, batch_size, (net,), n_train)
    train_cfg = engine_point_config(stack, 0)
    return train_cfg, norm_module(stack.points[0].norm, train_cfg.model)


def check_sweep(cfg: BatchSizeSweepConfig) -> None:
    """Raise ``ValueError`` with a user-facing message if ``cfg`` cannot run; cheap (no training)."""
    validate_sweep(cfg, train_size(cfg.data))


def _validate_norms(cfg: BatchSizeSweepConfig) -> None:
    s = cfg.settings
    if not cfg.variants or any(v not in VARIANTS for v in cfg.variants):
        raise ValueError(f"Pick at least one normalization among {', '.join(VARIANTS)}.")
    if "group" in cfg.variants and (s.groups < 1 or cfg.width % s.groups != 0):
        raise ValueError(f"Group norm: the group count G={s.groups} must divide the width C={cfg.width} (units).")
    if "ghost" in cfg.variants:
        for B in cfg.batch_sizes:
            if s.ghost_batch < 2 or B % ghost_size(s, B) != 0:
                raise ValueError(
                    f"Ghost BN: the ghost batch g={s.ghost_batch} must be at least 2 and divide every batch size "
                    f"it is smaller than; it does not divide B={B}."
                )
    if "renorm" in cfg.variants and not (s.r_max >= 1 and s.d_max >= 0):
        raise ValueError(f"Batch Renorm needs r_max ≥ 1 and d_max ≥ 0, got {s.r_max} and {s.d_max}.")


def validate_sweep(cfg: BatchSizeSweepConfig, n_train: int) -> None:
    _validate_norms(cfg)
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise ValueError("Pick at least one batch size, each at least 1.")
    if max(cfg.batch_sizes) > n_train:
        raise ValueError(
            f"A batch of {max(cfg.batch_sizes):,} is larger than the training set ({n_train:,} examples): "
            "lower the largest batch size."
        )
    if cfg.n_seeds < 1 or cfg.epochs <= 0:
        raise ValueError("Use at least one seed and a positive number of epochs.")
    for B in cfg.batch_sizes:
        validate_config(_base(cfg, B, n_train))


def _records(nets: Sequence[Network], result: StackResult, per_epoch: int) -> list[dict]:
    """One record per network: eval-mode and train-mode test error, last-epoch training loss, divergence."""
    test_acc = result.final("test_acc")
    last_epoch = result.losses[-per_epoch:].mean(axis=0)  # (K,), NaN for a diverged network
    records = []
    for k, (net, bad) in enumerate(zip(nets, result.diverged_at, strict=True)):
        record = {"variant": net.variant, "seed": net.seed, "order": net.order, "diverged_at": bad}
        record["test_error"] = 1.0 - test_acc[k]
        record["train_loss"] = float(last_epoch[k])
        if net.variant == "batch":
            record["test_error_train_mode"] = 1.0 - result.test_acc_train_mode[k]
        records.append(record)
    return records


def train_networks(
    cfg: BatchSizeSweepConfig, batch_size: int, nets: Sequence[Network], split: DataSplit, progress: Progress | None
) -> pd.DataFrame:
    """Every network of one batch size, trained as one stack; one wide record per network."""
    n_train = len(split.y_train)
    result = train_stack(batch_stack_config(cfg, batch_size, nets, n_train), data=split, progress=progress)
    per_epoch = max(1, n_train // batch_size)
    return pd.DataFrame(_records(nets, result, per_epoch)).assign(batch_size=batch_size)


def _sub_progress(progress: Progress | None, B: int, done: int, cost: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda f, msg: progress((done + f * cost) / total, f"batch {B}: {msg}")


def run_batch_size_sweep(cfg: BatchSizeSweepConfig, progress: Progress | None = None) -> BatchSizeSweepResult:
    """Train every (variant, seed) at every batch size, one stacked run per batch size.

    Raises:
        ValueError: an invalid combination (G not dividing the width, a ghost batch not
            dividing a batch size, a batch larger than the training set, …), before any work.
    """
    started = time.perf_counter()
    split = load_dataset(cfg.data)
    n_train = len(split.y_train)
    validate_sweep(cfg, n_train)
    sizes = sorted(set(cfg.batch_sizes))
    work = [steps_at(cfg, B, n_train) * len(sweep_points(cfg, B)) for B in sizes]
    frames, done = [], 0
    for B, cost in zip(sizes, work, strict=True):
        sub = _sub_progress(progress, B, done, cost, sum(work))
        frames.append(train_networks(cfg, B, sweep_points(cfg, B), split, sub))
        done += cost
    runs = long_runs(pd.concat(frames, ignore_index=True))
    if progress is not None:
        progress(1.0, "done")
    schedule = _schedule_frame(cfg, sizes, n_train)
    return BatchSizeSweepResult(cfg, runs, summarize(runs), schedule, _notes(cfg), time.perf_counter() - started)


def _schedule_frame(cfg: BatchSizeSweepConfig, sizes: Sequence[int], n_train: int) -> pd.DataFrame:
    """What each batch size ran: steps, learning rate, ghost batch, examples seen."""
    return pd.DataFrame(
        {
            "batch_size": sizes,
            "steps": [steps_at(cfg, B, n_train) for B in sizes],
            "lr": [lr_at(cfg, B) for B in sizes],
            "ghost_batch": [ghost_size(cfg.settings, B) for B in sizes],
            "examples_seen": [steps_at(cfg, B, n_train) * B for B in sizes],
        }
    )


def _notes(cfg: BatchSizeSweepConfig) -> tuple[str, ...]:
    stat = [VARIANT_LABELS[v] for v in cfg.variants if v in BATCH_STAT_VARIANTS]
    if 1 in cfg.batch_sizes and stat:
        return (
            f"{', '.join(stat)} cannot train with a batch of 1 (one value per channel: σ²_B = 0, x̂ = 0; "
            "section 4 shows it), so they are left out at B = 1.",
        )
    return ()


def long_runs(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide records (one per network) to long rows: one per network and metric."""
    metrics = [m for m in ("test_error", "test_error_train_mode", "train_loss") if m in wide.columns]
    keys = ["batch_size", "variant", "seed", "order", "diverged_at"]
    long = wide.melt(id_vars=keys, value_vars=metrics, var_name="metric", value_name="value")
    long = long[~(long["metric"].eq("test_error_train_mode") & long["variant"].ne("batch"))]
    long["diverged_at"] = long["diverged_at"].astype("Int64")
    columns = ["batch_size", "variant", "seed", "order", "metric", "value", "diverged_at"]
    return long[columns].sort_values(["metric", "variant", "batch_size", "seed"], kind="stable").reset_index(drop=True)


def summarize(runs: pd.DataFrame, keys: Sequence[str] = ("batch_size", "variant", "metric")) -> pd.DataFrame:
    """Mean, std, lowest and highest seed, count and diverged count per ``keys``; the chart series name."""
    keys = list(keys)
    g = runs.groupby(keys, sort=False)
    summary = g["value"].agg(mean="mean", std="std", lo="min", hi="max", n="count").reset_index()
    summary["n_diverged"] = g["diverged_at"].apply(lambda d: int(d.notna().sum())).to_numpy()
    label = summary["variant"].map(VARIANT_LABELS)
    summary["series"] = np.where(summary["metric"] == "test_error_train_mode", TRAIN_MODE_SERIES, label)
    return summary
