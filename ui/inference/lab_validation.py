"""Train vs Inference, lab 2: a validation loop run in train mode, shuffled and class-sorted."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bn_core.experiments.inference import InferenceConfig, ValidationResult, validation_lab, validation_verdict
from bn_core.verdict import Verdict
from ui import common
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.helpers import two_panels
from ui.inference.run import compute

TITLE = "Validation in train mode"
TEXT = (
    "**Validation run in train mode.** The trained network 'validates' on the test set with BN in train "
    "mode, batch B, as a forgotten `model.eval()` in a validation loop would, once shuffled and once "
    "class-sorted. After every validation batch the test set is scored properly in eval mode."
)


@cached(max_entries=16)
def validation(cfg: InferenceConfig, _progress=None) -> ValidationResult:
    return validation_lab(compute(cfg))


@cached(max_entries=16)
def validation_spec(cfg: InferenceConfig) -> dict:
    titles = {"eval_acc": "eval-mode test accuracy", "drift": "largest running_mean move (std)"}
    return arrow_spec(
        two_panels(validation(cfg).trace, "batch", "order", titles, "validation batches run in train mode")
    )


@cached(max_entries=16)
def validation_told(cfg: InferenceConfig) -> Verdict:
    """The lab's verdict, cached with its result: a rerun costs no pandas work."""
    return validation_verdict(validation(cfg))


def render_lab(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(validation, cfg, label="Validating in train mode…")
    if r is None:
        return None
    common.chart(validation_spec(cfg))
    common.dataframe(r.summary, hide_index=True, column_config=common.number_config(r.summary))
    st.warning(validation_told(cfg).text, icon=":material/balance:")
    return r.trace
