"""Train vs Inference, the shared run: the cached training run every section reads, and its overview.

One config = one cache entry shared by every student (30 students, one run). A batch of 1
cannot train BN: the sections that only need a trained network read the run at
``trainable_config(cfg)`` (B = 2), and section 1 explains why.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from bn_core.experiments.inference import (
    GapVerdicts,
    InferenceConfig,
    InferenceRun,
    gap_verdicts,
    run_inference,
    run_verdict,
    stand_in_note,
    trainable_config,
)
from bn_core.verdict import Verdict
from ui import common
from ui.cache import cached


@dataclass(frozen=True)
class Overview:
    """The few facts of the shared run that every section needs (a few hundred bytes to unpickle)."""

    trained: InferenceConfig  # the config actually trained (B = 2 stands in for a batch of 1)
    stand_in: Verdict | None  # for B = 1: which network the other sections use instead; else None
    diverged_at: int | None  # first non-finite step, else None
    summary: Verdict  # what was trained and how it ended
    gaps: tuple[GapVerdicts, ...]  # per BN layer, in order (read with :meth:`gap`); empty for a diverged run

    def gap(self, layer: int) -> GapVerdicts:
        """The gap sentences of BN layer ``layer`` (1-based, as on the page)."""
        return self.gaps[layer - 1]


@cached(max_entries=24)
def compute(cfg: InferenceConfig, _progress=None) -> InferenceRun:
    return run_inference(cfg, progress=_progress)


# A rerun unpickles a few kilobytes instead of the whole recorded run (2.7 MB), and the text is
# not recomputed for each student.
@cached(max_entries=24)
def overview(cfg: InferenceConfig, _progress=None) -> Overview:
    """Trains the run on a cache miss (with the progress bar)."""
    trained = trainable_config(cfg)
    run = compute(trained, _progress=_progress)
    layers = range(1, trained.depth + 1) if run.diverged_at is None else ()
    return Overview(
        trained=trained,
        stand_in=stand_in_note(cfg),
        diverged_at=run.diverged_at,
        summary=run_verdict(run),
        gaps=tuple(gap_verdicts(run, layer) for layer in layers),
    )


def render_guard(view: Overview | None) -> Overview:
    """In a section that needs the trained network: end it in place when there is none (the run failed
    above, or diverged: then say so here), else hand the overview on."""
    common.need(view)
    if view.diverged_at is not None:
        st.error(view.summary.text, icon=":material/trending_up:")
        common.halt()
    return view
