"""How fast this machine was during the run: three reference speeds, so runs on different boxes compare.

The shared 2-core box is not always the same machine, nor equally busy: the same code
trained the Fig. 1 pair in 0.64 s in one session and 1.13 s in the next. Every absolute
figure of a run (first views, CPU per session) depends on these speeds; ratios measured side
by side in the same run much less.

* ``machine_python_loop_s``: 10 million additions in a pure-Python loop (what Streamlit's
  per-element work and the engines' Python overhead run at). Median of 5. No goal.
* ``machine_gemm_gflops``: float32 1024 × 1024 matrix products at the harness's torch
  thread count (what the engines' matrix products run at). Median of 9. No goal.
* ``machine_small_op_us``: one elementwise operation on a 60 × 100 float32 tensor (a Fig. 1
  batch of one layer), the cost that bounds the single-run engine's steps: dispatch,
  allocation and a pass over 24 KB. Median of 5 rounds of 20,000. No goal.

:func:`snapshot` reads all three once; ``python -m bench`` records one before and one after its
modules (``machine.speed_before`` / ``speed_after`` in ``bench/results.json``).
"""

from __future__ import annotations

import statistics
import time

import torch

from bench.common import Result

LOOP_N = 10_000_000
GEMM_N = 1024
SMALL_OPS = 20_000


def _python_loop() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(LOOP_N):
        total += i
    return time.perf_counter() - start


def _gemm_gflops(repeats: int) -> tuple[float, list[float]]:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(GEMM_N, GEMM_N, generator=gen), torch.randn(GEMM_N, GEMM_N, generator=gen)
    a @ b  # the first call pays the library's start-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        rates.append(2 * GEMM_N**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates), rates


def _small_op_us() -> float:
    x = torch.randn(60, 100, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for _ in range(SMALL_OPS):
        x * 0.5
    return (time.perf_counter() - start) / SMALL_OPS * 1e6


def snapshot() -> dict[str, float]:
    """One quick reading of the three speeds: ``python -m bench`` takes one before and one after its
    modules, so a run records whether the box got busier while it ran. The loop's faster of two runs
    (a fresh process's first one ran 0.43 s against 0.29 s)."""
    return {
        "python_loop_s": round(min(_python_loop(), _python_loop()), 3),
        "gemm_gflops": round(_gemm_gflops(3)[0], 1),
        "small_op_us": round(_small_op_us(), 2),
    }


def run(quick: bool) -> list[Result]:
    loops = [_python_loop() for _ in range(2 if quick else 5)]
    gflops, rates = _gemm_gflops(3 if quick else 9)
    small = [_small_op_us() for _ in range(2 if quick else 5)]
    threads = torch.get_num_threads()
    return [
        Result("machine_python_loop_s", statistics.median(loops), "s",
               detail={"runs_s": [round(t, 3) for t in loops], "iterations": LOOP_N}),
        Result("machine_gemm_gflops", gflops, "GFLOP/s", better="higher",
               detail={"runs": [round(r, 1) for r in rates], "n": GEMM_N, "torch_threads": threads}),
        Result("machine_small_op_us", statistics.median(small), "µs",
               detail={"runs_us": [round(t, 2) for t in small], "ops_per_run": SMALL_OPS}),
    ]  # fmt: skip
