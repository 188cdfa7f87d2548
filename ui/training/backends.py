"""Section 6 of Training Comparison: the BN net trained with the hand-written BN and with torch's."""

from __future__ import annotations

import altair as alt
import pandas as pd

from bn_core.experiments.training import BACKEND_VARIANTS
from ui.charts import method_scale
from ui.training.curves import legend_pick

INTRO = (
    "The BN net above trains with the hand-written BN (`bn_core.layers.ManualBatchNorm`, whose gradient is the "
    "staged backward of Algorithm 1) unless you pick the torch backend. Train it with both, from the same weights "
    "on the same batches, and compare every record."
)


def backend_chart(curves: pd.DataFrame) -> alt.Chart:
    """Both runs' loss: both are BN, so both get BN's colour; the dash tells them apart."""
    loss = curves[curves["metric"] == "loss"]
    pick = legend_pick()
    domain = list(BACKEND_VARIANTS.values())
    return (
        alt.Chart(loss, title="Training loss: manual BN vs torch BN")
        .mark_line(strokeWidth=1.5)
        .encode(
            x="step:Q",
            y=alt.Y("value:Q", title="loss (log)", scale=alt.Scale(type="log")),
            color=alt.Color("variant:N", title=None, scale=method_scale(domain)),
            strokeDash=alt.StrokeDash("variant:N", legend=None, sort=domain),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", format=".6g")],
        )
        .add_params(pick)
        .properties(height=220)
    )
