"""Normalization layers built on the hand-written functions, and a factory for every kind.

``ManualBatchNorm`` is a drop-in for ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``: the
same parameters (``weight`` = γ, ``bias`` = β) and buffers (``running_mean``,
``running_var``, ``num_batches_tracked``), so a ``state_dict`` loads either way. Its
gradient is :func:`bn_core.functional.batch_norm_backward`, wired in through a
``torch.autograd.Function``, so the hand-written backward is what trains.

``ManualGroupNorm`` covers layer norm (G = 1), instance norm (G = C) and group norm
(Wu & He 2018, arXiv:1803.08494). It normalizes each example on its own, so it has
no running statistics and behaves the same in train and eval mode.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from bn_core.functional import (
    BNCache,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
    check_train_batch,
    update_running_stats,
    values_per_channel,
)

__all__ = ["batch_norm_autograd", "ManualBatchNorm", "ManualGroupNorm", "make_norm", "NORM_KINDS", "default_groups"]

NORM_KINDS = ("batch", "layer", "group", "instance", "none")
NormKind = Literal["batch", "layer", "group", "instance", "none"]
Backend = Literal["manual", "torch"]


class _BatchNormFunction(torch.autograd.Function):
    """Autograd glue: forward = Algorithm 1, backward = the staged hand-written gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, eps: float):
        y, cache = batch_norm_forward(x, gamma, beta, eps)
        ctx.save_for_backward(cache.x_mu, cache.x_hat, cache.mu_B, cache.var_B, cache.inv_std, gamma)
        ctx.eps = eps
        mu_B, var_B = cache.mu_B.detach(), cache.var_B.detach()
        ctx.mark_non_differentiable(mu_B, var_B)
        return y, mu_B, var_B

    @staticmethod
    def backward(ctx, dy: Tensor, _dmu: Tensor, _dvar: Tensor):
        x_mu, x_hat, mu_B, var_B, inv_std, gamma = ctx.saved_tensors
        cache = BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=ctx.eps)
        dx, dgamma, dbeta = batch_norm_backward(dy, cache)
        return dx, dgamma, dbeta, None


def batch_norm_autograd(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Train-mode BN whose gradient is the hand-written staged backward: ``(y, mu_B, var_B)``.

    ``mu_B`` and the biased ``var_B`` are ``(C,)`` and carry no gradient.
    """
    return _BatchNormFunction.apply(x, gamma, beta, eps)


class ManualBatchNorm(nn.Module):
    """Batch normalization from the paper's equations; drop-in for ``nn.BatchNorm1d/2d``.

    Args:
        num_features: C, the channel count.
        eps: added to the variance before the square root.
        momentum: EMA weight of the newest batch (PyTorch convention, 0.1 by
            default; Keras's 0.99 is PyTorch's 0.01). ``None`` gives a cumulative
            average over all batches seen: momentum = 1/num_batches_tracked.
        affine: learn γ (``weight``) and β (``bias``); otherwise γ = 1, β = 0.
        track_running_stats: keep ``running_mean`` / ``running_var`` and use them in
            eval mode. When False, eval mode also normalizes with batch statistics.

    Shapes: input ``(N, C)`` or ``(N, C, *spatial)``, output the same.

    The forward pass only decides *which* statistics to use; the math lives in
    :mod:`bn_core.functional`. ``running_var`` holds the unbiased variance, the
    forward pass normalizes with the biased one, exactly as PyTorch does.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Back to mean 0, variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def _gamma_beta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.affine:
            return self.weight, self.bias
        ones = torch.ones(self.num_features, device=x.device, dtype=x.dtype)
        return ones, torch.zeros_like(ones)

    def _momentum_now(self) -> float:
        """The momentum for this step; ``None`` means a cumulative average."""
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked.item())
        return float(self.momentum)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"Expected input (N, {self.num_features}, *spatial), got shape {tuple(x.shape)}.")
        gamma, beta = self._gamma_beta(x)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            return batch_norm_inference(x, self.running_mean, self.running_var, gamma, beta, self.eps)
        check_train_batch(x)
        y, mu_B, var_B = batch_norm_autograd(x, gamma, beta, self.eps)
        self._track(mu_B, var_B, values_per_channel(x))
        return y

    def _track(self, mu_B: Tensor, var_B: Tensor, n: int) -> None:
        """In train mode, fold this batch's statistics (over n values per channel) into the buffers."""
        if not (self.training and self.track_running_stats):
            return
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            new_mean, new_var = update_running_stats(
                self.running_mean, self.running_var, mu_B, var_B, n, self._momentum_now()
            )
            self.running_mean.copy_(new_mean)
            self.running_var.copy_(new_var)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class ManualGroupNorm(nn.Module):
    """Group normalization by hand: statistics per example over C/G channels and all positions.

    Layer norm is ``G = 1`` and instance norm is ``G = C``. The affine γ, β are per
    channel, like ``nn.GroupNorm``, and the parameter names match it.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups != 0:
            raise ValueError(f"The group count G={num_groups} must divide the channel count C={num_channels}.")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_channels)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        N, C = x.shape[0], x.shape[1]
        x_g = x.reshape(N, self.num_groups, -1)  # (N, G, C/G·S)
        mu = x_g.mean(dim=-1, keepdim=True)  # (N, G, 1)
        var = x_g.var(dim=-1, unbiased=False, keepdim=True)  # (N, G, 1)  biased, like BN
        x_hat = ((x_g - mu) * torch.rsqrt(var + self.eps)).reshape(x.shape)  # (N, C, *S)
        if not self.affine:
            return x_hat
        shape = (1, C, *([1] * (x.dim() - 2)))
        return self.weight.view(shape) * x_hat + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def default_groups(num_channels: int, target: int = 32) -> int:
    """The largest divisor of C that is at most ``target`` (Wu & He use G = 32)."""
    return max(g for g in range(1, min(target, num_channels) + 1) if num_channels % g == 0)


def make_norm(
    kind: NormKind,
    num_features: int,
    backend: Backend = "manual",
    *,
    num_groups: int | None = None,
    spatial: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> nn.Module:
    """Build a normalization layer of any kind, hand-written or PyTorch's.

    Args:
        kind: ``batch``, ``layer``, ``group``, ``instance`` or ``none`` (identity).
        num_features: C.
        backend: ``"manual"`` (this module) or ``"torch"`` (``torch.nn``).
        num_groups: G for ``group``; default :func:`default_groups`.
        spatial: the input is ``(N, C, H, W)``: use ``BatchNorm2d`` for the torch backend.
        momentum, eps: passed to batch norm.

    Raises:
        ValueError: an unknown kind or backend, a G that does not divide C, or
            instance norm without spatial dims (it would erase every feature).
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"Unknown norm kind {kind!r}; choose one of {', '.join(NORM_KINDS)}.")
    if backend not in ("manual", "torch"):
        raise ValueError(f"Unknown backend {backend!r}; choose 'manual' or 'torch'.")
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        if backend == "manual":
            return ManualBatchNorm(num_features, eps=eps, momentum=momentum)
        cls = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        return cls(num_features, eps=eps, momentum=momentum)
    if kind == "instance" and not spatial:
        raise ValueError("Instance norm needs spatial dims: on (N, C) input each statistic covers one value.")
    groups = {"layer": 1, "instance": num_features}.get(kind, num_groups or default_groups(num_features))
    if backend == "manual":
        return ManualGroupNorm(groups, num_features, eps=eps)
    if num_features % groups != 0:
        raise ValueError(f"The group count G={groups} must divide the channel count C={num_features}.")
    return nn.GroupNorm(groups, num_features, eps=eps)
