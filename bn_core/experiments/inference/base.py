"""Train vs Inference, shared ground: the page's config, its model and engine configs, data and device helpers.

Every section and lab of the page starts from one :class:`InferenceConfig`: a digits MLP
with hand-written BN before each ReLU, trained by :func:`bn_core.train.train`.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1 inference).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor, nn

from bn_core.data import DIGITS, DataSplit, load_dataset
from bn_core.models import MLPConfig
from bn_core.precise_bn import bn_layers
from bn_core.train import TrainConfig, stream_seed

__all__ = [
    "MOMENTA",
    "MIN_TRAIN_BATCH",
    "DIGITS",
    "InferenceConfig",
    "check_config",
    "model_config",
    "train_config",
    "trainable_config",
    "digits",
    "on_device",
    "test_rows",
    "buffers",
    "drift",
    "momentum_label",
]

MOMENTA = (0.01, 0.05, 0.1, 0.3, 0.5, 0.9, None)  # PyTorch convention; None = cumulative average
# Train-mode BN needs two values per channel: with one, var_B = 0 and x̂ = (x − μ_B)/√ε = 0 for
# every input, and the unbiased running-variance update divides by m − 1 = 0.
MIN_TRAIN_BATCH = 2


@dataclass(frozen=True)
class InferenceConfig:
    """The page's training run: a digits MLP with hand-written BN before each ReLU, plain SGD."""

    momentum: float | None = 0.1  # running-stat EMA weight of the newest batch (PyTorch); None = cumulative average
    batch_size: int = 32  # training batch B (values per channel m = B for this MLP)
    lr: float = 0.1  # SGD learning rate
    steps: int = 300  # optimizer updates
    seed: int = 0  # init weights and batch order (the page's global seed)
    depth: int = 2  # hidden layers, each Linear → BN → ReLU
    width: int = 64  # units (BN features) per hidden layer
    precise_every: int = 10  # steps between precise-BN checkpoints (also step 0 and the last step)


def momentum_label(m: float | None) -> str:
    """How the page writes a momentum: "0.1", …, "None (cumulative average)"."""
    return "None (cumulative average)" if m is None else f"{m:g}"


def check_config(cfg: InferenceConfig) -> None:
    """Raise ``ValueError`` (a message for the user) for a config the page cannot train."""
    m = cfg.momentum
    if m is not None and not (0.0 < m <= 1.0):
        raise ValueError(f"momentum must be in (0, 1] or None (cumulative average), got {m}.")
    if cfg.steps < 1 or cfg.precise_every < 1 or not 1 <= cfg.depth <= 4 or cfg.width < 1:
        raise ValueError("Need steps ≥ 1, precise_every ≥ 1, 1 ≤ depth ≤ 4 and width ≥ 1.")


def trainable_config(cfg: InferenceConfig) -> InferenceConfig:
    """``cfg`` itself, or for a batch of 1 (which train-mode BN refuses) the same run at ``MIN_TRAIN_BATCH``.

    The sections that only need *a* trained network (eval mode, the labs, folding) use this
    stand-in, so a batch of 1 never wipes them; the section about training batches says why.
    """
    if cfg.batch_size >= MIN_TRAIN_BATCH:
        return cfg
    return replace(cfg, batch_size=MIN_TRAIN_BATCH)


def model_config(cfg: InferenceConfig, backend: Literal["manual", "torch"] = "manual") -> MLPConfig:
    """The digits MLP: ``depth`` × (Linear → BN → ReLU), then a linear head."""
    return MLPConfig(
        in_features=64, n_classes=10, depth=cfg.depth, width=cfg.width, activation="relu",
        norm="batch", backend=backend, bn_momentum=cfg.momentum,
    )  # fmt: skip


def train_config(cfg: InferenceConfig) -> TrainConfig:
    """The engine config of the page's run (layer records off: this page records its own)."""
    return TrainConfig(
        data=DIGITS, model=model_config(cfg), optimizer="sgd", lr=cfg.lr, batch_size=cfg.batch_size,
        steps=cfg.steps, eval_every=max(1, min(25, cfg.steps)), seed=cfg.seed, record_layers=False,
        record_grads=False, variant="BN",
    )  # fmt: skip


def digits(data: DataSplit | None) -> DataSplit:
    """The given split, or the digits split every section uses."""
    return data if data is not None else load_dataset(DIGITS)


def on_device(model: nn.Module, t: Tensor | nn.Module) -> Tensor | nn.Module:
    """``t`` (a tensor or a module) on the model's device (data splits live on the CPU)."""
    return t.to(next(model.parameters()).device)


def test_rows(split: DataSplit, seed: int, stream: int) -> Tensor:
    """A seeded permutation of the test rows, one independent stream per use."""
    return torch.randperm(len(split.y_test), generator=torch.Generator().manual_seed(stream_seed(seed, stream)))


def buffers(model: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """Copies of every BN layer's ``(running_mean, running_var)``."""
    return [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bn_layers(model)]


def drift(model: nn.Module, before: list[tuple[Tensor, Tensor]]) -> float:
    """Largest move of any running_mean, in units of that unit's running std before the move."""
    moves = [
        float(((bn.running_mean - mean).abs() / torch.sqrt(var + bn.eps)).max())
        for bn, (mean, var) in zip(bn_layers(model), before, strict=True)
    ]
    return max(moves)
