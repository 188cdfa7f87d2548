"""Train vs Inference, lab 3: fine-tuning over a "frozen" backbone with ``requires_grad=False``.

A new 5-class head (digits 0 … 4) is trained over the trained backbone, whose weights, γ
and β have ``requires_grad=False``, once with the model in train mode and once with every
BN layer switched to eval mode. ``requires_grad`` stops gradients, not the running
statistics: in train mode every forward pass moves them toward the new data, and the
original 10-class task (frozen backbone, original head) degrades.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1); PyTorch ``_BatchNorm`` documentation
(buffers update in train mode regardless of ``requires_grad``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from bn_core.data import DataSplit
from bn_core.experiments.inference.base import MIN_TRAIN_BATCH, buffers, digits, drift, on_device
from bn_core.experiments.inference.run import InferenceRun, trained_model
from bn_core.train import evaluate, fine_tune, stream_seed
from bn_core.verdict import Verdict, num, pct

__all__ = [
    "FT_CLASSES",
    "FT_STEPS",
    "FT_LR",
    "FT_VARIANTS",
    "FT_DRIFT",
    "FinetuneResult",
    "finetune_lab",
    "finetune_verdict",
]

FT_CLASSES = 5  # the new task: tell digits 0 … 4 apart
FT_STEPS = 100  # fine-tuning updates of the new head
FT_LR = 0.1  # SGD step size for the new head
FT_VARIANTS = ("BN left in train mode", "BN put in eval mode")
# The running statistics "moved" when some running_mean went more than 1 % of a std: float
# rounding alone moves them by ~1e-7, and a 1 % shift of x̂ is already visible in the logits.
FT_DRIFT = 0.01


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    trace: pd.DataFrame  # step, variant, metric (drift, old_task_acc, new_task_acc), value
    summary: pd.DataFrame  # variant, drift, param_change, old_task_acc, new_task_acc
    old_task_before: float  # the original task's accuracy before fine-tuning
    n_test: int  # test examples of the original task


def _new_head(width: int, seed: int) -> nn.Linear:
    head = nn.Linear(width, FT_CLASSES)
    gen = torch.Generator().manual_seed(stream_seed(seed, 36))
    bound = 1.0 / math.sqrt(width)
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    return head


def _records(model: nn.Module, old_head: nn.Module, before: list, split: DataSplit) -> list[tuple[str, float]]:
    new_head = model.head
    model.head = old_head  # the original task: frozen backbone + original head, 10 classes
    old_acc = evaluate(model, split.x_test, split.y_test).accuracy
    model.head = new_head
    keep = split.y_test < FT_CLASSES
    new_acc = evaluate(model, split.x_test[keep], split.y_test[keep]).accuracy
    return [("drift", drift(model, before)), ("old_task_acc", old_acc), ("new_task_acc", new_acc)]


def _finetune(run: InferenceRun, split: DataSplit, bn_eval: bool) -> tuple[list[tuple], float]:
    model = trained_model(run)
    before, params_before = buffers(model), [p.detach().clone() for p in model.blocks.parameters()]
    old_head, model.head = model.head, on_device(model, _new_head(run.config.width, run.config.seed))
    for p in model.blocks.parameters():
        p.requires_grad_(False)  # "frozen" backbone: W, b, gamma, beta
    keep = split.y_train < FT_CLASSES
    gen = torch.Generator().manual_seed(stream_seed(run.config.seed, 37))
    trace = [(0, *r) for r in _records(model, old_head, before, split)]

    def record(step: int) -> None:
        trace.extend((step, *r) for r in _records(model, old_head, before, split))

    fine_tune(model, split.x_train[keep], split.y_train[keep], model.head.parameters(), lr=FT_LR, steps=FT_STEPS,
              batch_size=max(run.config.batch_size, MIN_TRAIN_BATCH), gen=gen, bn_eval=bn_eval, every=10,
              on_record=record)  # fmt: skip
    params = zip(model.blocks.parameters(), params_before, strict=True)
    return trace, max(float((p.detach() - q).abs().max()) for p, q in params)


def finetune_lab(run: InferenceRun, data: DataSplit | None = None) -> FinetuneResult:
    """Train a new 5-class head on digits 0–4 over the frozen backbone, with BN in train mode and in eval mode."""
    split = digits(data)
    traces, summary = [], []
    for variant, bn_eval in zip(FT_VARIANTS, (False, True), strict=True):
        trace, change = _finetune(run, split, bn_eval)
        traces += [(step, variant, metric, value) for step, metric, value in trace]
        last = {metric: value for _, metric, value in trace[-3:]}
        summary.append((variant, last["drift"], change, last["old_task_acc"], last["new_task_acc"]))
    frame = pd.DataFrame(traces, columns=["step", "variant", "metric", "value"])
    first = frame[(frame["step"] == 0) & (frame["metric"] == "old_task_acc")]["value"]
    columns = ["variant", "drift", "param_change", "old_task_acc", "new_task_acc"]
    return FinetuneResult(
        trace=frame,
        summary=pd.DataFrame(summary, columns=columns),
        old_task_before=float(first.iloc[0]),
        n_test=len(split.y_test),
    )


def _fate(before: float, after: float, n_test: int) -> str:
    if after < before - 0.5 / n_test:
        return f"fell {pct(before)} → **{pct(after)}**"
    if after > before + 0.5 / n_test:
        return f"rose {pct(before)} → {pct(after)}"
    return f"stayed {pct(after)}"


def finetune_verdict(r: FinetuneResult) -> Verdict:
    """Did ``requires_grad=False`` leave the weights alone while the running statistics moved in train mode?"""
    s = r.summary.set_index("variant")
    tr, ev = s.loc[FT_VARIANTS[0]], s.loc[FT_VARIANTS[1]]
    frozen = bool((s["param_change"] == 0).all())
    weights = (
        "every weight, γ and β moved by exactly 0"
        if frozen
        else f"the weights moved by up to {num(s['param_change'].max())}"
    )
    text = (
        f"with `requires_grad=False` {weights}; with BN left in train mode running_mean moved by up to "
        f"**{num(tr['drift'])} std** and the original 10-class accuracy "
        f"{_fate(r.old_task_before, tr['old_task_acc'], r.n_test)}. With the BN layers in eval mode the "
        f"statistics moved by {num(ev['drift'])} and it {_fate(r.old_task_before, ev['old_task_acc'], r.n_test)}."
    )
    if frozen and tr["drift"] > FT_DRIFT:
        return Verdict(True, "Verdict: " + text)
    return Verdict(False, "Verdict: here the backbone stayed frozen in both modes: " + text)
