"""Multi-device page charts and tables: pure functions from a result to an Altair chart or a DataFrame.

Method names and colours are the app's (``ui.charts.METHOD_COLORS``): per-replica statistics
are "BN", synchronized ones "sync BN", group norm "GN". Every chart takes the container's width.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from bn_core.experiments.multi_device import SWEEP_SIZES, ReplicaSweepResult, StatsResult, label
from ui import charts

STAT_LABELS = {"mu_B": "μ_B", "var_B": "σ²_B"}
RANK_COLORS = ["#1B9E77", "#D95F02", "#7570B3", "#E7298A"]  # ranks are not methods: a palette of their own
POOLED_COLOR = "#212529"
SYNC_COST = charts.METHOD_COLORS["sync BN"]  # what synchronizing adds is drawn in sync BN's colour
PART_COLORS = {
    "compute": "#ADB5BD",
    "bn_allreduce": SYNC_COST,
    "grad_allreduce": "#495057",
    "bn_stats": SYNC_COST,
    "gradients": "#495057",
}


def _labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(variant=frame["variant"].map(label))


def _stat_chart(data: pd.DataFrame, heading: str, metric: str, domain: list[float]) -> alt.Chart:
    """One variant's μ_B or σ²_B per step, a line per rank (rank 0 wide), dashed: all ranks pooled."""
    title = STAT_LABELS[metric]
    series = sorted(data["series"].unique(), key=lambda s: (s == "pooled", s))
    ranks = [s for s in series if s != "pooled"]
    colors = alt.Scale(domain=series, range=[*RANK_COLORS[: len(ranks)], POOLED_COLOR][: len(series)])
    return (
        alt.Chart(data, title=heading)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=title, scale=alt.Scale(domain=domain, zero=False)),
            color=alt.Color("series:N", title="rank", scale=colors),
            strokeWidth=alt.condition("datum.series == 'rank 0'", alt.value(3.5), alt.value(1.2)),
            strokeDash=alt.condition("datum.series == 'pooled'", alt.value([4, 3]), alt.value([1, 0])),
            tooltip=[
                "variant:N",
                "series:N",
                "step:Q",
                alt.Tooltip("value:Q", format=".4g", title=STAT_LABELS[metric]),
            ],
        )
        .properties(height=150)
    )


def stats_charts(r: StatsResult, layer: int) -> tuple[tuple[alt.Chart, ...], ...]:
    """Rows μ_B and σ²_B, a chart per variant trained; within a row the y scale is shared."""
    data = _labels(r.stats[r.stats["layer"] == layer])
    rows = []
    for metric in STAT_LABELS:
        part = data[data["metric"] == metric]
        domain = [float(part["value"].min()), float(part["value"].max())]
        rows.append(
            tuple(
                _stat_chart(part[part["variant"] == v], f"{v} · {STAT_LABELS[metric]}", metric, domain)
                for v in part["variant"].unique()
            )
        )
    return tuple(rows)


def replica_sweep_chart(s: ReplicaSweepResult) -> alt.LayerChart:
    """Mean final test accuracy per size and method, with the lowest–highest bar over seeds and ranks."""
    data = _labels(s.summary)
    sizes = sorted(int(b) for b in data["images_per_replica"].unique())
    color = alt.Color("variant:N", title="method", scale=charts.method_scale(sorted(data["variant"].unique())))
    x = alt.X(
        "images_per_replica:Q",
        title="images per replica (log scale)",
        scale=alt.Scale(type="log", base=2),
        axis=alt.Axis(values=sizes),
    )
    tips = [
        "variant:N",
        "images_per_replica:Q",
        alt.Tooltip("mean:Q", format=".3f"),
        alt.Tooltip("lo:Q", format=".3f"),
        alt.Tooltip("hi:Q", format=".3f"),
    ]
    base = alt.Chart(data).encode(x=x, color=color, tooltip=tips)
    band = base.mark_errorbar(thickness=2).encode(y=alt.Y("lo:Q", title="test accuracy"), y2="hi:Q")
    lines = base.mark_line(point=True, strokeWidth=2).encode(y=alt.Y("mean:Q", title="test accuracy"))
    return alt.layer(band, lines).properties(height=280)


def _bars(data: pd.DataFrame, x: str, part: str, x_title: str, tips: list) -> alt.Chart:
    parts = [p for p in PART_COLORS if p in set(data[part])]
    scale = alt.Scale(domain=parts, range=[PART_COLORS[p] for p in parts])
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("variant:N", title=None, axis=alt.Axis(labelOverlap=False)),
            x=alt.X(f"{x}:Q", title=x_title, stack="zero"),
            color=alt.Color(f"{part}:N", scale=scale),
            tooltip=["variant:N", f"{part}:N", *tips],
        )
        .properties(height=150)
    )


def volume_chart(r: StatsResult) -> alt.Chart:
    tips = [alt.Tooltip("bytes:Q", format=",.0f"), "calls:Q", alt.Tooltip("formula_bytes:Q", format=",.0f")]
    return _bars(_labels(r.volume), "bytes", "kind", "all-reduce payload per step and rank (bytes)", tips)


def time_chart(r: StatsResult) -> alt.Chart:
    chart = _bars(
        _labels(r.timing), "ms", "component", "median time per step (ms)", [alt.Tooltip("ms:Q", format=".3f")]
    )
    return chart.properties(description="Live timing: time per step, measured on this server")


def equivalence_table(r: StatsResult) -> pd.DataFrame:
    """Largest |difference| from one process over the global batch, a row per method."""
    table = r.equivalence.pivot(index="variant", columns="quantity", values="max_abs_diff")
    table.index = [label(v) for v in table.index]
    return table[["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"]]


def replica_sweep_table(s: ReplicaSweepResult) -> pd.DataFrame:
    table = s.summary.pivot(index="images_per_replica", columns="variant", values="mean")
    table.columns = [label(c) for c in table.columns]
    return table.join(s.steps.set_index("images_per_replica")[["global_batch", "steps", "lr"]])


SWEEP_NOTE = (
    f"Sizes {', '.join(str(b) for b in SWEEP_SIZES)}; every run sees the same number of epochs, with the learning "
    "rate scaled linearly with the global batch W·b (Goyal et al. 2017), as in Wu & He's Fig. 1. "
    "Error bars: lowest and highest over seeds and ranks (BN's ranks keep different running statistics, so "
    "their test accuracies differ)."
)
STATS_CAPTION = (
    "Unit 0 of the layer. Rank 0 is drawn wide and the others thin, so ranks with the same values show as a line "
    "inside a line. Dashed: all ranks' examples pooled, the statistics synchronized BN normalizes with."
)
