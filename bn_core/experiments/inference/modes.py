"""Train vs Inference, section 2: the same batch through the trained BN layers in train mode and in eval mode.

Each layer's input is what the eval-mode network delivers to it, so both modes see exactly
the same tensor; only the statistics used to normalize it differ (μ_B, σ²_B vs
``running_mean``, ``running_var``). A batch of one cannot be normalized in train mode, and
:func:`batch_of_one_errors` shows what each implementation says. :func:`gap_verdicts`
describes how the train/eval gap recorded by the run shrinks with the batch and with training.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1: inference uses population statistics).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.binning import binned
from bn_core.data import DataSplit
from bn_core.experiments.inference.base import digits, on_device, test_rows
from bn_core.experiments.inference.run import InferenceRun, layer_outputs, trained_model
from bn_core.precise_bn import bn_inputs, bn_layers, channel_stats
from bn_core.verdict import Verdict, num, ratio

__all__ = [
    "MODES_SAME_TOL",
    "GAP_NOISE",
    "ModeError",
    "TwoModes",
    "GapVerdicts",
    "batch_of_one_errors",
    "two_modes",
    "modes_verdict",
    "gap_verdicts",
]

# BN outputs are O(1) (unit variance before γ, β): a train/eval difference below 0.01 moves no
# logit enough to matter, so the two modes then "agree".
MODES_SAME_TOL = 0.01
# Each gap is an average over 8 random batches and scatters by ~10–20 %: a change smaller than
# this factor is "about the same", not a trend.
GAP_NOISE = 1.2


@dataclass(frozen=True)
class ModeError:
    """What one implementation does in train mode with a batch of one example."""

    impl: str  # "torch.nn.BatchNorm1d" or "bn_core ManualBatchNorm"
    raised: bool  # True when it refused (the expected behaviour)
    text: str  # "ValueError: Expected more than 1 value per channel …", or "(no error)"


@dataclass(frozen=True, eq=False)
class TwoModes:
    """One test batch through every BN layer of the trained net, in train and in eval mode."""

    n: int  # batch size fed
    hist: pd.DataFrame  # layer, series (train mode / eval mode / train − eval), bin_start, bin_end, count, share
    features: pd.DataFrame  # layer, feature, mu_B, running_mean, var_B, running_var, max_abs_diff
    summary: pd.DataFrame  # layer, max_abs_diff, mean_abs_diff (NaN for a batch of 1)
    errors: tuple[ModeError, ...]  # batch of 1: what each implementation says in train mode; else empty


@dataclass(frozen=True)
class GapVerdicts:
    """How the train/eval output gap of one layer changes with the batch size and over training."""

    by_size: Verdict  # holds: the gap fell from the smallest to the largest batch
    by_step: Verdict  # holds: the gap fell from step 0 to the last step


def batch_of_one_errors(run: InferenceRun, data: DataSplit | None = None) -> tuple[ModeError, ...]:
    """Train mode on a single example: the hand-written layer's error and PyTorch's own, verbatim."""
    x1 = digits(data).x_test[:1]  # (1, 64)
    errors = []
    for label, backend in (("torch.nn.BatchNorm1d", "torch"), ("bn_core ManualBatchNorm", "manual")):
        model = trained_model(run, backend).train()
        try:
            with torch.no_grad():
                model(on_device(model, x1))
            errors.append(ModeError(label, False, "(no error)"))
        except (ValueError, RuntimeError) as err:
            errors.append(ModeError(label, True, f"{type(err).__name__}: {err}"))
    return tuple(errors)


def _layer_rows(k: int, bn: nn.Module, z: Tensor) -> tuple[Tensor, Tensor, pd.DataFrame]:
    y_train, y_eval = layer_outputs(bn, z)
    mu_B, var_unbiased = channel_stats(z)
    m = z.shape[0]
    table = pd.DataFrame(
        {
            "layer": k,
            "feature": np.arange(z.shape[1]),
            "mu_B": mu_B.double().cpu().numpy(),
            "running_mean": bn.running_mean.double().cpu().numpy(),
            "var_B": (var_unbiased * (m - 1) / m).double().cpu().numpy(),
            "running_var": bn.running_var.double().cpu().numpy(),
            "max_abs_diff": (y_train - y_eval).abs().amax(dim=0).double().cpu().numpy(),
        }
    )
    return y_train, y_eval, table


def _eval_only(bn: nn.Module, z: Tensor) -> Tensor:
    """Eval mode only (what a batch of one can still do)."""
    with torch.no_grad():
        return copy.deepcopy(bn).eval()(z)


def _one_layer(k: int, bn: nn.Module, z: Tensor) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple]:
    """Histograms, per-unit table and (max, mean) |Δ| of one layer; a batch of one gets eval mode only."""
    if z.shape[0] == 1:
        return binned({"eval mode": _eval_only(bn, z).cpu().numpy()}).assign(layer=k), None, (k, math.nan, math.nan)
    y_train, y_eval, table = _layer_rows(k, bn, z)
    both = binned({"train mode": y_train.cpu().numpy(), "eval mode": y_eval.cpu().numpy()})  # shared edges
    diff = binned({"train − eval": (y_train - y_eval).cpu().numpy()})
    gap = (y_train - y_eval).abs()
    hist = pd.concat([both, diff], ignore_index=True).assign(layer=k)
    return hist, table, (k, float(gap.max()), float(gap.mean()))


def two_modes(run: InferenceRun, n: int, data: DataSplit | None = None) -> TwoModes:
    """Feed the same ``n`` test examples through each BN layer in train mode and in eval mode."""
    split = digits(data)
    if not 1 <= n <= len(split.y_test):
        raise ValueError(f"The batch must hold 1 … {len(split.y_test)} test examples, got {n}.")
    model = trained_model(run)
    x = split.x_test[test_rows(split, run.config.seed, 33)[:n]]
    layers = zip(bn_layers(model), bn_inputs(model, x), strict=True)
    parts = [_one_layer(k, bn, z) for k, (bn, z) in enumerate(layers, start=1)]
    tables = [table for _, table, _ in parts if table is not None]
    return TwoModes(
        n=n,
        hist=pd.concat([hist for hist, _, _ in parts], ignore_index=True),
        features=pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(),
        summary=pd.DataFrame([row for _, _, row in parts], columns=["layer", "max_abs_diff", "mean_abs_diff"]),
        errors=batch_of_one_errors(run, split) if n == 1 else (),
    )


def modes_verdict(tm: TwoModes, layer: int) -> Verdict:
    """Do the two modes give different outputs for this batch (holds), or agree / cannot be compared?"""
    if tm.n == 1:
        return Verdict(
            False,
            "A batch of 1 holds one value per channel: μ_B is that value and σ²_B = 0, so train mode would give "
            "x̂ = 0 for every input; both implementations refuse (above). Eval mode normalizes with "
            "running_mean and running_var and handles a single example.",
        )
    row = tm.summary.set_index("layer").loc[layer]
    numbers = (
        f"The same {tm.n} test images through layer {layer}: the largest difference between the train-mode and "
        f"eval-mode outputs is **{num(row['max_abs_diff'])}**, the mean {num(row['mean_abs_diff'])}."
    )
    if row["max_abs_diff"] > MODES_SAME_TOL:
        return Verdict(True, numbers + " Train mode makes each output depend on the rest of the batch.")
    return Verdict(
        False, numbers + f" Below {num(MODES_SAME_TOL)}: here this batch's statistics match the running ones."
    )


def _trend(before: float, after: float) -> tuple[bool, str]:
    """("fell", True), ("rose", False) or ("stayed about the same", False), with the GAP_NOISE margin."""
    if before > GAP_NOISE * after:
        return True, "fell"
    if after > GAP_NOISE * before:
        return False, "rose"
    return False, "stayed about the same"


def gap_verdicts(run: InferenceRun, layer: int) -> GapVerdicts:
    """The recorded gap vs batch size (2 → 256) and vs training step, as sentences with their ratios."""
    sizes = run.gap_sizes[(run.gap_sizes["layer"] == layer) & (run.gap_sizes["metric"] == "gap_mean")]
    small, large = sizes.iloc[0], sizes.iloc[-1]
    fell, verb = _trend(small["value"], large["value"])
    _, quotient = ratio(small["value"], large["value"])
    theory = math.sqrt(large["batch_size"] / small["batch_size"])
    by_size = Verdict(
        fell,
        f"Batch {small['batch_size']:.0f} → {large['batch_size']:.0f}: the mean gap {verb}; batch "
        f"{small['batch_size']:.0f} / batch {large['batch_size']:.0f} = {quotient} (the sampling noise of μ_B alone "
        f"would shrink ∝ 1/√B, {num(theory)}×).",
    )
    steps = run.checks[(run.checks["layer"] == layer) & (run.checks["metric"] == "gap_mean")]["value"]
    fell, verb = _trend(steps.iloc[0], steps.iloc[-1])
    by_step = Verdict(
        fell,
        f"During training it {verb}: {num(steps.iloc[0])} at step 0 (running statistics still 0 and 1), "
        f"{num(steps.iloc[-1])} after the last step.",
    )
    return GapVerdicts(by_size=by_size, by_step=by_step)
