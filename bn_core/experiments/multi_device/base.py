"""What both multi-device experiments share: method names, the sweep's sizes, payload formulas, timeouts.

Sources: Wu & He 2018, arXiv:1803.08494 (Fig. 1: BN error vs images per GPU, sizes 2 … 32);
Peng et al. 2018, arXiv:1711.07240 (cross-GPU BN).
"""

from __future__ import annotations

from bn_core.distributed import VARIANTS, DistConfig, replica_model_config
from bn_core.models import MLPConfig

__all__ = [
    "BACKWARD_BYTES",
    "FORWARD_BYTES",
    "MIN_PER_REPLICA_IMAGES",
    "SWEEP_SIZES",
    "VARIANT_LABELS",
    "bn_allreduce_bytes",
    "label",
    "launch_timeout",
]

# The app's one name per method (ui.charts.METHOD_COLORS): per-replica statistics are plain
# BN, which is what nn.BatchNorm does under data parallelism; synchronized ones are sync BN.
VARIANT_LABELS = {
    "per_replica": "BN",
    "sync": "sync BN",
    "group": "GN",
    "sync_torch": "sync BN (nn.SyncBatchNorm)",
}
SWEEP_SIZES = (2, 4, 8, 16)  # images per replica in Wu & He's Fig. 1 range
# Train-mode BN needs more than one value per channel; in the MLP a rank's shard of b
# images gives each unit exactly b values, so per-replica BN needs b ≥ 2. Synchronized
# BN pools W·b values over the ranks, so with W ≥ 2 ranks it trains even at b = 1.
MIN_PER_REPLICA_IMAGES = 2
FORWARD_BYTES, BACKWARD_BYTES = 3 * 8, 2 * 4  # per channel: [count, Σx, Σx²] in float64; [Σdy, Σdy·x̂] in float32


def label(variant: str) -> str:
    """The method name shown for a variant (``"per_replica"`` → ``"BN"``)."""
    return VARIANT_LABELS.get(variant, variant)


def launch_timeout(world_size: int, lockstep_steps: int) -> float:
    """Generous: start-up, plus ~10 ms per variant step per rank (oversubscribed gloo is that slow)."""
    return 120.0 + 0.01 * world_size * lockstep_steps * len(VARIANTS)


def bn_allreduce_bytes(cfg: DistConfig) -> int:
    """Sync BN's all-reduce payload per step and rank: Σ over BN layers of C × (3 × 8 + 2 × 4) bytes."""
    model = replica_model_config(cfg)
    channels = [model.width] * model.depth if isinstance(model, MLPConfig) else list(model.channels)
    return sum(C * (FORWARD_BYTES + BACKWARD_BYTES) for C in channels)
