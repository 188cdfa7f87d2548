"""Multi-device BN: per-replica vs synchronized batch statistics, on real worker processes.

Two experiments, each one :func:`bn_core.distributed.launch` (so the workers' start-up
is paid once):

* :func:`run_stats`: ``W`` ranks train the digits MLP data-parallel with per-replica BN,
  synchronized BN and group norm in lockstep. Out come every rank's ``mu_B`` and
  ``var_B`` at every step (per-replica ones scatter, synchronized ones coincide), the
  equivalence check (sync BN over ``W × b`` = one process over ``W·b``), and the cost
  of synchronizing: all-reduce volume and time per step, measured in the same run.
* :func:`run_sweep`: final test accuracy vs images per replica (2, 4, 8, 16) for the
  three variants, each run seeing the same number of epochs with the learning rate
  scaled linearly with the global batch, as in Wu & He 2018, Fig. 1.

Sources: Wu & He 2018, arXiv:1803.08494; Peng et al. 2018, arXiv:1711.07240;
Goyal et al. 2017, arXiv:1706.02677; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import pandas as pd

from bn_core.distributed import (
    LR_REFERENCE_BATCH,
    VARIANTS,
    DistConfig,
    DistResult,
    launch,
    model_config,
)
from bn_core.models import MLPConfig
from bn_core.progress import Progress

__all__ = [
    "StatsConfig",
    "StatsResult",
    "SweepConfig",
    "SweepResult",
    "run_stats",
    "run_sweep",
    "VARIANT_LABELS",
    "SWEEP_SIZES",
    "bn_allreduce_bytes",
    "max_gap",
]

VARIANT_LABELS = {
    "per_replica": "per-replica BN",
    "sync": "synchronized BN",
    "group": "group norm",
    "sync_torch": "nn.SyncBatchNorm",
}
SWEEP_SIZES = (2, 4, 8, 16)  # images per replica in Wu & He's Fig. 1 range
FORWARD_BYTES, BACKWARD_BYTES = 3 * 8, 2 * 4  # per channel: [count, Σx, Σx²] in float64; [Σdy, Σdy·x̂] in float32


@dataclass(frozen=True)
class StatsConfig:
    """The default experiment: one launch, three variants in lockstep, statistics recorded every step."""

    world_size: int = 2  # W: ranks (worker processes)
    images_per_replica: int = 4  # b: examples per rank per step; the global batch is W·b
    steps: int = 100  # optimizer updates (few: every launch also pays the workers' start-up)
    lr: float = 0.1  # SGD learning rate for a global batch of 32, scaled linearly with W·b
    seed: int = 0  # initial weights, batch order and the equivalence check's data


@dataclass(frozen=True)
class StatsResult:
    """Long-format frames for the page. ``series`` is "rank k" or "pooled" (all ranks' examples together)."""

    stats: pd.DataFrame  # step, variant, series, layer, metric (mu_B | var_B), value
    spread: pd.DataFrame  # variant, layer, metric, max_gap, mean_gap: how far apart the ranks' values are
    curves: pd.DataFrame  # step, variant, rank, value: test accuracy during training
    equivalence: pd.DataFrame  # variant, quantity, max_abs_diff vs one process over the global batch
    timing: pd.DataFrame  # variant, component (compute | bn_allreduce | grad_allreduce), ms: medians over steps
    volume: pd.DataFrame  # variant, kind (bn_stats | gradients), calls, bytes (measured), formula_bytes
    overhead: float  # median step time, synchronized ÷ per-replica, from the same interleaved run
    check_per_rank: int  # examples per rank in the equivalence check
    backend: str
    device: str
    torch_sync_note: str | None
    startup_s: float  # launch → all ranks joined
    wall_s: float
    cpu_count: int  # cores of this machine: more ranks than cores oversubscribe them


@dataclass(frozen=True)
class SweepConfig:
    """Accuracy vs images per replica: every (size, seed) is a run of the same launch."""

    world_size: int = 2  # W: ranks
    sizes: tuple[int, ...] = SWEEP_SIZES  # images per replica
    n_seeds: int = 1  # seeds seed, seed+1, …
    epochs: float = 2.0  # every run sees this many epochs (small batches take more steps)
    lr: float = 0.1  # learning rate at a global batch of 32, scaled linearly
    seed: int = 0  # the first seed


@dataclass(frozen=True)
class SweepResult:
    accuracy: pd.DataFrame  # images_per_replica, seed, variant, rank, value (final test accuracy)
    summary: pd.DataFrame  # images_per_replica, variant, mean, lo, hi (over seeds and ranks)
    steps: pd.DataFrame  # images_per_replica, global_batch, steps, lr
    wall_s: float


def _timeout(world_size: int, lockstep_steps: int) -> float:
    """Generous: start-up, plus ~10 ms per variant step per rank (oversubscribed gloo is that slow)."""
    return 120.0 + 0.01 * world_size * lockstep_steps * len(VARIANTS)


def bn_allreduce_bytes(cfg: DistConfig) -> int:
    """Sync BN's all-reduce payload per step and rank: Σ over BN layers of C × (3 × 8 + 2 × 4) bytes."""
    model = model_config(cfg)
    channels = [model.width] * model.depth if isinstance(model, MLPConfig) else list(model.channels)
    return sum(C * (FORWARD_BYTES + BACKWARD_BYTES) for C in channels)


def _with_pooled(stats: pd.DataFrame) -> pd.DataFrame:
    """Add the statistics of all ranks' examples pooled (equal counts): mean of means; law of total variance."""
    wide = stats.pivot_table(index=["variant", "step", "layer", "rank"], columns="metric", values="value")
    g = wide.groupby(level=["variant", "step", "layer"])
    mu = g["mu_B"].mean()
    var = g["var_B"].mean() + g["mu_B"].apply(lambda m: float(((m - m.mean()) ** 2).mean()))
    pooled = (
        pd.DataFrame({"mu_B": mu, "var_B": var})
        .reset_index()
        .melt(id_vars=["variant", "step", "layer"], var_name="metric", value_name="value")
    )
    ranks = stats.assign(series="rank " + stats["rank"].astype(str))
    pooled = pooled[pooled["variant"] == "per_replica"].assign(series="pooled")
    columns = ["step", "variant", "series", "layer", "metric", "value"]
    return pd.concat([ranks[columns], pooled[columns]], ignore_index=True)


def _spread(stats: pd.DataFrame) -> pd.DataFrame:
    """Per variant, layer and metric: the largest and the mean gap between the ranks' values at a step."""
    gap = stats.groupby(["variant", "layer", "metric", "step"])["value"].agg(lambda v: float(v.max() - v.min()))
    out = gap.groupby(level=["variant", "layer", "metric"]).agg(["max", "mean"]).reset_index()
    return out.rename(columns={"max": "max_gap", "mean": "mean_gap"})


def _timing(r: DistResult) -> tuple[pd.DataFrame, float]:
    """Median ms per step by component. nn.SyncBatchNorm (CUDA only) is left out: its traffic is not metered."""
    timing = r.timing[r.timing["variant"] != "sync_torch"]
    t = timing.groupby(["variant", "metric"])["value"].median().unstack()  # median over ranks
    parts = t[["compute_ms", "bn_allreduce_ms", "grad_allreduce_ms"]].reset_index()
    long = parts.melt(id_vars="variant", var_name="component", value_name="ms")
    long["component"] = long["component"].str.removesuffix("_ms")
    return long, float(t.loc["sync", "step_ms"] / t.loc["per_replica", "step_ms"])


def _volume(r: DistResult) -> pd.DataFrame:
    """Measured payload per step (rank 0) beside the formula: BN layers × C × 32 bytes; parameters × 4 bytes."""
    comm = r.comm[(r.comm["rank"] == 0) & (r.comm["variant"] != "sync_torch")]  # nn.SyncBatchNorm: not metered
    v = comm[["variant", "kind", "calls_per_step", "bytes_per_step", "params"]].copy()
    sync_bytes = bn_allreduce_bytes(r.config)
    v["formula_bytes"] = [
        (sync_bytes if variant == "sync" else 0) if kind == "bn_stats" else params * 4
        for variant, kind, params in zip(v["variant"], v["kind"], v["params"], strict=True)
    ]
    return v.rename(columns={"calls_per_step": "calls", "bytes_per_step": "bytes"}).drop(columns="params")


def _check_per_rank(cfg: StatsConfig) -> int:
    """The equivalence check uses the page's b, capped at 8 so its table stays small."""
    return min(cfg.images_per_replica, 8)


def run_stats(cfg: StatsConfig, progress: Progress | None = None) -> StatsResult:
    """One launch: the three variants trained in lockstep, every rank's statistics, the checks and the costs.

    Raises:
        ValueError: an impossible combination (e.g. 1 image per replica with per-replica BN).
        bn_core.distributed.DistributedRunError: a worker failed; all were stopped.
    """
    dist_cfg = DistConfig(
        world_size=cfg.world_size,
        images_per_replica=(cfg.images_per_replica,),
        seeds=(cfg.seed,),
        steps=cfg.steps,
        lr=cfg.lr,
        eval_every=max(1, cfg.steps // 10),
        equivalence_per_rank=_check_per_rank(cfg),
        timeout_s=_timeout(cfg.world_size, cfg.steps),
    )
    r = launch(dist_cfg, progress)
    stats = r.stats[r.stats["variant"].isin(["per_replica", "sync", "sync_torch"])]
    curves = r.curves[r.curves["metric"] == "test_acc"][["step", "variant", "rank", "value"]]
    timing, overhead = _timing(r)
    return StatsResult(
        stats=_with_pooled(stats),
        spread=_spread(stats),
        curves=curves.reset_index(drop=True),
        equivalence=r.equivalence,
        timing=timing,
        volume=_volume(r),
        overhead=overhead,
        check_per_rank=_check_per_rank(cfg),
        backend=r.backend,
        device=r.device,
        torch_sync_note=r.torch_sync_note,
        startup_s=r.startup_s,
        wall_s=r.wall_s,
        cpu_count=os.cpu_count() or 1,
    )


def run_sweep(cfg: SweepConfig, progress: Progress | None = None) -> SweepResult:
    """Final test accuracy vs images per replica for the three variants; one launch for every run.

    Each run sees ``epochs`` epochs (``⌈epochs·N/(W·b)⌉`` steps) with ``lr × W·b/32``.
    """
    if not 1 <= cfg.n_seeds <= 5:
        raise ValueError(f"Use 1 to 5 seeds (got {cfg.n_seeds}).")
    n_train = 1347  # digits training split (bn_core.data); only used for the timeout estimate
    lockstep = sum(math.ceil(cfg.epochs * n_train / (cfg.world_size * b)) for b in cfg.sizes) * cfg.n_seeds
    dist_cfg = DistConfig(
        world_size=cfg.world_size,
        images_per_replica=tuple(cfg.sizes),
        seeds=tuple(range(cfg.seed, cfg.seed + cfg.n_seeds)),
        epochs=cfg.epochs,
        lr=cfg.lr,
        eval_every=10**9,  # only the final accuracy
        record_stats=False,
        timeout_s=_timeout(cfg.world_size, lockstep),
    )
    r = launch(dist_cfg, progress)
    acc = r.accuracy
    summary = acc.groupby(["images_per_replica", "variant"])["value"].agg(mean="mean", lo="min", hi="max").reset_index()
    steps = r.curves[r.curves["metric"] == "loss"].groupby("images_per_replica")["step"].max().reset_index()
    steps["global_batch"] = steps["images_per_replica"] * cfg.world_size
    steps["lr"] = cfg.lr * steps["global_batch"] / LR_REFERENCE_BATCH
    return SweepResult(accuracy=acc, summary=summary, steps=steps.rename(columns={"step": "steps"}), wall_s=r.wall_s)


def max_gap(spread: pd.DataFrame, variant: str, layer: int, metric: str) -> float:
    """The largest gap between the ranks' values of one statistic over training."""
    rows = spread[(spread["variant"] == variant) & (spread["layer"] == layer) & (spread["metric"] == metric)]
    return float(rows["max_gap"].iloc[0])
