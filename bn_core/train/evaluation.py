"""Evaluation and taps: a model's loss and accuracy, and its hidden layers' inputs, without gradients.

Both put the model in the mode asked for and restore every module's mode afterwards;
in train mode BN normalizes with the batch's own statistics, and its running
statistics are restored unless the caller asks to keep the updates (the classic bug of
validating without ``model.eval()``).

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1: inference with population statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.models import Tap

__all__ = ["EvalResult", "evaluate", "collect_taps", "ModelMode"]


@dataclass(frozen=True)
class EvalResult:
    """Mean cross-entropy and accuracy (a fraction) over ``n`` examples."""

    loss: float
    accuracy: float
    n: int


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


class ModelMode:
    """Put a model in train or eval mode for a while; restore every module's mode (and, if asked, buffers)."""

    def __init__(self, model: nn.Module, mode: Literal["train", "eval"], keep_buffers: bool) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}.")
        self.model, self.mode, self.keep_buffers = model, mode, keep_buffers

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.saved = [(b, b.clone()) for b in self.model.buffers()] if self.keep_buffers else []
        return self.model.train(self.mode == "train")

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training
        with torch.no_grad():
            for buffer, value in self.saved:
                buffer.copy_(value)


def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    batch_size: int | None = None,
    mode: Literal["eval", "train"] = "eval",
    update_running_stats: bool = False,
) -> EvalResult:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, without gradients.

    Args:
        x: ``(N, D)`` inputs (cast to the model's device and dtype); y: ``(N,)`` labels.
        batch_size: chunk size; None = all N at once. In train mode every chunk is
            normalized with its *own* batch statistics, so the result depends on it.
        mode: ``"eval"`` (BN uses its running statistics: the correct way to validate)
            or ``"train"`` (BN uses each chunk's batch statistics: the classic bug of
            validating without ``model.eval()``).
        update_running_stats: only for ``mode="train"``. False (default): every buffer
            (running mean/var, batch counters) is restored afterwards, so evaluation
            leaves no trace. True: the buffers keep the updates, which is what really
            happens when one validates in train mode, and it shifts the running
            statistics toward the validation data.

    Returns:
        :class:`EvalResult`. The model's train/eval flags are restored either way.
    """
    device, dtype = _device_dtype(model)
    n = len(y)
    chunk = batch_size or n
    keep = mode == "train" and not update_running_stats
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    with ModelMode(model, mode, keep_buffers=keep), torch.no_grad():
        for start in range(0, n, chunk):
            xc = x[start : start + chunk].to(device=device, dtype=dtype)
            yc = y[start : start + chunk].to(device)
            logits = model(xc)
            loss_sum += F.cross_entropy(logits, yc, reduction="sum").double()
            correct += (logits.argmax(dim=1) == yc).sum()
    return EvalResult(loss=float(loss_sum) / n, accuracy=float(correct) / n, n=n)


def collect_taps(
    model: nn.Module, x: Tensor, mode: Literal["train", "eval"] = "train", update_running_stats: bool = False
) -> dict[int, Tap]:
    """Forward ``x`` once without gradients and return every hidden layer's detached :class:`Tap`.

    ``mode="train"`` normalizes with the batch's statistics (what training sees); the
    buffers are restored afterwards unless ``update_running_stats``. Keys are 1 … depth.
    """
    device, dtype = _device_dtype(model)
    taps: dict[int, Tap] = {}
    keep = mode == "train" and not update_running_stats
    with ModelMode(model, mode, keep_buffers=keep), torch.no_grad():
        model(x.to(device=device, dtype=dtype), taps)
    return taps
