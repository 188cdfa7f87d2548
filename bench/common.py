"""Helpers shared by the benchmark modules: timing with medians, and a result record."""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field


@dataclass
class Result:
    """One benchmark number, as written to bench/results.json.

    ``value`` is a median (seconds, milliseconds or a ratio, see ``unit``); ``goal``
    is the target written in the issue and ``better`` says which side of it passes.
    """

    name: str
    value: float
    unit: str
    goal: float | None = None
    better: str = "lower"  # "lower" or "higher"
    detail: dict = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value <= self.goal if self.better == "lower" else self.value >= self.goal

    def as_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage collection inside timed code: one collection before, none during.

    (A full ``gc.collect()`` before every call costs ~0.35 s once torch is imported.)
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    with _gc_paused():
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times), times


def interleaved_ratio(
    fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int, warmup: int = 2
) -> tuple[float, float, float]:
    """Median time of a, of b, and the median of per-round ratios a/b, timed alternately.

    Alternating a and b in the same rounds keeps a noisy, shared machine from
    favouring whichever ran second.
    """
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    with _gc_paused():
        for _ in range(repeats):
            for fn, times in ((fn_a, times_a), (fn_b, times_b)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times_a, times_b, strict=True)]
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def rerun_times(at, changes: Iterable[Callable[[object], object]]) -> list[float]:
    """Wall time in seconds of ``at.run()`` (a Streamlit AppTest) after each change.

    Each change is a callable that sets widgets on ``at`` (the rerun a student triggers).
    Fails if the page raised, so a broken page can never look fast.
    """
    times = []
    for change in changes:
        change(at)
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    assert not at.exception, [e.message for e in at.exception]
    return times
