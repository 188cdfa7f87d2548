"""Instance normalization by hand: drop-ins for ``nn.InstanceNorm1d/2d/3d`` on the BN base.

Instance norm (Ulyanov, Vedaldi & Lempitsky 2016, arXiv:1607.08022) normalizes each example's
each channel over its positions alone: group norm with G = C. Like torch's ``_InstanceNorm`` it
derives from the same base as batch norm (:class:`bn_core.norm_base.ManualNormBase`), so it
can keep running statistics (``track_running_stats=True``) and use them in eval mode.

Torch's conventions, kept on purpose so that a ``state_dict`` and a training run match:

* ``affine=False`` and ``track_running_stats=False`` by default.
* Unbatched input ``(C, L)``, ``(C, H, W)``, ``(C, D, H, W)`` is one example.
* Running statistics move toward the batch average of the per-example means and unbiased
  variances (over L values each); ``num_batches_tracked`` is never counted and
  ``momentum=None`` means 0 (the buffers stay put): torch's ``F.instance_norm`` behaves so.
* With ``affine=False`` and no buffers a channel count other than ``num_features`` only
  warns, since nothing per channel depends on it.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from bn_core.functional import per_channel
from bn_core.layers.group_norm import group_normalize
from bn_core.norm_base import ManualNormBase, NormInputError

__all__ = ["ManualInstanceNorm1d", "ManualInstanceNorm2d", "ManualInstanceNorm3d"]


class _ManualInstanceNorm(ManualNormBase):
    """Shared by the 1d/2d/3d twins; they set the ranks."""

    _no_batch_dim: int  # the rank of one unbatched example: 2 for (C, L)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input_dim(self, x: Tensor) -> None:
        ranks = (self._no_batch_dim, self._no_batch_dim + 1)
        if x.dim() not in ranks:
            raise ValueError(f"expected {ranks[0]}D or {ranks[1]}D input (got {x.dim()}D input)")

    def _check_channels(self, x: Tensor) -> None:
        feature_dim = x.dim() - self._no_batch_dim
        C = x.shape[feature_dim]
        if self.num_features == C:
            return
        if self.affine:
            raise ValueError(
                f"expected input's size at dim={feature_dim} to match num_features ({self.num_features}), but got: {C}."
            )
        warnings.warn(
            f"input's size at dim={feature_dim} does not match num_features. You can silence this warning by not "
            "passing in num_features, which is not used because affine=False",
            stacklevel=3,
        )
        if self.running_mean is not None:  # torch warns, then fails on the buffers
            raise NormInputError(f"Expected {self.num_features} channels for the running statistics, got {C}.")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        self._check_channels(x)
        if x.dim() == self._no_batch_dim:
            return self._normalize(x.unsqueeze(0)).squeeze(0)
        return self._normalize(x)

    def _check_batch(self, x: Tensor, batch_stats: bool) -> None:
        """F.instance_norm's only check: more than one position per example (it has none on eps)."""
        if batch_stats and math.prod(x.shape[2:]) == 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {tuple(x.shape)}: "
                "an instance statistic over one position equals that value, so x̂ = 0."
            )

    def _momentum_step(self) -> float:
        """Torch's instance norm never counts batches, and its momentum=None means 0."""
        return 0.0 if self.momentum is None else float(self.momentum)

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        x_hat, mu, var = group_normalize(x, x.shape[1], self.eps)  # mu, var: (N, C)
        self._track(mu.mean(0), var.mean(0), math.prod(x.shape[2:]))  # the batch average, over L values each
        return torch.addcmul(per_channel(beta, x), per_channel(gamma, x), x_hat)


class ManualInstanceNorm1d(_ManualInstanceNorm):
    """Drop-in for ``nn.InstanceNorm1d``: input ``(N, C, L)`` or unbatched ``(C, L)``."""

    _no_batch_dim = 2


class ManualInstanceNorm2d(_ManualInstanceNorm):
    """Drop-in for ``nn.InstanceNorm2d``: input ``(N, C, H, W)`` or unbatched ``(C, H, W)``."""

    _no_batch_dim = 3


class ManualInstanceNorm3d(_ManualInstanceNorm):
    """Drop-in for ``nn.InstanceNorm3d``: input ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``."""

    _no_batch_dim = 4
