"""Section 4 of Training Comparison: gradient norms and saturation per layer, and the summary table."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from ui.training.curves import legend_pick

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

    grads: tuple[dict, ...]  # Vega-Lite specs, one per trained net: ‖∂L/∂W‖ per layer and step (one y range)
    saturation: tuple[dict, ...]  # one per trained net: share of saturated (or zero) outputs per layer and step
    text: str  # the saturation verdict's sentence
    table: pd.DataFrame  # one row per variant (bn_core.experiments.training.report.comparison_table)


def _per_layer(layers: pd.DataFrame, variant: str, metric: str, title: str, fmt: str, domain: list | None) -> alt.Chart:
    """One net's metric per layer over training; ``domain`` None = a log scale over this net's values."""
    data = layers[(layers["variant"] == variant) & (layers["metric"] == metric)]
    data = data[data["step"] > 0] if metric == "grad_norm" else data
    pick = legend_pick("layer")
    scale = alt.Scale(type="log", domain=domain) if metric == "grad_norm" else alt.Scale(domain=[0, 1])
    return (
        alt.Chart(data, title=variant)
        .mark_line(point=True, strokeWidth=1.5)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("value:Q", title=title, scale=scale, axis=alt.Axis(format=fmt)),
            color=alt.Color("layer:O", title="layer", scale=alt.Scale(scheme="viridis")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=fmt, title=title)],
        )
        .add_params(pick)
        .properties(height=200)
    )


def grad_chart(layers: pd.DataFrame, variant: str, domain: list[float] | None) -> alt.Chart:
    return _per_layer(layers, variant, "grad_norm", "‖∂L/∂W‖ (log)", "~g", domain)


def saturation_chart(layers: pd.DataFrame, variant: str, activation: str) -> alt.Chart:
    metric = "zero_frac" if activation == "relu" else "saturation"
    title = "outputs exactly 0" if activation == "relu" else "saturated outputs"
    return _per_layer(layers, variant, metric, title, ".0%", None)
