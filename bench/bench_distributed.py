"""Multi-device BN on real worker processes: start-up, memory, the cost of synchronizing, the page's heavy views.

* ``launcher_startup_s``: launch → every rank has joined the gloo process group, 2 ranks,
  workers forked from the warm fork server (the default); median over launches. The detail
  holds the same for "spawn" (each worker imports torch afresh) and the fork server's own
  first start.
* ``launch_peak_pss_mb``: the peak PSS of this process's children (workers, fork server,
  resource tracker) during the page's default launch, forked; the detail holds the spawned
  workers' peak and what the fork server keeps between launches. This is what a launch adds
  to the server's memory (issue 16: ≤ 700 MB in all).
* ``sync_overhead``: median time per step of synchronized BN ÷ per-replica BN, both trained
  in the same launch, interleaved step by step (2 ranks × 4 images, the page's default);
  median over launches. The detail holds the medians in ms and the BN all-reduce share.
* ``multi_device_default_cold_s``: the page's default computation (``run_stats`` with
  ``StatsConfig()``) from scratch on a warm fork server: what the first student waits.
* ``replica_sweep_s``: *Run the sweep* at the page's defaults (``ReplicaSweepConfig()``): its
  runs train 4 at a time on every rank (``DistConfig.lanes``). The detail holds the same
  launch with one run at a time (``lanes=1``), interleaved with it, and their ratio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time

import psutil

from bench.common import Result
from bn_core.distributed import DistConfig, launch
from bn_core.experiments.multi_device import ReplicaSweepConfig, StatsConfig, run_replica_sweep, run_stats
from bn_core.experiments.multi_device.replica_sweep import sweep_dist_config

TINY = DistConfig(world_size=2, steps=1, variants=("per_replica",))


def _startups(method: str, repeats: int) -> list[float]:
    return [launch(dataclasses.replace(TINY, start_method=method)).startup_s for _ in range(repeats)]


def _startup(repeats: int) -> Result:
    first = time.perf_counter()
    launch(TINY)  # starts the fork server if no launch has yet
    first_s = time.perf_counter() - first
    forked, spawned = _startups("forkserver", repeats), _startups("spawn", repeats)
    detail = {"forked_s": forked, "spawned_s": spawned, "first_launch_wall_s": first_s, "world_size": 2}
    return Result("launcher_startup_s", statistics.median(forked), "s", detail=detail)


def _children_pss_mb() -> float:
    total = 0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_full_info().pss
    return total / 2**20


def _peak_pss(method: str) -> float:
    peak = [0.0]

    def progress(fraction: float, message: str) -> None:
        peak[0] = max(peak[0], _children_pss_mb())

    launch(DistConfig(world_size=2, images_per_replica=(4,), steps=100, eval_every=10, start_method=method), progress)
    return peak[0]


def _memory() -> Result:
    """Forked: the fork server and the workers together. Spawned: the workers alone (the peak less what idles)."""
    forked = _peak_pss("forkserver")
    idle = _children_pss_mb()  # the fork server and the resource tracker, between launches
    spawned_workers = _peak_pss("spawn") - idle
    detail = {"spawned_workers_mb": spawned_workers, "idle_children_mb": idle, "world_size": 2}
    return Result("launch_peak_pss_mb", forked, "MB", detail=detail)


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


def _timed(name: str, fn, repeats: int, goal: float) -> Result:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Result(name, statistics.median(times), "s", goal=goal, detail={"runs_s": times})


def _sweep(repeats: int) -> Result:
    """The default sweep as the page runs it, interleaved with the same launch one run at a time."""
    as_run = sweep_dist_config(ReplicaSweepConfig())
    one_lane = dataclasses.replace(as_run, lanes=1)
    lanes, serial = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run_replica_sweep(ReplicaSweepConfig())
        lanes.append(time.perf_counter() - start)
        start = time.perf_counter()
        launch(one_lane)
        serial.append(time.perf_counter() - start)
    detail = {"runs_s": lanes, "one_lane_runs_s": serial, "one_lane_s": statistics.median(serial)}
    detail |= {"lanes": as_run.lanes}
    detail["speedup_vs_one_lane"] = statistics.median(b / a for a, b in zip(lanes, serial, strict=True))
    return Result("replica_sweep_s", statistics.median(lanes), "s", goal=5.0, detail=detail)


def run(quick: bool) -> list[Result]:
    return [
        _startup(2 if quick else 5),
        _memory(),
        _overhead(1 if quick else 3, 100 if quick else 300),
        _timed("multi_device_default_cold_s", lambda: run_stats(StatsConfig()), 1 if quick else 3, goal=3.0),
        _sweep(1 if quick else 3),
    ]
