"""Batch-Size Sensitivity: BN's statistics are estimates from the batch, so small batches make them noisy.

Four experiments, each a frozen config in and long-format DataFrames out:

1. :func:`run_noise`: sample many batches of size m from a population and measure the
   spread of ``mu_B`` and ``var_B`` against theory: ``σ/√m`` for the mean and, for the
   biased ``var_B = (1/m)Σ(x − x̄)²``, the exact
   ``Var(var_B) = ((m − 1)²/m³)·(μ4 − (m − 3)/(m − 1)·σ⁴)`` (μ4: 4th central moment).
   Also how one fixed example's ``x_hat`` jitters from batch to batch: the "noise" that
   regularizes (Ioffe & Szegedy 2015, arXiv:1502.03167, §3.4).
2. :func:`run_batch_sweep`: test error vs batch size for BN, group norm, layer norm and
   no normalization, plus the remedies Ghost BN (arXiv:1705.08741), Batch Renorm
   (arXiv:1702.03275) and train-mode evaluation, several seeds each: Wu & He 2018
   (arXiv:1803.08494) Fig. 1 in miniature. Every batch size sees the same number of
   epochs; the learning rate is scaled linearly with the batch (Goyal et al. 2017,
   arXiv:1706.02677) or held constant.
3. :func:`run_non_iid`: class-sorted (non-i.i.d.) vs shuffled batches.
4. :func:`batch_of_one`: what torch, ``ManualBatchNorm`` and the bare functional do
   with one value per channel.

**How the networks are trained: channel stacking.** The K networks of one batch size
(variants × seeds × batch orders) train at once as one model. Their hidden units are
laid side by side as K·C channels of one ``(B, K·C)`` tensor, the linear maps are one
batched matmul over a K axis (block-diagonal weights), and every normalization layer is
the ordinary per-channel module (``ManualBatchNorm``, ``ManualGroupNorm``,
``GhostBatchNorm``, ``BatchRenorm``) built for K·C channels: per-channel statistics, γ, β
and running buffers are per network, and group norm's groups never straddle two
networks. Nothing couples the networks (the loss is the sum of their mean losses), so
network k is exactly :func:`bn_core.train.train` run alone with the same config, init,
batch order and optimizer (the tests check it in float64); a diverging network stays
NaN and is reported, the others go on. Where shapes allow, the batched sweep engine
``bn_core.sweep`` (hand-written, no autograd; BN and no-norm MLPs only) trains the BN and
no-norm networks instead: measured ~12 % less CPU per step than one stack for all four
kinds. BN stays in the stack when it must also be evaluated in train mode, because the
engine returns no model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.data import DISTRIBUTIONS, DataConfig, DataSplit, load_dataset, synthetic_batch
from bn_core.device import pick_device
from bn_core.functional import batch_norm_backward, batch_norm_forward
from bn_core.layers import ManualBatchNorm, ManualGroupNorm
from bn_core.models import MLP, MLPConfig, build_mlp
from bn_core.progress import Progress
from bn_core.remedies import BatchRenorm, GhostBatchNorm
from bn_core.sweep import SweepConfig as EngineSweepConfig
from bn_core.sweep import SweepPoint, run_sweep
from bn_core.train import TrainConfig, make_optimizer, run_schedule, validate_config

__all__ = [
    "POPULATIONS",
    "NoiseConfig",
    "NoiseResult",
    "run_noise",
    "std_of_mean",
    "std_of_variance",
    "VARIANTS",
    "VARIANT_LABELS",
    "BATCH_STAT_VARIANTS",
    "NormSettings",
    "norm_layer",
    "SweepConfig",
    "SweepResult",
    "run_batch_sweep",
    "check_sweep",
    "sweep_points",
    "point_train_config",
    "NonIIDConfig",
    "NonIIDResult",
    "run_non_iid",
    "BatchOfOneResult",
    "batch_of_one",
    "PAPER_TABLE",
]


# ---------------------------------------------------------------------------
# 1. Noise of the batch statistics
# ---------------------------------------------------------------------------

DIGITS_POPULATION = "digits layer 1"
POPULATIONS = (*DISTRIBUTIONS, DIGITS_POPULATION)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class NoiseConfig:
    """Which population, how many batches, which example to follow."""

    population: str = "normal"  # one of POPULATIONS: a synthetic law, or a digits net's layer-1 unit
    n_batches: int = 4000  # batches drawn per batch size m
    m_max: int = 256  # batch sizes m = 1, 2, 4, …, m_max
    tracked_quantile: float = 0.84  # the followed example sits at this quantile of the population (0.84 ≈ +1σ)
    population_size: int = 100_000  # synthetic laws: the finite population the batches are drawn from
    eps: float = 1e-5  # ε in x̂ = (x − μ_B)/sqrt(σ²_B + ε)
    seed: int = 0  # population draw and batch sampling


@dataclass(frozen=True)
class NoiseResult:
    """Spread of the batch statistics vs m, and one example's x̂ across batches."""

    spread: pd.DataFrame  # m, statistic (mu_B | var_B), source (empirical | theory), value (a std)
    ratio: pd.DataFrame  # m, statistic, empirical, theory, ratio (empirical ÷ theory)
    jitter: pd.DataFrame  # m, metric (p05, p25, p50, p75, p95, mean, std), value: x̂ of the tracked example
    population: pd.DataFrame  # quantity, value: size, mean, σ², μ4, kurtosis, tracked x, its true x̂
    x0: float  # the tracked example's value
    z0: float  # its normalization with the population's own μ and σ: what x̂ estimates


def std_of_mean(sigma2: float, m: np.ndarray) -> np.ndarray:
    """Theory for std(μ_B) with m i.i.d. draws: σ/√m."""
    return np.sqrt(sigma2 / np.asarray(m, dtype=np.float64))


def std_of_variance(sigma2: float, mu4: float, m: np.ndarray) -> np.ndarray:
    """Theory for std(σ²_B), σ²_B the biased variance (÷m) of m i.i.d. draws.

    ``Var(σ²_B) = ((m − 1)²/m³)·(μ4 − (m − 3)/(m − 1)·σ⁴)``; at m = 1, σ²_B ≡ 0.
    """
    m = np.asarray(m, dtype=np.float64)
    safe = np.maximum(m - 1.0, 1.0)  # m = 1 is 0 below anyway; avoid 0/0
    var = (m - 1.0) ** 2 / m**3 * (mu4 - (m - 3.0) / safe * sigma2**2)
    return np.sqrt(np.where(m > 1, var, 0.0))


def _digits_unit(seed: int) -> np.ndarray:
    """Layer-1 pre-activations of unit 0 of a freshly initialized digits MLP, over every training digit."""
    split = load_dataset(DataConfig("digits"))
    net = build_mlp(MLPConfig(in_features=64, n_classes=10, depth=1, width=16, norm="none"), seed=seed)
    with torch.no_grad():
        z = net.blocks[0].linear(split.x_train)  # (N, 16)
    return z[:, 0].double().numpy()


def _population(cfg: NoiseConfig) -> np.ndarray:
    if cfg.population == DIGITS_POPULATION:
        return _digits_unit(cfg.seed)
    if cfg.population not in DISTRIBUTIONS:
        raise ValueError(f"Unknown population {cfg.population!r}; choose one of {', '.join(POPULATIONS)}.")
    return synthetic_batch(cfg.population, cfg.population_size, (0.0,), (1.0,), cfg.seed)[:, 0]


def _validate_noise(cfg: NoiseConfig) -> None:
    if cfg.n_batches < 10 or cfg.m_max < 1 or cfg.m_max > 4096:
        raise ValueError("Draw at least 10 batches per size, with a largest batch of 1 … 4096.")
    if not 0.0 < cfg.tracked_quantile < 1.0:
        raise ValueError(f"The tracked quantile must be strictly between 0 and 1, got {cfg.tracked_quantile}.")
    if cfg.population_size < 2:
        raise ValueError("The population needs at least 2 values.")


def run_noise(cfg: NoiseConfig) -> NoiseResult:
    """Sample ``n_batches`` batches (with replacement) per m and measure μ_B, σ²_B and the tracked x̂.

    Drawing with replacement from the finite population makes the draws i.i.d. with the
    population's exact moments, so the theory lines are exact, not approximations.
    """
    _validate_noise(cfg)
    pop = _population(cfg)  # (P,)
    mu, sigma2 = float(pop.mean()), float(pop.var())
    mu4 = float(((pop - mu) ** 4).mean())
    x0 = float(np.quantile(pop, cfg.tracked_quantile))
    rng = np.random.default_rng([cfg.seed, 11])
    ms = 2 ** np.arange(int(math.log2(cfg.m_max)) + 1)  # 1, 2, 4, …
    rows, jitter = [], []
    for m in ms:
        mu_B, var_B, x_hat = _sample(pop, int(m), cfg.n_batches, x0, cfg.eps, rng)
        rows.append((m, mu_B.std(), var_B.std()))
        jitter.append((m, *np.quantile(x_hat, QUANTILES), x_hat.mean(), x_hat.std()))
    return _noise_frames(rows, jitter, pop, (mu, sigma2, mu4, x0))


def _sample(
    pop: np.ndarray, m: int, R: int, x0: float, eps: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """μ_B, σ²_B of R batches of m draws, and x̂ of x0 placed in a batch with the first m − 1 of each.

    Drawn in chunks of rows so memory stays near 16 MB whatever R and m are.
    """
    mu_B, var_B, x_hat = np.empty(R), np.empty(R), np.empty(R)
    step = max(1, (1 << 21) // m)
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        x = pop[rng.integers(0, len(pop), size=(hi - lo, m))]  # (rows, m) batches
        mu_B[lo:hi] = x.mean(axis=1)
        var_B[lo:hi] = x.var(axis=1)  # biased, as BN
        batch = np.concatenate([np.full((hi - lo, 1), x0), x[:, : m - 1]], axis=1)  # x0 + m − 1 others
        x_hat[lo:hi] = (x0 - batch.mean(axis=1)) / np.sqrt(batch.var(axis=1) + eps)
    return mu_B, var_B, x_hat


def _noise_frames(rows: list, jitter: list, pop: np.ndarray, moments: tuple) -> NoiseResult:
    mu, sigma2, mu4, x0 = moments
    emp = pd.DataFrame(rows, columns=["m", "mu_B", "var_B"])
    m = emp["m"].to_numpy()
    theory = pd.DataFrame({"m": m, "mu_B": std_of_mean(sigma2, m), "var_B": std_of_variance(sigma2, mu4, m)})
    long = [
        df.melt(id_vars="m", var_name="statistic", value_name="value").assign(source=source)
        for df, source in ((emp, "empirical"), (theory, "theory"))
    ]
    spread = pd.concat(long, ignore_index=True)[["m", "statistic", "source", "value"]]
    ratio = spread.pivot_table(index=["m", "statistic"], columns="source", values="value").reset_index()
    ratio["ratio"] = ratio["empirical"] / ratio["theory"].where(ratio["theory"] > 0)
    names = ["m", *(f"p{round(q * 100):02d}" for q in QUANTILES), "mean", "std"]
    jit = pd.DataFrame(jitter, columns=names).melt(id_vars="m", var_name="metric", value_name="value")
    z0 = (x0 - mu) / math.sqrt(sigma2)
    population = pd.DataFrame(
        {
            "quantity": [
                "values",
                "mean μ",
                "variance σ²",
                "μ4 (4th moment)",
                "kurtosis μ4/σ⁴",
                "tracked x",
                "(x − μ)/σ",
            ],
            "value": [float(len(pop)), mu, sigma2, mu4, mu4 / sigma2**2, x0, z0],
        }
    )
    ratio = ratio[["m", "statistic", "empirical", "theory", "ratio"]].astype({"m": "int64"})
    return NoiseResult(spread.astype({"m": "int64"}), ratio, jit.astype({"m": "int64"}), population, x0, z0)


# ---------------------------------------------------------------------------
# Norm layers for every variant
# ---------------------------------------------------------------------------

VARIANTS = ("batch", "group", "layer", "none", "ghost", "renorm")
VARIANT_LABELS = {
    "batch": "BN",
    "group": "GN",
    "layer": "LN",
    "none": "no norm",
    "ghost": "Ghost BN",
    "renorm": "Batch Renorm",
}
BATCH_STAT_VARIANTS = ("batch", "ghost", "renorm")  # normalize across examples; need ≥ 2 per batch
TRAIN_MODE_SUFFIX = " · train-mode eval"
PAPER_TABLE = pd.DataFrame(  # Wu & He 2018, Table 3 / Fig. 1: ResNet-50, ImageNet, error (%) vs images per GPU
    {"images_per_gpu": [32, 16, 8, 4, 2], "BN": [23.6, 23.7, 24.8, 27.3, 34.7], "GN": ["≈ 24"] * 5}
)


@dataclass(frozen=True)
class NormSettings:
    """Hyper-parameters of the norm layers (each used only by its variant)."""

    groups: int = 8  # G for group norm: must divide the width (LN is G = 1)
    ghost_batch: int = 4  # g, the ghost batch size; at a batch B < g the ghost batch is B (plain BN)
    r_max: float = 3.0  # Batch Renorm: r ∈ [1/r_max, r_max]
    d_max: float = 5.0  # Batch Renorm: d ∈ [−d_max, d_max]
    momentum: float = 0.1  # running-statistics EMA weight (PyTorch convention)
    eps: float = 1e-5  # ε


def ghost_size(settings: NormSettings, batch_size: int) -> int:
    """The ghost batch used at optimization batch B: g, or B when B < g."""
    return min(settings.ghost_batch, batch_size)


def norm_layer(variant: str, C: int, settings: NormSettings, batch_size: int, copies: int = 1) -> nn.Module:
    """The norm layer of ``variant`` for ``copies`` networks of C channels each, side by side (K·C channels).

    Every kind is per channel or per group of channels inside one network, so ``copies``
    networks stacked as channels get exactly the statistics each would get alone.
    """
    KC, s = copies * C, settings
    if variant == "batch":
        return ManualBatchNorm(KC, eps=s.eps, momentum=s.momentum)
    if variant == "group":
        return ManualGroupNorm(copies * s.groups, KC, eps=s.eps)
    if variant == "layer":
        return ManualGroupNorm(copies, KC, eps=s.eps)
    if variant == "none":
        return nn.Identity()
    if variant == "ghost":
        return GhostBatchNorm(KC, ghost_size(s, batch_size), eps=s.eps, momentum=s.momentum)
    if variant == "renorm":
        return BatchRenorm(KC, r_max=s.r_max, d_max=s.d_max, eps=s.eps, momentum=s.momentum)
    raise ValueError(f"Unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}.")


class _SlicedNorm(nn.Module):
    """Different norm layers on consecutive channel slices of one ``(N, K·C, *S)`` tensor."""

    def __init__(self, layers: Sequence[nn.Module], widths: Sequence[int]) -> None:
        super().__init__()
        self.layers, self.widths = nn.ModuleList(layers), list(widths)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.layers) == 1:
            return self.layers[0](x)
        return torch.cat([layer(part) for layer, part in zip(self.layers, x.split(self.widths, dim=1), strict=True)], 1)


# ---------------------------------------------------------------------------
# The channel-stacked MLP and its training loop
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    """One network of a stack."""

    variant: str
    seed: int
    order: Literal["shuffled", "class_sorted"] = "shuffled"


class _StackedMLP(nn.Module):
    """K MLPs of the same shape as one module. Input ``(K, B, D)``, logits ``(K, B, n_classes)``.

    Layer weights are ``(K, in, out)`` (each network's ``nn.Linear`` weight, transposed);
    between the matmuls, activations are laid out ``(B, K·F)`` so the norm layers see K·F
    channels: network k owns channels k·F … (k + 1)·F − 1.
    """

    def __init__(self, nets: Sequence[MLP], norms: Sequence[nn.Module]) -> None:
        super().__init__()
        affine = [[*(blk.linear for blk in net.blocks), net.head] for net in nets]
        self.W = nn.ParameterList(
            [nn.Parameter(torch.stack([a[i].weight.detach().T for a in affine])) for i in range(len(affine[0]))]
        )
        self.b = nn.ParameterList(
            [nn.Parameter(torch.stack([a[i].bias.detach()[None] for a in affine])) for i in range(len(affine[0]))]
        )
        self.norms = nn.ModuleList(norms)
        self.act = nets[0].blocks[0].act
        self.placement = nets[0].config.placement

    def forward(self, x: Tensor) -> Tensor:
        K, B = x.shape[0], x.shape[1]
        h = x
        for W, b, norm in zip(self.W[:-1], self.b[:-1], self.norms, strict=True):
            z = torch.baddbmm(b, h, W)  # (K, B, F)
            flat = z.transpose(0, 1).reshape(B, -1)  # (B, K·F)
            a = self.act(norm(flat)) if self.placement == "before" else norm(self.act(flat))
            h = a.view(B, K, -1).transpose(0, 1)  # (K, B, F)
        return torch.baddbmm(self.b[-1], h, self.W[-1])  # (K, B, n_classes)


@dataclass(frozen=True)
class _Stack:
    """Everything one stacked training run needs."""

    points: tuple[_Point, ...]  # the networks, grouped by variant (contiguous)
    base: TrainConfig  # shared: model, optimizer, lr, batch size, steps, dtype
    settings: NormSettings


def _build(stack: _Stack, split: DataSplit, device: torch.device, dtype: torch.dtype) -> _StackedMLP:
    model_cfg = replace(stack.base.model, in_features=split.n_features, n_classes=split.n_classes, norm="none")
    nets = [build_mlp(model_cfg, seed=p.seed) for p in stack.points]
    variants = list(dict.fromkeys(p.variant for p in stack.points))
    counts = [sum(p.variant == v for p in stack.points) for v in variants]
    B, W = stack.base.batch_size, model_cfg.width
    norms = [
        _SlicedNorm(
            [norm_layer(v, W, stack.settings, B, k) for v, k in zip(variants, counts, strict=True)],
            [k * W for k in counts],
        )
        for _ in range(model_cfg.depth)
    ]
    return _StackedMLP(nets, norms).to(device=device, dtype=dtype).train()


def _schedules(stack: _Stack, split: DataSplit) -> Tensor:
    """``(K, steps, B)``: each network's batch order, exactly as :func:`bn_core.train.run_schedule` draws it."""
    cache: dict[tuple[int, str], Tensor] = {}
    for p in stack.points:
        if (p.seed, p.order) not in cache:
            cache[(p.seed, p.order)] = run_schedule(replace(stack.base, seed=p.seed, batch_order=p.order), split)
    return torch.stack([cache[(p.seed, p.order)] for p in stack.points])


def _first_bad(losses: Tensor) -> list[int | None]:
    """Per network, the 1-based step of the first non-finite loss, or None. ``losses`` is (steps, K)."""
    bad = ~torch.isfinite(losses)
    first = bad.float().argmax(dim=0)
    return [int(first[k]) + 1 if bool(bad[:, k].any()) else None for k in range(losses.shape[1])]


def _train_stack(stack: _Stack, split: DataSplit, progress: Progress | None) -> tuple[_StackedMLP, Tensor]:
    """Train every network of the stack; return the model and the batch losses ``(steps, K)``."""
    device, dtype = pick_device(stack.base.device), getattr(torch, stack.base.dtype)
    model = _build(stack, split, device, dtype)
    schedule = _schedules(stack, split).to(device)  # (K, steps, B)
    x_train, y_train = split.x_train.to(device=device, dtype=dtype), split.y_train.to(device)
    optimizer = make_optimizer(model.parameters(), stack.base)
    K, steps = len(stack.points), stack.base.steps
    losses = []
    report = max(1, steps // 50)
    for step in range(steps):
        idx = schedule[:, step]  # (K, B)
        logits = model(x_train[idx])  # (K, B, n_classes)
        loss = F.cross_entropy(logits.flatten(0, 1), y_train[idx].flatten(), reduction="none").view(K, -1).mean(1)
        losses.append(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # the networks share nothing, so each gets its own loss's gradient
        optimizer.step()
        if progress is not None and (step + 1) % report == 0:
            progress((step + 1) / steps, f"step {step + 1}/{steps}")
    return model, torch.stack(losses).double().cpu()  # (steps, K)


def _windows(n: int, b: int) -> list[tuple[int, int, int]]:
    """Consecutive windows of exactly ``b`` rows covering ``n`` rows: (start, stop, rows to count at the end).

    The last window overlaps its neighbour when b does not divide n, so every example is
    still normalized in a batch of exactly b, and counted once.
    """
    windows = [(lo, lo + b, b) for lo in range(0, n - b + 1, b)]
    if n % b:
        windows.append((n - b, n, n % b))
    return windows


@torch.no_grad()
def _errors(model: _StackedMLP, x: Tensor, y: Tensor, mode: str, b: int | None) -> Tensor:
    """Test error per network ``(K,)``: eval mode (running statistics) or train mode on test batches of ``b``.

    Train mode normalizes every test batch with its own statistics; the running
    statistics are restored afterwards.
    """
    saved = [buf.clone() for buf in model.buffers()]
    model.train(mode == "train")
    K, n = len(model.W[0]), len(y)
    wrong = torch.zeros(K, dtype=torch.float64, device=y.device)
    for lo, hi, count in _windows(n, b or n):
        logits = model(x[lo:hi].expand(K, -1, -1))[:, -count:]  # (K, count, C)
        wrong += (logits.argmax(dim=2) != y[hi - count : hi]).double().sum(dim=1)
    for buf, value in zip(model.buffers(), saved, strict=True):
        buf.copy_(value)
    model.train()
    return (wrong / n).cpu()


def _test_batch(stack: _Stack, n_test: int) -> int:
    """The test batch for train-mode evaluation: B, or at most the test set, cut to a multiple of the ghost batch."""
    B = stack.base.batch_size
    if n_test >= B:
        return B
    g = ghost_size(stack.settings, B) if any(p.variant == "ghost" for p in stack.points) else 1
    return n_test - n_test % g


def _stack_records(stack: _Stack, split: DataSplit, eval_train_mode: bool, progress: Progress | None) -> list[dict]:
    """Train a stack; one record per network: test errors, last-epoch training loss, divergence."""
    model, losses = _train_stack(stack, split, progress)
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    x_test, y_test = split.x_test.to(device=device, dtype=dtype), split.y_test.to(device)
    err_eval = _errors(model, x_test, y_test, "eval", None)
    B = stack.base.batch_size
    err_train = _errors(model, x_test, y_test, "train", _test_batch(stack, len(y_test))) if eval_train_mode else None
    per_epoch = max(1, len(split.y_train) // B)
    last_epoch = losses[-per_epoch:].mean(dim=0)  # (K,)
    records = []
    for k, (p, bad) in enumerate(zip(stack.points, _first_bad(losses), strict=True)):
        record = {"variant": p.variant, "seed": p.seed, "order": p.order, "diverged_at": bad}
        record["test_error"] = math.nan if bad else float(err_eval[k])
        record["train_loss"] = math.nan if bad else float(last_epoch[k])
        if err_train is not None and p.variant in BATCH_STAT_VARIANTS:
            record["test_error_train_mode"] = math.nan if bad else float(err_train[k])
        records.append(record)
    return records


# ---------------------------------------------------------------------------
# 2-3. Accuracy vs batch size, with the remedies
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepConfig:
    """Test error vs batch size. Every batch size sees ``epochs`` passes over the training set."""

    variants: tuple[str, ...] = ("batch", "group", "layer", "none")  # from VARIANTS
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64)  # optimization batch sizes B
    n_seeds: int = 3  # seeds seed, seed + 1, …: init weights and batch order
    seed: int = 0  # the first seed (the page's global seed)
    epochs: float = 3.0  # passes over the training set at every B: steps = round(epochs·N_train/B)
    lr: float = 0.05  # learning rate at the reference batch ref_batch
    lr_rule: Literal["linear", "constant"] = "linear"  # linear: lr·B/ref_batch (Goyal et al. 2017); constant: lr
    ref_batch: int = 32  # the batch size at which the learning rate is lr
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"  # SGD with momentum 0.9 by default
    width: int = 64  # hidden units per layer
    depth: int = 2  # hidden layers
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    settings: NormSettings = field(default_factory=NormSettings)  # G, ghost g, r_max, d_max, momentum
    eval_train_mode: bool = False  # also evaluate the BN networks in train mode, on test batches of B
    batch_order: Literal["shuffled", "class_sorted"] = "shuffled"  # i.i.d. batches or one class per batch
    data: DataConfig = field(default_factory=DataConfig)  # digits by default
    dtype: Literal["float32", "float64"] = "float32"
    device: str | None = None  # passed to pick_device()


@dataclass(frozen=True)
class SweepResult:
    """One row per network in ``runs``; means and ranges over seeds in ``summary``."""

    config: SweepConfig
    runs: pd.DataFrame  # batch_size, variant, seed, order, metric (test_error | test_error_train_mode | train_loss),
    # value, diverged_at
    summary: pd.DataFrame  # batch_size, variant, series, metric, mean, std, lo, hi, n, n_diverged
    schedule: pd.DataFrame  # batch_size, steps, lr, ghost_batch, examples_seen
    notes: tuple[str, ...]  # what was left out and why (e.g. BN at a batch of 1)
    wall_s: float


def lr_at(cfg: SweepConfig, batch_size: int) -> float:
    """The learning rate used at batch size B."""
    return cfg.lr * batch_size / cfg.ref_batch if cfg.lr_rule == "linear" else cfg.lr


def steps_at(cfg: SweepConfig, batch_size: int, n_train: int) -> int:
    """Optimizer updates at batch size B: the same number of examples seen at every B."""
    return max(1, round(cfg.epochs * n_train / batch_size))


def _base(cfg: SweepConfig, batch_size: int, n_train: int) -> TrainConfig:
    model = MLPConfig(
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        norm="none",
        bn_momentum=cfg.settings.momentum,
        eps=cfg.settings.eps,
    )
    return TrainConfig(
        data=cfg.data,
        model=model,
        optimizer=cfg.optimizer,
        lr=lr_at(cfg, batch_size),
        batch_size=batch_size,
        steps=steps_at(cfg, batch_size, n_train),
        eval_every=10**9,
        seed=cfg.seed,
        batch_order=cfg.batch_order,
        record_layers=False,
        record_grads=False,
        dtype=cfg.dtype,
        device=cfg.device,
    )


def sweep_points(cfg: SweepConfig, batch_size: int) -> tuple[_Point, ...]:
    """The networks trained at batch size B (BN-type variants cannot train with B = 1)."""
    variants = [v for v in cfg.variants if not (batch_size == 1 and v in BATCH_STAT_VARIANTS)]
    seeds = range(cfg.seed, cfg.seed + cfg.n_seeds)
    return tuple(_Point(v, s, cfg.batch_order) for v in variants for s in seeds)


def point_train_config(cfg: SweepConfig, batch_size: int, point: _Point, n_train: int) -> tuple[TrainConfig, Callable]:
    """What trains ``point`` alone with :func:`bn_core.train.train`: its config and ``norm_factory``."""
    base = replace(_base(cfg, batch_size, n_train), seed=point.seed, batch_order=point.order)
    return base, lambda C: norm_layer(point.variant, C, cfg.settings, batch_size)


def check_sweep(cfg: SweepConfig) -> None:
    """Raise ``ValueError`` with a user-facing message if ``cfg`` cannot run; cheap (no training)."""
    _validate_sweep(cfg, len(load_dataset(cfg.data).y_train))


def _validate_sweep(cfg: SweepConfig, n_train: int) -> None:
    s = cfg.settings
    if not cfg.variants or any(v not in VARIANTS for v in cfg.variants):
        raise ValueError(f"Pick at least one normalization among {', '.join(VARIANTS)}.")
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise ValueError("Pick at least one batch size, each at least 1.")
    if max(cfg.batch_sizes) > n_train:
        raise ValueError(
            f"A batch of {max(cfg.batch_sizes):,} is larger than the training set ({n_train:,} examples): "
            "lower the largest batch size."
        )
    if "group" in cfg.variants and (s.groups < 1 or cfg.width % s.groups != 0):
        raise ValueError(f"Group norm: the group count G={s.groups} must divide the width C={cfg.width} (units).")
    if "ghost" in cfg.variants:
        for B in cfg.batch_sizes:
            g = ghost_size(s, B)
            if s.ghost_batch < 2 or B % g != 0:
                raise ValueError(
                    f"Ghost BN: the ghost batch g={s.ghost_batch} must be at least 2 and divide every batch size "
                    f"it is smaller than; it does not divide B={B}."
                )
    if "renorm" in cfg.variants and not (s.r_max >= 1 and s.d_max >= 0):
        raise ValueError(f"Batch Renorm needs r_max ≥ 1 and d_max ≥ 0, got {s.r_max} and {s.d_max}.")
    if cfg.n_seeds < 1 or cfg.epochs <= 0:
        raise ValueError("Use at least one seed and a positive number of epochs.")
    for B in cfg.batch_sizes:
        validate_config(_base(cfg, B, n_train))


def _sweep_notes(cfg: SweepConfig) -> tuple[str, ...]:
    stat = [VARIANT_LABELS[v] for v in cfg.variants if v in BATCH_STAT_VARIANTS]
    if 1 in cfg.batch_sizes and stat:
        return (
            f"{', '.join(stat)} cannot train with a batch of 1 (one value per channel: σ²_B = 0, x̂ = 0; "
            "section 4 shows it), so they are left out at B = 1.",
        )
    return ()


def _summarize(runs: pd.DataFrame) -> pd.DataFrame:
    keys = ["batch_size", "variant", "metric"]
    g = runs.groupby(keys, sort=False)["value"]
    summary = g.agg(mean="mean", std="std", lo="min", hi="max", n="count").reset_index()
    summary["n_diverged"] = runs.groupby(keys, sort=False)["diverged_at"].apply(lambda d: int(d.notna().sum())).values
    label = summary["variant"].map(VARIANT_LABELS)
    summary["series"] = np.where(summary["metric"] == "test_error_train_mode", label + TRAIN_MODE_SUFFIX, label)
    return summary


def _engine_points(cfg: SweepConfig, points: Sequence[_Point]) -> tuple[list[_Point], list[_Point]]:
    """Split a batch size's networks: BN and no-norm MLPs go to ``bn_core.sweep`` (hand-written, faster per
    network), the rest to the channel stack. BN stays in the stack when it must be evaluated in train mode
    (the sweep engine returns no models)."""
    engine = [p for p in points if p.variant == "none" or (p.variant == "batch" and not cfg.eval_train_mode)]
    return engine, [p for p in points if p not in engine]


def _engine_records(points: Sequence[_Point], base: TrainConfig, split: DataSplit, progress: Progress | None) -> list:
    """Train BN / no-norm networks with :func:`bn_core.sweep.run_sweep`; the same records as :func:`_stack_records`."""
    grid = tuple(SweepPoint(lr=base.lr, seed=p.seed, bn=p.variant == "batch") for p in points)
    result = run_sweep(EngineSweepConfig(base=base, points=grid), data=split, progress=progress)
    per_epoch = max(1, len(split.y_train) // base.batch_size)
    loss = result.curves[result.curves["metric"] == "loss"]
    last_epoch = loss[loss["step"] > base.steps - per_epoch].groupby("config_id")["value"].mean()
    records = []
    for i, (p, row) in enumerate(zip(points, result.summary.itertuples(), strict=True)):
        bad = None if pd.isna(row.diverged_at) else int(row.diverged_at)
        record = {"variant": p.variant, "seed": p.seed, "order": p.order, "diverged_at": bad}
        record["test_error"] = math.nan if bad else 1.0 - float(row.final_test_acc)
        record["train_loss"] = math.nan if bad else float(last_epoch.get(i, math.nan))
        records.append(record)
    return records


def _train_batch_size(cfg: SweepConfig, B: int, split: DataSplit, progress: Progress | None) -> pd.DataFrame:
    """Every network of one batch size: the sweep engine's share, then one channel stack for the rest."""
    base = _base(cfg, B, len(split.y_train))
    engine, stacked = _engine_points(cfg, sweep_points(cfg, B))
    share = len(engine) / max(1, len(engine) + len(stacked))
    records = []
    if engine:
        sub = None if progress is None else (lambda f, msg: progress(f * share, msg))
        records += _engine_records(engine, base, split, sub)
    if stacked:
        sub = None if progress is None else (lambda f, msg: progress(share + f * (1 - share), msg))
        records += _stack_records(_Stack(tuple(stacked), base, cfg.settings), split, cfg.eval_train_mode, sub)
    return pd.DataFrame(records).assign(batch_size=B)


def run_batch_sweep(cfg: SweepConfig, progress: Progress | None = None) -> SweepResult:
    """Train every (variant, seed) at every batch size.

    Per batch size, BN and no-norm networks train in ``bn_core.sweep`` and every other
    network in one channel stack; both equal ``bn_core.train.train`` run alone.

    Raises:
        ValueError: an invalid combination (G not dividing the width, a ghost batch not
            dividing a batch size, a batch larger than the training set, …), before any work.
    """
    started = time.perf_counter()
    split = load_dataset(cfg.data)
    n_train = len(split.y_train)
    _validate_sweep(cfg, n_train)
    sizes = sorted(set(cfg.batch_sizes))
    work = [steps_at(cfg, B, n_train) * len(sweep_points(cfg, B)) for B in sizes]
    done, frames = 0, []
    for B, cost in zip(sizes, work, strict=True):
        sub = None
        if progress is not None:

            def sub(f: float, msg: str, B: int = B, done: int = done, cost: int = cost) -> None:
                progress((done + f * cost) / sum(work), f"batch {B}: {msg}")

        frames.append(_train_batch_size(cfg, B, split, sub))
        done += cost
    runs = _long_runs(pd.concat(frames, ignore_index=True))
    train_mode_not_bn = runs["metric"].eq("test_error_train_mode") & runs["variant"].ne("batch")
    runs = runs[~train_mode_not_bn].reset_index(drop=True)  # the train-mode switch is about BN
    if progress is not None:
        progress(1.0, "done")
    schedule = _schedule_frame(cfg, sizes, n_train)
    return SweepResult(cfg, runs, _summarize(runs), schedule, _sweep_notes(cfg), time.perf_counter() - started)


def _schedule_frame(cfg: SweepConfig, sizes: Sequence[int], n_train: int) -> pd.DataFrame:
    """What each batch size ran: steps, learning rate, ghost batch, examples seen."""
    return pd.DataFrame(
        {
            "batch_size": sizes,
            "steps": [steps_at(cfg, B, n_train) for B in sizes],
            "lr": [lr_at(cfg, B) for B in sizes],
            "ghost_batch": [ghost_size(cfg.settings, B) for B in sizes],
            "examples_seen": [steps_at(cfg, B, n_train) * B for B in sizes],
        }
    )


def _long_runs(wide: pd.DataFrame) -> pd.DataFrame:
    metrics = [m for m in ("test_error", "test_error_train_mode", "train_loss") if m in wide.columns]
    keys = ["batch_size", "variant", "seed", "order", "diverged_at"]
    long = wide.melt(id_vars=keys, value_vars=metrics, var_name="metric", value_name="value")
    long = long[~(long["metric"].eq("test_error_train_mode") & ~long["variant"].isin(BATCH_STAT_VARIANTS))]
    long["diverged_at"] = long["diverged_at"].astype("Int64")
    columns = ["batch_size", "variant", "seed", "order", "metric", "value", "diverged_at"]
    return long[columns].sort_values(["metric", "variant", "batch_size", "seed"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------
# 4a. Non-i.i.d. batches
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NonIIDConfig:
    """Shuffled vs class-sorted batches at one batch size, for a few normalizations."""

    variants: tuple[str, ...] = ("batch", "group", "renorm")  # from VARIANTS
    batch_size: int = 32  # a class-sorted batch of 32 holds one digit (two where classes meet)
    lr: float = 0.002  # at B = 32, scaled linearly: small steps, because each class-sorted step pulls toward one class
    epochs: float = 20.0  # passes over the training set
    sweep: SweepConfig = field(default_factory=SweepConfig)  # seeds, model, optimizer, norm settings


@dataclass(frozen=True)
class NonIIDResult:
    runs: pd.DataFrame  # variant, seed, order, metric (test_error | test_error_train_mode | train_loss), value, …
    summary: pd.DataFrame  # variant, order, metric, mean, std, lo, hi, n, series
    wall_s: float


def run_non_iid(cfg: NonIIDConfig, progress: Progress | None = None) -> NonIIDResult:
    """Train each variant on shuffled and on class-sorted batches (one stack); errors in eval and train mode."""
    started = time.perf_counter()
    sweep = replace(
        cfg.sweep,
        variants=cfg.variants,
        batch_sizes=(cfg.batch_size,),
        eval_train_mode=True,
        lr=cfg.lr,
        lr_rule="linear",
        epochs=cfg.epochs,
    )
    split = load_dataset(sweep.data)
    n_train = len(split.y_train)
    _validate_sweep(sweep, n_train)
    if cfg.batch_size < 2:
        raise ValueError("Use a batch of at least 2: BN cannot train with one example per batch.")
    seeds = range(sweep.seed, sweep.seed + sweep.n_seeds)
    points = tuple(_Point(v, s, o) for v in cfg.variants for o in ("shuffled", "class_sorted") for s in seeds)
    stack = _Stack(points, _base(sweep, cfg.batch_size, n_train), sweep.settings)
    records = pd.DataFrame(_stack_records(stack, split, True, progress)).assign(batch_size=cfg.batch_size)
    runs = _long_runs(records)
    keys = ["variant", "order", "metric"]
    summary = runs.groupby(keys, sort=False)["value"].agg(mean="mean", std="std", lo="min", hi="max", n="count")
    summary = summary.reset_index()
    summary["series"] = summary["variant"].map(VARIANT_LABELS)
    if progress is not None:
        progress(1.0, "done")
    return NonIIDResult(runs, summary, time.perf_counter() - started)


# ---------------------------------------------------------------------------
# 4b. A batch of one
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOfOneResult:
    """What each implementation does with a single example in train mode."""

    outcomes: pd.DataFrame  # implementation, input_shape, mode, outcome ("error" | "ok"), message
    functional: pd.DataFrame  # channel, x, mu_B, var_B, x_hat, gamma, beta, y, dy, dx  (the bare functional)
    spatial: pd.DataFrame  # channel, values_per_channel, x_hat_std: BatchNorm2d on one image (m = H·W)


def _attempt(name: str, shape: tuple[int, ...], mode: str, fn: Callable[[], object]) -> dict:
    try:
        fn()
    except ValueError as err:
        return {
            "implementation": name,
            "input_shape": str(shape),
            "mode": mode,
            "outcome": "error",
            "message": str(err),
        }
    return {"implementation": name, "input_shape": str(shape), "mode": mode, "outcome": "ok", "message": ""}


def batch_of_one(seed: int = 0, C: int = 4) -> BatchOfOneResult:
    """Run one example through torch's BN, ``ManualBatchNorm``, the functional, group norm and the engine.

    Torch and ``ManualBatchNorm`` refuse (their real messages are kept); the bare
    functional computes what the math gives: μ_B = x, σ²_B = 0, x̂ = 0, y = β, and a zero
    gradient for x.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, C, generator=gen, dtype=torch.float64) * 2 + 1  # (1, C)
    image = torch.randn(1, C, 3, 3, generator=gen, dtype=torch.float64)  # (1, C, H, W)
    outcomes = [
        _attempt("torch nn.BatchNorm1d", tuple(x.shape), "train", lambda: nn.BatchNorm1d(C).double()(x)),
        _attempt("bn_core ManualBatchNorm", tuple(x.shape), "train", lambda: ManualBatchNorm(C).double()(x)),
        _attempt("torch nn.BatchNorm1d", tuple(x.shape), "eval", lambda: nn.BatchNorm1d(C).double().eval()(x)),
        _attempt("torch nn.BatchNorm2d", tuple(image.shape), "train", lambda: nn.BatchNorm2d(C).double()(image)),
        _attempt("bn_core ManualGroupNorm (G=2)", tuple(x.shape), "train", lambda: ManualGroupNorm(2, C).double()(x)),
        _attempt(
            "bn_core.train.train (batch_size=1, BN)",
            (1, 64),
            "train",
            lambda: validate_config(TrainConfig(batch_size=1, model=MLPConfig(norm="batch"))),
        ),
    ]
    return BatchOfOneResult(pd.DataFrame(outcomes), _functional_one(x, gen), _spatial_one(image))


def _functional_one(x: Tensor, gen: torch.Generator) -> pd.DataFrame:
    C = x.shape[1]
    gamma = torch.linspace(0.5, 2.0, C, dtype=torch.float64)
    beta = torch.linspace(-1.0, 1.0, C, dtype=torch.float64)
    y, cache = batch_norm_forward(x, gamma, beta)
    dy = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    dx, _dgamma, _dbeta = batch_norm_backward(dy, cache)
    return pd.DataFrame(
        {
            "channel": np.arange(C),
            "x": x[0].numpy(),
            "mu_B": cache.mu.numpy(),
            "var_B": cache.var.numpy(),
            "x_hat": cache.x_hat[0].numpy(),
            "gamma": gamma.numpy(),
            "beta": beta.numpy(),
            "y": y[0].numpy(),
            "dy": dy[0].numpy(),
            "dx": dx[0].numpy(),
        }
    )


def _spatial_one(image: Tensor) -> pd.DataFrame:
    """One image through BatchNorm2d in train mode: m = H·W values per channel, so it works (like instance norm)."""
    y = nn.BatchNorm2d(image.shape[1]).double()(image).detach()
    return pd.DataFrame(
        {
            "channel": np.arange(image.shape[1]),
            "values_per_channel": image.shape[2] * image.shape[3],
            "x_hat_mean": y.mean(dim=(0, 2, 3)).numpy(),
            "x_hat_std": y.std(dim=(0, 2, 3), unbiased=False).numpy(),
        }
    )
