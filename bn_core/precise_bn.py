"""Population statistics of BN layers with frozen weights: precise BN, and AdaBN on shifted data.

During training a BN layer keeps an exponential moving average (EMA) of its batches'
statistics. Those batches were computed with *older* weights, and each is a noisy
sample, so the EMA only estimates what eval mode should use: the mean and variance
of the layer's input over the whole data set, **for the current weights**. Precise BN
(Wu & Johnson 2021, arXiv:2105.07576) computes exactly that: freeze the weights, run
the data through the network, and take the exact per-channel mean and variance.

Layers are done in forward order in **one** eval-mode pass: a forward pre-hook on each
BN layer measures its input over the whole data and writes the result into the layer's
buffers *before* the layer runs, so every later layer sees its input as it will be at
inference, normalized with the earlier layers' population statistics.

AdaBN (Li et al. 2016, arXiv:1603.04779) is the same computation on the *target*
domain's inputs (no labels): the network's weights stay, only the statistics move to
the new data.

Conventions: the variance is the unbiased one (÷(n−1)), as ``running_var`` stores it;
n is the number of values per channel (N, or N·H·W for images). The whole data goes
through in one batch (digits: 1,347 × 64), which is what makes the statistics exact.
Models are never left modified: buffers and train/eval flags are restored.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from bn_core.layers import ManualBatchNorm

__all__ = ["bn_layers", "population_stats", "swapped_stats", "with_stats", "adabn", "bn_inputs", "channel_stats"]

Stats = list[tuple[Tensor, Tensor]]  # one (mean, unbiased var) pair of (C,) tensors per BN layer


def bn_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BN layers (hand-written or torch's) in registration order, which is forward order here."""
    return [m for m in model.modules() if isinstance(m, ManualBatchNorm | nn.modules.batchnorm._BatchNorm)]


def channel_stats(z: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and unbiased variance of ``z`` ``(N, C, *S)``, over every axis but 1."""
    dims = (0, *range(2, z.dim()))
    return z.mean(dim=dims), z.var(dim=dims, correction=1)  # (C,), (C,)


@contextlib.contextmanager
def _eval_pass(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode without gradients; every module's train/eval flag restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        with torch.no_grad():
            yield model.eval()
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _kept_stats(model: nn.Module) -> Iterator[nn.Module]:
    """Whatever happens to the BN layers' running statistics inside, the old values come back."""
    layers = bn_layers(model)
    saved = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in layers]
    try:
        yield model
    finally:
        with torch.no_grad():
            for bn, (mean, var) in zip(layers, saved, strict=True):
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)


def _set_stats(model: nn.Module, stats: Sequence[tuple[Tensor, Tensor]]) -> None:
    with torch.no_grad():
        for bn, (mean, var) in zip(bn_layers(model), stats, strict=True):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)


@contextlib.contextmanager
def swapped_stats(model: nn.Module, stats: Sequence[tuple[Tensor, Tensor]]) -> Iterator[nn.Module]:
    """Use ``stats`` as the BN layers' running statistics for a while, then put the old ones back."""
    with _kept_stats(model):
        _set_stats(model, stats)
        yield model


def population_stats(model: nn.Module, x: Tensor) -> Stats:
    """Precise BN: each BN layer's exact input mean and unbiased variance over ``x``, weights frozen.

    Args:
        model: a network with BN layers (left exactly as it was).
        x: the data, ``(N, D)`` or images, in one batch (cast to the model's device and dtype).

    Returns:
        One ``(mean, var)`` pair of ``(C,)`` tensors per BN layer, in forward order. Layer k's
        input is computed with layers 1 … k−1 normalizing with *their* population statistics.
    """
    layers = bn_layers(model)
    if not layers:
        return []
    stats: Stats = []

    def measure(bn: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        mean, var = channel_stats(inputs[0])
        bn.running_mean.copy_(mean)  # this pass's later layers must see this layer as inference will
        bn.running_var.copy_(var)
        stats.append((mean.clone(), var.clone()))

    p = next(model.parameters())
    handles = [bn.register_forward_pre_hook(measure) for bn in layers]
    try:
        with _kept_stats(model), _eval_pass(model):
            model(x.to(device=p.device, dtype=p.dtype))
    finally:
        for handle in handles:
            handle.remove()
    return stats


def with_stats(model: nn.Module, stats: Sequence[tuple[Tensor, Tensor]]) -> nn.Module:
    """A copy of ``model`` whose BN layers use ``stats`` as running statistics (the original is untouched)."""
    twin = copy.deepcopy(model)
    _set_stats(twin, stats)
    return twin


def adabn(model: nn.Module, x_target: Tensor) -> nn.Module:
    """AdaBN: a copy of ``model`` with every BN layer's statistics recomputed on the target inputs (no labels)."""
    return with_stats(model, population_stats(model, x_target))


def bn_inputs(model: nn.Module, x: Tensor) -> list[Tensor]:
    """What each BN layer receives when ``x`` goes through the network in eval mode (detached)."""
    captured: list[Tensor] = []
    layers = bn_layers(model)
    handles = [bn.register_forward_pre_hook(lambda _bn, inputs: captured.append(inputs[0])) for bn in layers]
    p = next(model.parameters())
    try:
        with _eval_pass(model):
            model(x.to(device=p.device, dtype=p.dtype))
    finally:
        for handle in handles:
            handle.remove()
    return captured
