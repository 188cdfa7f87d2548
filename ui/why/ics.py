"""Why BN Works, tab 2: internal covariate shift (Santurkar et al. 2018, Def. 2.1): words, controls, charts.

The verdicts come from :mod:`bn_core.experiments.why.ics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.why.ics import ICSConfig, ICSResult, ics_frame, run_ics
from bn_core.progress import Progress
from ui import widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.sidebar import seed
from ui.why.shared import STATE, variant_lines

TEXT = (
    "**Claim: BN reduces internal covariate shift.** Ioffe & Szegedy never measured ICS. Santurkar et al. "
    "(2018, Def. 2.1) define it by what it would do to optimization: after the *earlier* layers take their "
    "update, how much has the gradient of layer i changed? G is layer i's weight gradient before the step, "
    "G′ the same gradient, on the same batch, once layers 1 … i−1 have been updated. No ICS means G′ = G "
    "(‖G − G′‖ = 0, cos = 1). Default: a ReLU net (3 × 100, SGD at η = 0.3), measured every steps/20 steps, "
    "for layers 2 … depth and the output layer."
)
LATEX = (
    r"G = \nabla_{W_i} L\big(W_1^{t},\dots,W_{i-1}^{t},\,W_i^{t},\dots,W_k^{t}\big), \qquad "
    r"G' = \nabla_{W_i} L\big(W_1^{t+1},\dots,W_{i-1}^{t+1},\,W_i^{t},\dots,W_k^{t}\big)"
)
TRY = (
    "Pick **Fig. 1 sigmoid net in every tab**: does the plain sigmoid net move at all, and what does that do "
    "to G′ − G?",
    "Pick **Deep nets**: does ICS grow with depth, with and without BN?",
    "Try seeds 0, 1, 2 (sidebar): does the ICS comparison keep its sign? Does BN's lead?",
)
TITLES = {"cos": "cos(G, G′): 1 = the update below changed nothing", "l2": "‖G − G′‖₂"}


@dataclass(frozen=True)
class ICSSpecs:
    cos: dict
    l2: dict


@cached(max_entries=16)
def compute(cfg: ICSConfig, _progress: Progress | None = None) -> ICSResult:
    return run_ics(cfg, _progress)


def config() -> ICSConfig:
    steps = int(STATE["ics_steps"])
    return ICSConfig(
        lr=float(STATE["ics_lr"]),
        steps=steps,
        every=max(2, steps // 20),
        depth=int(STATE["ics_depth"]),
        activation=str(STATE["ics_act"]),
        seed=seed(),
    )


def net_controls(prefix: str) -> None:
    """Activation, learning rate, depth and steps of a two-net experiment (ICS and landscape share the look)."""
    c = st.columns(4)
    widgets.choice(STATE, f"{prefix}_act", "Activation", where=c[0])
    widgets.grid_slider(STATE, f"{prefix}_lr", "Learning rate (SGD, both nets)", where=c[1])
    widgets.slider(STATE, f"{prefix}_depth", "Hidden layers", where=c[2])
    widgets.slider(STATE, f"{prefix}_steps", "Steps", step=50, where=c[3])


def controls() -> ICSConfig:
    net_controls("ics")
    return config()


@cached(max_entries=32)
def specs(cfg: ICSConfig) -> ICSSpecs:
    ics = compute(cfg).ics
    return ICSSpecs(arrow_spec(chart(ics_frame(ics, "cos"), "cos")), arrow_spec(chart(ics_frame(ics, "l2"), "l2")))


def chart(data: pd.DataFrame, metric: str) -> alt.Chart:
    return variant_lines(
        data,
        title=TITLES.get(metric, metric),
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title=metric if metric == "cos" else "‖G − G′‖"),
        tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g", title=metric)],
        dash="layer",
        point=True,
        width=1.6,
        legend=alt.Legend(orient="bottom"),
        height=280,
    )
