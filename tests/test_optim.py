"""bn_core.optim: torch.optim's SGD, momentum and Adam written out, bitwise; and what it spares a fresh server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bn_core.optim import KINDS, ManualOptimizer

ROOT = Path(__file__).resolve().parents[1]
LR = {"sgd": 0.3, "momentum": 0.05, "adam": 0.01}


def _torch_optimizer(kind: str, params) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=LR[kind], foreach=True)
    return torch.optim.SGD(params, lr=LR[kind], momentum=0.9 if kind == "momentum" else 0.0, foreach=True)


def _net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_updates_are_torch_optims_bitwise(kind: str, dtype: torch.dtype) -> None:
    """torch.optim is the oracle: 60 steps on the same batches leave bitwise the same parameters."""
    ours, theirs = _net(dtype), _net(dtype)
    opt_ours = ManualOptimizer(ours.parameters(), kind, LR[kind], 0.9)
    opt_theirs = _torch_optimizer(kind, theirs.parameters())
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        x = torch.randn(16, 6, generator=gen, dtype=dtype)
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            opt.step()
    moved = [not torch.equal(p, q) for p, q in zip(ours.parameters(), _net(dtype).parameters(), strict=True)]
    assert all(moved)  # every parameter trained
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("kind", KINDS)
def test_a_parameter_without_a_gradient_is_left_alone_as_in_torch(kind: str) -> None:
    """A frozen parameter (grad None) keeps its value and gets no state; one that joins later starts fresh."""
    ours, theirs = _net(torch.float64), _net(torch.float64)
    opt_ours = ManualOptimizer(ours.parameters(), kind, LR[kind], 0.9)
    opt_theirs = _torch_optimizer(kind, theirs.parameters())
    frozen_before = ours[0].weight.detach().clone()
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for step in range(6):
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad(set_to_none=True)
            net(x).sum().backward()
            if step < 3:
                net[0].weight.grad = None  # frozen for the first three steps
            opt.step()
        if step == 2:
            assert torch.equal(ours[0].weight, frozen_before)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)


def test_zero_grad_zeroes_or_drops_and_an_unknown_kind_is_explained() -> None:
    p = nn.Parameter(torch.ones(3))
    opt = ManualOptimizer([p], "sgd", 0.1)
    p.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(3))
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # nothing has a gradient: nothing moves
    assert torch.equal(p.detach(), torch.ones(3))
    with pytest.raises(ValueError, match="sgd, momentum, adam"):
        ManualOptimizer([p], "lion", 0.1)


PROBE = """
import sys
from bn_core.train import fig1_config, train
from bn_core.experiments.why.jacobian import JacobianConfig, run_jacobian
train(fig1_config("batch", steps=3, eval_every=1, stats_every=1, device="cpu"))
train(fig1_config("batch", steps=3, eval_every=1, stats_every=1, device="cpu", optimizer="adam"))
run_jacobian(JacobianConfig(depth=3, width=8, batch=4))
print(sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
"""


def test_a_fresh_process_trains_and_takes_jacobians_without_dynamo_or_sympy() -> None:
    """The first train() and the Why page's Jacobians import neither torch._dynamo nor sympy (0.9 s + 0.35 s)."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
