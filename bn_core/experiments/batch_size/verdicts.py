"""Every sentence Batch-Size Sensitivity says about its sweep, decided by the numbers it describes.

Each function takes a :class:`BatchSizeSweepResult` (means over seeds per batch size and
series) and returns a :class:`~bn_core.verdict.Verdict` whose text states the claim, or
its opposite with the condition that explains it ("GN degrades here because at
B = 1024 it gets only 4 steps"). The thresholds are the named constants below.

Sources: Wu & He 2018 (arXiv:1803.08494, Fig. 1: BN's error grows at small batches, GN's
does not), Hoffer et al. 2017 (arXiv:1705.08741, Ghost BN), Ioffe 2017 (arXiv:1702.03275,
Batch Renorm).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bn_core.experiments.batch_size.noise import NoiseResult, noise_verdicts
from bn_core.experiments.batch_size.sweep import BatchSizeSweepResult
from bn_core.experiments.batch_size.variants import BATCH_FREE_VARIANTS, TRAIN_MODE_SERIES, VARIANT_LABELS
from bn_core.verdict import Verdict, num

__all__ = [
    "MARGIN",
    "FEW_STEPS",
    "epochs",
    "SweepVerdicts",
    "errors",
    "bn_verdict",
    "batch_free_verdict",
    "steps_verdict",
    "ghost_verdict",
    "remedy_verdict",
    "train_mode_verdict",
    "sweep_verdicts",
    "takeaway",
]

# Two means over seeds are told apart when they differ by at least 5 percentage points: on the 450 test
# digits one digit is 0.22 points, and three seeds of one setting spread over 1–3 points; BN's small-batch
# loss in Wu & He's Fig. 1 (and here) is 10+ points.
MARGIN = 0.05
# Fewer than 50 optimizer updates is too short to train these MLPs: at the page's defaults (3 epochs, linear
# lr) every method is within a few points of its best down to 63 steps (B = 64), while at 32 steps (B = 128) no
# norm is 5 points worse and at 16 steps (B = 256) GN and LN are 20–50 points worse. Below 50 the error is about
# training length, not normalization.
FEW_STEPS = 50


def pts(fraction: float) -> str:
    """A fraction as a percentage with 3 significant digits: ``pts(0.0587) == '5.87 %'``."""
    return f"{num(100 * fraction)} %"


def epochs(n: float) -> str:
    """ "1 epoch", "3 epochs", "0.5 epochs"."""
    return f"{num(n)} epoch{'' if n == 1 else 's'}"


def _and(names: list[str]) -> str:
    """ "GN", "GN and LN", "GN, LN and no norm"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def errors(r: BatchSizeSweepResult, series: str) -> pd.Series:
    """Mean test error over seeds per batch size (index) for one chart series; diverged sizes dropped."""
    s = r.summary
    rows = s[(s["series"] == series) & s["metric"].str.startswith("test_error")]
    return rows.set_index("batch_size")["mean"].dropna().sort_index()


def _smallest(r: BatchSizeSweepResult) -> int | None:
    sizes = [B for B in sorted(r.schedule["batch_size"]) if B >= 2]
    return sizes[0] if sizes else None


def bn_verdict(r: BatchSizeSweepResult) -> Verdict:
    """BN's error at the smallest batch (≥ 2) against its best batch size."""
    err = errors(r, "BN")
    if len(err) < 2:
        return Verdict(False, "Train at least two batch sizes to see what the batch size does to BN.")
    small, best = int(err.index[0]), int(err.idxmin())
    if small == best:
        return Verdict(
            False,
            f"BN's test error is lowest at the smallest batch here ({pts(err[small])} at B = {small}): at these "
            "settings the small batch did not hurt BN.",
        )
    if err[small] - err[best] >= MARGIN:
        return Verdict(
            True,
            f"BN's test error is **{pts(err[small])}** at B = {small} against **{pts(err[best])}** at B = {best}, "
            f"its best: with {small} examples per batch its μ_B and σ²_B are mostly noise.",
        )
    return Verdict(
        False,
        f"BN's test error at B = {small} ({pts(err[small])}) is within {num(100 * MARGIN)} points of its best "
        f"({pts(err[best])} at B = {best}): at these settings the small batch did not hurt BN.",
    )


def _why_free(variant: str) -> str:
    if variant == "none":
        return "it has no statistics at all"
    return "it normalizes each example on its own, so the batch never reaches its statistics"


def batch_free_verdict(r: BatchSizeSweepResult, variant: str) -> Verdict:
    """GN, LN or no norm: flat across batch sizes, or the condition that made it degrade."""
    name, err = VARIANT_LABELS[variant], errors(r, VARIANT_LABELS[variant])
    if len(err) < 2:
        return Verdict(False, f"Train at least two batch sizes to compare {name} across them.")
    best, worst = int(err.idxmin()), int(err.idxmax())
    if err[worst] - err[best] < MARGIN:
        return Verdict(
            True,
            f"{name} stays within {num(100 * (err[worst] - err[best]))} points ({pts(err.min())} to "
            f"{pts(err.max())}) from B = {err.index[0]} to B = {err.index[-1]}: {_why_free(variant)}.",
        )
    steps, lr = r.steps(worst), float(r.schedule.set_index("batch_size").loc[worst, "lr"])
    change = f"{pts(err[best])} at B = {best} → {pts(err[worst])} at B = {worst}"
    if steps < FEW_STEPS:
        return Verdict(
            False,
            f"{name} degrades here because at B = {worst} it gets only {steps} step{'s' * (steps != 1)} ({change}): "
            f"{_why_free(variant)}, but with the same epochs at every B a large batch means few updates.",
        )
    return Verdict(
        False,
        f"{name}'s error moves with the batch size here ({change}; {steps} steps at lr {num(lr)} there): "
        f"{_why_free(variant)}, so this is the optimization at that batch size, not normalization noise.",
    )


def steps_verdict(r: BatchSizeSweepResult) -> Verdict:
    """Whether every batch size trained long enough for its error to be about normalization."""
    sched = r.schedule.set_index("batch_size")["steps"]
    short = sched[sched < FEW_STEPS]
    if short.empty:
        return Verdict(True, f"Every batch size trained at least {int(sched.min())} steps.")
    listed = ", ".join(f"B = {B}: {int(s)} step{'s' * (s != 1)}" for B, s in short.items())
    return Verdict(
        False,
        f"Few steps at the largest batches ({listed}; the same {epochs(r.config.epochs)} at every B): "
        f"fewer than {FEW_STEPS} updates is too short to train these nets, whatever the normalization.",
    )


def ghost_verdict(r: BatchSizeSweepResult) -> Verdict:
    """Ghost BN at the largest batch against BN at B = g: the noise follows the normalization batch."""
    g, ghost, bn = r.config.settings.ghost_batch, errors(r, "Ghost BN"), errors(r, "BN")
    big = int(ghost.index[-1]) if len(ghost) else 0
    if big <= g or g not in bn.index or big not in bn.index:
        return Verdict(False, f"Ghost BN differs from BN only at batches larger than g = {g} with g itself trained.")
    numbers = (
        f"Ghost BN at B = {big} (ghost batches of {g}): **{pts(ghost[big])}**; "
        f"BN at B = {g}: {pts(bn[g])}; BN at B = {big}: {pts(bn[big])}"
    )
    if abs(ghost[big] - bn[g]) < MARGIN and abs(ghost[big] - bn[g]) < abs(ghost[big] - bn[big]):
        return Verdict(
            True,
            f"{numbers}. It sits with BN at B = {g}: the noise comes from the batch the statistics are computed on.",
        )
    return Verdict(False, f"{numbers}. Here Ghost BN does not follow BN at B = {g}.")


def remedy_verdict(r: BatchSizeSweepResult, series: str, what: str) -> Verdict:
    """A remedy's error against BN's at the smallest batch (≥ 2): it helps when it is ``MARGIN`` lower."""
    small = _smallest(r)
    if small is None:
        return Verdict(False, f"**{series}** {what}: no batch of 2 or more to compare.")
    mine, bn = r.error(series, small), r.error("BN", small)
    numbers = f"**{series}** {what}: **{pts(mine)}** test error at B = {small}, against BN's {pts(bn)}"
    if mine <= bn - MARGIN:
        return Verdict(True, numbers + ": it closes part of BN's small-batch gap.")
    return Verdict(False, numbers + ": no better than BN here.")


def train_mode_verdict(r: BatchSizeSweepResult) -> Verdict:
    """The same BN networks tested in train mode (test batches of B) against their running statistics."""
    small = _smallest(r)
    if small is None:
        return Verdict(False, "BN cannot be tested in train mode with a batch of 1.")
    mine, bn = r.error(TRAIN_MODE_SERIES, small), r.error("BN", small)
    numbers = (
        f"**{TRAIN_MODE_SERIES}**: tested with the statistics of test batches of {small} instead of the running "
        f"averages, the same BN networks reach **{pts(mine)}** at B = {small}, against {pts(bn)} in eval mode"
    )
    if mine <= bn - MARGIN:
        return Verdict(True, numbers + ": much of BN's small-batch error is the train/test inconsistency.")
    return Verdict(False, numbers + ": the running statistics are not what hurts BN here.")


@dataclass(frozen=True)
class SweepVerdicts:
    """What sections 2–3 say about one sweep, in page order."""

    bn: Verdict  # BN at small batches
    batch_free: tuple[Verdict, ...]  # GN, LN, no norm (those on the chart): flat, or why not
    steps: Verdict  # whether every batch size trained long enough
    remedies: tuple[Verdict, ...]  # Ghost BN, Batch Renorm, GN, BN train-mode test (those on the chart)


def _remedies(r: BatchSizeSweepResult) -> tuple[Verdict, ...]:
    s, variants = r.config.settings, r.config.variants
    out = []
    if "ghost" in variants:
        out.append(ghost_verdict(r))
    if "renorm" in variants:
        what = f"corrects toward the running statistics (r_max = {num(s.r_max)}, d_max = {num(s.d_max)})"
        out.append(remedy_verdict(r, "Batch Renorm", what))
    if "group" in variants:
        out.append(remedy_verdict(r, "GN", "normalizes each example over groups of its own units"))
    return (*out, train_mode_verdict(r))


def sweep_verdicts(r: BatchSizeSweepResult) -> SweepVerdicts:
    """Every verdict of sections 2–3 for a sweep result."""
    free = tuple(batch_free_verdict(r, v) for v in r.config.variants if v in BATCH_FREE_VARIANTS)
    return SweepVerdicts(bn=bn_verdict(r), batch_free=free, steps=steps_verdict(r), remedies=_remedies(r))


def takeaway(noise: NoiseResult | None, sweep: BatchSizeSweepResult | None) -> Verdict:
    """The page's closing sentence, from whatever has been computed."""
    parts, holds = [], True
    if noise is not None:
        halving = noise_verdicts(noise).halving
        holds &= halving.holds
        parts.append(
            "BN's μ_B and σ²_B are estimates from the batch, whose noise shrinks only like 1/√m"
            + ("." if halving.holds else f" (here: {halving.text})")
        )
    if sweep is None:
        return Verdict(
            holds, " ".join([*parts, "Train the sweep in section 2 to see what that noise does to accuracy."])
        )
    verdicts = sweep_verdicts(sweep)
    parts.append(verdicts.bn.text)
    free = [v for v in verdicts.batch_free if not v.holds]
    if free:
        parts += [v.text for v in free]
    elif verdicts.batch_free:
        names = _and([VARIANT_LABELS[v] for v in sweep.config.variants if v in BATCH_FREE_VARIANTS])
        within = f"stayed within {num(100 * MARGIN)} points at every batch size here"
        parts.append(f"{names} {within}: they never look across examples.")
    holds &= verdicts.bn.holds and not free
    return Verdict(holds, " ".join(parts))
