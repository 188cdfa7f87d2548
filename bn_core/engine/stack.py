"""The stacked model: K MLPs as ``(K, in, out)`` weights, one batched matmul per layer, a hand-written backward.

Per hidden layer: ``W[l]`` (K, in, out) (each network's ``nn.Linear`` weight, transposed)
and ``b[l]`` (K, 1, out); the head ``W[-1]`` (K, C, F) and ``b[-1]`` (K, C, 1) keep ``nn.Linear``'s
(out, in) layout, which multiplies faster for a narrow output. Between the matmuls every
activation is one ``(K, B, F)`` tensor. Networks with the same :class:`NormSpec` sit
next to each other, and each such slice gets one kernel of :mod:`bn_core.engine.norms`
per layer, so K networks with six kinds of normalization still run one ``baddbmm`` per
layer:

* Linear: ``z = h @ W + b``; ``dW = hᵀ @ dz``, ``db = Σ dz``, ``dh = dz @ Wᵀ``.
* Activation: sigmoid, tanh or ReLU, with torch's own backward formulas of the output.
* Cross-entropy: ``dlogits = (softmax − onehot) / B``.

Nothing couples two networks: every operation is independent across k, so network k
computes exactly what it would alone, and a NaN in one never reaches another.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from bn_core.engine.config import NormSpec
from bn_core.engine.norms import StackedNorm, make_stacked_norm
from bn_core.models import MLP, MLPConfig

__all__ = ["Stack", "cross_entropy"]

_ACT_FORWARD = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
_ACT_BACKWARD = {
    "sigmoid": lambda da, a: torch.ops.aten.sigmoid_backward(da, a),  # da·a·(1 − a)
    "tanh": lambda da, a: torch.ops.aten.tanh_backward(da, a),  # da·(1 − a²)
    "relu": lambda da, a: torch.ops.aten.threshold_backward(da, a, 0),  # da·[a > 0]
}


def _slices(norms: Sequence[NormSpec]) -> list[tuple[NormSpec, int, int]]:
    """Runs of equal norms in ``norms`` (already grouped): (spec, k0, k1)."""
    runs, k0 = [], 0
    for k in range(1, len(norms) + 1):
        if k == len(norms) or norms[k] != norms[k0]:
            runs.append((norms[k0], k0, k))
            k0 = k
    return runs


class Stack:
    """K networks of one MLP shape; network k has norm ``norms[k]`` (equal norms contiguous)."""

    def __init__(self, models: Sequence[MLP], norms: Sequence[NormSpec], mcfg: MLPConfig) -> None:
        affine = [[*(blk.linear for blk in m.blocks), m.head] for m in models]  # per network: L + 1 layers
        self.n_layers, self.act, self.placement = mcfg.depth, mcfg.activation, mcfg.placement
        hidden, L = range(self.n_layers), self.n_layers
        self.W = [torch.stack([a[i].weight.detach().T for a in affine]).contiguous() for i in hidden]
        self.b = [torch.stack([a[i].bias.detach()[None] for a in affine]) for i in hidden]
        # The head keeps nn.Linear's (out, in) layout: with out = n_classes (10), Wᵀ @ hᵀ is a wide product,
        # about 3× faster in MKL's batched GEMM than the thin h @ W (and likewise for its weight gradient).
        self.W.append(torch.stack([a[L].weight.detach() for a in affine]))  # (K, C, F)
        self.b.append(torch.stack([a[L].bias.detach()[:, None] for a in affine]))  # (K, C, 1)
        runs = _slices(norms)
        self.norms: list[list[StackedNorm]] = [
            [make_stacked_norm(spec, k0, k1, mcfg.width, mcfg.eps, mcfg.bn_momentum) for spec, k0, k1 in runs]
            for _ in range(self.n_layers)
        ]
        self.identity = all(spec.kind == "none" for spec, _, _ in runs)

    def to(self, device: torch.device, dtype: torch.dtype) -> Stack:
        self.W = [t.to(device=device, dtype=dtype) for t in self.W]
        self.b = [t.to(device=device, dtype=dtype) for t in self.b]
        for kernel in (k for layer in self.norms for k in layer):
            for name in kernel.tensors():
                setattr(kernel, name, getattr(kernel, name).to(device=device, dtype=dtype))
        return self

    def params(self) -> list[Tensor]:
        """Every trained tensor, in the order :meth:`backward` returns the gradients."""
        return [*self.W, *self.b, *(p for layer in self.norms for kernel in layer for p in kernel.params())]

    def param_rows(self) -> list[slice]:
        """Which networks each tensor of :meth:`params` belongs to (a slice of the K axis)."""
        whole = [slice(None)] * (2 * len(self.W))
        return whole + [slice(k.k0, k.k1) for layer in self.norms for k in layer for _ in k.params()]

    # -- forward ------------------------------------------------------------------

    def _affine(self, layer: int, h: Tensor) -> Tensor:
        """``h @ W + b`` for ``h`` (K, N, in), or a shared ``h`` (N, in) broadcast over K."""
        if h.dim() == 2:
            return torch.matmul(h, self.W[layer]).add_(self.b[layer])  # (K, N, out)
        return torch.baddbmm(self.b[layer], h, self.W[layer])

    def _normalize(self, layer: int, t: Tensor, mode: str, window: int) -> list[object]:
        """Normalize ``t`` in place, slice by slice; the caches for the backward pass (train mode)."""
        caches = []
        for kernel in self.norms[layer]:
            part = t[kernel.k0 : kernel.k1]
            if mode == "train":
                caches.append(kernel.train(part))
            elif mode == "eval":
                kernel.eval(part)
            else:
                kernel.test_batches(part, window)
        return caches

    def forward(self, x: Tensor, mode: str = "train", window: int = 0) -> tuple[Tensor, list[tuple]]:
        """Logits ``(K, N, C)`` for ``x`` (K, N, D) or shared (N, D), and the backward cache.

        ``mode``: "train" (batch statistics, running statistics updated), "eval" (running
        statistics) or "test" (BN normalizes each block of ``window`` rows on its own).
        The cache holds, per hidden layer, (input h, norm caches, activation output a).
        """
        act, cache, h = _ACT_FORWARD[self.act], [], x
        for layer in range(self.n_layers):
            z = self._affine(layer, h)
            if self.placement == "before":  # z → norm → act
                norm_cache = self._normalize(layer, z, mode, window)
                a = h_next = act(z)
            else:  # z → act → norm
                a = act(z)
                h_next = a if self.identity else a.clone()
                norm_cache = self._normalize(layer, h_next, mode, window)
            cache.append((h, norm_cache, a))
            h = h_next
        logits = torch.baddbmm(self.b[-1], self.W[-1], h.transpose(1, 2)).transpose(1, 2)  # (K, N, C) view
        return logits, [*cache, (h, None, None)]

    # -- backward -----------------------------------------------------------------

    def _norm_backward(self, layer: int, dy: Tensor, caches: list[object]) -> list[Tensor]:
        """``dy`` becomes ∂ℓ/∂(norm input) in place; returns the norm parameters' gradients."""
        grads = []
        for kernel, cache in zip(self.norms[layer], caches, strict=True):
            grads.append(kernel.backward(dy[kernel.k0 : kernel.k1], cache))
        return [g for per_kernel in grads for g in per_kernel]

    def _through_block(self, layer: int, dh: Tensor, caches: list[object], a: Tensor) -> tuple[Tensor, list[Tensor]]:
        """From ∂ℓ/∂(block output) to ∂ℓ/∂z, and the norm gradients of that layer."""
        act_backward = _ACT_BACKWARD[self.act]
        if self.placement == "before":
            dz = act_backward(dh, a)
            return dz, self._norm_backward(layer, dz, caches)
        norm_grads = self._norm_backward(layer, dh, caches)
        return act_backward(dh, a), norm_grads

    def backward(self, dlogits: Tensor, cache: list[tuple]) -> list[Tensor]:
        """Gradients in the order of :meth:`params` for ``dlogits`` (K, B, C), from the head down."""
        L = self.n_layers
        dW, db, dnorm = [None] * (L + 1), [None] * (L + 1), [[] for _ in range(L)]
        dW[L] = torch.bmm(dlogits.transpose(1, 2), cache[L][0])  # (K, C, F)  the head's (out, in) layout
        db[L] = dlogits.sum(dim=1).unsqueeze(2)  # (K, C, 1)
        dh = torch.bmm(dlogits, self.W[L])  # (K, B, F)
        for layer in reversed(range(L)):
            _, caches, a = cache[layer]
            dz, dnorm[layer] = self._through_block(layer, dh, caches, a)
            dW[layer] = torch.bmm(cache[layer][0].transpose(1, 2), dz)  # (K, in, out)  hᵀ @ dz
            db[layer] = dz.sum(dim=1, keepdim=True)  # (K, 1, out)
            if layer > 0:
                dh = torch.bmm(dz, self.W[layer].transpose(1, 2))  # (K, B, in)  dz @ Wᵀ
        by_kernel = [g for per_layer in dnorm for g in per_layer]
        return [*dW, *db, *by_kernel]


def cross_entropy(logits: Tensor, onehot: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy per network ``(K,)`` and ``dlogits`` ``(K, B, C)``."""
    log_p = logits - torch.logsumexp(logits, dim=2, keepdim=True)  # (K, B, C)
    loss = -(log_p * onehot).sum(dim=2).mean(dim=1)  # (K,)
    dlogits = (torch.exp(log_p) - onehot) / logits.shape[1]  # (K, B, C)
    return loss, dlogits
