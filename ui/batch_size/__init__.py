"""Batch-Size Sensitivity page glue: the cached computations and chart specs, plus the modules it re-exports.

One module per section, mirroring :mod:`bn_core.experiments.batch_size`: ``noise``
(section 1), ``sweep`` (sections 2–3), ``one`` (section 4), ``non_iid`` (section 5), with
the state table in ``state`` and the train-on-click rules in ``jobs``. The cached
functions live here (not in a submodule) so that every cached function of the app is
found as ``ui.<page>.<name>``. Sentences come from ``bn_core.experiments.batch_size``
(its verdicts), and so do the check-yourself questions.
"""

from __future__ import annotations

from bn_core.experiments import batch_size as experiment
from bn_core.experiments.batch_size import (
    BatchOfOneResult,
    BatchSizeSweepConfig,
    BatchSizeSweepResult,
    NoiseConfig,
    NoiseResult,
    NoiseVerdicts,
    NonIIDConfig,
    NonIIDResult,
    SweepVerdicts,
    noise_verdicts,
    questions,
    run_batch_of_one,
    run_batch_size_sweep,
    run_noise,
    run_non_iid,
    sweep_verdicts,
    takeaway,
)
from bn_core.quiz import Question
from bn_core.verdict import Verdict
from ui.batch_size.jobs import finished, mark_finished, request, wants
from ui.batch_size.noise import FORMULA, JITTER_CAPTION, jitter_chart, noise_config, noise_controls, spread_chart
from ui.batch_size.non_iid import non_iid_chart, non_iid_config, non_iid_controls, non_iid_text
from ui.batch_size.one import OneView, functional_table, one_note, one_view, outcomes_table
from ui.batch_size.state import STATE
from ui.batch_size.sweep import (
    REMEDIES_TEXT,
    SWEEP_CAPTION,
    checked_sweep_config,
    lr_caption,
    paper_table,
    sweep_chart,
    sweep_controls,
    sweep_intro,
    sweep_table,
)
from ui.cache import cached
from ui.charts import arrow_spec

__all__ = [
    "STATE",
    "experiment",
    "FORMULA",
    "JITTER_CAPTION",
    "REMEDIES_TEXT",
    "SWEEP_CAPTION",
    "compute_noise",
    "noise_specs",
    "compute_sweep",
    "sweep_spec",
    "compute_non_iid",
    "non_iid_spec",
    "compute_one",
    "one_shown",
    "noise_told",
    "sweep_told",
    "closing",
    "check_questions",
    "finished",
    "wants",
    "request",
    "noise_controls",
    "noise_config",
    "sweep_controls",
    "checked_sweep_config",
    "sweep_intro",
    "lr_caption",
    "sweep_table",
    "paper_table",
    "non_iid_controls",
    "non_iid_config",
    "non_iid_text",
    "outcomes_table",
    "functional_table",
    "one_note",
]


@cached(max_entries=32)
def compute_noise(cfg: NoiseConfig, _progress=None) -> NoiseResult:
    return run_noise(cfg)


# Chart specs are cached too: building and validating the Altair charts costs more than the math.
@cached(max_entries=32)
def noise_specs(cfg: NoiseConfig) -> tuple[dict, dict]:
    result = compute_noise(cfg)
    return arrow_spec(spread_chart(result)), arrow_spec(jitter_chart(result))


@cached(max_entries=8)
def compute_sweep(cfg: BatchSizeSweepConfig, _progress=None) -> BatchSizeSweepResult:
    result = run_batch_size_sweep(cfg, _progress)
    mark_finished(cfg)
    return result


@cached(max_entries=16)
def sweep_spec(cfg: BatchSizeSweepConfig, train_mode: bool) -> dict:
    return arrow_spec(sweep_chart(compute_sweep(cfg), train_mode))


@cached(max_entries=8)
def compute_non_iid(cfg: NonIIDConfig, _progress=None) -> NonIIDResult:
    result = run_non_iid(cfg, _progress)
    mark_finished(cfg)
    return result


@cached(max_entries=8)
def non_iid_spec(cfg: NonIIDConfig) -> dict:
    return arrow_spec(non_iid_chart(compute_non_iid(cfg)))


@cached(max_entries=16)
def compute_one(seed: int) -> BatchOfOneResult:
    return run_batch_of_one(seed)


@cached(max_entries=16)
def one_shown(seed: int) -> OneView:
    """Section 4's tables and sentences: pandas work done once per seed, not on every rerun."""
    return one_view(compute_one(seed))


# The sentences and questions are cached with their results: a student's rerun then costs no pandas work.
@cached(max_entries=32)
def noise_told(cfg: NoiseConfig) -> NoiseVerdicts:
    return noise_verdicts(compute_noise(cfg))


@cached(max_entries=16)
def sweep_told(cfg: BatchSizeSweepConfig) -> SweepVerdicts:
    return sweep_verdicts(compute_sweep(cfg))


@cached(max_entries=32)
def closing(noise_cfg: NoiseConfig, sweep_cfg: BatchSizeSweepConfig | None) -> Verdict:
    """The takeaway, from the noise result and the sweep (when it was trained)."""
    return takeaway(compute_noise(noise_cfg), None if sweep_cfg is None else compute_sweep(sweep_cfg))


@cached(max_entries=32)
def check_questions(noise_cfg: NoiseConfig, seed: int, sweep_cfg: BatchSizeSweepConfig | None) -> tuple[Question, ...]:
    sweep = None if sweep_cfg is None else compute_sweep(sweep_cfg)
    return questions(compute_noise(noise_cfg), compute_one(seed), sweep)
