"""Layer-to-layer Jacobians of a deep net at initialization, with and without BN.

The seed claim: BN keeps the singular values of each layer's Jacobian near 1, so a
gradient passes through many layers without vanishing or exploding ("dynamical
isometry", Pennington et al. 2017, arXiv:1711.04735). The test: build a deep MLP on the
digits (same init with and without BN), forward one batch in train mode, and for each
hidden layer i ≥ 2 take the Jacobian of its output h_i w.r.t. its input h_{i−1} by
reverse-mode autograd, one vector-Jacobian product per output coordinate, all of them in one
backward pass over stacked copies of the batch (:func:`jacobian`: what :func:`torch.func.jacrev`
computes, equal to it to float64 rounding, without the 0.9 s import of ``torch._dynamo`` that
``jacrev`` makes on a fresh server).

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

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from bn_core.binning import binned
from bn_core.device import pick_device
from bn_core.experiments.why.common import BN, NO_NORM, digits_split, finite_rows, sub_progress
from bn_core.models import MAX_DEPTH, MLP, MLPConfig, build_mlp
from bn_core.progress import Progress
from bn_core.verdict import Verdict, num

__all__ = [
    "JacobianConfig",
    "JacobianResult",
    "JacobianSummary",
    "JacobianVerdicts",
    "run_jacobian",
    "layer_fn",
    "jacobian",
    "singular_values",
    "MAX_JACOBIAN_SIZE",
    "ZERO_SV",
    "TINY_SV",
    "NEAR_ONE",
    "VANISHING",
    "EXPLODING",
    "jacobian_summary",
    "gradient_fate",
    "jacobian_verdict",
    "gradient_verdict",
    "jacobian_takeaway",
    "sv_band_frame",
    "sv_histogram",
    "grad_frame",
]

MAX_JACOBIAN_SIZE = 1024  # N·W: a (N·W)² Jacobian and its SVD per layer; 1,024 keeps a layer well under a second
ZERO_SV = 1e-10  # below this × the layer's largest singular value: 0 up to float64 rounding ("erased")
TINY_SV = 1e-3  # below this × the largest: the direction is shrunk more than 1000× ("crushed")
# "Near 1": the median singular value within a factor of 2 of 1. A gradient crossing 10 such
# layers changes by at most 2¹⁰ ≈ 1000× in the worst case, and typically far less.
NEAR_ONE = 2.0
# The gradient "vanishes" from the last hidden layer back to the input when it shrinks below
# a tenth, and "explodes" when it grows more than tenfold: an order of magnitude either way.
VANISHING, EXPLODING = 0.1, 10.0


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
    """Long-format records; ``variant`` is "no norm" or "BN"."""

    svals: pd.DataFrame  # variant, layer, index, value, erased: every singular value (largest first)
    layers: pd.DataFrame  # variant, layer, metric (sv_max, sv_p90, sv_median, sv_p10, erased, crushed), value
    grads: pd.DataFrame  # variant, layer (0 = input … depth), metric "grad_norm", value: ‖∂L/∂h_layer‖
    summary: JacobianSummary

    @property
    def verdicts(self) -> JacobianVerdicts:
        s = self.summary
        return JacobianVerdicts(jacobian_verdict(s), gradient_verdict(s), jacobian_takeaway(s))


@dataclass(frozen=True)
class JacobianVerdicts:
    """The tab's sentences."""

    singular_values: Verdict  # are BN's singular values near 1?
    gradient: Verdict  # is the gradient preserved on its way back through the BN net?
    takeaway: Verdict


@dataclass(frozen=True)
class JacobianSummary:
    """Means over layers 2 … depth of the singular-value statistics, and the gradient's gain, per net."""

    depth: int  # hidden layers
    directions: int  # N·W: singular values per layer
    median_bn: float  # mean over layers of the median non-erased singular value, with BN
    median_plain: float  # … without
    max_bn: float  # mean over layers of the largest singular value, with BN
    max_plain: float
    erased_bn: float  # directions per layer that are exactly 0 (up to rounding), with BN
    erased_plain: float
    crushed_bn: float  # directions per layer shrunk more than 1000× (erased included), with BN
    crushed_plain: float
    gain_bn: float  # ‖∂L/∂h_0‖ / ‖∂L/∂h_depth‖ with BN: 1 preserved, ≪ 1 vanishing, ≫ 1 exploding
    gain_plain: float


def layer_fn(model: MLP, i: int, bn: bool) -> Callable[[Tensor], Tensor]:
    """h_{i−1} ↦ h_i for hidden layer i (1-based): linear, then batch-statistics BN if ``bn``, then act.

    ``h`` is one batch ``(N, W)``, or ``(K, N, W)``: K copies of a batch, each normalized over
    its own N examples (what :func:`jacobian` differentiates).
    """
    block = model.blocks[i - 1]
    W, b, act = block.linear.weight, block.linear.bias, block.act

    def f(h: Tensor) -> Tensor:
        z = h @ W.T + b  # (…, N, W)
        if bn:
            z = _batch_norm_per_batch(z, model.config.eps)  # x̂; γ = 1, β = 0 at init
        return act(z)

    return f


def _batch_norm_per_batch(z: Tensor, eps: float) -> Tensor:
    """``F.batch_norm`` with batch statistics over the N axis of ``(N, W)``, or of each batch of ``(K, N, W)``."""
    if z.dim() == 2:
        return F.batch_norm(z, None, None, training=True, eps=eps)
    K, N, W = z.shape
    channels = z.transpose(0, 1).reshape(N, K * W)  # every copy's units side by side, as K·W channels
    return F.batch_norm(channels, None, None, training=True, eps=eps).reshape(N, K, W).transpose(0, 1)


def jacobian(f: Callable[[Tensor], Tensor], h: Tensor) -> Tensor:
    """∂f(h)/∂h, shaped ``(*f(h).shape, *h.shape)``, for an f that maps stacked copies of h copy by copy.

    Reverse mode, every row at once: f runs on n = f(h).numel() copies of h, and one backward
    of Σ_k (coordinate k of copy k) leaves row k of the Jacobian in copy k's gradient. (A
    batched ``torch.autograd.grad`` with the rows of the identity as output gradients gives the
    same; handing autograd an output-gradient tensor imports sympy, 0.35 s on a fresh server.)
    """
    with torch.no_grad():
        shape = f(h).shape
    n = math.prod(shape)
    copies = h.detach().expand(n, *h.shape).clone().requires_grad_()
    with torch.enable_grad():
        diagonal = f(copies).reshape(n, n).diagonal()  # coordinate k of copy k
        (J,) = torch.autograd.grad(diagonal.sum(), copies)  # J[k] = ∂(f(h))_k / ∂h
    return J.reshape(*shape, *h.shape)


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


def singular_values(J: Tensor, N: int, W: int) -> Tensor:
    """The N·W singular values of the whole-batch Jacobian ``J`` (N, W, N, W), largest first.

    When every cross-example block is exactly 0 (no BN: each example's output depends on its
    own input only), the matrix is block-diagonal and its singular values are those of its N
    diagonal W × W blocks together: N small SVDs instead of one of size N·W (18 × 512² took
    0.3 s of the Why page's first view). Otherwise (BN couples the batch) the whole matrix.
    """
    blocks = J.diagonal(dim1=0, dim2=2).permute(2, 0, 1)  # (N, W, W): ∂h_i[n] / ∂h_{i−1}[n]
    diagonal_only = torch.zeros_like(J)
    diagonal_only.diagonal(dim1=0, dim2=2).copy_(J.diagonal(dim1=0, dim2=2))
    if torch.equal(J, diagonal_only):
        return torch.linalg.svdvals(blocks).flatten().sort(descending=True).values
    return torch.linalg.svdvals(J.reshape(N * W, N * W))


def _layer_rows(J: Tensor, N: int, W: int) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """All singular values of the (N·W) × (N·W) Jacobian, and its summary (percentiles of the non-erased ones)."""
    s = singular_values(J, N, W).cpu().numpy()  # (N·W,) descending
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
    model = _model(cfg, bn, digits_split())
    with torch.no_grad():
        hs = [x]
        for i in range(1, cfg.depth + 1):
            hs.append(layer_fn(model, i, bn)(hs[-1]))
    sv_frames, layer_rows = [], []
    for i in range(2, cfg.depth + 1):
        J = jacobian(layer_fn(model, i, bn), hs[i - 1])  # (N, W, N, W)
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
    split, device = digits_split(), pick_device()
    x = split.x_train[: cfg.batch].to(device=device, dtype=torch.float64)  # (N, 64)
    y = split.y_train[: cfg.batch].to(device)
    sv_frames, layer_rows, grad_rows = [], [], []
    for v, (name, bn) in enumerate(((NO_NORM, False), (BN, True))):
        svs, layers, grads = _one_net(cfg, name, bn, x, y, sub_progress(progress, v, 2, name))
        sv_frames, layer_rows, grad_rows = sv_frames + svs, layer_rows + layers, grad_rows + grads
    columns = ["variant", "layer", "metric", "value"]
    layers, grads = pd.DataFrame(layer_rows, columns=columns), pd.DataFrame(grad_rows, columns=columns)
    return JacobianResult(
        svals=pd.concat(sv_frames, ignore_index=True),
        layers=layers,
        grads=grads,
        summary=jacobian_summary(layers, grads, cfg),
    )


def jacobian_summary(layers: pd.DataFrame, grads: pd.DataFrame, cfg: JacobianConfig) -> JacobianSummary:
    """Means over layers of each statistic, and the gradient's gain from layer ``depth`` back to the input."""
    mean = layers.groupby(["metric", "variant"])["value"].mean()
    g = grads.set_index(["variant", "layer"])["value"]

    def gain(variant: str) -> float:
        return float(g[(variant, 0)] / g[(variant, cfg.depth)])

    def m(metric: str, variant: str) -> float:
        return float(mean[(metric, variant)])

    return JacobianSummary(
        depth=cfg.depth,
        directions=cfg.batch * cfg.width,
        median_bn=m("sv_median", BN),
        median_plain=m("sv_median", NO_NORM),
        max_bn=m("sv_max", BN),
        max_plain=m("sv_max", NO_NORM),
        erased_bn=m("erased", BN),
        erased_plain=m("erased", NO_NORM),
        crushed_bn=m("crushed", BN),
        crushed_plain=m("crushed", NO_NORM),
        gain_bn=gain(BN),
        gain_plain=gain(NO_NORM),
    )


# -- verdicts -----------------------------------------------------------------------------------


def gradient_fate(gain: float) -> str:
    """ "vanishing", "exploding" or "preserved" for a gain ‖∂L/∂h_0‖ / ‖∂L/∂h_depth‖."""
    if not math.isfinite(gain) or gain > EXPLODING:
        return "exploding"
    return "vanishing" if gain < VANISHING else "preserved"


def jacobian_verdict(s: JacobianSummary) -> Verdict:
    """Does BN keep the layer Jacobian's singular values near 1 (median within NEAR_ONE×, nothing crushed)?"""
    near = 1 / NEAR_ONE <= s.median_bn <= NEAR_ONE
    holds = near and s.crushed_bn == 0
    text = (
        f"**Measured** (layers 2 … {s.depth}, mean): median singular value **{num(s.median_bn, 2)}** with BN, "
        f"**{num(s.median_plain, 2)}** without; largest {num(s.max_bn, 2)} vs {num(s.max_plain, 2)}. Of the "
        f"{s.directions} directions of a layer, BN erases {num(s.erased_bn)} exactly and shrinks "
        f"{num(s.crushed_bn)} in all by more than 1000× (no norm: {num(s.erased_plain)} and "
        f"{num(s.crushed_plain)}). "
    )
    if holds:
        return Verdict(True, text + f"BN's singular values stay within {num(NEAR_ONE)}× of 1.")
    if near:
        why = f"its median is near 1, but it crushes {num(s.crushed_bn)} directions"
    else:
        why = f"its median is more than {num(NEAR_ONE)}× away from 1"
    return Verdict(False, text + f"BN's Jacobian is *not* near an isometry: {why}.")


def gradient_verdict(s: JacobianSummary) -> Verdict:
    """Is the gradient preserved (neither vanishing nor exploding) on its way back through the BN net?"""
    bn, plain = gradient_fate(s.gain_bn), gradient_fate(s.gain_plain)
    return Verdict(
        bn == "preserved",
        f"From the last hidden layer back to the input the gradient norm is multiplied by **{num(s.gain_bn)}** "
        f"with BN ({bn}) and **{num(s.gain_plain)}** without ({plain}); vanishing means below "
        f"{num(VANISHING)}, exploding above {num(EXPLODING)}.",
    )


def jacobian_takeaway(s: JacobianSummary) -> Verdict:
    """What the init-time Jacobians say about the "singular values near 1" claim."""
    bn, plain = gradient_fate(s.gain_bn), gradient_fate(s.gain_plain)
    if plain == "vanishing" and bn != "vanishing":
        first = "At initialization BN stops the gradient from vanishing on its way back through this deep net"
    elif bn == plain:
        first = f"At initialization the gradient is {bn} with and without BN here"
    else:
        first = f"At initialization the gradient is {bn} with BN and {plain} without"
    isometry = jacobian_verdict(s).holds
    second = (
        "and BN's Jacobian stays near an isometry."
        if isometry
        else "but BN's Jacobian is no isometry: it erases directions (a unit shifted, or scaled, for the whole "
        "batch) and spreads the rest."
    )
    third = ""
    if s.gain_bn > 1:
        short = "" if bn == "exploding" else ", short of exploding"
        third = f" With BN the gradient grows toward the input (×{num(s.gain_bn)}{short}), as Yang et al. 2019 predict."
    return Verdict(isometry, f"{first}, {second}{third}")


# -- plot-ready frames --------------------------------------------------------------------------


def sv_band_frame(layers: pd.DataFrame) -> pd.DataFrame:
    """variant, layer and one column per statistic; rows with a positive, finite band (a log axis)."""
    wide = layers.pivot_table(index=["variant", "layer"], columns="metric", values="value").reset_index()
    return finite_rows(wide[wide["sv_p10"] > 0], "sv_p10", "sv_p90", "sv_median")


def sv_histogram(svals: pd.DataFrame, layer: int, bins: int = 40) -> tuple[pd.DataFrame, str]:
    """Pre-binned log₁₀ singular values of one layer per variant (erased ones left out), and the erased counts."""
    at = svals[svals["layer"] == layer]
    kept = at[~at["erased"]]
    series = {v: np.log10(d["value"].to_numpy()) for v, d in kept.groupby("variant")}
    hist = binned(series, bins=bins).rename(columns={"series": "variant"})
    erased = at[at["erased"]].groupby("variant").size()
    return hist, ", ".join(f"{v}: {n}" for v, n in erased.items()) or "none"


def grad_frame(grads: pd.DataFrame) -> pd.DataFrame:
    """‖∂L/∂h_i‖ rows, positive and finite (a log axis)."""
    return finite_rows(grads[grads["value"] > 0])
