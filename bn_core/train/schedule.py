"""Seeds, batch orders and optimizers: what a run draws before it trains.

Nothing here touches the global RNG: every draw comes from a ``torch.Generator`` seeded
by :func:`stream_seed`, so the same config gives the same batches on every machine.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (mini-batch SGD, §3); Kingma & Ba 2014,
arXiv:1412.6980 (Adam).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from bn_core.data import DataSplit
from bn_core.optim import ManualOptimizer
from bn_core.train.config import BATCH_ORDERS, OPTIMIZERS, BatchOrder, TrainConfig

__all__ = ["stream_seed", "batch_schedule", "run_schedule", "fixed_rows", "make_optimizer"]


def stream_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for one purpose (``stream``) derived from a user seed."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _epoch_batches(y: Tensor, batch_size: int, order: BatchOrder, gen: torch.Generator) -> Tensor:
    """One epoch as ``(N // B, B)`` indices; the ``N mod B`` left-over examples change every epoch."""
    n_batches = len(y) // batch_size
    chosen = torch.randperm(len(y), generator=gen)[: n_batches * batch_size]  # (nb·B,)
    if order == "shuffled":
        return chosen.view(n_batches, batch_size)
    by_class = chosen[torch.argsort(y[chosen], stable=True)]  # class-sorted, shuffled within each class
    batches = by_class.view(n_batches, batch_size)  # each batch holds one class (two at a boundary)
    return batches[torch.randperm(n_batches, generator=gen)]  # visit the classes in a random order


def batch_schedule(y: Tensor, batch_size: int, steps: int, order: BatchOrder, gen: torch.Generator) -> Tensor:
    """Training-set indices for every step: ``(steps, batch_size)`` int64, on the CPU.

    ``shuffled``: epochs of a fresh permutation (sampling without replacement, the
    incomplete last batch dropped). ``class_sorted``: each epoch's examples sorted by
    class and cut into batches, so a batch holds one class (two where classes meet):
    non-i.i.d. batches whose statistics are far from the population's. The batches are
    visited in random order.
    """
    if not 1 <= batch_size <= len(y):
        raise ValueError(f"batch_size must be in 1 … {len(y)} (the training set), got {batch_size}.")
    if order not in BATCH_ORDERS:
        raise ValueError(f"Unknown batch order {order!r}; choose one of {', '.join(BATCH_ORDERS)}.")
    y = y.cpu()
    per_epoch = len(y) // batch_size
    epochs = [_epoch_batches(y, batch_size, order, gen) for _ in range(math.ceil(steps / per_epoch))]
    return torch.cat(epochs)[:steps]


def run_schedule(cfg: TrainConfig, split: DataSplit) -> Tensor:
    """The ``(steps, batch_size)`` training indices of a run: :func:`batch_schedule` seeded from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(stream_seed(cfg.seed, 1))
    return batch_schedule(split.y_train, cfg.batch_size, cfg.steps, cfg.batch_order, gen)


def fixed_rows(cfg: TrainConfig, split: DataSplit) -> tuple[Tensor, Tensor]:
    """Training-set rows of the probe batch and of the train-accuracy subset, both on the CPU.

    They depend on the data seed only, so every run on the same data (any seed, BN or
    not) is probed and scored on the same examples.
    """
    gen = torch.Generator().manual_seed(stream_seed(cfg.data.seed, 2))
    order = torch.randperm(len(split.y_train), generator=gen)
    return order[: cfg.probe_size], order[: cfg.eval_train_size or len(order)]


def make_optimizer(params, cfg: TrainConfig) -> ManualOptimizer:
    """SGD, SGD with momentum (dampening 0, not Nesterov) or Adam (betas 0.9, 0.999): torch.optim's updates, bitwise.

    :class:`~bn_core.optim.ManualOptimizer` rather than ``torch.optim``, whose first step
    imports ``torch._dynamo`` (0.9 s on a fresh server).
    """
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
    return ManualOptimizer(params, cfg.optimizer, cfg.lr, cfg.momentum)
