"""Training Comparison: the same network trained with and without batch norm, side by side.

Every curve comes from real training by :func:`bn_core.train.train` (one run per net) or
by the stacked sweep engine :mod:`bn_core.sweep` (grids of learning rates, init scales
and depths, several seeds each). A frozen :class:`ComparisonConfig` (or
:class:`GridConfig`) goes in; long-format DataFrames come out, and every sentence the
page shows about them is a :class:`~bn_core.verdict.Verdict` decided by their numbers.

One module per section of the page:

==================  ===========================================================================
``config``          :class:`ComparisonConfig`, the two engine configs, snapshot steps, the cost guard
``comparison``      sections 1–4: :func:`run_comparison` (both nets, every record; BN skipped at batch 1)
``histograms``      section 3: the pre-binned layer histograms
``measures``        numbers read off the records: steps to a target, Fig. 1 bands and drift
``report``          what the page says about one view: outcomes, summary table, notes, verdicts
``verdicts``        the sentences and the thresholds that decide them
``grids``           section 5: learning-rate, init-scale and depth grids through the sweep engine
``backends``        section 6: manual BN vs torch BN
``quiz``            check yourself: questions from the live result
==================  ===========================================================================

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 — Fig. 1 (3 × 100 sigmoid units, batch
60, SGD; the 15/50/85 percentiles of a layer input over training), §4.2.1 (higher
learning rates, BN-x5 and BN-x30), §3.3 (less sensitivity to the parameter scale), §3.1
(sigmoid saturation); Santurkar et al. 2018, arXiv:1805.11604.
"""

from bn_core.experiments.training.backends import BACKEND_VARIANTS, BackendCheck, run_backend_check
from bn_core.experiments.training.comparison import ComparisonResult, Skipped, run_comparison
from bn_core.experiments.training.config import (
    VARIANTS,
    ComparisonConfig,
    estimated_seconds,
    n_layers,
    side_config,
    snapshot_steps,
)
from bn_core.experiments.training.grids import (
    GRID_AXES,
    GridConfig,
    GridResult,
    grid_config,
    grid_estimated_seconds,
    grid_summary,
    grid_values,
    run_grid,
)
from bn_core.experiments.training.measures import band_drift, percentile_bands, steps_to_target
from bn_core.experiments.training.quiz import questions
from bn_core.experiments.training.report import ComparisonReport, comparison_report
from bn_core.experiments.training.verdicts import Outcome, grid_divergence, grid_verdict

__all__ = [
    "ComparisonConfig",
    "ComparisonResult",
    "ComparisonReport",
    "Outcome",
    "Skipped",
    "GridConfig",
    "GridResult",
    "BackendCheck",
    "VARIANTS",
    "BACKEND_VARIANTS",
    "GRID_AXES",
    "run_comparison",
    "comparison_report",
    "run_grid",
    "run_backend_check",
    "estimated_seconds",
    "grid_estimated_seconds",
    "side_config",
    "grid_config",
    "grid_values",
    "grid_summary",
    "grid_verdict",
    "grid_divergence",
    "n_layers",
    "snapshot_steps",
    "steps_to_target",
    "percentile_bands",
    "band_drift",
    "questions",
]
