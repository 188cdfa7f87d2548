"""Batch-Size Sensitivity, sections 2–3: the sweep controls, its config, the chart spec and the table.

The "BN, train-mode test" switch only shows or hides a series: every sweep result
holds BN's train-mode test error (the same networks, tested on batches of B), so the
switch never retrains and BN's own curve cannot move with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.batch_size import (
    PAPER_TABLE,
    TRAIN_MODE_SERIES,
    BatchSizeSweepConfig,
    BatchSizeSweepResult,
    NormSettings,
    check_sweep,
)
from bn_core.experiments.batch_size.verdicts import epochs
from ui import charts, widgets
from ui.batch_size.state import STATE, TOGGLES
from ui.sidebar import seed

__all__ = [
    "CheckedSweep",
    "sweep_controls",
    "sweep_config",
    "checked_sweep_config",
    "settings_for",
    "sweep_intro",
    "lr_caption",
    "sweep_chart",
    "sweep_table",
    "paper_table",
    "REMEDIES_TEXT",
    "SWEEP_CAPTION",
]

SWITCHES = (
    ("gn", "Group Norm"),
    ("ln", "Layer Norm"),
    ("plain", "No norm"),
    ("ghost", "Ghost BN"),
    ("renorm", "Batch Renorm"),
    ("train_eval", "BN, train-mode test"),
)
SWEEP_CAPTION = "Lines: mean over seeds; bars: lowest to highest seed. Click a legend entry to highlight."
REMEDIES_TEXT = """
- **Ghost BN** (Hoffer et al. 2017): the *normalization* batch g is separate from the *optimization* batch B;
  at B ≤ g it is plain BN.
- **Batch Renorm** (Ioffe 2017): x̂ = (x − μ_B)/σ_B · r + d, with r = clip(σ_B/σ, 1/r_max, r_max) and
  d = clip((μ_B − μ)/σ, −d_max, d_max) held constant in the backward pass. Unclipped, training normalizes with
  the running μ, σ, exactly as inference does. r_max = 1, d_max = 0 is plain BN.
- **Group Norm** (Wu & He 2018): statistics over groups of units within one example, so no statistic depends on
  the other examples of the batch.
- **Train-mode test**: the same BN networks, tested with the statistics of test batches of B (what they saw in
  training) instead of the running averages. The gap between the two is BN's train/test inconsistency.
"""


@dataclass(frozen=True)
class CheckedSweep:
    """The sweep the controls describe, or why it cannot run (checked before any training)."""

    config: BatchSizeSweepConfig | None
    error: str | None


def sweep_controls() -> None:
    """Preset, training settings and the curve switches. A change waits for a click to train (unless cached)."""
    widgets.preset_picker(STATE)
    a, b, c, d = st.columns(4)  # one layout block: every column is a message on every rerun of every session
    widgets.grid_slider(STATE, "b_min", "Smallest batch B", fmt="{:.0f}", where=a)
    widgets.grid_slider(STATE, "lr", "Learning rate at B = 32", fmt="{:g}", where=a)
    widgets.grid_slider(STATE, "b_max", "Largest batch B", fmt="{:.0f}", where=b)
    rule_help = "linear: lr × B/32 at batch B (Goyal et al. 2017); constant: the same lr at every B"
    widgets.choice(STATE, "lr_rule", "Learning-rate rule", style="radio", where=b, help=rule_help)
    widgets.slider(STATE, "seeds", "Seeds per point", where=c, help="Seeds s, s+1, … from the global seed s")
    widgets.choice(STATE, "width", "Hidden units per layer", where=c)
    widgets.grid_slider(STATE, "epochs", "Epochs (every B)", fmt="{:g}", where=d)
    widgets.number(STATE, "G", "Groups G (group norm)", where=d)
    st.markdown("**Curves on the chart** (BN is always on)")
    plain, ghost, renorm = st.columns(3)  # each remedy's settings under its switch
    for name, label in SWITCHES:
        widgets.toggle(STATE, name, label, where={"ghost": ghost, "renorm": renorm}.get(name, plain))
    # Always drawn (disabled when unused), so the controls keep their place and their value.
    widgets.number(STATE, "g", "Ghost BN: ghost batch g", where=ghost, disabled=not STATE["ghost"])
    widgets.slider(STATE, "r_max", "Batch Renorm: r_max", step=0.1, where=renorm, disabled=not STATE["renorm"])
    widgets.slider(STATE, "d_max", "Batch Renorm: d_max", step=0.1, where=renorm, disabled=not STATE["renorm"])


def _batch_sizes() -> tuple[int, ...]:
    lo, hi = int(STATE["b_min"]), int(STATE["b_max"])
    if lo > hi:
        raise ValueError(f"The smallest batch ({lo}) is larger than the largest ({hi}): swap them.")
    return tuple(2**k for k in range(int(math.log2(lo)), int(math.log2(hi)) + 1))


def settings_for(variants: tuple[str, ...]) -> NormSettings:
    """Only the settings a chosen variant uses enter the config, so unused controls do not split the cache."""
    default = NormSettings()
    return NormSettings(
        groups=int(STATE["G"]) if "group" in variants else default.groups,
        ghost_batch=int(STATE["g"]) if "ghost" in variants else default.ghost_batch,
        r_max=float(STATE["r_max"]) if "renorm" in variants else default.r_max,
        d_max=float(STATE["d_max"]) if "renorm" in variants else default.d_max,
    )


def sweep_config() -> BatchSizeSweepConfig:
    """The sweep the controls describe; ValueError for an inverted batch range."""
    variants = ("batch", *(v for name, v in TOGGLES.items() if STATE[name]))
    return BatchSizeSweepConfig(
        variants=variants,
        batch_sizes=_batch_sizes(),
        n_seeds=int(STATE["seeds"]),
        seed=seed(),
        epochs=float(STATE["epochs"]),
        lr=float(STATE["lr"]),
        lr_rule=STATE["lr_rule"] if STATE["lr_rule"] in ("linear", "constant") else "linear",
        width=int(STATE["width"]),
        settings=settings_for(variants),
    )


def checked_sweep_config() -> CheckedSweep:
    """The sweep config, or the user-facing reason it cannot run."""
    try:
        cfg = sweep_config()
        check_sweep(cfg)
    except ValueError as err:
        return CheckedSweep(None, str(err))
    return CheckedSweep(cfg, None)


def sweep_intro(cfg: BatchSizeSweepConfig) -> str:
    optimizer = {"momentum": "SGD (momentum 0.9)", "sgd": "plain SGD", "adam": "Adam"}[cfg.optimizer]
    activation = {"relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid"}[cfg.activation]
    return (
        f"A {cfg.depth}-hidden-layer {activation} MLP ({cfg.width} units per layer) on the 8×8 digits, trained "
        f"with {optimizer} at every batch size B, **the same {epochs(cfg.epochs)}** for each B (small batches take "
        f"more steps), seeds s, s+1, … from the global seed s = {cfg.seed}. BN is tested with its running "
        "statistics (eval mode) unless stated."
    )


def lr_caption(cfg: BatchSizeSweepConfig) -> str:
    rule = "lr × B/32 (linear scaling)" if cfg.lr_rule == "linear" else f"{cfg.lr:g} at every B (constant)"
    return f"Learning rate: **{rule}**. Change it with the learning-rate rule above."


def _shown(s: BatchSizeSweepResult, train_mode: bool) -> pd.DataFrame:
    errors = s.summary[s.summary["metric"].str.startswith("test_error")]
    return errors if train_mode else errors[errors["series"] != TRAIN_MODE_SERIES]


def sweep_chart(s: BatchSizeSweepResult, train_mode: bool) -> alt.LayerChart:
    """Test error vs B: mean over seeds (line), lowest-highest seed (bar); BN's train-mode test dashed."""
    data = _shown(s, train_mode)
    data = data.assign(**{col: data[col] * 100 for col in ("mean", "lo", "hi")})
    color = alt.Color("series:N", title=None, scale=charts.method_scale(list(dict.fromkeys(data["series"]))))
    x = alt.X("batch_size:Q", title="batch size B (log scale)", scale=alt.Scale(type="log", base=2))
    y = alt.Y("lo:Q", title="test error (%)")
    bars = alt.Chart(data).mark_errorbar(thickness=2).encode(x=x, y=y, y2="hi:Q", color=color)
    lines = charts.lines(
        data,
        x="batch_size",
        y="mean",
        color="series",
        x_title="batch size B (log scale)",
        y_title="test error (%)",
        points=True,
        extra_tooltips=["lo:Q", "hi:Q", "n:Q", "n_diverged:Q"],
    ).encode(
        x=x,
        color=color,
        strokeDash=alt.condition(f"datum.series == '{TRAIN_MODE_SERIES}'", alt.value([6, 4]), alt.value([1, 0])),
    )
    return alt.layer(bars, lines).properties(height=320)


def sweep_table(s: BatchSizeSweepResult, train_mode: bool) -> pd.DataFrame:
    """Mean test error (%) per batch size and series, with each batch size's steps and learning rate."""
    table = _shown(s, train_mode).pivot_table(index="batch_size", columns="series", values="mean", sort=False) * 100
    return table.round(1).join(s.schedule.set_index("batch_size")[["steps", "lr"]])


def paper_table() -> pd.DataFrame:
    return PAPER_TABLE.rename(columns={"images_per_gpu": "images per GPU", "BN": "BN error %", "GN": "GN error %"})
