"""Why BN Works, tab 4: scale invariance, and what it does to the learning rate: words, controls, charts.

The identities and verdicts come from :mod:`bn_core.experiments.why.scale`; the training
records (the BN net of tab 1) from :mod:`bn_core.experiments.why.weights`.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.why.noisy import NoisyConfig
from bn_core.experiments.why.scale import (
    ScaleConfig,
    ScaleResult,
    identity_rows,
    run_scale,
    scale_law_frames,
    scale_verdict,
    turn_verdict,
)
from bn_core.experiments.why.weights import weight_chart_frames, weight_verdict
from bn_core.progress import Progress
from bn_core.verdict import Verdict
from ui import widgets
from ui.cache import cached
from ui.charts import PALETTE, arrow_spec
from ui.sidebar import seed
from ui.why import noisy
from ui.why.shared import STATE, pick, variant_lines

TEXT = (
    "**Claim (seed text): BN makes a layer scale-invariant.** One Linear(8 → 4) → BN layer on a random "
    "float64 batch of 32, with a fixed random readout L = Σ r ⊙ y / N, through the hand-written "
    "`ManualBatchNorm` and torch's `nn.BatchNorm1d`. Multiply W by α:"
)
LATEX = (
    r"\mathrm{BN}\big(x(\alpha W)^\top + b\big) = \mathrm{BN}\big(xW^\top + b\big), \qquad "
    r"\nabla_{\alpha W} L = \tfrac{1}{\alpha}\,\nabla_W L, \qquad w_j \cdot \nabla_{w_j} L = 0"
)
TRAINING_TEXT = (
    "**The consequence: the effective learning rate falls as the weights grow.** Because ∇L ⊥ w and "
    "‖∇L‖ ∝ 1/‖w‖, an SGD step of size η turns w by tan θ = η‖∇_w L‖ / ‖w‖ ∝ η / ‖w‖², the *effective* "
    "learning rate. And every step makes w longer: ‖w − ηg‖² = ‖w‖² + η²‖g‖² (van Laarhoven 2017; "
    "Hoffer et al. 2018). So with a fixed η the step that matters shrinks by itself. Measured on the BN and "
    "no-norm nets of the *Noisy BN* tab (with that tab's learning rate and steps):"
)
TRY = (
    "Slide α from 0.01 to 100: do the errors stay at rounding level while the gradient spans four orders of magnitude?",
    "Pick the preset **Scale invariance with PyTorch's ε = 1e-5**: at α = 0.1, α²σ² approaches ε. Do the "
    "identities still hold? Which α makes them hold again?",
    "In the *Noisy BN* tab set the learning rate to 10, then come back: how do ‖W‖ and the turn per step change?",
)
ERROR_COLUMNS = {
    f"error ({be})": st.column_config.NumberColumn(f"error, {label}", format="%.2e")
    for be, label in (("manual", "ManualBatchNorm"), ("torch", "nn.BatchNorm1d"))
}
LAW_NAMES = {"grad_norm": "‖∇_αW L‖", "tan_turn": "tan θ (one SGD step)"}
WEIGHT_NAMES = {"angle_deg": "turn per step (degrees)", "eff_lr": "effective LR η / mean ‖w_j‖²"}


@dataclass(frozen=True, eq=False)
class ScalePanel:
    """The identities at α: the table and the two sentences."""

    table: pd.DataFrame  # identity, error (manual), error (torch)
    identities: Verdict
    turn: Verdict


@dataclass(frozen=True, eq=False)
class TrainingPanel:
    """The BN net's weights over training: two chart specs and the verdict."""

    norm_spec: dict
    turn_spec: dict
    verdict: Verdict


@cached(max_entries=32)
def compute(cfg: ScaleConfig, _progress: Progress | None = None) -> ScaleResult:
    return run_scale(cfg)


def config() -> ScaleConfig:
    return ScaleConfig(alpha=float(STATE["alpha"]), eps=float(STATE["eps"]), seed=seed())


def controls() -> ScaleConfig:
    a, b = st.columns([3, 2])
    widgets.grid_slider(STATE, "alpha", "Weight scale α (W → αW)", fmt="{:g}", where=a)
    widgets.grid_slider(STATE, "eps", "BN's ε", fmt="{:.0e}", where=b)
    return config()


@cached(max_entries=64)
def panel(cfg: ScaleConfig) -> ScalePanel:
    r = compute(cfg)
    rows = [(row.identity, row.manual, row.torch) for row in identity_rows(r)]
    table = pd.DataFrame(rows, columns=["identity", "error (manual)", "error (torch)"])
    return ScalePanel(table, scale_verdict(r), turn_verdict(r))


@cached(max_entries=64)
def spec(cfg: ScaleConfig) -> dict:
    measured, laws = scale_law_frames(compute(cfg).sweep)
    return arrow_spec(law_chart(measured, laws, cfg.alpha))


@cached(max_entries=32)
def training(cfg: NoisyConfig) -> TrainingPanel:
    r = noisy.compute(cfg)
    norms, turns = weight_chart_frames(r.weights)
    return TrainingPanel(arrow_spec(norm_chart(norms)), arrow_spec(turn_chart(turns)), weight_verdict(r.weight_summary))


def law_chart(measured: pd.DataFrame, laws: pd.DataFrame, alpha: float) -> alt.LayerChart:
    """Measured ‖∇_αW L‖ and tan θ over α, each relative to α = 1, against the predicted 1/α and 1/α²."""
    measured = measured.assign(metric=measured["metric"].map(lambda m: LAW_NAMES.get(m, m)))
    x = alt.X("alpha:Q", title="weight scale α (log)", scale=alt.Scale(type="log"))
    y = alt.Y("ratio:Q", title="value at α ÷ value at α = 1 (log)", scale=alt.Scale(type="log"))
    law = alt.Chart(laws).mark_line(strokeDash=[4, 4], color="#868E96").encode(x=x, y=y, detail="law:N")
    law = law.encode(tooltip=["law:N", alt.Tooltip("alpha:Q", format=".3g"), alt.Tooltip("ratio:Q", format=".4g")])
    dots = (
        alt.Chart(measured)
        .mark_point(filled=True, size=50)
        .encode(
            x=x,
            y=y,
            color=alt.Color("metric:N", title="measured", scale=alt.Scale(range=PALETTE[3:5])),
            tooltip=["metric:N", alt.Tooltip("alpha:Q", format=".3g"), alt.Tooltip("ratio:Q", format=".4g")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"alpha": [alpha]})).mark_rule(color="#495057", strokeDash=[2, 2])
    rule = rule.encode(x="alpha:Q", tooltip=[alt.Tooltip("alpha:Q", title="your α")])
    title = "Measured (dots) vs predicted (dashed: 1/α for the gradient, 1/α² for the turn)"
    return alt.layer(law, dots, rule, title=title).properties(height=280)


def norm_chart(data: pd.DataFrame) -> alt.Chart:
    return variant_lines(
        data,
        title="‖W‖ of each hidden layer over training",
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title="‖W‖ (Frobenius)"),
        tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g", title="‖W‖")],
        dash="layer",
        width=1.6,
    )


def turn_chart(data: pd.DataFrame) -> alt.Chart:
    data = data.assign(metric=data["metric"].map(lambda m: WEIGHT_NAMES.get(m, m)))
    chosen = pick("metric")
    legend = alt.Legend(orient="top", labelLimit=300)
    return (
        alt.Chart(data, title="BN net: does the same η turn the weights less and less?")
        .mark_line(strokeWidth=1.4)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="mean of 5 records (log)", scale=alt.Scale(type="log")),
            color=alt.Color("metric:N", title=None, scale=alt.Scale(range=PALETTE[4:6]), legend=legend),
            strokeDash=alt.StrokeDash("layer:O", title="layer"),
            opacity=alt.condition(chosen, alt.value(1.0), alt.value(0.12)),
            tooltip=["metric:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g")],
        )
        .add_params(chosen)
        .properties(height=250)
    )
