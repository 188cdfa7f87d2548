"""Section 6 of Training Comparison: the hand-written BN against torch's, trained from the same start.

The BN net of a comparison is trained twice, once with :class:`bn_core.layers.ManualBatchNorm`
(whose gradient is the staged backward of Algorithm 1) and once with ``torch.nn.BatchNorm1d/2d``,
from the same weights on the same batches. ``diffs`` holds the largest absolute difference of
every curve and of the layer statistics; :func:`~bn_core.experiments.training.verdicts.backend_verdict`
says what it means.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Algorithm 1 and its backward, §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from bn_core.data import load_dataset
from bn_core.experiments.training.config import MAX_RUN_S, ComparisonConfig, check_cost, estimated_seconds, side_config
from bn_core.experiments.training.verdicts import backend_verdict
from bn_core.progress import Progress, sub_progress
from bn_core.train import train
from bn_core.verdict import Verdict

__all__ = ["BACKEND_VARIANTS", "BackendCheck", "run_backend_check"]

BACKEND_VARIANTS = {"manual": "BN (manual)", "torch": "BN (torch)"}  # both BN: ui.charts gives them BN's colour
_COMPARED = ("loss", "train_acc", "test_acc", "test_loss")


@dataclass(frozen=True, eq=False)
class BackendCheck:
    """The BN net trained twice, once per backend, from the same init on the same batches."""

    config: ComparisonConfig
    curves: pd.DataFrame  # step, variant ("BN (manual)" / "BN (torch)"), metric, value
    diffs: pd.DataFrame  # quantity, max_abs_diff, at_step
    worst: float  # the largest of diffs.max_abs_diff
    verdict: Verdict  # what the largest difference means (decided in float64)


def _diff_row(quantity: str, d: pd.Series) -> dict:
    d = d.dropna()
    if d.empty:
        return {"quantity": quantity, "max_abs_diff": math.nan, "at_step": None}
    return {"quantity": quantity, "max_abs_diff": float(d.max()), "at_step": int(d.idxmax())}


def run_backend_check(cfg: ComparisonConfig, progress: Progress | None = None) -> BackendCheck:
    """Train the BN net of ``cfg`` with the hand-written BN and with torch's, and compare the records.

    Raises:
        ValueError: an invalid config (BN with a batch of 1, …) or one over the cost guard.
    """
    check_cost(estimated_seconds(cfg), MAX_RUN_S, "This check")
    split = load_dataset(side_config(cfg, "batch").data)
    runs = []
    for i, (backend, label) in enumerate(BACKEND_VARIANTS.items()):
        tcfg = replace(side_config(replace(cfg, backend=backend), "batch"), variant=label)
        runs.append(train(tcfg, data=split, progress=sub_progress(progress, i, 2, label)))
    a, b = runs
    rows = [_diff_row(metric, (a.metric(metric) - b.metric(metric)).abs()) for metric in _COMPARED]
    merged = a.layers.merge(b.layers, on=["step", "layer", "metric"], suffixes=("_a", "_b"))
    d = pd.Series((merged["value_a"] - merged["value_b"]).abs().to_numpy(), index=merged["step"].to_numpy())
    rows.append(_diff_row("layer statistics", d))
    diffs = pd.DataFrame(rows)
    worst = float(diffs["max_abs_diff"].max())
    curves = pd.concat([a.curves, b.curves], ignore_index=True)
    verdict = backend_verdict(cfg.dtype, worst, cfg.steps)
    return BackendCheck(config=cfg, curves=curves, diffs=diffs, worst=worst, verdict=verdict)
