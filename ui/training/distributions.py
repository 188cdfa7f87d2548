"""Sections 2 and 3 of Training Comparison: the Fig. 1 bands of one layer, and every layer's histogram."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from bn_core.experiments.training import VARIANTS
from bn_core.train import TrainConfig
from ui.training.curves import COLORS

FACET_WIDTH = 280  # px per facet: two side by side fit a laptop; charts never ask for more than 300 per facet
BANDS_INTRO = (
    "Ioffe & Szegedy's *internal covariate shift*: while the layers below learn, the distribution of a layer's "
    "input keeps moving. The band is the 15–85 % range of one layer's input to its nonlinearity on a fixed batch "
    f"of {TrainConfig().probe_size} training examples, the line its median."
)
HIST_CAPTION = (
    "Rows: BN and no norm; columns: hidden layers; colours: steps. Each panel has its own x range. For a sigmoid "
    "net, *activation output* shows saturation directly: mass piled at 0 and 1."
)


@dataclass(frozen=True)
class BandsView:
    """Section 2: the band chart and the drift verdict."""

    chart: dict  # Vega-Lite spec, one facet per variant
    drift: str  # the drift verdict's sentence


def bands_chart(bands: pd.DataFrame, layer: int, which: str) -> alt.FacetChart:
    base = alt.Chart(bands).encode(x=alt.X("step:Q", title="step"))
    tips = ["variant:N", "step:Q", *(alt.Tooltip(f"p{q}:Q", format=".3g", title=f"{q} %") for q in (15, 50, 85))]
    band = base.mark_area(opacity=0.3).encode(
        y=alt.Y("p15:Q", title=f"layer {layer} input"),
        y2="p85:Q",
        color=alt.Color("variant:N", scale=COLORS, legend=None),
    )
    median = base.mark_line(point=True).encode(
        y="p50:Q", color=alt.Color("variant:N", scale=COLORS, legend=None), tooltip=tips
    )
    what = "one unit" if which == "unit" else "all units"
    return (
        alt.layer(band, median)
        .properties(width=FACET_WIDTH, height=230)
        .facet(column=alt.Column("variant:N", title=f"15 / 50 / 85 % percentiles of {what}", sort=list(VARIANTS)))
    )


def hist_chart(hist: pd.DataFrame, steps: tuple[int, ...], quantity: str, layers: int) -> alt.FacetChart:
    data = hist[(hist["quantity"] == quantity) & hist["step"].isin(steps)]
    width = max(70, min(170, 760 // max(layers, 1)))
    x_title = "layer input" if quantity == "pre" else "activation output"
    return (
        alt.Chart(data)
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
        .properties(width=width, height=110)
        .facet(
            row=alt.Row("variant:N", title=None, sort=list(VARIANTS)),
            column=alt.Column("layer:O", title="hidden layer"),
        )
        .resolve_scale(x="independent", y="independent")
    )
