"""Batch-Size Sensitivity, section 5: the non-i.i.d. comparison's control, config, description and chart spec."""

from __future__ import annotations

import altair as alt

from bn_core.experiments.batch_size import BatchSizeSweepConfig, NonIIDConfig, NonIIDResult
from ui import charts, widgets
from ui.batch_size.state import NON_IID_VARIANTS, STATE
from ui.batch_size.sweep import settings_for
from ui.sidebar import seed

__all__ = ["non_iid_controls", "non_iid_config", "non_iid_text", "non_iid_chart"]

ORDERS = {"shuffled": "shuffled", "class_sorted": "class-sorted"}


def non_iid_controls() -> None:
    widgets.grid_slider(STATE, "niid_b", "Batch size B for the comparison", fmt="{:.0f}")


def non_iid_config() -> NonIIDConfig:
    """BN, GN and Batch Renorm at one batch size; seeds, width and G from the sweep's controls."""
    sweep = BatchSizeSweepConfig(
        n_seeds=int(STATE["seeds"]), seed=seed(), width=int(STATE["width"]), settings=settings_for(NON_IID_VARIANTS)
    )
    return NonIIDConfig(variants=NON_IID_VARIANTS, batch_size=int(STATE["niid_b"]), sweep=sweep)


def non_iid_text(cfg: NonIIDConfig) -> str:
    return (
        f"With *class-sorted* batches each epoch is sorted by digit and cut into batches of B = {cfg.batch_size}, "
        "so a batch holds one digit (two where digits meet); the batches come in random order. Same networks, "
        f"seeds and number of steps as with shuffled batches: {cfg.epochs:g} epochs at lr = {cfg.lr:g} × B/32 "
        "(smaller than above: each class-sorted step pulls toward one digit, and only small steps average the "
        "digits out). Test error in eval mode, on the usual shuffled test set."
    )


def non_iid_chart(r: NonIIDResult) -> alt.LayerChart:
    """Eval-mode test error per normalization, shuffled vs class-sorted batches; whiskers: lowest-highest seed."""
    data = r.summary[r.summary["metric"] == "test_error"]
    data = data.assign(order=data["order"].map(ORDERS), **{c: data[c] * 100 for c in ("mean", "lo", "hi")})
    series = list(dict.fromkeys(data["series"]))
    tips = ["series:N", "order:N", alt.Tooltip("mean:Q", format=".1f"), "lo:Q", "hi:Q", "n:Q"]
    base = alt.Chart(data).encode(
        x=alt.X("order:N", title=None, sort=list(ORDERS.values()), axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("series:N", sort=series),
        color=alt.Color("series:N", title=None, scale=charts.method_scale(series)),
        tooltip=tips,
    )
    bars = base.mark_bar().encode(y=alt.Y("mean:Q", title="test error (%)"))
    whiskers = base.mark_errorbar(color="black").encode(y=alt.Y("lo:Q", title="test error (%)"), y2="hi:Q")
    return alt.layer(bars, whiskers).properties(height=260)
