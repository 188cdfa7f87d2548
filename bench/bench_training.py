"""Training engine speed: the batched sweep vs a plain loop, recording overhead, the Fig. 1 pair.

* ``sweep_speedup``: 12 configurations of the Fig. 1 net (6 learning rates × BN on/off),
  the same steps and evaluation cadence, :func:`bn_core.sweep.run_sweep` vs a plain
  sequential PyTorch loop (``nn.BatchNorm1d``, ``torch.optim.SGD``) in the same run.
  Median of interleaved per-round ratios, sequential / sweep (higher is better).
* ``train_loop_overhead``: :func:`bn_core.train.train` with every record on (default
  cadence) vs a minimal hand-written loop on the same models, batches and steps: the
  Fig. 1 pair (BN and no norm). Ratio engine / minimal (lower is better).
* ``engine_fig1_pair_s``: seconds for the default BN + no-norm pair through ``train``.

Details also hold ``cpu_time_*``: the same comparison in main-thread CPU time, a
steadier number when the shared box is busy (meaningful with one torch thread).

Each is measured with the torch thread count the harness set (``BN_THREADS``, default
1); the full run repeats them with 2 threads (``*_2threads``) for the thread finding in
docs/engine.md.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from bench.common import Result, interleaved_ratio, median_time
from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.models import build_mlp
from bn_core.sweep import point_config, run_sweep, sweep_grid
from bn_core.train import FIG1_STEPS, TrainConfig, fig1_config, fixed_rows, make_optimizer, run_schedule, train

SWEEP_LRS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _plain_run(cfg: TrainConfig, split: DataSplit, eval_rows: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The textbook loop: nn.BatchNorm1d, torch.optim.SGD, an eval-mode accuracy every eval_every steps."""
    model = build_mlp(replace(cfg.model, backend="torch", in_features=64, n_classes=10), seed=cfg.seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x, y = split.x_train, split.y_train
    for step, idx in enumerate(run_schedule(cfg, split), start=1):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            with torch.no_grad():
                (model(eval_rows[0]).argmax(1) == eval_rows[1]).float().mean().item()
            model.train()


def _minimal_run(cfg: TrainConfig, split: DataSplit) -> None:
    """The same model, optimizer and batches as train(), and nothing else."""
    model = build_mlp(replace(cfg.model, in_features=64, n_classes=10), seed=cfg.seed)
    opt = make_optimizer(model.parameters(), cfg)
    x, y = split.x_train, split.y_train
    for idx in run_schedule(cfg, split):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _cpu_timed(fn: Callable[[], object], sink: list[float]) -> Callable[[], None]:
    """``fn`` that also appends its thread CPU time to ``sink``.

    On a shared box wall time includes waiting for a core; with one torch thread the
    main thread's CPU time is the work itself, a steadier cross-check of the ratio.
    """

    def timed() -> None:
        start = time.thread_time()
        fn()
        sink.append(time.thread_time() - start)

    return timed


def _ratio_pair(fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int, warmup: int = 2) -> dict:
    """Interleaved wall-time medians and ratio a/b, plus the median per-round CPU-time ratio."""
    cpu_a: list[float] = []
    cpu_b: list[float] = []
    t_a, t_b, ratio = interleaved_ratio(_cpu_timed(fn_a, cpu_a), _cpu_timed(fn_b, cpu_b), repeats, warmup)
    cpu_ratios = [a / b for a, b in zip(cpu_a[warmup:], cpu_b[warmup:], strict=True)]
    return {"a_s": t_a, "b_s": t_b, "ratio": ratio, "cpu_ratio": statistics.median(cpu_ratios)}


def _sweep_speedup(split: DataSplit, quick: bool, suffix: str) -> Result:
    steps = 60 if quick else 200
    cfg = sweep_grid(fig1_config("batch", steps=steps), lrs=SWEEP_LRS)
    configs = [point_config(cfg, i) for i in range(len(cfg.points))]
    _, sub = fixed_rows(configs[0], split)
    eval_rows = (torch.cat([split.x_train[sub], split.x_test]), torch.cat([split.y_train[sub], split.y_test]))

    def sequential() -> None:
        for c in configs:
            _plain_run(c, split, eval_rows)

    m = _ratio_pair(sequential, lambda: run_sweep(cfg, data=split), 3 if quick else 5, warmup=1)
    detail = {"sequential_s": m["a_s"], "sweep_s": m["b_s"], "configs": len(configs), "steps": steps}
    detail |= {"eval_every": cfg.base.eval_every, "cpu_time_ratio": m["cpu_ratio"]}
    return Result(f"sweep_speedup{suffix}", m["ratio"], "ratio", goal=5.0, better="higher", detail=detail)


def _overhead(split: DataSplit, quick: bool, suffix: str) -> Result:
    steps = 100 if quick else FIG1_STEPS
    pair = [fig1_config("batch", steps=steps), fig1_config("none", steps=steps)]
    repeats = 2 if quick else 5
    detail: dict[str, float] = {"steps": steps}
    for cfg in [] if quick else pair:  # per variant, for the record
        m = _ratio_pair(lambda c=cfg: train(c, data=split), lambda c=cfg: _minimal_run(c, split), repeats)
        detail |= {f"ratio_{cfg.model.norm}": m["ratio"], f"cpu_time_ratio_{cfg.model.norm}": m["cpu_ratio"]}
    m = _ratio_pair(
        lambda: [train(c, data=split) for c in pair], lambda: [_minimal_run(c, split) for c in pair], repeats
    )
    detail |= {"engine_s": m["a_s"], "minimal_s": m["b_s"], "cpu_time_ratio": m["cpu_ratio"]}
    return Result(f"train_loop_overhead{suffix}", m["ratio"], "ratio", goal=1.15, detail=detail)


def _fig1_pair(quick: bool, suffix: str) -> Result:
    pair = [fig1_config("batch"), fig1_config("none")]
    cpu: list[float] = []
    seconds, times = median_time(_cpu_timed(lambda: [train(c) for c in pair], cpu), 1 if quick else 5)
    detail = {"steps": FIG1_STEPS, "times_s": [round(t, 3) for t in times], "max_s": max(times)}
    detail["cpu_time_s"] = statistics.median(cpu[1:])  # the first call was the warm-up
    return Result(f"engine_fig1_pair_s{suffix}", seconds, "s", goal=3.0, detail=detail)


def _with_threads(n: int, fn: Callable[[], list[Result]]) -> list[Result]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def run(quick: bool) -> list[Result]:
    split = load_dataset(DataConfig("digits"))
    train(fig1_config("batch", steps=5), data=split)  # one-time imports (torch.optim pulls in torch._dynamo)

    def measure(suffix: str) -> list[Result]:
        return [_sweep_speedup(split, quick, suffix), _overhead(split, quick, suffix), _fig1_pair(quick, suffix)]

    results = measure("")
    if not quick and torch.get_num_threads() == 1:
        results += _with_threads(2, lambda: measure("_2threads"))
    load_1min = round(os.getloadavg()[0], 2)  # the reference box is shared: record how busy it was
    for r in results:
        r.detail["torch_threads"] = 2 if r.name.endswith("_2threads") else torch.get_num_threads()
        if r.detail["torch_threads"] > 1:  # thread CPU time only sees the main thread: not a measure here
            r.detail = {k: v for k, v in r.detail.items() if not k.startswith("cpu_time")}
        r.detail["load_avg_1min_after"] = load_1min
        r.detail = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.detail.items()}
    return results
