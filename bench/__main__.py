"""Run every benchmark: ``python -m bench [--quick] [--only NAME ...]``.

Each module ``bench/bench_*.py`` exposes ``run(quick: bool) -> list[Result]``. The
table goes to stdout and every result, with the machine description, to
``bench/results.json`` (git-ignored: numbers belong to the machine that made them;
the README's table is copied from a run on the reference machine).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("BN_DEVICE", "cpu")

import torch

from bench.bench_machine import snapshot
from bench.common import Result
from bn_core.device import pick_device, tune_cpu_runtime

RESULTS = Path(__file__).with_name("results.json")


def _machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": str(pick_device()),
    }


def _modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats; fits in about 60 s")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. bench_functional")
    args = parser.parse_args(argv)
    runtime = tune_cpu_runtime()
    results: list[Result] = []
    speed_before = snapshot()  # how fast the shared box was at the start, and (below) at the end
    started = time.perf_counter()
    for name in _modules():
        if args.only and name not in args.only:
            continue
        module = importlib.import_module(f"bench.{name}")
        print(f"# {name} …", file=sys.stderr, flush=True)
        results.extend(module.run(args.quick))
    print(f"{'benchmark':32} {'median':>12} {'unit':8} {'goal':>10}  met")
    for r in results:
        goal = "" if r.goal is None else f"{'≤' if r.better == 'lower' else '≥'}{r.goal:g}"
        met = {True: "yes", False: "NO", None: ""}[r.met]
        print(f"{r.name:32} {r.value:12.4g} {r.unit:8} {goal:>10}  {met}")
    # Merge: a partial run (--only) and `python -m bench.load` keep each other's entries.
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": {}}
    merged = {**previous.get("results", {}), **{r.name: r.as_dict() for r in results}}
    record = {
        "machine": {**_machine(), "speed_before": speed_before, "speed_after": snapshot()},
        "runtime": runtime,
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started, 1),
        "results": merged,
    }
    RESULTS.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
