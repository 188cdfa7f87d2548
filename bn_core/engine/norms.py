"""Stacked normalization kernels: one norm kind for networks k0:k1 of a stack, forward and backward by hand.

Activations are ``(k, B, F)``: k networks, B examples, F units. Each kernel normalizes a
contiguous slice ``z[k0:k1]`` **in place** (its last operation writes into the slice), so
networks with different norms share one tensor and one batched matmul per layer.

* BN (Algorithm 1 of arXiv:1502.03167): statistics per (k, f) over the B examples. The
  backward is the compact formula of :mod:`bn_core.functional`,
  ``dx = γ·inv_std · (dy − (Σdy + x̂·Σ(dy·x̂)) / m)``.
* Ghost BN (arXiv:1705.08741): ``(k, B, F)`` viewed as ``(k, B/g, g, F)``, BN per ghost
  batch of g consecutive examples; the running statistics step toward the ghost batches' mean.
* Batch Renorm (arXiv:1702.03275): ``x̂ = u·r + d`` with ``u`` the BN-normalized input and
  ``r = clip(σ_B/σ, 1/r_max, r_max)``, ``d = clip((μ_B − μ)/σ, −d_max, d_max)`` constants
  of the backward pass, σ = sqrt(running_var + ε).
* Group norm (arXiv:1803.08494; layer norm is G = 1): per example over G groups of F/G units.

Running statistics follow PyTorch: the biased σ²_B normalizes, the unbiased
``σ²_B·m/(m − 1)`` enters ``running_var``, ``new = old + momentum·(batch − old)``, and
``momentum=None`` is a cumulative average. Every operation is independent across k.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bn_core.engine.config import NormSpec
from bn_core.functional import update_running_stats
from bn_core.norm_base import ema_weight

__all__ = ["StackedNorm", "make_stacked_norm"]


class StackedNorm:
    """Identity (no normalization): the base of every kernel, and the kernel for kind "none"."""

    def __init__(self, spec: NormSpec, k0: int, k1: int, F: int, eps: float, momentum: float | None) -> None:
        self.spec, self.k0, self.k1 = spec, k0, k1
        self.eps, self.momentum = eps, momentum
        k = k1 - k0
        self.gamma, self.beta = torch.ones(k, 1, F), torch.zeros(k, 1, F)  # (k, 1, F)
        self.running_mean, self.running_var = torch.zeros(k, 1, F), torch.ones(k, 1, F)
        self.n_batches = 0  # batches seen, for momentum=None (cumulative average)

    def tensors(self) -> list[str]:
        """Names of the tensors that move with the stack (``to``)."""
        return ["gamma", "beta", "running_mean", "running_var"]

    def params(self) -> list[Tensor]:
        """The trained tensors, in the order :meth:`backward` returns their gradients."""
        return []

    def train(self, x: Tensor) -> object:
        """Normalize the slice ``x`` (k, B, F) in place with batch statistics; return the backward cache."""
        return None

    def backward(self, dy: Tensor, cache: object) -> list[Tensor]:
        """Turn ``dy`` (k, B, F) in place into ∂ℓ/∂x; return the gradients of :meth:`params`."""
        return []

    def eval(self, x: Tensor) -> None:
        """Normalize ``x`` in place for inference."""

    def test_batches(self, x: Tensor, window: int) -> None:
        """Normalize ``x`` in place as train mode would on test batches of ``window`` rows (BN only)."""
        self.eval(x)

    def _step_momentum(self) -> float:
        self.n_batches += 1
        return ema_weight(self.momentum, self.n_batches)

    def _track(self, mu_B: Tensor, var_B: Tensor, m: int) -> None:
        """The one EMA step (``functional.update_running_stats``) toward ``mu_B`` and the unbiased
        ``var_B·m/(m − 1)``, on (k, 1, F) stacks."""
        self.running_mean, self.running_var = update_running_stats(
            self.running_mean, self.running_var, mu_B, var_B, m, self._step_momentum()
        )


def _moments(x: Tensor, dim: int, eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """μ, x − μ, biased σ² and 1/sqrt(σ² + ε) over ``dim`` (kept)."""
    mu = x.mean(dim=dim, keepdim=True)
    x_mu = x - mu
    var = (x_mu * x_mu).mean(dim=dim, keepdim=True)  # biased; var_mean is slower at these sizes
    return mu, x_mu, var, torch.rsqrt(var + eps)


def _compact_backward(dy: Tensor, x_hat: Tensor, scale: Tensor, m: int, dim: int) -> tuple[Tensor, Tensor]:
    """``dy ← scale·(dy − (Σdy + x̂·Σ(dy·x̂)) / m)`` over ``dim``, in place; returns (Σdy, Σ(dy·x̂))."""
    s_dy = dy.sum(dim=dim, keepdim=True)
    s_dyx = (dy * x_hat).sum(dim=dim, keepdim=True)
    centred = torch.sub(dy, torch.addcmul(s_dy, x_hat, s_dyx), alpha=1.0 / m)
    torch.mul(centred, scale, out=dy)
    return s_dy, s_dyx


class _Affine(StackedNorm):
    """A kernel with learned γ, β (k, 1, F) and inference from the running statistics."""

    def params(self) -> list[Tensor]:
        return [self.gamma, self.beta]

    def eval(self, x: Tensor) -> None:
        """z·s + (β − running_mean·s), s = γ / sqrt(running_var + ε): inference BN as one affine pass."""
        s = self.gamma * torch.rsqrt(self.running_var + self.eps)  # (k, 1, F)
        torch.addcmul(self.beta - self.running_mean * s, x, s, out=x)


class _BatchNorm(_Affine):
    def train(self, x: Tensor) -> object:
        mu_B, x_mu, var_B, inv_std = _moments(x, 1, self.eps)  # (k, 1, F), (k, B, F), …
        x_hat = x_mu * inv_std  # (k, B, F)
        torch.addcmul(self.beta, self.gamma, x_hat, out=x)  # y = γ·x̂ + β
        self._track(mu_B, var_B, x.shape[1])
        return x_hat, inv_std

    def backward(self, dy: Tensor, cache: object) -> list[Tensor]:
        x_hat, inv_std = cache
        dbeta, dgamma = _compact_backward(dy, x_hat, self.gamma * inv_std, dy.shape[1], 1)
        return [dgamma, dbeta]

    def test_batches(self, x: Tensor, window: int) -> None:
        """Each consecutive block of ``window`` rows normalized with its own statistics; buffers untouched."""
        k, N, F = x.shape
        blocks = x.view(k, N // window, window, F)  # (k, W, b, F)
        _, x_mu, _, inv_std = _moments(blocks, 2, self.eps)
        torch.addcmul(self.beta, self.gamma, (x_mu * inv_std).view(k, N, F), out=x)


class _GhostBatchNorm(_Affine):
    def train(self, x: Tensor) -> object:
        k, B, F = x.shape
        g = self.spec.ghost_batch
        ghosts = x.view(k, B // g, g, F)  # (k, B/g, g, F): ghost batches of g consecutive examples
        mu_B, x_mu, var_B, inv_std = _moments(ghosts, 2, self.eps)  # (k, B/g, 1, F) statistics
        x_hat = (x_mu * inv_std).view(k, B, F)
        torch.addcmul(self.beta, self.gamma, x_hat, out=x)
        self._track(mu_B.mean(dim=1), var_B.mean(dim=1), g)  # one step toward the ghost batches' mean
        return x_hat, inv_std

    def backward(self, dy: Tensor, cache: object) -> list[Tensor]:
        x_hat, inv_std = cache
        k, B, F = dy.shape
        g = self.spec.ghost_batch
        dy_g, x_hat_g = dy.view(k, B // g, g, F), x_hat.view(k, B // g, g, F)
        dbeta, dgamma = _compact_backward(dy_g, x_hat_g, self.gamma[:, None] * inv_std, g, 2)
        return [dgamma.sum(dim=1), dbeta.sum(dim=1)]


class _BatchRenorm(_Affine):
    def train(self, x: Tensor) -> object:
        mu_B, x_mu, var_B, inv_std = _moments(x, 1, self.eps)
        sigma = torch.sqrt(self.running_var + self.eps)  # (k, 1, F)
        r = torch.clamp(torch.sqrt(var_B + self.eps) / sigma, 1.0 / self.spec.r_max, self.spec.r_max)
        d = torch.clamp((mu_B - self.running_mean) / sigma, -self.spec.d_max, self.spec.d_max)
        u = x_mu * inv_std  # (k, B, F): BN's x̂
        torch.addcmul(self.beta, self.gamma, torch.addcmul(d, u, r), out=x)  # y = γ·(u·r + d) + β
        self._track(mu_B, var_B, x.shape[1])  # after r and d, as in the paper
        return u, inv_std, r, d

    def backward(self, dy: Tensor, cache: object) -> list[Tensor]:
        u, inv_std, r, d = cache  # r, d: constants of the backward pass (stop-gradient)
        dbeta, s_dyu = _compact_backward(dy, u, self.gamma * r * inv_std, dy.shape[1], 1)
        return [torch.addcmul(d * dbeta, r, s_dyu), dbeta]  # dγ = Σdy·(u·r + d)


class _GroupNorm(StackedNorm):
    """Group norm: statistics per example over groups of F/G units; no running statistics."""

    def params(self) -> list[Tensor]:
        return [self.gamma, self.beta]

    def _groups(self, x: Tensor) -> Tensor:
        k, B, F = x.shape
        return x.view(k, B, self.spec.groups, F // self.spec.groups)  # (k, B, G, F/G)

    def train(self, x: Tensor) -> object:
        _, x_mu, _, inv_std = _moments(self._groups(x), 3, self.eps)
        x_hat = (x_mu * inv_std).view(x.shape)  # (k, B, F)
        torch.addcmul(self.beta, self.gamma, x_hat, out=x)
        return x_hat, inv_std

    def backward(self, dy: Tensor, cache: object) -> list[Tensor]:
        x_hat, inv_std = cache
        dbeta, dgamma = dy.sum(dim=1, keepdim=True), (dy * x_hat).sum(dim=1, keepdim=True)  # per unit
        dy.mul_(self.gamma)  # ∂ℓ/∂x̂
        dxh_g = self._groups(dy)
        _compact_backward(dxh_g, self._groups(x_hat), inv_std, dxh_g.shape[3], 3)
        return [dgamma, dbeta]

    def eval(self, x: Tensor) -> None:
        self.train(x)  # per example: the same in every mode


_KERNELS = {"none": StackedNorm, "batch": _BatchNorm, "ghost": _GhostBatchNorm, "renorm": _BatchRenorm}


def make_stacked_norm(spec: NormSpec, k0: int, k1: int, F: int, eps: float, momentum: float | None) -> StackedNorm:
    """The kernel for networks k0:k1 (all with norm ``spec``) at a hidden layer of F units."""
    return _KERNELS.get(spec.kind, _GroupNorm)(spec, k0, k1, F, eps, momentum)
