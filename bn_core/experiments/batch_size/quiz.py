"""Check-yourself questions for Batch-Size Sensitivity, built from the live results on the page.

Numeric answers are the page's numbers (the theory line for the population on screen,
BN's error in the sweep table), so they change with the seed and the controls; every
explanation quotes the measured values.
"""

from __future__ import annotations

import math

from bn_core.experiments.batch_size.noise import NoiseResult, noise_verdicts
from bn_core.experiments.batch_size.one import BatchOfOneResult
from bn_core.experiments.batch_size.sweep import BatchSizeSweepResult
from bn_core.experiments.batch_size.variants import TRAIN_MODE_SERIES
from bn_core.experiments.batch_size.verdicts import errors
from bn_core.quiz import Question
from bn_core.verdict import num

__all__ = ["questions", "QUADRUPLE_ANSWER", "ONE_ANSWER"]

QUADRUPLE_OPTIONS = ("×4", "×2", "×1/2", "×1/4")
QUADRUPLE_ANSWER = "×1/2"
ONE_ANSWER = "0 in every channel, so y = β"
ONE_OPTIONS = ("±1, the sign of x − μ", ONE_ANSWER, "x itself", "x/√ε, huge")


def _theory(noise: NoiseResult) -> Question:
    m = min(16, noise.sizes[-1])
    answer = math.sqrt(noise.sigma2 / m)
    return Question(
        key="std_mu",
        prompt=f"Section 1: the population has variance σ² = {num(noise.sigma2)} (table). What standard deviation "
        f"of μ_B does theory predict for batches of m = {m}?",
        kind="number",
        answer=answer,
        rel_tol=0.02,
        explain=f"std(μ_B) = σ/√m = √{num(noise.sigma2)}/√{m} = **{num(answer)}**; the sampled batches measured "
        f"{num(noise.empirical(m, 'mu_B'))}.",
    )


def _quadruple(noise: NoiseResult) -> Question:
    return Question(
        key="quadruple",
        prompt="Multiply the batch size m by 4. By how much does the spread of μ_B change?",
        kind="choice",
        answer=QUADRUPLE_ANSWER,
        options=QUADRUPLE_OPTIONS,
        explain=f"σ/√(4m) = ½·σ/√m: four times the examples only halve the noise. {noise_verdicts(noise).halving.text}",
    )


def _one(one: BatchOfOneResult) -> Question:
    f = one.functional
    betas = ", ".join(num(b) for b in f["beta"])
    return Question(
        key="one",
        prompt="In train mode, BN gets a batch of one example. What is its x̂?",
        kind="choice",
        answer=ONE_ANSWER,
        options=ONE_OPTIONS,
        explain=f"With one value per channel μ_B = x and σ²_B = {num(f['var_B'].abs().max())}, so x − μ_B = 0: x̂ = "
        f"{num(f['x_hat'].abs().max())} and y = β = ({betas}) whatever x was (section 4).",
    )


def _bn_error(sweep: BatchSizeSweepResult) -> Question | None:
    err = errors(sweep, "BN")
    if err.empty:
        return None
    B = int(err.index[0])
    answer = 100 * float(err[B])
    return Question(
        key="bn_error",
        prompt=f"Section 2: what was BN's mean test error (in %) at B = {B}, in eval mode?",
        kind="number",
        answer=answer,
        rel_tol=0.0,
        abs_tol=0.06,  # the table prints one decimal
        explain=f"The table gives **{num(answer)} %** (mean over {sweep.config.n_seeds} seed"
        f"{'s' * (sweep.config.n_seeds != 1)}); at B = {int(err.idxmin())} BN reached {num(100 * float(err.min()))} %.",
    )


def _flattest(sweep: BatchSizeSweepResult) -> Question | None:
    names = [s for s in dict.fromkeys(sweep.summary["series"]) if s != TRAIN_MODE_SERIES]
    spread = {s: float(e.max() - e.min()) for s in names if len(e := errors(sweep, s)) >= 2}
    if len(spread) < 2:
        return None
    answer = min(spread, key=spread.get)
    listed = "; ".join(f"{s}: {num(100 * v)} points" for s, v in spread.items())
    return Question(
        key="flattest",
        prompt="Section 2: which curve changed least across the batch sizes you trained (highest minus lowest error)?",
        kind="choice",
        answer=answer,
        options=tuple(spread),
        explain=f"Highest minus lowest mean error: {listed}. **{answer}** moved least.",
    )


def questions(
    noise: NoiseResult, one: BatchOfOneResult, sweep: BatchSizeSweepResult | None = None
) -> tuple[Question, ...]:
    """Three questions from sections 1 and 4, and two more from the sweep once it is trained."""
    extra = () if sweep is None else (_bn_error(sweep), _flattest(sweep))
    return tuple(q for q in (_theory(noise), _quadruple(noise), *extra, _one(one)) if q is not None)
