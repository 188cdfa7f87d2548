"""Scale invariance of a Linear → BN layer, and what it does to the learning rate.

For y = BN(x Wᵀ + b), scaling the weights by α > 0 changes nothing downstream, because
the batch mean and standard deviation scale with them (ε = 0)::

    BN(x (αW)ᵀ + b) = BN(x Wᵀ + b)                      # the output is unchanged
    ∇_{αW} L = ∇_W L / α                                 # the gradient shrinks as the weights grow
    w_j · ∇_{w_j} L = 0                                  # each unit's gradient is orthogonal to its weights

(Ioffe & Szegedy 2015, arXiv:1502.03167, §3.3.) The consequence (van Laarhoven 2017,
arXiv:1706.05350; Hoffer et al. 2018, arXiv:1803.01814): one SGD step of size η turns a
unit's weight vector by tan θ = η‖∇_{w}L‖ / ‖w‖, so at scale α it turns by
tan θ_α = tan θ₁ / α²: the *effective* learning rate is η / ‖w‖². And because the
gradient is orthogonal to w, every step makes w longer, ‖w − η g‖² = ‖w‖² + η²‖g‖², so
plain SGD's effective step size shrinks by itself as training goes on.

With ε > 0 the invariance is only approximate: BN divides by √(α²σ² + ε) instead of
α√(σ² + ε), which matters once α²σ² is not much larger than ε. The page lets ε be tiny (exact)
or the layers' default 1e-5 (PyTorch refuses ε = 0 in training,
so "exact" here means ε = 1e-12, far below any α²σ² on the α grid).

Everything is float64, with the hand-written ``ManualBatchNorm`` and ``nn.BatchNorm1d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.device import pick_device
from bn_core.layers import ManualBatchNorm

__all__ = ["ScaleConfig", "ScaleResult", "run_scale", "scale_check", "ALPHA_GRID", "BACKENDS"]

ALPHA_GRID = tuple(float(a) for a in np.round(np.geomspace(0.01, 100.0, 25), 6))  # log scale, 1.0 included
BACKENDS = ("manual", "torch")


@dataclass(frozen=True)
class ScaleConfig:
    """One Linear → BN layer on a random float64 batch."""

    alpha: float = 10.0  # the weight scale α shown in detail
    eps: float = 1e-12  # BN's ε (tiny: the identities hold to rounding; 1e-5: PyTorch's default). torch refuses 0
    lr: float = 0.1  # η of the one SGD step used to measure the turning angle
    n: int = 32  # batch size N
    d_in: int = 8  # input features D
    c: int = 4  # units C after the linear layer (= BN channels)
    seed: int = 0  # draws x, W, b and the readout r


@dataclass(frozen=True, eq=False)
class ScaleResult:
    """The identities at ``cfg.alpha`` and over :data:`ALPHA_GRID` (metric names: :func:`scale_check`'s keys)."""

    checks: pd.DataFrame  # one row per backend: backend, then one column per metric, at cfg.alpha
    sweep: pd.DataFrame  # alpha, backend, metric, value


def _draws(cfg: ScaleConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x, W, b, r drawn on the CPU (the same numbers on every device), then moved to pick_device()."""
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.n, cfg.d_in, generator=gen, dtype=torch.float64)  # (N, D)
    W = torch.randn(cfg.c, cfg.d_in, generator=gen, dtype=torch.float64) / cfg.d_in**0.5  # (C, D), rows ‖w‖ ≈ 1
    b = torch.randn(cfg.c, generator=gen, dtype=torch.float64)  # (C,)  cancelled by BN's mean
    r = torch.randn(cfg.n, cfg.c, generator=gen, dtype=torch.float64)  # (N, C)  L = Σ r ⊙ y / N: ∂L/∂y = r / N
    device = pick_device()
    return x.to(device), W.to(device), b.to(device), r.to(device)


def _bn(backend: str, C: int, eps: float, device: torch.device) -> nn.Module:
    layer = ManualBatchNorm(C, eps=eps) if backend == "manual" else nn.BatchNorm1d(C, eps=eps)
    return layer.to(device=device, dtype=torch.float64).train()


def _forward(backend: str, W: Tensor, x: Tensor, b: Tensor, r: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """The layer's output y and ∂L/∂W at these weights, L = Σ r ⊙ y / N (a fixed random readout)."""
    W = W.detach().requires_grad_()
    y = _bn(backend, W.shape[0], eps, x.device)(x @ W.T + b)  # (N, C)
    (grad,) = torch.autograd.grad((r * y).sum() / x.shape[0], W)
    return y.detach(), grad


def _tan_turn(W: Tensor, grad: Tensor, lr: float) -> Tensor:
    """Per unit: tan of the angle between w and w − η g, from its parts along and across w (exact, any g)."""
    W_new = W - lr * grad  # (C, D)
    w_hat = W / W.norm(dim=1, keepdim=True)
    along = (W_new * w_hat).sum(dim=1, keepdim=True)  # (C, 1)
    across = (W_new - along * w_hat).norm(dim=1)  # (C,)
    return across / along.squeeze(1)


def scale_check(cfg: ScaleConfig, backend: str, alpha: float) -> dict[str, float]:
    """The identities at weight scale ``alpha``: each as (value at α = 1, value at α, error)."""
    x, W, b, r = _draws(cfg)
    y1, g1 = _forward(backend, W, x, b, r, cfg.eps)
    ya, ga = _forward(backend, alpha * W, x, b, r, cfg.eps)
    tan1, tana = _tan_turn(W, g1, cfg.lr), _tan_turn(alpha * W, ga, cfg.lr)
    orth = ((alpha * W) * ga).sum(dim=1).abs() / ((alpha * W).norm(dim=1) * ga.norm(dim=1))
    return {
        "output_max_abs_diff": float((ya - y1).abs().max()),
        "grad_rel_err": float((alpha * ga - g1).norm() / g1.norm()),  # ∇_{αW} = ∇_W / α  ⇔  α∇_{αW} − ∇_W = 0
        "grad_norm_1": float(g1.norm()),
        "grad_norm_alpha": float(ga.norm()),
        "orthogonality": float(orth.max()),  # max_j |cos(w_j, g_j)|
        "tan_turn_1": float(tan1.mean()),
        "tan_turn_alpha": float(tana.mean()),
        "turn_rel_err": float(((alpha**2) * tana - tan1).abs().max() / tan1.abs().max()),  # tan θ_α = tan θ₁ / α²
        "eff_lr_1": float(cfg.lr / (W**2).sum(dim=1).mean()),
        "eff_lr_alpha": float(cfg.lr / ((alpha * W) ** 2).sum(dim=1).mean()),
    }


def run_scale(cfg: ScaleConfig) -> ScaleResult:
    """The checks at ``cfg.alpha`` for both backends, and the same numbers over :data:`ALPHA_GRID`.

    Raises:
        ValueError: α ≤ 0, ε ≤ 0 or a batch smaller than 2.
    """
    if not (cfg.alpha > 0 and np.isfinite(cfg.alpha)) or not cfg.eps > 0 or cfg.n < 2:
        raise ValueError("Need α > 0, ε > 0 (PyTorch's BN refuses ε = 0) and a batch of at least 2 examples.")
    checks = pd.DataFrame([{"backend": be, **scale_check(cfg, be, cfg.alpha)} for be in BACKENDS])
    rows = [
        (alpha, be, metric, value)
        for be in BACKENDS
        for alpha in ALPHA_GRID
        for metric, value in scale_check(cfg, be, alpha).items()
    ]
    sweep = pd.DataFrame(rows, columns=["alpha", "backend", "metric", "value"])
    return ScaleResult(checks=checks, sweep=sweep)
