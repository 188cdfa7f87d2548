"""The normalizations the Batch-Size sweep compares, their names on screen and their settings.

Every variant is one :class:`bn_core.engine.NormSpec` for the stacked engine, and the
same layer (``ManualBatchNorm``, ``ManualGroupNorm``, ``GhostBatchNorm``, ``BatchRenorm``)
for :func:`bn_core.train.train`, so a stacked network can be checked against training it
alone. Sources: Wu & He 2018 (arXiv:1803.08494, GN/LN, Fig. 1), Hoffer et al. 2017
(arXiv:1705.08741, Ghost BN), Ioffe 2017 (arXiv:1702.03275, Batch Renorm).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bn_core.engine import NormSpec

__all__ = [
    "VARIANTS",
    "VARIANT_LABELS",
    "BATCH_STAT_VARIANTS",
    "BATCH_FREE_VARIANTS",
    "TRAIN_MODE_SERIES",
    "PAPER_TABLE",
    "NormSettings",
    "ghost_size",
    "norm_spec",
]

VARIANTS = ("batch", "group", "layer", "none", "ghost", "renorm")
VARIANT_LABELS = {  # the app's one name per method (ui.charts.METHOD_COLORS gives each its colour)
    "batch": "BN",
    "group": "GN",
    "layer": "LN",
    "none": "no norm",
    "ghost": "Ghost BN",
    "renorm": "Batch Renorm",
}
BATCH_STAT_VARIANTS = ("batch", "ghost", "renorm")  # normalize across examples; need ≥ 2 per batch
BATCH_FREE_VARIANTS = ("group", "layer", "none")  # statistics (if any) of one example alone
TRAIN_MODE_SERIES = "BN (train-mode test)"  # the same BN networks tested with test batches of B: BN's colour
PAPER_TABLE = pd.DataFrame(  # Wu & He 2018, Table 3 / Fig. 1: ResNet-50, ImageNet, error (%) vs images per GPU
    {"images_per_gpu": [32, 16, 8, 4, 2], "BN": [23.6, 23.7, 24.8, 27.3, 34.7], "GN": ["≈ 24"] * 5}
)


@dataclass(frozen=True)
class NormSettings:
    """Hyper-parameters of the norm layers (each used only by its variant)."""

    groups: int = 8  # G for group norm: must divide the width (LN is G = 1)
    ghost_batch: int = 4  # g, the ghost batch size; at a batch B < g the ghost batch is B (plain BN)
    r_max: float = 3.0  # Batch Renorm: r ∈ [1/r_max, r_max]
    d_max: float = 5.0  # Batch Renorm: d ∈ [−d_max, d_max]
    momentum: float = 0.1  # running-statistics EMA weight (PyTorch convention)
    eps: float = 1e-5  # ε


def ghost_size(settings: NormSettings, batch_size: int) -> int:
    """The ghost batch used at optimization batch B: g, or B when B < g."""
    return min(settings.ghost_batch, batch_size)


def norm_spec(variant: str, settings: NormSettings, batch_size: int) -> NormSpec:
    """The engine's normalization for ``variant`` at batch size B."""
    if variant == "batch":
        return NormSpec("batch")
    if variant == "group":
        return NormSpec("group", groups=settings.groups)
    if variant == "layer":
        return NormSpec("group", groups=1)
    if variant == "none":
        return NormSpec("none")
    if variant == "ghost":
        return NormSpec("ghost", ghost_batch=ghost_size(settings, batch_size))
    if variant == "renorm":
        return NormSpec("renorm", r_max=settings.r_max, d_max=settings.d_max)
    raise ValueError(f"Unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
