"""Sections 2 and 3 of Training Comparison: the Fig. 1 bands of one layer, and every layer's histogram."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from bn_core.train import TrainConfig
from ui.training.curves import COLORS

HIST_PANEL_WIDTH = 90  # px per layer panel: three panels to a row fit a 400 px phone with the axis labels
HIST_COLUMNS = 3
BANDS_INTRO = (
    "Ioffe & Szegedy's *internal covariate shift*: while the layers below learn, the distribution of a layer's "
    "input keeps moving. The band is the 15–85 % range of one layer's input to its nonlinearity on a fixed batch "
    f"of {TrainConfig().probe_size} training examples, the line its median."
)
HIST_CAPTION = (
    "One chart per net, one panel per hidden layer; colours: steps. Each panel has its own x range. For a sigmoid "
    "net, *activation output* shows saturation directly: mass piled at 0 and 1."
)


@dataclass(frozen=True)
class BandsView:
    """Section 2: one band chart per trained net (side by side, stacked on a phone) and the drift verdict."""

    charts: tuple[dict, ...]  # Vega-Lite specs, BN first; the same y range, so the two bands compare
    drift: str  # the drift verdict's sentence


def shared_domain(values: pd.Series, log: bool = False) -> list[float] | None:
    """One y range for every variant's chart (positive values only on a log scale); None when there is none."""
    finite = values[np.isfinite(values) & ((values > 0) if log else True)]
    return [float(finite.min()), float(finite.max())] if len(finite) else None


def bands_chart(bands: pd.DataFrame, variant: str, layer: int, which: str, domain: list[float] | None) -> alt.Chart:
    """Ioffe Fig. 1 (b, c) for one net: the 15–85 % band of one layer's input over training, and its median."""
    data = bands[bands["variant"] == variant]
    base = alt.Chart(data, title=f"{variant}: 15 / 50 / 85 % of {'one unit' if which == 'unit' else 'all units'}")
    base = base.encode(x=alt.X("step:Q", title="step"))
    tips = ["variant:N", "step:Q", *(alt.Tooltip(f"p{q}:Q", format=".3g", title=f"{q} %") for q in (15, 50, 85))]
    scale = alt.Scale(domain=domain) if domain else alt.Undefined
    color = alt.Color("variant:N", scale=COLORS, legend=None)
    band = base.mark_area(opacity=0.3).encode(
        y=alt.Y("p15:Q", title=f"layer {layer} input", scale=scale), y2="p85:Q", color=color
    )
    median = base.mark_line(point=True).encode(y=alt.Y("p50:Q", scale=scale), color=color, tooltip=tips)
    return alt.layer(band, median).properties(height=230)


def hist_chart(hist: pd.DataFrame, variant: str, steps: tuple[int, ...], quantity: str) -> alt.FacetChart:
    """Every hidden layer's histogram for one net at the chosen steps, wrapped three panels to a row."""
    data = hist[(hist["variant"] == variant) & (hist["quantity"] == quantity) & hist["step"].isin(steps)]
    x_title = "layer input" if quantity == "pre" else "activation output"
    return (
        alt.Chart(data, title=variant)
        .mark_bar(opacity=0.5, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=x_title),
            x2="bin_end:Q",
            y=alt.Y("share:Q", title="share", stack=None, axis=alt.Axis(format="%")),
            color=alt.Color("step:O", title="step", scale=alt.Scale(scheme="viridis")),
            tooltip=[
                "variant:N",
                "layer:O",
                "step:O",
                alt.Tooltip("bin_start:Q", format=".3g", title="from"),
                alt.Tooltip("bin_end:Q", format=".3g", title="to"),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(width=HIST_PANEL_WIDTH, height=100)
        .facet(facet=alt.Facet("layer:O", title="hidden layer"), columns=HIST_COLUMNS)
        .resolve_scale(x="independent", y="independent")
    )
