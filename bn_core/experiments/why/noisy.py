"""Noisy BN: does BN help because it keeps layer-input distributions stable? (Santurkar et al. 2018, §2.1)

Three nets with the same init and the same batches are trained: no norm, BN, and BN with
random noise after every BN layer (:class:`bn_core.noisy_bn.NoisyBNFactory`: a per-unit
shift ``b ~ U(−n_mu, n_mu)`` and scale ``s = √v, v ~ U(1, n_sigma)``, fresh at every step).
If BN worked by keeping each layer's input distribution steady, the noisy net, whose
distributions jump at every step, should lose BN's advantage. Santurkar et al. found it
does not (their Fig. 2, VGG on CIFAR-10). Here the net is Ioffe & Szegedy's Fig. 1 net
(3 × 100 sigmoid units, SGD, batch 60) on the digits.

Recorded: the engine's curves and layer-input percentiles (15/50/85 %, pooled and for
one tracked unit, on a fixed probe batch in train mode, i.e. *with* the noise for the
noisy net), and the weight records of the scale-invariance tab
(:class:`bn_core.experiments.why.weights.WeightRecorder`).

The verdicts (:func:`noisy_view`) first ask whether the nets trained at all, then compare
the noisy net's final accuracy with BN's (as printed) and its layer inputs' jumps with the
other two nets'.

Sources: Santurkar et al. 2018, arXiv:1805.11604; Ioffe & Szegedy 2015, arXiv:1502.03167.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from bn_core.data import DataSplit
from bn_core.experiments.why.common import (
    BN,
    NO_NORM,
    NOISY_BN,
    NetOutcome,
    digits_split,
    finite_rows,
    initial_model,
    net_config,
    outcome,
    sub_progress,
    untrained,
)
from bn_core.experiments.why.weights import WeightRecorder, WeightSummary, weight_rows, weight_summary
from bn_core.noisy_bn import NoisyBNFactory, check_noise
from bn_core.progress import Progress
from bn_core.train import FIG1_LR, TrainConfig, TrainResult, concat_results, train
from bn_core.verdict import Verdict, num, ratio

__all__ = [
    "NoisyConfig",
    "NoisyResult",
    "NoisyView",
    "Comparison",
    "VARIANTS",
    "AS_WELL",
    "NEARLY",
    "LESS_STABLE",
    "run_noisy",
    "train_configs",
    "instability",
    "compare_training",
    "stability_verdict",
    "noisy_takeaway",
    "noisy_view",
    "summary_table",
    "accuracy_frame",
    "loss_frame",
    "distribution_frame",
]

VARIANTS = (NO_NORM, BN, NOISY_BN)
View = Literal["unit", "pre"]

# Final test accuracy of the noisy net ÷ BN's (as printed). BN's own final accuracy spans
# 94.0–96.2 % over seeds 0–5 at the default (450 test digits: one digit is 0.22 %), so within 3 %
# is "as well as"; within 10 % still "nearly as well"; below that the noise visibly costs.
AS_WELL = 0.97
NEARLY = 0.90
# The noisy net's inputs count as "far less stable" when their median jumps at least twice as
# much between records as the less steady of the other two nets': the noise must dominate the
# drift that training itself causes before the run tests anything.
LESS_STABLE = 2.0


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
    """Long-format records of the three runs (``variant`` ∈ :data:`VARIANTS`) and their fates."""

    config: NoisyConfig
    curves: pd.DataFrame  # step, variant, metric (loss, train_acc, test_acc, test_loss), value
    layers: pd.DataFrame  # step, variant, layer, metric (pre_p15 … unit_p85, saturation), value
    weights: pd.DataFrame  # step, variant, layer, metric (weight_norm, eff_lr, angle_deg, norm_gap), value
    jumps: pd.DataFrame  # variant, layer, view ("unit" or "pre"), median_jump: see :func:`instability`
    outcomes: tuple[NetOutcome, ...]  # one per variant, in VARIANTS order
    weight_summary: WeightSummary  # what the scale-invariance tab says about the BN net's weights

    def outcome(self, variant: str) -> NetOutcome:
        return next(o for o in self.outcomes if o.variant == variant)

    def jump(self, variant: str, layer: int, view: View) -> float:
        """Mean |change| of the layer input's median between records (NaN when not recorded)."""
        j = self.jumps
        rows = j[(j["variant"] == variant) & (j["layer"] == layer) & (j["view"] == view)]["median_jump"]
        return float(rows.iloc[0]) if len(rows) else math.nan


@dataclass(frozen=True)
class Comparison:
    """The noisy net's final accuracy against BN's, after checking that the nets trained."""

    kind: Literal["untrained", "bn_failed", "no_advantage", "noisy_failed", "compared"]
    quotient: float  # noisy ÷ BN accuracy as printed (NaN unless both trained)
    verdict: Verdict  # holds: the noisy net trains (nearly) as well as BN


@dataclass(frozen=True)
class NoisyView:
    """The tab's sentences for one layer and view."""

    training: Verdict  # does noisy BN train (nearly) as well as BN?
    stability: Verdict  # are the noisy net's layer inputs far less stable?
    takeaway: Verdict  # what the two together say about the stable-distribution story


def train_configs(cfg: NoisyConfig) -> dict[str, TrainConfig]:
    """The engine configs of the three nets, by variant."""
    common = {"lr": cfg.lr, "steps": cfg.steps, "seed": cfg.seed, "stats_every": cfg.stats_every}
    common |= {"backend": cfg.backend, "record_grads": False}  # the page shows no gradient norms here
    return {
        NO_NORM: net_config("none", variant=NO_NORM, **common),
        BN: net_config("batch", variant=BN, **common),
        NOISY_BN: net_config("batch", variant=NOISY_BN, **common),
    }


def instability(layers: pd.DataFrame, prefix: View = "unit") -> pd.DataFrame:
    """Mean |change| of a layer input's median between consecutive records, per variant and layer.

    ``prefix`` "unit" follows the tracked unit (the paper's Fig. 2 view), "pre" the pooled
    distribution of all units. Columns: variant, layer, median_jump.
    """
    rows = layers[layers["metric"] == f"{prefix}_p50"].sort_values(["variant", "layer", "step"], kind="stable")
    jump = rows.groupby(["variant", "layer"], sort=False)["value"].diff().abs()  # NaN at each first record
    per = rows.assign(median_jump=jump).groupby(["variant", "layer"], as_index=False, sort=False)["median_jump"]
    return per.mean()


def _train_one(
    name: str, train_cfg: TrainConfig, cfg: NoisyConfig, split: DataSplit, progress: Progress | None
) -> tuple[TrainResult, pd.DataFrame]:
    """Train one of the three nets with the weight recorder; its result and weight rows."""
    noisy = name == NOISY_BN
    factory = NoisyBNFactory(cfg.n_mu, cfg.n_sigma, seed=cfg.seed, backend=cfg.backend) if noisy else None
    initial = [b.linear.weight for b in initial_model(train_cfg, split).blocks]
    recorder = WeightRecorder(cfg.lr, initial, every=max(1, cfg.steps // 50))
    result = train(train_cfg, data=split, norm_factory=factory, progress=progress, on_step=recorder)
    return result, weight_rows(recorder, name, result.steps_run)


def run_noisy(cfg: NoisyConfig, progress: Progress | None = None) -> NoisyResult:
    """Train no norm, BN and noisy BN on the digits; record curves, layer inputs and weights.

    Raises:
        ValueError: noise strengths out of range, or an invalid training config.
    """
    check_noise(cfg.n_mu, cfg.n_sigma)
    split = digits_split()
    results, weights = {}, []
    for i, (name, train_cfg) in enumerate(train_configs(cfg).items()):
        results[name], rows = _train_one(name, train_cfg, cfg, split, sub_progress(progress, i, 3, name))
        weights.append(rows)
    curves, layers = concat_results(list(results.values()))
    outcomes = tuple(outcome(results[v], v) for v in VARIANTS)
    weights_frame = pd.concat(weights, ignore_index=True)
    return NoisyResult(
        config=cfg,
        curves=curves,
        layers=layers,
        weights=weights_frame,
        jumps=pd.concat([instability(layers, v).assign(view=v) for v in ("unit", "pre")], ignore_index=True),
        outcomes=outcomes,
        weight_summary=weight_summary(weights_frame, outcomes[VARIANTS.index(BN)]),
    )


# -- verdicts -----------------------------------------------------------------------------------


def _accuracies(noisy: NetOutcome, bn: NetOutcome, plain: NetOutcome) -> str:
    return f"Final test accuracy: noisy BN **{noisy.acc_text}**, BN **{bn.acc_text}**, no norm **{plain.acc_text}**"


def _shown(a: NetOutcome, b: NetOutcome) -> tuple[float, str]:
    """a ÷ b of the two accuracies as printed (in %, one decimal)."""
    return ratio(100 * a.final_test_acc, 100 * b.final_test_acc, 1, "%")


def compare_training(noisy: NetOutcome, bn: NetOutcome, plain: NetOutcome, lr: float) -> Comparison:
    """Does the noisy net train as well as BN? Checks first that the nets trained and that BN had a lead."""
    none = untrained((noisy, bn, plain), lr)
    if none is not None:
        return Comparison("untrained", math.nan, none)
    accs = _accuracies(noisy, bn, plain)
    if not bn.trained:
        text = f"{accs}. BN itself did not train here, so the noisy net has nothing to match: no test of the claim."
        return Comparison("bn_failed", math.nan, Verdict(False, text))
    if not noisy.trained:
        text = f"{accs}: the noisy net did not train while BN did. Here the noise takes BN's advantage away."
        return Comparison("noisy_failed", math.nan, Verdict(False, text))
    q, frag = _shown(noisy, bn)
    q_plain, frag_plain = _shown(plain, bn)
    if plain.trained and q_plain >= AS_WELL:
        text = f"{accs}: the plain net trains as well as BN ({frag_plain}), so BN has no lead for the noise to take."
        return Comparison("no_advantage", q, Verdict(False, text))
    word = "as well as" if q >= AS_WELL else ("nearly as well as" if q >= NEARLY else "clearly worse than")
    text = f"{accs}: the noisy net trains **{word}** BN (noisy ÷ BN = {frag})."
    return Comparison("compared", q, Verdict(q >= NEARLY, text))


def stability_verdict(layer: int, view: View, noisy: float, bn: float, plain: float) -> Verdict:
    """Did the noise make this layer's input far less stable than in both other nets?"""
    what = "one unit's" if view == "unit" else "all units' pooled"
    moved = (
        f"Between two records, layer {layer}'s input median ({what}) moved by **{num(noisy)}** on average in the "
        f"noisy net, against {num(bn)} with BN and {num(plain)} without"
    )
    steadier = max(bn, plain)
    if not all(math.isfinite(v) for v in (noisy, bn, plain)) or steadier <= 0:
        return Verdict(False, f"{moved}: a run stopped early, so the jumps cannot be compared.")
    q, frag = ratio(noisy, steadier)
    if q >= LESS_STABLE:
        return Verdict(True, f"{moved} (noisy ÷ the larger = {frag}): its inputs are **far less stable**.")
    return Verdict(False, f"{moved} (noisy ÷ the larger = {frag}): its inputs are *not* clearly less stable.")


def noisy_takeaway(comparison: Comparison, stability: Verdict) -> Verdict:
    """What this run says about the story that BN works by stabilising layer inputs."""
    if comparison.kind in ("untrained", "bn_failed", "no_advantage"):
        return Verdict(False, "This run cannot test the stable-distribution story: " + _why_not(comparison.kind))
    if comparison.verdict.holds and stability.holds:
        return Verdict(
            True,
            "Santurkar et al.'s result, reproduced by this run: a net whose layer inputs are far *less* stable "
            "than a plain net's still keeps BN's lead. Stable layer-input distributions are not what BN's "
            "benefit rests on here.",
        )
    if comparison.verdict.holds:
        return Verdict(
            False,
            "The noisy net keeps BN's lead, but its layer inputs are not much less stable, so the run does not "
            "test the claim: raise the noise.",
        )
    return Verdict(
        False,
        "Here the noise costs BN its lead: unstable layer inputs do hurt at this setting, as the "
        "stable-distribution story predicts (Santurkar et al. saw no such loss on CIFAR-10).",
    )


def _why_not(kind: str) -> str:
    return {
        "untrained": "no net trained at this learning rate.",
        "bn_failed": "BN itself did not train.",
        "no_advantage": "the plain net trains as well as BN, so there is no lead to lose.",
    }[kind]


def noisy_view(result: NoisyResult, layer: int, view: View) -> NoisyView:
    """The tab's three sentences for ``layer`` (1 … 3) and ``view``."""
    plain, bn, noisy = (result.outcome(v) for v in VARIANTS)
    comparison = compare_training(noisy, bn, plain, result.config.lr)
    jumps = (result.jump(v, layer, view) for v in (NOISY_BN, BN, NO_NORM))
    stability = stability_verdict(layer, view, *jumps)
    return NoisyView(comparison.verdict, stability, noisy_takeaway(comparison, stability))


# -- tables and plot-ready frames ---------------------------------------------------------------


def summary_table(result: NoisyResult) -> pd.DataFrame:
    """One row per net: variant, test_acc, train_acc, jump_layer_1 … (one unit's view), status."""
    unit = result.jumps[result.jumps["view"] == "unit"]
    jumps = unit.pivot(index="variant", columns="layer", values="median_jump")
    rows = [
        {
            "variant": o.variant,
            "test_acc": o.final_test_acc,
            "train_acc": o.final_train_acc,
            **{f"jump_layer_{k}": float(jumps.loc[o.variant, k]) for k in jumps.columns},
            "status": o.status,
        }
        for o in result.outcomes
    ]
    return pd.DataFrame(rows)


def accuracy_frame(curves: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy rows (step, variant, value), finite."""
    return finite_rows(curves[curves["metric"] == "test_acc"])


def loss_frame(curves: pd.DataFrame) -> pd.DataFrame:
    """Training loss rows, positive and finite (a log axis), rounded to 5 decimals (a third of the bytes)."""
    loss = finite_rows(curves[(curves["metric"] == "loss") & (curves["value"] > 0)])
    return loss.assign(value=loss["value"].round(5))


def distribution_frame(layers: pd.DataFrame, layer: int, view: View) -> pd.DataFrame:
    """variant, step, p15, p50, p85 of one layer's input (``view``: one unit or all units pooled)."""
    names = {f"{view}_p15": "p15", f"{view}_p50": "p50", f"{view}_p85": "p85"}
    rows = layers[(layers["layer"] == layer) & layers["metric"].isin(names)]
    wide = rows.pivot_table(index=["variant", "step"], columns="metric", values="value").rename(columns=names)
    return finite_rows(wide.reset_index(), "p15", "p50", "p85")
