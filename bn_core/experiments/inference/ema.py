"""Train vs Inference, section 1: the running statistics as an EMA, momentum conventions, Bessel's correction.

Views of the recorded run (:mod:`.run`) for one BN unit: its statistics over training
(:func:`ema_slice`), its final EMA vs the population statistics of the final weights
(:func:`final_stats`), and the numbers behind ``running_var``'s unbiased update
(:func:`bessel_table`). The sentences the page shows about them are :class:`Verdict` s
built here from those numbers.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1, the unbiased variance);
Wu & Johnson 2021, arXiv:2105.07576 (EMA vs population statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bn_core.experiments.inference.base import MOMENTA
from bn_core.experiments.inference.run import InferenceRun
from bn_core.verdict import Verdict, num, ratio

__all__ = [
    "EMA_CLOSE_STD",
    "EMA_VAR_TOL",
    "UnitStats",
    "Bessel",
    "half_life",
    "momentum_table",
    "ema_slice",
    "ema_legend",
    "bessel_table",
    "final_stats",
    "unit_verdict",
    "bessel_verdict",
    "momentum_verdict",
    "keras_verdict",
]

# The EMA "ended close" to the population statistics when its mean is within a quarter of a
# population std (x̂ shifts by < 0.25, less than one batch's μ_B noise at B = 16, 1/√16) and its
# variance within 20 % (x̂ scales by at most 1/√0.8 ≈ 1.12).
EMA_CLOSE_STD = 0.25
EMA_VAR_TOL = 0.2
# Two momentum conventions "agree" when the PyTorch number typed in equals the converted one.
_SAME_MOMENTUM = 1e-9

_SERIES = {
    "mu_B": ("batch (μ_B, σ²_B)", "mean"),
    "var_B": ("batch (μ_B, σ²_B)", "variance"),
    "running_mean": ("running (EMA)", "mean"),
    "running_var": ("running (EMA)", "variance"),
    "precise_mean": ("precise BN (population)", "mean"),
    "precise_var": ("precise BN (population)", "variance"),
}


@dataclass(frozen=True)
class UnitStats:
    """One unit's statistics after the last step: the EMA and the population values of the final weights."""

    layer: int  # BN layer, 1-based
    feature: int  # unit of that layer
    running_mean: float  # the EMA of μ_B
    running_var: float  # the EMA of the unbiased σ²_B
    precise_mean: float  # population mean over the training set, final weights
    precise_var: float  # population (unbiased) variance, final weights
    mean_error_in_std: float  # |running_mean − precise_mean| / √precise_var
    var_ratio: float  # running_var / precise_var


@dataclass(frozen=True)
class Bessel:
    """The numbers behind ``running_var``'s unbiased update, for one unit and for its whole layer."""

    m: int  # values per channel in one training batch
    factor: float  # m / (m − 1)
    var_B: float  # the unit's last batch variance (biased, ÷m)
    var_unbiased: float  # var_B · m/(m − 1): what the EMA adds
    ratio_biased: float  # second half of training, every unit: mean var_B / population variance
    ratio_unbiased: float  # the same after the correction
    expected_biased: float  # theory: (m − 1)/m
    width: int  # units averaged over
    layer: int  # the layer


def half_life(momentum: float) -> tuple[float, float]:
    """Steps after which a batch's weight in the EMA has halved: ``ln 2 / m`` and the exact ``ln 2 / −ln(1 − m)``."""
    if momentum >= 1.0:
        return math.log(2) / momentum, 0.0
    return math.log(2) / momentum, math.log(2) / -math.log1p(-momentum)


def momentum_table() -> pd.DataFrame:
    """PyTorch vs Keras momentum, half-life and the weight of the last 10 batches, for every momentum choice."""
    rows = []
    for m in MOMENTA:
        if m is None:
            rows.append(("None", math.nan, math.nan, math.nan, math.nan))
            continue
        approx, exact = half_life(m)
        rows.append((f"{m:g}", 1.0 - m, approx, exact, 1.0 - (1.0 - m) ** 10))
    columns = ["pytorch_momentum", "keras_momentum", "half_life_ln2_over_m", "half_life_exact", "weight_last_10"]
    return pd.DataFrame(rows, columns=columns)


def ema_slice(run: InferenceRun, layer: int, feature: int) -> pd.DataFrame:
    """One unit's statistics over training: ``step, series, stat, value`` (series: batch, running, precise)."""
    rows = run.ema[(run.ema["layer"] == layer) & (run.ema["feature"] == feature)]
    labels = rows["metric"].astype(str).map(_SERIES)
    return pd.DataFrame(
        {
            "step": rows["step"].to_numpy(np.int64),
            "series": pd.Categorical([s for s, _ in labels]),
            "stat": pd.Categorical([t for _, t in labels]),
            "value": rows["value"].to_numpy(np.float64),
        }
    )


def ema_legend(run: InferenceRun) -> str:
    """What the three series of the EMA chart are, with this run's numbers."""
    return (
        "Grey: each batch's μ_B and σ²_B (biased, as the forward pass uses them). Blue: the EMA after each step. "
        f"Orange: precise BN, the exact statistics of the current weights over all {run.n_train:,} training "
        f"images, recomputed every {run.config.precise_every} steps with the weights frozen. Click the legend."
    )


def _wide(run: InferenceRun, layer: int, metric: str) -> pd.DataFrame:
    """``step × feature`` table of one metric of one layer."""
    rows = run.ema[(run.ema["layer"] == layer) & (run.ema["metric"] == metric)]
    return rows.pivot(index="step", columns="feature", values="value")


def bessel_table(run: InferenceRun, layer: int, feature: int) -> Bessel:
    """Bessel's correction in this run: the unit's last batch, and the layer's ratios over the second half.

    The ratio of the batch's biased ``var_B`` to the population variance of the same weights
    should average ``(m−1)/m``; after the correction, 1.
    """
    m = run.values_per_channel
    var_B = _wide(run, layer, "var_B")
    precise = _wide(run, layer, "precise_var").reindex(var_B.index, method="ffill")  # the latest checkpoint
    late = var_B.index >= var_B.index.max() / 2
    mean_ratio = float(np.nanmean((var_B[late] / precise[late]).to_numpy()))
    last = float(var_B.iloc[-1, feature])
    return Bessel(
        m=m, factor=m / (m - 1), var_B=last, var_unbiased=last * m / (m - 1), ratio_biased=mean_ratio,
        ratio_unbiased=mean_ratio * m / (m - 1), expected_biased=(m - 1) / m, width=var_B.shape[1], layer=layer,
    )  # fmt: skip


def final_stats(run: InferenceRun, layer: int, feature: int) -> UnitStats:
    """The unit's last running and precise statistics, and how far apart they are."""
    ema = run.ema
    rows = ema[(ema["layer"] == layer) & (ema["feature"] == feature) & (ema["step"] == ema["step"].max())]
    last = dict(zip(rows["metric"].astype(str), rows["value"].astype(float), strict=True))
    return UnitStats(
        layer=layer,
        feature=feature,
        running_mean=last["running_mean"],
        running_var=last["running_var"],
        precise_mean=last["precise_mean"],
        precise_var=last["precise_var"],
        mean_error_in_std=abs(last["running_mean"] - last["precise_mean"]) / math.sqrt(last["precise_var"]),
        var_ratio=last["running_var"] / last["precise_var"],
    )


def unit_verdict(s: UnitStats) -> Verdict:
    """Did the EMA end close to the population statistics of the final weights (for this unit)?"""
    _, var_text = ratio(s.running_var, s.precise_var)
    close = s.mean_error_in_std <= EMA_CLOSE_STD and abs(s.var_ratio - 1) <= EMA_VAR_TOL
    numbers = (
        f"After the last step, unit {s.feature} of layer {s.layer}: running_mean **{num(s.running_mean, 4)}** vs "
        f"the population mean of the final weights **{num(s.precise_mean, 4)}** (off by "
        f"{num(s.mean_error_in_std)} population std); running_var / population variance = {var_text}."
    )
    if close:
        return Verdict(True, numbers + " The EMA ended close to the statistics eval mode should use.")
    return Verdict(
        False,
        numbers + f" The EMA is **stale** here (more than {num(EMA_CLOSE_STD)} std or {num(100 * EMA_VAR_TOL)} % "
        "off): it still averages batches from older weights.",
    )


def bessel_verdict(b: Bessel) -> Verdict:
    """Did the unbiased correction bring the batch variance closer to the population variance?"""
    numbers = (
        f"Over the second half of training, across all {b.width} units of layer {b.layer}, the batch variance "
        f"σ²_B averaged **{num(b.ratio_biased, 4)}** × the population variance (theory for m = {b.m}: "
        f"(m − 1)/m = {num(b.expected_biased, 4)}); after the correction, **{num(b.ratio_unbiased, 4)}** × "
        "(theory: 1)."
    )
    if abs(b.ratio_unbiased - 1) < abs(b.ratio_biased - 1):
        return Verdict(True, numbers + " That is why `running_var` stores the unbiased estimate.")
    return Verdict(
        False,
        numbers + f" Here the correction did not bring it closer to 1: at m = {b.m} the factor "
        f"{num(b.factor, 4)} is smaller than the batch-to-batch noise and the drift of the weights.",
    )


def momentum_verdict(m: float | None) -> Verdict:
    """The half-life of a momentum (holds), or why ``momentum=None`` has none (does not hold)."""
    if m is None:
        return Verdict(
            False,
            "**momentum=None**: the k-th batch gets weight 1/k, so every batch since the start counts equally "
            "(a cumulative average). No half-life: early batches, from early weights, never fade.",
        )
    approx, exact = half_life(m)
    return Verdict(
        True,
        f"**PyTorch momentum {m:g} = Keras momentum {1 - m:g}.** A batch's weight in the EMA halves every "
        f"ln 2 / m = **{num(approx, 4)}** steps (exactly ln 2 / −ln(1 − m) = {num(exact, 4)}).",
    )


def keras_verdict(k: float) -> Verdict:
    """A Keras momentum in PyTorch's convention; holds when typing the Keras number into PyTorch would differ."""
    m = 1.0 - k
    if m <= 0:
        return Verdict(
            False, "Keras momentum 1 is PyTorch momentum 0: the running statistics never move from their start."
        )
    approx, exact = half_life(m)
    text = (
        f"Keras momentum **{k:g}** = PyTorch momentum **{m:.4g}**: half-life ln 2 / m = {num(approx)} steps "
        f"(exact {num(exact)})."
    )
    if k <= 0:
        return Verdict(True, text + " Typing `momentum=0` into PyTorch instead freezes the running statistics.")
    if abs(k - m) <= _SAME_MOMENTUM:
        return Verdict(False, text + " At 0.5 the two conventions agree: typing it into PyTorch gives the same EMA.")
    return Verdict(
        True,
        text + f" Typing `momentum={k:g}` into PyTorch instead gives a half-life of {num(half_life(k)[1])} steps: "
        "a different EMA altogether.",
    )
