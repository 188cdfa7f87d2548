"""Noisy batch norm: BN followed by a random scale and shift that change at every training step.

Santurkar et al. 2018 (arXiv:1805.11604, §2.1, Fig. 2) ask whether BN helps *because* it
keeps each layer's input distribution stable (the "internal covariate shift" story of
Ioffe & Szegedy 2015, arXiv:1502.03167). Their test: put BN back, then destroy that
stability on purpose by injecting noise with a non-zero mean and a non-unit variance
after every BN layer, a fresh draw at every step, and see whether training suffers.

Here, at every train-mode forward pass (one per training step) and for every unit j::

    b_j ~ U(−n_mu, n_mu)           # a shift: the unit's mean moves by up to ±n_mu
    v_j ~ U(1, n_sigma)            # a variance: the unit's spread is multiplied by √v_j
    s_j = sqrt(v_j)
    y   = BN(x)                    # (N, C): mean β_j, std |γ_j| per unit
    y_noisy = y · s + b            # mean s_j·β_j + b_j, std s_j·|γ_j|: a new distribution every step

So the layer-input distribution the next layer sees jumps around at every step, by an
amount the two strengths control. ``n_mu = 0`` and ``n_sigma = 1`` is plain BN. In eval
mode the noise is off (like dropout): evaluation measures the learned function.

**Reproducibility.** The draw for step t of layer ℓ comes from an explicit
``torch.Generator`` seeded with a hash of ``(seed, ℓ, t)``. ``t`` is the registered buffer
``noise_step``, so when the training engine restores a model's buffers after a probe
forward pass, the probe leaves the training noise sequence untouched, and the same
seed gives bitwise-identical runs.

**BN state lives in one place.** A noisy BN *is* a BN layer followed by noise, so it holds the
BN layer rather than copying its state: with the manual backend that layer is a
:class:`bn_core.layers.ManualBatchNorm` (on the shared base
:class:`bn_core.norm_base.ManualNormBase`, with all its checks and the one running-statistics
step); with the torch backend it is ``nn.BatchNorm*``, for the comparison. The wrapper owns
only the noise and its step counter.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from bn_core.layers import make_norm
from bn_core.norm_base import ManualNormBase

__all__ = ["NoisyBatchNorm", "NoisyBNFactory", "noise_seed", "check_noise"]


def noise_seed(seed: int, layer: int, step: int) -> int:
    """An independent 63-bit seed for the noise of one layer at one step."""
    state = np.random.SeedSequence([seed, layer, step, 0x6E6F6973]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def check_noise(n_mu: float, n_sigma: float) -> None:
    """Raise a user-facing ``ValueError`` for strengths outside n_mu ≥ 0, n_sigma ≥ 1."""
    if not (math.isfinite(n_mu) and n_mu >= 0):
        raise ValueError(f"The noise mean range n_μ must be a number ≥ 0, got {n_mu}.")
    if not (math.isfinite(n_sigma) and n_sigma >= 1):
        raise ValueError(f"The noise variance range n_σ must be a number ≥ 1 (1 = no scale noise), got {n_sigma}.")


class NoisyBatchNorm(nn.Module):
    """``bn`` (any batch norm layer), then ``y·s + b`` with per-unit s, b redrawn at every train step.

    Args:
        bn: the batch norm layer (``ManualBatchNorm`` or ``nn.BatchNorm1d/2d``); its
            parameters and buffers are this module's ``bn.*``.
        n_mu: shift range: ``b ~ U(−n_mu, n_mu)`` per unit (≥ 0).
        n_sigma: variance range: ``s² ~ U(1, n_sigma)`` per unit (≥ 1).
        seed: seeds the noise; ``layer`` tells the layers of one net apart.

    Shapes: input ``(N, C)`` or ``(N, C, *spatial)``, output the same.
    """

    def __init__(self, bn: nn.Module, n_mu: float, n_sigma: float, seed: int = 0, layer: int = 0) -> None:
        super().__init__()
        check_noise(n_mu, n_sigma)
        if not isinstance(bn, ManualNormBase | nn.modules.batchnorm._BatchNorm):
            raise TypeError(f"NoisyBatchNorm wraps a batch norm layer (ManualBatchNorm or nn.BatchNorm*), got {bn!r}.")
        self.bn = bn
        self.n_mu, self.n_sigma, self.seed, self.layer = float(n_mu), float(n_sigma), int(seed), int(layer)
        self.register_buffer("noise_step", torch.tensor(0, dtype=torch.long))  # forward passes that drew noise

    def draw(self, step: int, C: int) -> tuple[Tensor, Tensor]:
        """The scale s and shift b, each ``(C,)`` float64 on the CPU, of train step ``step`` (0-based)."""
        gen = torch.Generator().manual_seed(noise_seed(self.seed, self.layer, step))
        u = torch.rand(2, C, generator=gen, dtype=torch.float64)  # (2, C) in [0, 1)
        b = self.n_mu * (2.0 * u[0] - 1.0)  # U(−n_mu, n_mu)
        v = 1.0 + (self.n_sigma - 1.0) * u[1]  # U(1, n_sigma)
        return v.sqrt(), b

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(x)
        if not self.training or (self.n_mu == 0.0 and self.n_sigma == 1.0):
            return y
        s, b = self.draw(int(self.noise_step.item()), x.shape[1])
        with torch.no_grad():
            self.noise_step.add_(1)
        shape = (1, x.shape[1], *([1] * (x.dim() - 2)))  # broadcast per channel
        s, b = s.to(device=x.device, dtype=x.dtype).view(shape), b.to(device=x.device, dtype=x.dtype).view(shape)
        return y * s + b

    def extra_repr(self) -> str:
        return f"n_mu={self.n_mu}, n_sigma={self.n_sigma}, seed={self.seed}, layer={self.layer}"


class NoisyBNFactory:
    """A ``norm_factory`` for :func:`bn_core.models.build_model`: every norm layer is a noisy BN.

    Layers are numbered 1, 2, … in the order the model builder asks for them, so each
    layer gets its own noise stream. Use one factory per model built.
    """

    def __init__(
        self,
        n_mu: float,
        n_sigma: float,
        seed: int = 0,
        backend: Literal["manual", "torch"] = "manual",
        spatial: bool = False,
        momentum: float | None = 0.1,
        eps: float = 1e-5,
    ) -> None:
        check_noise(n_mu, n_sigma)
        self.n_mu, self.n_sigma, self.seed = n_mu, n_sigma, seed
        self.backend, self.spatial, self.momentum, self.eps = backend, spatial, momentum, eps
        self.built = 0  # layers built so far

    def __call__(self, C: int) -> NoisyBatchNorm:
        self.built += 1
        bn = make_norm("batch", C, self.backend, spatial=self.spatial, momentum=self.momentum, eps=self.eps)
        return NoisyBatchNorm(bn, self.n_mu, self.n_sigma, seed=self.seed, layer=self.built)
