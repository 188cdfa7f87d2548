"""Synchronized BN: batch statistics all-reduced over a process group (cross-GPU BN), a peer of ``layers.py``.

Data-parallel training gives each replica (rank) a shard of every global batch. With
plain BN each rank normalizes with the statistics of its own shard: ``b`` examples
("images per GPU" in Wu & He 2018, Fig. 1), not the global ``W·b``. Synchronized BN
(cross-GPU BN, Peng et al. 2018) all-reduces the statistics so that every rank
normalizes with the global ``mu_B`` and ``var_B``.

:class:`SyncManualBatchNorm` is :class:`bn_core.layers.ManualBatchNorm` with an
optional process group. Same parameters, buffers and ``state_dict`` layout. In train
mode it all-reduces one ``(3, C)`` buffer per layer, each channel's
``[count, Σx, Σx²]``; its backward all-reduces ``[Σ dy, Σ dy·x_hat]`` (``(2, C)``).
With ``sync=False`` it is per-replica BN through the same code minus the two
all-reduces, so timing the two isolates the cost of synchronizing.

Why a hand-written synchronized BN: ``nn.SyncBatchNorm`` refuses CPU tensors
("expected input tensor to be on GPU …"), so on a CPU-only machine this is the
implementation. With CUDA and one GPU per rank the workers of :mod:`bn_core.distributed`
also train ``nn.SyncBatchNorm`` and compare the two.

Numerics of ``var_B = E[x²] − E[x]²``: one all-reduce of raw sums is what makes a
single collective enough (and exact when ranks hold different counts, which is why
``nn.SyncBatchNorm`` all-gathers means instead). Its weakness is cancellation when
``|mu_B| ≫ sigma_B``; the sums are therefore accumulated and reduced in float64,
which keeps ~16 digits: the result loses accuracy only once ``|mu_B|/sigma_B`` nears
1e4 even for float32 activations. The backward sums need no such care.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (Algorithm 1, §3 gradients);
Peng et al. 2018, arXiv:1711.07240 (MegDet: cross-GPU BN for detection);
Wu & He 2018, arXiv:1803.08494 (BN error vs images per GPU).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.autograd.function import once_differentiable

from bn_core.functional import BNCache, per_channel, reduce_dims, values_per_channel
from bn_core.layers import ManualBatchNorm

__all__ = [
    "CommMeter",
    "SyncManualBatchNorm",
    "channel_sums",
    "stats_from_sums",
    "sync_batch_norm_forward",
    "sync_batch_norm_backward",
]


@dataclass
class CommMeter:
    """What one layer (or the gradient averaging) sent through all-reduce: calls, bytes, seconds."""

    calls: int = 0
    bytes: int = 0  # payload per rank: numel × element size of every all-reduced tensor
    seconds: float = 0.0  # wall time inside all_reduce, including waiting for the slowest rank

    def all_reduce(self, t: Tensor, group: Any) -> Tensor:
        """Sum ``t`` over the group, in place, and count the cost."""
        start = time.perf_counter()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        if t.is_cuda:
            torch.cuda.synchronize(t.device)  # NCCL returns before the data has moved
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.bytes += t.numel() * t.element_size()
        return t


def channel_sums(x: Tensor) -> Tensor:
    """Each channel's ``[count, Σx, Σx²]`` as a ``(3, C)`` float64 tensor (float64: see the module doc)."""
    dims = reduce_dims(x)
    x64 = x.detach().to(torch.float64)  # (N, C, *S)
    count = torch.full((x.shape[1],), float(values_per_channel(x)), dtype=torch.float64, device=x.device)  # (C,)
    return torch.stack([count, x64.sum(dim=dims), (x64 * x64).sum(dim=dims)])  # (3, C)


def stats_from_sums(sums: Tensor) -> tuple[Tensor, Tensor, int]:
    """Global ``mu_B``, biased ``var_B`` (float64, ``(C,)``) and the global count ``M`` from summed sums."""
    M = sums[0]  # (C,)  values per channel over every rank
    mu_B = sums[1] / M  # (C,)  E[x]
    var_B = (sums[2] / M - mu_B * mu_B).clamp_min(0.0)  # (C,)  E[x²] − E[x]²; rounding can dip below 0
    return mu_B, var_B, int(M[0].item())


def sync_batch_norm_forward(
    x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5, group: Any = None, meter: CommMeter | None = None
) -> tuple[Tensor, BNCache, int]:
    """Algorithm 1 with the statistics of the *global* batch: the union of every rank's ``x``.

    Args:
        x: this rank's shard, ``(N, C)`` or ``(N, C, *spatial)``.
        gamma, beta: ``(C,)``, identical on every rank.
        group: the process group to all-reduce over; ``None`` = no all-reduce
            (per-replica statistics: this shard alone).
        meter: counts the all-reduce's calls, bytes and time.

    Returns:
        ``y`` (shape of ``x``), a :class:`BNCache` whose ``mu``/``var`` are the global
        ``mu_B``/``var_B``, and ``M``, the global number of values per channel.
    """
    sums = channel_sums(x)  # (3, C)  [count, Σx, Σx²] of this shard
    if group is not None:
        (meter or CommMeter()).all_reduce(sums, group)  # (3, C)  … of the global batch
    mu64, var64, M = stats_from_sums(sums)
    mu_B, var_B = mu64.to(x.dtype), var64.to(x.dtype)  # (C,)
    x_mu = x - per_channel(mu_B, x)  # (N, C, *S)  centred with the global mean
    inv_std = torch.rsqrt(var_B + eps)  # (C,)
    x_hat = x_mu * per_channel(inv_std, x)  # (N, C, *S)  step 3: normalize
    y = torch.addcmul(per_channel(beta, x), per_channel(gamma, x), x_hat)  # (N, C, *S)  step 4
    return y, BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=eps), M


def sync_batch_norm_backward(
    dy: Tensor, cache: BNCache, M: int, group: Any = None, meter: CommMeter | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The compact BN gradient with the two sums taken over the global batch.

    ``dx = gamma·inv_std/M · (M·dy − Σ_global dy − x_hat·Σ_global dy·x_hat)``: every
    example's output depends on every rank's inputs through ``mu_B`` and ``var_B``, and
    those two sums are all that the other ranks contribute.

    Returns:
        ``(dx, dgamma, dbeta)``. ``dgamma``/``dbeta`` are this rank's *local* sums: the
        data-parallel gradient all-reduce adds them up like every other parameter's.
    """
    dims = reduce_dims(dy)
    dbeta = dy.sum(dim=dims)  # (C,)  local Σ dy
    dgamma = (dy * cache.x_hat).sum(dim=dims)  # (C,)  local Σ dy·x_hat
    sums = torch.stack([dbeta, dgamma])  # (2, C)
    if group is not None:
        (meter or CommMeter()).all_reduce(sums, group)  # (2, C)  global sums (stack made a new tensor)
    scale = cache.gamma * cache.inv_std / M  # (C,)
    dx = per_channel(scale, dy) * (
        M * dy - per_channel(sums[0], dy) - cache.x_hat * per_channel(sums[1], dy)
    )  # (N, C, *S)
    return dx, dgamma, dbeta


class _SyncBatchNormFunction(torch.autograd.Function):
    """Autograd glue: forward and backward each all-reduce once.

    Once differentiable: the backward's global sums go through an all-reduce that autograd
    cannot differentiate, so a second derivative raises torch's clear error ("trying to
    differentiate twice a function that was marked with @once_differentiable") instead of
    being silently wrong. ``ManualBatchNorm`` itself is differentiable twice.
    """

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, eps: float, group: Any, meter: CommMeter):
        y, cache, M = sync_batch_norm_forward(x, gamma, beta, eps, group, meter)
        ctx.save_for_backward(cache.x_mu, cache.x_hat, cache.mu_B, cache.var_B, cache.inv_std, gamma)
        ctx.eps, ctx.M, ctx.group, ctx.meter = eps, M, group, meter
        mu_B, var_B = cache.mu_B.detach(), cache.var_B.detach()
        count = torch.tensor(M)
        ctx.mark_non_differentiable(mu_B, var_B, count)
        return y, mu_B, var_B, count

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor, _dmu: Tensor, _dvar: Tensor, _dM: Tensor):
        x_mu, x_hat, mu_B, var_B, inv_std, gamma = ctx.saved_tensors
        cache = BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=ctx.eps)
        dx, dgamma, dbeta = sync_batch_norm_backward(dy.contiguous(), cache, ctx.M, ctx.group, ctx.meter)
        return dx, dgamma, dbeta, None, None, None


class SyncManualBatchNorm(ManualBatchNorm):
    """:class:`ManualBatchNorm` whose train-mode statistics come from every rank of a process group.

    Args:
        num_features, eps, momentum, affine, track_running_stats, device, dtype, bias: as
            ``ManualBatchNorm`` (the base :class:`bn_core.norm_base.ManualNormBase` owns the
            parameters, buffers, checks and the running-statistics step).
        process_group: the ranks to synchronize; ``None`` = the default (WORLD) group,
            as in ``nn.SyncBatchNorm`` (same positional order).
        sync: False gives per-replica BN through the same code without the all-reduces.

    Train mode: every rank normalizes with the global ``mu_B``/``var_B`` and updates its
    running statistics with them (the variance made unbiased with the *global* count
    ``M``), so the buffers stay identical on every rank. Outside an initialized process
    group (or with one rank) it is plain BN. Eval mode uses the buffers, no
    communication. ``last_mu_B``/``last_var_B`` keep the latest batch statistics
    (attributes, not buffers: the ``state_dict`` matches ``nn.BatchNorm*``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
        sync: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group
        self.sync = sync
        self.meter = CommMeter()
        self.last_mu_B: Tensor | None = None
        self.last_var_B: Tensor | None = None

    def _group(self) -> Any:
        """The group to all-reduce over, or None for local statistics (always outside train mode, as torch)."""
        if not (self.training and self.sync and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group or dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def _local_batch(self) -> bool:
        """Synchronized statistics need M > 1 over all ranks together (checked below), not on this rank."""
        return self._group() is None

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        y, mu_B, var_B, M = _SyncBatchNormFunction.apply(x, gamma, beta, self.eps, self._group(), self.meter)
        if int(M) <= 1:
            raise ValueError("Synchronized BN needs more than 1 value per channel over all ranks together.")
        self.last_mu_B, self.last_var_B = mu_B, var_B
        self._track(mu_B, var_B, int(M))  # the global batch's statistics, unbiased with the global count
        return y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sync={self.sync}"
