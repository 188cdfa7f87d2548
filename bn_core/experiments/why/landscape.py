"""The loss landscape along the gradient (Santurkar et al. 2018, arXiv:1805.11604, §3.1, Fig. 4).

At checkpoints during training, at the current weights w with gradient g = ∇L(w) on a fixed
batch, step along −g with several step sizes η (a grid from ½× to 4× the learning rate) and
measure, for each η:

* ``loss``: L(w − ηg), whose spread over η is the "loss landscape" band (Fig. 4a);
* ``grad_diff``: ‖∇L(w) − ∇L(w − ηg)‖, "gradient predictiveness" (Fig. 4b): how far the
  gradient one would compute after the step is from the one the step followed;
* ``beta``: ‖∇L(w) − ∇L(w − ηg)‖ / ‖ηg‖, the gradient's change per unit of distance; its
  maximum over η is the "effective β-smoothness" (Fig. 4c): a local Lipschitz constant of
  the gradient along the direction training moves in.

Every probe is a train-mode forward/backward on the fixed batch with
:func:`torch.func.functional_call` on parameter copies and cloned buffers: the BN layers
use the batch's statistics, as in training, and the trained model's running statistics
are never touched. g and the gradients are over every parameter (weights, biases, γ, β).

Sources: Santurkar et al. 2018, arXiv:1805.11604.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.experiments.why.common import (
    BN,
    NO_NORM,
    NetOutcome,
    digits_split,
    finite_rows,
    flat_norm,
    initial_model,
    leads,
    loss_and_grads,
    net_config,
    outcome,
    probe_params,
    sub_progress,
    untrained,
)
from bn_core.progress import Progress
from bn_core.train import StepContext, TrainResult, concat_results, fixed_rows, train
from bn_core.verdict import Verdict, num, ratio

__all__ = [
    "LandscapeConfig",
    "LandscapeResult",
    "LandscapeSummary",
    "LandscapeVerdicts",
    "BAND_METRICS",
    "SMOOTHER",
    "run_landscape",
    "probe_landscape",
    "eta_factors",
    "landscape_summary",
    "is_smoother",
    "landscape_verdict",
    "landscape_takeaway",
    "band_frame",
]

BAND_METRICS = ("loss", "grad_diff", "beta")
# BN's landscape counts as smoother when its gradient-predictiveness band is at least 1.5×
# narrower than the plain net's (and its β lower): closer bands overlap from one checkpoint to
# the next on the chart. Seed 0 gives ~28× on the ReLU default and ~0.5× (BN's band wider) on the
# sigmoid preset, so the threshold sits far from both.
SMOOTHER = 1.5


@dataclass(frozen=True)
class LandscapeConfig:
    """A BN net and a plain net; the landscape is probed at ``checkpoints`` evenly spaced steps."""

    lr: float = 0.3  # SGD step size for both nets; η runs from ½× to 4× this
    steps: int = 200  # optimizer updates
    checkpoints: int = 10  # probed steps: 0 (init) and evenly spaced up to ``steps``
    n_eta: int = 8  # step sizes η, log-spaced from lr/2 to 4·lr
    depth: int = 3  # hidden layers
    activation: str = "relu"  # sigmoid, tanh or relu (ReLU, like Santurkar et al.'s VGG)
    seed: int = 0  # init and batch order


@dataclass(frozen=True)
class LandscapeSummary:
    """Means over the checkpoints of each band's width (hi − lo over η) and of β, per net."""

    grad_band_bn: float  # gradient-predictiveness band width with BN
    grad_band_plain: float  # … without
    loss_band_bn: float  # loss band width with BN
    loss_band_plain: float  # … without
    beta_bn: float  # effective β-smoothness (max over η) with BN
    beta_plain: float  # … without
    checkpoints: int  # probed steps (a diverged net has fewer)
    bn: NetOutcome
    plain: NetOutcome
    lr: float


@dataclass(frozen=True)
class LandscapeVerdicts:
    """The tab's sentences."""

    measured: Verdict  # is BN's landscape smoother along the gradient?
    takeaway: Verdict  # does that go with BN's lead in training?


@dataclass(frozen=True, eq=False)
class LandscapeResult:
    """``probes``: step, variant, eta, metric, value. ``bands``: step, variant, metric, lo, hi (over η)."""

    probes: pd.DataFrame
    bands: pd.DataFrame  # for "beta" hi is the effective β-smoothness
    curves: pd.DataFrame  # the engine's curves
    summary: LandscapeSummary

    @property
    def verdicts(self) -> LandscapeVerdicts:
        return LandscapeVerdicts(landscape_verdict(self.summary), landscape_takeaway(self.summary))


def eta_factors(n_eta: int) -> np.ndarray:
    """η / lr: ``n_eta`` log-spaced factors from ½ to 4 (Santurkar et al.: 0.05 … 0.4 for lr 0.1)."""
    if n_eta < 2:
        raise ValueError(f"Need at least 2 step sizes η (got {n_eta}).")
    return np.geomspace(0.5, 4.0, n_eta)


def probe_landscape(model: nn.Module, x: Tensor, y: Tensor, etas: np.ndarray) -> list[tuple[float, str, float]]:
    """(eta, metric, value) rows at the model's current weights, on the batch (x, y)."""
    params, buffers = probe_params(model)
    _, g = loss_and_grads(model, params, buffers, x, y)
    g_norm = flat_norm(g.values())
    values = []
    for eta in etas:
        stepped = {n: p - float(eta) * g[n] for n, p in params.items()}  # w − η g
        loss, g_eta = loss_and_grads(model, stepped, probe_params(model)[1], x, y)
        diff = flat_norm(g[n] - g_eta[n] for n in g)
        values.append(torch.stack([loss.double(), diff, diff / (float(eta) * g_norm).clamp_min(1e-300)]))
    table = torch.stack(values).tolist()  # one sync
    return [
        (float(e), m, v) for e, row in zip(etas, table, strict=True) for m, v in zip(BAND_METRICS, row, strict=True)
    ]


class _LandscapeHook:
    """``on_step``: probe the landscape after the updates listed in ``at``."""

    def __init__(self, at: set[int], x: Tensor, y: Tensor, etas: np.ndarray) -> None:
        self.at, self.x, self.y, self.etas = at, x, y, etas
        self.rows: list[tuple[int, float, str, float]] = []

    def probe(self, model: nn.Module, step: int) -> None:
        x, y = self.x.to(next(model.parameters()).device), self.y.to(next(model.parameters()).device)
        self.rows += [(step, *row) for row in probe_landscape(model, x, y, self.etas)]

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step in self.at:
            self.probe(ctx.model, ctx.step)


def _bands(probes: pd.DataFrame) -> pd.DataFrame:
    grouped = probes.groupby(["step", "variant", "metric"], as_index=False, sort=False)["value"]
    return grouped.agg(lo="min", hi="max")


def landscape_summary(bands: pd.DataFrame, bn: NetOutcome, plain: NetOutcome, lr: float) -> LandscapeSummary:
    """Mean band width and mean top of each band per net, over the checkpoints with finite bands."""
    ok = finite_rows(bands, "lo", "hi")
    ok = ok.assign(width=ok["hi"] - ok["lo"])
    width = ok.groupby(["metric", "variant"])["width"].mean()
    top = ok.groupby(["metric", "variant"])["hi"].mean()

    def w(metric: str, variant: str) -> float:
        return float(width.get((metric, variant), np.nan))

    return LandscapeSummary(
        grad_band_bn=w("grad_diff", BN),
        grad_band_plain=w("grad_diff", NO_NORM),
        loss_band_bn=w("loss", BN),
        loss_band_plain=w("loss", NO_NORM),
        beta_bn=float(top.get(("beta", BN), np.nan)),
        beta_plain=float(top.get(("beta", NO_NORM), np.nan)),
        checkpoints=int(bands["step"].nunique()),
        bn=bn,
        plain=plain,
        lr=lr,
    )


def _probed_run(
    name: str, norm: str, cfg: LandscapeConfig, at: set[int], etas: np.ndarray, progress: Progress | None
) -> tuple[TrainResult, pd.DataFrame]:
    """Train one net and probe it at the checkpoints; its probe rows, labelled ``name``."""
    split = digits_split()
    common = {"lr": cfg.lr, "steps": cfg.steps, "seed": cfg.seed, "depth": cfg.depth, "activation": cfg.activation}
    train_cfg = net_config(norm, variant=name, record_layers=False, record_grads=False, **common)
    rows = fixed_rows(train_cfg, split)[0][: train_cfg.batch_size]
    hook = _LandscapeHook(at - {0}, split.x_train[rows], split.y_train[rows], etas)
    result = train(train_cfg, data=split, progress=progress, on_step=hook)
    if 0 in at:  # on_step never sees the init: probe the model train() started from
        hook.probe(initial_model(train_cfg, split), 0)
    frame = pd.DataFrame(hook.rows, columns=["step", "eta", "metric", "value"])
    frame.insert(1, "variant", name)
    return result, frame


def run_landscape(cfg: LandscapeConfig, progress: Progress | None = None) -> LandscapeResult:
    """Train BN and no norm; probe the landscape at the checkpoints (step 0 = init included).

    The fixed batch is the first 60 (the training batch size) rows of the engine's probe
    batch: the same examples for both nets and every checkpoint.
    """
    if not 2 <= cfg.checkpoints <= cfg.steps:
        raise ValueError(f"Use 2 … {cfg.steps} checkpoints (got {cfg.checkpoints}).")
    etas = cfg.lr * eta_factors(cfg.n_eta)
    at = {int(s) for s in np.linspace(0, cfg.steps, cfg.checkpoints).round()}
    runs: dict[str, TrainResult] = {}
    frames = []
    for i, (name, norm) in enumerate(((NO_NORM, "none"), (BN, "batch"))):
        runs[name], frame = _probed_run(name, norm, cfg, at, etas, sub_progress(progress, i, 2, name))
        frames.append(frame)
    probes = pd.concat(frames, ignore_index=True).astype({"step": "int64", "eta": "float64", "value": "float64"})
    probes = probes.sort_values(["variant", "step", "metric", "eta"], kind="stable", ignore_index=True)
    bands = _bands(probes)
    curves, _ = concat_results(list(runs.values()))
    summary = landscape_summary(bands, outcome(runs[BN], BN), outcome(runs[NO_NORM], NO_NORM), cfg.lr)
    return LandscapeResult(probes=probes, bands=bands, curves=curves, summary=summary)


# -- verdicts -----------------------------------------------------------------------------------


def is_smoother(s: LandscapeSummary) -> bool:
    """BN's gradient band ≥ SMOOTHER× narrower (as printed) and its β lower."""
    q, _ = ratio(s.grad_band_plain, s.grad_band_bn)
    return q >= SMOOTHER and s.beta_bn < s.beta_plain


def landscape_verdict(s: LandscapeSummary) -> Verdict:
    """Is BN's landscape smoother along the gradient on this run? Checks first that a net trained."""
    none = untrained((s.bn, s.plain), s.lr)
    if none is not None:
        return none
    _, grad = ratio(s.grad_band_plain, s.grad_band_bn)
    _, loss = ratio(s.loss_band_plain, s.loss_band_bn)
    smoother = is_smoother(s)
    text = (
        f"**Measured** (mean over the {s.checkpoints} checkpoints): the gradient-predictiveness band is "
        f"**{grad}** as wide without BN as with it (no norm vs BN); the loss band **{loss}**; "
        f"effective β-smoothness **{num(s.beta_bn)}** with BN vs "
        f"**{num(s.beta_plain)}** without: BN's landscape is {'smoother' if smoother else '*not* smoother'} "
        f"along the gradient (smoother means a band at least {num(SMOOTHER)}× narrower and a lower β). "
        f"Final test accuracy: BN {s.bn.acc_text}, no norm {s.plain.acc_text}."
    )
    return Verdict(smoother, text)


def landscape_takeaway(s: LandscapeSummary) -> Verdict:
    """Does the smoother landscape go with BN's lead in training? Holds when both are seen."""
    if untrained((s.bn, s.plain), s.lr) is not None:
        return Verdict(False, "No net trained at this learning rate, so the landscape has no result to explain.")
    smoother, lead = is_smoother(s), leads(s.bn, s.plain)
    accs = f"BN {s.bn.acc_text}, no norm {s.plain.acc_text}"
    if smoother and lead:
        text = (
            f"Where BN helps ({accs}), following its gradient is more predictable: the loss and the gradient "
            "change less along the step, so larger steps are safe. This is a statement about the path training "
            "takes, and not every net shows it (try the sigmoid preset)."
        )
    elif smoother:
        text = f"BN's landscape is smoother here, yet BN has no lead in training ({accs}): smoothness does not decide."
    elif lead:
        text = (
            f"BN leads in training ({accs}) without a smoother landscape along the gradient: this net shows "
            "BN's benefit without the effect."
        )
    else:
        text = f"Neither smoother nor ahead in training ({accs}): here BN makes no difference the probes can see."
    return Verdict(smoother and lead, text)


def band_frame(bands: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Plot-ready band rows of one metric (step, variant, lo, hi), finite."""
    return finite_rows(bands[bands["metric"] == metric], "lo", "hi")
