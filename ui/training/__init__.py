"""Training Comparison page glue: the cached experiments and views, plus the controls and charts it re-exports.

The cached functions live here (not in a submodule) so that every cached function of the
app is found as ``ui.<page>.<name>``. Each view is a frozen dataclass of chart specs and
sentences; every sentence is a ``bn_core.verdict.Verdict`` computed by
``bn_core.experiments.training`` from the result it describes. The page reads attributes
and draws; the two ``render_*`` functions draw a whole tab or panel themselves.

One module per section: ``controls`` (state table, presets, widgets), ``curves`` (1),
``distributions`` (2, 3), ``layers`` (4), ``grids`` (5), ``backends`` (6).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from bn_core.experiments.training import (
    BackendCheck,
    ComparisonConfig,
    ComparisonReport,
    ComparisonResult,
    GridConfig,
    GridResult,
    comparison_report,
    grid_divergence,
    grid_estimated_seconds,
    grid_summary,
    grid_verdict,
    percentile_bands,
    questions,
    run_backend_check,
    run_comparison,
    run_grid,
)
from bn_core.quiz import Question
from ui import common, widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.training.backends import INTRO as BACKEND_INTRO
from ui.training.backends import backend_chart
from ui.training.controls import (
    GRID_TABS,
    PRESETS,
    STATE,
    ViewSettings,
    controls,
    grid_of,
    grid_settings,
    hist_controls,
    layer_controls,
    view_settings,
)
from ui.training.curves import CurvesView, curves_view
from ui.training.distributions import BANDS_INTRO, HIST_CAPTION, BandsView, bands_chart, hist_chart, shared_domain
from ui.training.grids import GRID_COLUMNS, GRIDS, GridView, grid_charts
from ui.training.layers import LAYERS_CAPTION, SUMMARY_COLUMNS, LayersView, grad_chart, saturation_chart

__all__ = [
    "STATE",
    "PRESETS",
    "ViewSettings",
    "BANDS_INTRO",
    "HIST_CAPTION",
    "LAYERS_CAPTION",
    "BACKEND_INTRO",
    "SUMMARY_COLUMNS",
    "GRIDS",
    "controls",
    "view_settings",
    "layer_controls",
    "hist_controls",
    "grid_settings",
    "compute",
    "compute_grid",
    "compute_backends",
    "report",
    "curves",
    "bands",
    "hist_specs",
    "layers",
    "grid_view",
    "backend_spec",
    "run_csv",
    "check_questions",
    "render_grid",
    "render_backend_check",
]


# -- cached experiments ---------------------------------------------------------------


@cached(max_entries=32)
def compute(cfg: ComparisonConfig, _progress=None) -> ComparisonResult:
    return run_comparison(cfg, _progress)


@cached(max_entries=24)
def compute_grid(cfg: GridConfig, _progress=None) -> GridResult:
    return run_grid(cfg, _progress)


@cached(max_entries=16)
def compute_backends(cfg: ComparisonConfig, _progress=None) -> BackendCheck:
    return run_backend_check(cfg, _progress)


@cached(max_entries=64)
def report(cfg: ComparisonConfig, target: float, layer: int, which: str) -> ComparisonReport:
    """The numbers, table, notes and verdicts of one view (pandas work worth ~40 ms per rerun uncached)."""
    return comparison_report(compute(cfg), target, layer, which)


# -- cached views (building Altair charts costs more than the data) ------------------------


@cached(max_entries=64)
def curves(cfg: ComparisonConfig, target: float, layer: int, which: str) -> CurvesView:
    return curves_view(compute(cfg).curves, report(cfg, target, layer, which))


@cached(max_entries=64)
def bands(cfg: ComparisonConfig, target: float, layer: int, which: str) -> BandsView:
    result = compute(cfg)
    frame = percentile_bands(result.layers, layer, which)
    domain = shared_domain(pd.concat([frame["p15"], frame["p85"]]))
    charts = tuple(arrow_spec(bands_chart(frame, v, layer, which, domain)) for v in result.trained)
    return BandsView(charts=charts, drift=report(cfg, target, layer, which).drift.text)


@cached(max_entries=64)
def hist_specs(cfg: ComparisonConfig, steps: tuple[int, ...], quantity: str) -> tuple[dict, ...]:
    """One histogram chart per trained net."""
    result = compute(cfg)
    return tuple(arrow_spec(hist_chart(result.hist, v, steps, quantity)) for v in result.trained)


@cached(max_entries=64)
def layers(cfg: ComparisonConfig, target: float, layer: int, which: str) -> LayersView:
    result, seen = compute(cfg), report(cfg, target, layer, which)
    records = result.layers
    domain = shared_domain(records[(records["metric"] == "grad_norm") & (records["step"] > 0)]["value"], log=True)
    return LayersView(
        grads=tuple(arrow_spec(grad_chart(records, v, domain)) for v in result.trained),
        saturation=tuple(arrow_spec(saturation_chart(records, v, cfg.activation)) for v in result.trained),
        text=seen.saturation.text,
        table=seen.table,
    )


@cached(max_entries=16)
def run_csv(cfg: ComparisonConfig) -> bytes:
    """Every record of the trained nets as CSV bytes (numbers only, no user text)."""
    result = compute(cfg)
    curves_part = result.curves.assign(layer=pd.NA)[["step", "variant", "layer", "metric", "value"]]
    return pd.concat([curves_part, result.layers], ignore_index=True).to_csv(index=False).encode()


@cached(max_entries=64)
def check_questions(cfg: ComparisonConfig, target: float, layer: int, which: str) -> tuple[Question, ...]:
    return questions(compute(cfg), report(cfg, target, layer, which))


@cached(max_entries=64)
def grid_view(cfg: GridConfig, target: float) -> GridView:
    result = compute_grid(cfg)
    summary, title = grid_summary(result, target), GRIDS[cfg.axis].title
    skipped = result.skipped[0] if result.skipped else None
    accuracy, steps = grid_charts(summary, cfg.axis, target)
    return GridView(
        accuracy=arrow_spec(accuracy),
        steps=arrow_spec(steps),
        table=summary,
        verdict=grid_verdict(summary, title, target, skipped.reason if skipped else None).text,
        diverged=grid_divergence(summary, title),
        skipped=skipped.note if skipped else None,
    )


@cached(max_entries=16)
def backend_spec(cfg: ComparisonConfig) -> dict:
    return arrow_spec(backend_chart(compute_backends(cfg).curves))


# -- panels that draw themselves -------------------------------------------------------


def grid_tabs() -> list[tuple[Any, str]]:
    """Section 5's tabs, lazy (only the open tab's grid is built on a rerun), each with its axis."""
    tabs = st.tabs(list(GRID_TABS), key=STATE.key("grid"), on_change="rerun")
    return list(zip(tabs, GRID_TABS.values(), strict=True))


def render_grid(axis: str, cfg: ComparisonConfig, target: float) -> None:
    """One grid tab: what it tests and costs, its switch, then its heatmaps, verdict, notes and table."""
    spec, gcfg = GRIDS[axis], grid_of(cfg, axis)
    k, n = len(gcfg.values), gcfg.n_seeds
    cost = f", about {grid_estimated_seconds(gcfg):.0f} s of CPU here." if cfg.arch == "mlp" else "."
    st.markdown(f"{spec.claim} {k} values × {{BN, no norm}} × {n} seed(s) = **{2 * n * k} networks** "
                f"of {gcfg.base.steps} steps{cost}")  # fmt: skip
    widgets.toggle(STATE, spec.flag, f"Train the {spec.title} grid")
    if cfg.arch != "mlp":
        st.info("The stacked sweep engine trains MLPs only; pick an MLP preset for the grids.")
        return
    if not STATE[spec.flag] or common.run(compute_grid, gcfg, label=f"Training the {spec.title} grid…") is None:
        return
    view = grid_view(gcfg, target)
    if view.skipped:
        st.warning(view.skipped, icon=":material/warning:")
    common.chart(view.accuracy)
    common.chart(view.steps)
    st.markdown(view.verdict)
    if view.diverged:
        st.warning(view.diverged, icon=":material/trending_up:")
    common.dataframe(view.table, hide_index=True, column_config=GRID_COLUMNS)
    common.download_csv(view.table, f"grid_{axis}.csv", f"Download the {spec.title} grid (CSV)",
                        icon=":material/download:")  # fmt: skip


def render_backend_check(cfg: ComparisonConfig) -> None:
    """Train the BN net with both BN implementations and show how far apart the records are."""
    switches = common.row()
    widgets.toggle(STATE, "check", "Train the BN net with both backends", where=switches)
    widgets.toggle(STATE, "check64", "in float64 (exact arithmetic check)", where=switches)
    if not STATE["check"]:
        return
    ccfg = replace(cfg, backend="manual", dtype="float64" if STATE["check64"] else "float32")
    check = common.run(compute_backends, ccfg, label="Training BN with both backends…")
    common.need(check)
    common.chart(backend_spec(ccfg))
    columns = common.formats(check.diffs, "%.4f", max_abs_diff="%.2e")
    common.dataframe(check.diffs, hide_index=True, column_config=columns)
    st.markdown(check.verdict.text)
