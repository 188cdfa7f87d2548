"""Train vs Inference, lab 2: a validation loop run in train mode (a forgotten ``model.eval()``).

The trained network "validates" on the test set with BN in train mode, batch B, once
shuffled and once class-sorted (an unshuffled loader over class folders). After every
validation batch the test set is scored properly in eval mode: the buggy validation
reports the wrong accuracy *and* moves the running statistics the next eval uses.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from bn_core.data import DataSplit
from bn_core.experiments.inference.base import MIN_TRAIN_BATCH, buffers, digits, drift, test_rows
from bn_core.experiments.inference.run import InferenceRun, trained_model
from bn_core.train import evaluate
from bn_core.verdict import Verdict, num, pct

__all__ = ["VAL_MISREPORT", "ValidationResult", "validation_lab", "validation_verdict"]

# The buggy validation "misreports" when it is off the eval-mode accuracy by more than 2 points
# (9 of 450 test images): more than the one or two images a different batch order flips.
VAL_MISREPORT = 0.02


@dataclass(frozen=True, eq=False)
class ValidationResult:
    trace: pd.DataFrame  # order, batch, metric (eval_acc, drift), value: after each validation batch
    summary: pd.DataFrame  # order, reported_acc, eval_before, eval_after, drift
    n_test: int  # test examples (one example = 1/n_test of accuracy)


def _validate_in_train_mode(run: InferenceRun, x: Tensor, y: Tensor, B: int) -> tuple[list[tuple], float]:
    """One validation pass in train mode, batch by batch: the trace (eval accuracy and drift after each
    batch) and the accuracy the buggy validation reports."""
    model = trained_model(run)
    before = buffers(model)
    trace = [(0, "eval_acc", evaluate(model, x, y).accuracy), (0, "drift", 0.0)]
    correct = 0
    for i, start in enumerate(range(0, len(y) - B + 1, B), start=1):
        xb, yb = x[start : start + B], y[start : start + B]
        # the bug: BN normalizes with the batch's statistics, and its running statistics keep the update
        correct += round(B * evaluate(model, xb, yb, mode="train", update_running_stats=True).accuracy)
        trace += [(i, "eval_acc", evaluate(model, x, y).accuracy), (i, "drift", drift(model, before))]
    return trace, correct / (len(y) // B * B)


def validation_lab(run: InferenceRun, data: DataSplit | None = None) -> ValidationResult:
    """Validate the trained net on the test set in train mode, shuffled and class-sorted, batch = B."""
    split = digits(data)
    B = run.config.batch_size
    if B < MIN_TRAIN_BATCH:
        raise ValueError("Validation in train mode needs batches of 2 or more: with 1, BN refuses (see lab 1).")
    x, y = split.x_test, split.y_test
    orders = {"shuffled": test_rows(split, run.config.seed, 35), "class-sorted": torch.argsort(y, stable=True)}
    traces, summary = [], []
    for name, order in orders.items():
        trace, reported = _validate_in_train_mode(run, x[order], y[order], B)
        traces += [(name, *row) for row in trace]
        last = {metric: value for _, metric, value in trace[-2:]}
        summary.append((name, reported, trace[0][2], last["eval_acc"], last["drift"]))
    return ValidationResult(
        trace=pd.DataFrame(traces, columns=["order", "batch", "metric", "value"]),
        summary=pd.DataFrame(summary, columns=["order", "reported_acc", "eval_before", "eval_after", "drift"]),
        n_test=len(y),
    )


def _next_eval(row: pd.Series, n_test: int, order: str) -> str:
    if abs(row["eval_after"] - row["eval_before"]) < 0.5 / n_test:
        return f"unchanged at {pct(row['eval_before'])} ({order})"
    return f"{pct(row['eval_before'])} → **{pct(row['eval_after'])}** ({order})"


def validation_verdict(r: ValidationResult) -> Verdict:
    """Did validating in train mode misreport the accuracy or change the next eval run?"""
    s = r.summary.set_index("order")
    c, sh = s.loc["class-sorted"], s.loc["shuffled"]
    off = (s["reported_acc"] - s["eval_before"]).abs().max()
    changed = (s["eval_after"] - s["eval_before"]).abs().max() >= 0.5 / r.n_test
    text = (
        f"validating in train mode reported **{pct(sh['reported_acc'])}** (shuffled) and "
        f"**{pct(c['reported_acc'])}** (class-sorted, like an unshuffled loader over class folders), against "
        f"{pct(sh['eval_before'])} in eval mode. It moved running_mean by up to {num(s['drift'].max())} std; the "
        f"*next* eval run: {_next_eval(c, r.n_test, 'class-sorted')}, {_next_eval(sh, r.n_test, 'shuffled')}."
    )
    if off > VAL_MISREPORT or changed:
        return Verdict(True, "Verdict: " + text)
    return Verdict(False, "Verdict: here the bug went unnoticed: " + text)
