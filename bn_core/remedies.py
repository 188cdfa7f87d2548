"""Remedies for small or non-i.i.d. batches, as drop-in norm layers: Ghost BN and Batch Renormalization.

Both are ``nn.Module`` s with the buffers of ``nn.BatchNorm*`` (``running_mean``,
``running_var``, ``num_batches_tracked``) and the parameters ``weight`` = γ, ``bias`` = β,
so they plug into :func:`bn_core.models.build_model` through ``norm_factory`` and into
:func:`bn_core.train.train`. Both normalize with the hand-written forward and backward of
:mod:`bn_core.functional` (Algorithm 1 of arXiv:1502.03167); only the *which values*
and *what is added afterwards* differ.

* **Ghost BN** (Hoffer, Hubara & Soudry 2017, arXiv:1705.08741, §4): the optimization
  batch of N examples is cut into N/g "ghost" batches of g examples, and each is
  normalized with its own statistics. The normalization batch (g) is separate from the
  optimization batch (N). With g = N it is exactly BN.
* **Batch Renormalization** (Ioffe 2017, arXiv:1702.03275, Algorithm 1): normalize with
  the batch statistics, then correct toward the running ones,
  ``x̂ = (x − μ_B)/σ_B · r + d`` with ``r = clip(σ_B/σ, 1/r_max, r_max)`` and
  ``d = clip((μ_B − μ)/σ, −d_max, d_max)``, where r and d are constants for the backward
  pass (stop-gradient). Unclipped, ``x̂ = (x − μ)/σ``: training sees the same
  normalization as inference. With ``r_max = 1, d_max = 0`` it is exactly BN.

Both derive from :class:`bn_core.layers.ManualBatchNorm`, hence from
:class:`bn_core.norm_base.ManualNormBase`: parameters, buffers, every check (eps, rank,
channel count, dtype, empty batches), the eval path and the one EMA step come from there;
each class writes only its train-mode normalization.

Conventions (shared with ``ManualBatchNorm``): ``var_B`` is biased (÷m) in the forward
pass; ``running_var`` holds the unbiased estimate and is updated as
``(1 − momentum)·old + momentum·batch``. Batch Renorm's σ is ``sqrt(running_var + ε)``
and σ_B is ``sqrt(var_B + ε)``. (The paper keeps a moving average of σ itself; keeping
σ² instead makes ``r_max = 1, d_max = 0`` equal BN in eval mode too, and the buffers load
into ``nn.BatchNorm*``.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from bn_core.functional import check_train_batch, per_channel, values_per_channel
from bn_core.layers import ManualBatchNorm, batch_norm_autograd

__all__ = ["GhostBatchNorm", "BatchRenorm", "normalize"]


def normalize(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Steps 1-3 of Algorithm 1 with the hand-written gradient: ``(x_hat, mu_B, var_B)``.

    ``x`` is ``(N, C, *S)``; ``mu_B`` and the biased ``var_B`` are ``(C,)`` and carry no gradient.
    """
    ones = torch.ones(x.shape[1], device=x.device, dtype=x.dtype)
    return batch_norm_autograd(x, ones, torch.zeros_like(ones), eps)  # γ = 1, β = 0: y is x̂


def _affine(x_hat: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """y = γ·x̂ + β."""
    return torch.addcmul(per_channel(beta, x_hat), per_channel(gamma, x_hat), x_hat)


class GhostBatchNorm(ManualBatchNorm):
    """BN whose statistics come from ghost batches of ``ghost_batch_size`` examples (arXiv:1705.08741).

    Args:
        num_features: C.
        ghost_batch_size: g, examples per normalization batch; must divide the batch N
            in train mode. g = N is plain BN.
        eps, momentum, affine, track_running_stats, device, dtype, bias: as
            :class:`bn_core.layers.ManualBatchNorm`.

    Train mode: the N examples are split, in order, into N/g ghost batches; each is
    normalized with its own μ_B, σ²_B (over its g examples and all spatial positions).
    The running statistics take one EMA step per forward pass, toward the *average* of
    the ghost batches' μ_B and unbiased σ²_B, so they move as fast per step as BN's.
    Eval mode: the running statistics, exactly like BN.
    """

    def __init__(
        self,
        num_features: int,
        ghost_batch_size: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        if ghost_batch_size < 1:
            raise ValueError(f"The ghost batch size must be at least 1, got {ghost_batch_size}.")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.ghost_batch_size = ghost_batch_size

    def _ghost_layout(self, x: Tensor) -> Tensor:
        """(N, C, *S) → (g, (N/g)·C, *S): each ghost batch's channels become separate channels."""
        N, C, g = x.shape[0], x.shape[1], self.ghost_batch_size
        if N % g != 0:
            raise ValueError(
                f"The ghost batch size g={g} must divide the batch size N={N}: "
                f"{N} examples cannot be cut into batches of {g}."
            )
        return x.reshape(N // g, g, C, *x.shape[2:]).transpose(0, 1).reshape(g, (N // g) * C, *x.shape[2:])

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        N, C, g = x.shape[0], x.shape[1], self.ghost_batch_size
        ghosts = self._ghost_layout(x)  # (g, (N/g)·C, *S)
        check_train_batch(ghosts)
        x_hat_g, mu_B, var_B = normalize(ghosts, self.eps)  # per (ghost batch, channel)
        rest = x.shape[2:]
        x_hat = x_hat_g.reshape(g, N // g, C, *rest).transpose(0, 1).reshape(x.shape)  # (N, C, *S)
        m = values_per_channel(ghosts)  # g·H·W values per ghost statistic
        self._track(mu_B.view(N // g, C).mean(0), var_B.view(N // g, C).mean(0), m)
        return _affine(x_hat, gamma, beta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_batch_size={self.ghost_batch_size}"


class BatchRenorm(ManualBatchNorm):
    """Batch Renormalization (Ioffe 2017, arXiv:1702.03275), with the hand-written BN gradient.

    Args:
        num_features: C.
        r_max: ≥ 1; r is clipped to [1/r_max, r_max]. 1 keeps r = 1.
        d_max: ≥ 0; d is clipped to [−d_max, d_max]. 0 keeps d = 0.
        eps, momentum, affine, device, dtype, bias: as :class:`bn_core.layers.ManualBatchNorm`.
            There is no ``track_running_stats=False``: r and d correct toward the running
            statistics, so the layer needs them.

    Train mode, per channel (σ = sqrt(running_var + ε), σ_B = sqrt(σ²_B + ε))::

        r = clip(σ_B / σ, 1/r_max, r_max)          # no gradient
        d = clip((μ_B − μ) / σ, −d_max, d_max)     # no gradient
        x̂ = (x − μ_B) / σ_B · r + d
        y = γ·x̂ + β

    then the running statistics take their EMA step (after r and d are computed, as in
    the paper). Eval mode: the running statistics, exactly like BN.
    """

    def __init__(
        self,
        num_features: int,
        r_max: float = 3.0,
        d_max: float = 5.0,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        if not r_max >= 1.0 or not d_max >= 0.0:
            raise ValueError(f"Batch Renorm needs r_max ≥ 1 and d_max ≥ 0, got r_max={r_max}, d_max={d_max}.")
        super().__init__(num_features, eps, momentum, affine, True, device, dtype, bias=bias)
        self.r_max, self.d_max = float(r_max), float(d_max)

    def correction(self, mu_B: Tensor, var_B: Tensor) -> tuple[Tensor, Tensor]:
        """``(r, d)``, each ``(C,)``, for this batch's μ_B and biased σ²_B against the running statistics."""
        sigma_B = torch.sqrt(var_B + self.eps)  # (C,)
        sigma = torch.sqrt(self.running_var.to(var_B.dtype) + self.eps)  # (C,)
        r = torch.clamp(sigma_B / sigma, 1.0 / self.r_max, self.r_max)  # (C,)
        d = torch.clamp((mu_B - self.running_mean.to(mu_B.dtype)) / sigma, -self.d_max, self.d_max)  # (C,)
        return r.detach(), d.detach()  # stop-gradient: constants for the backward pass

    def _batch_forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        u, mu_B, var_B = normalize(x, self.eps)  # (x − μ_B)/σ_B
        r, d = self.correction(mu_B, var_B)
        x_hat = torch.addcmul(per_channel(d, u), u, per_channel(r, u))  # u·r + d
        self._track(mu_B, var_B, values_per_channel(x))
        return _affine(x_hat, gamma, beta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r_max={self.r_max}, d_max={self.d_max}"
