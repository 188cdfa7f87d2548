"""Sections 1–4 of Training Comparison: the same network trained with and without BN, every record kept.

Both runs are :func:`bn_core.train.train`. The BN and no-norm nets start from **identical
weights** (same seed, same layer sizes, see :mod:`bn_core.models`) and see the same batches,
so the only difference between them is the normalization. A side that cannot train is
*skipped* with its lesson (BN on batches of one example), and the other side still runs,
so a batch of 1 shows the net without normalization and says why BN is missing.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1; §3.1 saturation; §4.2.1).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from bn_core.beside import start_beside
from bn_core.data import DataSplit, load_dataset
from bn_core.device import pick_device
from bn_core.experiments.training.config import (
    MAX_RUN_S,
    NORMS,
    VARIANTS,
    ComparisonConfig,
    check_cost,
    estimated_seconds,
    n_layers,
    side_config,
    snapshot_steps,
)
from bn_core.experiments.training.histograms import Snapshots, hist_frame
from bn_core.models import MLPConfig, build_model
from bn_core.progress import Progress, sub_progress
from bn_core.train import (
    BATCH_OF_ONE,
    StepContext,
    TrainConfig,
    TrainResult,
    collect_taps,
    concat_results,
    fit_model,
    fixed_rows,
    needs_bigger_batch,
    train,
    warm_up,
)

__all__ = ["Skipped", "ComparisonResult", "run_comparison"]

BESIDE_FROM_S = 2.0  # estimated CPU seconds from which the no-norm net trains in a worker beside the BN net


@dataclass(frozen=True)
class Skipped:
    """A side of the comparison that was not trained, and why (the lesson the page shows in its place)."""

    variant: str  # "BN"
    reason: str  # e.g. bn_core.train.BATCH_OF_ONE

    @property
    def note(self) -> str:
        """The lesson as the page shows it: "**BN: not trained.** Batch norm needs a batch of at least 2: …"."""
        return f"**{self.variant}: not trained.** {self.reason[:1].upper()}{self.reason[1:]}."


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """The runs' records, in long format, with ``variant`` ∈ :data:`VARIANTS` (a skipped side has no rows)."""

    config: ComparisonConfig
    curves: pd.DataFrame  # step, variant, metric, value  (loss every step; train_acc, test_acc, test_loss)
    layers: pd.DataFrame  # step, variant, layer, metric, value  (percentiles, mean, std, saturation, grad_norm)
    hist: pd.DataFrame  # step, variant, layer, quantity (pre/act), bin_start, bin_end, count, share
    summary: pd.DataFrame  # variant, status, diverged_at, steps_run, final_test_acc, final_train_acc, final_loss
    device: str  # where it ran
    n_classes: int  # classes of the dataset (chance accuracy is 1 / n_classes)
    eval_every: int  # steps between evaluations (the resolution of "steps to the target")
    skipped: tuple[Skipped, ...] = ()  # sides that could not train

    @property
    def trained(self) -> tuple[str, ...]:
        """The variants that were trained, in :data:`VARIANTS` order."""
        gone = {s.variant for s in self.skipped}
        return tuple(v for v in VARIANTS if v not in gone)


class _Snapshots:
    """An ``on_step`` hook: the probe batch's layer inputs and outputs at the snapshot steps."""

    def __init__(self, probe: torch.Tensor, steps: Sequence[int]) -> None:
        self.probe, self.steps, self.taps = probe, set(steps), {}

    def take(self, step: int, model: torch.nn.Module) -> None:
        taps = collect_taps(model, self.probe)  # train mode, as training sees it; buffers restored
        self.taps[step] = {k: (t.pre.float().cpu().numpy(), t.act.float().cpu().numpy()) for k, t in taps.items()}

    def __call__(self, ctx: StepContext) -> None:
        if ctx.step in self.steps:
            self.take(ctx.step, ctx.model)


def _train_with_snapshots(
    tcfg: TrainConfig, split: DataSplit, progress: Progress | None, snaps: Sequence[int]
) -> tuple[TrainResult, Snapshots]:
    """One engine run plus the histogram snapshots (step 0 from the identically initialized model)."""
    probe_idx, _ = fixed_rows(tcfg, split)
    hook = _Snapshots(split.x_train[probe_idx], snaps)
    if isinstance(tcfg.model, MLPConfig) or split.image_shape is not None:  # else train() explains the CNN needs images
        model = build_model(fit_model(tcfg.model, split), seed=tcfg.seed)
        hook.take(0, model.to(getattr(torch, tcfg.dtype)))  # = the engine's init
    return train(tcfg, data=split, progress=progress, on_step=hook), hook.taps


def _worth_a_worker(runnable: Sequence[TrainConfig], estimate_s: float) -> bool:
    """Train the second net in a worker process: two nets, on the CPU, and long enough to pay the fork."""
    return len(runnable) == 2 and estimate_s >= BESIDE_FROM_S and pick_device().type == "cpu"


@functools.cache
def _one_time_imports() -> float:
    """Pay a fresh process's first-``train()`` costs once, before any fork, so no worker pays them again.

    They were 1 s and 190 MB of memory of its own for each fork while ``torch.optim``
    imported ``torch._dynamo``; with :mod:`bn_core.optim` they are about 0.04 s (the digits
    and each kernel's first call).
    """
    return warm_up()


def _train_sides(
    runnable: Sequence[TrainConfig],
    split: DataSplit,
    snaps_at: Sequence[int],
    progress: Progress | None,
    estimate_s: float,
) -> tuple[list[TrainResult], dict[str, Snapshots]]:
    """Every runnable side, in order; the no-norm net in a worker beside this process when that is faster.

    The worker runs the same :func:`_train_with_snapshots` with the same thread count, so the
    result is bitwise the one this process would compute; if the worker cannot deliver it,
    it is computed here (:mod:`bn_core.beside`).
    """
    beside = None
    if _worth_a_worker(runnable, estimate_s):
        _one_time_imports()
        beside = start_beside(_train_with_snapshots, runnable[1], split, None, snaps_at)
    out: dict[str, tuple[TrainResult, Snapshots]] = {}
    try:
        for i, tcfg in enumerate(runnable):
            if i == 1 and beside is not None:
                (progress or (lambda f, m: None))(1.0, f"{tcfg.variant}: trained beside it in a second process")
                done = beside.result(timeout_s=max(30.0, 3 * estimate_s))
                if done is not None:
                    out[tcfg.variant] = done
                    continue
            k, n = (0, 1) if beside is not None else (i, len(runnable))  # with a worker, this net is the whole bar
            part = sub_progress(progress, k, n, tcfg.variant)
            out[tcfg.variant] = _train_with_snapshots(tcfg, split, part, snaps_at)
    finally:  # an error here, or a rerun raised from the progress callback, must not leave the worker running
        if beside is not None:
            beside.cancel()
    return [r for r, _ in out.values()], {v: taps for v, (_, taps) in out.items()}


def _summary_row(result: TrainResult) -> dict:
    final = result.curves.groupby("metric")["value"].last()
    diverged = result.diverged_at is not None
    return {
        "variant": result.variant,
        "status": result.status,
        "diverged_at": result.diverged_at,
        "steps_run": result.steps_run,
        "final_test_acc": math.nan if diverged else float(final.get("test_acc", math.nan)),
        "final_train_acc": math.nan if diverged else float(final.get("train_acc", math.nan)),
        "final_loss": math.nan if diverged or result.steps_run == 0 else float(result.metric("loss").iloc[-1]),
    }


def _skipped_row(skip: Skipped) -> dict:
    return {
        "variant": skip.variant,
        "status": "not trained (batch of 1)",
        "diverged_at": None,
        "steps_run": 0,
        "final_test_acc": math.nan,
        "final_train_acc": math.nan,
        "final_loss": math.nan,
    }


def run_comparison(cfg: ComparisonConfig, progress: Progress | None = None) -> ComparisonResult:
    """Train the BN and the no-norm net of ``cfg`` and record everything the page shows.

    BN with a batch of 1 is skipped (:class:`Skipped`), and the net without normalization
    still trains.

    Raises:
        ValueError: a setting neither net can train with (a batch larger than the training
            set, the CNN on a non-image dataset, too costly, …), with a message for the user.
    """
    check_cost(estimated_seconds(cfg), MAX_RUN_S, "This comparison")
    sides = [side_config(cfg, norm) for norm in NORMS]
    skipped = tuple(Skipped(t.variant, BATCH_OF_ONE) for t in sides if needs_bigger_batch(t))
    runnable = [t for t in sides if not needs_bigger_batch(t)]
    split = load_dataset(sides[0].data)
    results, snaps = _train_sides(runnable, split, snapshot_steps(cfg), progress, estimated_seconds(cfg))
    curves, layers = concat_results(results)
    rows = {r.variant: _summary_row(r) for r in results} | {s.variant: _skipped_row(s) for s in skipped}
    return ComparisonResult(
        config=cfg,
        curves=curves,
        layers=layers,
        hist=hist_frame(snaps, range(1, n_layers(cfg) + 1)),
        summary=pd.DataFrame([rows[v] for v in VARIANTS]),
        device=str(pick_device()),
        n_classes=split.n_classes,
        eval_every=runnable[0].eval_every,
        skipped=skipped,
    )
