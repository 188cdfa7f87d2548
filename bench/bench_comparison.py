"""Training Comparison page speed: the default BN-vs-no-norm comparison cold, a cached rerun, the grids.

* ``comparison_default_s``: :func:`bn_core.experiments.training.run_comparison` at the
  page's default config (Ioffe & Szegedy Fig. 1: BN and no norm, 600 steps each, every
  record and histogram snapshot), called directly, so nothing is cached. Median over
  repeats after one warm-up call (imports). Goal ≤ 3 s with 1 torch thread. ``detail``
  adds the first call in a fresh Python process, imports included.
* ``comparison_cached_rerun_ms``: an AppTest rerun of the page after switching the
  learning rate back to a value it has already computed (2 ↔ 10, both cached before
  timing): the path a class mostly hits. Goal ≤ 150 ms.
* ``comparison_grid_<axis>_s`` (full run only): each grid at its page defaults (3 seeds
  × {BN, no norm} × 6-7 values, 300 steps) through the stacked sweep engine, cold.
* ``comparison_default_s_2threads`` (full run only): the default comparison again with
  2 torch threads, for the thread-count choice in docs/training.md.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.common import Result
from bn_core.experiments.training import ComparisonConfig, grid_config, run_comparison, run_grid

ROOT = Path(__file__).resolve().parent.parent
PAGE = "views/training.py"


def _fresh_process_s() -> float:
    """Import + first default comparison in a new interpreter (what the first student after a restart waits)."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from bn_core.experiments.training import ComparisonConfig, run_comparison\n"
        "run_comparison(ComparisonConfig()); print(time.perf_counter() - t)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "BN_DEVICE": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of one call (CPU time shows the cost on a busy machine)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _default(quick: bool, suffix: str = "") -> Result:
    cfg = ComparisonConfig()
    walls, cpus = zip(*(_timed(lambda: run_comparison(cfg)) for _ in range(2 if quick else 5)), strict=True)
    detail = {"steps": cfg.steps, "times_s": [round(t, 3) for t in walls], "torch_threads": torch.get_num_threads()}
    detail["cpu_s_median"] = round(statistics.median(cpus), 3)
    if not suffix:
        detail["fresh_process_incl_imports_s"] = round(_fresh_process_s(), 3)
    return Result(f"comparison_default_s{suffix}", statistics.median(walls), "s", goal=3.0, detail=detail)


def _cached_rerun(quick: bool) -> Result:
    from tests.helpers import open_page

    at = open_page(PAGE)  # computes the default (lr = 2)
    slider = at.select_slider(key="training:lr")
    slider.set_value(10.0)
    at.run()  # computes lr = 10 once
    assert not at.exception, [e.message for e in at.exception]
    times, cpus = [], []
    for k in range(6 if quick else 20):
        at.select_slider(key="training:lr").set_value(2.0 if k % 2 == 0 else 10.0)
        wall, cpu = _timed(at.run)
        times.append(wall)
        cpus.append(cpu)
    assert not at.exception and len(at.get("vega_lite_chart")) == 10  # loss, accuracy, 4 × (BN, no norm)
    detail = {"runs": len(times), "what": "AppTest rerun after switching lr between two cached values (2, 10)"}
    detail |= {"max_ms": round(max(times) * 1e3, 1), "cpu_ms_median": round(statistics.median(cpus) * 1e3, 1)}
    return Result("comparison_cached_rerun_ms", statistics.median(times) * 1e3, "ms", goal=150.0, detail=detail)


def _grids() -> list[Result]:
    results = []
    for axis in ("lr", "init_scale", "depth"):
        cfg = grid_config(ComparisonConfig(), axis, steps=300, n_seeds=3)
        seconds, cpu = _timed(lambda c=cfg: run_grid(c))
        detail = {"networks": 2 * 3 * len(cfg.values), "steps": 300, "values": list(cfg.values), "cpu_s": round(cpu, 2)}
        results.append(Result(f"comparison_grid_{axis}_s", seconds, "s", goal=20.0, detail=detail))
    return results


def run(quick: bool) -> list[Result]:
    run_comparison(ComparisonConfig(steps=20))  # one-time imports (torch.optim pulls in torch._dynamo)
    results = [_default(quick), _cached_rerun(quick)]
    if not quick:
        results += _grids()
        if torch.get_num_threads() == 1:
            torch.set_num_threads(2)
            try:
                results.append(_default(quick, "_2threads"))
            finally:
                torch.set_num_threads(1)
    load = round(os.getloadavg()[0], 2)  # the reference box is shared: record how busy it was
    for r in results:
        r.detail["load_avg_1min_after"] = load
    return results
