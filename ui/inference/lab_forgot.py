"""Train vs Inference, lab 1: forgot ``model.eval()``: accuracy by prediction batch size in both modes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bn_core.experiments.inference import ForgotEvalResult, InferenceConfig, forgot_eval_lab, forgot_verdict
from bn_core.verdict import Verdict
from ui import charts, common
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.helpers import log2_x
from ui.inference.run import compute

TITLE = "Forgot model.eval()"
TEXT = (
    "**Forgot `model.eval()`.** The trained network predicts the test set in batches of 1 … 128, once in "
    "train mode (each batch normalized with its own statistics) and once in eval mode. A batch of one "
    "cannot be normalized in train mode: its variance is 0. Below, the real error texts."
)


@cached(max_entries=16)
def forgot(cfg: InferenceConfig, _progress=None) -> ForgotEvalResult:
    return forgot_eval_lab(compute(cfg))


@cached(max_entries=16)
def forgot_spec(cfg: InferenceConfig) -> dict:
    frame = forgot(cfg).accuracy.dropna()
    chart = charts.lines(frame, x="batch_size", y="accuracy", color="mode", y_title="test accuracy", points=True)
    return arrow_spec(chart.encode(x=log2_x("batch_size", "prediction batch size (log scale)")).properties(height=240))


@cached(max_entries=16)
def forgot_told(cfg: InferenceConfig) -> Verdict:
    """The lab's verdict, cached with its result: a rerun costs no pandas work."""
    return forgot_verdict(forgot(cfg))


def render_lab(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(forgot, cfg, label="Predicting in train and eval mode…")
    if r is None:
        return None
    for e in r.errors:
        st.code(f"{e.impl}, train mode, batch of 1:\n{e.text}", language=None, wrap_lines=True)
    common.chart(forgot_spec(cfg))
    st.warning(forgot_told(cfg).text, icon=":material/balance:")
    return r.accuracy
