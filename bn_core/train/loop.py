"""The single-run training engine: one seeded run in, long-format DataFrames and the trained model out.

:func:`train` trains one :class:`~bn_core.train.config.TrainConfig` and records, as tidy DataFrames:

* ``curves`` (``step, variant, metric, value``): the training-batch ``loss`` at every
  step; ``train_acc``, ``test_acc`` and ``test_loss`` every ``eval_every`` steps and at
  the last step (eval mode: BN uses its running statistics). Accuracies are fractions;
  ``train_acc`` is measured on a fixed subset of ``eval_train_size`` training examples
  (chosen by the data seed) to keep evaluation cheap.
* ``layers`` (``step, variant, layer, metric, value``), every ``stats_every`` steps, for
  each hidden layer 1 … depth, on a **fixed probe batch** (``probe_size`` training
  examples chosen by the data seed) forwarded in train mode with the running statistics
  restored afterwards: see :mod:`bn_core.train.records` for the metrics.

Step ``t`` counts optimizer updates: the loss at step ``t`` is the batch loss of update
``t``; evaluations at step ``t`` see the model after ``t`` updates (step 0 = init).

A NaN or infinite loss stops the run: ``diverged_at`` is that step and ``status``
reads "diverged at step k". :func:`train` never raises for divergence; it raises
``ValueError`` for an invalid config, before any work.

Randomness: the init comes from ``torch.Generator().manual_seed(seed)`` (see
:mod:`bn_core.models`), the batch order from a generator derived from ``seed``, the
probe from one derived from the data seed. Nothing touches the global RNG, and on the
CPU the same config gives bitwise-identical results.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1: 3 × 100 sigmoid units,
batch 60, SGD); Kingma & Ba 2014, arXiv:1412.6980 (Adam).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.data import DataSplit, load_dataset
from bn_core.device import pick_device
from bn_core.models import NormFactory, build_model
from bn_core.optim import ManualOptimizer
from bn_core.progress import Progress
from bn_core.train.config import TrainConfig, fig1_config, fit_model, validate_config, variant_label
from bn_core.train.evaluation import ModelMode, collect_taps
from bn_core.train.records import curve_frame, grad_rows, layer_frame, tap_rows
from bn_core.train.schedule import fixed_rows, make_optimizer, run_schedule

__all__ = ["StepContext", "TrainResult", "train", "concat_results", "warm_up"]


@dataclass
class StepContext:
    """What an ``on_step`` hook sees after each optimizer update. Tensors live on the run's device."""

    step: int  # updates done so far (1 … steps)
    model: nn.Module  # the model being trained, in train mode
    x: Tensor  # this step's batch, (B, D)
    y: Tensor  # its labels, (B,)
    loss: Tensor  # this step's batch loss, a detached scalar
    optimizer: ManualOptimizer  # the optimizer (its state is live)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """One run's records, its trained model (on the CPU, left in train mode) and its fate."""

    config: TrainConfig
    variant: str  # the label used in the 'variant' column
    curves: pd.DataFrame  # step, variant, metric, value  (loss, train_acc, test_acc, test_loss)
    layers: pd.DataFrame  # step, variant, layer, metric, value  (see bn_core.train.records)
    model: nn.Module  # the trained model, moved to the CPU
    diverged_at: int | None  # the first step whose loss was NaN or infinite, else None
    steps_run: int  # updates applied (diverged_at − 1 for a diverged run)
    wall_s: float  # seconds spent in train(); not part of the deterministic result

    @property
    def status(self) -> str:
        """ "diverged at step k" or "trained N steps"."""
        if self.diverged_at is not None:
            return f"diverged at step {self.diverged_at}"
        return f"trained {self.steps_run} steps"

    def metric(self, name: str) -> pd.Series:
        """One metric of ``curves`` as a Series indexed by step."""
        rows = self.curves[self.curves["metric"] == name]
        return pd.Series(rows["value"].to_numpy(), index=rows["step"].to_numpy(), name=name)

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last step; NaN for a diverged run (it has no final model)."""
        if self.diverged_at is not None:
            return math.nan
        return float(self.metric("test_acc").iloc[-1])

    def steps_to(self, target: float, metric: str = "test_acc") -> int | None:
        """The first evaluated step where ``metric`` ≥ ``target``, or None if it never got there."""
        series = self.metric(metric)
        reached = series[series >= target]
        return int(reached.index[0]) if len(reached) else None


@dataclass
class _Run:
    """The state of one run, on its device."""

    cfg: TrainConfig
    model: nn.Module
    optimizer: ManualOptimizer
    split: dict[str, Tensor]  # x_train, y_train, x_test, y_test on the device
    schedule: Tensor  # (steps, B) int64 on the device
    probe: Tensor  # (probe_size, D) on the device
    eval_x: Tensor  # (n_sub + N_test, D): the fixed train subset, then the test set
    eval_y: Tensor  # (n_sub + N_test,)
    activation: str
    device: torch.device
    losses: list  # batch losses: floats on the CPU, detached scalar tensors elsewhere (no sync per step)
    curve_rows: list[tuple[int, str, float]] = field(default_factory=list)
    layer_rows: list[tuple[int, int, str, float]] = field(default_factory=list)


def _setup(cfg: TrainConfig, data: DataSplit | None, norm_factory: NormFactory | None) -> _Run:
    split = data if data is not None else load_dataset(cfg.data)
    device, dtype = pick_device(cfg.device), getattr(torch, cfg.dtype)
    model_cfg = fit_model(cfg.model, split)
    model = build_model(model_cfg, seed=cfg.seed, norm_factory=norm_factory).to(device=device, dtype=dtype).train()
    schedule = run_schedule(cfg, split)
    probe_idx, sub_idx = fixed_rows(cfg, split)
    x_train, y_train = split.x_train.to(device=device, dtype=dtype), split.y_train.to(device)
    x_test, y_test = split.x_test.to(device=device, dtype=dtype), split.y_test.to(device)
    sub = sub_idx.to(device)
    return _Run(
        cfg=cfg,
        model=model,
        optimizer=make_optimizer(model.parameters(), cfg),
        split={"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test},
        schedule=schedule.to(device),
        probe=x_train[probe_idx.to(device)],
        eval_x=torch.cat([x_train[sub], x_test]),
        eval_y=torch.cat([y_train[sub], y_test]),
        activation=model_cfg.activation,
        device=device,
        losses=[],
    )


def _record_eval(run: _Run, step: int) -> None:
    """Eval-mode accuracy on the train subset and the test set, in one forward pass."""
    n, n_test = len(run.eval_y), len(run.split["y_test"])
    n_sub, chunk = n - n_test, run.cfg.eval_batch_size or n
    with ModelMode(run.model, "eval", keep_buffers=False), torch.no_grad():
        chunks = [run.model(run.eval_x[i : i + chunk]) for i in range(0, n, chunk)]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks)  # (n_sub + N_test, classes)
        correct = logits.argmax(dim=1) == run.eval_y  # (n_sub + N_test,)
        test_loss = F.cross_entropy(logits[n_sub:], run.eval_y[n_sub:])
    right_sub, right_test = torch.stack([correct[:n_sub].sum(), correct[n_sub:].sum()]).tolist()
    values = (right_sub / n_sub, right_test / n_test, test_loss.item())  # counts ÷ n: the exact means
    run.curve_rows += [(step, name, v) for name, v in zip(("train_acc", "test_acc", "test_loss"), values, strict=True)]


def _record_layers(run: _Run, step: int) -> None:
    rows = []
    if run.cfg.record_layers and hasattr(run.model, "blocks"):
        rows += tap_rows(collect_taps(run.model, run.probe), run.activation, run.cfg.probe_unit)
    if run.cfg.record_grads and step > 0:
        rows += grad_rows(run.model)
    run.layer_rows += [(step, *row) for row in rows]


def _first_bad_step(run: _Run, checked: int) -> int | None:
    """1-based step of the first non-finite loss after step ``checked``, or None (one sync)."""
    window = torch.stack(run.losses[checked:])
    bad = torch.nonzero(~torch.isfinite(window))
    return checked + int(bad[0, 0]) + 1 if len(bad) else None


def _log_loss(run: _Run, step: int, loss: Tensor) -> int | None:
    """Keep the loss; return the step if the run has diverged.

    On the CPU the check is every step (``.item()`` is a cheap sync there); on an
    accelerator every ``eval_every`` steps, so the run may go a few steps past a NaN;
    everything recorded after the divergence step is dropped.
    """
    if run.device.type == "cpu":
        value = loss.item()
        run.losses.append(value)
        return None if math.isfinite(value) else step
    run.losses.append(loss.detach())
    if step % run.cfg.eval_every == 0 or step == run.cfg.steps:
        return _first_bad_step(run, (step - 1) // run.cfg.eval_every * run.cfg.eval_every)
    return None


def _after_update(run: _Run, step: int) -> None:
    """The records due after update ``step``: layer statistics, then evaluation."""
    cfg = run.cfg
    if step % (cfg.stats_every or cfg.eval_every) == 0 or step == cfg.steps:
        _record_layers(run, step)
    if step % cfg.eval_every == 0 or step == cfg.steps:
        _record_eval(run, step)


def _loop(run: _Run, progress: Progress | None, on_step: Callable[[StepContext], None] | None) -> int | None:
    """Train; return the divergence step or None."""
    cfg, model, opt, s = run.cfg, run.model, run.optimizer, run.split
    report_every = max(1, cfg.steps // 100)
    for step in range(1, cfg.steps + 1):
        idx = run.schedule[step - 1]
        xb, yb = s["x_train"][idx], s["y_train"][idx]  # (B, D), (B,)
        loss = F.cross_entropy(model(xb), yb)
        diverged_at = _log_loss(run, step, loss)
        if diverged_at is not None:
            return diverged_at
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _after_update(run, step)
        if on_step is not None:
            on_step(StepContext(step=step, model=model, x=xb, y=yb, loss=loss.detach(), optimizer=opt))
        if progress is not None and step % report_every == 0:
            progress(step / cfg.steps, f"step {step}/{cfg.steps}")
    return None


def _frames(run: _Run, variant: str, steps_run: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-format curves and layer records up to ``steps_run`` (nothing after a divergence)."""
    if run.device.type == "cpu":
        losses = np.asarray(run.losses[:steps_run], dtype=np.float64)
    else:
        losses = torch.stack(run.losses[:steps_run]).double().cpu().numpy() if steps_run else np.zeros(0)
    evals = [row for row in run.curve_rows if row[0] <= steps_run]
    layers = [row for row in run.layer_rows if row[0] <= steps_run]
    return curve_frame(losses, evals, variant), layer_frame(layers, variant)


def train(
    cfg: TrainConfig,
    *,
    data: DataSplit | None = None,
    norm_factory: NormFactory | None = None,
    progress: Progress | None = None,
    on_step: Callable[[StepContext], None] | None = None,
) -> TrainResult:
    """Train one configuration and record it. Never prints; never raises for divergence.

    Args:
        cfg: the run.
        data: a ready split to train on instead of ``load_dataset(cfg.data)``.
        norm_factory: ``C -> nn.Module`` replacing every norm layer (Ghost BN, …).
        progress: called with (fraction in [0, 1], short message) about 100 times.
        on_step: called after every optimizer update with a :class:`StepContext`.

    Returns:
        A :class:`TrainResult`; its model is on the CPU.

    Raises:
        ValueError: an invalid config (unknown optimizer, lr ≤ 0, BN with batch 1, …).
    """
    validate_config(cfg)
    started = time.perf_counter()
    run = _setup(cfg, data, norm_factory)
    _record_layers(run, 0)
    _record_eval(run, 0)
    diverged_at = _loop(run, progress, on_step)
    steps_run = cfg.steps if diverged_at is None else diverged_at - 1
    variant = variant_label(cfg, custom_norm=norm_factory is not None)
    curves, layers = _frames(run, variant, steps_run)
    if progress is not None:
        progress(1.0, f"diverged at step {diverged_at}" if diverged_at else "done")
    return TrainResult(
        config=cfg,
        variant=variant,
        curves=curves,
        layers=layers,
        model=run.model.cpu(),
        diverged_at=diverged_at,
        steps_run=steps_run,
        wall_s=time.perf_counter() - started,
    )


def concat_results(results: Sequence[TrainResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs' ``curves`` and ``layers`` stacked (runs are told apart by ``variant``)."""
    curves = pd.concat([r.curves for r in results], ignore_index=True)
    layers = pd.concat([r.layers for r in results], ignore_index=True)
    return curves, layers


def warm_up() -> float:
    """Pay a fresh process's one-time costs now, so the first real run is fast; returns the seconds spent.

    The first :func:`train` in a process loads the digits (5 ms: the file is read without
    importing scikit-learn) and runs each kernel once: about 0.04 s here. It imports neither
    ``torch._dynamo`` (``torch.optim``'s first step would: 0.9 s; :mod:`bn_core.optim` makes
    the same updates) nor sympy (``nn.utils.skip_init``'s meta device would: 0.35 s; see
    ``bn_core.models._blank``). Call this once at app start (e.g. in a cached resource).
    """
    started = time.perf_counter()
    train(fig1_config("batch", steps=2, eval_every=1, stats_every=1, device="cpu"))
    return time.perf_counter() - started
