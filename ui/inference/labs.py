"""Train vs Inference, section 3: the misconception labs, one at a time, and the fallback for no choice.

Each lab module holds its words, its cached computation and chart, and a ``render_lab`` that
draws it and returns the lab's numbers for the CSV download.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pandas as pd

from bn_core.experiments.inference import InferenceConfig
from ui.inference import lab_finetune, lab_forgot, lab_lag, lab_shift, lab_validation
from ui.inference.page import DEFAULT_LAB, LAB_KEYS

LAB_MODULES: dict[str, ModuleType] = dict(
    zip(LAB_KEYS, (lab_forgot, lab_validation, lab_finetune, lab_shift, lab_lag), strict=True)
)
LABS = {key: module.TITLE for key, module in LAB_MODULES.items()}  # key → the segmented control's label


def lab_key(value: object) -> str:
    """The lab a control value names, or the default lab for anything else (a deselected segmented
    control gives None in the browser): the section never looks up a missing key."""
    return value if isinstance(value, str) and value in LAB_MODULES else DEFAULT_LAB


def lab_label(key: object) -> str:
    """The segmented control's label of a lab (any other value: its text, never a KeyError)."""
    return LABS.get(key, str(key)) if isinstance(key, str) else str(key)


def lab_text(key: str) -> str:
    return LAB_MODULES[lab_key(key)].TEXT


def render_selected(key: str, cfg: InferenceConfig) -> pd.DataFrame | None:
    """Draw one lab; return its numbers (for the CSV), or None when its computation failed."""
    render: Callable[[InferenceConfig], pd.DataFrame | None] = LAB_MODULES[lab_key(key)].render_lab
    return render(cfg)
