"""What Training Comparison says about one result: the per-net outcomes, the summary table and every verdict.

:func:`comparison_report` reads a :class:`ComparisonResult` for one view (target accuracy,
layer, band kind) and returns a frozen :class:`ComparisonReport`: the numbers the page
quotes, the summary table, the "diverged at step k" and batch-of-1 notes, and the
verdicts of :mod:`~bn_core.experiments.training.verdicts`. The page reads its
attributes; no sentence is written anywhere else.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from bn_core.experiments.training.comparison import ComparisonResult
from bn_core.experiments.training.measures import band_drift, mean_by_variant, median_grad_norm, steps_to_target
from bn_core.experiments.training.verdicts import (
    Outcome,
    drift_verdict,
    reach_phrase,
    saturation_verdict,
    speed_verdict,
    takeaway,
)
from bn_core.verdict import Verdict, pct

__all__ = ["ComparisonReport", "comparison_report", "outcomes", "comparison_table", "notes"]


@dataclass(frozen=True, eq=False)
class ComparisonReport:
    """Everything the page says about one comparison, for one target, layer and band kind."""

    target: float  # the target test accuracy (a fraction)
    layer: int  # the layer whose band drift is quoted
    chance: float  # 1 / classes
    bn: Outcome | None  # None when BN was not trained (batch of 1)
    plain: Outcome  # the net without normalization
    table: pd.DataFrame  # one row per variant: status, final accuracies, steps to the target, band drift
    notes: tuple[str, ...]  # "no norm: diverged at step k …" and the batch-of-1 lesson, shown in place
    speed: Verdict  # section 1
    drift: Verdict  # section 2
    saturation: Verdict  # section 4
    takeaway: Verdict  # the closing sentence


def outcomes(result: ComparisonResult, target: float, layer: int, which: Literal["unit", "pre"]) -> dict[str, Outcome]:
    """One :class:`Outcome` per trained variant."""
    metric = "zero_frac" if result.config.activation == "relu" else "saturation"
    reached = steps_to_target(result.curves, target)
    drift, sat = band_drift(result.layers, layer, which), mean_by_variant(result.layers, metric)
    grad = median_grad_norm(result.layers, 1)
    out = {}
    for row in result.summary.itertuples():
        if row.variant not in result.trained:
            continue
        step = reached.get(row.variant, pd.NA)
        out[row.variant] = Outcome(
            variant=row.variant,
            final_test_acc=float(row.final_test_acc),
            steps_to_target=None if pd.isna(step) else int(step),
            diverged_at=None if pd.isna(row.diverged_at) else int(row.diverged_at),
            band_drift=float(drift.get(row.variant, math.nan)),
            saturation=float(sat.get(row.variant, math.nan)),
            grad_norm_1=float(grad.get(row.variant, math.nan)),
        )
    return out


def comparison_table(result: ComparisonResult, found: dict[str, Outcome], target: float, layer: int) -> pd.DataFrame:
    """One row per variant: fate, final accuracies and loss, steps to the target, and the Fig. 1 band drift."""
    table = result.summary.drop(columns=["diverged_at"]).copy()
    steps = [found[v].steps_to_target if v in found else None for v in table["variant"]]
    table[f"steps to {pct(target, 0)} test acc"] = ["not reached" if s is None else str(s) for s in steps]
    table[f"band drift, layer {layer}"] = [found[v].band_drift if v in found else math.nan for v in table["variant"]]
    return table


def notes(result: ComparisonResult) -> tuple[str, ...]:
    """The lessons a section shows in place of a missing curve: a skipped side, a diverged run."""
    lessons = [s.note for s in result.skipped]
    for row in result.summary.itertuples():
        if not pd.isna(row.diverged_at):
            lessons.append(
                f"**{row.variant}: diverged at step {int(row.diverged_at)}**: its loss became NaN or infinite, "
                "so its curves stop there. Lower the learning rate or the init scale."
            )
    return tuple(lessons)


_NO_BN = "**BN** was not trained (see the note in section 1), so there is nothing to compare"


def _missing(plain: Outcome | None = None, target: float = 0.0, steps: int = 0) -> Verdict:
    """A verdict's place when BN was not trained: what the other net did, and that there is no comparison."""
    if plain is None:
        return Verdict(False, f"Only the net without normalization is shown: {_NO_BN}.")
    return Verdict(False, f"{reach_phrase(plain, target, steps)}; {_NO_BN}.")


def comparison_report(
    result: ComparisonResult, target: float, layer: int, which: Literal["unit", "pre"] = "unit"
) -> ComparisonReport:
    """The numbers, table, notes and verdicts of one view of ``result``."""
    found = outcomes(result, target, layer, which)
    bn, plain = found.get("BN"), found["no norm"]
    chance, steps, activation = 1 / result.n_classes, result.config.steps, result.config.activation
    return ComparisonReport(
        target=target,
        layer=layer,
        chance=chance,
        bn=bn,
        plain=plain,
        table=comparison_table(result, found, target, layer),
        notes=notes(result),
        speed=speed_verdict(bn, plain, target, steps) if bn else _missing(plain, target, steps),
        drift=drift_verdict(bn, plain, layer) if bn else _missing(),
        saturation=saturation_verdict(bn, plain, activation) if bn else _missing(),
        takeaway=takeaway(bn, plain, target, chance, steps),
    )
