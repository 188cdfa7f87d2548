"""Section 4 of Training Comparison: gradient norms and saturation per layer, and the summary table."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.training import VARIANTS
from ui.training.curves import legend_pick
from ui.training.distributions import FACET_WIDTH

LAYERS_CAPTION = (
    "Top: the norm of each hidden layer's weight gradient, per step, on that step's batch. Bottom: the share of "
    "saturated sigmoid/tanh outputs (below 0.05 or above 0.95; |a| > 0.95 for tanh), or of ReLU outputs that are "
    "exactly 0, on the fixed probe batch. Click a layer in the legend to highlight it."
)
SUMMARY_COLUMNS = {
    "final_test_acc": st.column_config.NumberColumn("final test acc", format="percent"),
    "final_train_acc": st.column_config.NumberColumn("final train acc", format="percent"),
    "final_loss": st.column_config.NumberColumn("final batch loss", format="%.4g"),
    "steps_run": st.column_config.NumberColumn("steps run"),
}


@dataclass(frozen=True)
class LayersView:
    """Section 4: two chart specs, the saturation verdict and the summary table."""

    grads: dict  # Vega-Lite spec: ‖∂L/∂W‖ per layer and step, one facet per variant
    saturation: dict  # Vega-Lite spec: share of saturated (or zero) outputs per layer and step
    text: str  # the saturation verdict's sentence
    table: pd.DataFrame  # one row per variant (bn_core.experiments.training.report.comparison_table)


def _per_layer(layers: pd.DataFrame, metric: str, title: str, log: bool, fmt: str) -> alt.FacetChart:
    data = layers[(layers["metric"] == metric) & (layers["step"] > (0 if metric == "grad_norm" else -1))]
    pick = legend_pick("layer")
    scale = alt.Scale(type="log") if log else alt.Scale(domain=[0, 1])
    return (
        alt.Chart(data)
        .mark_line(point=True, strokeWidth=1.5)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("value:Q", title=title, scale=scale, axis=alt.Axis(format=fmt)),
            color=alt.Color("layer:O", title="layer", scale=alt.Scale(scheme="viridis")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=fmt, title=title)],
        )
        .add_params(pick)
        .properties(width=FACET_WIDTH, height=200)
        .facet(column=alt.Column("variant:N", title=None, sort=list(VARIANTS)))
    )


def grad_chart(layers: pd.DataFrame) -> alt.FacetChart:
    return _per_layer(layers, "grad_norm", "‖∂L/∂W‖ (log)", log=True, fmt="~g")


def saturation_chart(layers: pd.DataFrame, activation: str) -> alt.FacetChart:
    metric = "zero_frac" if activation == "relu" else "saturation"
    title = "outputs exactly 0" if activation == "relu" else "saturated outputs"
    return _per_layer(layers, metric, title, log=False, fmt=".0%")
