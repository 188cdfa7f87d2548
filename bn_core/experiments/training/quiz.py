"""Check yourself on Training Comparison: 3–5 questions whose answers are the live result's numbers.

The questions are built from the comparison on screen, so a new seed or setting gives new
answers: at which step a net first reached the target, its final accuracy, whose layer
input moved more, which net saturated more. Questions whose answer does not exist in this
run (a net that never reached the target, a side that was not trained) are replaced by one
that asks what happened instead.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1; §3.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bn_core.experiments.training.comparison import ComparisonResult
from bn_core.experiments.training.report import ComparisonReport
from bn_core.experiments.training.verdicts import Outcome
from bn_core.quiz import Question
from bn_core.train import BATCH_OF_ONE
from bn_core.verdict import num, pct

__all__ = ["questions"]

YES, NO = "yes", "no"
_WHO = {"BN": "the BN net", "no norm": "the net without normalization"}


def _reach(o: Outcome, target: float, steps: int, eval_every: int) -> Question:
    """At which step did this net first reach the target? (or: did it reach it at all?)"""
    key, who = f"steps_{o.variant.replace(' ', '_')}", _WHO[o.variant]
    if o.steps_to_target is None:
        fate = f"diverged at step {o.diverged_at}" if o.diverged_at else f"ended at {pct(o.final_test_acc)}"
        return Question(
            key=key,
            prompt=f"Did {who} reach {pct(target, 0)} test accuracy within {steps} steps (section 1)?",
            kind="choice",
            answer=NO,
            options=(YES, NO),
            explain=f"No: its test accuracy never got to {pct(target, 0)}; it {fate}.",
        )
    return Question(
        key=key,
        prompt=f"At which step did {who} first reach {pct(target, 0)} test accuracy (section 1, accuracy chart)?",
        kind="number",
        answer=float(o.steps_to_target),
        rel_tol=0.0,
        abs_tol=float(eval_every),  # the chart has a point every eval_every steps: one point either side is a fair read
        explain=f"At step {o.steps_to_target}: the first evaluation (every {eval_every} steps) at or above the target.",
    )


def _final(o: Outcome) -> Question | None:
    if not math.isfinite(o.final_test_acc):
        return None
    value = round(100 * o.final_test_acc, 1)
    return Question(
        key=f"final_{o.variant.replace(' ', '_')}",
        prompt=f"What is the final test accuracy of {_WHO[o.variant]}, in % (summary table)?",
        kind="number",
        answer=value,
        rel_tol=0.0,
        abs_tol=0.5,  # half a percentage point: reading the table's rounded value
        explain=f"{num(value)} %, measured in eval mode on the held-out test set after the last step.",
    )


def _more(key: str, prompt: str, bn: float, plain: float, what: str, fmt: Callable[[float], str]) -> Question | None:
    """Which of the two nets has the larger value of a measured quantity (``fmt`` prints it)."""
    if not (math.isfinite(bn) and math.isfinite(plain)) or bn == plain:
        return None
    answer = "BN" if bn > plain else "no norm"
    return Question(
        key=key,
        prompt=prompt,
        kind="choice",
        answer=answer,
        options=("BN", "no norm"),
        explain=f"{answer}: {what} was {fmt(bn)} with BN and {fmt(plain)} without.",
    )


def _batch_of_one() -> Question:
    right = "With one example the batch variance is 0, so x̂ = 0 and BN outputs only β"
    return Question(
        key="batch_of_one",
        prompt="Why is there no BN curve at a batch size of 1?",
        kind="choice",
        answer=right,
        options=(right, "BN needs more training steps", "The learning rate is too high for BN"),
        explain=f"The {BATCH_OF_ONE}: every input gives the same output, so there is nothing to learn from.",
    )


def questions(result: ComparisonResult, report: ComparisonReport) -> tuple[Question, ...]:
    """The page's check-yourself questions, from the live result (3 to 5 of them)."""
    target, steps, every = report.target, result.config.steps, result.eval_every
    found = [o for o in (report.bn, report.plain) if o is not None]
    qs: list[Question | None] = [_reach(o, target, steps, every) for o in found]
    if report.bn is None:
        return tuple(q for q in (*qs, _final(report.plain), _batch_of_one()) if q is not None)
    bn, plain = report.bn, report.plain
    drift = f"Whose layer-{report.layer} input distribution moved more during training (section 2)?"
    what = "ReLU outputs exactly 0" if result.config.activation == "relu" else "saturated outputs"
    qs += [
        _final(bn) or _final(plain),
        _more("drift", drift, bn.band_drift, plain.band_drift, "the percentiles' average distance from step 0", num),
        _more("saturation", f"Which net had more {what} (section 4)?", bn.saturation, plain.saturation, what, pct),
    ]
    return tuple(q for q in qs if q is not None)[:5]
