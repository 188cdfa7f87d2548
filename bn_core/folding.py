"""BN folding for deployment: merge each eval-mode BN layer into a neighbouring Linear or Conv.

In eval mode BN is a fixed per-channel affine map, ``y = s·z + t`` with
``s = gamma / sigma``, ``t = beta − gamma·running_mean / sigma`` and
``sigma = sqrt(running_var + eps)``. An affine map composed with an affine map is one
affine map, so the BN layer can disappear into its neighbour:

* **BN right after the Linear / Conv** (``linear → BN → act``, the paper's placement):
  ``W' = gamma·W / sigma`` (row c of W, or filter c of a conv, scaled by s_c) and
  ``b' = gamma·(b − running_mean) / sigma + beta``. Exact for Linear and Conv alike.
* **BN after the activation** (``linear → act → BN``): the nonlinearity sits between BN
  and the preceding layer, so BN is folded into the *following* layer instead:
  ``W' = W·diag(s)``, ``b' = b + W·t``. Exact for the MLP (into the next block's Linear
  or the head) and for the CNN's last block (global average pooling commutes with a
  per-channel affine map, so it folds into the head).

**Not foldable** (:func:`fold_bn` raises ``ValueError`` with the reason):

* a post-activation BN followed by a zero-padded conv: the padding inserts zeros
  *after* BN, i.e. values that BN would have mapped to ``t``, so the border outputs
  would change;
* layer, group and instance norm: their statistics are computed per example at
  inference too, so there is no constant affine map to fold;
* BN without running statistics (``track_running_stats=False``): it uses batch
  statistics in eval mode as well.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1, inference is a linear
transform); Jacob et al. 2018, arXiv:1712.05877 (§3.2, folding BN for deployment).
"""

from __future__ import annotations

import copy
import gc
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from bn_core.layers import ManualBatchNorm
from bn_core.models import MLP, SmallCNN

__all__ = ["bn_affine", "fold_into_preceding", "fold_into_following", "fold_bn", "has_bn", "interleaved_times"]

_BN_TYPES = (ManualBatchNorm, nn.modules.batchnorm._BatchNorm)


def bn_affine(bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Eval-mode BN as ``y = s·z + t``: the per-channel scale ``s`` and shift ``t``, ``(C,)`` each."""
    if getattr(bn, "running_mean", None) is None:
        raise ValueError("This BN layer keeps no running statistics (track_running_stats=False): nothing to fold.")
    gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    sigma = torch.sqrt(bn.running_var + bn.eps)  # (C,)
    s = gamma / sigma  # (C,)
    t = beta - gamma * bn.running_mean / sigma  # (C,)
    return s.detach(), t.detach()


def fold_into_preceding(layer: nn.Linear | nn.Conv2d, bn: nn.Module) -> None:
    """``layer → BN`` becomes ``layer'``: W' = gamma·W/sigma, b' = gamma·(b − running_mean)/sigma + beta (in place)."""
    s, t = bn_affine(bn)
    with torch.no_grad():
        if layer.bias is None:  # a bias-free layer gets one: BN's shift must live somewhere
            layer.bias = nn.Parameter(torch.zeros_like(s))
        shape = (-1, *([1] * (layer.weight.dim() - 1)))  # s_c scales output row / filter c
        layer.weight.mul_(s.view(shape))  # W' = gamma·W / sigma
        layer.bias.mul_(s).add_(t)  # b' = s·b + t = gamma·(b − running_mean)/sigma + beta


def fold_into_following(bn: nn.Module, layer: nn.Linear) -> None:
    """``BN → (pool) → layer`` becomes ``layer'``: W' = W·diag(s), b' = b + W·t (in place)."""
    s, t = bn_affine(bn)
    with torch.no_grad():
        b = layer.bias if layer.bias is not None else torch.zeros(layer.out_features, dtype=s.dtype, device=s.device)
        new_bias = b + layer.weight @ t  # (out,)  uses the unscaled W
        layer.weight.mul_(s.view(1, -1))  # scales input column c by s_c
        layer.bias = nn.Parameter(new_bias)


def has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, _BN_TYPES) for m in model.modules())


def _check_norms(model: MLP | SmallCNN) -> None:
    for index, block in enumerate(model.blocks, start=1):
        norm = block.norm
        if isinstance(norm, (nn.Identity, *_BN_TYPES)):
            continue
        raise ValueError(
            f"Block {index} uses {type(norm).__name__}: it normalizes each example with its own statistics, "
            "at inference too, so there is no constant affine map to fold. Only batch norm folds."
        )


def fold_bn(model: MLP | SmallCNN) -> MLP | SmallCNN:
    """A folded copy of ``model`` in eval mode: every BN layer merged into a Linear/Conv, replaced by Identity.

    The original is untouched. The copy computes the same function as ``model.eval()``
    up to float rounding. See the module docstring for what can and cannot be folded.

    Raises:
        ValueError: a norm that is not batch norm, a BN without running statistics, or a
            post-activation BN in front of a zero-padded conv.
    """
    if not isinstance(model, MLP | SmallCNN):
        raise ValueError(f"fold_bn handles the MLP and SmallCNN of bn_core.models, not {type(model).__name__}.")
    _check_norms(model)
    folded = copy.deepcopy(model).eval()
    blocks = list(folded.blocks)
    followers = [b.linear for b in blocks[1:]] + [folded.head]
    for index, (block, follower) in enumerate(zip(blocks, followers, strict=True), start=1):
        if not isinstance(block.norm, _BN_TYPES):
            continue
        if block.placement == "before":
            fold_into_preceding(block.linear, block.norm)
        elif isinstance(follower, nn.Conv2d):
            raise ValueError(
                f"Block {index}: BN after the activation feeds a zero-padded conv. The padding adds zeros after BN, "
                "where the folded conv would see zeros before it, so the border outputs would change: not foldable."
            )
        else:
            fold_into_following(block.norm, follower)
        block.norm = nn.Identity()
    return folded


def interleaved_times(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3
) -> dict[str, tuple[float, list[float]]]:
    """Median wall time (s) and all times of each function, called in turn every round.

    Alternating the candidates in the same rounds keeps a shared, noisy machine from
    favouring whichever would have run last. The garbage collector is paused while timing
    (a full collection in a large process costs more than all the forward passes), and
    work is done without gradients.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with torch.no_grad():
            for _ in range(warmup):
                for fn in fns.values():
                    fn()
            for _ in range(rounds):
                for name, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}
