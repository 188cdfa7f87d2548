"""Train vs Inference, the recorded run: every BN unit's batch, running and population statistics.

:func:`run_inference` trains the page's network with :func:`bn_core.train.train` and
records, for every BN layer and unit, at every step: ``running_mean`` / ``running_var``
(the EMA) and the batch's ``mu_B`` / ``var_B``; every ``precise_every`` steps the
population statistics of the current weights over the whole training set ("precise BN",
:mod:`bn_core.precise_bn`), the test accuracy with the EMA vs the precise statistics, and
how far one fixed batch's train-mode and eval-mode outputs are apart. Every section and
lab of the page starts from this run's trained weights (``InferenceRun.state``).

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1 inference); Wu & Johnson 2021,
arXiv:2105.07576 (precise BN, EMA staleness).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.data import DataSplit
from bn_core.device import pick_device
from bn_core.experiments.inference.base import (
    InferenceConfig,
    check_config,
    digits,
    model_config,
    momentum_label,
    train_config,
)
from bn_core.layers import ManualBatchNorm
from bn_core.models import build_model
from bn_core.precise_bn import bn_inputs, bn_layers, channel_stats, population_stats, swapped_stats
from bn_core.progress import Progress
from bn_core.train import StepContext, evaluate, stream_seed, train
from bn_core.verdict import Verdict, num, pct

__all__ = ["GAP_SIZES", "LEARNED_ACC", "InferenceRun", "run_inference", "trained_model", "layer_outputs", "run_verdict"]

GAP_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)  # batch sizes for "train vs eval output gap vs batch size"
GAP_REPEATS = 8  # random test batches per size, averaged
_EMA_METRICS = ("running_mean", "running_var", "mu_B", "var_B")
# Ten digit classes put chance at 10 %; a net "learned" when it reaches at least twice that.
# (lr 10 keeps BN's net finite but leaves it at ~10 %.)
LEARNED_ACC = 0.2


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


def trained_model(run: InferenceRun, backend: Literal["manual", "torch"] = "manual") -> nn.Module:
    """A fresh model holding the run's trained weights and running statistics, in eval mode, on ``pick_device()``.

    ``backend="torch"`` loads the same state into ``nn.BatchNorm1d`` layers: the buffers match.
    """
    model = build_model(model_config(run.config, backend), seed=run.config.seed)
    model.load_state_dict(run.state)
    return model.to(pick_device()).eval()


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


def _stat_errors(model: nn.Module, stats: list[tuple[Tensor, Tensor]]) -> list[float]:
    """Per layer: mean over units of |running_mean − population mean| / population std (how stale the EMA is)."""
    errors = []
    for bn, (mean, var) in zip(bn_layers(model), stats, strict=True):
        errors.append(float(((bn.running_mean - mean).abs() / torch.sqrt(var + bn.eps)).mean()))
    return errors


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


def _empty_gap() -> pd.DataFrame:
    return pd.DataFrame({"batch_size": [], "layer": [], "metric": [], "value": []})


def run_inference(
    cfg: InferenceConfig, *, data: DataSplit | None = None, progress: Progress | None = None
) -> InferenceRun:
    """Train the page's network and record its running, batch and population statistics.

    Raises:
        ValueError: an invalid config (momentum outside (0, 1], batch of 1, lr ≤ 0, …),
            with a message for the user.
    """
    check_config(cfg)
    started = time.perf_counter()
    split = digits(data)
    tcfg = train_config(cfg)
    rec = _Recorder(cfg, split, pick_device(tcfg.device))  # the device the engine will pick
    _step_zero(rec, cfg)
    result = train(tcfg, data=split, norm_factory=rec.norm_factory, progress=progress, on_step=rec.on_step)
    model = result.model.eval()
    gap_sizes = _gap_vs_size(model, split, cfg.seed) if result.diverged_at is None else _empty_gap()
    checks = pd.DataFrame(rec.check_rows, columns=["step", "layer", "metric", "value"])
    return InferenceRun(
        config=cfg,
        status=result.status,
        diverged_at=result.diverged_at,
        curves=result.curves,
        ema=_ema_frame(rec, result.steps_run),
        checks=checks[checks["step"] <= result.steps_run].reset_index(drop=True),
        gap_sizes=gap_sizes,
        state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        values_per_channel=cfg.batch_size,
        n_train=len(split.y_train),
        test_acc=result.final_test_acc,
        wall_s=time.perf_counter() - started,
    )


def run_verdict(run: InferenceRun) -> Verdict:
    """What was trained and how it ended: learned (holds), stuck at chance, or diverged at step k."""
    c = run.config
    shape = " → ".join(["64", *[str(c.width)] * c.depth, "10"])
    what = (
        f"digits MLP {shape}, Linear → BN → ReLU, SGD lr {c.lr:g}, batch {c.batch_size}, {c.steps} steps, "
        f"momentum {momentum_label(c.momentum)}, seed {c.seed}"
    )
    if run.diverged_at is not None:
        return Verdict(False, f"Training {run.status} ({what}): the loss became NaN or infinite. Lower the learning "
                              "rate.")  # fmt: skip
    took = f"({num(run.wall_s, 2)} s when first computed)"
    if run.test_acc < LEARNED_ACC:
        return Verdict(
            False,
            f"Trained for real: {what}: only **{pct(run.test_acc)}** test accuracy in eval mode, chance level for "
            f"10 classes: at this learning rate the net did not learn {took}.",
        )
    return Verdict(True, f"Trained for real: {what}: **{pct(run.test_acc)}** test accuracy in eval mode {took}.")
