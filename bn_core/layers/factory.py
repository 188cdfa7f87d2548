"""``make_norm(kind, C, backend)``: one constructor for every normalization kind, hand-written or PyTorch's."""

from __future__ import annotations

from typing import Literal

from torch import nn

from bn_core.layers.batch_norm import ManualBatchNorm1d, ManualBatchNorm2d
from bn_core.layers.group_norm import ManualGroupNorm

__all__ = ["make_norm", "NORM_KINDS", "NormKind", "Backend", "default_groups"]

NORM_KINDS = ("batch", "layer", "group", "instance", "none")
NormKind = Literal["batch", "layer", "group", "instance", "none"]
Backend = Literal["manual", "torch"]


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
        backend: ``"manual"`` (:mod:`bn_core.layers`) or ``"torch"`` (``torch.nn``).
        num_groups: G for ``group``; default :func:`default_groups`.
        spatial: the input is ``(N, C, H, W)``: batch norm is ``BatchNorm2d`` (else ``1d``),
            manual or torch's.
        momentum, eps: passed to batch norm (eps to every kind).

    Layer, group and instance norm are group norm with G = 1, G and G = C (per-channel γ, β)
    in both backends, so the two backends build the same computation.

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
        manual = backend == "manual"
        cls = (
            (ManualBatchNorm2d if manual else nn.BatchNorm2d)
            if spatial
            else (ManualBatchNorm1d if manual else nn.BatchNorm1d)
        )
        return cls(num_features, eps=eps, momentum=momentum)
    if kind == "instance" and not spatial:
        raise ValueError("Instance norm needs spatial dims: on (N, C) input each statistic covers one value.")
    groups = {"layer": 1, "instance": num_features}.get(kind, num_groups or default_groups(num_features))
    if groups < 1 or num_features % groups != 0:
        raise ValueError(f"The group count G={groups} must divide the channel count C={num_features}.")
    cls = ManualGroupNorm if backend == "manual" else nn.GroupNorm
    return cls(groups, num_features, eps=eps)
