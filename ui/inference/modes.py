"""Train vs Inference, section 2: the same batch through the trained layers in both modes, and the gap.

Cached views (the sentence and the per-unit "why" table) and chart specs (histograms of both
modes, and the recorded train/eval gap vs batch size and vs training step).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bn_core.experiments.inference import InferenceConfig, ModeError, TwoModes, modes_verdict, two_modes
from bn_core.verdict import Verdict
from ui import charts
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.helpers import log2_x
from ui.inference.run import compute

MODES_TEX = (
    r"y_{\rm train} = \gamma\,\frac{x-\mu_\mathcal{B}}{\sqrt{\sigma^2_\mathcal{B}+\epsilon}}+\beta"
    r"\qquad\qquad y_{\rm eval} = \gamma\,\frac{x-\texttt{running\_mean}}{\sqrt{\texttt{running\_var}+\epsilon}}"
    r"+\beta"
)
GAP_LABELS = {"gap_mean": "mean |Δ|", "gap_max": "max |Δ|"}


@dataclass(frozen=True)
class ModesView:
    """What section 2 says about one batch, one layer and one unit."""

    errors: tuple[ModeError, ...]  # a batch of 1: each implementation's train-mode error; else empty
    sentence: Verdict  # the largest train/eval difference (or the batch-of-1 lesson)
    why: pd.DataFrame | None  # the unit's batch vs running statistics (None for a batch of 1)


@cached(max_entries=48)
def modes(cfg: InferenceConfig, n: int, _progress=None) -> TwoModes:
    return two_modes(compute(cfg), n)


def _why_table(tm: TwoModes, layer: int, feature: int) -> pd.DataFrame:
    row = tm.features[(tm.features["layer"] == layer) & (tm.features["feature"] == feature)].iloc[0]
    return pd.DataFrame(
        {
            "statistic": ["mean", "variance"],
            "this batch (train mode)": [row["mu_B"], row["var_B"]],
            "running (eval mode)": [row["running_mean"], row["running_var"]],
        }
    )


@cached(max_entries=64)
def modes_view(cfg: InferenceConfig, n: int, layer: int, feature: int, _progress=None) -> ModesView:
    tm = modes(cfg, n, _progress=_progress)
    why = _why_table(tm, layer, feature) if not tm.errors else None
    return ModesView(errors=tm.errors, sentence=modes_verdict(tm, layer), why=why)


@cached(max_entries=64)
def modes_spec(cfg: InferenceConfig, n: int, layer: int) -> dict:
    hist = modes(cfg, n).hist
    chart = charts.histogram(hist[hist["layer"] == layer], x_title="BN output y (all units)", column="series")
    return arrow_spec(chart.resolve_scale(x="independent"))


def _gap_labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(metric=frame["metric"].map(GAP_LABELS))


@dataclass(frozen=True)
class GapSpecs:
    """The two gap charts of one layer."""

    by_size: dict  # mean and max |y_train − y_eval| vs the batch size fed
    by_step: dict  # the same on a fixed batch vs training step


@cached(max_entries=32)
def gap_specs(cfg: InferenceConfig, layer: int) -> GapSpecs:
    """The recorded mean and max |y_train − y_eval| vs batch size, and vs training step."""
    run = compute(cfg)
    sizes = _gap_labels(run.gap_sizes[run.gap_sizes["layer"] == layer])
    steps = _gap_labels(run.checks[(run.checks["layer"] == layer) & run.checks["metric"].isin(GAP_LABELS)])
    title = "|y_train − y_eval|"
    by_size = charts.lines(sizes, x="batch_size", color="metric", y_title=title, log_y=True, points=True, height=220)
    by_size = by_size.encode(x=log2_x("batch_size", "batch size fed (log scale)"))
    by_step = charts.lines(steps, color="metric", x_title="training step", y_title=title, log_y=True, height=220)
    return GapSpecs(by_size=arrow_spec(by_size), by_step=arrow_spec(by_step))
