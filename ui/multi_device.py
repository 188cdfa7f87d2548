"""Multi-device BN page: its state table, the cached launches, charts and the computed sentences."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.distributed import MAX_WORLD, DistributedRunError
from bn_core.experiments.multi_device import (
    SWEEP_SIZES,
    VARIANT_LABELS,
    StatsConfig,
    StatsResult,
    SweepConfig,
    SweepResult,
    max_gap,
    run_stats,
    run_sweep,
)
from ui import charts, widgets
from ui.sidebar import seed
from ui.state import Field, PageState

log = logging.getLogger("batchnorm_lab")
DEFAULTS = StatsConfig()
B_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # images per replica (a float grid: the URL snaps to it)
EPOCH_GRID = (1.0, 2.0, 3.0)

STATE = PageState(
    "multi",
    [
        Field("W", DEFAULTS.world_size, "int", 2, MAX_WORLD, label="ranks W"),
        Field("b", float(DEFAULTS.images_per_replica), "float", 1, 64, choices=B_GRID, label="images per replica"),
        Field("steps", DEFAULTS.steps, "int", 20, 400, label="training steps"),
        Field("layer", 1, "choice", choices=(1, 2), label="BN layer"),
        Field("sweep", False, "bool", label="accuracy sweep"),
        Field("seeds", 1, "int", 1, 3, label="sweep seeds"),
        Field("epochs", 2.0, "float", 1, 3, choices=EPOCH_GRID, label="sweep epochs"),
    ],
    presets={
        "Class default: 2 ranks × 4 images": {"W": 2, "b": 4.0, "steps": DEFAULTS.steps},
        "Detection-like: 2 images per replica": {"W": 2, "b": 2.0, "steps": DEFAULTS.steps},
        "4 ranks × 2 images (oversubscribed cores)": {"W": 4, "b": 2.0, "steps": 100},
        "Large shards: 32 images per replica": {"W": 2, "b": 32.0, "steps": DEFAULTS.steps},
    },
)

# One launch at a time: every session shares the same cores, and W worker processes per
# launch already fill them. A second launch waits (with a message) instead of thrashing.
_LAUNCH_SLOT = threading.BoundedSemaphore(1)


def _launch(fn: Callable[..., Any], cfg: Any, progress: Callable[[float, str], None] | None) -> Any:
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


@st.cache_data(max_entries=16, show_spinner=False)
def compute_stats(cfg: StatsConfig, _progress=None) -> StatsResult:
    return _launch(run_stats, cfg, _progress)


@st.cache_data(max_entries=8, show_spinner=False)
def compute_sweep(cfg: SweepConfig, _progress=None) -> SweepResult:
    return _launch(run_sweep, cfg, _progress)


# Chart specs are cached too: building and validating the Altair charts cost more than
# everything else in a rerun (switching the layer, or 30 students arriving at once).
@st.cache_data(max_entries=32, show_spinner=False)
def stats_spec(cfg: StatsConfig, layer: int) -> dict:
    return stats_chart(compute_stats(cfg), layer).to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def cost_specs(cfg: StatsConfig) -> tuple[dict, dict]:
    result = compute_stats(cfg)
    return volume_chart(result).to_dict(), time_chart(result).to_dict()


@st.cache_data(max_entries=8, show_spinner=False)
def sweep_spec(cfg: SweepConfig) -> dict:
    return sweep_chart(compute_sweep(cfg)).to_dict()


# -- controls -----------------------------------------------------------------------


def controls() -> None:
    widgets.preset_picker(STATE)
    a, b, c = st.columns(3)
    widgets.slider(STATE, "W", "Ranks W (worker processes)", where=a)
    widgets.grid_slider(STATE, "b", "Images per replica b", fmt="{:.0f}", where=b)
    widgets.slider(STATE, "steps", "Training steps", step=10, where=c)


def stats_config() -> StatsConfig:
    return StatsConfig(
        world_size=int(STATE["W"]), images_per_replica=int(STATE["b"]), steps=int(STATE["steps"]), seed=seed()
    )


def sweep_config() -> SweepConfig:
    return SweepConfig(
        world_size=int(STATE["W"]), n_seeds=int(STATE["seeds"]), epochs=float(STATE["epochs"]), seed=seed()
    )


def sweep_controls() -> None:
    a, b, c = st.columns([2, 1, 1], vertical_alignment="bottom")
    widgets.toggle(STATE, "sweep", "Run the sweep", where=a, help="Trains 4 sizes × 3 variants per seed")
    widgets.slider(STATE, "seeds", "Seeds", where=b)
    widgets.grid_slider(STATE, "epochs", "Epochs per run", fmt="{:.0f}", where=c)


# -- sentences (every number in them is computed) ----------------------------------


def stats_sentence(r: StatsResult, layer: int, W: int) -> str:
    per, syn = (max_gap(r.spread, v, layer, "mu_B") for v in ("per_replica", "sync"))
    per_var, syn_var = (max_gap(r.spread, v, layer, "var_B") for v in ("per_replica", "sync"))
    return (
        f"Across the {W} ranks, layer {layer}'s μ_B differed by up to **{per:.3g}** with per-replica BN "
        f"(σ²_B by up to {per_var:.3g}), and by **{syn:.3g}** with synchronized BN (σ²_B: {syn_var:.3g}): "
        "every rank normalized with the same numbers, those of the pooled batch."
    )


def equivalence_table(r: StatsResult) -> pd.DataFrame:
    table = r.equivalence.pivot(index="variant", columns="quantity", values="max_abs_diff")
    table.index = [VARIANT_LABELS[v] for v in table.index]
    return table[["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"]]


def cost_sentence(r: StatsResult) -> str:
    vol = r.volume.set_index(["variant", "kind"])
    bn, grads = vol.loc[("sync", "bn_stats")], vol.loc[("sync", "gradients")]
    ms = r.timing.groupby("variant")["ms"].sum()
    return (
        f"Synchronized BN all-reduces **{bn['bytes']:,.0f} bytes** per step in **{bn['calls']:.0f} calls**, "
        f"against {grads['bytes']:,.0f} bytes of gradients in {grads['calls']:.0f} call: "
        f"{bn['bytes'] / grads['bytes']:.0%} more data, but {bn['calls'] + grads['calls']:.0f} all-reduces per "
        f"step instead of {grads['calls']:.0f}, each a round trip that waits for the slowest rank. "
        "In this run a synchronized step took "
        f"**{r.overhead:.2f}×** as long as a per-replica step ({ms['sync']:.2f} vs {ms['per_replica']:.2f} ms, "
        f"medians, interleaved step by step; {r.backend} on {r.device}, {r.cpu_count} cores)."
    )


def sweep_sentence(s: SweepResult) -> str:
    m = s.summary.set_index(["images_per_replica", "variant"])["mean"]
    small, large = min(s.summary["images_per_replica"]), max(s.summary["images_per_replica"])
    return (
        f"At {small} images per replica: per-replica BN **{m[(small, 'per_replica')]:.1%}**, "
        f"synchronized BN **{m[(small, 'sync')]:.1%}**, group norm **{m[(small, 'group')]:.1%}** test accuracy; "
        f"at {large}: {m[(large, 'per_replica')]:.1%}, {m[(large, 'sync')]:.1%}, {m[(large, 'group')]:.1%}."
    )


# -- charts -------------------------------------------------------------------------


def _labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(variant=frame["variant"].map(VARIANT_LABELS))


STAT_LABELS = {"mu_B": "μ_B", "var_B": "σ²_B"}


def stats_chart(r: StatsResult, layer: int) -> alt.VConcatChart:
    """Every rank's μ_B (top) and σ²_B (bottom) per step; columns: per-replica vs synchronized BN.

    Within a row both columns share the y scale, so the scatter is comparable. Rank 0 is drawn
    wide and the others thin, so ranks that coincide (synchronized BN) show as a line inside a line.
    """
    data = _labels(r.stats[r.stats["layer"] == layer])
    ranks = sorted(s for s in data["series"].unique() if s != "pooled")
    domain = [*ranks, "pooled"]
    colors = alt.Scale(domain=domain, range=[*charts.PALETTE[: len(ranks)], "#212529"])
    pick = alt.selection_point(fields=["series"], bind="legend")
    rows = []
    for k, (metric, label) in enumerate(STAT_LABELS.items()):
        base = alt.Chart(data[data["metric"] == metric], title=label).mark_line()
        line = base.encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", title="rank", scale=colors),
            strokeWidth=alt.condition("datum.series == 'rank 0'", alt.value(3.5), alt.value(1.2)),
            strokeDash=alt.condition("datum.series == 'pooled'", alt.value([4, 3]), alt.value([1, 0])),
            opacity=alt.condition(pick, alt.value(0.85), alt.value(0.1)),
            tooltip=["variant:N", "series:N", "step:Q", alt.Tooltip("value:Q", format=".4g", title=label)],
        )
        line = line.add_params(pick) if k == 0 else line  # declared once; the second row reads it
        rows.append(line.properties(width=330, height=140).facet(column=alt.Column("variant:N", title=None)))
    return alt.vconcat(*rows)


def sweep_chart(s: SweepResult) -> alt.LayerChart:
    """Mean final test accuracy per size and variant, with the lowest–highest bar over seeds and ranks."""
    data = _labels(s.summary)
    sizes = sorted(int(b) for b in data["images_per_replica"].unique())
    band = (
        alt.Chart(data)
        .mark_errorbar(thickness=2)
        .encode(
            x=alt.X("images_per_replica:Q", scale=alt.Scale(type="log", base=2), axis=alt.Axis(values=sizes)),
            y=alt.Y("lo:Q", title="test accuracy"),
            y2="hi:Q",
            color=alt.Color("variant:N", scale=alt.Scale(range=charts.PALETTE)),
        )
    )
    lines = charts.lines(
        data,
        x="images_per_replica",
        y="mean",
        color="variant",
        x_title="images per replica (log scale)",
        y_title="test accuracy",
        points=True,
        extra_tooltips=["lo:Q", "hi:Q"],
    )
    return alt.layer(band, lines).properties(height=280)


def _bars(data: pd.DataFrame, x: str, color: str, x_title: str, tips: list) -> alt.Chart:
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("variant:N", title=None, axis=alt.Axis(labelOverlap=False)),
            x=alt.X(f"{x}:Q", title=x_title, stack="zero"),
            color=alt.Color(f"{color}:N", scale=alt.Scale(range=charts.PALETTE[1:])),
            tooltip=["variant:N", f"{color}:N", *tips],
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


def sweep_table(s: SweepResult) -> pd.DataFrame:
    table = s.summary.pivot(index="images_per_replica", columns="variant", values="mean")
    table.columns = [VARIANT_LABELS[c] for c in table.columns]
    return table.join(s.steps.set_index("images_per_replica")[["global_batch", "steps", "lr"]])


SWEEP_NOTE = (
    f"Sizes {', '.join(str(b) for b in SWEEP_SIZES)}; every run sees the same number of epochs, with the learning "
    "rate scaled linearly with the global batch W·b (Goyal et al. 2017), as in Wu & He's Fig. 1. "
    "Error bars: lowest and highest over seeds and ranks (per-replica BN's ranks keep different running "
    "statistics, so their test accuracies differ)."
)
