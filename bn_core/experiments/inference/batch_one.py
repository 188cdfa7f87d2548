"""Train vs Inference: why a training batch of one example cannot work with BN, computed on the page's net.

One training example goes through the first layer of the page's (seeded, untrained) network
and then through BN in train mode by hand (:func:`bn_core.functional.batch_norm_forward`):
every channel holds one value, so μ_B is that value, σ²_B = 0, x̂ = 0 and y = β whatever
the input; the backward pass (:func:`bn_core.functional.batch_norm_backward`) sends exactly
zero gradient to the layers below. PyTorch refuses the batch; its own message is shown.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (Algorithm 1 with m = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from bn_core.data import DataSplit
from bn_core.experiments.inference.base import MIN_TRAIN_BATCH, InferenceConfig, digits, model_config
from bn_core.functional import batch_norm_backward, batch_norm_forward
from bn_core.models import build_model
from bn_core.verdict import Verdict, num

__all__ = ["LESSON_UNITS", "BatchOfOne", "batch_of_one", "stand_in_note"]

LESSON_UNITS = 4  # units of layer 1 shown in the lesson's table


@dataclass(frozen=True, eq=False)
class BatchOfOne:
    """The batch-of-1 lesson with this network's numbers."""

    table: pd.DataFrame  # feature, x (the one value), mu_B, var_B, x_hat, y (= β)
    max_abs_dx: float  # largest gradient reaching the layer input through BN: exactly 0
    torch_error: str  # what nn.BatchNorm1d says in train mode
    lesson: Verdict  # holds is False: BN cannot train on this batch


def _torch_error(z: torch.Tensor) -> str:
    try:
        nn.BatchNorm1d(z.shape[1], dtype=z.dtype).train()(z)
    except (ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {err}"
    return "(no error)"


def batch_of_one(cfg: InferenceConfig, data: DataSplit | None = None) -> BatchOfOne:
    """Algorithm 1 on a batch of one: layer 1 of the page's seeded network, float64."""
    model = build_model(model_config(cfg), seed=cfg.seed).double()
    x1 = digits(data).x_train[:1].double()  # (1, 64)
    with torch.no_grad():
        z = model.blocks[0].linear(x1)  # (1, C): what BN receives
    bn = model.blocks[0].norm
    y, cache = batch_norm_forward(z, bn.weight.detach(), bn.bias.detach(), bn.eps)  # (1, C)
    dx, _, _ = batch_norm_backward(torch.ones_like(y), cache)  # (1, C)
    k = slice(0, LESSON_UNITS)
    table = pd.DataFrame({
        "feature": range(LESSON_UNITS), "x": z[0, k].numpy(), "mu_B": cache.mu_B[k].numpy(),
        "var_B": cache.var_B[k].numpy(), "x_hat": cache.x_hat[0, k].numpy(), "y": y[0, k].numpy(),
    })  # fmt: skip
    err = _torch_error(z)
    return BatchOfOne(table=table, max_abs_dx=float(dx.abs().max()), torch_error=err, lesson=_lesson(dx, err))


def _lesson(dx: torch.Tensor, err: str) -> Verdict:
    return Verdict(
        False,
        "**Batch size B = 1: train-mode BN cannot learn from it.** Each channel holds one value per batch, so "
        "μ_B is that value and σ²_B = 0; x̂ = (x − μ_B)/√(σ²_B + ε) = 0 for every input and y = γ·0 + β = β "
        f"(table: layer 1 of this network, one training image). The backward pass sends max |∂L/∂x| = "
        f"{num(float(dx.abs().max()))} to the layers below, and the running-variance update would multiply "
        f"σ²_B by m/(m − 1) = 1/0. PyTorch refuses: `{err}`. The sections below use the same network trained "
        f"at B = {MIN_TRAIN_BATCH}, the smallest batch BN can train with.",
    )


def stand_in_note(cfg: InferenceConfig) -> Verdict | None:
    """For a batch the page cannot train (B = 1): which network the other sections use instead; else None."""
    if cfg.batch_size >= MIN_TRAIN_BATCH:
        return None
    return Verdict(
        False,
        f"B = {cfg.batch_size}: BN cannot train on one example per batch (section 1 shows why with this network's "
        f"numbers). Sections 2–4 use the same network trained at B = {MIN_TRAIN_BATCH}.",
    )
