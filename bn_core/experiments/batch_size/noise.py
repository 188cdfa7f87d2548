"""Section 1 of Batch-Size Sensitivity: how noisy are μ_B and σ²_B, measured against exact theory.

:func:`run_noise` samples many batches of size m from a population and measures the
spread of ``mu_B`` and ``var_B`` against theory: ``σ/√m`` for the mean and, for the
biased ``var_B = (1/m)Σ(x − x̄)²``, the exact
``Var(var_B) = ((m − 1)²/m³)·(μ4 − (m − 3)/(m − 1)·σ⁴)`` (μ4: 4th central moment). Also
how one fixed example's ``x_hat`` jitters from batch to batch: the "noise" that
regularizes (Ioffe & Szegedy 2015, arXiv:1502.03167, §3.4). :func:`noise_verdicts`
writes what the page says about it, decided by the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bn_core.data import DISTRIBUTIONS, DataConfig, load_dataset, synthetic_batch
from bn_core.models import MLPConfig, build_mlp
from bn_core.verdict import Verdict, num

__all__ = [
    "POPULATIONS",
    "NoiseConfig",
    "NoiseResult",
    "NoiseVerdicts",
    "run_noise",
    "std_of_mean",
    "std_of_variance",
    "noise_verdicts",
    "THEORY_TOLERANCE",
    "HALVING_TOLERANCE",
]

DIGITS_POPULATION = "digits layer 1"
POPULATIONS = (*DISTRIBUTIONS, DIGITS_POPULATION)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# 4,000 batches estimate a std to about 1/sqrt(2·4000) ≈ 1.1 % (normal law); heavier tails need more.
# Within 10 % of the exact line at every m ≥ 8 is what the default draws give for every law but the
# lognormal, whose σ²_B is itself heavy-tailed and converges slowly: that one is the "does not hold" case.
THEORY_TOLERANCE = 0.10
THEORY_FROM_M = 8  # below 8 draws the measured std is itself skewed; the comparison starts here
# Quadrupling m halves std(μ_B) exactly in theory (σ/√m); a measured factor within 0.5 ± 0.05 is that law
# seen through sampling noise (≈ 2 % per std at 4,000 batches, twice for a quotient, with margin).
HALVING_TOLERANCE = 0.05


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

    config: NoiseConfig
    spread: pd.DataFrame  # m, statistic (mu_B | var_B), source (empirical | theory), value (a std)
    ratio: pd.DataFrame  # m, statistic, empirical, theory, ratio (empirical ÷ theory)
    jitter: pd.DataFrame  # m, metric (p05, p25, p50, p75, p95, mean, std), value: x̂ of the tracked example
    population: pd.DataFrame  # quantity, value: size, mean, σ², μ4, kurtosis, tracked x, its true x̂
    sigma2: float  # the population's variance σ²
    x0: float  # the tracked example's value
    z0: float  # its normalization with the population's own μ and σ: what x̂ estimates

    def empirical(self, m: int, statistic: str) -> float:
        """The measured std of ``statistic`` (mu_B | var_B) across the batches of size m."""
        rows = self.ratio[(self.ratio["m"] == m) & (self.ratio["statistic"] == statistic)]
        return float(rows["empirical"].iloc[0])

    def jitter_at(self, m: int, metric: str) -> float:
        """A quantile or moment (p05 … p95, mean, std) of the tracked example's x̂ at batch size m."""
        rows = self.jitter[(self.jitter["m"] == m) & (self.jitter["metric"] == metric)]
        return float(rows["value"].iloc[0])

    @property
    def sizes(self) -> list[int]:
        return sorted(int(m) for m in self.ratio["m"].unique())


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
    if cfg.n_batches < 10 or cfg.m_max < 8 or cfg.m_max > 4096:
        raise ValueError("Draw at least 10 batches per size, with a largest batch of 8 … 4096.")
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
    return _noise_frames(cfg, rows, jitter, pop, (mu, sigma2, mu4, x0))


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


def _population_table(pop: np.ndarray, mu: float, sigma2: float, mu4: float, x0: float, z0: float) -> pd.DataFrame:
    names = ["values", "mean μ", "variance σ²", "μ4 (4th moment)", "kurtosis μ4/σ⁴", "tracked x", "(x − μ)/σ"]
    return pd.DataFrame({"quantity": names, "value": [float(len(pop)), mu, sigma2, mu4, mu4 / sigma2**2, x0, z0]})


def _noise_frames(cfg: NoiseConfig, rows: list, jitter: list, pop: np.ndarray, moments: tuple) -> NoiseResult:
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
    ratio = ratio[["m", "statistic", "empirical", "theory", "ratio"]].astype({"m": "int64"})
    return NoiseResult(
        config=cfg,
        spread=spread.astype({"m": "int64"}),
        ratio=ratio,
        jitter=jit.astype({"m": "int64"}),
        population=_population_table(pop, mu, sigma2, mu4, x0, z0),
        sigma2=sigma2,
        x0=x0,
        z0=z0,
    )


# -- what the page says about it ------------------------------------------------------------


@dataclass(frozen=True)
class NoiseVerdicts:
    """The sentences of section 1, each decided by the measured spreads."""

    falls: str  # how far the spreads fall from m = 2 to m_max (numbers only, no claim)
    theory: Verdict  # the measured spreads sit on the theory lines at m ≥ 8
    halving: Verdict  # quadrupling m only halves the noise of μ_B
    jitter: Verdict  # the tracked example's x̂: 0 at m = 1, ±1 at m = 2, settling as m grows


def shown(x: float) -> float:
    """``x`` as :func:`bn_core.verdict.num` prints it: quotients of printed numbers use this."""
    return float(num(x))


def worst_theory_gap(r: NoiseResult) -> float:
    """The largest |measured ÷ theory − 1| over m ≥ 8, both statistics."""
    big = r.ratio[r.ratio["m"] >= THEORY_FROM_M]
    return float((big["ratio"] - 1).abs().max())


def _theory(r: NoiseResult) -> Verdict:
    worst = worst_theory_gap(r)
    if worst <= THEORY_TOLERANCE:
        return Verdict(
            True,
            f"At m ≥ {THEORY_FROM_M} the measured spreads are within **{num(100 * worst)} %** of the theory lines.",
        )
    return Verdict(
        False,
        f"At m ≥ {THEORY_FROM_M} the measured spreads are up to **{num(100 * worst)} %** off the theory lines "
        f"(more than {num(100 * THEORY_TOLERANCE)} %): here σ²_B is itself heavy-tailed, so its measured spread "
        "converges slowly; draw more batches.",
    )


def _halving(r: NoiseResult) -> Verdict:
    big = r.sizes[-1]
    small = big // 4
    a, b = shown(r.empirical(small, "mu_B")), shown(r.empirical(big, "mu_B"))
    factor = b / a
    numbers = f"std(μ_B) {num(a)} at m = {small} → {num(b)} at m = {big}, ×{num(factor)}"
    if abs(factor - 0.5) <= HALVING_TOLERANCE:
        return Verdict(True, f"Quadrupling the batch only halves the noise: {numbers}.")
    return Verdict(
        False, f"Quadrupling the batch should halve the noise of μ_B, but here {numbers}: draw more batches."
    )


def _falls(r: NoiseResult) -> str:
    small, big = 2, r.sizes[-1]
    return (
        f"From m = {small} to m = {big}, the spread of μ_B falls from **{num(r.empirical(small, 'mu_B'))}** to "
        f"**{num(r.empirical(big, 'mu_B'))}** and that of σ²_B from **{num(r.empirical(small, 'var_B'))}** to "
        f"**{num(r.empirical(big, 'var_B'))}**."
    )


def _jitter(r: NoiseResult) -> Verdict:
    sizes = r.sizes
    mid, big = (4 if 4 in sizes else sizes[min(2, len(sizes) - 1)]), sizes[-1]
    text = (
        f"The followed example has x = {num(r.x0)}; normalized with the population's own μ and σ it would be "
        f"**{num(r.z0)}**. In batches of {mid}, its x̂ ranged from {num(r.jitter_at(mid, 'p05'))} to "
        f"{num(r.jitter_at(mid, 'p95'))} (5th–95th percentile, std {num(r.jitter_at(mid, 'std'))}); in batches of "
        f"{big}, from {num(r.jitter_at(big, 'p05'))} to {num(r.jitter_at(big, 'p95'))}."
    )
    one = max(abs(r.jitter_at(1, q)) for q in ("p05", "p95"))
    two = max(abs(abs(r.jitter_at(2, q)) - 1) for q in ("p05", "p95"))
    if one == 0 and two < 1e-2:
        return Verdict(True, text + " At m = 1 it is always 0; at m = 2 it is ±1 whatever x is.")
    return Verdict(False, text + f" At m = 1 its largest |x̂| is {num(one)}; at m = 2 it is {num(two)} away from ±1.")


def noise_verdicts(r: NoiseResult) -> NoiseVerdicts:
    """What section 1 says about a noise result."""
    return NoiseVerdicts(falls=_falls(r), theory=_theory(r), halving=_halving(r), jitter=_jitter(r))
