"""Normalization layers built on the hand-written functions, each a drop-in for its ``torch.nn`` twin.

=========================  ==========================  ===========================================
Layer                      torch twin                  Module
=========================  ==========================  ===========================================
``ManualBatchNorm1d``      ``nn.BatchNorm1d``          :mod:`bn_core.layers.batch_norm`
``ManualBatchNorm2d``      ``nn.BatchNorm2d``          :mod:`bn_core.layers.batch_norm`
``ManualBatchNorm3d``      ``nn.BatchNorm3d``          :mod:`bn_core.layers.batch_norm`
``ManualBatchNorm``        any of the three (rank ≥ 2) :mod:`bn_core.layers.batch_norm`
``ManualInstanceNorm1d``   ``nn.InstanceNorm1d``       :mod:`bn_core.layers.instance_norm`
``ManualInstanceNorm2d``   ``nn.InstanceNorm2d``       :mod:`bn_core.layers.instance_norm`
``ManualInstanceNorm3d``   ``nn.InstanceNorm3d``       :mod:`bn_core.layers.instance_norm`
``ManualGroupNorm``        ``nn.GroupNorm``            :mod:`bn_core.layers.group_norm`
``ManualLayerNorm``        ``nn.LayerNorm``            :mod:`bn_core.layers.group_norm`
=========================  ==========================  ===========================================

The BN-like ones (batch and instance norm; Ghost BN and Batch Renorm in
:mod:`bn_core.remedies`; synchronized BN in :mod:`bn_core.sync_bn`) derive from
:class:`bn_core.norm_base.ManualNormBase`, which owns their parameters, buffers, checks and the
single running-statistics step. :func:`make_norm` builds any kind, hand-written or torch's.
See docs/layers.md. Sources: arXiv:1502.03167 (BN), arXiv:1803.08494 (GN),
arXiv:1607.06450 (LN), arXiv:1607.08022 (IN).
"""

from bn_core.layers.batch_norm import (
    ManualBatchNorm,
    ManualBatchNorm1d,
    ManualBatchNorm2d,
    ManualBatchNorm3d,
    batch_norm_autograd,
)
from bn_core.layers.factory import NORM_KINDS, Backend, NormKind, default_groups, make_norm
from bn_core.layers.group_norm import ManualGroupNorm, ManualLayerNorm
from bn_core.layers.instance_norm import ManualInstanceNorm1d, ManualInstanceNorm2d, ManualInstanceNorm3d

__all__ = [
    "batch_norm_autograd",
    "ManualBatchNorm",
    "ManualBatchNorm1d",
    "ManualBatchNorm2d",
    "ManualBatchNorm3d",
    "ManualInstanceNorm1d",
    "ManualInstanceNorm2d",
    "ManualInstanceNorm3d",
    "ManualGroupNorm",
    "ManualLayerNorm",
    "make_norm",
    "NORM_KINDS",
    "NormKind",
    "Backend",
    "default_groups",
]
