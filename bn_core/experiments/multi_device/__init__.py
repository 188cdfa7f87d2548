"""Multi-device BN: per-replica vs synchronized batch statistics, on real worker processes.

Modules: ``stats`` (the default launch: every rank's statistics, the equivalence check,
the costs), ``replica_sweep`` (accuracy vs images per replica), ``verdicts`` (every
sentence the page states), ``quiz`` (check-yourself questions) and ``base`` (names,
sizes, payload formulas).

Sources: Wu & He 2018, arXiv:1803.08494; Peng et al. 2018, arXiv:1711.07240;
Goyal et al. 2017, arXiv:1706.02677; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from bn_core.experiments.multi_device.base import (
    MIN_PER_REPLICA_IMAGES,
    SWEEP_SIZES,
    VARIANT_LABELS,
    bn_allreduce_bytes,
    label,
)
from bn_core.experiments.multi_device.quiz import questions
from bn_core.experiments.multi_device.replica_sweep import (
    ReplicaSweepConfig,
    ReplicaSweepResult,
    run_replica_sweep,
)
from bn_core.experiments.multi_device.stats import StatsConfig, StatsResult, Traffic, run_stats, stats_variants

__all__ = [
    "MIN_PER_REPLICA_IMAGES",
    "SWEEP_SIZES",
    "VARIANT_LABELS",
    "ReplicaSweepConfig",
    "ReplicaSweepResult",
    "StatsConfig",
    "StatsResult",
    "Traffic",
    "bn_allreduce_bytes",
    "label",
    "questions",
    "run_replica_sweep",
    "run_stats",
    "stats_variants",
]
