"""Fine-tuning some parameters of a trained model: the readable loop for "frozen backbone" labs.

Only ``params`` are updated, by plain SGD on seeded random batches of ``(x, y)``. With
``bn_eval`` the model's BN layers stay in eval mode while the rest trains: they then
normalize with, and keep, their running statistics (the standard fix for fine-tuning on
a frozen backbone). Without it, BN layers in train mode keep updating their running
statistics even though their γ and β have ``requires_grad=False``: the pitfall the
Train vs Inference lab shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.optim import ManualOptimizer
from bn_core.precise_bn import bn_layers

__all__ = ["fine_tune"]


def fine_tune(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    steps: int,
    batch_size: int,
    gen: torch.Generator,
    bn_eval: bool = False,
    every: int = 0,
    on_record: Callable[[int], None] | None = None,
) -> None:
    """``steps`` SGD steps on ``params`` with cross-entropy; ``on_record(step)`` every ``every`` steps.

    ``x`` and ``y`` live on the CPU (batches are drawn there with ``gen`` and moved to the
    model's device), so a seed gives the same batches on any device.
    """
    device = next(model.parameters()).device
    opt = ManualOptimizer(params, "sgd", lr)  # torch.optim.SGD's update, without importing torch._dynamo
    for step in range(1, steps + 1):
        model.train()
        for bn in bn_layers(model) if bn_eval else []:
            bn.eval()  # BN uses, and keeps, its running statistics
        idx = torch.randint(len(y), (batch_size,), generator=gen)
        loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if every and on_record is not None and step % every == 0:
            on_record(step)
