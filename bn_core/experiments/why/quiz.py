"""Check yourself on the Why BN Works page: questions whose answers come from the live results.

Numbers come from the Noisy BN tab's three nets and the Scale invariance tab's layer, so
they change with the seed and the controls; the choice questions explain *why* with the
numbers of this run.
"""

from __future__ import annotations

import math

from bn_core.experiments.why.common import BN, NOISY_BN
from bn_core.experiments.why.debate import evidence
from bn_core.experiments.why.noisy import VARIANTS, NoisyResult
from bn_core.experiments.why.scale import ScaleResult
from bn_core.quiz import Question
from bn_core.train import FIG1_TARGET_ACC
from bn_core.verdict import num, pct

__all__ = ["questions", "STABILITY_OPTIONS", "QUIZ_LAYER"]

QUIZ_LAYER = 3  # the questions ask about the last hidden layer, the page's default view
STABILITY_OPTIONS = (
    "It speaks against it: a net with far less stable layer inputs keeps BN's lead.",
    "It supports it: the noise costs BN its lead.",
    "It cannot decide: the nets did not train, BN had no lead, or the noise did not destabilise the inputs.",
)


def _accuracy(r: NoisyResult) -> Question:
    o = r.outcome(NOISY_BN)
    if o.diverged_at is not None:
        return Question(
            "noisy_diverged",
            "The noisy BN net diverged. At which step did its loss first become NaN or infinite?",
            "number",
            float(o.diverged_at),
            f"It {o.status}: the status column of the table says so, and its records stop there.",
            abs_tol=0.0,
            rel_tol=0.0,
        )
    return Question(
        "noisy_acc",
        "What final test accuracy (in %) did the **noisy BN** net reach? (the table and the accuracy chart)",
        "number",
        round(100 * o.final_test_acc, 1),
        f"It reached {pct(o.final_test_acc)}, against {r.outcome(BN).acc_text} for BN.",
        rel_tol=0.0,
        abs_tol=0.5,
    )


def _steadiest(r: NoisyResult) -> Question | None:
    jumps = {v: r.jump(v, QUIZ_LAYER, "unit") for v in VARIANTS}
    if not all(math.isfinite(j) for j in jumps.values()):
        return None
    most = max(jumps, key=jumps.get)
    listed = ", ".join(f"{v} {num(j)}" for v, j in jumps.items())
    return Question(
        "least_stable",
        f"In which net did layer {QUIZ_LAYER}'s input (one unit) jump the most between two records?",
        "choice",
        most,
        f"Mean jump of the median between records: {listed}. The noise is redrawn at every step, so the noisy "
        "net's inputs jump unless the noise is off.",
        options=VARIANTS,
    )


def _stability(r: NoisyResult) -> Question:
    ev = evidence(r, QUIZ_LAYER, "unit")
    if ev.comparison.kind in ("untrained", "bn_failed", "no_advantage") or not ev.view.stability.holds:
        answer = STABILITY_OPTIONS[2]
    else:
        answer = STABILITY_OPTIONS[0] if ev.comparison.verdict.holds else STABILITY_OPTIONS[1]
    return Question(
        "stability_story",
        "What does this run say about the story that BN works by keeping layer inputs stable?",
        "choice",
        answer,
        f"{ev.comparison.verdict.text} {ev.view.stability.text}",
        options=STABILITY_OPTIONS,
    )


def _target_step(r: NoisyResult) -> Question | None:
    acc = r.curves[(r.curves["variant"] == BN) & (r.curves["metric"] == "test_acc")]
    reached = acc[acc["value"] >= FIG1_TARGET_ACC]
    if reached.empty:
        return None
    step = int(reached["step"].iloc[0])
    return Question(
        "bn_target_step",
        f"At which evaluated step did the BN net first reach {pct(FIG1_TARGET_ACC, 0)} test accuracy? "
        "(hover over the accuracy chart)",
        "number",
        float(step),
        f"At step {step} its test accuracy was {pct(float(reached['value'].iloc[0]))}; the chart marks every "
        "evaluated step.",
        rel_tol=0.0,
        abs_tol=0.0,
    )


def _gradient(s: ScaleResult) -> Question:
    c = s.check("manual")
    return Question(
        "scaled_gradient",
        f"In the Scale invariance tab, ‖∇_W L‖ = {num(c.grad_norm_1, 4)} at α = 1. What is ‖∇_αW L‖ at "
        f"α = {num(c.alpha)}?",
        "number",
        c.grad_norm_alpha,
        f"Behind BN the gradient shrinks as the weights grow: ‖∇_W L‖ / α = {num(c.grad_norm_1, 4)} / "
        f"{num(c.alpha)} = {num(c.grad_norm_1 / c.alpha, 4)}, and the measured ‖∇_αW L‖ is "
        f"{num(c.grad_norm_alpha, 4)} (ε = {num(s.config.eps)}; a large ε breaks the identity for small α).",
        rel_tol=0.02,
    )


def questions(noisy: NoisyResult, scale: ScaleResult | None = None) -> tuple[Question, ...]:
    """3–5 questions from the Noisy BN result (and the Scale invariance result, when given)."""
    built = [_accuracy(noisy), _steadiest(noisy), _stability(noisy), _target_step(noisy)]
    if scale is not None:
        built.append(_gradient(scale))
    return tuple(q for q in built if q is not None)[:5]
