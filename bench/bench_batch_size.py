"""Batch-Size Sensitivity: the default sweep cold, the page's default view, and what channel stacking buys.

* ``batch_size_sweep_s``: :func:`run_batch_sweep` with the page's default ``SweepConfig()``
  (6 batch sizes × BN, GN, LN, none × 3 seeds = 72 networks, 3 epochs each) from
  scratch, as the first student to press "Train" waits for it. Goal ≤ 30 s.
* ``batch_size_default_cold_s``: the computations of the page at default settings
  (noise sampling + the batch-of-one demo), uncached. Goal ≤ 3 s.
* ``batch_size_stack_speedup``: training the same 12 networks (4 norms × 3 seeds, B = 8,
  40 steps) one by one with ``bn_core.train.train`` ÷ as one channel stack; interleaved
  rounds, median of per-round ratios. The detail also times ``bn_core.sweep.run_sweep``
  on its share (BN and no norm, 6 networks) against the stack of the same 6.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from bench.common import Result, interleaved_ratio
from bn_core.data import DataConfig, load_dataset
from bn_core.experiments import batch_size as bs
from bn_core.sweep import SweepConfig as EngineSweepConfig
from bn_core.sweep import SweepPoint, run_sweep
from bn_core.train import train


def _sweep(repeats: int) -> Result:
    cfg = bs.SweepConfig()
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = bs.run_batch_sweep(cfg)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    err = result.summary[result.summary["metric"] == "test_error"].set_index(["variant", "batch_size"])["mean"]
    detail = {
        "runs_s": times,
        "cpu_s": cpu,  # process CPU time: what the run costs without other load on the machine
        "networks": int(result.runs[result.runs["metric"] == "test_error"].shape[0]),
        "optimizer_steps_per_network_total": int(result.schedule["steps"].sum()),
        "bn_error_b2": float(err[("batch", 2)]),
        "bn_error_b32": float(err[("batch", 32)]),
        "gn_error_b2": float(err[("group", 2)]),
        "gn_error_b32": float(err[("group", 32)]),
    }
    return Result("batch_size_sweep_s", statistics.median(times), "s", goal=30.0, detail=detail)


def _default_view(repeats: int) -> Result:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bs.run_noise(bs.NoiseConfig())
        bs.batch_of_one(0)
        times.append(time.perf_counter() - start)
    return Result("batch_size_default_cold_s", statistics.median(times), "s", goal=3.0, detail={"runs_s": times})


def _speedup(repeats: int) -> Result:
    split = load_dataset(DataConfig("digits"))
    n_train, B = len(split.y_train), 8  # noqa: N806 - B is the batch size, as on the page
    cfg = replace(bs.SweepConfig(), epochs=40 * B / n_train)  # 40 steps at B = 8
    points = bs.sweep_points(cfg, B)
    stack = bs._Stack(points, bs._base(cfg, B, n_train), cfg.settings)

    def stacked() -> None:
        bs._train_stack(stack, split, None)

    def one_by_one() -> None:
        for point in points:
            train_cfg, factory = bs.point_train_config(cfg, B, point, n_train)
            train(train_cfg, data=split, norm_factory=factory)

    t_alone, t_stack, ratio = interleaved_ratio(one_by_one, stacked, repeats, warmup=1)
    share = [p for p in points if p.variant in ("batch", "none")]
    engine_cfg = EngineSweepConfig(
        base=replace(bs._base(cfg, B, n_train), model=replace(bs._base(cfg, B, n_train).model, norm="batch")),
        points=tuple(SweepPoint(lr=bs.lr_at(cfg, B), seed=p.seed, bn=p.variant == "batch") for p in share),
    )
    share_stack = bs._Stack(tuple(share), bs._base(cfg, B, n_train), cfg.settings)
    t_engine, t_share, engine_ratio = interleaved_ratio(
        lambda: run_sweep(engine_cfg, data=split), lambda: bs._train_stack(share_stack, split, None), repeats, warmup=1
    )
    detail = {
        "one_by_one_s": t_alone,
        "stacked_s": t_stack,
        "networks": len(points),
        "steps": stack.base.steps,
        "bn_core_sweep_bn_none_s": t_engine,
        "stack_bn_none_s": t_share,
        "bn_core_sweep_over_stack": engine_ratio,
    }
    return Result("batch_size_stack_speedup", ratio, "ratio", better="higher", detail=detail)


def run(quick: bool) -> list[Result]:
    return [_default_view(1 if quick else 3), _speedup(2 if quick else 5), _sweep(1 if quick else 3)]
