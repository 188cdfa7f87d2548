"""Train vs Inference, lab 4: shifted test inputs with the training statistics, and AdaBN."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.inference import InferenceConfig, ShiftResult, shift_lab, shift_verdict
from bn_core.verdict import Verdict, pct
from ui import charts, common, widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.page import STATE
from ui.inference.run import compute

TITLE = "Domain shift + AdaBN"
TEXT = (
    "**Domain shift.** Every test pixel becomes a·x + b (+ noise). The network still normalizes with the "
    "training set's running statistics. **AdaBN** recomputes them on the shifted test inputs (no labels), "
    "keeping every weight."
)


@cached(max_entries=32)
def shift(cfg: InferenceConfig, a: float, b: float, noise: float, _progress=None) -> ShiftResult:
    return shift_lab(compute(cfg), a, b, noise)


@cached(max_entries=32)
def shift_spec(cfg: InferenceConfig, a: float, b: float, noise: float) -> dict:
    sweep = shift(cfg, a, b, noise).sweep
    line = charts.lines(sweep, x="brightness", y="accuracy", color="variant", x_title="brightness shift b",
                        y_title="test accuracy", points=True, height=240)  # fmt: skip
    rule = alt.Chart(pd.DataFrame({"brightness": [b]})).mark_rule(strokeDash=[4, 3]).encode(x="brightness:Q")
    return arrow_spec(alt.layer(line, rule))


@cached(max_entries=16)
def shift_told(cfg: InferenceConfig, a: float, b: float, noise: float) -> Verdict:
    """The lab's verdict, cached with its result: a rerun costs no pandas work."""
    return shift_verdict(shift(cfg, a, b, noise))


def render_lab(cfg: InferenceConfig) -> pd.DataFrame | None:
    a, b, c = st.columns(3)
    widgets.slider(STATE, "a", "Contrast a (x → a·x + b)", step=0.1, where=a)
    widgets.slider(STATE, "b", "Brightness b", step=0.1, where=b)
    widgets.slider(STATE, "noise", "Pixel noise σ", step=0.05, where=c)
    args = (float(STATE["a"]), float(STATE["b"]), float(STATE["noise"]))
    r = common.run(shift, cfg, *args, label="Shifting the test set and recomputing statistics…")
    if r is None:
        return None
    for col, (name, value) in zip(st.columns(3), (("clean", r.clean), ("shifted", r.shifted),
                                                  ("shifted + AdaBN", r.adapted)), strict=True):  # fmt: skip
        col.metric(name, pct(value))
    common.chart(shift_spec(cfg, *args))
    st.warning(shift_told(cfg, *args).text, icon=":material/balance:")
    return r.sweep
