"""Section 5 of Training Comparison: the grid heatmaps and what each grid tests."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.training import VARIANTS


@dataclass(frozen=True)
class GridSpec:
    """What one grid tab shows before it trains: its state flag, the axis name and the claim it tests."""

    flag: str  # the STATE toggle that trains it
    title: str  # "learning rate"
    claim: str  # what the grid tests (a description, not a result)


GRIDS = {
    "lr": GridSpec("lr_grid", "learning rate", "Higher learning rates: the paper's BN-x5 and BN-x30 (§4.2.1)."),
    "init_scale": GridSpec("init_grid", "init scale", "Less sensitivity to initialization (§3.3)."),
    "depth": GridSpec("depth_grid", "depth", "Do deeper sigmoid nets train with BN and without?"),
}
GRID_COLUMNS = {
    "value": st.column_config.NumberColumn("value", format="%g"),
    **{
        c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
        for c in ("mean_acc", "min_acc", "max_acc")
    },
    "steps_to_target": st.column_config.NumberColumn("median steps to target", format="%d"),
    "first_diverged_at": st.column_config.NumberColumn("first diverged at", format="%d"),
}


@dataclass(frozen=True)
class GridView:
    """One trained grid: the heatmaps, the per-cell table, the verdict and the divergence note."""

    accuracy: dict  # Vega-Lite spec: heatmap of the mean final test accuracy
    steps: dict  # Vega-Lite spec: heatmap of the median steps to the target
    table: pd.DataFrame  # bn_core.experiments.training.grid_summary
    verdict: str  # grid_verdict's sentence
    diverged: str | None  # "Diverged runs, marked ✕ …", or None
    skipped: str | None  # the lesson when BN could not train (a batch of 1: Skipped.note), or None


def _acc_label(r) -> str:
    if r.diverged == r.n_seeds:
        return "✕ diverged"
    mark = f" ✕{r.diverged}" if r.diverged else ""
    return f"{r.mean_acc:.0%}{mark}"


def _steps_label(r) -> str:
    if r.diverged == r.n_seeds:
        return "✕"
    if r.reached == 0:
        return "not reached"
    return f"{r.steps_to_target:.0f} ({r.reached}/{r.n_seeds})"


def _tooltips(axis: str, target: float) -> list:
    return [
        "variant:N",
        alt.Tooltip("label:N", title=axis),
        alt.Tooltip("mean_acc:Q", format=".1%", title="mean final test acc"),
        alt.Tooltip("min_acc:Q", format=".1%", title="worst seed"),
        alt.Tooltip("max_acc:Q", format=".1%", title="best seed"),
        alt.Tooltip("steps_to_target:Q", title=f"median steps to {target:.0%}"),
        alt.Tooltip("reached:Q", title="seeds that reached it"),
        alt.Tooltip("diverged:Q", title="seeds diverged"),
    ]


def grid_charts(summary: pd.DataFrame, axis: str, target: float) -> tuple[alt.LayerChart, alt.LayerChart]:
    """Two heatmaps, axis value × variant, each at the container's width: mean final test accuracy, and median
    steps to the target."""
    data = summary.assign(
        acc_text=[_acc_label(r) for r in summary.itertuples()],
        steps_text=[_steps_label(r) for r in summary.itertuples()],
        label=summary["value"].map("{:g}".format),
    )
    order = [f"{v:g}" for v in sorted(summary["value"].unique())]
    x = alt.X("label:O", title=axis.replace("_", " "), sort=order, axis=alt.Axis(labelAngle=0))
    y = alt.Y("variant:N", title=None, sort=list(VARIANTS))
    base = alt.Chart(data).encode(x=x, y=y, tooltip=_tooltips(axis, target)).properties(height=alt.Step(34))
    valid = "isValid(datum.mean_acc) && datum.diverged == 0"
    color = alt.Color("mean_acc:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), legend=None)
    acc = base.transform_filter(valid).mark_rect(stroke="white").encode(color=color)
    diverged = base.transform_filter(f"!({valid})").mark_rect(stroke="white", color="#FFC9C9")
    acc_text = base.mark_text(fontSize=12).encode(
        text="acc_text:N", color=alt.condition("datum.mean_acc > 0.6", alt.value("white"), alt.value("black"))
    )
    steps = base.mark_rect(stroke="white", color="#E9ECEF") + base.mark_text(fontSize=12).encode(text="steps_text:N")
    return (
        (acc + diverged + acc_text).properties(title="Final test accuracy (mean over seeds; ✕ = diverged)"),
        steps.properties(title=f"Steps to {target:.0%} test accuracy (median over the seeds that got there)"),
    )
