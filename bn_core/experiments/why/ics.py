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
:func:`bn_core.experiments.why.common.loss_and_grads` on parameter copies in train mode.
The training run itself is untouched: same batches, same updates, same running statistics.

:func:`ics_summary` and the verdicts say whether BN's gradients change less than the plain
net's, and whether that goes with BN's lead in training, after checking the nets trained.

Sources: Santurkar et al. 2018, arXiv:1805.11604; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.experiments.why.common import (
    BN,
    NO_NORM,
    NetOutcome,
    finite_rows,
    leads,
    loss_and_grads,
    net_config,
    outcome,
    probe_params,
    sub_progress,
    untrained,
    weight_names,
)
from bn_core.progress import Progress
from bn_core.train import StepContext, TrainResult, concat_results, train
from bn_core.verdict import Verdict, num, pct

__all__ = [
    "ICSConfig",
    "ICSResult",
    "ICSSummary",
    "ICSVerdicts",
    "ICS_METRICS",
    "ICS_MARGIN",
    "LARGE_ICS",
    "run_ics",
    "ics_of_step",
    "ICSHook",
    "ics_summary",
    "ics_direction",
    "ics_verdict",
    "ics_takeaway",
    "ics_frame",
]

ICS_METRICS = ("l2", "cos", "rel_l2")
# BN "changes its gradients less" only when both measures agree by at least 0.05: cos(G, G′)
# higher and ‖G − G′‖/‖G‖ lower. One net's own means move by 0.03–0.08 between seeds 0–2 at the
# default (BN's cos: 0.67, 0.70, 0.75), so a smaller gap between the two nets is not a finding.
ICS_MARGIN = 0.05
# A gradient that changes by 10 % of its size or more when the layers below move is far from
# "no shift" (G′ = G): the layer faces a noticeably different problem after every step.
LARGE_ICS = 0.1
Direction = Literal["less", "more", "same"]


@dataclass(frozen=True)
class ICSConfig:
    """A BN net and a plain net, trained with the same init, batches and step size."""

    lr: float = 0.3  # SGD step size for both nets (0.3: both ReLU nets train; the Fig. 1 sigmoid net uses 2.0)
    steps: int = 200  # optimizer updates
    every: int = 10  # measure ICS every this many steps (≥ 2: the hook needs the step before)
    depth: int = 3  # hidden layers (Fig. 1 net: 3)
    activation: str = "relu"  # sigmoid, tanh or relu (the Fig. 1 net: sigmoid)
    seed: int = 0  # init and batch order


@dataclass(frozen=True)
class ICSSummary:
    """Means over layers 2 … depth + 1 and every measured step, and the two nets' fates."""

    cos_bn: float  # mean cos(G, G′) with BN (1 = the update below changed nothing)
    cos_plain: float  # … without
    rel_bn: float  # mean ‖G − G′‖ / ‖G‖ with BN
    rel_plain: float  # … without
    last_layer: int  # the highest layer measured (depth + 1, the head)
    bn: NetOutcome
    plain: NetOutcome
    lr: float


@dataclass(frozen=True)
class ICSVerdicts:
    """The tab's sentences."""

    measured: Verdict  # does BN reduce ICS on this run?
    takeaway: Verdict  # does lower ICS go with BN's lead in training?


@dataclass(frozen=True, eq=False)
class ICSResult:
    """``ics``: step, variant, layer, metric (l2, cos, rel_l2), value. ``curves``: the engine's curves."""

    ics: pd.DataFrame
    curves: pd.DataFrame
    summary: ICSSummary

    @property
    def verdicts(self) -> ICSVerdicts:
        return ICSVerdicts(ics_verdict(self.summary), ics_takeaway(self.summary))


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


class ICSHook:
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


def ics_summary(ics: pd.DataFrame, bn: NetOutcome, plain: NetOutcome, lr: float) -> ICSSummary:
    """Means of cos and rel_l2 per variant over every layer and measured step (finite values only)."""
    mean = finite_rows(ics).groupby(["metric", "variant"])["value"].mean()

    def m(metric: str, variant: str) -> float:
        return float(mean.get((metric, variant), float("nan")))

    last = int(ics["layer"].max()) if len(ics) else 0
    return ICSSummary(m("cos", BN), m("cos", NO_NORM), m("rel_l2", BN), m("rel_l2", NO_NORM), last, bn, plain, lr)


def run_ics(cfg: ICSConfig, progress: Progress | None = None) -> ICSResult:
    """Train BN and no norm and measure ICS (Def. 2.1) every ``cfg.every`` steps.

    Raises:
        ValueError: ``every`` < 2 or > steps, or an invalid training config.
    """
    if not 2 <= cfg.every <= cfg.steps:
        raise ValueError(f"Measure ICS every 2 … {cfg.steps} steps (got {cfg.every}).")
    runs: dict[str, TrainResult] = {}
    frames = []
    common = {"lr": cfg.lr, "steps": cfg.steps, "seed": cfg.seed, "depth": cfg.depth, "activation": cfg.activation}
    for i, (name, norm) in enumerate(((NO_NORM, "none"), (BN, "batch"))):
        hook = ICSHook(cfg.every)
        train_cfg = net_config(norm, variant=name, record_layers=False, record_grads=False, **common)
        runs[name] = train(train_cfg, progress=sub_progress(progress, i, 2, name), on_step=hook)
        frame = pd.DataFrame(hook.rows, columns=["step", "layer", "metric", "value"])
        frame.insert(1, "variant", name)
        frames.append(frame)
    ics = pd.concat(frames, ignore_index=True).astype({"step": "int64", "layer": "int64", "value": "float64"})
    curves, _ = concat_results(list(runs.values()))
    summary = ics_summary(ics, outcome(runs[BN], BN), outcome(runs[NO_NORM], NO_NORM), cfg.lr)
    return ICSResult(ics=ics, curves=curves, summary=summary)


# -- verdicts -----------------------------------------------------------------------------------


def ics_direction(s: ICSSummary) -> Direction:
    """ "less" when both measures say BN's gradients change less (by ICS_MARGIN), "more" when both say more."""
    if s.cos_bn > s.cos_plain + ICS_MARGIN and s.rel_bn < s.rel_plain - ICS_MARGIN:
        return "less"
    if s.cos_bn < s.cos_plain - ICS_MARGIN and s.rel_bn > s.rel_plain + ICS_MARGIN:
        return "more"
    return "same"


_COMPARE = {
    "less": "BN's gradients change **less** than the plain net's when the earlier layers move",
    "more": "BN's gradients change **more** than the plain net's: BN *increases* ICS here",
    "same": f"the two nets' ICS is about the same (the two measures disagree or differ by less than {num(ICS_MARGIN)})",
}


def ics_verdict(s: ICSSummary) -> Verdict:
    """Does BN reduce ICS (Def. 2.1) on this run? Checks first that a net trained."""
    none = untrained((s.bn, s.plain), s.lr)
    if none is not None:
        return none
    direction = ics_direction(s)
    text = (
        f"**Measured** (mean over layers 2 … {s.last_layer} and every measured step): cos(G, G′) = "
        f"**{s.cos_bn:.2f}** with BN, **{s.cos_plain:.2f}** without; ‖G − G′‖ / ‖G‖ = "
        f"**{num(s.rel_bn, 2)}** with BN, **{num(s.rel_plain, 2)}** without: {_COMPARE[direction]}. "
        f"Final test accuracy: BN {s.bn.acc_text}, no norm {s.plain.acc_text}."
    )
    return Verdict(direction == "less", text)


def ics_takeaway(s: ICSSummary) -> Verdict:
    """Does lower ICS go with BN's lead in training here? Holds when BN both reduces ICS and leads."""
    none = untrained((s.bn, s.plain), s.lr)
    if none is not None:
        return Verdict(False, "No net trained at this learning rate, so ICS has no training result to explain.")
    if not leads(s.bn, s.plain):
        return Verdict(
            False,
            f"BN has no lead in training here (BN {s.bn.acc_text}, no norm {s.plain.acc_text}), so there is "
            "no advantage for ICS to explain.",
        )
    size = "still large" if s.rel_bn >= LARGE_ICS else "small"
    left = f"with BN a layer's gradient still changes by {pct(s.rel_bn, 0)} of its size when the layers below move"
    if ics_direction(s) == "less":
        return Verdict(
            True,
            f"BN trains better and its ICS is lower: here lower ICS goes with BN's lead. But {left} "
            f"({size}): BN lowers ICS, it does not remove it. Whether the lower ICS *causes* the lead is what "
            "the Noisy BN tab tests.",
        )
    word = "about the same as" if ics_direction(s) == "same" else "higher than"
    return Verdict(
        False,
        f"BN trains better while its ICS is {word} the plain net's, and {left}: ICS does not predict BN's "
        "lead here. Try a few seeds: does the comparison hold?",
    )


def ics_frame(ics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Plot-ready rows of one ICS metric (step, variant, layer, value), finite."""
    return finite_rows(ics[ics["metric"] == metric])
