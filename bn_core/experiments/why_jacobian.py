"""Layer-to-layer Jacobians of a deep net at initialization, with and without BN.

The seed claim: BN keeps the singular values of each layer's Jacobian near 1, so a
gradient passes through many layers without vanishing or exploding ("dynamical
isometry", Pennington et al. 2017, arXiv:1711.04735). The test: build a deep MLP on the
digits (same init with and without BN), forward one batch in train mode, and for each
hidden layer i ≥ 2 take the Jacobian of its output h_i w.r.t. its input h_{i−1} with
:func:`torch.func.jacrev`.

**The whole batch.** In train mode BN couples the examples of a batch: every x̂ depends
on the batch mean and variance, so ∂h_i[n] / ∂h_{i−1}[n′] ≠ 0 for n ≠ n′. The Jacobian is
therefore taken for the whole batch, as an (N·W) × (N·W) matrix (W = width); without BN
it is block-diagonal (one W × W block per example) and its singular values are those of
the N per-example Jacobians together. BN's Jacobian has W singular values that are 0 up
to rounding: shifting a unit's pre-activation by the same amount for every example changes
nothing after normalization. W more are tiny: scaling a unit's pre-activations for the
whole batch changes nothing either, except through ε. ``erased`` counts the first kind
(below 1e-10 × the largest singular value), ``crushed`` both (below 1e-3 × the largest).

Also recorded: ‖∂L/∂h_i‖ for every layer (cross-entropy of the batch through the head),
which shows whether the gradient is preserved, vanishes or explodes with depth (Yang et
al. 2019, arXiv:1902.08129, prove that BN alone makes it *explode* in deep nets at init).

BN here is ``F.batch_norm`` with batch statistics and no running buffers (train mode,
nothing to update), γ = 1, β = 0 as at init. Everything is float64.

Sources: Pennington, Schoenholz & Ganguli 2017, arXiv:1711.04735; Yang et al. 2019,
arXiv:1902.08129; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import jacrev

from bn_core.device import pick_device
from bn_core.experiments.why import digits, sub_progress
from bn_core.models import MAX_DEPTH, MLP, MLPConfig, build_mlp
from bn_core.train import Progress

__all__ = ["JacobianConfig", "JacobianResult", "run_jacobian", "layer_fn", "MAX_JACOBIAN_SIZE", "ZERO_SV", "TINY_SV"]

MAX_JACOBIAN_SIZE = 1024  # N·W: a (N·W)² Jacobian and its SVD per layer; 1,024 keeps a layer well under a second
ZERO_SV = 1e-10  # below this × the layer's largest singular value: 0 up to float64 rounding ("erased")
TINY_SV = 1e-3  # below this × the largest: the direction is shrunk more than 1000× ("crushed")


@dataclass(frozen=True)
class JacobianConfig:
    """A deep MLP at init on one batch of digits."""

    depth: int = 10  # hidden layers (2 … 10); Jacobians of layers 2 … depth
    width: int = 32  # units per hidden layer W
    batch: int = 16  # examples N in the batch (≥ 2: BN needs a batch)
    activation: str = "tanh"  # sigmoid, tanh or relu
    seed: int = 0  # init weights


@dataclass(frozen=True, eq=False)
class JacobianResult:
    """Long-format records; ``variant`` is "no BN" or "BN"."""

    svals: pd.DataFrame  # variant, layer, index, value, erased: every singular value (largest first)
    layers: pd.DataFrame  # variant, layer, metric (sv_max, sv_p90, sv_median, sv_p10, erased, crushed), value
    grads: pd.DataFrame  # variant, layer (0 = input … depth), metric "grad_norm", value: ‖∂L/∂h_layer‖


def layer_fn(model: MLP, i: int, bn: bool) -> Callable[[Tensor], Tensor]:
    """h_{i−1} ↦ h_i for hidden layer i (1-based): linear, then batch-statistics BN if ``bn``, then act."""
    block = model.blocks[i - 1]
    W, b, act = block.linear.weight, block.linear.bias, block.act

    def f(h: Tensor) -> Tensor:
        z = h @ W.T + b  # (N, W)
        if bn:
            z = F.batch_norm(z, None, None, training=True, eps=model.config.eps)  # x̂; γ = 1, β = 0 at init
        return act(z)

    return f


def _check(cfg: JacobianConfig) -> None:
    if not 2 <= cfg.depth <= MAX_DEPTH:
        raise ValueError(f"Depth must be 2 … {MAX_DEPTH} (got {cfg.depth}).")
    if cfg.batch < 2:
        raise ValueError("BN needs a batch of at least 2 examples to compute a variance; use N ≥ 2.")
    if cfg.width < 1 or cfg.batch * cfg.width > MAX_JACOBIAN_SIZE:
        raise ValueError(
            f"The whole-batch Jacobian is (N·W)² = ({cfg.batch}·{cfg.width})²; keep N·W ≤ {MAX_JACOBIAN_SIZE} "
            "(lower the batch or the width)."
        )


def _model(cfg: JacobianConfig, bn: bool, split) -> MLP:
    mcfg = MLPConfig(
        in_features=split.n_features,
        n_classes=split.n_classes,
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        norm="batch" if bn else "none",
        backend="torch",
    )
    return build_mlp(mcfg, seed=cfg.seed).double().to(pick_device()).requires_grad_(False)  # probes, not training


def _layer_rows(J: Tensor, N: int, W: int) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """All singular values of the (N·W) × (N·W) Jacobian, and its summary (percentiles of the non-erased ones)."""
    s = torch.linalg.svdvals(J.reshape(N * W, -1)).cpu().numpy()  # (N·W,) descending
    alive = s[s > ZERO_SV * s[0]] if s[0] > 0 else s[:0]
    p10, p50, p90 = np.percentile(alive, [10, 50, 90]) if alive.size else (0.0, 0.0, 0.0)
    stats = [
        ("sv_max", float(s[0])),
        ("sv_p90", float(p90)),
        ("sv_median", float(p50)),
        ("sv_p10", float(p10)),
        ("erased", float(s.size - alive.size)),
        ("crushed", float((s <= TINY_SV * s[0]).sum())),
    ]
    return s, stats


def _grad_norms(model: MLP, hs: list[Tensor], y: Tensor, bn: bool) -> list[float]:
    """‖∂L/∂h_i‖ for i = 0 … depth, with L the mean cross-entropy of the batch."""
    leaves = [hs[0].detach().requires_grad_()]
    for i in range(1, len(hs)):
        leaves.append(layer_fn(model, i, bn)(leaves[-1]))
    loss = F.cross_entropy(model.head(leaves[-1]), y)
    grads = torch.autograd.grad(loss, leaves)
    return torch.stack([g.norm() for g in grads]).tolist()


def _one_net(
    cfg: JacobianConfig, name: str, bn: bool, x: Tensor, y: Tensor, progress: Progress | None
) -> tuple[list[pd.DataFrame], list[tuple], list[tuple]]:
    """Singular values, their summary rows and the gradient norms of one net (``name``)."""
    model = _model(cfg, bn, digits())
    with torch.no_grad():
        hs = [x]
        for i in range(1, cfg.depth + 1):
            hs.append(layer_fn(model, i, bn)(hs[-1]))
    sv_frames, layer_rows = [], []
    for i in range(2, cfg.depth + 1):
        J = jacrev(layer_fn(model, i, bn))(hs[i - 1])  # (N, W, N, W)
        s, stats = _layer_rows(J, cfg.batch, cfg.width)
        erased = s <= ZERO_SV * s[0]
        sv_frames.append(
            pd.DataFrame({"variant": name, "layer": i, "index": np.arange(s.size), "value": s, "erased": erased})
        )
        layer_rows += [(name, i, m, val) for m, val in stats]
        if progress is not None:
            progress((i - 1) / cfg.depth, f"layer {i}/{cfg.depth}")
    grad_rows = [(name, i, "grad_norm", g) for i, g in enumerate(_grad_norms(model, hs, y, bn))]
    return sv_frames, layer_rows, grad_rows


def run_jacobian(cfg: JacobianConfig, progress: Progress | None = None) -> JacobianResult:
    """Singular values of every hidden-to-hidden Jacobian and the gradient norm per layer, BN vs no BN.

    Raises:
        ValueError: depth outside 2 … 10, a batch < 2, or N·W above :data:`MAX_JACOBIAN_SIZE`.
    """
    _check(cfg)
    split, device = digits(), pick_device()
    x = split.x_train[: cfg.batch].to(device=device, dtype=torch.float64)  # (N, 64)
    y = split.y_train[: cfg.batch].to(device)
    sv_frames, layer_rows, grad_rows = [], [], []
    for v, (name, bn) in enumerate((("no BN", False), ("BN", True))):
        svs, layers, grads = _one_net(cfg, name, bn, x, y, sub_progress(progress, v, 2, name))
        sv_frames, layer_rows, grad_rows = sv_frames + svs, layer_rows + layers, grad_rows + grads
    columns = ["variant", "layer", "metric", "value"]
    return JacobianResult(
        svals=pd.concat(sv_frames, ignore_index=True),
        layers=pd.DataFrame(layer_rows, columns=columns),
        grads=pd.DataFrame(grad_rows, columns=columns),
    )
