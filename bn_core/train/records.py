"""What a run records about its hidden layers, and the long-format frames it returns.

Layer records (``step, variant, layer, metric, value``), measured on a fixed probe batch
forwarded in train mode, as training sees it:

- ``pre_p15, pre_p50, pre_p85, pre_mean, pre_std``: the layer input (the input to the
  nonlinearity, Ioffe & Szegedy Fig. 1 b, c), pooled over units and examples (std: ÷n);
- ``unit_p15, unit_p50, unit_p85``: the same for one tracked unit, which is what the
  paper's figure shows;
- ``saturation`` (sigmoid: share of outputs outside [0.05, 0.95]; tanh: |a| > 0.95) or
  ``zero_frac`` (relu: share of outputs exactly 0), §3.1 of the paper;
- ``grad_norm``: ‖∂L/∂W‖ of the layer's weight for that step's batch (steps ≥ 1).

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1; §3.1 saturation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from bn_core.models import Tap

__all__ = ["QUANTILES", "TAP_METRICS", "tap_rows", "grad_rows", "curve_frame", "layer_frame"]

QUANTILES = (0.15, 0.50, 0.85)  # the paper's Fig. 1 (b, c) bands
TAP_METRICS = ("pre_p15", "pre_p50", "pre_p85", "pre_mean", "pre_std", "unit_p15", "unit_p50", "unit_p85")
SIGMOID_SATURATED = 0.05  # a sigmoid output below 0.05 or above 0.95 has a slope under 0.05 (a quarter of its peak)
TANH_SATURATED = 0.95  # |tanh| > 0.95: slope 1 − a² below 0.1


def _saturation(act: np.ndarray, activation: str) -> tuple[str, float]:
    if activation == "sigmoid":
        return "saturation", float(np.mean((act < SIGMOID_SATURATED) | (act > 1 - SIGMOID_SATURATED)))
    if activation == "tanh":
        return "saturation", float(np.mean(np.abs(act) > TANH_SATURATED))
    return "zero_frac", float(np.mean(act == 0))


def _percentiles(values: np.ndarray) -> np.ndarray:
    """The 15th/50th/85th percentiles with linear interpolation (= ``np.percentile``), by one partition.

    One ``np.partition`` instead of a sort: ~3× faster than ``torch.quantile`` on a probe.
    """
    flat = values.ravel()
    pos = np.asarray(QUANTILES) * (flat.size - 1)  # fractional ranks
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, flat.size - 1)
    part = np.partition(flat, np.unique(np.concatenate([lo, hi])))
    return part[lo] + (pos - lo) * (part[hi] - part[lo])


def tap_rows(taps: dict[int, Tap], activation: str, unit: int) -> list[tuple[int, str, float]]:
    """(layer, metric, value) rows for the layer-input statistics of every tapped layer (std: ÷n)."""
    rows: list[tuple[int, str, float]] = []
    for layer, tap in taps.items():
        pre = tap.pre.cpu().numpy()  # (N, C) or (N, C, H, W); float32 partitions faster, moments in float64
        unit_values = pre[:, min(unit, pre.shape[1] - 1)]  # one unit / channel
        sat_name, sat = _saturation(tap.act.cpu().numpy(), activation)
        with np.errstate(invalid="ignore", over="ignore"):  # a diverging net's inputs hold inf: record nan, quietly
            moments = [pre.mean(dtype=np.float64), pre.std(dtype=np.float64)]
        values = [*_percentiles(pre), *moments, *_percentiles(unit_values), sat]
        rows += [(layer, name, float(v)) for name, v in zip((*TAP_METRICS, sat_name), values, strict=True)]
    return rows


def grad_rows(model: nn.Module) -> list[tuple[int, str, float]]:
    """(layer, "grad_norm", ‖∂L/∂W‖) for every hidden block whose weight has a gradient."""
    weights = [b.linear.weight for b in getattr(model, "blocks", [])]
    grads = [(layer, w.grad) for layer, w in enumerate(weights, start=1) if w.grad is not None]
    if not grads:
        return []
    norms = torch.stack([g.norm() for _, g in grads]).tolist()
    return [(layer, "grad_norm", v) for (layer, _), v in zip(grads, norms, strict=True)]


def curve_frame(losses: np.ndarray, evals: list[tuple[int, str, float]], variant: str) -> pd.DataFrame:
    """``step, variant, metric, value``: the batch loss of steps 1 … len(losses), then the evaluations."""
    n = len(losses)
    return pd.DataFrame(
        {
            "step": np.concatenate([np.arange(1, n + 1), [r[0] for r in evals]]).astype(np.int64),
            "variant": variant,
            "metric": ["loss"] * n + [r[1] for r in evals],
            "value": np.concatenate([losses, [r[2] for r in evals]]).astype(np.float64),
        }
    )


def layer_frame(rows: list[tuple[int, int, str, float]], variant: str) -> pd.DataFrame:
    """``step, variant, layer, metric, value`` from (step, layer, metric, value) rows."""
    layers = pd.DataFrame(rows, columns=["step", "layer", "metric", "value"])
    layers.insert(1, "variant", variant)
    return layers.astype({"step": "int64", "layer": "int64", "value": "float64"})
