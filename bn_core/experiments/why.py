"""Why BN Works: what the five experiments share (the net, the data, a side-effect-free loss and gradient).

The page tests four explanations of batch norm, each with its own module:

* :mod:`bn_core.experiments.why_noisy`: noisy BN (Santurkar et al. 2018, arXiv:1805.11604, §2.1),
  plus the weight-norm records the scale-invariance tab uses;
* :mod:`bn_core.experiments.why_ics`: internal covariate shift as Santurkar et al. define it (§2.2);
* :mod:`bn_core.experiments.why_landscape`: the loss landscape along the gradient (§3.1, Fig. 4);
* :mod:`bn_core.experiments.why_scale`: scale invariance of a Linear → BN layer (Ioffe & Szegedy 2015,
  arXiv:1502.03167, §3.3; van Laarhoven 2017, arXiv:1706.05350; Hoffer et al. 2018, arXiv:1803.01814);
* :mod:`bn_core.experiments.why_jacobian`: layer-to-layer Jacobian singular values at init
  (Pennington et al. 2017, arXiv:1711.04735; Yang et al. 2019, arXiv:1902.08129).

Every training run is :func:`bn_core.train.train` on the real digits data; the probes in
ICS and the landscape evaluate the loss with :func:`torch.func.functional_call` on
detached parameter copies and cloned buffers, so a probe never moves the trained model's
running statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.models import MLP, MLPConfig, build_mlp
from bn_core.train import Progress, TrainConfig, fig1_config

__all__ = [
    "DIGITS",
    "ACTIVATIONS",
    "net_config",
    "digits",
    "probe_params",
    "loss_and_grads",
    "flat_norm",
    "weight_names",
    "initial_model",
    "sub_progress",
]

DIGITS = DataConfig("digits")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
Norm = Literal["batch", "none"]


def net_config(
    norm: Norm,
    *,
    lr: float,
    steps: int,
    seed: int,
    depth: int = 3,
    activation: str = "sigmoid",
    width: int = 100,
    backend: str = "manual",
    variant: str | None = None,
    **overrides: object,
) -> TrainConfig:
    """Ioffe & Szegedy's Fig. 1 net on digits (SGD, batch 60), with depth / width / activation / lr changed."""
    base = fig1_config(norm, seed=seed, steps=steps, lr=lr, variant=variant)
    model = replace(base.model, depth=depth, width=width, activation=activation, backend=backend)
    assert isinstance(model, MLPConfig)
    return replace(base, model=model, **overrides)


def digits() -> DataSplit:
    """The digits split every experiment on this page trains on."""
    return load_dataset(DIGITS)


def probe_params(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Detached copies of the parameters and clones of the buffers, for side-effect-free probes."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    return params, buffers


def loss_and_grads(
    model: nn.Module,
    params: Mapping[str, Tensor],
    buffers: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    wrt: Iterable[str] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of ``model`` with ``params`` on ``(x, y)`` in train mode, and its gradients.

    The buffers passed in absorb any running-statistic update (pass clones); the model's
    own parameters and buffers are not touched. ``wrt`` limits the gradients to some
    parameter names (default: all).
    """
    names = list(params) if wrt is None else list(wrt)
    leaves = {n: p.detach().requires_grad_(n in names) for n, p in params.items()}
    was_training = model.training
    model.train()
    try:
        logits = functional_call(model, ({**leaves}, dict(buffers)), (x,))
    finally:
        model.train(was_training)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [leaves[n] for n in names])
    return loss.detach(), dict(zip(names, grads, strict=True))


def flat_norm(tensors: Iterable[Tensor]) -> Tensor:
    """‖(t₁, t₂, …)‖₂ of several tensors seen as one flat vector."""
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))


def weight_names(model: nn.Module) -> list[str]:
    """Parameter names of each linear weight, layers 1 … depth then the head (layer depth + 1)."""
    blocks = getattr(model, "blocks", [])
    return [f"blocks.{i}.linear.weight" for i in range(len(blocks))] + ["head.weight"]


def initial_model(cfg: TrainConfig, split: DataSplit) -> MLP:
    """The model ``train(cfg, data=split)`` starts from (same builder, same seed), in train mode, on the CPU."""
    model_cfg = cfg.model
    assert isinstance(model_cfg, MLPConfig)
    return build_mlp(replace(model_cfg, in_features=split.n_features, n_classes=split.n_classes), seed=cfg.seed)


def sub_progress(progress: Progress | None, i: int, n: int, name: str) -> Callable[[float, str], None] | None:
    """A progress callback for run ``i`` of ``n`` that reports the overall fraction."""
    if progress is None:
        return None
    return lambda f, msg: progress((i + f) / n, f"{name}: {msg}")
