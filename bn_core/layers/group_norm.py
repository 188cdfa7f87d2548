"""Group and layer normalization by hand: statistics per example, no running buffers.

``ManualGroupNorm`` (Wu & He 2018, arXiv:1803.08494) is a drop-in for ``nn.GroupNorm``: the
mean and biased variance of each example over C/G channels and every position; layer norm over
(C, *spatial) is G = 1 and instance norm G = C. ``ManualLayerNorm`` (Ba, Kiros & Hinton 2016,
arXiv:1607.06450) is a drop-in for ``nn.LayerNorm``: the statistics of each example over its
last ``len(normalized_shape)`` axes, with an element-wise γ, β of ``normalized_shape``.

Both behave the same in train and eval mode, take torch's constructor (``device=``,
``dtype=``, ``bias=``), raise where torch raises with torch's message, compute half precision
in float32 and return the input's dtype. Their gradient is autograd's, through the plain
tensor operations below, so every order of derivative is exact.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bn_core.norm_base import NormInputError, check_dtype, compute_dtype, register_affine, reset_affine

__all__ = ["ManualGroupNorm", "ManualLayerNorm", "group_normalize"]


def group_normalize(x: Tensor, G: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(x_hat, mu, var)`` for ``x`` ``(N, C, *S)``: statistics per example over C/G channels and all of S.

    ``mu`` and the biased ``var`` are ``(N, G)``. Works for an empty batch (N = 0).
    """
    N, C = x.shape[0], x.shape[1]
    x_g = x.reshape(N, G, (C // G) * math.prod(x.shape[2:]))  # (N, G, C/G·S)
    mu = x_g.mean(dim=-1, keepdim=True)  # (N, G, 1)
    x_mu = x_g - mu  # (N, G, C/G·S)
    var = (x_mu * x_mu).mean(dim=-1, keepdim=True)  # (N, G, 1)  biased, like BN
    x_hat = (x_mu * torch.rsqrt(var + eps)).reshape(x.shape)  # (N, C, *S)
    return x_hat, mu.squeeze(-1), var.squeeze(-1)


def _affine(x_hat: Tensor, weight: Tensor | None, bias: Tensor | None, shape: Sequence[int]) -> Tensor:
    """γ·x̂ + β with γ, β viewed as ``shape`` (absent ones are 1 and 0)."""
    y = x_hat if weight is None else x_hat * weight.to(x_hat.dtype).view(shape)
    return y if bias is None else y + bias.to(x_hat.dtype).view(shape)


class ManualGroupNorm(nn.Module):
    """Group normalization by hand; drop-in for ``nn.GroupNorm``.

    Args:
        num_groups: G; must divide ``num_channels``.
        num_channels: C; γ and β are per channel.
        eps: added to each group's variance.
        affine: learn γ (``weight``) and β (``bias``).
        device, dtype, bias: as ``nn.GroupNorm``.

    Shapes: ``(N, C, *)``, output the same. Like torch there is no unbatched form: the first
    axis is always N.
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_groups < 1:
            raise ValueError(f"num_groups must be at least 1, got {num_groups}: the group count G must divide C.")
        if num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups}): "
                f"the group count G={num_groups} must divide the channel count C={num_channels}."
            )
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        register_affine(self, (num_channels,), affine, bias, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def _check(self, x: Tensor) -> None:
        """torch's checks in torch's order: rank, enough values, channel count, dtype."""
        if x.dim() < 2:
            raise NormInputError(f"Expected at least 2 dimensions for input tensor but received {x.dim()}")
        N, C, G = x.shape[0], x.shape[1], self.num_groups
        if (N * C // G) * math.prod(x.shape[2:]) == 1:  # F.group_norm's own test, in train and eval mode
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(x.shape)}")
        if self.weight is not None and self.num_channels != C:
            raise NormInputError(
                "Expected weight to be a vector of size equal to the number of channels in input, but got weight "
                f"of shape [{self.num_channels}] and input of shape {list(x.shape)}"
            )
        if C % G != 0:
            raise NormInputError(
                "Expected number of channels in input to be divisible by num_groups, but got input of shape "
                f"{list(x.shape)} and num_groups={G}"
            )
        check_dtype(x, (self.weight, self.bias))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        x_c = x.to(compute_dtype(x))
        x_hat, _, _ = group_normalize(x_c, self.num_groups, self.eps)
        shape = (1, x.shape[1], *([1] * (x.dim() - 2)))  # per channel
        return _affine(x_hat, self.weight, self.bias, shape).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class ManualLayerNorm(nn.Module):
    """Layer normalization by hand; drop-in for ``nn.LayerNorm``.

    Args:
        normalized_shape: the trailing shape to normalize over (an int is one axis).
        eps: added to each example's variance.
        elementwise_affine: learn γ (``weight``) and β (``bias``) of ``normalized_shape``.
        bias, device, dtype: as ``nn.LayerNorm``.

    Shapes: ``(*, *normalized_shape)``, output the same; any leading shape, none included.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        register_affine(self, self.normalized_shape, elementwise_affine, bias, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def _check(self, x: Tensor) -> None:
        shape = self.normalized_shape
        if not shape:
            raise NormInputError(
                "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, "
                "but got normalized_shape = []"
            )
        if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape) :]) != shape:
            raise NormInputError(
                f"Given normalized_shape={list(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], "
                f"but got input of size{list(x.shape)}"
            )
        check_dtype(x, (self.weight, self.bias))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        x_c = x.to(compute_dtype(x))
        dims = tuple(range(-len(self.normalized_shape), 0))  # the trailing axes
        mu = x_c.mean(dim=dims, keepdim=True)  # (*, 1, …, 1)
        x_mu = x_c - mu
        var = (x_mu * x_mu).mean(dim=dims, keepdim=True)  # (*, 1, …, 1)  biased
        x_hat = x_mu * torch.rsqrt(var + self.eps)  # (*, *normalized_shape)
        return _affine(x_hat, self.weight, self.bias, self.normalized_shape).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
