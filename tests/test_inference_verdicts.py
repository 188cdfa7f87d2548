"""Train vs Inference: every sentence with a number or a verdict, for both outcomes, on small synthetic results.

Each verdict function of ``bn_core.experiments.inference`` is fed a hand-made result where
its claim holds and one where it does not; the test checks ``holds`` and that the text says
what the numbers say (and that a printed ratio is the quotient of the numbers beside it).
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from bn_core.experiments.inference import (
    Bessel,
    FoldResult,
    ForgotEvalResult,
    InferenceConfig,
    InferenceRun,
    LagResult,
    ModeError,
    ShiftResult,
    TwoModes,
    UnitStats,
    ValidationResult,
    bessel_verdict,
    fold_verdicts,
    forgot_verdict,
    gap_verdicts,
    keras_verdict,
    lag_verdict,
    modes_verdict,
    momentum_verdict,
    run_verdict,
    shift_verdict,
    stand_in_note,
    unit_verdict,
    validation_verdict,
)
from bn_core.experiments.inference.lab_finetune import FT_VARIANTS, FinetuneResult, finetune_verdict
from ui.inference.labs import DEFAULT_LAB, lab_key, lab_label, lab_text

RAISED = (ModeError("torch.nn.BatchNorm1d", True, "ValueError: Expected more than 1 value per channel"),)


def _quotient(text: str) -> tuple[float, float, float]:
    """The first "q× (a vs b" in ``text``: the printed ratio and the two printed numbers."""
    q, a, b = re.search(r"([\d.]+)× (?:faster )?\(([\d.]+) vs ([\d.]+)", text).groups()
    return float(q), float(a), float(b)


def _run(**kw) -> InferenceRun:
    """A tiny hand-made recorded run (only the fields the verdicts read)."""
    gap_sizes = pd.DataFrame(
        {"batch_size": [2, 256], "layer": [1, 1], "metric": ["gap_mean"] * 2, "value": kw.pop("sizes", [0.8, 0.07])}
    )
    checks = pd.DataFrame(
        {"step": [0, 300], "layer": [1, 1], "metric": ["gap_mean"] * 2, "value": kw.pop("steps", [0.7, 0.1])}
    )
    fields = dict(
        config=InferenceConfig(), status="trained 300 steps", diverged_at=None, curves=pd.DataFrame(),
        ema=pd.DataFrame(), checks=checks, gap_sizes=gap_sizes, state={}, values_per_channel=32, n_train=1347,
        test_acc=0.98, wall_s=1.5,
    )  # fmt: skip
    return InferenceRun(**{**fields, **kw})


def test_run_verdict_learned_at_chance_and_diverged():
    assert run_verdict(_run()).holds and "**98.0 %** test accuracy" in run_verdict(_run()).text
    stuck = run_verdict(_run(test_acc=0.1))
    assert not stuck.holds and "did not learn" in stuck.text and "10.0 %" in stuck.text
    diverged = run_verdict(_run(diverged_at=7, status="diverged at step 7"))
    assert not diverged.holds and "diverged at step 7" in diverged.text


def test_unit_verdict_close_and_stale():
    close = UnitStats(1, 3, 0.50, 1.00, 0.52, 1.02, 0.02 / math.sqrt(1.02), 1.0 / 1.02)
    v = unit_verdict(close)
    assert v.holds and "ended close" in v.text
    q, a, b = _quotient(v.text)
    assert q == pytest.approx(round(a / b, 2)) and (a, b) == (1.00, 1.02)
    stale = unit_verdict(UnitStats(1, 3, 0.0, 0.5, 0.6, 1.0, 0.6, 0.5))
    assert not stale.holds and "stale" in stale.text


def test_bessel_verdict_both_ways():
    good = Bessel(32, 32 / 31, 0.05, 0.05 * 32 / 31, 0.97, 0.97 * 32 / 31, 31 / 32, 64, 1)
    assert bessel_verdict(good).holds and "unbiased estimate" in bessel_verdict(good).text
    bad = Bessel(256, 256 / 255, 0.05, 0.05 * 256 / 255, 1.01, 1.01 * 256 / 255, 255 / 256, 64, 2)
    assert not bessel_verdict(bad).holds and "did not bring it closer" in bessel_verdict(bad).text


def test_momentum_and_keras_sentences():
    assert momentum_verdict(0.1).holds and "6.931" in momentum_verdict(0.1).text
    assert not momentum_verdict(None).holds and "No half-life" in momentum_verdict(None).text
    assert keras_verdict(0.99).holds and "a different EMA" in keras_verdict(0.99).text
    assert not keras_verdict(0.5).holds and "agree" in keras_verdict(0.5).text  # 0.5 is the same in both
    assert not keras_verdict(1.0).holds and "never move" in keras_verdict(1.0).text


def _two_modes(n: int, max_diff: float) -> TwoModes:
    summary = pd.DataFrame({"layer": [1], "max_abs_diff": [max_diff], "mean_abs_diff": [max_diff / 5]})
    errors = RAISED if n == 1 else ()
    return TwoModes(n=n, hist=pd.DataFrame(), features=pd.DataFrame(), summary=summary, errors=errors)


def test_modes_verdict_differs_agrees_and_batch_of_one():
    assert modes_verdict(_two_modes(32, 1.03), 1).holds
    agree = modes_verdict(_two_modes(450, 0.004), 1)
    assert not agree.holds and "match the running ones" in agree.text and "0.004" in agree.text
    one = modes_verdict(_two_modes(1, math.nan), 1)
    assert not one.holds and "σ²_B = 0" in one.text


def test_gap_verdicts_fell_and_did_not():
    v = gap_verdicts(_run(), 1)
    assert v.by_size.holds and "fell" in v.by_size.text and v.by_step.holds
    q, a, b = _quotient(v.by_size.text)
    assert q == pytest.approx(round(a / b, 2))
    flat = gap_verdicts(_run(sizes=[0.1, 0.095], steps=[0.1, 0.3]), 1)
    assert not flat.by_size.holds and "about the same" in flat.by_size.text
    assert not flat.by_step.holds and "rose" in flat.by_step.text


def _forgot(train2: float) -> ForgotEvalResult:
    rows = [(n, "eval mode", 0.98) for n in (1, 2, 8, 128)]
    rows += [(1, "train mode", math.nan), (2, "train mode", train2), (8, "train mode", 0.9), (128, "train mode", 0.97)]
    return ForgotEvalResult(pd.DataFrame(rows, columns=["batch_size", "mode", "accuracy"]), RAISED, 450)


def test_forgot_verdict_costly_and_cheap():
    costly = forgot_verdict(_forgot(0.49))
    assert costly.holds and "works only in eval mode" in costly.text and "at every size" in costly.text
    cheap = forgot_verdict(_forgot(0.97))
    assert not cheap.holds and "costs only 1.0 %" in cheap.text


def _validation(reported: float, after: float) -> ValidationResult:
    summary = pd.DataFrame(
        {"order": ["shuffled", "class-sorted"], "reported_acc": [min(reported, 0.975), reported],
         "eval_before": [0.98, 0.98], "eval_after": [0.98, after], "drift": [0.1, 0.2]}
    )  # fmt: skip
    return ValidationResult(trace=pd.DataFrame(), summary=summary, n_test=450)


def test_validation_verdict_misreports_or_goes_unnoticed():
    bad = validation_verdict(_validation(0.275, 0.973))
    assert bad.holds and "**27.5 %**" in bad.text and "98.0 % → **97.3 %**" in bad.text
    quiet = validation_verdict(_validation(0.975, 0.98))
    assert not quiet.holds and "went unnoticed" in quiet.text and "unchanged" in quiet.text


def _finetune(drift: float, old_acc: float) -> FinetuneResult:
    summary = pd.DataFrame(
        {"variant": list(FT_VARIANTS), "drift": [drift, 0.0], "param_change": [0.0, 0.0],
         "old_task_acc": [old_acc, 0.98], "new_task_acc": [0.99, 0.99]}
    )  # fmt: skip
    return FinetuneResult(trace=pd.DataFrame(), summary=summary, old_task_before=0.98, n_test=450)


def test_finetune_verdict_moved_or_frozen():
    moved = finetune_verdict(_finetune(0.42, 0.951))
    assert moved.holds and "fell 98.0 % → **95.1 %**" in moved.text and "stayed 98.0 %" in moved.text
    frozen = finetune_verdict(_finetune(0.0, 0.98))
    assert not frozen.holds and "stayed frozen" in frozen.text


def test_shift_verdict_recovered_partly_and_nothing_lost():
    fixed = shift_verdict(ShiftResult(0.982, 0.838, 0.982, pd.DataFrame(), 1.0))
    assert fixed.holds and "AdaBN won back **100%**" in fixed.text and "14.4 %" in fixed.text
    partly = shift_verdict(ShiftResult(0.982, 0.2, 0.3, pd.DataFrame(), (30.0 - 20.0) / (98.2 - 20.0)))
    assert not partly.holds and "only 13%" in partly.text
    nothing = shift_verdict(ShiftResult(0.982, 0.98, 0.982, pd.DataFrame(), math.nan))
    assert not nothing.holds and "nothing for AdaBN to win back" in nothing.text


def _lag(fast_error: float, momentum: float | None = 0.01, fast_lr: float = 3.0, diverged=None) -> LagResult:
    summary = pd.DataFrame(
        {"run": ["lr = 0.1", f"lr = {fast_lr:g}"], "lr": [0.1, fast_lr],
         "status": ["trained 300 steps", "diverged at step 5" if diverged else "trained 300 steps"],
         "diverged_at": [None, diverged], "gap": [0.005, 0.031], "stat_error": [0.11, fast_error],
         "acc_ema_final": [0.97, 0.947], "acc_precise_final": [0.97, 0.969]}
    )  # fmt: skip
    return LagResult(trace=pd.DataFrame(), summary=summary, momentum=momentum)


def test_lag_verdict_staler_not_staler_diverged_and_same_rate():
    staler = lag_verdict(_lag(0.17))
    assert staler.holds and "**+3.1 %**" in staler.text and "vs 0.11" in staler.text
    keeps_up = lag_verdict(_lag(0.12, momentum=0.1))
    assert not keeps_up.holds and "under 1.2× the 0.11" in keeps_up.text and "keeps up" in keeps_up.text
    assert (
        not lag_verdict(_lag(0.17, diverged=5)).holds
        and "diverged at step 5" in lag_verdict(_lag(0.17, diverged=5)).text
    )
    same = lag_verdict(_lag(0.11, fast_lr=0.1))
    assert not same.holds and "pick a higher one" in same.text


def _fold(torch_ms: float, folded_ms: float, diff: float = 7e-6) -> FoldResult:
    checks = pd.DataFrame(
        {"dtype": ["float32", "float64"], "inputs": ["test images"] * 2, "max_abs_diff": [diff, 1e-14],
         "max_abs_output": [25.6, 25.6], "tolerance": [2.56e-5, 2.56e-11], "ok": [diff <= 2.56e-5, True],
         "same_predictions": [1.0, 1.0]}
    )  # fmt: skip
    timing = pd.DataFrame(
        [(n, v, t) for n in (1, 450) for v, t in (("torch nn.BatchNorm (eval)", torch_ms), ("folded", folded_ms))],
        columns=["batch_size", "variant", "median_ms"],
    )
    return FoldResult("mlp", checks, timing, 2, 0.982, 0.982)


def test_fold_verdicts_faster_slower_and_outside_tolerance():
    v = fold_verdicts(_fold(0.0570, 0.0370))
    assert v.exact.holds and v.speed.holds and "1.54× faster (0.0570 vs 0.0370 ms)" in v.speed.text
    q, a, b = _quotient(v.speed.text)
    assert q == pytest.approx(round(a / b, 2))  # the ratio is the quotient of the printed times
    slow = fold_verdicts(_fold(0.050, 0.055))
    assert not slow.speed.holds and "slower than torch's BN" in slow.speed.text
    same = fold_verdicts(_fold(0.050, 0.049))
    assert not same.speed.holds and "about as fast as" in same.speed.text
    broken = fold_verdicts(_fold(0.05, 0.04, diff=1e-3))
    assert not broken.exact.holds and "Outside the tolerance" in broken.exact.text


def test_stand_in_note_only_for_a_batch_of_one():
    assert stand_in_note(InferenceConfig()) is None
    note = stand_in_note(InferenceConfig(batch_size=1))
    assert note is not None and not note.holds and "B = 2" in note.text


@pytest.mark.parametrize("value", [None, "", "zzz", 3, "lag"])
def test_lab_choice_never_raises(value):
    key = lab_key(value)
    assert key == (value if value == "lag" else DEFAULT_LAB)
    assert lab_text(value).startswith("**") and isinstance(lab_label(value), str)
