"""Normalization Steps: Algorithm 1 of Ioffe & Szegedy 2015 on one batch, with every number kept.

A :class:`StepsConfig` goes in (a synthetic distribution or the user's CSV, γ, β, ε,
backend); a :class:`StepsResult` of DataFrames comes out. The same batch is also run
through the other backend (manual ↔ torch) and through the hand-written backward
vs autograd, so the page can show that they agree, and a small (N, C, H, W) tensor
shows which cells share a mean and variance under batch / layer / instance /
group norm (Wu & He 2018, Fig. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bn_core.binning import binned
from bn_core.data import ParsedCSV, parse_csv, synthetic_batch
from bn_core.device import pick_device
from bn_core.functional import (
    batch_norm_backward,
    batch_norm_backward_compact,
    batch_norm_forward,
    values_per_channel,
)
from bn_core.verdict import Verdict, num

__all__ = [
    "StepsConfig",
    "StepsResult",
    "run_steps",
    "load_batch",
    "norm_groups",
    "norm_comparison",
    "normalized_verdict",
    "NORM_SHAPE",
]

NORM_SHAPE = (4, 6, 3, 3)  # (N, C, H, W) of the norm-comparison tensor
# x̂'s biased variance is σ²_B/(σ²_B + ε). Within 1 % of 1 the page may say "variance ≈ 1"; below
# that ε is no longer negligible next to σ²_B and the page says so instead.
UNIT_VAR_TOL = 0.01


@dataclass(frozen=True)
class StepsConfig:
    """Everything that determines the page's numbers."""

    distribution: str = "normal"  # synthetic batch shape (bn_core.data.DISTRIBUTIONS)
    n: int = 16  # batch size N (synthetic data)
    means: tuple[float, ...] = (2.0, -1.0, 10.0)  # per-feature population mean
    scales: tuple[float, ...] = (1.0, 3.0, 0.5)  # per-feature population std
    gamma: tuple[float, ...] = (1.0, 1.0, 1.0)  # per-feature γ
    beta: tuple[float, ...] = (0.0, 0.0, 0.0)  # per-feature β
    eps: float = 1e-5  # ε added to σ²_B
    backend: str = "manual"  # "manual" (bn_core.functional) or "torch" (F.batch_norm)
    feature: int = 0  # the feature j shown in detail
    seed: int = 0  # global seed
    csv: bytes | None = None  # the user's CSV; replaces the synthetic batch when set


@dataclass(frozen=True)
class StepsResult:
    """The computed batch. ``x``, ``x_hat``, ``y`` are (N, C) float64 arrays."""

    x: np.ndarray
    x_hat: np.ndarray
    y: np.ndarray
    columns: tuple[str, ...]
    stats: pd.DataFrame  # one row per feature: mu_B, var_B, inv_std, gamma, beta, y_mean, y_std, …
    table: pd.DataFrame  # example × (x, x̂, y) per feature, wide, for display and download
    hist: pd.DataFrame  # pre-binned x, x_hat, y of the chosen feature
    backends: pd.DataFrame  # manual vs torch: quantity, max_abs_diff
    backward: pd.DataFrame  # hand-written backward vs autograd: quantity, version, max_abs_diff
    grads: pd.DataFrame  # per feature: dgamma, dbeta (hand-written)
    device: str
    dtype: str
    eps: float  # the ε the batch was normalized with


def load_batch(cfg: StepsConfig) -> tuple[np.ndarray | None, tuple[str, ...], ParsedCSV | None]:
    """The (N, C) batch the config describes, its column names and, for a CSV, the parse report."""
    if cfg.csv is not None:
        parsed = parse_csv(cfg.csv)
        return parsed.values, parsed.columns, parsed
    x = synthetic_batch(cfg.distribution, cfg.n, cfg.means, cfg.scales, cfg.seed)
    return x, tuple(f"f{j}" for j in range(x.shape[1])), None


def _fit(values: tuple[float, ...], c: int, fill: float) -> tuple[float, ...]:
    """γ/β given for another feature count: pad with ``fill`` or cut to ``c``."""
    return tuple(values[:c]) + (fill,) * max(0, c - len(values))


def _forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, backend: str) -> dict:
    """mu_B, var_B, x_hat, y through one backend (torch's numbers come from torch itself)."""
    if backend == "manual":
        y, cache = batch_norm_forward(x, gamma, beta, eps)
        return {"mu_B": cache.mu_B, "var_B": cache.var_B, "x_hat": cache.x_hat, "y": y}
    m = values_per_channel(x)
    running_mean, running_var = torch.zeros_like(gamma), torch.ones_like(gamma)
    # momentum=1 makes torch copy the batch statistics into the buffers (var unbiased).
    y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=1.0, eps=eps)
    x_hat = F.batch_norm(x, None, None, None, None, training=True, eps=eps)
    return {"mu_B": running_mean, "var_B": running_var * (m - 1) / m, "x_hat": x_hat, "y": y}


def _stats_frame(out: dict, gamma: torch.Tensor, beta: torch.Tensor, eps: float, columns: tuple[str, ...]):
    mu_B, var_B, y = (out[k].cpu().numpy() for k in ("mu_B", "var_B", "y"))
    g, b = gamma.cpu().numpy(), beta.cpu().numpy()
    return pd.DataFrame(
        {
            "feature": list(columns),
            "mu_B": mu_B,
            "var_B": var_B,
            "sigma_B": np.sqrt(var_B + eps),
            "inv_std": 1.0 / np.sqrt(var_B + eps),
            "gamma": g,
            "beta": b,
            "y_mean": y.mean(axis=0),
            "y_std": y.std(axis=0),
            "expected_y_std": np.abs(g) * np.sqrt(var_B / (var_B + eps)),
        }
    )


def _table(x: np.ndarray, x_hat: np.ndarray, y: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    parts = {"example": np.arange(x.shape[0])}
    for j, name in enumerate(columns):
        parts.update({f"x[{name}]": x[:, j], f"x̂[{name}]": x_hat[:, j], f"y[{name}]": y[:, j]})
    return pd.DataFrame(parts)


def _backend_check(x, gamma, beta, eps, primary: dict) -> pd.DataFrame:
    other = _forward(x, gamma, beta, eps, "torch" if primary["backend"] == "manual" else "manual")
    rows = [(k, float((primary[k] - other[k]).abs().max())) for k in ("mu_B", "var_B", "x_hat", "y")]
    return pd.DataFrame(rows, columns=["quantity", "max_abs_diff"])


def _backward_check(x, gamma, beta, eps, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """L = Σ w·y with seeded random w: hand-written (staged, compact) vs autograd."""
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=x.dtype).to(x.device)
    x_, gamma_, beta_ = (t.detach().clone().requires_grad_() for t in (x, gamma, beta))
    y_auto = F.batch_norm(x_, None, None, gamma_, beta_, training=True, eps=eps)
    auto = torch.autograd.grad((w * y_auto).sum(), (x_, gamma_, beta_))
    _, cache = batch_norm_forward(x, gamma, beta, eps)
    dy = w  # ∂L/∂y for L = Σ w·y
    rows = []
    for version, fn in (("staged", batch_norm_backward), ("compact", batch_norm_backward_compact)):
        for name, mine, ref in zip(("dx", "dgamma", "dbeta"), fn(dy, cache), auto, strict=True):
            rows.append((name, version, float((mine - ref).abs().max())))
    _dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    grads = pd.DataFrame({"dgamma": dgamma.cpu().numpy(), "dbeta": dbeta.cpu().numpy()})
    return pd.DataFrame(rows, columns=["quantity", "version", "max_abs_diff"]), grads


def norm_groups(kind: str, shape: tuple[int, int, int, int], groups: int) -> np.ndarray:
    """(N, C) integer labels: cells with the same label share one mean and variance.

    Spatial positions always share with their (n, c) cell, so (N, C) is the whole story.
    """
    N, C = shape[0], shape[1]
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    if kind == "batch":
        return c_idx  # per channel, across the batch
    if kind == "layer":
        return n_idx  # per example, across all channels
    if kind == "instance":
        return n_idx * C + c_idx  # per example and channel
    if kind == "group":
        if C % groups != 0:
            raise ValueError(f"The group count G={groups} must divide the channel count C={C}.")
        return n_idx * groups + c_idx // (C // groups)  # per example, per group of C/G channels
    raise ValueError(f"Unknown norm kind {kind!r}.")


def norm_comparison(seed: int, groups: int) -> pd.DataFrame:
    """Which cells of a seeded (N, C, H, W) tensor share statistics under each norm, and those statistics.

    Returns a long frame: ``kind, n, c, group, mean, var, values_shared``. Group norm is
    left out when ``groups`` does not divide C (the page says why).
    """
    device = pick_device()
    dtype = torch.float32 if device.type == "mps" else torch.float64
    gen = torch.Generator().manual_seed(seed + 2)
    t = torch.randn(NORM_SHAPE, generator=gen, dtype=dtype).to(device)  # (N, C, H, W)
    kinds = ["batch", "layer", "instance"] + (["group"] if NORM_SHAPE[1] % groups == 0 else [])
    frames = []
    for kind in kinds:
        labels = norm_groups(kind, NORM_SHAPE, groups)  # (N, C)
        cell_sum = t.sum(dim=(2, 3)).cpu().numpy()  # (N, C)
        cell_sq = (t * t).sum(dim=(2, 3)).cpu().numpy()  # (N, C)
        hw = NORM_SHAPE[2] * NORM_SHAPE[3]
        n_idx, c_idx = np.meshgrid(np.arange(NORM_SHAPE[0]), np.arange(NORM_SHAPE[1]), indexing="ij")
        frame = pd.DataFrame({"n": n_idx.ravel(), "c": c_idx.ravel(), "group": labels.ravel()})
        frame["kind"] = kind
        sums = pd.DataFrame({"g": labels.ravel(), "s": cell_sum.ravel(), "q": cell_sq.ravel()}).groupby("g").sum()
        counts = pd.Series(labels.ravel()).value_counts().sort_index() * hw
        mean = sums["s"] / counts
        frame["mean"] = frame["group"].map(mean)
        frame["var"] = frame["group"].map(sums["q"] / counts - mean**2)
        frame["values_shared"] = frame["group"].map(counts)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def run_steps(cfg: StepsConfig, _progress=None) -> StepsResult:
    """Run Algorithm 1 on the configured batch and check it every way the page shows.

    Raises:
        ValueError: no usable data (bad CSV), or fewer than 2 examples: train-mode BN
            needs more than one value per feature.
    """
    x_np, columns, parsed = load_batch(cfg)
    if x_np is None:
        raise ValueError(" ".join(i.text for i in parsed.issues if i.level == "error") or "No usable data.")
    if x_np.shape[0] < 2:
        raise ValueError("Train-mode BN needs more than one value per feature: choose a batch of N ≥ 2.")
    device = pick_device()
    dtype = torch.float32 if device.type == "mps" else torch.float64  # mps has no float64
    C = x_np.shape[1]
    x = torch.as_tensor(x_np, dtype=dtype).to(device)  # (N, C)
    gamma = torch.tensor(_fit(cfg.gamma, C, 1.0), dtype=dtype, device=device)  # (C,)
    beta = torch.tensor(_fit(cfg.beta, C, 0.0), dtype=dtype, device=device)  # (C,)
    out = {**_forward(x, gamma, beta, cfg.eps, cfg.backend), "backend": cfg.backend}
    x_hat, y = out["x_hat"].cpu().numpy(), out["y"].cpu().numpy()
    j = min(max(cfg.feature, 0), C - 1)
    backward, grads = _backward_check(x, gamma, beta, cfg.eps, cfg.seed)
    grads.insert(0, "feature", list(columns))
    return StepsResult(
        x=x_np,
        x_hat=x_hat,
        y=y,
        columns=columns,
        stats=_stats_frame(out, gamma, beta, cfg.eps, columns),
        table=_table(x_np, x_hat, y, columns),
        hist=pd.concat([binned({k: v[:, j]}, bins=20) for k, v in (("x", x_np), ("x̂", x_hat), ("y", y))]),
        backends=_backend_check(x, gamma, beta, cfg.eps, out),
        backward=backward,
        grads=grads,
        device=str(device),
        dtype=str(dtype).replace("torch.", ""),
        eps=cfg.eps,
    )


def normalized_verdict(r: StepsResult, j: int) -> Verdict:
    """Whether x̂ of feature j really has mean 0 and variance ≈ 1, from the batch's own numbers."""
    x_hat = r.x_hat[:, j]
    mean, var = float(x_hat.mean()), float(x_hat.var())
    var_B, s = float(r.stats.var_B.iloc[j]), r.stats.iloc[j]
    y_part = (
        f"y then has mean {num(float(r.y[:, j].mean()))} (β = {num(float(s.beta))}) and std {num(float(s.y_std))} "
        f"(|γ|·std(x̂) = {num(abs(float(s.gamma)) * var**0.5)})."
    )
    if abs(var - 1.0) <= UNIT_VAR_TOL:
        return Verdict(
            True,
            f"x̂ has mean {num(mean)} ≈ 0 and variance {num(var, 6)} ≈ 1 here, whatever the input's "
            f"location and spread; {y_part}",
        )
    return Verdict(
        False,
        f"Here σ²_B = {num(var_B)} is not large next to ε = {num(r.eps)}, so x̂ has variance "
        f"σ²_B/(σ²_B + ε) = {num(var)}, not 1: ε dominates. Lower ε (or scale the feature up) to recover it; " + y_part,
    )
