"""What the stacked engine trains: frozen configs in, a frozen result out.

A :class:`StackConfig` is K MLP configurations that share everything in ``base`` (data,
depth, width, activation, placement, optimizer, batch size, steps, evaluation cadence,
dtype, device) and differ, per :class:`StackPoint`, in learning rate, seed (init and
batch order), init scale, batch order and normalization (:class:`NormSpec`).
Configuration i is exactly :func:`point_train_config` (cfg, i) trained alone by
:func:`bn_core.train.train` with :func:`bn_core.engine.norm_module` as its norm factory.

Sources: Ioffe & Szegedy 2015 (arXiv:1502.03167, BN), Wu & He 2018 (arXiv:1803.08494,
group/layer norm), Hoffer et al. 2017 (arXiv:1705.08741, Ghost BN), Ioffe 2017
(arXiv:1702.03275, Batch Renorm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from torch import nn

from bn_core.layers import ManualBatchNorm, ManualGroupNorm
from bn_core.models import MLPConfig
from bn_core.remedies import BatchRenorm, GhostBatchNorm
from bn_core.train import TrainConfig, validate_config

__all__ = ["NORM_KINDS", "NormSpec", "StackPoint", "StackConfig", "StackResult", "norm_module", "point_train_config"]

NORM_KINDS = ("batch", "group", "none", "ghost", "renorm")
NormKind = Literal["batch", "group", "none", "ghost", "renorm"]
BATCH_KINDS = ("batch", "ghost", "renorm")  # normalize across examples: a batch needs at least 2


@dataclass(frozen=True)
class NormSpec:
    """The normalization of every hidden layer of one network (momentum and ε come from the MLPConfig)."""

    kind: NormKind = "batch"  # batch, group (layer norm is groups=1), none, ghost, renorm
    groups: int = 1  # group: G groups of width/G units per example
    ghost_batch: int = 0  # ghost: g examples per normalization batch (must divide the batch)
    r_max: float = 1.0  # renorm: r ∈ [1/r_max, r_max]
    d_max: float = 0.0  # renorm: d ∈ [−d_max, d_max]

    def problem(self, width: int, batch_size: int) -> str | None:
        """Why this norm cannot train at this width and batch size, in plain words, or None."""
        if self.kind not in NORM_KINDS:
            return f"unknown norm kind {self.kind!r}; choose one of {', '.join(NORM_KINDS)}"
        if self.kind in BATCH_KINDS and batch_size < 2:
            return f"{self.kind} normalization needs a batch of at least 2 (one example: σ²_B = 0, x̂ = 0)"
        if self.kind == "group" and (self.groups < 1 or width % self.groups):
            return f"the group count G={self.groups} must divide the width C={width}"
        if self.kind == "ghost" and (self.ghost_batch < 2 or batch_size % self.ghost_batch):
            return f"the ghost batch g={self.ghost_batch} must be at least 2 and divide the batch B={batch_size}"
        if self.kind == "renorm" and not (self.r_max >= 1 and self.d_max >= 0):
            return f"Batch Renorm needs r_max ≥ 1 and d_max ≥ 0, got {self.r_max} and {self.d_max}"
        return None


@dataclass(frozen=True)
class StackPoint:
    """One configuration of a stack: what differs from the shared base."""

    lr: float  # learning rate
    seed: int = 0  # init weights and batch order (as TrainConfig.seed)
    init_scale: float = 1.0  # multiplies the default-initialized weights
    norm: NormSpec = field(default_factory=NormSpec)  # the norm of every hidden layer
    batch_order: Literal["shuffled", "class_sorted"] = "shuffled"  # i.i.d. batches or one class per batch


@dataclass(frozen=True)
class StackConfig:
    """K configurations trained as one model; ``base.lr/seed/batch_order`` and the model's norm are per point."""

    base: TrainConfig = field(default_factory=TrainConfig)  # shared data, MLP shape, optimizer, batch, steps, eval
    points: tuple[StackPoint, ...] = ()  # the configurations; config_id = position
    test_batch: int | None = None  # also test BN networks in train mode, on test batches of this size


@dataclass(frozen=True, eq=False)
class StackResult:
    """Per configuration: every batch loss, the evaluations, the divergence step, the final test accuracies."""

    config: StackConfig
    losses: np.ndarray  # (steps, K) float64 batch losses; NaN from a configuration's divergence step on
    evals: pd.DataFrame  # config_id, step, metric (train_acc | test_acc | test_loss), value; none after divergence
    diverged_at: tuple[int | None, ...]  # per configuration: the step of the first non-finite loss, or None
    test_acc_train_mode: tuple[float, ...]  # per configuration: train-mode test accuracy (NaN if not asked/not BN)
    wall_s: float  # seconds spent training and evaluating

    def final(self, metric: str) -> np.ndarray:
        """The last recorded ``metric`` per configuration (NaN for a diverged one), shape (K,)."""
        rows = self.evals[self.evals["metric"] == metric].sort_values("step", kind="stable")
        last = rows.groupby("config_id")["value"].last()
        out = last.reindex(range(len(self.config.points))).to_numpy(dtype=np.float64, copy=True)
        out[[d is not None for d in self.diverged_at]] = np.nan
        return out


def point_train_config(cfg: StackConfig, i: int) -> TrainConfig:
    """The :class:`TrainConfig` that trains configuration ``i`` alone (with ``norm_module`` as norm factory)."""
    p = cfg.points[i]
    norm = {"batch": "batch", "none": "none"}.get(p.norm.kind, "none")  # others come from the norm factory
    model = replace(cfg.base.model, norm=norm, init_scale=p.init_scale, backend="manual")
    return replace(cfg.base, lr=p.lr, seed=p.seed, batch_order=p.batch_order, model=model, variant=None)


def norm_module(spec: NormSpec, model: MLPConfig) -> Callable[[int], nn.Module]:
    """The ``norm_factory`` (C → module) that gives :func:`bn_core.train.train` the norm the engine stacks."""
    eps, momentum = model.eps, model.bn_momentum

    def make(C: int) -> nn.Module:
        if spec.kind == "batch":
            return ManualBatchNorm(C, eps=eps, momentum=momentum)
        if spec.kind == "group":
            return ManualGroupNorm(spec.groups, C, eps=eps)
        if spec.kind == "ghost":
            return GhostBatchNorm(C, spec.ghost_batch, eps=eps, momentum=momentum)
        if spec.kind == "renorm":
            return BatchRenorm(C, r_max=spec.r_max, d_max=spec.d_max, eps=eps, momentum=momentum)
        return nn.Identity()

    return make


def validate(cfg: StackConfig) -> None:
    """Raise ``ValueError`` in plain words if ``cfg`` cannot be trained; cheap (no data, no training)."""
    if not isinstance(cfg.base.model, MLPConfig):
        raise ValueError("The stacked engine supports the MLP only; train the CNN with bn_core.train.train.")
    if not cfg.points:
        raise ValueError("A stack needs at least one configuration.")
    if cfg.test_batch is not None and cfg.test_batch < 2:
        raise ValueError("Train-mode testing needs test batches of at least 2 examples.")
    for i, p in enumerate(cfg.points):
        problem = p.norm.problem(cfg.base.model.width, cfg.base.batch_size)
        if problem:
            raise ValueError(f"Invalid stack configuration {i}: {problem}.")
        validate_config(point_train_config(cfg, i))
