"""``torch.optim``'s SGD, SGD with momentum and Adam, written out: the same foreach calls, bitwise the same updates.

Why not ``torch.optim`` itself: its optimizers import ``torch._dynamo`` on their first
construction or step, 0.9 s of one core in a fresh process, which a student opening
Training, Train vs Inference or Why BN Works on a fresh server would wait for. These
classes make the calls of ``torch.optim``'s foreach implementations (torch 2.13, the
defaults: no weight decay, dampening 0, no Nesterov, no AMSGrad), in the same order, so
the parameters after every step are bitwise those of ``torch.optim`` (tested against it
in ``tests/test_optim.py``). Parameters whose ``grad`` is ``None`` are skipped, as there.

* SGD: ``p ← p − lr·g``.
* SGD with momentum μ: ``buf ← g`` at the first step, then ``buf ← μ·buf + g``; ``p ← p − lr·buf``.
* Adam (Kingma & Ba 2014, arXiv:1412.6980; β = (0.9, 0.999), ε = 1e-8):
  ``m ← m + (1 − β1)(g − m)``, ``v ← β2·v + (1 − β2)·g²``,
  ``p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["KINDS", "ManualOptimizer", "heavy_ball_step"]

KINDS = ("sgd", "momentum", "adam")
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def heavy_ball_step(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: float, momentum: float) -> None:
    """One heavy-ball step on existing buffers: ``buf ← μ·buf + g``, ``p ← p − lr·buf`` (in place)."""
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, grads)
    torch._foreach_add_(params, bufs, alpha=-lr)


class ManualOptimizer:
    """SGD, SGD with momentum or Adam over ``params``, with ``zero_grad`` and ``step`` like ``torch.optim``."""

    def __init__(self, params: Iterable[Tensor], kind: str, lr: float, momentum: float = 0.9) -> None:
        if kind not in KINDS:
            raise ValueError(f"Unknown optimizer {kind!r}; choose one of {', '.join(KINDS)}.")
        self.params = list(params)
        self.kind, self.lr, self.momentum = kind, lr, momentum
        self.state: dict[Tensor, dict[str, Tensor]] = {}  # per parameter: buf, or m, v and its step count t

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        if self.kind == "sgd":
            torch._foreach_add_(params, grads, alpha=-self.lr)
        elif self.kind == "momentum":
            self._momentum(params, grads)
        else:
            self._adam(params, grads)

    def _momentum(self, params: list[Tensor], grads: list[Tensor]) -> None:
        if all(p in self.state for p in params):
            heavy_ball_step(params, grads, [self.state[p]["buf"] for p in params], self.lr, self.momentum)
            return
        for p, g in zip(params, grads, strict=True):  # torch's first step: buf is a copy of g
            if p in self.state:
                self.state[p]["buf"].mul_(self.momentum).add_(g)
            else:
                self.state[p] = {"buf": g.detach().clone()}
        torch._foreach_add_(params, [self.state[p]["buf"] for p in params], alpha=-self.lr)

    def _adam(self, params: list[Tensor], grads: list[Tensor]) -> None:
        for p in params:
            if p not in self.state:
                zeros = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.state[p] = {"m": zeros, "v": zeros.clone(), "t": torch.tensor(0.0)}
        m = [self.state[p]["m"] for p in params]
        v = [self.state[p]["v"] for p in params]
        steps = [self.state[p]["t"] for p in params]
        torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
        beta1, beta2 = BETAS
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, 1 - beta2)
        step_size = [(self.lr / (1 - beta1 ** t.item())) * -1 for t in steps]
        bias_correction2_sqrt = [(1 - beta2 ** t.item()) ** 0.5 for t in steps]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, ADAM_EPS)
        torch._foreach_addcdiv_(params, m, denom, step_size)
