"""Every sentence Training Comparison says about its result, decided by the numbers it describes.

Each function takes the measured :class:`Outcome` of the two nets (or a grid's summary)
and returns a :class:`~bn_core.verdict.Verdict`: ``holds`` says whether the claim the page
would like to make ("BN trains faster", "its layer inputs move less") is what the numbers
show, and the text states the claim or its opposite. The thresholds that decide are the
named constants below.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1; §3.1; §3.3; §4.2.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bn_core.verdict import Verdict, num, pct, ratio

__all__ = [
    "LEARNED_SHARE",
    "SATURATION_MARGIN",
    "FLOAT64_AGREEMENT",
    "Outcome",
    "learned",
    "reach_phrase",
    "speed_verdict",
    "drift_verdict",
    "saturation_verdict",
    "takeaway",
    "backend_verdict",
    "grid_verdict",
    "grid_divergence",
    "sig_ratio",
]

# A net "learned" when its final test accuracy is at least a quarter of the way from chance to 100 %
# (digits: ≥ 32.5 %). A net stuck on a plateau or past its learning-rate limit stays within a few points of
# chance (the ×30 preset: 10–20 %), while a net that trains clears this by far within the page's steps.
LEARNED_SHARE = 0.25
# Saturation shares closer than one percentage point are not told apart: a different probe batch moves
# them by about that much.
SATURATION_MARGIN = 0.01
# float64 rounding in 600 steps of these nets stays below 1e-12; a different formula (a biased vs an
# unbiased variance, a missing term of the backward) shows up at 1e-3 or more. 1e-9 separates the two.
FLOAT64_AGREEMENT = 1e-9


@dataclass(frozen=True)
class Outcome:
    """What one net of the comparison did, as the page's sentences quote it."""

    variant: str  # "BN" or "no norm"
    final_test_acc: float  # a fraction; NaN when the run diverged
    steps_to_target: int | None  # first evaluated step at or above the target; None if never
    diverged_at: int | None  # the step whose loss was NaN/inf; None if it trained to the end
    band_drift: float = math.nan  # mean distance of the Fig. 1 percentiles from step 0 (the chosen layer)
    saturation: float = math.nan  # mean share of saturated (sigmoid/tanh) or zero (ReLU) outputs
    grad_norm_1: float = math.nan  # median ‖∂L/∂W‖ of hidden layer 1


def learned(o: Outcome | None, chance: float) -> bool:
    """Whether a net's final accuracy clears chance by :data:`LEARNED_SHARE` of the way to 100 %."""
    if o is None or not math.isfinite(o.final_test_acc):
        return False
    return o.final_test_acc >= chance + LEARNED_SHARE * (1 - chance)


def sig_ratio(a: float, b: float, unit: str = "") -> tuple[float, str]:
    """:func:`bn_core.verdict.ratio` with 3 significant digits on the smaller number (decimals chosen for it)."""
    small = min(abs(a), abs(b))
    digits = max(0, 2 - math.floor(math.log10(small))) if small > 0 else 0
    return ratio(a, b, digits=digits, unit=unit)


def reach_phrase(o: Outcome, target: float, steps: int) -> str:
    """ "**BN** reached 90.0 % test accuracy at step 75 (final 96.2 %)", or what happened instead."""
    if o.diverged_at is not None:
        return f"**{o.variant}** diverged at step {o.diverged_at}"
    final = f"final {pct(o.final_test_acc)}"
    if o.steps_to_target is None:
        return f"**{o.variant}** did not reach {pct(target, 0)} in {steps} steps ({final})"
    return f"**{o.variant}** reached {pct(target, 0)} test accuracy at step {o.steps_to_target} ({final})"


def speed_verdict(bn: Outcome, plain: Outcome, target: float, steps: int) -> Verdict:
    """Section 1: did BN reach the target sooner (Fig. 1 a)? The "N× sooner" is the quotient of the printed steps."""
    phrases = f"{reach_phrase(bn, target, steps)}; {reach_phrase(plain, target, steps)}."
    a, b = bn.steps_to_target, plain.steps_to_target
    if a is not None and b is not None and b > a > 0:
        _, text = ratio(b, a, digits=0, unit="steps")
        return Verdict(True, f"BN reached {pct(target, 0)} {text.replace('×', '× sooner', 1)}: {phrases}")
    if a is not None and (b is None or b > a):
        return Verdict(True, f"Only BN reached {pct(target, 0)} within {steps} steps: {phrases}")
    if a is None and b is None:
        return Verdict(False, f"Neither net reached {pct(target, 0)} within {steps} steps: {phrases}")
    return Verdict(False, f"BN was not faster here: {phrases}")


def drift_verdict(bn: Outcome, plain: Outcome, layer: int) -> Verdict:
    """Section 2: did the chosen layer's input distribution move less with BN (Fig. 1 b, c)?"""
    a, b = bn.band_drift, plain.band_drift
    if not (math.isfinite(a) and math.isfinite(b)) or min(a, b) <= 0:
        return Verdict(False, f"No drift to compare for layer {layer}: a run stopped before it was recorded.")
    head = f"Average distance of layer {layer}'s 15/50/85 % percentiles from where they started"
    if a < b:
        _, text = sig_ratio(b, a)
        return Verdict(True, f"{head}, without vs with BN: {text}. The input distribution moved less with BN.")
    _, text = sig_ratio(a, b)
    return Verdict(False, f"{head}, with vs without BN: {text}. The input distribution moved **more** with BN here.")


def saturation_verdict(bn: Outcome, plain: Outcome, activation: str) -> Verdict:
    """Section 4: fewer saturated sigmoid/tanh outputs (or zero ReLU outputs) with BN (§3.1)?"""
    what = "ReLU outputs exactly 0" if activation == "relu" else "saturated outputs"
    shares = f"**BN** {pct(bn.saturation)}, **no norm** {pct(plain.saturation)}"
    grads = f" Median gradient norm of layer 1: **BN** {num(bn.grad_norm_1)}, **no norm** {num(plain.grad_norm_1)}."
    if not (math.isfinite(bn.saturation) and math.isfinite(plain.saturation)):
        return Verdict(False, f"No share of {what} to compare: a run stopped before it was recorded.")
    if bn.saturation < plain.saturation - SATURATION_MARGIN:
        return Verdict(True, f"Fewer {what} with BN, averaged over layers and training: {shares}.{grads}")
    return Verdict(False, f"BN did not reduce the share of {what} here: {shares}.{grads}")


def takeaway(bn: Outcome | None, plain: Outcome, target: float, chance: float, steps: int) -> Verdict:
    """The page's closing sentence: what this run shows about BN, or the opposite when that is what happened."""
    if bn is None:
        return Verdict(
            False,
            "With a batch of 1 there is no BN net to compare: only the net without normalization trained "
            f"(final {pct(plain.final_test_acc)}, chance {pct(chance)}).",
        )
    final = f"BN {pct(bn.final_test_acc)}, no norm {pct(plain.final_test_acc)}, chance {pct(chance)}"
    if not learned(bn, chance) and not learned(plain, chance):
        return Verdict(
            False,
            f"No net trained at these settings ({final}). BN widens the range of learning rates and "
            "initializations that train, but not without limit: the grids (section 5) show where each net's edge lies.",
        )
    if not learned(bn, chance):
        return Verdict(False, f"Here the net without normalization trained and the BN net did not ({final}).")
    if not learned(plain, chance):
        return Verdict(
            True,
            f"Only the BN net trained within {steps} steps here ({final}): with each layer's input normalized, "
            f"the same settings made far faster progress, while the plain net is still far from the "
            f"{pct(target, 0)} target.",
        )
    if speed_verdict(bn, plain, target, steps).holds:
        return Verdict(
            True, f"Both nets trained ({final}), and BN reached {pct(target, 0)} sooner at the same settings."
        )
    return Verdict(False, f"Both nets trained ({final}), and BN gave no speed-up here.")


def backend_verdict(dtype: str, worst: float, steps: int) -> Verdict:
    """Section 6: are the hand-written BN and torch's the same function? Decided in float64 only."""
    head = f"Largest difference between the two backends over {steps} steps in {dtype}: **{num(worst)}**. "
    if dtype == "float64" and worst < FLOAT64_AGREEMENT:
        same = "In float64 the two agree to rounding: the hand-written forward and backward are the same function."
        return Verdict(True, head + same)
    if dtype == "float64":
        return Verdict(False, head + "That is more than float64 rounding: the two implementations differ here.")
    return Verdict(
        False,
        head + "In float32 the two round differently (they sum in different orders). Those differences start in the "
        "last digits, and training amplifies them step by step, more in a long or chaotic run. Turn on float64: "
        "if the implementations are the same function, the differences shrink to rounding.",
    )


def _listed(values: list[float]) -> str:
    return f" ({', '.join(f'{v:g}' for v in values)})" if values else ""


def _all_seeds_reached(summary: pd.DataFrame, variant: str) -> list[float]:
    rows = summary[(summary["variant"] == variant) & (summary["reached"] == summary["n_seeds"])]
    return sorted(rows["value"].astype(float))


def grid_verdict(summary: pd.DataFrame, title: str, target: float, skipped_reason: str | None = None) -> Verdict:
    """Section 5: at more of the grid's values, did every BN seed reach the target than every no-norm seed?

    ``summary`` is :func:`~bn_core.experiments.training.grids.grid_summary`; ``title`` names
    the axis ("learning rate"); ``skipped_reason`` is set when BN could not train at all.
    """
    n = summary["value"].nunique()
    plain = _all_seeds_reached(summary, "no norm")
    no_norm = f"no norm at {len(plain)} of {n}{_listed(plain)}"
    if skipped_reason is not None:
        return Verdict(False, f"BN was not trained ({skipped_reason}). Every seed reached {pct(target, 0)}: {no_norm}.")
    bn = _all_seeds_reached(summary, "BN")
    with_bn = f"BN at {len(bn)} of {n} {title} values{_listed(bn)}"
    head = f"Every seed reached {pct(target, 0)} test accuracy: {with_bn}, {no_norm}"
    if len(bn) > len(plain):
        return Verdict(True, f"{head}. BN trains over a wider range of {title}s.")
    return Verdict(False, f"{head}. BN did not widen the range of {title}s that train here.")


def grid_divergence(summary: pd.DataFrame, title: str) -> str | None:
    """ "Diverged runs, marked ✕ in the grid: no norm at learning rate 300: 2 of 3 (first at step 4)." or None."""
    cells = [
        f"{r.variant} at {title} {r.value:g}: {r.diverged} of {r.n_seeds} (first at step {int(r.first_diverged_at)})"
        for r in summary[summary["diverged"] > 0].itertuples()
    ]
    return "Diverged runs, marked ✕ in the grid: " + "; ".join(cells) + "." if cells else None
