"""Hand-written BN vs PyTorch's native kernel: forward + backward on 4096×1024 float32."""

from __future__ import annotations

import torch

from bench.common import Result, interleaved_ratio
from bn_core.layers import ManualBatchNorm


def run(quick: bool) -> list[Result]:
    N, C = 4096, 1024
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, C, generator=gen).requires_grad_()
    dy = torch.randn(N, C, generator=gen)
    manual, native = ManualBatchNorm(C), torch.nn.BatchNorm1d(C)

    def step(layer: torch.nn.Module) -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(dy)

    t_manual, t_native, ratio = interleaved_ratio(lambda: step(manual), lambda: step(native), 7 if quick else 25)
    return [
        Result(
            "manual_vs_torch_fwd_bwd",
            ratio,
            "ratio",
            goal=3.0,
            detail={"manual_ms": t_manual * 1e3, "torch_ms": t_native * 1e3, "shape": [N, C], "dtype": "float32"},
        )
    ]
