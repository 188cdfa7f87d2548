"""Train vs Inference: the check-yourself questions, built from the page's live run.

Numeric answers come from this run (its last batch's σ²_B, its recorded train/eval gap), so
they change with the seed; choice questions explain *why* with the live numbers.
"""

from __future__ import annotations

import math

from bn_core.experiments.inference.ema import bessel_table, half_life
from bn_core.experiments.inference.modes import ModeError
from bn_core.experiments.inference.run import InferenceRun
from bn_core.quiz import Question
from bn_core.verdict import num, ratio

__all__ = ["questions", "gap_factor"]

QUIZ_LAYER, QUIZ_UNIT = 1, 0  # the unit the Bessel question is about (every run has it)
BATCH1_OPTIONS = (
    "It raises an error: one value per channel has no batch variance",
    "It runs and normalizes with the running statistics",
    "It runs and returns NaN",
)
KERAS_OPTIONS = (
    "Almost only the last batch",
    "A slow average, as Keras's 0.99 does",
    "Nothing: momentum 0.99 freezes the running statistics",
)


def _bessel(run: InferenceRun) -> Question:
    b = bessel_table(run, QUIZ_LAYER, QUIZ_UNIT)
    return Question(
        key="bessel",
        prompt=f"In the last training batch (m = {b.m}), unit {QUIZ_UNIT} of layer {QUIZ_LAYER} had "
        f"σ²_B = {num(b.var_B, 5)} (biased, ÷m). Which variance does the EMA fold into `running_var` for it?",
        kind="number",
        answer=b.var_unbiased,
        explain=f"The unbiased estimate σ²_B · m/(m − 1) = {num(b.var_B, 5)} × {b.m}/{b.m - 1} = "
        f"{num(b.var_unbiased, 5)}. The forward pass normalizes with the biased σ²_B.",
        rel_tol=0.005,
    )


def _half_life(run: InferenceRun) -> Question:
    m, steps = run.config.momentum, run.config.steps
    if m is None:
        return Question(
            key="weight_last", prompt=f"With `momentum=None`, what weight does batch number {steps} (the last) "
            "get in `running_mean`?", kind="number", answer=1 / steps,
            explain=f"A cumulative average gives the k-th batch weight 1/k: 1/{steps} = {num(1 / steps)}.",
        )  # fmt: skip
    exact = half_life(m)[1]
    return Question(
        key="half_life",
        prompt=f"With PyTorch momentum {m:g}, after how many steps has one batch's weight in `running_mean` "
        "halved? (the exact value, ln 2 / −ln(1 − m))",
        kind="number",
        answer=exact,
        explain=f"Each step multiplies an old batch's weight by 1 − m = {1 - m:g}; (1 − m)^k = 1/2 at "
        f"k = ln 2 / −ln(1 − m) = {num(exact)} steps (ln 2 / m = {num(half_life(m)[0])} is the approximation).",
    )


def _batch_of_one(errors: tuple[ModeError, ...]) -> Question:
    torch_error = next(e for e in errors if e.impl.startswith("torch"))
    answer = BATCH1_OPTIONS[0] if torch_error.raised else BATCH1_OPTIONS[1]
    return Question(
        key="batch_of_one",
        prompt="You predict a single image with the trained net in train mode (you forgot `model.eval()`), "
        "with `nn.BatchNorm1d` layers. What happens?",
        kind="choice",
        answer=answer,
        options=BATCH1_OPTIONS,
        explain=f"This network's `nn.BatchNorm1d` says: `{torch_error.text}`. With one value per channel "
        "μ_B is that value and σ²_B = 0, so x̂ would be 0 for every input; eval mode uses the running "
        "statistics and handles a single image.",
    )


def _keras() -> Question:
    torch_half, keras_half = half_life(0.99)[1], half_life(0.01)[1]
    answer = KERAS_OPTIONS[0] if torch_half < 1 else KERAS_OPTIONS[1]
    return Question(
        key="keras",
        prompt="Porting a Keras model, a colleague writes `nn.BatchNorm1d(C, momentum=0.99)`. "
        "What will `running_mean` track?",
        kind="choice",
        answer=answer,
        options=KERAS_OPTIONS,
        explain=f"PyTorch's momentum is the weight of the *newest* batch: 0.99 gives a half-life of "
        f"{num(torch_half)} steps. Keras's 0.99 is PyTorch's 0.01, a half-life of {num(keras_half)} steps.",
    )


def gap_factor(run: InferenceRun, layer: int = 1) -> float:
    """The factor by which the mean train/eval gap of ``layer`` shrank from batch 2 to 256, as printed."""
    sizes = run.gap_sizes[(run.gap_sizes["layer"] == layer) & (run.gap_sizes["metric"] == "gap_mean")]
    return ratio(sizes["value"].iloc[0], sizes["value"].iloc[-1])[0]


def _gap(run: InferenceRun) -> Question:
    q = gap_factor(run)
    return Question(
        key="gap_factor",
        prompt="Section 2, layer 1: by what factor is the mean train/eval output gap larger at batch 2 than "
        "at batch 256?",
        kind="number",
        answer=q,
        explain=f"The sentence under the charts gives {num(q)}×. The batch's μ_B and σ²_B scatter less in larger "
        f"batches (∝ 1/√B alone would give {num(math.sqrt(128))}×), so train mode gets closer to eval mode.",
    )


def questions(run: InferenceRun, errors: tuple[ModeError, ...]) -> tuple[Question, ...]:
    """3–5 questions: always half-life and Keras; Bessel, batch of one and the gap when the run has them."""
    qs = [_half_life(run)]
    if run.diverged_at is None:
        qs.insert(0, _bessel(run))
    if errors:
        qs.append(_batch_of_one(errors))
    qs.append(_keras())
    if run.diverged_at is None and len(run.gap_sizes):
        qs.append(_gap(run))
    return tuple(qs)
