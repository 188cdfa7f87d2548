"""Batch-Size Sensitivity, section 4: the batch-of-one tables."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bn_core.experiments.batch_size import BatchOfOneResult, one_verdict
from ui import common

__all__ = ["OneView", "one_view", "outcomes_table", "functional_table", "one_note"]


def one_note(r: BatchOfOneResult) -> str:
    per_channel = int(r.spatial["values_per_channel"].iloc[0])
    return (
        "Eval mode is fine with one example (it uses the running statistics), and so is BatchNorm2d on one image: "
        f"each channel still has H·W values (here {per_channel}), so its statistics are that image's own, like "
        "instance norm. Group norm never needs a second example."
    )


def outcomes_table(r: BatchOfOneResult) -> pd.DataFrame:
    table = r.outcomes.rename(columns={"input_shape": "input", "outcome": "result"})
    return table.set_index("implementation")


def functional_table(r: BatchOfOneResult) -> pd.DataFrame:
    return r.functional


@dataclass(frozen=True)
class OneView:
    """What section 4 draws, made once per result (cached by ``ui.batch_size.one_shown``)."""

    outcomes: pd.DataFrame
    verdict: str
    functional: pd.DataFrame
    functional_columns: dict
    note: str


def one_view(r: BatchOfOneResult) -> OneView:
    table = functional_table(r)
    return OneView(outcomes_table(r), one_verdict(r).text, table, common.formats(table, "%.3g"), one_note(r))
