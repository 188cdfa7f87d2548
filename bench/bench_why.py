"""Why BN Works: the default tab cold, each heavier tab's experiment, the hooks' overhead, page reruns.

* ``why_default_s``: :func:`run_noisy` at the page's default (3 nets × 200 steps): what the
  first student to open the page waits for (the goal: ≤ 3 s on the 2-core box).
* ``why_noisy_hook_overhead``: the same three runs with the weight recorder vs without
  (interleaved, ratio; the scale-invariance tab's records must not make tab 1 slow).
* ``why_ics_s``, ``why_landscape_s``: the two tabs behind a button, at their defaults.
* ``why_scale_ms``, ``why_jacobian_s``: the two tabs that compute on opening.
* ``why_rerun_ms`` / ``why_rerun_cached_ms``: an AppTest rerun of the page (``views/why.py``) after a
  control change whose result is cached but whose chart is new, then a change back to a
  seen view (every spec cached): what a class mostly hits.

Details hold ``cpu_time_s`` (main-thread CPU time), steadier than wall time on a busy box.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench.common import Result, interleaved_ratio, median_time, rerun_times
from bn_core.experiments.why.common import NOISY_BN, digits_split, initial_model
from bn_core.experiments.why.ics import ICSConfig, run_ics
from bn_core.experiments.why.jacobian import JacobianConfig, run_jacobian
from bn_core.experiments.why.landscape import LandscapeConfig, run_landscape
from bn_core.experiments.why.noisy import NoisyConfig, run_noisy, train_configs
from bn_core.experiments.why.scale import ScaleConfig, run_scale
from bn_core.experiments.why.weights import WeightRecorder
from bn_core.noisy_bn import NoisyBNFactory
from bn_core.train import train


def _timed(name: str, fn: Callable[[], object], repeats: int, unit: str = "s", goal: float | None = None) -> Result:
    cpu: list[float] = []

    def run() -> None:
        start = time.thread_time()
        fn()
        cpu.append(time.thread_time() - start)

    seconds, times = median_time(run, repeats)
    scale = 1e3 if unit == "ms" else 1.0
    detail = {"runs": repeats, "times_s": [round(t, 4) for t in times], "cpu_time_s": statistics.median(cpu[1:])}
    return Result(name, seconds * scale, unit, goal=goal, detail=detail)


def _three_runs(cfg: NoisyConfig, hooked: bool) -> None:
    split = digits_split()
    for name, train_cfg in train_configs(cfg).items():
        factory = NoisyBNFactory(cfg.n_mu, cfg.n_sigma, seed=cfg.seed) if name == NOISY_BN else None
        hook = None
        if hooked:
            initial = [b.linear.weight for b in initial_model(train_cfg, split).blocks]
            hook = WeightRecorder(cfg.lr, initial, every=max(1, cfg.steps // 50))
        train(train_cfg, data=split, norm_factory=factory, on_step=hook)


def _overhead(quick: bool) -> Result:
    cfg = NoisyConfig(steps=150 if quick else 300)
    t_hooked, t_plain, ratio = interleaved_ratio(
        lambda: _three_runs(cfg, True), lambda: _three_runs(cfg, False), 2 if quick else 5
    )
    detail = {"with_hook_s": t_hooked, "without_s": t_plain, "steps": cfg.steps}
    return Result("why_noisy_hook_overhead", ratio, "ratio", goal=1.15, detail=detail)


def _reruns(quick: bool) -> list[Result]:
    from tests.helpers import open_page

    at = open_page("views/why.py")
    views = [(layer, view) for view in ("pre", "unit") for layer in (1, 2, 3)]

    def show(layer: int, view: str):
        return lambda at: (at.radio(key="why:layer").set_value(layer), at.radio(key="why:view").set_value(view))

    fresh = rerun_times(at, [show(*v) for v in views])  # new pairs: the experiment is cached, the spec is not
    cached = rerun_times(at, [show(*v) for v in views[: 3 if quick else 6]])  # seen before: every spec is cached
    return [
        Result("why_rerun_ms", statistics.median(fresh) * 1e3, "ms", goal=250.0,
               detail={"runs": len(fresh), "what": "default tab, new layer/view: one new chart spec"}),
        Result("why_rerun_cached_ms", statistics.median(cached) * 1e3, "ms", goal=100.0,
               detail={"runs": len(cached), "what": "default tab, a layer/view seen before: all cached"}),
    ]  # fmt: skip


def run(quick: bool) -> list[Result]:
    digits_split()  # load the data once, outside every timing
    run_noisy(NoisyConfig(steps=10))  # one-time imports and allocator warm-up
    repeats = 2 if quick else 5
    results = [
        _timed("why_default_s", lambda: run_noisy(NoisyConfig()), repeats, goal=3.0),
        _overhead(quick),
        _timed("why_ics_s", lambda: run_ics(ICSConfig()), repeats),
        _timed("why_landscape_s", lambda: run_landscape(LandscapeConfig()), repeats),
        _timed("why_scale_ms", lambda: run_scale(ScaleConfig()), repeats + 2, unit="ms", goal=500.0),
        _timed("why_jacobian_s", lambda: run_jacobian(JacobianConfig()), repeats, goal=3.0),
    ]
    return results + _reruns(quick)
