"""Section 1 of Training Comparison: the loss and accuracy charts and what they say."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from bn_core.experiments.training import VARIANTS, ComparisonReport
from bn_core.train import TrainConfig
from ui.charts import arrow_spec, method_scale

COLORS = method_scale(VARIANTS)
CURVES_CAPTION = (
    "Accuracy is measured in eval mode (BN uses its running statistics) on the held-out test set and on "
    f"{TrainConfig().eval_train_size} fixed training examples. Click a legend entry to highlight it; hover for the "
    "numbers."
)


@dataclass(frozen=True)
class CurvesView:
    """Section 1: two chart specs, the computed sentence and the lessons shown in place."""

    loss: dict  # Vega-Lite spec: batch loss at every step
    accuracy: dict  # Vega-Lite spec: eval-mode train and test accuracy, with the target line
    speed: str  # the speed verdict's sentence
    notes: tuple[str, ...]  # "BN: not trained …" (batch of 1), "no norm: diverged at step k …"
    caption: str = CURVES_CAPTION


def legend_pick(field: str = "variant") -> alt.Parameter:
    return alt.selection_point(fields=[field], bind="legend")


def loss_chart(curves: pd.DataFrame) -> alt.Chart:
    loss = curves[curves["metric"] == "loss"]
    pick = legend_pick()
    return (
        alt.Chart(loss, title="Training loss (every step)")
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="cross-entropy (log scale)", scale=alt.Scale(type="log")),
            color=alt.Color("variant:N", scale=COLORS, title=None),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", title="loss", format=".4g")],
        )
        .add_params(pick)
        .properties(height=260)
    )


def accuracy_chart(curves: pd.DataFrame, target: float) -> alt.LayerChart:
    acc = curves[curves["metric"].isin(["train_acc", "test_acc"])].replace(
        {"metric": {"train_acc": "train", "test_acc": "test"}}
    )
    pick = legend_pick()
    lines = (
        alt.Chart(acc)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("variant:N", scale=COLORS, title=None),
            strokeDash=alt.StrokeDash("metric:N", title="set", sort=["test", "train"]),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "metric:N", "step:Q", alt.Tooltip("value:Q", format=".1%")],
        )
        .add_params(pick)
    )
    rule = alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(color="#868E96", strokeDash=[2, 2])
    rule = rule.encode(y="target:Q", tooltip=[alt.Tooltip("target:Q", format=".0%", title="target")])
    return alt.layer(lines, rule, title="Train and test accuracy (eval mode)").properties(height=260)


def curves_view(curves: pd.DataFrame, report: ComparisonReport) -> CurvesView:
    return CurvesView(
        loss=arrow_spec(loss_chart(curves)),
        accuracy=arrow_spec(accuracy_chart(curves, report.target)),
        speed=report.speed.text,
        notes=report.notes,
    )
