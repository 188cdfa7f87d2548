"""Internal covariate shift, measured as Santurkar et al. 2018 define it (arXiv:1805.11604, Def. 2.1, Fig. 5).

For layer i at step t, on that step's batch (x, y):

* ``G``  = ∇_{W_i} L(W_1, …, W_k; x, y): the gradient with every layer as it was *before* update t;
* ``G′`` = ∇_{W_i} L(W′_1, …, W′_{i−1}, W_i, …, W_k; x, y): the same gradient after the *earlier*
  layers 1 … i−1 (every parameter of those blocks: weights, biases, γ, β) have taken their
  update t, layer i and the later ones unchanged.

ICS of layer i = ‖G − G′‖₂ (and cos(G, G′)): how much the earlier layers' update changes
the optimization problem layer i faces. Layer 1 has no earlier layers (its ICS is 0 by
definition), so layers 2 … depth and the head (layer depth + 1) are reported.

How it is computed: an ``on_step`` hook snapshots the parameters just before each measured
update (that is, after the previous step) and, after the update, evaluates G and G′ with
:func:`bn_core.experiments.why.loss_and_grads` on parameter copies in train mode. The
training run itself is untouched: same batches, same updates, same running statistics.

Sources: Santurkar et al. 2018, arXiv:1805.11604; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.experiments.why import loss_and_grads, net_config, probe_params, sub_progress, weight_names
from bn_core.train import Progress, StepContext, TrainResult, concat_results, train

__all__ = ["ICSConfig", "ICSResult", "run_ics", "ics_of_step", "ICS_METRICS"]

ICS_METRICS = ("l2", "cos", "rel_l2")


@dataclass(frozen=True)
class ICSConfig:
    """A BN net and a plain net, trained with the same init, batches and step size."""

    lr: float = 0.3  # SGD step size for both nets (0.3: both ReLU nets train; the Fig. 1 sigmoid net uses 2.0)
    steps: int = 200  # optimizer updates
    every: int = 10  # measure ICS every this many steps (≥ 2: the hook needs the step before)
    depth: int = 3  # hidden layers (Fig. 1 net: 3)
    activation: str = "relu"  # sigmoid, tanh or relu (the Fig. 1 net: sigmoid)
    seed: int = 0  # init and batch order


@dataclass(frozen=True, eq=False)
class ICSResult:
    """``ics``: step, variant, layer, metric (l2, cos, rel_l2), value. ``curves``: the engine's curves."""

    ics: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame  # variant, layer, metric, mean over the measured steps
    status: dict[str, str]


def _block_of(name: str) -> int:
    """1-based layer of a parameter name (``blocks.0.…`` → 1, ``head.…`` → depth + 1 via a large number)."""
    return int(name.split(".")[1]) + 1 if name.startswith("blocks.") else 10**6


def ics_of_step(
    model: nn.Module, before: dict[str, Tensor], after: dict[str, Tensor], x: Tensor, y: Tensor
) -> list[tuple[int, str, float]]:
    """(layer, metric, value) rows of Def. 2.1 for layers 2 … depth + 1, given the parameters before and after."""
    _, buffers = probe_params(model)
    names = weight_names(model)
    _, G_all = loss_and_grads(model, before, buffers, x, y, wrt=names)
    values = []
    for i, name in enumerate(names[1:], start=2):
        mixed = {n: after[n] if _block_of(n) < i else before[n] for n in before}  # earlier layers updated
        _, G_prime = loss_and_grads(model, mixed, probe_params(model)[1], x, y, wrt=[name])
        G, Gp = G_all[name].double(), G_prime[name].double()
        l2 = (G - Gp).norm()
        cos = (G * Gp).sum() / (G.norm() * Gp.norm()).clamp_min(1e-300)
        values.append(torch.stack([l2, cos, l2 / G.norm().clamp_min(1e-300)]))
    table = torch.stack(values).tolist()  # one sync
    return [(layer, m, v) for layer, row in enumerate(table, start=2) for m, v in zip(ICS_METRICS, row, strict=True)]


class _ICSHook:
    """``on_step``: keep the parameters before each measured update; measure after it."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.before: dict[str, Tensor] | None = None
        self.rows: list[tuple[int, int, str, float]] = []

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step % self.every == 0 and self.before is not None:
            after, _ = probe_params(ctx.model)
            self.rows += [(ctx.step, *row) for row in ics_of_step(ctx.model, self.before, after, ctx.x, ctx.y)]
            self.before = None
        if (ctx.step + 1) % self.every == 0:
            self.before, _ = probe_params(ctx.model)


def run_ics(cfg: ICSConfig, progress: Progress | None = None) -> ICSResult:
    """Train BN and no BN and measure ICS (Def. 2.1) every ``cfg.every`` steps.

    Raises:
        ValueError: ``every`` < 2 or > steps, or an invalid training config.
    """
    if not 2 <= cfg.every <= cfg.steps:
        raise ValueError(f"Measure ICS every 2 … {cfg.steps} steps (got {cfg.every}).")
    runs: dict[str, TrainResult] = {}
    frames = []
    common = {"lr": cfg.lr, "steps": cfg.steps, "seed": cfg.seed, "depth": cfg.depth, "activation": cfg.activation}
    for i, (name, norm) in enumerate((("no BN", "none"), ("BN", "batch"))):
        hook = _ICSHook(cfg.every)
        train_cfg = net_config(norm, variant=name, record_layers=False, record_grads=False, **common)
        runs[name] = train(train_cfg, progress=sub_progress(progress, i, 2, name), on_step=hook)
        frame = pd.DataFrame(hook.rows, columns=["step", "layer", "metric", "value"])
        frame.insert(1, "variant", name)
        frames.append(frame)
    ics = pd.concat(frames, ignore_index=True).astype({"step": "int64", "layer": "int64", "value": "float64"})
    summary = ics.groupby(["variant", "layer", "metric"], as_index=False, sort=False)["value"].mean()
    curves, _ = concat_results(list(runs.values()))
    return ICSResult(ics=ics, curves=curves, summary=summary, status={n: r.status for n, r in runs.items()})
