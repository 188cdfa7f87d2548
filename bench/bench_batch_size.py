"""Batch-Size Sensitivity and the one stacked engine: the default sweep, the default view, the engine ratios.

* ``batch_size_sweep_s``: :func:`run_batch_size_sweep` with the page's default config
  (6 batch sizes × BN, GN, LN, none × 3 seeds = 72 networks, 3 epochs each) from scratch,
  as the first student to press "Train" waits for it. Goal ≤ 5 s (issue 16: no first view over 5 s).
* ``batch_size_default_cold_s``: the page's default computations (noise sampling + the
  batch-of-one demo), uncached. Goal ≤ 3 s.
* ``engine_speedup_batch_size``: the 18 networks of one batch size (B = 8, 40 steps; BN, GN,
  LN, none, Ghost BN, Batch Renorm × 3 seeds) trained one by one with
  :func:`bn_core.train.train` ÷ as one stack with :func:`bn_core.engine.train_stack`. Goal ≥ 4.
* ``engine_speedup_grid``: the Training page's grid (the Fig. 1 net, 6 learning rates × BN
  on/off, evaluation every 25 steps) trained one by one with ``train`` ÷ by
  :func:`bn_core.sweep.run_sweep`. Goal ≥ 4. The detail also holds the ratio against a
  plain PyTorch loop (``nn.BatchNorm1d``, ``torch.optim.SGD``; bench_training's baseline).
* ``engine_recording_overhead``: the same grid with its records (train/test accuracy and test
  loss every 25 steps) ÷ with only the final evaluation. Goal ≤ 1.15.

Interleaved rounds, median of per-round ratios (:func:`bench.common.interleaved_ratio`);
the detail also holds the ratio of main-thread CPU times, steadier on a shared machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from bench.common import Result, interleaved_ratio
from bn_core.data import DataConfig, DataSplit, load_dataset
from bn_core.engine import StackConfig, StackPoint, train_stack
from bn_core.experiments import batch_size as bs
from bn_core.experiments.batch_size.sweep import batch_stack_config
from bn_core.models import build_mlp
from bn_core.sweep import point_config, run_sweep, sweep_grid
from bn_core.train import TrainConfig, fig1_config, fixed_rows, run_schedule, train

GRID_LRS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _cpu_ratio(fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int) -> dict:
    """Interleaved wall-time medians and ratio a/b, and the median per-round main-thread CPU-time ratio."""
    cpu: dict[str, list[float]] = {"a": [], "b": []}

    def timed(fn: Callable[[], object], sink: list[float]) -> Callable[[], None]:
        def run() -> None:
            start = time.thread_time()
            fn()
            sink.append(time.thread_time() - start)

        return run

    t_a, t_b, ratio = interleaved_ratio(timed(fn_a, cpu["a"]), timed(fn_b, cpu["b"]), repeats, warmup=1)
    cpu_ratio = statistics.median(a / b for a, b in zip(cpu["a"][1:], cpu["b"][1:], strict=True))
    return {"a_s": round(t_a, 4), "b_s": round(t_b, 4), "ratio": ratio, "cpu_ratio": round(cpu_ratio, 3)}


def _sweep(repeats: int) -> Result:
    cfg = bs.BatchSizeSweepConfig()
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = bs.run_batch_size_sweep(cfg)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    detail = {
        "runs_s": [round(t, 3) for t in times],
        "cpu_s": [round(c, 3) for c in cpu],  # process CPU time: the run without other load on the machine
        "networks": bs.network_count(cfg),
        "optimizer_steps_per_network_total": int(result.schedule["steps"].sum()),
        "bn_error_b2": result.error("BN", 2),
        "bn_error_b32": result.error("BN", 32),
        "gn_error_b2": result.error("GN", 2),
        "gn_error_b32": result.error("GN", 32),
    }
    return Result("batch_size_sweep_s", statistics.median(times), "s", goal=5.0, detail=detail)


def _default_view(repeats: int) -> Result:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bs.run_noise(bs.NoiseConfig())
        bs.run_batch_of_one(0)
        times.append(time.perf_counter() - start)
    return Result("batch_size_default_cold_s", statistics.median(times), "s", goal=3.0, detail={"runs_s": times})


def _batch_size_speedup(split: DataSplit, repeats: int) -> Result:
    n_train, B = len(split.y_train), 8  # noqa: N806 - B is the batch size, as on the page
    cfg = replace(bs.BatchSizeSweepConfig(), variants=bs.VARIANTS, epochs=40 * B / n_train)  # 40 steps at B = 8
    nets = bs.sweep_points(cfg, B)
    stack = batch_stack_config(cfg, B, nets, n_train)
    alone = [bs.network_train_config(cfg, B, net, n_train) for net in nets]
    m = _cpu_ratio(
        lambda: [train(c, data=split, norm_factory=f) for c, f in alone],
        lambda: train_stack(stack, data=split),
        repeats,
    )
    detail = {"one_by_one_s": m["a_s"], "stacked_s": m["b_s"], "cpu_time_ratio": m["cpu_ratio"]}
    detail |= {"networks": len(nets), "steps": stack.base.steps, "batch_size": B}
    return Result("engine_speedup_batch_size", m["ratio"], "ratio", goal=4.0, better="higher", detail=detail)


def _plain_run(cfg: TrainConfig, split: DataSplit, eval_rows: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The textbook loop: nn.BatchNorm1d, torch.optim.SGD, an eval-mode accuracy every eval_every steps."""
    model = build_mlp(replace(cfg.model, backend="torch", in_features=64, n_classes=10), seed=cfg.seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x, y = split.x_train, split.y_train
    for step, idx in enumerate(run_schedule(cfg, split), start=1):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                model.eval()
                (model(eval_rows[0]).argmax(1) == eval_rows[1]).float().mean().item()
                model.train()


def _grid_speedup(split: DataSplit, quick: bool) -> list[Result]:
    steps, repeats = (60, 3) if quick else (200, 5)
    grid = sweep_grid(fig1_config("batch", steps=steps, eval_every=25), lrs=GRID_LRS)
    configs = [point_config(grid, i) for i in range(len(grid.points))]
    m = _cpu_ratio(lambda: [train(c, data=split) for c in configs], lambda: run_sweep(grid, data=split), repeats)
    _, sub = fixed_rows(configs[0], split)
    rows = (torch.cat([split.x_train[sub], split.x_test]), torch.cat([split.y_train[sub], split.y_test]))
    plain = _cpu_ratio(
        lambda: [_plain_run(c, split, rows) for c in configs], lambda: run_sweep(grid, data=split), repeats
    )
    detail = {"sequential_train_s": m["a_s"], "sweep_s": m["b_s"], "cpu_time_ratio": m["cpu_ratio"]}
    detail |= {"configs": len(configs), "steps": steps, "plain_torch_loop_s": plain["a_s"]}
    detail |= {"ratio_vs_plain_torch_loop": round(plain["ratio"], 3), "cpu_ratio_vs_plain": plain["cpu_ratio"]}
    speedup = Result("engine_speedup_grid", m["ratio"], "ratio", goal=4.0, better="higher", detail=detail)
    final_only = replace(grid, base=replace(grid.base, eval_every=10**9))
    rec = _cpu_ratio(lambda: run_sweep(grid, data=split), lambda: run_sweep(final_only, data=split), repeats)
    detail = {"recorded_s": rec["a_s"], "final_only_s": rec["b_s"], "cpu_time_ratio": rec["cpu_ratio"]}
    return [speedup, Result("engine_recording_overhead", rec["ratio"], "ratio", goal=1.15, detail=detail)]


def run(quick: bool) -> list[Result]:
    split = load_dataset(DataConfig("digits"))
    train(fig1_config("batch", steps=5), data=split)  # one-time imports (torch.optim pulls in torch._dynamo)
    train_stack(StackConfig(fig1_config("batch", steps=5), (StackPoint(lr=0.1),)), data=split)
    results = [_default_view(1 if quick else 3), _batch_size_speedup(split, 2 if quick else 5)]
    results += _grid_speedup(split, quick)
    results.append(_sweep(1 if quick else 3))
    for r in results:
        r.detail = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.detail.items()}
    return results
