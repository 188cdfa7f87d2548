"""Batch-Size Sensitivity: BN's statistics are estimates from the batch, so small batches make them noisy.

One module per section of the page, each a frozen config in and a frozen result (of
long-format DataFrames) out, with the page's sentences as typed verdicts:

1. :mod:`~bn_core.experiments.batch_size.noise`: the spread of ``mu_B`` and ``var_B``
   against exact theory, and one example's ``x_hat`` jitter.
2. :mod:`~bn_core.experiments.batch_size.sweep` (config, run, summary) with
   :mod:`~bn_core.experiments.batch_size.variants` (the norms and their settings) and
   :mod:`~bn_core.experiments.batch_size.verdicts`: test error vs batch size for BN, GN,
   LN, no norm, Ghost BN and Batch Renorm, trained by the stacked engine
   :mod:`bn_core.engine` (Wu & He 2018, arXiv:1803.08494, Fig. 1 in miniature).
3. :mod:`~bn_core.experiments.batch_size.one`: a batch of one example.
4. :mod:`~bn_core.experiments.batch_size.non_iid`: class-sorted vs shuffled batches.

:mod:`~bn_core.experiments.batch_size.quiz` builds the check-yourself questions.
"""

from bn_core.experiments.batch_size.noise import (
    POPULATIONS,
    NoiseConfig,
    NoiseResult,
    NoiseVerdicts,
    noise_verdicts,
    run_noise,
    std_of_mean,
    std_of_variance,
)
from bn_core.experiments.batch_size.non_iid import NonIIDConfig, NonIIDResult, non_iid_verdict, run_non_iid
from bn_core.experiments.batch_size.one import BatchOfOneResult, one_verdict, run_batch_of_one
from bn_core.experiments.batch_size.quiz import questions
from bn_core.experiments.batch_size.sweep import (
    BatchSizeSweepConfig,
    BatchSizeSweepResult,
    Network,
    check_sweep,
    lr_at,
    network_count,
    network_train_config,
    run_batch_size_sweep,
    steps_at,
    sweep_points,
)
from bn_core.experiments.batch_size.variants import (
    BATCH_FREE_VARIANTS,
    BATCH_STAT_VARIANTS,
    PAPER_TABLE,
    TRAIN_MODE_SERIES,
    VARIANT_LABELS,
    VARIANTS,
    NormSettings,
    ghost_size,
    norm_spec,
)
from bn_core.experiments.batch_size.verdicts import SweepVerdicts, sweep_verdicts, takeaway

__all__ = [
    "POPULATIONS",
    "NoiseConfig",
    "NoiseResult",
    "NoiseVerdicts",
    "run_noise",
    "noise_verdicts",
    "std_of_mean",
    "std_of_variance",
    "VARIANTS",
    "VARIANT_LABELS",
    "BATCH_STAT_VARIANTS",
    "BATCH_FREE_VARIANTS",
    "TRAIN_MODE_SERIES",
    "PAPER_TABLE",
    "NormSettings",
    "ghost_size",
    "norm_spec",
    "BatchSizeSweepConfig",
    "BatchSizeSweepResult",
    "Network",
    "run_batch_size_sweep",
    "check_sweep",
    "lr_at",
    "steps_at",
    "sweep_points",
    "network_count",
    "network_train_config",
    "SweepVerdicts",
    "sweep_verdicts",
    "takeaway",
    "NonIIDConfig",
    "NonIIDResult",
    "run_non_iid",
    "non_iid_verdict",
    "BatchOfOneResult",
    "run_batch_of_one",
    "one_verdict",
    "questions",
]
