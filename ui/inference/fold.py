"""Train vs Inference, section 4: BN folding for deployment: the check, the live timing, what folds."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.inference import FoldResult, FoldVerdicts, InferenceConfig, fold_lab, fold_verdicts
from ui import charts
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.run import compute

FOLD_TEX = (
    r"W' = \frac{\gamma}{\sigma}\,W, \qquad b' = \frac{\gamma\,(b-\texttt{running\_mean})}{\sigma}+\beta,"
    r"\qquad \sigma = \sqrt{\texttt{running\_var}+\epsilon}"
)
FOLD_NAMES = {"mlp": "the page's MLP (Linear → BN1d)", "cnn": "a small CNN (Conv → BN2d), trained here"}
FOLD_NOTE = (
    "Foldable: BN right after a Linear or Conv (as here), and BN after the activation in the MLP (folded into the "
    "*next* Linear instead). Not foldable: BN after the activation in front of a zero-padded conv (the padding "
    "zeros would land on the wrong side of BN), layer/group/instance norm (per-example statistics at inference "
    "too), and BN without running statistics. The folded net has no BN left: one Linear/Conv per block."
)
FOLD_COLUMNS = {
    "max_abs_diff": st.column_config.NumberColumn("max |folded − unfolded|", format="%.2e"),
    "max_abs_output": st.column_config.NumberColumn("max |output|", format="%.2f"),
    "tolerance": st.column_config.NumberColumn(format="%.1e"),
    "same_predictions": st.column_config.NumberColumn("same predictions", format="percent"),
}


@dataclass(frozen=True)
class FoldView:
    verdicts: FoldVerdicts  # the exactness check and the speed sentence
    checks: pd.DataFrame  # dtype, inputs, max_abs_diff, max_abs_output, tolerance, ok, same_predictions


@cached(max_entries=16)
def folding(cfg: InferenceConfig, arch: str, _progress=None) -> FoldResult:
    """Timings are measured once, when this entry is first computed, on this server."""
    return fold_lab(compute(cfg), arch, progress=_progress)


@cached(max_entries=16)
def fold_view(cfg: InferenceConfig, arch: str, _progress=None) -> FoldView:
    r = folding(cfg, arch, _progress=_progress)
    return FoldView(verdicts=fold_verdicts(r), checks=r.checks)


def fold_chart(timing: pd.DataFrame) -> alt.FacetChart:
    return (
        alt.Chart(timing)
        .mark_bar()
        .encode(
            y=alt.Y("variant:N", title=None, sort=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("median_ms:Q", title="median time per forward pass (ms)"),
            color=alt.Color("variant:N", scale=alt.Scale(range=charts.PALETTE), legend=None),
            tooltip=["variant:N", "batch_size:Q", alt.Tooltip("median_ms:Q", format=".4f")],
        )
        .properties(width=280, height=110)
        .facet(column=alt.Column("batch_size:O", title="batch size"))
        .resolve_scale(x="independent")
        .properties(description="Live timing: folded vs unfolded forward passes, measured on this server")
    )


@cached(max_entries=16)
def fold_spec(cfg: InferenceConfig, arch: str) -> dict:
    return arrow_spec(fold_chart(folding(cfg, arch).timing))
