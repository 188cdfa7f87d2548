"""Section 4b of Batch-Size Sensitivity: class-sorted (non-i.i.d.) batches against shuffled ones.

With class-sorted batches each epoch is sorted by digit and cut into batches
(:func:`bn_core.train.batch_schedule`), so one batch holds one digit (two where digits
meet). BN then subtracts that digit's own mean: what tells the digits apart is
normalized away in training, while inference uses the running statistics of all
digits (Ioffe 2017, arXiv:1702.03275, §1, names this case). Group norm never looks
across examples. Every network of the comparison trains in one stacked run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import pandas as pd

from bn_core.data import load_dataset
from bn_core.experiments.batch_size.sweep import (
    BatchSizeSweepConfig,
    Network,
    long_runs,
    summarize,
    train_networks,
    validate_sweep,
)
from bn_core.experiments.batch_size.variants import VARIANT_LABELS
from bn_core.progress import Progress
from bn_core.verdict import Verdict, num

__all__ = ["NonIIDConfig", "NonIIDResult", "run_non_iid", "non_iid_verdict", "COLLAPSE_POINTS", "CHANCE_SHARE"]

# BN "collapses" on class-sorted batches when its test error rises by at least 15 percentage points over
# shuffled batches: seeds differ by 1–3 points here, and the collapse the paper describes is tens of points.
COLLAPSE_POINTS = 0.15
# A training loss at ≥ 80 % of ln(classes) (digits: ≥ 1.84 of 2.30) is a net that learned next to nothing
# about its batches: a net that learns drops below 1 within these epochs.
CHANCE_SHARE = 0.8


@dataclass(frozen=True)
class NonIIDConfig:
    """Shuffled vs class-sorted batches at one batch size, for a few normalizations."""

    variants: tuple[str, ...] = ("batch", "group", "renorm")  # from VARIANTS
    batch_size: int = 32  # a class-sorted batch of 32 holds one digit (two where classes meet)
    lr: float = 0.002  # at B = 32, scaled linearly: small steps, because each class-sorted step pulls toward one class
    epochs: float = 20.0  # passes over the training set
    sweep: BatchSizeSweepConfig = field(default_factory=BatchSizeSweepConfig)  # seeds, model, optimizer, settings


@dataclass(frozen=True)
class NonIIDResult:
    config: NonIIDConfig
    runs: pd.DataFrame  # variant, seed, order, metric (test_error | test_error_train_mode | train_loss), value, …
    summary: pd.DataFrame  # variant, order, metric, mean, std, lo, hi, n, n_diverged, series
    wall_s: float

    def mean(self, variant: str, order: str, metric: str) -> float:
        """Mean over seeds of ``metric`` for one variant and batch order (NaN if absent)."""
        s = self.summary
        rows = s[(s["variant"] == variant) & (s["order"] == order) & (s["metric"] == metric)]
        return float(rows["mean"].iloc[0]) if len(rows) else math.nan


def _sweep_config(cfg: NonIIDConfig) -> BatchSizeSweepConfig:
    return replace(
        cfg.sweep, variants=cfg.variants, batch_sizes=(cfg.batch_size,), lr=cfg.lr, lr_rule="linear", epochs=cfg.epochs
    )


def run_non_iid(cfg: NonIIDConfig, progress: Progress | None = None) -> NonIIDResult:
    """Train each variant on shuffled and on class-sorted batches (one stack); errors in eval mode."""
    started = time.perf_counter()
    sweep = _sweep_config(cfg)
    split = load_dataset(sweep.data)
    validate_sweep(sweep, len(split.y_train))
    if cfg.batch_size < 2:
        raise ValueError("Use a batch of at least 2: BN cannot train with one example per batch.")
    seeds = range(sweep.seed, sweep.seed + sweep.n_seeds)
    nets = tuple(Network(v, s, o) for v in cfg.variants for o in ("shuffled", "class_sorted") for s in seeds)
    runs = long_runs(train_networks(sweep, cfg.batch_size, nets, split, progress))
    if progress is not None:
        progress(1.0, "done")
    return NonIIDResult(cfg, runs, summarize(runs, ("variant", "order", "metric")), time.perf_counter() - started)


def non_iid_verdict(r: NonIIDResult, n_classes: int = 10) -> Verdict:
    """Whether BN collapses on class-sorted batches, with every variant's numbers."""
    parts = []
    for variant in r.config.variants:
        shuffled, sorted_ = r.mean(variant, "shuffled", "test_error"), r.mean(variant, "class_sorted", "test_error")
        loss = r.mean(variant, "class_sorted", "train_loss")
        name = VARIANT_LABELS[variant]
        parts.append(f"{name} {num(100 * shuffled)} % → **{num(100 * sorted_)} %** (training loss {num(loss)})")
    numbers = "Test error, shuffled → class-sorted batches: " + "; ".join(parts) + "."
    rise = r.mean("batch", "class_sorted", "test_error") - r.mean("batch", "shuffled", "test_error")
    chance = math.log(n_classes)
    bn_loss = r.mean("batch", "class_sorted", "train_loss")
    if rise >= COLLAPSE_POINTS and bn_loss >= CHANCE_SHARE * chance:
        return Verdict(
            True,
            f"{numbers} BN's training loss sits near ln {n_classes} = {num(chance)}, chance: within a one-digit "
            "batch BN subtracts that digit's own mean, so what tells the digits apart is normalized away.",
        )
    return Verdict(
        False,
        f"{numbers} Here BN did not collapse (error up {num(100 * rise)} points, training loss {num(bn_loss)} "
        f"against chance ln {n_classes} = {num(chance)}): try a smaller learning rate or more epochs.",
    )
