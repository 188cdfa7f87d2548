"""Train vs Inference: running statistics, the train/eval switch, the classic bugs, and BN folding.

One real training run (:func:`run_inference`, a small BN MLP on the digits) records, for
every BN layer and unit, at every step: ``running_mean`` / ``running_var`` (the EMA),
the batch's ``mu_B`` / ``var_B``, and every ``precise_every`` steps the population
statistics of the current weights over the whole training set ("precise BN",
:mod:`bn_core.precise_bn`). At the same checkpoints it measures how far one fixed batch's
train-mode and eval-mode outputs are apart, and the test accuracy with the EMA
statistics vs the precise ones.

The misconception labs start from that run's trained weights (``InferenceRun.state``):

* :func:`forgot_eval_lab`: accuracy of tiny batches in train mode vs eval mode, and the
  real batch-of-1 errors of the hand-written layer and of ``nn.BatchNorm1d``;
* :func:`validation_lab`: validating in train mode moves the running statistics;
* :func:`finetune_lab`: ``requires_grad=False`` does not freeze the running statistics;
* :func:`shift_lab`: shifted test inputs vs AdaBN (statistics recomputed on them);
* :func:`lag_lab`: at a high learning rate the EMA trails the weights; precise BN does not.

:func:`fold_lab` folds every BN into its Linear/Conv (:mod:`bn_core.folding`), checks the
outputs and times both networks.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1 inference); Wu & Johnson 2021,
arXiv:2105.07576 (precise BN, EMA staleness); Li et al. 2016, arXiv:1603.04779 (AdaBN);
Jacob et al. 2018, arXiv:1712.05877 (folding).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.binning import binned
from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.device import pick_device
from bn_core.folding import fold_bn, interleaved_times
from bn_core.layers import ManualBatchNorm
from bn_core.models import CNNConfig, MLPConfig, build_model
from bn_core.precise_bn import bn_inputs, bn_layers, channel_stats, population_stats, swapped_stats, with_stats
from bn_core.train import Progress, StepContext, TrainConfig, evaluate, stream_seed, train

__all__ = [
    "MOMENTA",
    "GAP_SIZES",
    "EVAL_SIZES",
    "InferenceConfig",
    "InferenceRun",
    "run_inference",
    "model_config",
    "train_config",
    "trained_model",
    "layer_outputs",
    "half_life",
    "momentum_table",
    "bessel_table",
    "ema_slice",
    "final_stats",
    "TwoModes",
    "two_modes",
    "batch_of_one_errors",
    "ForgotEvalResult",
    "forgot_eval_lab",
    "ValidationResult",
    "validation_lab",
    "FinetuneResult",
    "finetune_lab",
    "ShiftResult",
    "shift_inputs",
    "shift_lab",
    "LagResult",
    "lag_lab",
    "FoldResult",
    "fold_lab",
]

MOMENTA = (0.01, 0.05, 0.1, 0.3, 0.5, 0.9, None)  # PyTorch convention; None = cumulative average
GAP_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)  # batch sizes for "train vs eval output gap vs batch size"
EVAL_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)  # batch sizes of the forgot-eval() lab
GAP_REPEATS = 8  # random test batches per size, averaged
DIGITS = DataConfig("digits")  # the split is fixed (data seed 0): every seed trains on the same examples


@dataclass(frozen=True)
class InferenceConfig:
    """The page's training run: a digits MLP with hand-written BN before each ReLU, plain SGD."""

    momentum: float | None = 0.1  # running-stat EMA weight of the newest batch (PyTorch); None = cumulative average
    batch_size: int = 32  # training batch B (values per channel m = B for this MLP)
    lr: float = 0.1  # SGD learning rate
    steps: int = 300  # optimizer updates
    seed: int = 0  # init weights and batch order (the page's global seed)
    depth: int = 2  # hidden layers, each Linear → BN → ReLU
    width: int = 64  # units (BN features) per hidden layer
    precise_every: int = 10  # steps between precise-BN checkpoints (also step 0 and the last step)


@dataclass(frozen=True, eq=False)
class InferenceRun:
    """The recorded run. ``state`` holds the trained weights and buffers (CPU) for the labs."""

    config: InferenceConfig
    status: str  # "trained N steps" or "diverged at step k"
    diverged_at: int | None  # first step with a non-finite loss, else None
    curves: pd.DataFrame  # step, variant, metric, value: the engine's loss / train_acc / test_acc / test_loss
    ema: pd.DataFrame  # step, layer, feature, metric, value: running_mean, running_var, mu_B, var_B, precise_*
    checks: pd.DataFrame  # step, layer, metric, value: acc_ema, acc_precise (layer 0), stat_error, gap_mean, gap_max
    gap_sizes: pd.DataFrame  # batch_size, layer, metric, value: train vs eval output gap of the trained net
    state: dict[str, Tensor]  # trained state_dict, CPU
    values_per_channel: int  # m of one training batch: what the unbiased correction m/(m−1) uses
    n_train: int  # training examples (precise BN runs over all of them)
    test_acc: float  # final eval-mode test accuracy (NaN if diverged)
    wall_s: float  # seconds in run_inference (not part of the deterministic result)


# ---------------------------------------------------------------------------
# Configs and models
# ---------------------------------------------------------------------------


def _check(cfg: InferenceConfig) -> None:
    m = cfg.momentum
    if m is not None and not (0.0 < m <= 1.0):
        raise ValueError(f"momentum must be in (0, 1] or None (cumulative average), got {m}.")
    if cfg.steps < 1 or cfg.precise_every < 1 or not 1 <= cfg.depth <= 4 or cfg.width < 1:
        raise ValueError("Need steps ≥ 1, precise_every ≥ 1, 1 ≤ depth ≤ 4 and width ≥ 1.")


def model_config(cfg: InferenceConfig, backend: Literal["manual", "torch"] = "manual") -> MLPConfig:
    """The digits MLP: ``depth`` × (Linear → BN → ReLU), then a linear head."""
    return MLPConfig(
        in_features=64, n_classes=10, depth=cfg.depth, width=cfg.width, activation="relu",
        norm="batch", backend=backend, bn_momentum=cfg.momentum,
    )  # fmt: skip


def train_config(cfg: InferenceConfig) -> TrainConfig:
    """The engine config of the page's run (layer records off: this page records its own)."""
    return TrainConfig(
        data=DIGITS, model=model_config(cfg), optimizer="sgd", lr=cfg.lr, batch_size=cfg.batch_size,
        steps=cfg.steps, eval_every=max(1, min(25, cfg.steps)), seed=cfg.seed, record_layers=False,
        record_grads=False, variant="BN",
    )  # fmt: skip


def trained_model(run: InferenceRun, backend: Literal["manual", "torch"] = "manual") -> nn.Module:
    """A fresh model holding the run's trained weights and running statistics, in eval mode, on ``pick_device()``.

    ``backend="torch"`` loads the same state into ``nn.BatchNorm1d`` layers: the buffers match.
    """
    model = build_model(model_config(run.config, backend), seed=run.config.seed)
    model.load_state_dict(run.state)
    return model.to(pick_device()).eval()


def _on(model: nn.Module, t: Tensor) -> Tensor:
    """``t`` on the model's device (data splits live on the CPU)."""
    return t.to(next(model.parameters()).device)


def _on_model(model: nn.Module, module: nn.Module) -> nn.Module:
    return module.to(next(model.parameters()).device)


def half_life(momentum: float) -> tuple[float, float]:
    """Steps after which a batch's weight in the EMA has halved: ``ln 2 / m`` and the exact ``ln 2 / −ln(1 − m)``."""
    if momentum >= 1.0:
        return math.log(2) / momentum, 0.0
    return math.log(2) / momentum, math.log(2) / -math.log1p(-momentum)


def momentum_table() -> pd.DataFrame:
    """PyTorch vs Keras momentum, half-life and the weight of the last 10 batches, for every momentum choice."""
    rows = []
    for m in MOMENTA:
        if m is None:
            rows.append(("None", math.nan, math.nan, math.nan, math.nan))
            continue
        approx, exact = half_life(m)
        rows.append((f"{m:g}", 1.0 - m, approx, exact, 1.0 - (1.0 - m) ** 10))
    columns = ["pytorch_momentum", "keras_momentum", "half_life_ln2_over_m", "half_life_exact", "weight_last_10"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------
# The recorded run
# ---------------------------------------------------------------------------


class _Recorder:
    """Records every BN layer's batch and running statistics at every step, and checkpoints.

    The BN layers are created through the engine's ``norm_factory`` so that a forward
    pre-hook sees each training batch's input: ``mu_B`` / ``var_B`` are that batch's, from
    the weights *before* the update, exactly what the layer folded into its EMA.
    """

    def __init__(self, cfg: InferenceConfig, split: DataSplit, device: torch.device) -> None:
        self.cfg, self.split, self.device = cfg, split, device
        self.layers: list[ManualBatchNorm] = []
        self.latest: dict[int, tuple[Tensor, Tensor]] = {}
        T, L, C = cfg.steps + 1, cfg.depth, cfg.width
        self.arrays = {k: torch.full((T, L, C), math.nan, dtype=torch.float64) for k in _EMA_METRICS}
        self.precise_steps: list[int] = []
        self.precise: list[list[tuple[Tensor, Tensor]]] = []
        self.check_rows: list[tuple[int, int, str, float]] = []
        gen = torch.Generator().manual_seed(stream_seed(cfg.seed, 31))
        self.probe_rows = torch.randperm(len(split.y_train), generator=gen)[: max(cfg.batch_size, 2)]

    def norm_factory(self, C: int) -> ManualBatchNorm:
        bn = ManualBatchNorm(C, momentum=self.cfg.momentum)
        index = len(self.layers)
        bn.register_forward_pre_hook(lambda layer, inputs: self._capture(index, layer, inputs[0]))
        self.layers.append(bn)
        return bn

    def _capture(self, index: int, layer: nn.Module, z: Tensor) -> None:
        if layer.training:  # eval passes (evaluation, precise BN) are not training batches
            mu_B, var_unbiased = channel_stats(z.detach())
            m = z.numel() // z.shape[1]
            self.latest[index] = (mu_B, var_unbiased * (m - 1) / m)  # var_B is biased (÷m), as BN uses it

    def write(self, step: int, layers: list[nn.Module]) -> None:
        """Store this step's batch statistics (if any) and the layers' current buffers."""
        with torch.no_grad():
            for k, bn in enumerate(layers):
                self.arrays["running_mean"][step, k] = bn.running_mean.double().cpu()
                self.arrays["running_var"][step, k] = bn.running_var.double().cpu()
                if k in self.latest:
                    self.arrays["mu_B"][step, k] = self.latest[k][0].double().cpu()
                    self.arrays["var_B"][step, k] = self.latest[k][1].double().cpu()

    def on_step(self, ctx: StepContext) -> None:
        self.write(ctx.step, self.layers)
        if ctx.step % self.cfg.precise_every == 0 or ctx.step == self.cfg.steps:
            self.checkpoint(ctx.step, ctx.model)

    def checkpoint(self, step: int, model: nn.Module) -> None:
        """Precise BN, the EMA-vs-precise test accuracy, and the train/eval gap on a fixed batch."""
        x_train = self.split.x_train.to(self.device)
        stats = population_stats(model, x_train)
        self.precise_steps.append(step)
        self.precise.append([(m.double().cpu(), v.double().cpu()) for m, v in stats])
        x_test, y_test = self.split.x_test, self.split.y_test
        acc_ema = evaluate(model, x_test, y_test).accuracy
        with swapped_stats(model, stats):
            acc_precise = evaluate(model, x_test, y_test).accuracy
        rows = [(0, "acc_ema", acc_ema), (0, "acc_precise", acc_precise)]
        rows += [(k, "stat_error", v) for k, v in enumerate(_stat_errors(model, stats), start=1)]
        rows += _gap_rows(model, x_train[self.probe_rows.to(self.device)])
        self.check_rows += [(step, layer, metric, float(v)) for layer, metric, v in rows]


_EMA_METRICS = ("running_mean", "running_var", "mu_B", "var_B")


def _stat_errors(model: nn.Module, stats: list[tuple[Tensor, Tensor]]) -> list[float]:
    """Per layer: mean over units of |running_mean − population mean| / population std (how stale the EMA is)."""
    errors = []
    for bn, (mean, var) in zip(bn_layers(model), stats, strict=True):
        errors.append(float(((bn.running_mean - mean).abs() / torch.sqrt(var + bn.eps)).mean()))
    return errors


def layer_outputs(bn: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """The same input through the same BN layer in eval mode and in train mode: ``(y_train, y_eval)``.

    The train-mode pass updates the layer's running statistics; they are put back afterwards,
    as is the layer's mode. Raises whatever the layer raises (one example in train mode: ``ValueError``).
    """
    saved = [(buffer, buffer.clone()) for buffer in bn.buffers()]
    training = bn.training
    try:
        with torch.no_grad():
            y_eval = bn.eval()(z)  # normalized with running_mean, running_var
            y_train = bn.train()(z)  # normalized with this batch's mu_B, var_B
    finally:
        bn.train(training)
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
    return y_train, y_eval


def _gap_rows(model: nn.Module, x: Tensor) -> list[tuple[int, str, float]]:
    rows = []
    for k, (bn, z) in enumerate(zip(bn_layers(model), bn_inputs(model, x), strict=True), start=1):
        y_train, y_eval = layer_outputs(bn, z)
        diff = (y_train - y_eval).abs()
        rows += [(k, "gap_mean", float(diff.mean())), (k, "gap_max", float(diff.max()))]
    return rows


def _long(steps: np.ndarray, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """(T, L, C) arrays → long rows ``step, layer, feature, metric, value`` (NaN rows dropped)."""
    frames = []
    for metric, a in arrays.items():
        T, L, C = a.shape
        frames.append(
            pd.DataFrame(
                {
                    "step": np.repeat(steps.astype(np.int32), L * C),
                    "layer": np.tile(np.repeat(np.arange(1, L + 1, dtype=np.int8), C), T),
                    "feature": np.tile(np.arange(C, dtype=np.int16), T * L),
                    "metric": metric,
                    "value": a.reshape(-1),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True).dropna(subset=["value"]).reset_index(drop=True)
    return frame.astype({"metric": "category"})


def _ema_frame(rec: _Recorder, steps_run: int) -> pd.DataFrame:
    arrays = {k: v[: steps_run + 1].numpy() for k, v in rec.arrays.items()}
    main = _long(np.arange(steps_run + 1), arrays)
    kept = [i for i, s in enumerate(rec.precise_steps) if s <= steps_run]
    means = np.stack([np.stack([m.numpy() for m, _ in rec.precise[i]]) for i in kept])  # (K, L, C)
    variances = np.stack([np.stack([v.numpy() for _, v in rec.precise[i]]) for i in kept])
    steps = np.asarray([rec.precise_steps[i] for i in kept])
    precise = _long(steps, {"precise_mean": means, "precise_var": variances})
    frame = pd.concat([main.astype({"metric": str}), precise.astype({"metric": str})], ignore_index=True)
    return frame.astype({"metric": "category"})


def _step_zero(rec: _Recorder, cfg: InferenceConfig) -> None:
    """Step 0: the initial buffers (mean 0, variance 1) and precise BN of the initial weights.

    The engine builds its model inside ``train``; the same seed builds the same initial
    weights (bn_core.models draws from an explicit generator), so a twin stands in for it.
    """
    twin = build_model(model_config(cfg), seed=cfg.seed).to(rec.device)
    rec.write(0, bn_layers(twin))
    rec.checkpoint(0, twin)


def _gap_vs_size(model: nn.Module, split: DataSplit, seed: int) -> pd.DataFrame:
    """Mean and max |y_train − y_eval| of random test batches of each size, averaged over GAP_REPEATS draws."""
    gen = torch.Generator().manual_seed(stream_seed(seed, 32))
    inputs = bn_inputs(model, split.x_test)  # eval mode: each example's BN input is independent of the others
    rows = []
    for n in GAP_SIZES:
        for k, (bn, z) in enumerate(zip(bn_layers(model), inputs, strict=True), start=1):
            means, maxes = [], []
            for _ in range(GAP_REPEATS):
                rows_n = torch.randperm(len(z), generator=gen)[:n].to(z.device)
                y_train, y_eval = layer_outputs(bn, z[rows_n])
                means.append(float((y_train - y_eval).abs().mean()))
                maxes.append(float((y_train - y_eval).abs().max()))
            rows += [(n, k, "gap_mean", float(np.mean(means))), (n, k, "gap_max", float(np.mean(maxes)))]
    return pd.DataFrame(rows, columns=["batch_size", "layer", "metric", "value"])


def run_inference(
    cfg: InferenceConfig, *, data: DataSplit | None = None, progress: Progress | None = None
) -> InferenceRun:
    """Train the page's network and record its running, batch and population statistics.

    Raises:
        ValueError: an invalid config (momentum outside (0, 1], batch of 1, lr ≤ 0, …),
            with a message for the user.
    """
    _check(cfg)
    started = time.perf_counter()
    split = data if data is not None else load_dataset(DIGITS)
    tcfg = train_config(cfg)
    rec = _Recorder(cfg, split, pick_device(tcfg.device))  # the device the engine will pick
    _step_zero(rec, cfg)
    result = train(tcfg, data=split, norm_factory=rec.norm_factory, progress=progress, on_step=rec.on_step)
    steps_run = result.steps_run
    model = result.model.eval()
    gap_sizes = _gap_vs_size(model, split, cfg.seed) if result.diverged_at is None else _empty_gap()
    checks = pd.DataFrame(rec.check_rows, columns=["step", "layer", "metric", "value"])
    return InferenceRun(
        config=cfg,
        status=result.status,
        diverged_at=result.diverged_at,
        curves=result.curves,
        ema=_ema_frame(rec, steps_run),
        checks=checks[checks["step"] <= steps_run].reset_index(drop=True),
        gap_sizes=gap_sizes,
        state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        values_per_channel=cfg.batch_size,
        n_train=len(split.y_train),
        test_acc=result.final_test_acc,
        wall_s=time.perf_counter() - started,
    )


def _empty_gap() -> pd.DataFrame:
    return pd.DataFrame({"batch_size": [], "layer": [], "metric": [], "value": []})


# ---------------------------------------------------------------------------
# Views of the run for section 1 (EMA, momentum, Bessel's correction)
# ---------------------------------------------------------------------------

_SERIES = {
    "mu_B": ("batch (μ_B, σ²_B)", "mean"),
    "var_B": ("batch (μ_B, σ²_B)", "variance"),
    "running_mean": ("running (EMA)", "mean"),
    "running_var": ("running (EMA)", "variance"),
    "precise_mean": ("precise BN (population)", "mean"),
    "precise_var": ("precise BN (population)", "variance"),
}


def ema_slice(run: InferenceRun, layer: int, feature: int) -> pd.DataFrame:
    """One unit's statistics over training: ``step, series, stat, value`` (series: batch, running, precise)."""
    rows = run.ema[(run.ema["layer"] == layer) & (run.ema["feature"] == feature)]
    labels = rows["metric"].astype(str).map(_SERIES)
    return pd.DataFrame(
        {
            "step": rows["step"].to_numpy(np.int64),
            "series": pd.Categorical([s for s, _ in labels]),
            "stat": pd.Categorical([t for _, t in labels]),
            "value": rows["value"].to_numpy(np.float64),
        }
    )


def _wide(run: InferenceRun, layer: int, metric: str) -> pd.DataFrame:
    """``step × feature`` table of one metric of one layer."""
    rows = run.ema[(run.ema["layer"] == layer) & (run.ema["metric"] == metric)]
    return rows.pivot(index="step", columns="feature", values="value")


def bessel_table(run: InferenceRun, layer: int, feature: int) -> dict[str, float]:
    """The numbers behind ``running_var``'s unbiased update, for one unit and for the whole layer.

    Returns ``m``, ``factor`` = m/(m−1), the last batch's ``var_B`` and ``var_unbiased`` of
    the unit, and, over the second half of training and every unit of the layer, the
    mean ratio of the batch's biased ``var_B`` to the population variance of the same
    weights (``ratio_biased``) next to its expectation ``(m−1)/m``, and the same ratio
    after the correction (``ratio_unbiased``, expected 1).
    """
    m = run.values_per_channel
    var_B = _wide(run, layer, "var_B")
    precise = _wide(run, layer, "precise_var").reindex(var_B.index, method="ffill")  # the latest checkpoint
    late = var_B.index >= var_B.index.max() / 2
    ratio = (var_B[late] / precise[late]).to_numpy()
    last = var_B.iloc[-1, feature]
    return {
        "m": float(m),
        "factor": m / (m - 1),
        "var_B": float(last),
        "var_unbiased": float(last * m / (m - 1)),
        "ratio_biased": float(np.nanmean(ratio)),
        "ratio_unbiased": float(np.nanmean(ratio) * m / (m - 1)),
        "expected_biased": (m - 1) / m,
    }


def final_stats(run: InferenceRun, layer: int, feature: int) -> dict[str, float]:
    """The unit's last running and precise statistics, and how far apart they are."""
    ema = run.ema
    rows = ema[(ema["layer"] == layer) & (ema["feature"] == feature) & (ema["step"] == ema["step"].max())]
    last = dict(zip(rows["metric"].astype(str), rows["value"].astype(float), strict=True))
    last["mean_error_in_std"] = abs(last["running_mean"] - last["precise_mean"]) / math.sqrt(last["precise_var"])
    last["var_ratio"] = last["running_var"] / last["precise_var"]
    return last


# ---------------------------------------------------------------------------
# Section 2: the same batch through one layer in both modes
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TwoModes:
    """One test batch through every BN layer of the trained net, in train and in eval mode."""

    n: int  # batch size fed
    hist: pd.DataFrame  # layer, series (train mode / eval mode / train − eval), bin_start, bin_end, count, share
    features: pd.DataFrame  # layer, feature, mu_B, running_mean, var_B, running_var, max_abs_diff
    summary: pd.DataFrame  # layer, max_abs_diff, mean_abs_diff (NaN for a batch of 1)
    errors: dict[str, str]  # batch of 1: what each implementation says in train mode; else empty


def _test_rows(split: DataSplit, seed: int, stream: int) -> Tensor:
    return torch.randperm(len(split.y_test), generator=torch.Generator().manual_seed(stream_seed(seed, stream)))


def batch_of_one_errors(run: InferenceRun, data: DataSplit | None = None) -> dict[str, str]:
    """Train mode on a single example: the hand-written layer's error and PyTorch's own, verbatim."""
    split = data if data is not None else load_dataset(DIGITS)
    x1 = split.x_test[:1]  # (1, 64)
    errors = {}
    for label, backend in (("torch.nn.BatchNorm1d", "torch"), ("bn_core ManualBatchNorm", "manual")):
        model = trained_model(run, backend).train()
        try:
            with torch.no_grad():
                model(_on(model, x1))
            errors[label] = "(no error)"
        except (ValueError, RuntimeError) as err:
            errors[label] = f"{type(err).__name__}: {err}"
    return errors


def _layer_rows(k: int, bn: nn.Module, z: Tensor) -> tuple[Tensor, Tensor, pd.DataFrame]:
    y_train, y_eval = layer_outputs(bn, z)
    mu_B, var_unbiased = channel_stats(z)
    m = z.shape[0]
    table = pd.DataFrame(
        {
            "layer": k,
            "feature": np.arange(z.shape[1]),
            "mu_B": mu_B.double().cpu().numpy(),
            "running_mean": bn.running_mean.double().cpu().numpy(),
            "var_B": (var_unbiased * (m - 1) / m).double().cpu().numpy(),
            "running_var": bn.running_var.double().cpu().numpy(),
            "max_abs_diff": (y_train - y_eval).abs().amax(dim=0).double().cpu().numpy(),
        }
    )
    return y_train, y_eval, table


def two_modes(run: InferenceRun, n: int, data: DataSplit | None = None) -> TwoModes:
    """Feed the same ``n`` test examples through each BN layer in train mode and in eval mode.

    Each layer's input is what the eval-mode network delivers to it, so both modes see
    exactly the same tensor; only the statistics used to normalize it differ.
    """
    split = data if data is not None else load_dataset(DIGITS)
    if not 1 <= n <= len(split.y_test):
        raise ValueError(f"The batch must hold 1 … {len(split.y_test)} test examples, got {n}.")
    model = trained_model(run)
    x = split.x_test[_test_rows(split, run.config.seed, 33)[:n]]
    hists, tables, summary = [], [], []
    for k, (bn, z) in enumerate(zip(bn_layers(model), bn_inputs(model, x), strict=True), start=1):
        if n == 1:
            y_eval = layer_outputs_eval(bn, z)
            hists.append(binned({"eval mode": y_eval.cpu().numpy()}).assign(layer=k))
            summary.append((k, math.nan, math.nan))
            continue
        y_train, y_eval, table = _layer_rows(k, bn, z)
        both = binned({"train mode": y_train.cpu().numpy(), "eval mode": y_eval.cpu().numpy()})  # shared edges
        diff = binned({"train − eval": (y_train - y_eval).cpu().numpy()})
        hists.append(pd.concat([both, diff], ignore_index=True).assign(layer=k))
        tables.append(table)
        diff = (y_train - y_eval).abs()
        summary.append((k, float(diff.max()), float(diff.mean())))
    return TwoModes(
        n=n,
        hist=pd.concat(hists, ignore_index=True),
        features=pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(),
        summary=pd.DataFrame(summary, columns=["layer", "max_abs_diff", "mean_abs_diff"]),
        errors=batch_of_one_errors(run, split) if n == 1 else {},
    )


def layer_outputs_eval(bn: nn.Module, z: Tensor) -> Tensor:
    """Eval mode only (what a batch of one can still do)."""
    with torch.no_grad():
        return copy.deepcopy(bn).eval()(z)


# ---------------------------------------------------------------------------
# Lab 1: forgot model.eval()
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ForgotEvalResult:
    accuracy: pd.DataFrame  # batch_size, mode (train mode / eval mode), accuracy
    errors: dict[str, str]  # batch of 1 in train mode: implementation → error text
    n_test: int  # test examples


def forgot_eval_lab(run: InferenceRun, data: DataSplit | None = None) -> ForgotEvalResult:
    """Test accuracy when predicting in batches of 1 … 128, with and without ``model.eval()``.

    In train mode each batch is normalized with its own statistics (and, with one
    example, BN refuses). The running statistics are restored after every train-mode pass.
    """
    split = data if data is not None else load_dataset(DIGITS)
    model = trained_model(run)
    order = _test_rows(split, run.config.seed, 34)
    x, y = split.x_test[order], split.y_test[order]
    rows = []
    for n in EVAL_SIZES:
        k = len(y) // n * n  # whole batches only: a left-over batch of one would fail in train mode
        rows.append((n, "eval mode", evaluate(model, x[:k], y[:k], batch_size=n, mode="eval").accuracy))
        train_acc = math.nan if n == 1 else evaluate(model, x[:k], y[:k], batch_size=n, mode="train").accuracy
        rows.append((n, "train mode", train_acc))
    frame = pd.DataFrame(rows, columns=["batch_size", "mode", "accuracy"])
    return ForgotEvalResult(accuracy=frame, errors=batch_of_one_errors(run, split), n_test=len(y))


# ---------------------------------------------------------------------------
# Lab 2: validating in train mode
# ---------------------------------------------------------------------------

VAL_ORDERS = ("shuffled", "class-sorted")


@dataclass(frozen=True, eq=False)
class ValidationResult:
    trace: pd.DataFrame  # order, batch, metric (eval_acc, drift), value: after each validation batch
    summary: pd.DataFrame  # order, reported_acc, eval_before, eval_after, drift


def _drift(model: nn.Module, before: list[tuple[Tensor, Tensor]]) -> float:
    """Largest move of any running_mean, in units of that unit's running std before the move."""
    moves = [
        float(((bn.running_mean - mean).abs() / torch.sqrt(var + bn.eps)).max())
        for bn, (mean, var) in zip(bn_layers(model), before, strict=True)
    ]
    return max(moves)


def _buffers(model: nn.Module) -> list[tuple[Tensor, Tensor]]:
    return [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bn_layers(model)]


def _validate_in_train_mode(run: InferenceRun, x: Tensor, y: Tensor, B: int) -> tuple[list[tuple], float]:
    """One validation pass in train mode, batch by batch: the trace (eval accuracy and drift after each
    batch) and the accuracy the buggy validation reports."""
    model = trained_model(run)
    before = _buffers(model)
    trace = [(0, "eval_acc", evaluate(model, x, y).accuracy), (0, "drift", 0.0)]
    correct = 0
    for i, start in enumerate(range(0, len(y) - B + 1, B), start=1):
        with torch.no_grad():
            logits = model.train()(_on(model, x[start : start + B]))  # the bug: batch stats, and the EMA moves
        correct += int((logits.argmax(1).cpu() == y[start : start + B]).sum())
        trace += [(i, "eval_acc", evaluate(model, x, y).accuracy), (i, "drift", _drift(model, before))]
    return trace, correct / (len(y) // B * B)


def validation_lab(run: InferenceRun, data: DataSplit | None = None) -> ValidationResult:
    """Validate the trained net on the test set in train mode, shuffled and class-sorted, batch = B."""
    split = data if data is not None else load_dataset(DIGITS)
    B = run.config.batch_size
    if B < 2:
        raise ValueError("Validation in train mode needs batches of 2 or more: with 1, BN refuses (see lab 1).")
    x, y = split.x_test, split.y_test
    orders = {"shuffled": _test_rows(split, run.config.seed, 35), "class-sorted": torch.argsort(y, stable=True)}
    traces, summary = [], []
    for name, order in orders.items():
        trace, reported = _validate_in_train_mode(run, x[order], y[order], B)
        traces += [(name, *row) for row in trace]
        last = {metric: value for _, metric, value in trace[-2:]}
        summary.append((name, reported, trace[0][2], last["eval_acc"], last["drift"]))
    return ValidationResult(
        trace=pd.DataFrame(traces, columns=["order", "batch", "metric", "value"]),
        summary=pd.DataFrame(summary, columns=["order", "reported_acc", "eval_before", "eval_after", "drift"]),
    )


# ---------------------------------------------------------------------------
# Lab 3: fine-tuning a frozen backbone
# ---------------------------------------------------------------------------

FT_CLASSES = 5  # the new task: tell digits 0 … 4 apart
FT_STEPS = 100  # fine-tuning updates of the new head
FT_LR = 0.1  # SGD step size for the new head
FT_VARIANTS = ("BN left in train mode", "BN put in eval mode")


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    trace: pd.DataFrame  # step, variant, metric (drift, old_task_acc, new_task_acc), value
    summary: pd.DataFrame  # variant, drift, param_change, old_task_acc, new_task_acc


def _new_head(width: int, seed: int) -> nn.Linear:
    head = nn.Linear(width, FT_CLASSES)
    gen = torch.Generator().manual_seed(stream_seed(seed, 36))
    bound = 1.0 / math.sqrt(width)
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    return head


def _finetune_records(model: nn.Module, old_head: nn.Module, before, split: DataSplit) -> list[tuple[str, float]]:
    new_head = model.head
    model.head = old_head  # the original task: frozen backbone + original head, 10 classes
    old_acc = evaluate(model, split.x_test, split.y_test).accuracy
    model.head = new_head
    keep = split.y_test < FT_CLASSES
    new_acc = evaluate(model, split.x_test[keep], split.y_test[keep]).accuracy
    return [("drift", _drift(model, before)), ("old_task_acc", old_acc), ("new_task_acc", new_acc)]


def _finetune(run: InferenceRun, split: DataSplit, bn_eval: bool) -> tuple[list[tuple], float]:
    model = trained_model(run)
    before, params_before = _buffers(model), [p.detach().clone() for p in model.blocks.parameters()]
    old_head, model.head = model.head, _on_model(model, _new_head(run.config.width, run.config.seed))
    for p in model.blocks.parameters():
        p.requires_grad_(False)  # "frozen" backbone: W, b, gamma, beta
    opt = torch.optim.SGD(model.head.parameters(), lr=FT_LR)
    keep = split.y_train < FT_CLASSES
    x, y = split.x_train[keep], split.y_train[keep]
    gen = torch.Generator().manual_seed(stream_seed(run.config.seed, 37))
    trace = [(0, *r) for r in _finetune_records(model, old_head, before, split)]
    for step in range(1, FT_STEPS + 1):
        model.train()
        for bn in bn_layers(model) if bn_eval else []:
            bn.eval()  # the fix: BN uses and keeps its running statistics
        idx = torch.randint(len(y), (max(run.config.batch_size, 2),), generator=gen)
        loss = F.cross_entropy(model(_on(model, x[idx])), _on(model, y[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            trace += [(step, *r) for r in _finetune_records(model, old_head, before, split)]
    params = zip(model.blocks.parameters(), params_before, strict=True)
    change = max(float((p.detach() - q).abs().max()) for p, q in params)
    return trace, change


def finetune_lab(run: InferenceRun, data: DataSplit | None = None) -> FinetuneResult:
    """Train a new 5-class head on digits 0–4 over the frozen backbone, with BN in train mode and in eval mode."""
    split = data if data is not None else load_dataset(DIGITS)
    traces, summary = [], []
    for variant, bn_eval in zip(FT_VARIANTS, (False, True), strict=True):
        trace, change = _finetune(run, split, bn_eval)
        traces += [(step, variant, metric, value) for step, metric, value in trace]
        last = {metric: value for _, metric, value in trace[-3:]}
        summary.append((variant, last["drift"], change, last["old_task_acc"], last["new_task_acc"]))
    columns = ["variant", "drift", "param_change", "old_task_acc", "new_task_acc"]
    return FinetuneResult(
        trace=pd.DataFrame(traces, columns=["step", "variant", "metric", "value"]),
        summary=pd.DataFrame(summary, columns=columns),
    )


# ---------------------------------------------------------------------------
# Lab 4: domain shift and AdaBN
# ---------------------------------------------------------------------------

BRIGHTNESS_GRID = tuple(round(b, 2) for b in np.linspace(-1.0, 1.0, 21))


@dataclass(frozen=True, eq=False)
class ShiftResult:
    accuracy: pd.DataFrame  # variant (clean, shifted, shifted + AdaBN), accuracy
    sweep: pd.DataFrame  # brightness, variant (running statistics / AdaBN), accuracy
    recovered: float  # share of the accuracy lost to the shift that AdaBN wins back (NaN if nothing was lost)


def shift_inputs(x: Tensor, contrast: float, brightness: float, noise: float, seed: int) -> Tensor:
    """``contrast·x + brightness + noise·ε`` with ε ~ N(0, 1) per pixel from a seeded generator."""
    gen = torch.Generator().manual_seed(stream_seed(seed, 38))
    eps = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return contrast * x + brightness + noise * eps


def _shift_accs(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Eval accuracy with the training running statistics, and after AdaBN on these (unlabelled) inputs."""
    plain = evaluate(model, x, y).accuracy
    adapted = evaluate(with_stats(model, population_stats(model, x)), x, y).accuracy
    return plain, adapted


def shift_lab(
    run: InferenceRun, contrast: float, brightness: float, noise: float, data: DataSplit | None = None
) -> ShiftResult:
    """Shift the test inputs, evaluate with the training statistics, then recompute them on the shifted inputs."""
    split = data if data is not None else load_dataset(DIGITS)
    model = trained_model(run)
    x, y = split.x_test, split.y_test
    clean = evaluate(model, x, y).accuracy
    shifted, adapted = _shift_accs(model, shift_inputs(x, contrast, brightness, noise, run.config.seed), y)
    sweep = []
    for b in BRIGHTNESS_GRID:
        plain, ada = _shift_accs(model, shift_inputs(x, contrast, b, noise, run.config.seed), y)
        sweep += [(b, "running statistics (from training)", plain), (b, "AdaBN (recomputed on shifted data)", ada)]
    lost = clean - shifted
    return ShiftResult(
        accuracy=pd.DataFrame(
            {"variant": ["clean", "shifted", "shifted + AdaBN"], "accuracy": [clean, shifted, adapted]}
        ),
        sweep=pd.DataFrame(sweep, columns=["brightness", "variant", "accuracy"]),
        recovered=(adapted - shifted) / lost if lost > 0.01 else math.nan,
    )


# ---------------------------------------------------------------------------
# Lab 5: EMA lag at a high learning rate
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LagResult:
    trace: pd.DataFrame  # step, run (lr label), metric (acc_ema, acc_precise, stat_error), value
    summary: pd.DataFrame  # run, lr, status, gap (late mean acc_precise − acc_ema), stat_error (late mean), finals


def _lag_rows(run: InferenceRun, label: str) -> pd.DataFrame:
    checks = run.checks
    acc = checks[checks["metric"].isin(["acc_ema", "acc_precise"])][["step", "metric", "value"]]
    err = checks[checks["metric"] == "stat_error"].groupby("step", as_index=False)["value"].mean()
    return pd.concat([acc, err.assign(metric="stat_error")], ignore_index=True).assign(run=label)


def lag_lab(calm: InferenceRun, fast: InferenceRun) -> LagResult:
    """Compare the EMA with precise BN along two recorded runs that differ in learning rate."""
    traces, summary = [], []
    for run in (calm, fast):
        label = f"lr = {run.config.lr:g}"
        rows = _lag_rows(run, label)
        wide = rows.pivot_table(index="step", columns="metric", values="value")
        late = wide[wide.index >= wide.index.max() / 2]
        gap = float((late["acc_precise"] - late["acc_ema"]).mean())
        summary.append(
            (label, run.config.lr, run.status, gap, float(late["stat_error"].mean()),
             float(wide["acc_ema"].iloc[-1]), float(wide["acc_precise"].iloc[-1]))
        )  # fmt: skip
        traces.append(rows)
    columns = ["run", "lr", "status", "gap", "stat_error", "acc_ema_final", "acc_precise_final"]
    return LagResult(trace=pd.concat(traces, ignore_index=True), summary=pd.DataFrame(summary, columns=columns))


# ---------------------------------------------------------------------------
# Section 4: BN folding
# ---------------------------------------------------------------------------

FOLD_ARCHS = ("mlp", "cnn")
FOLD_CNN_STEPS = 150  # updates of the small CNN trained for the conv case
FOLD_BATCHES = (1, 450)  # timed batch sizes: one request, the whole test set
FOLD_TOL = 1e-6  # float32: |folded − unfolded| ≤ FOLD_TOL · max(1, max|output|)


@dataclass(frozen=True, eq=False)
class FoldResult:
    arch: str
    checks: pd.DataFrame  # dtype, inputs, max_abs_diff, max_abs_output, tolerance, ok, same_predictions
    timing: pd.DataFrame  # batch_size, variant, median_ms
    speedup: pd.DataFrame  # batch_size, baseline, speedup (baseline time / folded time, same rounds)
    n_folded: int  # BN layers folded away
    accuracy: dict[str, float]  # unfolded / folded test accuracy


def _fold_models(run: InferenceRun, arch: str, split: DataSplit, progress: Progress | None) -> tuple[nn.Module, ...]:
    """The trained network with hand-written BN, the same weights in torch's BN, and its config."""
    if arch == "mlp":
        return trained_model(run), trained_model(run, "torch"), model_config(run.config)
    cnn = CNNConfig(bn_momentum=run.config.momentum)
    tcfg = TrainConfig(
        data=DIGITS, model=cnn, optimizer="momentum", lr=0.05, batch_size=max(run.config.batch_size, 2),
        steps=FOLD_CNN_STEPS, eval_every=FOLD_CNN_STEPS, seed=run.config.seed, record_layers=False,
        record_grads=False, variant="CNN",
    )  # fmt: skip
    model = train(tcfg, data=split, progress=progress).model.to(pick_device()).eval()
    twin = build_model(replace(cnn, backend="torch"), seed=run.config.seed)
    twin.load_state_dict(model.state_dict())
    return model, _on_model(model, twin).eval(), cnn


def _fold_checks(model: nn.Module, model_cfg, split: DataSplit, seed: int) -> pd.DataFrame:
    gen = torch.Generator().manual_seed(stream_seed(seed, 39))
    inputs = {"test images": split.x_test, "random N(0, 1)": torch.randn(split.x_test.shape, generator=gen)}
    rows = []
    for dtype in (torch.float32, torch.float64):
        ref = build_model(model_cfg).to(dtype)
        ref.load_state_dict(model.state_dict())
        ref.eval()
        folded = fold_bn(ref)
        for name, x in inputs.items():
            with torch.no_grad():
                y_ref, y_fold = ref(x.to(dtype)), folded(x.to(dtype))
            diff, scale = float((y_ref - y_fold).abs().max()), float(y_ref.abs().max())
            tol = FOLD_TOL * max(1.0, scale) if dtype == torch.float32 else 1e-12 * max(1.0, scale)
            same = float((y_ref.argmax(1) == y_fold.argmax(1)).double().mean())
            rows.append((str(dtype).removeprefix("torch."), name, diff, scale, tol, diff <= tol, same))
    columns = ["dtype", "inputs", "max_abs_diff", "max_abs_output", "tolerance", "ok", "same_predictions"]
    return pd.DataFrame(rows, columns=columns)


def _synced(y: Tensor) -> Tensor:
    """Wait for the device: CUDA kernels run asynchronously, and a timer must see them finish."""
    if y.is_cuda:
        torch.cuda.synchronize(y.device)
    return y


def _fold_timing(models: dict[str, nn.Module], x: Tensor, rounds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    timing, speedup = [], []
    for n in FOLD_BATCHES:
        inputs = {name: _on(m, x[:n]) for name, m in models.items()}
        fns = {name: (lambda m=m, xb=inputs[name]: _synced(m(xb))) for name, m in models.items()}
        result = interleaved_times(fns, rounds)
        timing += [(n, name, med * 1e3) for name, (med, _) in result.items()]
        folded = result["folded"][1]
        for name, (_, times) in result.items():
            if name != "folded":
                ratios = [a / b for a, b in zip(times, folded, strict=True)]
                speedup.append((n, name, float(np.median(ratios))))
    return (
        pd.DataFrame(timing, columns=["batch_size", "variant", "median_ms"]),
        pd.DataFrame(speedup, columns=["batch_size", "baseline", "speedup"]),
    )


def fold_lab(
    run: InferenceRun,
    arch: Literal["mlp", "cnn"] = "mlp",
    rounds: int = 40,
    data: DataSplit | None = None,
    progress: Progress | None = None,
) -> FoldResult:
    """Fold every BN of the trained MLP (or of a small CNN trained here), check the outputs, time both."""
    if arch not in FOLD_ARCHS:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {', '.join(FOLD_ARCHS)}.")
    split = data if data is not None else load_dataset(DIGITS)
    manual, torch_bn, model_cfg = _fold_models(run, arch, split, progress)
    folded = fold_bn(manual)
    models = {"hand-written BN (eval)": manual, "torch nn.BatchNorm (eval)": torch_bn, "folded": folded}
    timing, speedup = _fold_timing(models, split.x_test, rounds)
    return FoldResult(
        arch=arch,
        checks=_fold_checks(manual, model_cfg, split, run.config.seed),
        timing=timing,
        speedup=speedup,
        n_folded=len(bn_layers(manual)),
        accuracy={
            "unfolded": evaluate(manual, split.x_test, split.y_test).accuracy,
            "folded": evaluate(folded, split.x_test, split.y_test).accuracy,
        },
    )
