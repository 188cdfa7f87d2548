"""The one base of every BN-like layer: parameters, buffers, checks and the single running-statistics step.

In the spirit of PyTorch's ``torch.nn.modules.batchnorm._NormBase``: the state is registered
parameters and buffers with the names of ``nn.BatchNorm*`` (``weight`` = γ, ``bias`` = β,
``running_mean``, ``running_var``, ``num_batches_tracked``), so a ``state_dict`` loads either
way, and ``forward`` contains only decisions. The math lives in :mod:`bn_core.functional`
(Algorithm 1 of Ioffe & Szegedy 2015, arXiv:1502.03167).

What :class:`ManualNormBase` owns, once for every layer built on it (``ManualBatchNorm`` and its
1d/2d/3d twins, ``ManualInstanceNorm*``, Ghost BN, Batch Renorm, synchronized BN):

* **Which statistics.** Batch statistics in train mode, and in eval mode when the layer has no
  running buffers; otherwise the buffers. Exactly torch's rule, so flipping
  ``track_running_stats`` after construction behaves like torch: set to False on a layer that
  has buffers, train mode stops updating them and eval mode keeps using them.
* **The checks**, with torch's messages where torch has one: input rank, channel count, dtype
  agreement, eps (> 0 with batch statistics, ≥ 0 with the buffers, as ``F.batch_norm``), and
  more than one value per channel in train mode. An empty batch ``(0, C, …)`` is not an
  error: like torch the output is empty and the batch is counted.
* **Dtypes.** float16 / bfloat16 input on a float32 layer is computed in float32 and returned in
  the input's dtype (torch's CPU rule); any other mix of dtypes raises :class:`NormInputError`.
* **Momentum.** ``new = (1 − momentum)·old + momentum·batch``; ``momentum=None`` is a cumulative
  average, momentum = 1/k at the k-th batch. ``running_var`` holds the unbiased variance
  ``var_B·m/(m − 1)``; the forward pass normalizes with the biased ``var_B``.
* **The EMA step**, :meth:`ManualNormBase._track`: the only place in the codebase that folds a
  batch into running buffers (tests/test_module_db.py checks that).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from bn_core.functional import (
    batch_norm_inference,
    check_train_batch,
    per_channel,
    update_running_stats,
    values_per_channel,
)

__all__ = [
    "NormInputError",
    "ManualNormBase",
    "REDUCED_PRECISION",
    "compute_dtype",
    "check_dtype",
    "register_affine",
    "reset_affine",
    "check_momentum",
    "ema_weight",
]

REDUCED_PRECISION = (torch.float16, torch.bfloat16)  # computed in float32, returned in their own dtype


class NormInputError(ValueError, RuntimeError):
    """Input the layer cannot take (dtype, channel count).

    Torch raises RuntimeError for these; the app's sections catch ValueError. This is both.
    """


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the statistics are computed in: float32 for half precision, else the input's own."""
    return torch.float32 if x.dtype in REDUCED_PRECISION else x.dtype


def check_dtype(x: Tensor, state: Iterable[Tensor | None]) -> None:
    """Raise :class:`NormInputError` unless ``x`` can be normalized with these parameters and buffers.

    The rule is torch's on the CPU: the input's dtype equals the layer's, or the input is
    float16 / bfloat16 and the layer float32. A layer without parameters or buffers takes any
    floating-point input.
    """
    if not x.is_floating_point():
        raise NormInputError(f"Expected a floating-point input, got {x.dtype}: call x.float() first.")
    dtypes = {t.dtype for t in state if t is not None}
    if len(dtypes) > 1:
        raise NormInputError(f"The layer's parameters and buffers disagree on dtype ({sorted(map(str, dtypes))}).")
    if not dtypes or x.dtype in dtypes or (x.dtype in REDUCED_PRECISION and torch.float32 in dtypes):
        return
    raise NormInputError(
        f"mixed dtype: the input is {x.dtype} but the layer is {dtypes.pop()} (torch raises 'mixed dtype' too). "
        "Convert one to the other: layer.to(x.dtype) or x.to(dtype of the layer)."
    )


def check_momentum(momentum: float | None) -> None:
    """``None`` (cumulative average) or a weight in [0, 1]; torch would silently extrapolate outside it."""
    if momentum is not None and not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1] or None (cumulative average), got {momentum}.")


def ema_weight(momentum: float | None, k: int) -> float:
    """The EMA weight of the k-th batch (1-based): ``momentum``, or 1/k for a cumulative average (None)."""
    return 1.0 / k if momentum is None else float(momentum)


def register_affine(module: nn.Module, shape: tuple[int, ...], affine: bool, bias: bool, **factory: Any) -> None:
    """Register ``weight`` (γ) and ``bias`` (β) of ``shape``, or None, as torch's norm layers do."""
    weight = nn.Parameter(torch.empty(shape, **factory)) if affine else None
    module.register_parameter("weight", weight)
    module.register_parameter("bias", nn.Parameter(torch.empty(shape, **factory)) if affine and bias else None)


def reset_affine(module: nn.Module) -> None:
    """γ = 1, β = 0: the layer starts as a pure normalization."""
    with torch.no_grad():
        if module.weight is not None:
            module.weight.fill_(1.0)
        if module.bias is not None:
            module.bias.zero_()


class ManualNormBase(nn.Module):
    """Parameters, buffers, checks and the one EMA step shared by every BN-like layer.

    Args:
        num_features: C, the channel count.
        eps: added to the variance before the square root; > 0 whenever batch statistics
            are used (train mode), ≥ 0 with the running ones, as in ``F.batch_norm``.
        momentum: EMA weight of the newest batch (PyTorch convention, 0.1; Keras's 0.99 is
            PyTorch's 0.01). ``None``: cumulative average, momentum = 1/num_batches_tracked.
        affine: learn γ (``weight``) and β (``bias``); otherwise γ = 1, β = 0.
        track_running_stats: keep ``running_mean`` / ``running_var`` / ``num_batches_tracked``.
            Without them eval mode also normalizes with batch statistics.
        device, dtype: where and in which dtype to create the parameters and buffers.
        bias: with ``affine``, also learn β (torch's ``bias=False`` learns γ only).

    Subclasses implement :meth:`_batch_forward` (the batch-statistics path) and may narrow
    :meth:`_check_input_dim` (the rank).
    """

    _version = 2  # torch's _NormBase version: 2 added num_batches_tracked

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_momentum(momentum)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        register_affine(self, (num_features,), affine, bias, device=device, dtype=dtype)
        self._register_running_stats(track_running_stats, device=device, dtype=dtype)
        self.reset_parameters()

    def _register_running_stats(self, track: bool, **factory: Any) -> None:
        C = self.num_features
        self.register_buffer("running_mean", torch.zeros(C, **factory) if track else None)
        self.register_buffer("running_var", torch.ones(C, **factory) if track else None)
        count = torch.tensor(0, dtype=torch.long, device=factory["device"]) if track else None
        self.register_buffer("num_batches_tracked", count)

    def reset_running_stats(self) -> None:
        """Back to mean 0, variance 1, no batches seen."""
        if self.running_mean is not None:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Running statistics reset, γ = 1, β = 0."""
        self.reset_running_stats()
        reset_affine(self)

    # -- the checks ---------------------------------------------------------------------------

    def _check_input_dim(self, x: Tensor) -> None:
        """Rank-agnostic: ``(N, C)`` or ``(N, C, *spatial)``. The 1d/2d/3d twins narrow it like torch."""
        if x.dim() < 2:
            raise ValueError(f"expected 2D or higher input (N, C, *spatial) (got {x.dim()}D input)")

    def _state(self) -> tuple[Tensor | None, ...]:
        return self.weight, self.bias, self.running_mean, self.running_var

    def _check_channels(self, x: Tensor) -> None:
        """Torch compares C with the parameters and buffers; a layer with neither takes any C."""
        C = x.shape[1]
        if self.num_features != C and any(t is not None for t in self._state()):
            raise NormInputError(
                f"Expected input (N, {self.num_features}, *spatial) with {self.num_features} channels on dim 1, "
                f"got shape {tuple(x.shape)} (torch: running_mean should contain {C} elements not "
                f"{self.num_features})."
            )

    def _check_eps(self, batch_stats: bool) -> None:
        if batch_stats and not self.eps > 0:
            raise ValueError(
                f"batch_norm eps must be positive during training, but got {self.eps}: "
                "with a constant channel var_B = 0 and 1/sqrt(var_B + eps) would be infinite."
            )
        if not self.eps >= 0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {self.eps}.")

    def _local_batch(self) -> bool:
        """True when the batch statistics come from this input alone (synchronized BN: not when synced)."""
        return True

    def _check_batch(self, x: Tensor, batch_stats: bool) -> None:
        """torch's order: more than one value per channel (an empty batch passes), then eps."""
        if batch_stats and self._local_batch() and values_per_channel(x) == 1:
            check_train_batch(x)
        self._check_eps(batch_stats)

    # -- the decisions ------------------------------------------------------------------------

    def _uses_batch_stats(self) -> bool:
        """Torch's rule: train mode, or a layer without running buffers (whatever track_running_stats says now)."""
        return self.training or (self.running_mean is None and self.running_var is None)

    def _updates_buffers(self) -> bool:
        """Only train mode with ``track_running_stats`` and buffers to update (torch's rule, after toggling too)."""
        return self.training and self.track_running_stats and self.running_mean is not None

    def _gamma_beta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """γ and β as ``(C,)`` in x's dtype (ones / zeros where the layer learns none)."""
        if self.weight is not None and self.bias is not None:  # the usual layer: no tensor to make
            return self.weight.to(x.dtype), self.bias.to(x.dtype)
        ones = torch.ones(x.shape[1], device=x.device, dtype=x.dtype)
        gamma = ones if self.weight is None else self.weight.to(x.dtype)
        return gamma, torch.zeros_like(ones) if self.bias is None else self.bias.to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        self._check_channels(x)
        return self._normalize(x)

    def _normalize(self, x: Tensor) -> Tensor:
        """Checks passed: pick the statistics, compute in float32 for half precision, return x's dtype."""
        check_dtype(x, self._state())
        batch_stats = self._uses_batch_stats()
        self._check_batch(x, batch_stats)
        x_c = x.to(compute_dtype(x))
        gamma, beta = self._gamma_beta(x_c)
        if not batch_stats:
            mean, var = self.running_mean.to(x_c.dtype), self.running_var.to(x_c.dtype)
            y = batch_norm_inference(x_c, mean, var, gamma, beta, self.eps)
        elif x_c.numel() == 0 and self._local_batch():
            self._track(None, None, 0)  # torch counts an empty batch; it has no statistics to average
            y = torch.addcmul(per_channel(beta, x_c), per_channel(gamma, x_c), x_c)
        else:
            y = self._batch_forward(x_c, gamma, beta)
        return y.to(x.dtype)

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """Normalize with batch statistics and call :meth:`_track` with them (x is non-empty, in compute dtype)."""
        raise NotImplementedError

    # -- the one EMA step ---------------------------------------------------------------------

    def _momentum_step(self) -> float:
        """Count this batch; return its EMA weight: ``momentum``, or 1/k at the k-th batch when it is None."""
        self.num_batches_tracked.add_(1)
        if self.momentum is not None:  # the count is read (a sync on an accelerator) only when it is the weight
            return float(self.momentum)
        return ema_weight(None, int(self.num_batches_tracked))

    @torch.no_grad()
    def _track(self, mu_B: Tensor | None, var_B: Tensor | None, m: int) -> None:
        """Fold one batch's ``mu_B`` and biased ``var_B`` (``(C,)``, over m values each) into the buffers.

        The only running-statistics update in the codebase: a no-op outside train mode or
        without tracked buffers; an empty batch (m = 0) is counted and changes nothing else.
        """
        if not self._updates_buffers():
            return
        momentum = self._momentum_step()
        if m == 0:
            return
        new_mean, new_var = update_running_stats(self.running_mean, self.running_var, mu_B, var_B, m, momentum)
        self.running_mean.copy_(new_mean)
        self.running_var.copy_(new_var)

    # -- state_dict and repr -----------------------------------------------------------------

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, *args: Any) -> None:
        """Checkpoints older than torch's version 2 have no ``num_batches_tracked``: count from 0, as torch does."""
        key = prefix + "num_batches_tracked"
        version = local_metadata.get("version")
        if (version is None or version < 2) and self.num_batches_tracked is not None and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )
