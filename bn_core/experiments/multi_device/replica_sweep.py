"""Accuracy vs images per replica (Wu & He 2018, Fig. 1) on real worker processes: one launch for every run.

Every (size, seed) trains per-replica BN, synchronized BN and group norm in lockstep. Each
run sees the same number of epochs (``⌈epochs·N/(W·b)⌉`` steps) with the learning rate
scaled linearly with the global batch ``W·b`` (Goyal et al. 2017).

Sources: Wu & He 2018, arXiv:1803.08494; Goyal et al. 2017, arXiv:1706.02677.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bn_core.distributed import LR_REFERENCE_BATCH, DistConfig, launch
from bn_core.experiments.multi_device.base import SWEEP_SIZES, launch_timeout
from bn_core.progress import Progress

__all__ = [
    "MAX_SWEEP_SEEDS",
    "ReplicaSweepConfig",
    "ReplicaSweepResult",
    "run_replica_sweep",
    "sweep_dist_config",
    "sweep_lanes",
]

MAX_SWEEP_SEEDS = 5
# Runs in flight per rank (DistConfig.lanes): the default sweep, 2 ranks on this 2-core box, took 6.7–6.9 s with
# 1 lane, 4.4–4.6 s with 2 and 4.05–4.1 s with 3 or 4 (docs/multi_device.md).
SWEEP_LANES = 4
DIGITS_TRAIN = 1347  # digits training split (bn_core.data); only used for the timeout estimate


@dataclass(frozen=True)
class ReplicaSweepConfig:
    """Accuracy vs images per replica: every (size, seed) is a run of the same launch."""

    world_size: int = 2  # W: ranks
    sizes: tuple[int, ...] = SWEEP_SIZES  # images per replica
    n_seeds: int = 1  # seeds seed, seed+1, …
    epochs: float = 1.0  # every run sees this many epochs (small batches take more steps); 1 already shows Fig. 1
    lr: float = 0.1  # learning rate at a global batch of 32, scaled linearly
    seed: int = 0  # the first seed


@dataclass(frozen=True)
class ReplicaSweepResult:
    config: ReplicaSweepConfig
    accuracy: pd.DataFrame  # images_per_replica, seed, variant, rank, value (final test accuracy)
    summary: pd.DataFrame  # images_per_replica, variant, mean, lo, hi (over seeds and ranks)
    steps: pd.DataFrame  # images_per_replica, global_batch, steps, lr
    wall_s: float

    def mean_accuracy(self, images_per_replica: int, variant: str) -> float:
        s = self.summary
        rows = s[(s["images_per_replica"] == images_per_replica) & (s["variant"] == variant)]
        return float(rows["mean"].iloc[0])

    @property
    def sizes(self) -> tuple[int, int]:
        """The smallest and the largest images per replica of the sweep."""
        b = self.summary["images_per_replica"]
        return int(b.min()), int(b.max())


def lockstep_steps(cfg: ReplicaSweepConfig) -> int:
    """Optimizer steps of the whole sweep, each training every variant once (lockstep)."""
    return sum(math.ceil(cfg.epochs * DIGITS_TRAIN / (cfg.world_size * b)) for b in cfg.sizes) * cfg.n_seeds


def sweep_lanes(cfg: ReplicaSweepConfig) -> int:
    """Runs in flight on every rank: one per (size, seed), at most :data:`SWEEP_LANES`."""
    return min(SWEEP_LANES, len(cfg.sizes) * cfg.n_seeds)


def sweep_dist_config(cfg: ReplicaSweepConfig) -> DistConfig:
    """The one launch of the sweep: every (size, seed) a run, final accuracy only, runs in lanes."""
    lockstep = lockstep_steps(cfg)
    return DistConfig(
        world_size=cfg.world_size,
        images_per_replica=tuple(cfg.sizes),
        seeds=tuple(range(cfg.seed, cfg.seed + cfg.n_seeds)),
        epochs=cfg.epochs,
        lr=cfg.lr,
        eval_every=10**9,  # only the final accuracy
        record_stats=False,
        timeout_s=launch_timeout(cfg.world_size, lockstep),
        lanes=sweep_lanes(cfg),
    )


def run_replica_sweep(cfg: ReplicaSweepConfig, progress: Progress | None = None) -> ReplicaSweepResult:
    """Final test accuracy vs images per replica for the three variants; one launch for every run."""
    if not 1 <= cfg.n_seeds <= MAX_SWEEP_SEEDS:
        raise ValueError(f"Use 1 to {MAX_SWEEP_SEEDS} seeds (got {cfg.n_seeds}).")
    r = launch(sweep_dist_config(cfg), progress)
    acc = r.accuracy
    summary = acc.groupby(["images_per_replica", "variant"])["value"].agg(mean="mean", lo="min", hi="max").reset_index()
    steps = r.curves[r.curves["metric"] == "loss"].groupby("images_per_replica")["step"].max().reset_index()
    steps["global_batch"] = steps["images_per_replica"] * cfg.world_size
    steps["lr"] = cfg.lr * steps["global_batch"] / LR_REFERENCE_BATCH
    steps = steps.rename(columns={"step": "steps"})
    return ReplicaSweepResult(config=cfg, accuracy=acc, summary=summary, steps=steps, wall_s=r.wall_s)
