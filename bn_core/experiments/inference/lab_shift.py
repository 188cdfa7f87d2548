"""Train vs Inference, lab 4: shifted test inputs, and AdaBN (statistics recomputed on them).

Every test pixel becomes ``a·x + b`` (+ seeded noise). The network still normalizes with
the training set's running statistics; AdaBN recomputes them on the shifted test inputs
(no labels), keeping every weight (:func:`bn_core.precise_bn.population_stats`).

Sources: Li et al. 2016, arXiv:1603.04779 (AdaBN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.data import DataSplit
from bn_core.experiments.inference.base import digits
from bn_core.experiments.inference.run import InferenceRun, trained_model
from bn_core.precise_bn import population_stats, with_stats
from bn_core.train import evaluate, stream_seed
from bn_core.verdict import Verdict, pct

__all__ = ["BRIGHTNESS_GRID", "SHIFT_LOSS", "ADABN_HELPS", "ShiftResult", "shift_inputs", "shift_lab", "shift_verdict"]

BRIGHTNESS_GRID = tuple(round(b, 2) for b in np.linspace(-1.0, 1.0, 21))
# A shift "costs accuracy" above 1 point (4–5 of 450 test images, more than rounding flips).
SHIFT_LOSS = 0.01
# AdaBN "fixes" a shift when it wins back at least half of what the shift cost.
ADABN_HELPS = 0.5


@dataclass(frozen=True, eq=False)
class ShiftResult:
    clean: float  # eval accuracy on the clean test set
    shifted: float  # on the shifted test set, training statistics
    adapted: float  # on the shifted test set after AdaBN
    sweep: pd.DataFrame  # brightness, variant (running statistics / AdaBN), accuracy
    recovered: float  # share of the lost accuracy AdaBN wins back, from the printed %; NaN if nothing was lost


def shift_inputs(x: Tensor, contrast: float, brightness: float, noise: float, seed: int) -> Tensor:
    """``contrast·x + brightness + noise·ε`` with ε ~ N(0, 1) per pixel from a seeded generator."""
    gen = torch.Generator().manual_seed(stream_seed(seed, 38))
    eps = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return contrast * x + brightness + noise * eps


def _shift_accs(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Eval accuracy with the training running statistics, and after AdaBN on these (unlabelled) inputs."""
    plain = evaluate(model, x, y).accuracy
    adapted = evaluate(with_stats(model, population_stats(model, x)), x, y).accuracy
    return plain, adapted


def _recovered(clean: float, shifted: float, adapted: float) -> float:
    """(adapted − shifted) / (clean − shifted) of the accuracies as printed (0.1 %), NaN below SHIFT_LOSS."""
    c, s, a = (round(100 * v, 1) for v in (clean, shifted, adapted))
    return (a - s) / (c - s) if c - s > 100 * SHIFT_LOSS else math.nan


def shift_lab(
    run: InferenceRun, contrast: float, brightness: float, noise: float, data: DataSplit | None = None
) -> ShiftResult:
    """Shift the test inputs, evaluate with the training statistics, then recompute them on the shifted inputs."""
    split = digits(data)
    model = trained_model(run)
    x, y = split.x_test, split.y_test
    clean = evaluate(model, x, y).accuracy
    shifted, adapted = _shift_accs(model, shift_inputs(x, contrast, brightness, noise, run.config.seed), y)
    sweep = []
    for b in BRIGHTNESS_GRID:
        plain, ada = _shift_accs(model, shift_inputs(x, contrast, b, noise, run.config.seed), y)
        sweep += [(b, "running statistics (from training)", plain), (b, "AdaBN (recomputed on shifted data)", ada)]
    return ShiftResult(
        clean=clean,
        shifted=shifted,
        adapted=adapted,
        sweep=pd.DataFrame(sweep, columns=["brightness", "variant", "accuracy"]),
        recovered=_recovered(clean, shifted, adapted),
    )


def shift_verdict(r: ShiftResult) -> Verdict:
    """Did the shift cost accuracy, and did AdaBN win back at least half of it?"""
    cost = f"{pct(r.clean)} → {pct(r.shifted)}"
    if math.isnan(r.recovered):
        return Verdict(
            False,
            f"Verdict: this shift cost almost nothing ({cost}, under {pct(SHIFT_LOSS)}), so there is nothing for "
            f"AdaBN to win back ({pct(r.adapted)} after recomputing the statistics).",
        )
    lost = f"the shift cost {pct(r.clean - r.shifted)} of accuracy ({cost})"
    if r.recovered >= ADABN_HELPS:
        return Verdict(
            True,
            f"Verdict: {lost}; AdaBN won back **{r.recovered:.0%}** of it ({pct(r.adapted)}) by recomputing the BN "
            "statistics on the shifted test inputs, labels unused.",
        )
    return Verdict(
        False,
        f"Verdict: {lost}; AdaBN won back only {r.recovered:.0%} of it ({pct(r.adapted)}). Recomputing means and "
        "variances undoes a change of offset and scale per unit, not a sign flip or noise that destroys the strokes.",
    )
