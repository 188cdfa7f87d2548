"""Batch-Size Sensitivity, section 1: the noise controls, their config and the two chart specs."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.batch_size import NoiseConfig, NoiseResult
from ui import charts, widgets
from ui.batch_size.state import STATE
from ui.sidebar import seed

__all__ = ["noise_controls", "noise_config", "spread_chart", "jitter_chart", "FORMULA", "JITTER_CAPTION"]

FORMULA = (
    r"\mathrm{std}(\mu_\mathcal{B}) = \frac{\sigma}{\sqrt{m}}, \qquad \mathrm{Var}(\sigma^2_\mathcal{B}) = "
    r"\frac{(m-1)^2}{m^3}\left(\mu_4 - \frac{m-3}{m-1}\,\sigma^4\right)"
)
JITTER_CAPTION = "Whisker: 5th–95th percentile; bar: 25th–75th; tick: median; dashed: (x − μ)/σ."
STAT_LABELS = {"mu_B": "std of μ_B", "var_B": "std of σ²_B"}


def noise_controls() -> None:
    a, b, c, d = st.columns(4)
    widgets.choice(STATE, "pop", "Population", where=a)
    widgets.slider(STATE, "R", "Batches drawn per size", step=100, where=b)
    widgets.grid_slider(STATE, "m_max", "Largest batch m", fmt="{:.0f}", where=c)
    widgets.slider(STATE, "q", "Tracked example (population quantile)", step=0.01, where=d)


def noise_config() -> NoiseConfig:
    return NoiseConfig(
        population=STATE["pop"],
        n_batches=int(STATE["R"]),
        m_max=int(STATE["m_max"]),
        tracked_quantile=float(STATE["q"]),
        seed=seed(),
    )


def spread_chart(r: NoiseResult) -> alt.LayerChart:
    """Empirical spread (points) and theory (lines) of μ_B and σ²_B vs m, log-log. σ²_B ≡ 0 at m = 1 is left off."""
    label = {"statistic": lambda d: d["statistic"].map(STAT_LABELS)}
    data = r.spread[r.spread["value"] > 0].assign(**label)
    data = data.merge(r.ratio.assign(**label)[["m", "statistic", "ratio"]], on=["m", "statistic"])
    color = alt.Color("statistic:N", title=None, scale=alt.Scale(range=charts.PALETTE))
    x = alt.X("m:Q", title="batch size m (log scale)", scale=alt.Scale(type="log", base=2))
    y = alt.Y("value:Q", title="std across batches (log scale)", scale=alt.Scale(type="log"))
    tips = [
        "statistic:N",
        "source:N",
        "m:Q",
        alt.Tooltip("value:Q", format=".4g"),
        alt.Tooltip("ratio:Q", format=".3f"),
    ]
    theory = alt.Chart(data[data["source"] == "theory"]).mark_line(strokeDash=[5, 3]).encode(x, y, color, tooltip=tips)
    measured = data[data["source"] == "empirical"]
    points = alt.Chart(measured).mark_point(filled=True, size=70).encode(x, y, color, tooltip=tips)
    return alt.layer(theory, points).properties(height=280, title="Dashed: theory · dots: measured")


def jitter_chart(r: NoiseResult) -> alt.LayerChart:
    """The tracked example's x̂ across batches, per m: 5-95 % whisker, 25-75 % box, median tick; dashed: true z."""
    wide = r.jitter.pivot(index="m", columns="metric", values="value").reset_index()
    x = alt.X("m:Q", title="batch size m (log scale)", scale=alt.Scale(type="log", base=2))
    tips = ["m:Q", *(alt.Tooltip(f"{c}:Q", format=".3f") for c in ("p05", "p25", "p50", "p75", "p95", "std"))]
    base = alt.Chart(wide).encode(x, tooltip=tips)
    y = alt.Y("p05:Q", title="x̂ of the followed example")
    whisker = base.mark_rule(color=charts.PALETTE[0]).encode(y, y2="p95")
    box = base.mark_rule(strokeWidth=10, color=charts.PALETTE[0], opacity=0.5).encode(y="p25:Q", y2="p75")
    median = base.mark_tick(color="black", thickness=2, size=14).encode(y="p50:Q")
    truth = (
        alt.Chart(pd.DataFrame({"z": [r.z0]}))
        .mark_rule(strokeDash=[6, 4], color=charts.PALETTE[1])
        .encode(y="z:Q", tooltip=[alt.Tooltip("z:Q", format=".3f", title="(x − μ)/σ, population")])
    )
    return alt.layer(whisker, box, median, truth).properties(height=260)
