"""Per-replica vs synchronized BN on real ``torch.distributed`` worker processes.

:func:`launch` spawns 2–4 worker processes on 127.0.0.1 (gloo on the CPU, NCCL when
every rank gets its own GPU), trains a small digits net data-parallel with per-replica
BN, synchronized BN (:class:`bn_core.sync_bn.SyncManualBatchNorm`) and group norm in
lockstep, and returns long-format DataFrames.

Modules: ``config`` (the frozen :class:`DistConfig`, schedule, models, validation),
``worker`` (one rank's process), ``launcher`` (spawn, supervise, stop) and ``results``
(records → DataFrames, in the parent only).

Sources: Wu & He 2018, arXiv:1803.08494; Peng et al. 2018, arXiv:1711.07240;
Goyal et al. 2017, arXiv:1706.02677; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from bn_core.distributed.config import (
    LR_REFERENCE_BATCH,
    MAX_LANES,
    MAX_WORLD,
    VARIANTS,
    DistConfig,
    DistributedRunError,
    build_variant_model,
    global_batches,
    pick_backend,
    replica_model_config,
    replica_schedule,
)
from bn_core.distributed.launcher import free_port, launch
from bn_core.distributed.results import DistResult
from bn_core.distributed.worker import sgd_momentum_step

__all__ = [
    "LR_REFERENCE_BATCH",
    "MAX_LANES",
    "MAX_WORLD",
    "VARIANTS",
    "DistConfig",
    "DistResult",
    "DistributedRunError",
    "build_variant_model",
    "free_port",
    "global_batches",
    "launch",
    "replica_model_config",
    "pick_backend",
    "replica_schedule",
    "sgd_momentum_step",
]
