"""Train vs Inference, lab 5: the EMA lag at a high learning rate, against precise BN."""

from __future__ import annotations

from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.inference import InferenceConfig, LagResult, lag_lab, lag_verdict
from bn_core.verdict import Verdict
from ui import charts, common, widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.page import DEFAULTS, STATE
from ui.inference.run import compute

TITLE = "EMA lag"
TEXT = (
    "**EMA lag.** The EMA mixes statistics of *past* weights. At a high learning rate the weights move fast, "
    "so the EMA trails the population statistics of the current weights (precise BN). The page's run is "
    "compared with the same run at a higher learning rate; precise BN is recomputed every "
    f"{DEFAULTS.precise_every} steps."
)


@cached(max_entries=16)
def lag(cfg: InferenceConfig, lag_lr: float, _progress=None) -> LagResult:
    """The page's run next to the same run at a higher learning rate (itself a cached page run)."""
    return lag_lab(compute(cfg), compute(replace(cfg, lr=lag_lr), _progress=_progress))


def _accuracy_panel(trace: pd.DataFrame) -> alt.Chart:
    names = {"acc_ema": "EMA (running stats)", "acc_precise": "precise BN"}
    acc = trace[trace["metric"] != "stat_error"].assign(statistics=lambda f: f["metric"].map(names))
    return (
        alt.Chart(acc)
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="test accuracy", scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", scale=alt.Scale(range=charts.PALETTE)),
            strokeDash=alt.StrokeDash("statistics:N", title="eval with", sort=list(names.values())),
            tooltip=["run:N", "statistics:N", "step:Q", alt.Tooltip("value:Q", format=".3f", title="accuracy")],
        )
        .properties(height=240, width=280)
    )


@cached(max_entries=16)
def lag_spec(cfg: InferenceConfig, lag_lr: float) -> dict:
    trace = lag(cfg, lag_lr).trace
    err = trace[trace["metric"] == "stat_error"]
    right = charts.lines(err, color="run", x_title="step", y_title="|running_mean − population mean| / std",
                         height=240).properties(width=280)  # fmt: skip
    return arrow_spec(alt.hconcat(_accuracy_panel(trace), right).resolve_scale(color="shared"))


@cached(max_entries=16)
def lag_told(cfg: InferenceConfig, lag_lr: float) -> Verdict:
    """The lab's verdict, cached with its result: a rerun costs no pandas work."""
    return lag_verdict(lag(cfg, lag_lr))


def render_lab(cfg: InferenceConfig) -> pd.DataFrame | None:
    widgets.grid_slider(STATE, "lag_lr", "High learning rate to compare with", fmt="{:g}")
    lag_lr = float(STATE["lag_lr"])
    r = common.run(lag, cfg, lag_lr, label=f"Training at lr {lag_lr:g}…")
    if r is None:
        return None
    common.chart(lag_spec(cfg, lag_lr))
    common.dataframe(r.summary, hide_index=True, column_config=common.number_config(r.summary))
    st.warning(lag_told(cfg, lag_lr).text, icon=":material/balance:")
    return r.trace
