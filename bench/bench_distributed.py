"""Multi-device BN on real worker processes: start-up, the cost of synchronizing, the page's cold default.

* ``launcher_startup_s``: launch → every rank has joined the gloo process group (spawn,
  ``import torch``, TCP rendezvous), 2 ranks; median over launches.
* ``sync_overhead``: median time per step of synchronized BN ÷ per-replica BN, both trained
  in the same launch, interleaved step by step (2 ranks × 4 images, the page's default);
  median over launches. The detail holds the medians in ms and the BN all-reduce share.
* ``multi_device_default_cold_s``: the page's default computation (``run_stats`` with
  ``StatsConfig()``) from scratch, start-up included: what the first student waits.
"""

from __future__ import annotations

import statistics
import time

from bench.common import Result
from bn_core.distributed import DistConfig, launch
from bn_core.experiments.multi_device import StatsConfig, run_stats


def _startup(repeats: int) -> Result:
    times = [launch(DistConfig(world_size=2, steps=1, variants=("per_replica",))).startup_s for _ in range(repeats)]
    return Result("launcher_startup_s", statistics.median(times), "s", detail={"runs_s": times, "world_size": 2})


def _overhead(repeats: int, steps: int) -> Result:
    ratios, sync_ms, per_ms, bn_ms = [], [], [], []
    for _ in range(repeats):
        r = launch(DistConfig(world_size=2, images_per_replica=(4,), steps=steps, record_stats=False))
        t = r.timing.groupby(["variant", "metric"])["value"].median()
        ratios.append(t[("sync", "step_ms")] / t[("per_replica", "step_ms")])
        sync_ms.append(t[("sync", "step_ms")])
        per_ms.append(t[("per_replica", "step_ms")])
        bn_ms.append(t[("sync", "bn_allreduce_ms")])
    detail = {
        "sync_step_ms": statistics.median(sync_ms),
        "per_replica_step_ms": statistics.median(per_ms),
        "sync_bn_allreduce_ms": statistics.median(bn_ms),
        "ratios": ratios,
        "steps": steps,
        "world_size": 2,
        "images_per_replica": 4,
    }
    return Result("sync_overhead", statistics.median(ratios), "ratio", detail=detail)


def _default_cold(repeats: int) -> Result:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_stats(StatsConfig())
        times.append(time.perf_counter() - start)
    return Result("multi_device_default_cold_s", statistics.median(times), "s", goal=3.0, detail={"runs_s": times})


def run(quick: bool) -> list[Result]:
    return [
        _startup(2 if quick else 5),
        _overhead(1 if quick else 3, 100 if quick else 300),
        _default_cold(1 if quick else 3),
    ]
