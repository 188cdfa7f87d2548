"""Why BN Works, tab 1: noisy BN (Santurkar et al. 2018, §2.1): its words, controls, cached run and charts.

The verdicts and the table come from :mod:`bn_core.experiments.why.noisy`; this module only
reads the controls, caches and draws specs.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.why.noisy import (
    NoisyConfig,
    NoisyResult,
    NoisyView,
    accuracy_frame,
    distribution_frame,
    loss_frame,
    noisy_view,
    run_noisy,
    summary_table,
)
from bn_core.progress import Progress
from ui import widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.sidebar import seed
from ui.why.shared import STATE, variant_color, variant_lines

TEXT = (
    "**Claim: BN works by keeping each layer's input distribution stable** (it reduces ICS). "
    "**Test** (Santurkar et al. 2018, §2.1): train three copies of Ioffe & Szegedy's Fig. 1 net "
    "(3 × 100 sigmoid units, SGD, batch 60), with the same init and the same batches: no norm, BN, and "
    "**noisy BN**. In the noisy net every BN output unit is scaled by s and shifted by b, drawn afresh at "
    "every step (b ~ U(−n_μ, n_μ), s² ~ U(1, n_σ)), so the next layer's input distribution jumps at every "
    "step. If stability were BN's secret, the noisy net should lose BN's advantage."
)
DIST_CAPTION = (
    "Each layer's input (the input to its sigmoid) on a fixed batch of 128 training digits, every 10 steps, "
    "in train mode: for the noisy net, *with* that step's noise, as the next layer sees it."
)
TRY = (
    "Pick **Violent noise**: n_μ = 5, n_σ = 25. How strong must the noise be before it finally hurts?",
    "Set n_μ = 0 and n_σ = 1: the noisy net becomes exactly the BN net, number for number.",
    "Switch the view to *all units pooled*: do per-unit shifts average out? Which view is the fair test of "
    "'stable distributions'?",
    "Pick **Learning rate 100**: what does the page say when no net trains?",
)
TABLE_NAMES = {"test_acc": "test accuracy", "train_acc": "train accuracy"}
COLUMNS = {c: st.column_config.NumberColumn(c, format="percent") for c in TABLE_NAMES.values()}
VIEW_NAMES = {"unit": "one unit (as Santurkar et al. plot it)", "pre": "all units pooled"}


@dataclass(frozen=True, eq=False)
class NoisyPanel:
    """What the tab shows for one layer and view: the sentences, the table and the layer records' CSV."""

    view: NoisyView
    table: pd.DataFrame  # display names; one row per net
    csv: bytes  # the layer records


@dataclass(frozen=True)
class NoisySpecs:
    accuracy: dict
    loss: dict


@cached(max_entries=16)
def compute(cfg: NoisyConfig, _progress: Progress | None = None) -> NoisyResult:
    return run_noisy(cfg, _progress)


def config() -> NoisyConfig:
    """The tab's config from the state table (the Scale invariance tab and the debate reuse it)."""
    return NoisyConfig(
        n_mu=float(STATE["n_mu"]),
        n_sigma=float(STATE["n_sigma"]),
        lr=float(STATE["lr"]),
        steps=int(STATE["steps"]),
        seed=seed(),
    )


def controls() -> NoisyConfig:
    c = st.columns(4)
    widgets.slider(STATE, "n_mu", "Noise mean range n_μ", step=0.1, where=c[0], help="b ~ U(−n_μ, n_μ) per unit")
    widgets.slider(STATE, "n_sigma", "Noise variance range n_σ", step=0.5, where=c[1], help="s² ~ U(1, n_σ) per unit")
    widgets.grid_slider(STATE, "lr", "Learning rate (SGD, all three nets)", where=c[2])
    widgets.slider(STATE, "steps", "Steps", step=50, where=c[3])
    return config()


def view_controls() -> tuple[int, str]:
    """The layer (1 … 3) and the view ("unit" or "pre") the distribution chart and sentences show."""
    a, b = st.columns(2)
    widgets.choice(STATE, "layer", "Hidden layer", style="radio", where=a)
    widgets.choice(STATE, "view", "Distribution of", style="radio", fmt=lambda v: VIEW_NAMES.get(v, str(v)), where=b)
    return int(STATE["layer"]), str(STATE["view"])


@cached(max_entries=64)
def panel(cfg: NoisyConfig, layer: int, view: str) -> NoisyPanel:
    """The tab's sentences, table and CSV: cached, so a rerun of the class's view costs nothing here."""
    r = compute(cfg)
    table = summary_table(r).rename(
        columns=lambda c: TABLE_NAMES.get(c, c.replace("jump_layer_", "median jump, layer "))
    )
    return NoisyPanel(noisy_view(r, layer, view), table, r.layers.to_csv(index=False).encode())


# Chart specs are cached too: building and validating Altair charts costs more than a cache hit.


@cached(max_entries=32)
def specs(cfg: NoisyConfig) -> NoisySpecs:
    curves = compute(cfg).curves
    return NoisySpecs(arrow_spec(accuracy_chart(accuracy_frame(curves))), arrow_spec(loss_chart(loss_frame(curves))))


@cached(max_entries=64)
def dist_spec(cfg: NoisyConfig, layer: int, view: str) -> dict:
    return arrow_spec(distribution_chart(distribution_frame(compute(cfg).layers, layer, view), layer, view))


def accuracy_chart(acc: pd.DataFrame) -> alt.Chart:
    return variant_lines(
        acc,
        title="Test accuracy (eval mode, noise off)",
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", format=".1%", title="test accuracy")],
        point=True,
    )


def loss_chart(loss: pd.DataFrame) -> alt.Chart:
    return variant_lines(
        loss,
        title="Training loss (every step, with the noise)",
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title="cross-entropy (log scale)", scale=alt.Scale(type="log")),
        tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", title="loss", format=".4f")],
        width=1.2,
    )


def distribution_chart(wide: pd.DataFrame, layer: int, view: str) -> alt.FacetChart:
    """15 / 50 / 85 % bands of one layer's input per net, one facet per net (facets share the width)."""
    base = alt.Chart(wide).encode(x=alt.X("step:Q", title="step"))
    tips = ["variant:N", "step:Q", *(alt.Tooltip(f"p{q}:Q", format=".3f", title=f"{q} %") for q in (15, 50, 85))]
    color = variant_color(wide, legend=None)
    band = base.mark_area(opacity=0.3).encode(y=alt.Y("p15:Q", title=f"layer {layer} input"), y2="p85:Q", color=color)
    median = base.mark_line(point=True).encode(y="p50:Q", color=color, tooltip=tips)
    what = "one unit" if view == "unit" else "all units"
    column = alt.Column("variant:N", title=f"15 / 50 / 85 % of {what}'s input", sort=["no norm", "BN", "noisy BN"])
    return alt.layer(band, median).properties(width=240, height=220).facet(column=column)
