"""Optimizers for stacked parameters: torch.optim's formulas with one learning rate per network.

Every parameter is ``(k, …)`` with k networks on its leading axis; its learning rate is
the matching slice of the ``(K, 1, 1)`` per-network rates, so one update moves K
networks, each with its own rate. Same formulas as ``torch.optim``:

* SGD: ``p ← p − lr·g``.
* SGD with momentum μ (dampening 0, not Nesterov): ``buf ← μ·buf + g`` (``buf = g`` at the
  first step), ``p ← p − lr·buf``.
* Adam (Kingma & Ba 2014, arXiv:1412.6980; betas 0.9, 0.999, ε = 1e-8): bias-corrected
  first and second moments, ``p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

__all__ = ["StackedOptimizer"]

_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


class StackedOptimizer:
    """One optimizer step for every stacked parameter, with per-network learning rates."""

    def __init__(self, kind: str, lr: Tensor, rows: Sequence[slice], momentum: float = 0.9) -> None:
        self.kind, self.momentum = kind, momentum
        self.neg_lr = [-lr[r] for r in rows]  # per parameter: (k, 1, 1)
        self.state: dict[str, list[Tensor]] = {}
        self.t = 0

    def step(self, params: Sequence[Tensor], grads: Sequence[Tensor]) -> None:
        """Update ``params`` in place with ``grads`` (same order and shapes)."""
        if self.kind == "sgd":
            for p, g, neg_lr in zip(params, grads, self.neg_lr, strict=True):
                p.addcmul_(g, neg_lr)
        elif self.kind == "momentum":
            self._momentum(params, grads)
        else:
            self._adam(params, grads)

    def _momentum(self, params: Sequence[Tensor], grads: Sequence[Tensor]) -> None:
        if "buf" not in self.state:
            self.state["buf"] = [g.clone() for g in grads]
        else:
            for buf, g in zip(self.state["buf"], grads, strict=True):
                buf.mul_(self.momentum).add_(g)
        for p, buf, neg_lr in zip(params, self.state["buf"], self.neg_lr, strict=True):
            p.addcmul_(buf, neg_lr)

    def _adam(self, params: Sequence[Tensor], grads: Sequence[Tensor]) -> None:
        if not self.state:
            self.state = {"m": [g.new_zeros(g.shape) for g in grads], "v": [g.new_zeros(g.shape) for g in grads]}
        self.t += 1
        bc1, bc2_sqrt = 1 - _BETAS[0] ** self.t, math.sqrt(1 - _BETAS[1] ** self.t)
        for p, g, m, v, neg_lr in zip(params, grads, self.state["m"], self.state["v"], self.neg_lr, strict=True):
            m.lerp_(g, 1 - _BETAS[0])
            v.mul_(_BETAS[1]).addcmul_(g, g, value=1 - _BETAS[1])
            denom = (v.sqrt() / bc2_sqrt).add_(_ADAM_EPS)
            p.addcmul_(m / denom, neg_lr / bc1)
