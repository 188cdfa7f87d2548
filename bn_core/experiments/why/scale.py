"""Scale invariance of a Linear → BN layer, and what it does to the learning rate.

For y = BN(x Wᵀ + b), scaling the weights by α > 0 changes nothing downstream, because
the batch mean and standard deviation scale with them (ε = 0)::

    BN(x (αW)ᵀ + b) = BN(x Wᵀ + b)                      # the output is unchanged
    ∇_{αW} L = ∇_W L / α                                 # the gradient shrinks as the weights grow
    w_j · ∇_{w_j} L = 0                                  # each unit's gradient is orthogonal to its weights

(Ioffe & Szegedy 2015, arXiv:1502.03167, §3.3.) The consequence (van Laarhoven 2017,
arXiv:1706.05350; Hoffer et al. 2018, arXiv:1803.01814): one SGD step of size η turns a
unit's weight vector by tan θ = η‖∇_{w}L‖ / ‖w‖, so at scale α it turns by
tan θ_α = tan θ₁ / α²: the *effective* learning rate is η / ‖w‖².

With ε > 0 the invariance is only approximate: BN divides by √(α²σ² + ε) instead of
α√(σ² + ε), which matters once α²σ² is not much larger than ε. The page lets ε be tiny (exact)
or the layers' default 1e-5 (PyTorch refuses ε = 0 in training,
so "exact" here means ε = 1e-12, far below any α²σ² on the α grid).

Everything is float64, with the hand-written ``ManualBatchNorm`` and ``nn.BatchNorm1d``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.device import pick_device
from bn_core.layers import ManualBatchNorm
from bn_core.verdict import Verdict, num

__all__ = [
    "ScaleConfig",
    "ScaleCheck",
    "ScaleResult",
    "IdentityRow",
    "ALPHA_GRID",
    "BACKENDS",
    "IDENTITY_TOL",
    "run_scale",
    "scale_check",
    "identity_rows",
    "scale_verdict",
    "turn_verdict",
    "scale_law_frames",
]

ALPHA_GRID = tuple(float(a) for a in np.round(np.geomspace(0.01, 100.0, 25), 6))  # log scale, 1.0 included
BACKENDS = ("manual", "torch")
# An identity "holds" when its measured error is below 1e-6. In float64 the errors are
# ~1e-11 at ε = 1e-12 (rounding, amplified by the conditioning of a 32-example batch);
# with ε = 1e-5 and small weights ε visibly breaks them (~1e-3 … 1e-1). 1e-6 is far from both.
IDENTITY_TOL = 1e-6


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


@dataclass(frozen=True)
class ScaleCheck:
    """The identities at one weight scale α, for one backend."""

    backend: str  # "manual" (ManualBatchNorm) or "torch" (nn.BatchNorm1d)
    alpha: float
    output_max_abs_diff: float  # max |BN(x(αW)ᵀ + b) − BN(xWᵀ + b)|
    grad_rel_err: float  # ‖α∇_{αW}L − ∇_W L‖ / ‖∇_W L‖  (∇_{αW} = ∇_W / α)
    grad_norm_1: float  # ‖∇_W L‖ at α = 1
    grad_norm_alpha: float  # ‖∇_{αW} L‖
    orthogonality: float  # max_j |cos(w_j, g_j)|
    tan_turn_1: float  # mean tan θ of one SGD step at α = 1
    tan_turn_alpha: float  # … at α
    turn_rel_err: float  # max |α² tan θ_α − tan θ₁| / max |tan θ₁|  (tan θ_α = tan θ₁ / α²)
    eff_lr_1: float  # η / mean ‖w_j‖² at α = 1
    eff_lr_alpha: float  # … at α

    @property
    def grad_norm_gap(self) -> float:
        """|α‖∇_{αW}L‖ − ‖∇_W L‖| / ‖∇_W L‖."""
        return abs(self.alpha * self.grad_norm_alpha - self.grad_norm_1) / self.grad_norm_1


@dataclass(frozen=True, eq=False)
class ScaleResult:
    """The identities at ``config.alpha`` (one check per backend) and over :data:`ALPHA_GRID`."""

    config: ScaleConfig
    checks: tuple[ScaleCheck, ...]  # in BACKENDS order
    sweep: pd.DataFrame  # alpha, backend, metric (ScaleCheck's float fields), value

    def check(self, backend: str) -> ScaleCheck:
        return next(c for c in self.checks if c.backend == backend)


@dataclass(frozen=True)
class IdentityRow:
    """One row of the identity table: what is compared, and the measured error per backend."""

    identity: str
    manual: float
    torch: float


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


def scale_check(cfg: ScaleConfig, backend: str, alpha: float) -> ScaleCheck:
    """The identities at weight scale ``alpha``: each as (value at α = 1, value at α, error)."""
    x, W, b, r = _draws(cfg)
    y1, g1 = _forward(backend, W, x, b, r, cfg.eps)
    ya, ga = _forward(backend, alpha * W, x, b, r, cfg.eps)
    tan1, tana = _tan_turn(W, g1, cfg.lr), _tan_turn(alpha * W, ga, cfg.lr)
    orth = ((alpha * W) * ga).sum(dim=1).abs() / ((alpha * W).norm(dim=1) * ga.norm(dim=1))
    return ScaleCheck(
        backend=backend,
        alpha=float(alpha),
        output_max_abs_diff=float((ya - y1).abs().max()),
        grad_rel_err=float((alpha * ga - g1).norm() / g1.norm()),
        grad_norm_1=float(g1.norm()),
        grad_norm_alpha=float(ga.norm()),
        orthogonality=float(orth.max()),
        tan_turn_1=float(tan1.mean()),
        tan_turn_alpha=float(tana.mean()),
        turn_rel_err=float(((alpha**2) * tana - tan1).abs().max() / tan1.abs().max()),
        eff_lr_1=float(cfg.lr / (W**2).sum(dim=1).mean()),
        eff_lr_alpha=float(cfg.lr / ((alpha * W) ** 2).sum(dim=1).mean()),
    )


def _sweep_rows(cfg: ScaleConfig, backend: str, alpha: float) -> list[tuple[float, str, str, float]]:
    fields = asdict(scale_check(cfg, backend, alpha))
    return [(alpha, backend, k, v) for k, v in fields.items() if k not in ("backend", "alpha")]


def run_scale(cfg: ScaleConfig) -> ScaleResult:
    """The checks at ``cfg.alpha`` for both backends, and the same numbers over :data:`ALPHA_GRID`.

    Raises:
        ValueError: α ≤ 0, ε ≤ 0 or a batch smaller than 2.
    """
    if not (cfg.alpha > 0 and np.isfinite(cfg.alpha)) or not cfg.eps > 0 or cfg.n < 2:
        raise ValueError("Need α > 0, ε > 0 (PyTorch's BN refuses ε = 0) and a batch of at least 2 examples.")
    checks = tuple(scale_check(cfg, be, cfg.alpha) for be in BACKENDS)
    rows = [row for be in BACKENDS for alpha in ALPHA_GRID for row in _sweep_rows(cfg, be, alpha)]
    sweep = pd.DataFrame(rows, columns=["alpha", "backend", "metric", "value"])
    return ScaleResult(config=cfg, checks=checks, sweep=sweep)


# -- the table and the verdicts -----------------------------------------------------------------


def identity_rows(r: ScaleResult) -> tuple[IdentityRow, ...]:
    """The identities at α, one row each, with the measured error for both backends."""
    m, t, a = r.check("manual"), r.check("torch"), r.config.alpha
    return (
        IdentityRow("max |BN(x(αW)ᵀ + b) − BN(xWᵀ + b)|", m.output_max_abs_diff, t.output_max_abs_diff),
        IdentityRow("‖α·∇_αW L − ∇_W L‖ / ‖∇_W L‖", m.grad_rel_err, t.grad_rel_err),
        IdentityRow(
            f"‖∇_W L‖ = {num(m.grad_norm_1, 4)} vs α·‖∇_αW L‖ = {num(a)} × {num(m.grad_norm_alpha, 4)} (relative gap)",
            m.grad_norm_gap,
            t.grad_norm_gap,
        ),
        IdentityRow("max_j |cos(w_j, ∇_w_j L)|: the gradient is orthogonal to w", m.orthogonality, t.orthogonality),
        IdentityRow(
            f"tan θ of one SGD step: {num(m.tan_turn_1, 4)} at α = 1, {num(m.tan_turn_alpha, 4)} at α; "
            "gap to tan θ₁ / α²",
            m.turn_rel_err,
            t.turn_rel_err,
        ),
    )


def scale_verdict(r: ScaleResult) -> Verdict:
    """Do the output and gradient identities hold (error < IDENTITY_TOL, both backends)?"""
    worst = max(max(c.output_max_abs_diff, c.grad_rel_err) for c in r.checks)
    holds = worst < IDENTITY_TOL
    cfg = r.config
    how = "hold to" if holds else "are off by"
    tail = "" if holds else f": ε = {num(cfg.eps)} is no longer small next to the variance of αWx"
    return Verdict(
        holds,
        f"At α = {num(cfg.alpha)} with ε = {num(cfg.eps)}, both identities {how} **{num(worst, 2)}** (the largest "
        f"error over both backends; they hold when it is below {num(IDENTITY_TOL)}){tail}.",
    )


def turn_verdict(r: ScaleResult) -> Verdict:
    """Does one SGD step turn the weights by tan θ₁ / α² at scale α (the effective learning rate η/‖w‖²)?"""
    c, cfg = r.check("manual"), r.config
    holds = c.turn_rel_err < IDENTITY_TOL
    follows = "follows" if holds else f"does *not* follow (off by {num(c.turn_rel_err, 2)})"
    return Verdict(
        holds,
        f"One SGD step of η = {num(cfg.lr)} turns a unit's weights by tan θ = {num(c.tan_turn_1, 4)} at α = 1 but "
        f"{num(c.tan_turn_alpha, 4)} at α = {num(cfg.alpha)}, which {follows} tan θ₁ / α²: the effective learning "
        f"rate η/‖w‖² is {num(c.eff_lr_1, 4)} at α = 1 and {num(c.eff_lr_alpha, 4)} at α = {num(cfg.alpha)}.",
    )


def scale_law_frames(sweep: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plot-ready: measured ‖∇_αW L‖ and tan θ ÷ their value at α = 1 (manual backend), and the laws 1/α, 1/α².

    Returns ``(measured: alpha, metric ("grad_norm" / "tan_turn"), ratio; laws: alpha, law, ratio)``;
    measured rows are finite and positive (a log axis).
    """
    names = {"grad_norm_alpha": "grad_norm", "tan_turn_alpha": "tan_turn"}
    data = sweep[(sweep["backend"] == "manual") & sweep["metric"].isin(names)]
    at_one = data[np.isclose(data["alpha"], 1.0)].set_index("metric")["value"]
    data = data.assign(ratio=data["value"] / data["metric"].map(at_one), metric=data["metric"].map(names))
    ok = np.isfinite(data["ratio"].to_numpy(dtype=float)) & (data["ratio"] > 0)
    alphas = np.asarray(sorted(data["alpha"].unique()))
    laws = pd.DataFrame(
        {
            "alpha": np.concatenate([alphas, alphas]),
            "law": ["1/α"] * len(alphas) + ["1/α²"] * len(alphas),
            "ratio": np.concatenate([1 / alphas, 1 / alphas**2]),
        }
    )
    return data.loc[ok, ["alpha", "metric", "ratio"]].reset_index(drop=True), laws
