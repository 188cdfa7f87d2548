"""The default multi-device experiment: every rank's batch statistics, the equivalence check, the costs.

One :func:`bn_core.distributed.launch`: ``W`` ranks train the digits MLP data-parallel with
per-replica BN, synchronized BN and group norm in lockstep. Out come every rank's ``mu_B``
and ``var_B`` at every step (per-replica ones scatter, synchronized ones coincide), the
equivalence check (sync BN over ``W × b`` = one process over ``W·b``), and the cost of
synchronizing: all-reduce volume and time per step, measured in the same run.

With one image per replica, per-replica BN cannot train (each unit of the MLP has one value
in its shard, so x̂ = 0): the launch then trains synchronized BN (``W`` values per unit over
the ranks) and group norm only, and the result says so (``per_replica_trained``).

Sources: Wu & He 2018, arXiv:1803.08494; Peng et al. 2018, arXiv:1711.07240;
Goyal et al. 2017, arXiv:1706.02677; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from bn_core.distributed import VARIANTS, DistConfig, DistResult, launch
from bn_core.experiments.multi_device.base import MIN_PER_REPLICA_IMAGES, bn_allreduce_bytes, launch_timeout
from bn_core.progress import Progress

__all__ = ["StatsConfig", "StatsResult", "Traffic", "run_stats", "stats_variants"]

CHECK_PER_RANK_CAP = 8  # the equivalence check uses the page's b, capped so its table stays small


@dataclass(frozen=True)
class StatsConfig:
    """The default experiment: one launch, the variants in lockstep, statistics recorded every step."""

    world_size: int = 2  # W: ranks (worker processes)
    images_per_replica: int = 4  # b: examples per rank per step; the global batch is W·b
    steps: int = 100  # optimizer updates (few: every launch also pays the workers' start-up)
    lr: float = 0.1  # SGD learning rate for a global batch of 32, scaled linearly with W·b
    seed: int = 0  # initial weights, batch order and the equivalence check's data


@dataclass(frozen=True)
class Traffic:
    """What one kind of all-reduce sent per step and rank."""

    calls: float  # all-reduce calls per step
    bytes: float  # payload per step and rank (measured)
    formula_bytes: float  # the payload the formula predicts


@dataclass(frozen=True)
class StatsResult:
    """Long-format frames for the page. ``series`` is "rank k" or "pooled" (all ranks' examples together)."""

    config: StatsConfig
    variants: tuple[str, ...]  # what was trained: per_replica is left out below MIN_PER_REPLICA_IMAGES
    stats: pd.DataFrame  # step, variant, series, layer, metric (mu_B | var_B), value
    spread: pd.DataFrame  # variant, layer, metric, max_gap, mean_gap: how far apart the ranks' values are
    curves: pd.DataFrame  # step, variant, rank, value: test accuracy during training
    equivalence: pd.DataFrame  # variant, quantity, max_abs_diff vs one process over the global batch
    timing: pd.DataFrame  # variant, component (compute | bn_allreduce | grad_allreduce), ms: medians over steps
    volume: pd.DataFrame  # variant, kind (bn_stats | gradients), calls, bytes (measured), formula_bytes
    step_ms: dict[str, float]  # variant → median ms per whole step (median over ranks)
    check_per_rank: int  # examples per rank in the equivalence check
    backend: str
    device: str
    torch_sync_note: str | None
    startup_s: float  # launch → all ranks joined
    wall_s: float
    cpu_count: int  # cores of this machine: more ranks than cores oversubscribe them

    @property
    def per_replica_trained(self) -> bool:
        return "per_replica" in self.variants

    @property
    def values_per_unit(self) -> int:
        """Values per MLP unit that synchronized BN normalizes over: W·b (per-replica BN: b)."""
        return self.config.world_size * self.config.images_per_replica

    # The look-ups below serve every verdict and question of the page on every rerun of every
    # session: each reads a dict built once per result object (one pass over a small frame),
    # not a boolean mask over the frame per call (a fifth of the page's CPU per session).

    @cached_property
    def _gaps(self) -> dict[tuple[str, int, str], float]:
        s = self.spread
        rows = zip(s["variant"], s["layer"], s["metric"], s["max_gap"], strict=True)
        return {(variant, int(layer), metric): float(gap) for variant, layer, metric, gap in rows}

    def max_gap(self, variant: str, layer: int, metric: str) -> float | None:
        """The largest gap between the ranks' values of one statistic over training (None: not trained)."""
        return self._gaps.get((variant, int(layer), metric))

    @cached_property
    def _traffic(self) -> dict[tuple[str, str], Traffic]:
        v = self.volume
        rows = zip(v["variant"], v["kind"], v["calls"], v["bytes"], v["formula_bytes"], strict=True)
        return {(var, kind): Traffic(float(c), float(b), float(f)) for var, kind, c, b, f in rows}

    def traffic(self, variant: str, kind: str) -> Traffic:
        return self._traffic[(variant, kind)]

    @cached_property
    def _equivalence_max(self) -> dict[str, float]:
        return {v: float(d) for v, d in self.equivalence.groupby("variant")["max_abs_diff"].max().items()}

    def equivalence_max(self, variant: str) -> float:
        """The largest |difference| of any quantity from one process over the global batch."""
        return self._equivalence_max.get(variant, float("nan"))

    @cached_property
    def _final_accuracy(self) -> dict[str, float]:
        c = self.curves
        last = c[c["step"] == c.groupby("variant")["step"].transform("max")]
        return {v: float(a) for v, a in last.groupby("variant")["value"].mean().items()}

    def final_accuracy(self, variant: str) -> float:
        """Test accuracy at the last step, mean over ranks."""
        return self._final_accuracy.get(variant, float("nan"))


def stats_variants(images_per_replica: int) -> tuple[str, ...]:
    """The variants a launch can train at this shard size (see MIN_PER_REPLICA_IMAGES)."""
    if images_per_replica < MIN_PER_REPLICA_IMAGES:
        return tuple(v for v in VARIANTS if v != "per_replica")
    return VARIANTS


def _with_pooled(stats: pd.DataFrame) -> pd.DataFrame:
    """Add the statistics of all ranks' examples pooled (equal counts): mean of means; law of total variance."""
    columns = ["step", "variant", "series", "layer", "metric", "value"]
    ranks = stats.assign(series="rank " + stats["rank"].astype(str))[columns]
    per = stats[stats["variant"] == "per_replica"]
    if per.empty:
        return ranks.reset_index(drop=True)
    wide = per.pivot_table(index=["variant", "step", "layer", "rank"], columns="metric", values="value")
    g = wide.groupby(level=["variant", "step", "layer"])
    mu = g["mu_B"].mean()
    var = g["var_B"].mean() + g["mu_B"].apply(lambda m: float(((m - m.mean()) ** 2).mean()))
    pooled = (
        pd.DataFrame({"mu_B": mu, "var_B": var})
        .reset_index()
        .melt(id_vars=["variant", "step", "layer"], var_name="metric", value_name="value")
        .assign(series="pooled")
    )
    return pd.concat([ranks, pooled[columns]], ignore_index=True)


def _spread(stats: pd.DataFrame) -> pd.DataFrame:
    """Per variant, layer and metric: the largest and the mean gap between the ranks' values at a step."""
    gap = stats.groupby(["variant", "layer", "metric", "step"])["value"].agg(lambda v: float(v.max() - v.min()))
    out = gap.groupby(level=["variant", "layer", "metric"]).agg(["max", "mean"]).reset_index()
    return out.rename(columns={"max": "max_gap", "mean": "mean_gap"})


def _timing(r: DistResult) -> tuple[pd.DataFrame, dict[str, float]]:
    """Median ms per step by component, and per whole step. nn.SyncBatchNorm (CUDA only) is not metered."""
    timing = r.timing[r.timing["variant"] != "sync_torch"]
    t = timing.groupby(["variant", "metric"])["value"].median().unstack()  # median over ranks
    parts = t[["compute_ms", "bn_allreduce_ms", "grad_allreduce_ms"]].reset_index()
    long = parts.melt(id_vars="variant", var_name="component", value_name="ms")
    long["component"] = long["component"].str.removesuffix("_ms")
    return long, {str(v): float(ms) for v, ms in t["step_ms"].items()}


def _volume(r: DistResult) -> pd.DataFrame:
    """Measured payload per step (rank 0) beside the formula: BN layers × C × 32 bytes; parameters × 4 bytes."""
    comm = r.comm[(r.comm["rank"] == 0) & (r.comm["variant"] != "sync_torch")]  # nn.SyncBatchNorm: not metered
    v = comm[["variant", "kind", "calls_per_step", "bytes_per_step", "params"]].copy()
    sync_bytes = bn_allreduce_bytes(r.config)
    v["formula_bytes"] = [
        (sync_bytes if variant == "sync" else 0) if kind == "bn_stats" else params * 4
        for variant, kind, params in zip(v["variant"], v["kind"], v["params"], strict=True)
    ]
    v = v.rename(columns={"calls_per_step": "calls", "bytes_per_step": "bytes"}).drop(columns="params")
    return v.reset_index(drop=True)


def _dist_config(cfg: StatsConfig) -> DistConfig:
    return DistConfig(
        world_size=cfg.world_size,
        images_per_replica=(cfg.images_per_replica,),
        seeds=(cfg.seed,),
        variants=stats_variants(cfg.images_per_replica),
        steps=cfg.steps,
        lr=cfg.lr,
        eval_every=max(1, cfg.steps // 10),
        equivalence_per_rank=min(cfg.images_per_replica, CHECK_PER_RANK_CAP),
        timeout_s=launch_timeout(cfg.world_size, cfg.steps),
    )


def run_stats(cfg: StatsConfig, progress: Progress | None = None) -> StatsResult:
    """One launch: the variants trained in lockstep, every rank's statistics, the checks and the costs.

    Raises:
        ValueError: an impossible config (bn_core.distributed validates it before anything starts).
        bn_core.distributed.DistributedRunError: a worker failed; all were stopped.
    """
    dist_cfg = _dist_config(cfg)
    r = launch(dist_cfg, progress)
    stats = r.stats[r.stats["variant"].isin(["per_replica", "sync", "sync_torch"])]
    curves = r.curves[r.curves["metric"] == "test_acc"][["step", "variant", "rank", "value"]]
    timing, step_ms = _timing(r)
    return StatsResult(
        config=cfg,
        variants=dist_cfg.variants,
        stats=_with_pooled(stats),
        spread=_spread(stats),
        curves=curves.reset_index(drop=True),
        equivalence=r.equivalence,
        timing=timing,
        volume=_volume(r),
        step_ms=step_ms,
        check_per_rank=dist_cfg.equivalence_per_rank,
        backend=r.backend,
        device=r.device,
        torch_sync_note=r.torch_sync_note,
        startup_s=r.startup_s,
        wall_s=r.wall_s,
        cpu_count=os.cpu_count() or 1,
    )
