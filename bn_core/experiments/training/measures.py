"""Numbers read off a comparison's records: steps to a target, the Fig. 1 bands and their drift, per-layer means.

Every function takes the long-format frames (``step, variant, layer, metric, value``) and
returns one number per variant, so a verdict or a question can quote it.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1: test accuracy over training; the
15/50/85 percentiles of a sigmoid's input).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["steps_to_target", "percentile_bands", "band_drift", "mean_by_variant", "median_grad_norm"]


def steps_to_target(curves: pd.DataFrame, target: float, by: Sequence[str] = ("variant",)) -> pd.Series:
    """The first evaluated step whose test accuracy is ≥ ``target``, per group; <NA> if never."""
    test = curves[curves["metric"] == "test_acc"]
    reached = test[test["value"] >= target].groupby(list(by))["step"].min()
    groups = test.groupby(list(by)).size().index
    return reached.reindex(groups).astype("Int64")


def percentile_bands(layers: pd.DataFrame, layer: int, which: Literal["unit", "pre"] = "unit") -> pd.DataFrame:
    """Ioffe Fig. 1 (b, c): ``step, variant, p15, p50, p85`` of one layer's input over training.

    ``which="unit"``: one tracked unit (what the paper plots); ``"pre"``: all units pooled.
    """
    names = {f"{which}_p15": "p15", f"{which}_p50": "p50", f"{which}_p85": "p85"}
    rows = layers[(layers["layer"] == layer) & layers["metric"].isin(names)]
    wide = rows.pivot_table(index=["step", "variant"], columns="metric", values="value").rename(columns=names)
    return wide.reset_index()[["step", "variant", "p15", "p50", "p85"]].sort_values(["variant", "step"])


def band_drift(layers: pd.DataFrame, layer: int, which: Literal["unit", "pre"] = "unit") -> pd.Series:
    """Per variant: how far the 15/50/85 percentiles moved from step 0, averaged over the three and over time.

    This is the "the distribution changes during training" of Fig. 1 (b, c) in one number.
    """
    bands = percentile_bands(layers, layer, which)
    out = {}
    for variant, rows in bands.groupby("variant"):
        p = rows[["p15", "p50", "p85"]].to_numpy()  # (T, 3)
        out[variant] = float(np.abs(p - p[:1]).mean()) if len(p) else math.nan
    return pd.Series(out, name="band_drift", dtype=float)


def mean_by_variant(layers: pd.DataFrame, metric: str) -> pd.Series:
    """The mean of one layer metric per variant, over every layer and record (e.g. the share of saturated outputs)."""
    return layers[layers["metric"] == metric].groupby("variant")["value"].mean()


def median_grad_norm(layers: pd.DataFrame, layer: int = 1) -> pd.Series:
    """The median ‖∂L/∂W‖ of one layer per variant, over the recorded steps."""
    rows = layers[(layers["metric"] == "grad_norm") & (layers["layer"] == layer)]
    return rows.groupby("variant")["value"].median()
