"""Batch norm as an ``nn.Module`` whose gradient is the hand-written staged backward.

``ManualBatchNorm1d/2d/3d`` are drop-ins for ``nn.BatchNorm1d/2d/3d``: the same constructor
(``device=``, ``dtype=``, ``bias=`` included), parameters, buffers, rank checks and error
messages, built on :class:`bn_core.norm_base.ManualNormBase`. ``ManualBatchNorm`` takes any
rank ≥ 2, for the teaching code.

The train-mode gradient is :func:`bn_core.functional.batch_norm_backward`, wired in through a
``torch.autograd.Function``, so the hand-written backward is what trains. That backward is
itself differentiable: when autograd builds a graph of the backward (``create_graph=True``,
a gradient penalty, ``gradgradcheck``), the cache it reads is recomputed from the saved input
with differentiable tensor operations, so the second derivative flows through the same staged
formulas (Ioffe & Szegedy 2015, arXiv:1502.03167, §3).
"""

from __future__ import annotations

import torch
from torch import Tensor

from bn_core.functional import BNCache, batch_norm_backward, batch_norm_forward, values_per_channel
from bn_core.norm_base import ManualNormBase

__all__ = [
    "batch_norm_autograd",
    "ManualBatchNorm",
    "ManualBatchNorm1d",
    "ManualBatchNorm2d",
    "ManualBatchNorm3d",
]


class _BatchNormFunction(torch.autograd.Function):
    """Autograd glue: forward = Algorithm 1, backward = the staged hand-written gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, eps: float):
        y, cache = batch_norm_forward(x, gamma, beta, eps)
        ctx.save_for_backward(x, gamma, cache.x_mu, cache.x_hat, cache.mu_B, cache.var_B, cache.inv_std)
        ctx.eps = eps
        mu_B, var_B = cache.mu_B.detach(), cache.var_B.detach()
        ctx.mark_non_differentiable(mu_B, var_B)
        return y, mu_B, var_B

    @staticmethod
    def backward(ctx, dy: Tensor, _dmu: Tensor, _dvar: Tensor):
        x, gamma, x_mu, x_hat, mu_B, var_B, inv_std = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the cache must depend on x and γ for a second derivative
            _, cache = batch_norm_forward(x, gamma, torch.zeros_like(gamma), ctx.eps)
        else:  # the ordinary backward reuses what the forward pass kept
            cache = BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=ctx.eps)
        dx, dgamma, dbeta = batch_norm_backward(dy, cache)
        return dx, dgamma, dbeta, None


def batch_norm_autograd(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Train-mode BN whose gradient is the hand-written staged backward: ``(y, mu_B, var_B)``.

    ``mu_B`` and the biased ``var_B`` are ``(C,)`` and carry no gradient. Differentiable twice.
    """
    return _BatchNormFunction.apply(x, gamma, beta, eps)


class ManualBatchNorm(ManualNormBase):
    """Batch normalization from the paper's equations; the rank-agnostic drop-in for ``nn.BatchNorm*``.

    Args:
        num_features, eps, momentum, affine, track_running_stats, device, dtype, bias: as
            :class:`bn_core.norm_base.ManualNormBase` (and ``nn.BatchNorm1d``).

    Shapes: input ``(N, C)`` or ``(N, C, *spatial)``, output the same. ``ManualBatchNorm1d``,
    ``2d`` and ``3d`` accept only the ranks their torch twins accept.

    Train mode normalizes with the batch's ``mu_B`` and biased ``var_B`` and folds them into
    the running buffers (``running_var`` gets the unbiased ``var_B·m/(m − 1)``, m values per
    channel). Eval mode uses the buffers, each example on its own.
    """

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        y, mu_B, var_B = batch_norm_autograd(x, gamma, beta, self.eps)
        self._track(mu_B, var_B, values_per_channel(x))
        return y


class ManualBatchNorm1d(ManualBatchNorm):
    """Drop-in for ``nn.BatchNorm1d``: input ``(N, C)`` or ``(N, C, L)``."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class ManualBatchNorm2d(ManualBatchNorm):
    """Drop-in for ``nn.BatchNorm2d``: input ``(N, C, H, W)``."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")


class ManualBatchNorm3d(ManualBatchNorm):
    """Drop-in for ``nn.BatchNorm3d``: input ``(N, C, D, H, W)``."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f"expected 5D input (got {x.dim()}D input)")
