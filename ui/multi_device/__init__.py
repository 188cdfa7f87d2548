"""Multi-device BN page glue: the cached launches and chart specs, plus the controls and figures it re-exports.

The cached functions live here (not in a submodule) so that every cached function of the
app is found as ``ui.<page>.<name>``. Sentences come from ``bn_core.experiments.multi_device.
verdicts`` (re-exported as ``verdicts``) and questions from its ``quiz``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bn_core.distributed import DistributedRunError
from bn_core.experiments.multi_device import (
    ReplicaSweepConfig,
    ReplicaSweepResult,
    StatsConfig,
    StatsResult,
    questions,
    run_replica_sweep,
    run_stats,
    verdicts,
)
from ui import common
from ui.cache import cached
from ui.charts import arrow_spec
from ui.multi_device.controls import STATE, controls, layer_control, stats_config, sweep_config, sweep_controls
from ui.multi_device.figures import (
    STATS_CAPTION,
    SWEEP_NOTE,
    equivalence_table,
    replica_sweep_chart,
    replica_sweep_table,
    stats_charts,
    time_chart,
    volume_chart,
)

__all__ = [
    "STATE",
    "STATS_CAPTION",
    "SWEEP_NOTE",
    "compute_stats",
    "compute_sweep",
    "controls",
    "cost_specs",
    "equivalence_table",
    "guarded_launch",
    "layer_control",
    "questions",
    "render_stats_charts",
    "replica_sweep_spec",
    "replica_sweep_table",
    "stats_config",
    "stats_specs",
    "sweep_config",
    "sweep_controls",
    "verdicts",
]

log = logging.getLogger("batchnorm_lab")

# One launch at a time: every session shares the same cores, and W worker processes per
# launch already fill them. A second launch waits (with a message) instead of thrashing.
_LAUNCH_SLOT = threading.BoundedSemaphore(1)


def guarded_launch(fn: Callable[..., Any], cfg: Any, progress: Callable[[float, str], None] | None) -> Any:
    """Run ``fn(cfg, progress)`` in the one launch slot; a worker failure becomes a ValueError for the user."""
    report = progress or (lambda fraction, message: None)
    while not _LAUNCH_SLOT.acquire(timeout=0.5):
        report(0.0, "waiting: another session's worker processes are using the cores")
    try:
        return fn(cfg, report)
    except DistributedRunError as err:
        log.warning("distributed run failed: %s\n%s", err, err.detail)
        raise ValueError(f"The worker processes failed and were all stopped. {err}") from None
    finally:
        _LAUNCH_SLOT.release()


@cached(max_entries=16)
def compute_stats(cfg: StatsConfig, _progress=None) -> StatsResult:
    return guarded_launch(run_stats, cfg, _progress)


@cached(max_entries=8)
def compute_sweep(cfg: ReplicaSweepConfig, _progress=None) -> ReplicaSweepResult:
    return guarded_launch(run_replica_sweep, cfg, _progress)


# Chart specs are cached too: building and validating the Altair charts cost more than
# everything else in a rerun (switching the layer, or 30 students arriving at once).
@cached(max_entries=32)
def stats_specs(cfg: StatsConfig, layer: int) -> tuple[tuple[dict, ...], ...]:
    return tuple(tuple(arrow_spec(c) for c in row) for row in stats_charts(compute_stats(cfg), layer))


@cached(max_entries=16)
def cost_specs(cfg: StatsConfig) -> tuple[dict, dict]:
    result = compute_stats(cfg)
    return arrow_spec(volume_chart(result)), arrow_spec(time_chart(result))


@cached(max_entries=8)
def replica_sweep_spec(cfg: ReplicaSweepConfig) -> dict:
    return arrow_spec(replica_sweep_chart(compute_sweep(cfg)))


def render_stats_charts(cfg: StatsConfig, layer: int) -> None:
    """Section 1's grid: a row per statistic, a chart per method (they stack on a phone)."""
    for row in stats_specs(cfg, layer):
        common.side_by_side(row)
