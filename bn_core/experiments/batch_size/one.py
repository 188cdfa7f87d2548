"""Section 4a of Batch-Size Sensitivity: what torch, ``ManualBatchNorm`` and the bare functional do with one example.

In train mode BN normalizes each channel over the batch. With one example per channel
μ_B = x, σ²_B = 0, x̂ = 0 and y = β whatever x was, and the gradient reaching x is 0:
the example is erased (Ioffe & Szegedy 2015, arXiv:1502.03167, Algorithm 1). Torch and
``ManualBatchNorm`` refuse such a batch; their real messages are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.functional import batch_norm_backward, batch_norm_forward
from bn_core.layers import ManualBatchNorm, ManualGroupNorm
from bn_core.models import MLPConfig
from bn_core.train import TrainConfig, validate_config
from bn_core.verdict import Verdict, num

__all__ = ["BatchOfOneResult", "run_batch_of_one", "one_verdict", "ERASED_GRAD"]

# "Zero up to rounding": float64 rounding of the backward's sums leaves |dx| ≲ 1e-15 · |dy|; a gradient that
# still carries the example would be of the order of |dy| itself (≈ 1 here).
ERASED_GRAD = 1e-12


@dataclass(frozen=True)
class BatchOfOneResult:
    """What each implementation does with a single example in train mode."""

    outcomes: pd.DataFrame  # implementation, input_shape, mode, outcome ("error" | "ok"), message
    functional: pd.DataFrame  # channel, x, mu_B, var_B, x_hat, gamma, beta, y, dy, dx  (the bare functional)
    spatial: pd.DataFrame  # channel, values_per_channel, x_hat_mean, x_hat_std: BatchNorm2d on one image (m = H·W)

    @property
    def refused(self) -> list[str]:
        """The implementations that raised for one example in train mode."""
        return self.outcomes[self.outcomes["outcome"] == "error"]["implementation"].tolist()


def _attempt(name: str, shape: tuple[int, ...], mode: str, fn: Callable[[], object]) -> dict:
    row = {"implementation": name, "input_shape": str(shape), "mode": mode, "outcome": "ok", "message": ""}
    try:
        fn()
    except ValueError as err:
        row |= {"outcome": "error", "message": str(err)}
    return row


def run_batch_of_one(seed: int = 0, C: int = 4) -> BatchOfOneResult:
    """Run one example through torch's BN, ``ManualBatchNorm``, the functional, group norm and the engine.

    Torch and ``ManualBatchNorm`` refuse (their real messages are kept); the bare
    functional computes what the math gives: μ_B = x, σ²_B = 0, x̂ = 0, y = β, and a zero
    gradient for x.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, C, generator=gen, dtype=torch.float64) * 2 + 1  # (1, C)
    image = torch.randn(1, C, 3, 3, generator=gen, dtype=torch.float64)  # (1, C, H, W)
    outcomes = [
        _attempt("torch nn.BatchNorm1d", tuple(x.shape), "train", lambda: nn.BatchNorm1d(C).double()(x)),
        _attempt("bn_core ManualBatchNorm", tuple(x.shape), "train", lambda: ManualBatchNorm(C).double()(x)),
        _attempt("torch nn.BatchNorm1d", tuple(x.shape), "eval", lambda: nn.BatchNorm1d(C).double().eval()(x)),
        _attempt("torch nn.BatchNorm2d", tuple(image.shape), "train", lambda: nn.BatchNorm2d(C).double()(image)),
        _attempt("bn_core ManualGroupNorm (G=2)", tuple(x.shape), "train", lambda: ManualGroupNorm(2, C).double()(x)),
        _attempt(
            "bn_core.train.train (batch_size=1, BN)",
            (1, 64),
            "train",
            lambda: validate_config(TrainConfig(batch_size=1, model=MLPConfig(norm="batch"))),
        ),
    ]
    return BatchOfOneResult(pd.DataFrame(outcomes), _functional_one(x, gen), _spatial_one(image))


def _functional_one(x: Tensor, gen: torch.Generator) -> pd.DataFrame:
    C = x.shape[1]
    gamma = torch.linspace(0.5, 2.0, C, dtype=torch.float64)
    beta = torch.linspace(-1.0, 1.0, C, dtype=torch.float64)
    y, cache = batch_norm_forward(x, gamma, beta)
    dy = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    dx, _dgamma, _dbeta = batch_norm_backward(dy, cache)
    columns = {"x": x[0], "mu_B": cache.mu_B, "var_B": cache.var_B, "x_hat": cache.x_hat[0], "gamma": gamma}
    columns |= {"beta": beta, "y": y[0], "dy": dy[0], "dx": dx[0]}
    return pd.DataFrame({"channel": np.arange(C), **{k: v.numpy() for k, v in columns.items()}})


def _spatial_one(image: Tensor) -> pd.DataFrame:
    """One image through BatchNorm2d in train mode: m = H·W values per channel, so it works (like instance norm)."""
    y = nn.BatchNorm2d(image.shape[1]).double()(image).detach()
    return pd.DataFrame(
        {
            "channel": np.arange(image.shape[1]),
            "values_per_channel": image.shape[2] * image.shape[3],
            "x_hat_mean": y.mean(dim=(0, 2, 3)).numpy(),
            "x_hat_std": y.std(dim=(0, 2, 3), unbiased=False).numpy(),
        }
    )


def one_verdict(r: BatchOfOneResult) -> Verdict:
    """Whether one example is erased by train-mode BN: x̂ = 0, y = β and no gradient to x."""
    f = r.functional
    refused = ", ".join(f"`{name}`" for name in dict.fromkeys(r.refused)) or "nothing"
    var, x_hat, dx = f["var_B"].abs().max(), f["x_hat"].abs().max(), f["dx"].abs().max()
    numbers = f"μ_B = x, σ²_B = **{num(var)}**, x̂ = **{num(x_hat)}** for every channel"
    if x_hat == 0 and dx <= ERASED_GRAD * max(1.0, f["dy"].abs().max()):
        return Verdict(
            True,
            f"Refused: {refused}. The bare `batch_norm_forward` computes what the math gives (table below): "
            f"{numbers}, so y = β whatever x was, and the gradient reaching x is at most **{num(dx)}** "
            "(zero up to rounding): the example is erased.",
        )
    return Verdict(
        False,
        f"Refused: {refused}. The bare `batch_norm_forward` gives {numbers} and a gradient to x of up to "
        f"**{num(dx)}**: this example was not erased.",
    )
