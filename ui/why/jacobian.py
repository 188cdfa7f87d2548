"""Why BN Works, tab 5: layer Jacobians at initialization: words, controls, cached run and charts.

The verdicts come from :mod:`bn_core.experiments.why.jacobian`.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.why.jacobian import (
    JacobianConfig,
    JacobianResult,
    grad_frame,
    run_jacobian,
    sv_band_frame,
    sv_histogram,
)
from bn_core.progress import Progress
from ui import widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.sidebar import seed
from ui.why.shared import STATE, variant_color, variant_lines

TEXT = (
    "**Claim (seed text): BN keeps the singular values of each layer's Jacobian near 1**, so a gradient "
    "crosses many layers without vanishing or exploding. Test: a deep MLP at initialization (the same "
    "weights with and without BN), one batch of N digits in train mode. For each hidden layer i ≥ 2, "
    "reverse-mode autograd (`torch.autograd.grad`, one vector-Jacobian product per output coordinate) gives "
    "the Jacobian of its output h_i with respect to its input h_(i−1) **for the "
    "whole batch**, an (N·W) × (N·W) matrix, because in train mode BN couples the examples of a batch "
    "(without BN it is block-diagonal, one W × W block per example). Singular values: "
    "`torch.linalg.svdvals`, in float64."
)
TRY = (
    "Switch to ReLU: how many of the plain net's singular values are 0 (inactive units)? What does BN do?",
    "Set the batch N to 1: can BN compute a variance from one example?",
    "Set N = 64 with W = 64: how large would the whole-batch Jacobian be?",
)


@dataclass(frozen=True)
class JacobianSpecs:
    bands: dict
    histogram: dict
    grads: dict


@cached(max_entries=16)
def compute(cfg: JacobianConfig, _progress: Progress | None = None) -> JacobianResult:
    return run_jacobian(cfg, _progress)


def config() -> JacobianConfig:
    return JacobianConfig(
        depth=int(STATE["jac_depth"]),
        width=int(STATE["jac_width"]),
        batch=int(STATE["jac_batch"]),
        activation=str(STATE["jac_act"]),
        seed=seed(),
    )


def controls() -> JacobianConfig:
    c = st.columns(4)
    widgets.choice(STATE, "jac_act", "Activation", where=c[0])
    widgets.slider(STATE, "jac_depth", "Hidden layers", where=c[1])
    widgets.choice(STATE, "jac_width", "Width W", style="radio", where=c[2])
    widgets.slider(STATE, "jac_batch", "Batch N", where=c[3])
    return config()


def layer_control(cfg: JacobianConfig) -> int:
    """The layer whose singular values are drawn, kept inside 2 … depth (the page says when it clamps)."""
    widgets.slider(STATE, "jac_layer", "Layer shown in the histogram")
    layer = int(STATE["jac_layer"])
    if layer > cfg.depth:
        st.info(f"The net has {cfg.depth} hidden layers; showing layer {cfg.depth} instead of {layer}.")
    return min(layer, cfg.depth)


@cached(max_entries=32)
def specs(cfg: JacobianConfig, layer: int) -> JacobianSpecs:
    r = compute(cfg)
    hist, erased = sv_histogram(r.svals, layer)
    return JacobianSpecs(
        arrow_spec(band_chart(sv_band_frame(r.layers))),
        arrow_spec(hist_chart(hist, layer, erased)),
        arrow_spec(grad_chart(grad_frame(r.grads))),
    )


def band_chart(wide: pd.DataFrame) -> alt.LayerChart:
    base = alt.Chart(wide).encode(
        x=alt.X("layer:Q", title="hidden layer i (Jacobian ∂h_i / ∂h_(i−1))", axis=alt.Axis(tickMinStep=1)),
        color=variant_color(wide),
    )
    tips = [
        "variant:N",
        "layer:Q",
        alt.Tooltip("sv_max:Q", format=".3g", title="largest"),
        alt.Tooltip("sv_p90:Q", format=".3g", title="90 %"),
        alt.Tooltip("sv_median:Q", format=".3g", title="median"),
        alt.Tooltip("sv_p10:Q", format=".3g", title="10 %"),
        alt.Tooltip("erased:Q", title="erased (= 0)"),
        alt.Tooltip("crushed:Q", title="shrunk > 1000×"),
    ]
    y = alt.Y("sv_p10:Q", title="singular value (log)", scale=alt.Scale(type="log"))
    band = base.mark_area(opacity=0.25).encode(y=y, y2="sv_p90:Q")
    median = base.mark_line(point=True).encode(y="sv_median:Q", tooltip=tips)
    one = alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(color="#868E96", strokeDash=[3, 3])
    one = one.encode(y="one:Q", tooltip=[alt.Tooltip("one:Q", title="singular value 1")])
    title = "Singular values per layer: median (line) and 10–90 % band of the non-erased ones; dashed: 1"
    return alt.layer(band, median, one, title=title).properties(height=260)


def hist_chart(hist: pd.DataFrame, layer: int, erased: str) -> alt.Chart:
    return (
        alt.Chart(hist, title=[f"Layer {layer}: log₁₀ singular values", f"(erased, not drawn: {erased})"])
        .mark_bar(opacity=0.55, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="log₁₀ singular value (0 ⇔ 1)"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="count", stack=None),
            color=variant_color(hist),
            tooltip=[
                "variant:N",
                alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                alt.Tooltip("bin_end:Q", format=".2f", title="to"),
                "count:Q",
            ],
        )
        .properties(height=260)
    )


def grad_chart(data: pd.DataFrame) -> alt.Chart:
    return variant_lines(
        data,
        title="‖∂L/∂h_i‖ from the output back to the input",
        x=alt.X("layer:Q", title="layer i (0 = input)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title="gradient norm (log)", scale=alt.Scale(type="log")),
        tooltip=["variant:N", "layer:Q", alt.Tooltip("value:Q", format=".3g", title="‖∂L/∂h‖")],
        point=True,
        height=260,
    )
