"""Train vs Inference, lab 1: forgetting ``model.eval()`` before predicting.

The trained network predicts the test set in batches of 1 … 128, once in train mode
(each batch normalized with its own statistics) and once in eval mode (the running
statistics). A batch of one cannot be normalized in train mode: its variance is 0.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1: the output of an example must not
depend on its batch-mates at inference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bn_core.data import DataSplit
from bn_core.experiments.inference.base import digits, test_rows
from bn_core.experiments.inference.modes import ModeError, batch_of_one_errors
from bn_core.experiments.inference.run import InferenceRun, trained_model
from bn_core.train import evaluate
from bn_core.verdict import Verdict, pct

__all__ = ["EVAL_SIZES", "FORGOT_COST", "ForgotEvalResult", "forgot_eval_lab", "forgot_verdict"]

EVAL_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)  # prediction batch sizes
# Train mode "costs accuracy" when it loses more than 5 points at batch 2 (22 of 450 test images):
# far more than the one or two images a different batch order flips.
FORGOT_COST = 0.05


@dataclass(frozen=True, eq=False)
class ForgotEvalResult:
    accuracy: pd.DataFrame  # batch_size, mode (train mode / eval mode), accuracy (train mode at 1: NaN)
    errors: tuple[ModeError, ...]  # batch of 1 in train mode, per implementation
    n_test: int  # test examples


def forgot_eval_lab(run: InferenceRun, data: DataSplit | None = None) -> ForgotEvalResult:
    """Test accuracy when predicting in batches of 1 … 128, with and without ``model.eval()``.

    The running statistics are restored after every train-mode pass.
    """
    split = digits(data)
    model = trained_model(run)
    order = test_rows(split, run.config.seed, 34)
    x, y = split.x_test[order], split.y_test[order]
    rows = []
    for n in EVAL_SIZES:
        k = len(y) // n * n  # whole batches only: a left-over batch of one would fail in train mode
        rows.append((n, "eval mode", evaluate(model, x[:k], y[:k], batch_size=n, mode="eval").accuracy))
        train_acc = math.nan if n == 1 else evaluate(model, x[:k], y[:k], batch_size=n, mode="train").accuracy
        rows.append((n, "train mode", train_acc))
    frame = pd.DataFrame(rows, columns=["batch_size", "mode", "accuracy"])
    return ForgotEvalResult(accuracy=frame, errors=batch_of_one_errors(run, split), n_test=len(y))


def _eval_words(r: ForgotEvalResult) -> str:
    """Eval mode's accuracy "at every size" when it moved by at most one image, else its range."""
    ev = r.accuracy[r.accuracy["mode"] == "eval mode"]["accuracy"]
    if ev.max() - ev.min() <= 1.0 / r.n_test + 1e-12:
        return f"eval mode {pct(ev.iloc[-1])} at every size: its answer does not depend on the batch."
    return f"eval mode between {pct(ev.min())} and {pct(ev.max())} (float rounding in batched matrix products)."


def forgot_verdict(r: ForgotEvalResult) -> Verdict:
    """Does predicting in train mode cost accuracy at small batches?"""
    acc = r.accuracy.set_index(["batch_size", "mode"])["accuracy"]
    refused = all(e.raised for e in r.errors)
    one = "train mode raises the error above" if refused else "train mode did not refuse it"
    train = (
        f"In batches of 2 train mode gets **{pct(acc[(2, 'train mode')])}**, of 8 {pct(acc[(8, 'train mode')])}, "
        f"of 128 {pct(acc[(128, 'train mode')])}; " + _eval_words(r)
    )
    cost = acc[(2, "eval mode")] - acc[(2, "train mode")]
    if cost > FORGOT_COST:
        return Verdict(
            True,
            f"Verdict: predicting one example at a time works only in eval mode ({pct(acc[(1, 'eval mode')])}); "
            f"{one}. " + train,
        )
    return Verdict(
        False,
        f"Verdict: here train mode costs only {pct(cost)} at batch 2 (threshold {pct(FORGOT_COST)}); {one} "
        "at batch 1. " + train,
    )
