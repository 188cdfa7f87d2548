"""Noisy BN: does BN help because it keeps layer-input distributions stable? (Santurkar et al. 2018, §2.1)

Three nets with the same init and the same batches are trained: no BN, BN, and BN with
random noise after every BN layer (:class:`bn_core.noisy_bn.NoisyBatchNorm`: a per-unit
shift ``b ~ U(−n_mu, n_mu)`` and scale ``s = √v, v ~ U(1, n_sigma)``, fresh at every step).
If BN worked by keeping each layer's input distribution steady, the noisy net, whose
distributions jump at every step, should lose BN's advantage. Santurkar et al. found it
does not (their Fig. 2, VGG on CIFAR-10). Here the net is Ioffe & Szegedy's Fig. 1 net
(3 × 100 sigmoid units, SGD, batch 60) on the digits.

Recorded: the engine's curves and layer-input percentiles (15/50/85 %, pooled and for
one tracked unit, on a fixed probe batch in train mode, i.e. *with* the noise for the
noisy net), and, for the scale-invariance tab, every step's weight norms and the angle
each hidden unit's weight vector turned (see :class:`WeightRecorder`: every step for runs
of up to 99 steps, else every ``steps // 50``-th: about 50 records per run).

Sources: Santurkar et al. 2018, arXiv:1805.11604; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.experiments.why import digits, initial_model, net_config, sub_progress
from bn_core.noisy_bn import NoisyBNFactory, check_noise
from bn_core.train import FIG1_LR, Progress, StepContext, TrainConfig, TrainResult, concat_results, train

__all__ = ["NoisyConfig", "NoisyResult", "run_noisy", "VARIANTS", "instability", "weight_rows", "WeightRecorder"]

VARIANTS = ("no BN", "BN", "noisy BN")


@dataclass(frozen=True)
class NoisyConfig:
    """The three runs: same init, same batches, same SGD step size."""

    n_mu: float = 2.0  # noise shift range: b ~ U(−n_mu, n_mu) per unit and step (0 = no shift)
    n_sigma: float = 4.0  # noise variance range: s² ~ U(1, n_sigma) per unit and step (1 = no scaling)
    lr: float = FIG1_LR  # SGD step size for all three nets (Ioffe Fig. 1 preset: 2.0)
    steps: int = 200  # optimizer updates per net (BN passes 90 % by ~100; the plain net is still stuck)
    seed: int = 0  # init, batch order and noise
    stats_every: int = 10  # steps between layer-input records
    backend: str = "manual"  # BN layers: hand-written (bn_core.layers) or torch.nn


@dataclass(frozen=True, eq=False)
class NoisyResult:
    """Long-format records of the three runs (``variant`` ∈ :data:`VARIANTS`)."""

    curves: pd.DataFrame  # step, variant, metric (loss, train_acc, test_acc, test_loss), value
    layers: pd.DataFrame  # step, variant, layer, metric (pre_p15 … unit_p85, saturation), value
    weights: pd.DataFrame  # step, variant, layer, metric (weight_norm, eff_lr, angle_deg, norm_gap), value
    summary: pd.DataFrame  # one row per variant: final accuracies, median jump of each layer (one unit)
    jumps: pd.DataFrame  # variant, layer, view ("unit" or "pre"), median_jump: see :func:`instability`
    status: dict[str, str]  # variant → "trained N steps" / "diverged at step k"


def _configs(cfg: NoisyConfig) -> dict[str, TrainConfig]:
    common = {"lr": cfg.lr, "steps": cfg.steps, "seed": cfg.seed, "stats_every": cfg.stats_every}
    common |= {"backend": cfg.backend, "record_grads": False}  # the page shows no gradient norms here
    return {
        "no BN": net_config("none", variant="no BN", **common),
        "BN": net_config("batch", variant="BN", **common),
        "noisy BN": net_config("batch", variant="noisy BN", **common),
    }


def _row_norms(model: nn.Module) -> list[Tensor]:
    """Each hidden layer's per-unit weight norms ‖w_j‖, ``(width,)`` float64."""
    return [b.linear.weight.detach().double().norm(dim=1) for b in model.blocks]


class WeightRecorder:
    """An ``on_step`` hook: per hidden layer, ‖W‖, the effective step size and the angle each unit turned.

    For a unit j followed by BN, the loss ignores the length of w_j, so its gradient is
    orthogonal to w_j and an SGD step of size η turns w_j by ≈ η‖g_j‖/‖w_j‖ while only
    making it longer: ‖w_j‖² grows by exactly η²‖g_j‖² (ε = 0). ``eff_lr`` is
    η / mean_j ‖w_j‖², the step size seen by the direction; ``norm_gap`` is the measured
    relative gap |‖w'‖² − ‖w‖² − η²‖g‖²| / ‖w‖², which is ≈ 0 under BN and not without it.

    Records the update of every ``every``-th step (the weights just before it are kept
    from the step before), so the cost stays small however long the run.
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
            self.rows += [(ctx.step, layer, m, v) for m, v in zip(_WEIGHT_METRICS, row, strict=True)]


_WEIGHT_METRICS = ("weight_norm", "eff_lr", "angle_deg", "norm_gap")


def weight_rows(recorder: WeightRecorder, variant: str) -> pd.DataFrame:
    frame = pd.DataFrame(recorder.rows, columns=["step", "layer", "metric", "value"])
    frame.insert(1, "variant", variant)
    return frame.astype({"step": "int64", "layer": "int64", "value": "float64"})


def instability(layers: pd.DataFrame, prefix: str = "unit") -> pd.DataFrame:
    """Mean |change| of a layer input's median between consecutive records, per variant and layer.

    ``prefix`` "unit" follows the tracked unit (the paper's Fig. 2 view), "pre" the pooled
    distribution of all units. Columns: variant, layer, median_jump.
    """
    rows = layers[layers["metric"] == f"{prefix}_p50"].sort_values(["variant", "layer", "step"], kind="stable")
    jump = rows.groupby(["variant", "layer"], sort=False)["value"].diff().abs()  # NaN at each first record
    per = rows.assign(median_jump=jump).groupby(["variant", "layer"], as_index=False, sort=False)["median_jump"]
    return per.mean()


def _summary(results: dict[str, TrainResult], layers: pd.DataFrame) -> pd.DataFrame:
    jumps = instability(layers).pivot(index="variant", columns="layer", values="median_jump")
    jumps.columns = [f"jump_layer_{c}" for c in jumps.columns]
    rows = []
    for name, r in results.items():
        last = r.curves[r.curves["step"] == r.steps_run].set_index("metric")["value"] if r.steps_run else None
        train_acc = float(last["train_acc"]) if last is not None and r.diverged_at is None else float("nan")
        rows.append({"variant": name, "final_test_acc": r.final_test_acc, "final_train_acc": train_acc})
    return pd.DataFrame(rows).merge(jumps, left_on="variant", right_index=True, how="left")


def run_noisy(cfg: NoisyConfig, progress: Progress | None = None) -> NoisyResult:
    """Train no BN, BN and noisy BN on the digits; record curves, layer inputs and weights.

    Raises:
        ValueError: noise strengths out of range, or an invalid training config.
    """
    check_noise(cfg.n_mu, cfg.n_sigma)
    split = digits()
    results, recorders = {}, {}
    for i, (name, train_cfg) in enumerate(_configs(cfg).items()):
        noisy = name == "noisy BN"
        factory = NoisyBNFactory(cfg.n_mu, cfg.n_sigma, seed=cfg.seed, backend=cfg.backend) if noisy else None
        initial = [b.linear.weight for b in initial_model(train_cfg, split).blocks]
        recorders[name] = WeightRecorder(cfg.lr, initial, every=max(1, cfg.steps // 50))
        progress_i = sub_progress(progress, i, 3, name)
        results[name] = train(train_cfg, data=split, norm_factory=factory, progress=progress_i, on_step=recorders[name])
    curves, layers = concat_results(list(results.values()))
    weights = pd.concat([weight_rows(rec, name) for name, rec in recorders.items()], ignore_index=True)
    weights = weights[weights["step"] <= weights["variant"].map({n: r.steps_run for n, r in results.items()})]
    return NoisyResult(
        curves=curves,
        layers=layers,
        weights=weights.reset_index(drop=True),
        summary=_summary(results, layers),
        jumps=pd.concat([instability(layers, v).assign(view=v) for v in ("unit", "pre")], ignore_index=True),
        status={name: r.status for name, r in results.items()},
    )
