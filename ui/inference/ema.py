"""Train vs Inference, section 1: the EMA of one unit, the momentum conventions, Bessel's correction.

Cached views of the shared run for one (layer, unit), the EMA chart spec, the momentum
table, and the batch-of-1 lesson (the section's content when B = 1). Every sentence is a
``Verdict`` from ``bn_core.experiments.inference.ema``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import pandas as pd

from bn_core.experiments.inference import (
    BatchOfOne,
    Bessel,
    InferenceConfig,
    batch_of_one,
    bessel_table,
    bessel_verdict,
    ema_legend,
    ema_slice,
    final_stats,
    momentum_table,
    unit_verdict,
)
from bn_core.verdict import Verdict, num
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.run import compute

EMA_COLORS = {"batch (μ_B, σ²_B)": "#ADB5BD", "running (EMA)": "#4C6EF5", "precise BN (population)": "#F76707"}


@dataclass(frozen=True)
class UnitView:
    """What section 1 shows about one unit of the trained run."""

    sentence: Verdict  # final EMA vs population statistics
    legend: str  # what the chart's three series are
    bessel: Bessel  # the numbers behind the unbiased update
    bessel_text: Verdict  # did the correction bring σ²_B closer to the population variance?
    csv: bytes  # the unit's statistics over training


def ema_latex(momentum: float | None) -> list[str]:
    """The EMA update of both buffers, with the code's symbols (1/k for a cumulative average)."""
    m = r"\texttt{momentum}" if momentum is not None else r"\tfrac{1}{k}"
    rm, rv = r"\texttt{running\_mean}", r"\texttt{running\_var}"
    return [
        rf"{rm} \leftarrow (1 - {m})\cdot {rm} + {m}\cdot \mu_\mathcal{{B}}",
        rf"{rv} \leftarrow (1 - {m})\cdot {rv} + {m}\cdot \frac{{m}}{{m-1}}\,\sigma^2_\mathcal{{B}}",
    ]


MOMENTUM_NOTE = (
    "The momentum never changes training itself: train mode normalizes with μ_B and σ²_B, so for one seed every "
    "momentum gives bitwise the same weights (a test proves it); only the statistics eval mode uses, and its "
    "accuracy, differ."
)


def _momentum_frame() -> pd.DataFrame:
    """The conversion table as text; momentum=None has no fixed Keras value or half-life (1/k at step k)."""
    table = momentum_table()
    text = table.map(lambda v: num(v, 4) if isinstance(v, float) and not math.isnan(v) else "— (1/k at step k)")
    text["pytorch_momentum"] = table["pytorch_momentum"]
    return text.rename(
        columns={
            "pytorch_momentum": "PyTorch momentum",
            "keras_momentum": "Keras momentum",
            "half_life_ln2_over_m": "half-life ln2/m (steps)",
            "half_life_exact": "exact half-life (steps)",
            "weight_last_10": "weight of the last 10 batches",
        }
    )


MOMENTUM_FRAME = _momentum_frame()  # static: computed once per process, shown on every rerun


@cached(max_entries=64)
def unit_view(cfg: InferenceConfig, layer: int, feature: int) -> UnitView:
    """One unit's final EMA vs precise BN, the Bessel numbers, and its statistics over training as CSV."""
    run = compute(cfg)
    bessel = bessel_table(run, layer, feature)
    return UnitView(
        sentence=unit_verdict(final_stats(run, layer, feature)),
        legend=ema_legend(run),
        bessel=bessel,
        bessel_text=bessel_verdict(bessel),
        csv=ema_slice(run, layer, feature).to_csv(index=False).encode(),
    )


def bessel_latex(b: Bessel) -> str:
    """m/(m−1) and the last batch's σ²_B before and after the correction, with this run's numbers."""
    return (
        rf"\frac{{m}}{{m-1}} = \frac{{{b.m}}}{{{b.m - 1}}} = {num(b.factor, 5)}, \qquad "
        rf"\sigma^2_\mathcal{{B}} = {num(b.var_B, 5)} \;\rightarrow\; \frac{{m}}{{m-1}}\,\sigma^2_\mathcal{{B}}"
        rf" = {num(b.var_unbiased, 5)}"
    )


def ema_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Mean (top) and variance (bottom) of one unit: every batch, the EMA, and precise BN every k steps."""
    pick = alt.selection_point(fields=["series"], bind="legend")
    domain, colors = list(EMA_COLORS), list(EMA_COLORS.values())
    base = alt.Chart().encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=domain, range=colors)),
        opacity=alt.condition(pick, alt.value(0.95), alt.value(0.12)),
        tooltip=["series:N", "stat:N", "step:Q", alt.Tooltip("value:Q", format=".5g")],
    )
    lines = base.transform_filter(f"datum.series != '{domain[-1]}'").mark_line(strokeWidth=2).add_params(pick)
    dots = base.transform_filter(f"datum.series == '{domain[-1]}'").mark_line(point=True, strokeWidth=2)
    return (
        alt.layer(lines, dots, data=frame)
        .properties(height=170, width=300)
        .facet(row=alt.Row("stat:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(y="independent")
    )


# Chart specs are cached too: building and validating Altair charts costs more than the math.
@cached(max_entries=64)
def ema_spec(cfg: InferenceConfig, layer: int, feature: int) -> dict:
    return arrow_spec(ema_chart(ema_slice(compute(cfg), layer, feature)))


@cached(max_entries=8)
def batch_one(cfg: InferenceConfig) -> BatchOfOne:
    """The batch-of-1 lesson with this network's (seeded, untrained) first layer."""
    return batch_of_one(cfg)
