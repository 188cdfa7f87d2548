"""Train vs Inference, lab 3: fine-tuning a new head over a backbone frozen with ``requires_grad=False``."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bn_core.experiments.inference import (
    FT_CLASSES,
    FT_STEPS,
    FinetuneResult,
    InferenceConfig,
    finetune_lab,
    finetune_verdict,
)
from bn_core.verdict import Verdict
from ui import common
from ui.cache import cached
from ui.charts import arrow_spec
from ui.inference.helpers import two_panels
from ui.inference.run import compute

TITLE = "Frozen fine-tuning"
TEXT = (
    f"**Fine-tuning with `requires_grad=False`.** A new {FT_CLASSES}-class head (digits 0–{FT_CLASSES - 1}) "
    f"trained for {FT_STEPS} SGD steps on those digits only, over the trained backbone with `requires_grad=False`. "
    "The original-task accuracy uses the frozen backbone with the original 10-class head. Once with the model in "
    "train mode, once with every BN layer switched to eval mode."
)


@cached(max_entries=16)
def finetune(cfg: InferenceConfig, _progress=None) -> FinetuneResult:
    return finetune_lab(compute(cfg))


@cached(max_entries=16)
def finetune_spec(cfg: InferenceConfig) -> dict:
    titles = {"drift": "largest running_mean move (std)", "old_task_acc": "original task accuracy"}
    return arrow_spec(two_panels(finetune(cfg).trace, "step", "variant", titles, "fine-tuning step"))


@cached(max_entries=16)
def finetune_told(cfg: InferenceConfig) -> Verdict:
    """The lab's verdict, cached with its result: a rerun costs no pandas work."""
    return finetune_verdict(finetune(cfg))


def render_lab(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(finetune, cfg, label="Fine-tuning a new head…")
    if r is None:
        return None
    common.chart(finetune_spec(cfg))
    common.dataframe(r.summary, hide_index=True, column_config=common.number_config(r.summary))
    st.warning(finetune_told(cfg).text, icon=":material/balance:")
    return r.trace
