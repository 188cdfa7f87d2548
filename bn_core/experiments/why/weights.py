"""What scale invariance does to training: the weights grow and the effective step size falls by itself.

For a unit j followed by BN the loss ignores the length of w_j, so its gradient g_j is
orthogonal to w_j (Ioffe & Szegedy 2015, arXiv:1502.03167, §3.3). An SGD step of size η
then turns w_j by ≈ η‖g_j‖/‖w_j‖ while only making it longer: ‖w_j − ηg_j‖² = ‖w_j‖² +
η²‖g_j‖² (ε = 0). The effective learning rate η/‖w‖² therefore shrinks by itself as
training goes on (van Laarhoven 2017, arXiv:1706.05350; Hoffer et al. 2018,
arXiv:1803.01814; Arora et al. 2019, arXiv:1812.03981).

:class:`WeightRecorder` measures this on the nets of the Noisy BN tab (an ``on_step``
hook, every step for runs of up to 99 steps, else every ``steps // 50``-th: about 50
records per run); :func:`weight_summary` and :func:`weight_verdict` say what it showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from bn_core.experiments.why.common import BN, NO_NORM, NetOutcome, finite_rows, thin_steps
from bn_core.train import StepContext
from bn_core.verdict import Verdict, num, ratio

__all__ = [
    "WeightRecorder",
    "weight_rows",
    "WeightSummary",
    "weight_summary",
    "weight_verdict",
    "weight_chart_frames",
    "NORM_IDENTITY_TOL",
    "EDGE_RECORDS",
]

WEIGHT_METRICS = ("weight_norm", "eff_lr", "angle_deg", "norm_gap")
# ‖w'‖² = ‖w‖² + η²‖g‖² holds exactly only for ε = 0 in exact arithmetic. In float32 training
# with ε = 1e-5 the BN net's relative gap is ~1e-6; without BN the gradient has a part along w
# and the gap is ~1e-3 or more. 1e-4 sits between the two by more than a factor of 10 each way.
NORM_IDENTITY_TOL = 1e-4
EDGE_RECORDS = 5  # "early" and "late" turn: the mean of the first and of the last 5 records (~50 per run)
SMOOTH_RECORDS = 5  # the turn chart shows a moving mean over 5 records: the per-step turn is noisy


class WeightRecorder:
    """An ``on_step`` hook: per hidden layer, ‖W‖, the effective step size and the angle each unit turned.

    ``eff_lr`` is η / mean_j ‖w_j‖², the step size seen by the direction; ``norm_gap`` is the
    measured relative gap |‖w'‖² − ‖w‖² − η²‖g‖²| / ‖w‖², ≈ 0 under BN and not without it.
    Records the update of every ``every``-th step (the weights just before it are kept from
    the step before), so the cost stays small however long the run.
    """

    def __init__(self, lr: float, initial: list[Tensor], every: int = 1) -> None:
        self.lr, self.every = lr, every
        self.rows: list[tuple[int, int, str, float]] = []
        self.before = [w.detach().double().clone() for w in initial] if every == 1 else None

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step % self.every == 0 and self.before is not None:
            self._record(ctx)
        if (ctx.step + 1) % self.every == 0:
            self.before = [b.linear.weight.detach().double().clone() for b in ctx.model.blocks]

    def _record(self, ctx: StepContext) -> None:
        weights = [b.linear.weight.detach().double() for b in ctx.model.blocks]
        grads = [b.linear.weight.grad.detach().double() for b in ctx.model.blocks]
        values = []
        for w0, w1, g in zip(self.before, weights, grads, strict=True):
            w0 = w0.to(w1.device)  # the initial weights come from a CPU copy of the model
            n0, n1 = (w0**2).sum(dim=1), (w1**2).sum(dim=1)  # ‖w_j‖² before and after, (width,)
            cos = (w0 * w1).sum(dim=1) / (n0 * n1).sqrt()
            gap = (n1 - n0 - self.lr**2 * (g**2).sum(dim=1)).abs() / n0
            angle = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
            values.append(torch.stack([n1.sum().sqrt(), self.lr / n1.mean(), angle.mean(), gap.mean()]))
        table = torch.stack(values).tolist()  # one sync: (depth, 4)
        for layer, row in enumerate(table, start=1):
            self.rows += [(ctx.step, layer, m, v) for m, v in zip(WEIGHT_METRICS, row, strict=True)]


def weight_rows(recorder: WeightRecorder, variant: str, steps_run: int) -> pd.DataFrame:
    """The recorder's rows up to ``steps_run`` (a diverged run's last records are NaN), long format."""
    frame = pd.DataFrame(recorder.rows, columns=["step", "layer", "metric", "value"])
    frame = frame[frame["step"] <= steps_run]
    frame.insert(1, "variant", variant)
    return frame.astype({"step": "int64", "layer": "int64", "value": "float64"}).reset_index(drop=True)


@dataclass(frozen=True)
class WeightSummary:
    """The BN net's weights over training, and the norm identity's gap with and without BN."""

    bn: NetOutcome  # the BN net's fate (a diverged run's records stop there)
    norm_start: float  # mean over hidden layers of ‖W‖ at the first record
    norm_end: float  # … at the last record
    steps: tuple[int, int]  # the first and last recorded steps
    turn_early: float  # mean turn per step (degrees) over the first EDGE_RECORDS records
    turn_late: float  # … over the last EDGE_RECORDS records
    early_steps: tuple[int, int]  # the steps those early records span
    late_steps: tuple[int, int]  # the steps the late records span
    gap_bn: float  # mean relative gap of ‖w'‖² = ‖w‖² + η²‖g‖² with BN
    gap_plain: float  # the same without BN


def _per_step(weights: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    rows = weights[(weights["variant"] == variant) & (weights["metric"] == metric)]
    return rows.groupby("step")["value"].mean()


def weight_summary(weights: pd.DataFrame, bn: NetOutcome) -> WeightSummary:
    """Summarise the recorder's frame (variants "BN" and "no norm")."""
    norm, turn = _per_step(weights, BN, "weight_norm"), _per_step(weights, BN, "angle_deg")
    early, late = turn.iloc[:EDGE_RECORDS], turn.iloc[-EDGE_RECORDS:]
    gap = weights[weights["metric"] == "norm_gap"].groupby("variant")["value"].mean()
    first, last = (int(norm.index[0]), int(norm.index[-1])) if len(norm) else (0, 0)
    return WeightSummary(
        bn=bn,
        norm_start=float(norm.iloc[0]) if len(norm) else math.nan,
        norm_end=float(norm.iloc[-1]) if len(norm) else math.nan,
        steps=(first, last),
        turn_early=float(early.mean()),
        turn_late=float(late.mean()),
        early_steps=(int(early.index[0]), int(early.index[-1])) if len(early) else (0, 0),
        late_steps=(int(late.index[0]), int(late.index[-1])) if len(late) else (0, 0),
        gap_bn=float(gap.get(BN, math.nan)),
        gap_plain=float(gap.get(NO_NORM, math.nan)),
    )


def _facts(s: WeightSummary) -> tuple[bool, bool, bool]:
    grew = s.norm_end > s.norm_start
    slowed = s.turn_late < s.turn_early
    identity = s.gap_bn < NORM_IDENTITY_TOL
    return grew, slowed, identity


def weight_verdict(s: WeightSummary) -> Verdict:
    """Did the BN net's weights grow, its turn per step fall, and the norm identity hold?"""
    grew, slowed, identity = _facts(s)
    _, turn_ratio = ratio(s.turn_early, s.turn_late)
    head = f"{s.bn.divergence_note} " if s.bn.divergence_note else ""
    norm = (
        f"the mean ‖W‖ of the hidden layers {'grew' if grew else 'did *not* grow'}: {num(s.norm_start)} "
        f"(step {s.steps[0]}) → {num(s.norm_end)} (step {s.steps[1]})"
    )
    turn = (
        f"the angle a unit's weights turn in one step {'fell' if slowed else 'did *not* fall'}: "
        f"{num(s.turn_early)}° (steps {s.early_steps[0]}–{s.early_steps[1]}) → {num(s.turn_late)}° "
        f"(steps {s.late_steps[0]}–{s.late_steps[1]}), early ÷ late = {turn_ratio}, with the learning rate fixed"
    )
    gap = (
        f"The identity ‖w_(t+1)‖² = ‖w_t‖² + η²‖g_t‖² is off by {num(s.gap_bn, 2)} with BN "
        f"({'within' if identity else 'above'} the {num(NORM_IDENTITY_TOL)} that float32 rounding allows) and by "
        f"{num(s.gap_plain, 2)} without BN, where nothing makes the gradient orthogonal to w."
    )
    holds = grew and slowed and identity
    end = "the step that matters shrank by itself." if holds else "this run does not show the effect."
    return Verdict(holds, f"{head}In the BN net {norm}, and {turn}: {end} {gap}")


def weight_chart_frames(weights: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plot-ready rows: ‖W‖ of BN and no norm per layer and step; BN's turn and η/‖w‖², smoothed.

    Rows are finite and positive (log scales; JSON has no NaN), at most ~120 steps per line.
    """
    norms = weights[(weights["metric"] == "weight_norm") & weights["variant"].isin([BN, NO_NORM])]
    turn = weights[(weights["variant"] == BN) & weights["metric"].isin(["angle_deg", "eff_lr"])]
    turn = turn.sort_values("step", kind="stable")
    smooth = turn.groupby(["metric", "layer"])["value"].transform(
        lambda v: v.rolling(SMOOTH_RECORDS, min_periods=1).mean()
    )
    turn = turn.assign(value=smooth)
    return thin_steps(finite_rows(norms)), thin_steps(finite_rows(turn[turn["value"] > 0]))
