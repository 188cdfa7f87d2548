"""Training Comparison page: its state table, presets, controls, cached experiments and chart builders."""

from __future__ import annotations

import math
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.data import DATASETS
from bn_core.experiments.training import (
    VARIANTS,
    BackendCheck,
    ComparisonConfig,
    ComparisonResult,
    GridConfig,
    GridResult,
    band_drift,
    band_frame,
    grid_config,
    grid_estimated_seconds,
    grid_summary,
    n_layers,
    run_backend_check,
    run_comparison,
    run_grid,
    snapshot_steps,
    steps_to_target,
)
from bn_core.models import ACTIVATIONS, PLACEMENTS
from bn_core.train import FIG1_LR, FIG1_STEPS, OPTIMIZERS
from ui import common, widgets
from ui.charts import PALETTE
from ui.sidebar import seed
from ui.state import Field, PageState

LR_CHOICES = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
              20.0, 30.0, 60.0, 100.0, 300.0, 1e3)  # fmt: skip
INIT_CHOICES = (0.01, 0.03, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
BATCH_CHOICES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
STEPS_CHOICES = (50.0, 100.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1000.0, 1500.0, 2000.0)
WIDTH_CHOICES = (8.0, 16.0, 32.0, 64.0, 100.0, 128.0, 256.0)
TARGET_CHOICES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97)
GRID_STEPS_CHOICES = (100.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1000.0)
DEFAULTS = ComparisonConfig()
COLORS = alt.Scale(domain=list(VARIANTS), range=PALETTE[:2])
NAMES = {
    "arch": {"mlp": "MLP (fully connected)", "cnn": "small CNN (BatchNorm2d)"},
    "opt": {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam"},
    "place": {"before": "before the nonlinearity (paper)", "after": "after the nonlinearity"},
    "backend": {"manual": "manual (bn_core)", "torch": "torch.nn"},
    "band": {"unit": "one unit (as in the paper)", "pre": "all units pooled"},
    "hist": {"pre": "layer input (pre-activation)", "act": "activation output"},
}

FIG1 = {
    "arch": "mlp",
    "data": "digits",
    "ill": False,
    "depth": 3,
    "width": 100.0,
    "act": "sigmoid",
    "place": "before",
    "init": 1.0,
    "opt": "sgd",
    "lr": FIG1_LR,
    "batch": 60.0,
    "steps": float(FIG1_STEPS),
    "layer": 3,
}
PRESETS = {
    "Ioffe & Szegedy 2015, Fig. 1": FIG1,
    "Higher learning rate ×5": {**FIG1, "lr": 5 * FIG1_LR},
    "Higher learning rate ×30": {**FIG1, "lr": 30 * FIG1_LR},
    "Bad initialization": {**FIG1, "init": 0.1},
    "Deep sigmoid net, 10 layers": {**FIG1, "depth": 10, "layer": 10, "steps": 1000.0},
    "ReLU CNN on digits": {**FIG1, "arch": "cnn", "act": "relu", "lr": 0.1, "layer": 2},
}

PRESET_NOTES = {  # what each preset tests; the page's numbers say how it came out
    "Ioffe & Szegedy 2015, Fig. 1": "Fig. 1 of the paper: does BN reach the target sooner, and do its layer inputs "
    "move less (section 2)?",
    "Higher learning rate ×5": "§4.2.1: the paper trained with BN at 5× and 30× the learning rate. Five times the "
    "Fig. 1 rate: which net still learns?",
    "Higher learning rate ×30": "Thirty times the Fig. 1 rate. Compare with ×5, then open the learning-rate grid "
    "(section 5) to see where each net's limit lies.",
    "Bad initialization": "§3.3: BN makes training less sensitive to the scale of the weights. Here every weight "
    "starts 10× smaller than PyTorch's default.",
    "Deep sigmoid net, 10 layers": "Ten saturating layers: does any signal reach layer 1 (section 4's gradient "
    "norms)? 1,000 steps, so it takes longer.",
    "ReLU CNN on digits": "BatchNorm2d in a small conv net: statistics per channel, over the batch and every "
    "pixel position.",
}

STATE = PageState(
    "training",
    [
        Field("arch", DEFAULTS.arch, "choice", choices=("mlp", "cnn"), label="architecture"),
        Field("data", DEFAULTS.dataset, "choice", choices=DATASETS, label="dataset"),
        Field("ill", False, "bool", label="ill-scaled inputs"),
        Field("depth", DEFAULTS.depth, "int", 1, 10, label="hidden layers"),
        Field("width", float(DEFAULTS.width), "float", 8, 256, choices=WIDTH_CHOICES, label="width"),
        Field("act", DEFAULTS.activation, "choice", choices=ACTIVATIONS, label="activation"),
        Field("place", DEFAULTS.placement, "choice", choices=PLACEMENTS, label="BN placement"),
        Field("init", DEFAULTS.init_scale, "float", 0.01, 100, choices=INIT_CHOICES, label="init scale"),
        Field("opt", DEFAULTS.optimizer, "choice", choices=OPTIMIZERS, label="optimizer"),
        Field("lr", DEFAULTS.lr, "float", 1e-4, 1e3, choices=LR_CHOICES, label="learning rate"),
        Field("batch", float(DEFAULTS.batch_size), "float", 1, 1024, choices=BATCH_CHOICES, label="batch size"),
        Field("steps", float(DEFAULTS.steps), "float", 50, 2000, choices=STEPS_CHOICES, label="steps"),
        Field("backend", DEFAULTS.backend, "choice", choices=("manual", "torch"), label="BN backend"),
        Field("target", 0.9, "float", 0.5, 0.97, choices=TARGET_CHOICES, label="target test accuracy"),
        Field("layer", 3, "int", 1, 10, label="layer"),
        Field("band", "unit", "choice", choices=("unit", "pre"), label="band over"),
        Field("snaps", (0.0, 100.0, 600.0), "floats", 0, 2000, max_len=4, label="histogram steps"),
        Field("hist", "pre", "choice", choices=("pre", "act"), label="histogram of"),
        Field("seeds", 3, "int", 1, 5, label="seeds per grid cell"),
        Field("gsteps", 300.0, "float", 100, 1000, choices=GRID_STEPS_CHOICES, label="grid steps"),
        Field("lr_grid", False, "bool", label="learning-rate grid"),
        Field("init_grid", False, "bool", label="init-scale grid"),
        Field("depth_grid", False, "bool", label="depth grid"),
        Field("check", False, "bool", label="manual vs torch check"),
        Field("check64", False, "bool", label="float64 check"),
    ],
    presets=PRESETS,
)


# -- cached computation ---------------------------------------------------------------


@st.cache_data(max_entries=32, show_spinner=False)
def compute(cfg: ComparisonConfig, _progress=None) -> ComparisonResult:
    return run_comparison(cfg, _progress)


@st.cache_data(max_entries=24, show_spinner=False)
def compute_grid(cfg: GridConfig, _progress=None) -> GridResult:
    return run_grid(cfg, _progress)


@st.cache_data(max_entries=16, show_spinner=False)
def compute_backends(cfg: ComparisonConfig, _progress=None) -> BackendCheck:
    return run_backend_check(cfg, _progress)


@st.cache_data(max_entries=64, show_spinner=False)
def curve_specs(cfg: ComparisonConfig, target: float) -> tuple[dict, dict]:
    """Loss and accuracy charts as Vega-Lite specs (building Altair charts costs more than the data)."""
    curves = compute(cfg).curves
    return loss_chart(curves).to_dict(), accuracy_chart(curves, target).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def bands_spec(cfg: ComparisonConfig, layer: int, which: str) -> dict:
    return bands_chart(band_frame(compute(cfg).layers, layer, which), layer, which).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def hist_spec(cfg: ComparisonConfig, steps: tuple[int, ...], quantity: str) -> dict:
    return hist_chart(compute(cfg).hist, steps, quantity, n_layers(cfg)).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def layer_specs(cfg: ComparisonConfig) -> tuple[dict, dict]:
    """Gradient-norm and saturation charts."""
    layers = compute(cfg).layers
    return grad_chart(layers).to_dict(), saturation_chart(layers, cfg.activation).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def grid_view(cfg: GridConfig, target: float) -> tuple[dict, pd.DataFrame]:
    """The grid's chart spec and its summary table for one target accuracy."""
    summary = grid_summary(compute_grid(cfg), target)
    return grid_chart(summary, cfg.axis, target).to_dict(), summary


@st.cache_data(max_entries=64, show_spinner=False)
def texts(cfg: ComparisonConfig, target: float, layer: int, which: str) -> tuple[pd.DataFrame, str, str, str]:
    """The summary table and the computed sentences (pandas work worth ~40 ms per rerun uncached)."""
    result = compute(cfg)
    return (
        summary_table(result, target, layer, which),
        speed_sentence(result, target),
        drift_sentence(result, layer, which),
        layer_sentence(result, cfg.activation),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def run_csv(cfg: ComparisonConfig) -> bytes:
    """Every record of both runs as CSV bytes (numbers only, no user text)."""
    return run_frame(compute(cfg)).to_csv(index=False).encode()


@st.cache_data(max_entries=16, show_spinner=False)
def backend_spec(cfg: ComparisonConfig) -> dict:
    return backend_chart(compute_backends(cfg).curves).to_dict()


# -- controls -----------------------------------------------------------------------


def _label(field: str):
    """A widget label function that maps a label to itself too: AppTest's ``select_index`` passes labels back."""
    return lambda value: NAMES[field].get(value, value)


def _layer_label(k: int | str) -> str:
    return k if isinstance(k, str) else f"hidden {k}"


def controls() -> ComparisonConfig:
    """Preset picker and every training control; returns the comparison's config."""
    a, b = st.columns([3, 2])
    widgets.preset_picker(STATE, "Preset (sets the controls below)", where=a)
    if STATE["preset"] in PRESET_NOTES:
        a.caption(PRESET_NOTES[STATE["preset"]])
    widgets.grid_slider(STATE, "target", "Target test accuracy", fmt="{:.0%}", where=b)
    with st.expander("Network, data and training", expanded=True):
        c = st.columns(4)
        widgets.choice(STATE, "arch", "Architecture", fmt=_label("arch"), where=c[0])
        widgets.choice(STATE, "data", "Dataset", where=c[1])
        widgets.choice(STATE, "act", "Activation", where=c[2])
        widgets.choice(STATE, "opt", "Optimizer", fmt=_label("opt"), where=c[3])
        c = st.columns(4)
        widgets.slider(STATE, "depth", "Hidden layers (MLP)", where=c[0])
        widgets.grid_slider(STATE, "width", "Width (MLP)", fmt="{:.0f}", where=c[1])
        widgets.grid_slider(STATE, "init", "Init scale (× default)", where=c[2])
        widgets.grid_slider(STATE, "lr", "Learning rate", where=c[3])
        c = st.columns(4)
        widgets.grid_slider(STATE, "batch", "Batch size", fmt="{:.0f}", where=c[0])
        widgets.grid_slider(STATE, "steps", "Steps", fmt="{:.0f}", where=c[1])
        widgets.choice(STATE, "place", "BN placement", fmt=_label("place"), where=c[2])
        widgets.choice(STATE, "backend", "BN backend", fmt=_label("backend"), where=c[3])
        widgets.toggle(STATE, "ill", "Ill-scaled inputs (feature j × a factor in 1 … 1000)")
    return config()


def config() -> ComparisonConfig:
    """The comparison the controls describe; MLP-only fields stay at their defaults for the CNN (one cache key)."""
    mlp = STATE["arch"] == "mlp"
    return ComparisonConfig(
        dataset=STATE["data"],
        ill_scaled=bool(STATE["ill"]),
        arch=STATE["arch"],
        depth=int(STATE["depth"]) if mlp else DEFAULTS.depth,
        width=int(STATE["width"]) if mlp else DEFAULTS.width,
        activation=STATE["act"],
        placement=STATE["place"],
        init_scale=float(STATE["init"]),
        optimizer=STATE["opt"],
        lr=float(STATE["lr"]),
        batch_size=int(STATE["batch"]),
        steps=int(STATE["steps"]),
        backend=STATE["backend"],
        seed=seed(),
    )


def fit_view(cfg: ComparisonConfig) -> None:
    """Keep the layer and the histogram steps legal for this config (before their widgets are drawn)."""
    STATE["layer"] = min(max(int(STATE["layer"]), 1), n_layers(cfg))
    options = snapshot_steps(cfg)
    chosen = {min(options, key=lambda s: abs(s - float(x))) for x in STATE["snaps"]}
    STATE["snaps"] = sorted(chosen)[:4] or [options[0], options[len(options) // 2], options[-1]]


def layer_controls(cfg: ComparisonConfig) -> tuple[int, str]:
    a, b = st.columns(2)
    a.selectbox("Layer", range(1, n_layers(cfg) + 1), key=STATE.key("layer"), format_func=_layer_label)
    widgets.choice(STATE, "band", "Percentiles of", style="radio", fmt=_label("band"), where=b)
    return int(STATE["layer"]), STATE["band"]


def hist_controls(cfg: ComparisonConfig) -> tuple[tuple[int, ...], str]:
    a, b = st.columns([3, 2])
    a.multiselect("Steps to compare (up to 4)", snapshot_steps(cfg), key=STATE.key("snaps"), max_selections=4)
    widgets.choice(STATE, "hist", "Histogram of", style="radio", fmt=_label("hist"), where=b)
    return tuple(int(s) for s in STATE["snaps"]), STATE["hist"]


# -- sentences and tables -----------------------------------------------------------


def _pct(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def summary_table(result: ComparisonResult, target: float, layer: int, which: str) -> pd.DataFrame:
    """One row per variant: fate, final accuracies, steps to the target, and the Fig. 1 band drift."""
    table = result.summary.set_index("variant")
    reached = steps_to_target(result.curves, target)
    steps = reached.reindex(table.index)
    table[f"steps to {target:.0%} test acc"] = ["not reached" if pd.isna(s) else str(int(s)) for s in steps]
    table[f"band drift, layer {layer}"] = band_drift(result.layers, layer, which).reindex(table.index)
    return table.drop(columns=["diverged_at"]).reset_index()


SUMMARY_COLUMNS = {
    "final_test_acc": st.column_config.NumberColumn("final test acc", format="percent"),
    "final_train_acc": st.column_config.NumberColumn("final train acc", format="percent"),
    "final_loss": st.column_config.NumberColumn("final batch loss", format="%.4f"),
    "steps_run": st.column_config.NumberColumn("steps run"),
}


def divergence_warnings(result: ComparisonResult) -> None:
    for row in result.summary.itertuples():
        if row.diverged_at is not None and not pd.isna(row.diverged_at):
            st.warning(
                f"**{row.variant}: diverged at step {int(row.diverged_at)}**: its loss became NaN or infinite, "
                "so its curves stop there. Lower the learning rate or the init scale.",
                icon="💥",
            )


def speed_sentence(result: ComparisonResult, target: float) -> str:
    """What the curves say about speed, in words, with the computed numbers."""
    reached = steps_to_target(result.curves, target)
    final = result.summary.set_index("variant")["final_test_acc"]
    parts = []
    for variant in VARIANTS:
        step = reached.get(variant, pd.NA)
        got = (
            f"reached {target:.0%} test accuracy after **{int(step)}** steps"
            if not pd.isna(step)
            else (f"did **not** reach {target:.0%} in {result.config.steps} steps")
        )
        parts.append(f"**{variant}** {got} (final {_pct(final.get(variant, math.nan))})")
    return "; ".join(parts) + "."


def drift_sentence(result: ComparisonResult, layer: int, which: str) -> str:
    drift = band_drift(result.layers, layer, which)
    bn, plain = drift.get(VARIANTS[0], math.nan), drift.get(VARIANTS[1], math.nan)
    if math.isnan(bn) or math.isnan(plain) or min(bn, plain) <= 0:
        return ""
    who, ratio = ("without", plain / bn) if plain >= bn else ("with", bn / plain)
    return (
        f"Average distance of the 15/50/85 % percentiles from where they started: **{bn:.3g}** with BN, "
        f"**{plain:.3g}** without: {ratio:.1f}× more movement {who} BN."
    )


def layer_sentence(result: ComparisonResult, activation: str) -> str:
    """Saturation (or dead ReLUs) and the first layer's gradient, averaged over training, in words."""
    metric = "zero_frac" if activation == "relu" else "saturation"
    what = "ReLU outputs exactly 0" if activation == "relu" else "saturated outputs"
    layers = result.layers
    sat = layers[layers["metric"] == metric].groupby("variant")["value"].mean()
    grad = layers[(layers["metric"] == "grad_norm") & (layers["layer"] == 1)].groupby("variant")["value"].median()
    parts = [f"**{v}** {_pct(sat.get(v, math.nan))}" for v in VARIANTS]
    grads = [f"**{v}** {grad[v]:.2g}" for v in VARIANTS if v in grad]
    text = f"Share of {what}, averaged over layers and training: " + ", ".join(parts) + "."
    return text + (f" Median gradient norm of layer 1: {', '.join(grads)}." if grads else "")


def run_frame(result: ComparisonResult) -> pd.DataFrame:
    """Every record of both runs in one long table, for the CSV download."""
    curves = result.curves.assign(layer=pd.NA)[["step", "variant", "layer", "metric", "value"]]
    return pd.concat([curves, result.layers], ignore_index=True)


# -- grids --------------------------------------------------------------------------

GRIDS = {  # axis → (state flag, title, what it shows)
    "lr": ("lr_grid", "learning rate", "Higher learning rates: the paper's BN-x5 and BN-x30 (§4.2.1)."),
    "init_scale": ("init_grid", "init scale", "Less sensitivity to initialization (§3.3)."),
    "depth": ("depth_grid", "depth", "Deeper sigmoid nets become trainable."),
}


GRID_COLUMNS = {
    "value": st.column_config.NumberColumn("value", format="%g"),
    **{
        c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
        for c in ("mean_acc", "min_acc", "max_acc")
    },
    "steps_to_target": st.column_config.NumberColumn("median steps to target", format="%d"),
    "first_diverged_at": st.column_config.NumberColumn("first diverged at", format="%d"),
}


def grid_settings() -> None:
    a, b = st.columns(2)
    widgets.slider(STATE, "seeds", "Seeds per grid cell", where=a)
    widgets.grid_slider(STATE, "gsteps", "Steps per network", fmt="{:.0f}", where=b)


def grid_section(axis: str, cfg: ComparisonConfig) -> None:
    """Toggle, progress bar, chart, divergence notes and table of one grid."""
    flag, title, claim = GRIDS[axis]
    n = int(STATE["seeds"])
    gcfg = grid_config(cfg, axis, int(STATE["gsteps"]), n)
    k = len(gcfg.values)
    st.markdown(
        f"{claim} {k} values × {{BN, no BN}} × {n} seed(s) = **{2 * n * k} networks** of {gcfg.base.steps} steps"
        + (f", about {grid_estimated_seconds(gcfg):.0f} s of CPU here." if cfg.arch == "mlp" else ".")
    )
    widgets.toggle(STATE, flag, f"Train the {title} grid")
    if cfg.arch != "mlp":
        st.info("The batched sweep engine stacks MLPs only; pick an MLP preset for the grids.")
        return
    if not STATE[flag]:
        return
    if common.run(compute_grid, gcfg, label=f"Training the {title} grid…") is None:
        return
    spec, summary = grid_view(gcfg, float(STATE["target"]))
    st.vega_lite_chart(spec, width="stretch")
    cells = [
        f"{r.variant} at {title} {r.value:g}: {r.diverged} of {r.n_seeds} (first at step {r.first_diverged_at})"
        for r in summary[summary["diverged"] > 0].itertuples()
    ]
    if cells:
        st.warning("Diverged runs, marked ✕ in the grid: " + "; ".join(cells) + ".", icon="💥")
    st.dataframe(summary, hide_index=True, column_config=GRID_COLUMNS)
    common.download_csv(summary, f"grid_{axis}.csv", f"⬇️ Download the {title} grid (CSV)")


# -- charts -------------------------------------------------------------------------


def _legend_pick(field: str = "variant") -> alt.Parameter:
    return alt.selection_point(fields=[field], bind="legend")


def loss_chart(curves: pd.DataFrame) -> alt.Chart:
    loss = curves[curves["metric"] == "loss"]
    pick = _legend_pick()
    return (
        alt.Chart(loss, title="Training loss (every step)")
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="cross-entropy (log scale)", scale=alt.Scale(type="log")),
            color=alt.Color("variant:N", scale=COLORS, title=None),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", title="loss", format=".4f")],
        )
        .add_params(pick)
        .properties(height=260)
    )


def accuracy_chart(curves: pd.DataFrame, target: float) -> alt.LayerChart:
    acc = curves[curves["metric"].isin(["train_acc", "test_acc"])].replace(
        {"metric": {"train_acc": "train", "test_acc": "test"}}
    )
    pick = _legend_pick()
    lines = (
        alt.Chart(acc)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("variant:N", scale=COLORS, title=None),
            strokeDash=alt.StrokeDash("metric:N", title="set", sort=["test", "train"]),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "metric:N", "step:Q", alt.Tooltip("value:Q", format=".1%")],
        )
        .add_params(pick)
    )
    rule = alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(color="#868E96", strokeDash=[2, 2])
    rule = rule.encode(y="target:Q", tooltip=[alt.Tooltip("target:Q", format=".0%", title="target")])
    return alt.layer(lines, rule, title="Train and test accuracy (eval mode)").properties(height=260)


def bands_chart(bands: pd.DataFrame, layer: int, which: str) -> alt.FacetChart:
    base = alt.Chart(bands).encode(x=alt.X("step:Q", title="step"))
    tips = ["variant:N", "step:Q", *(alt.Tooltip(f"p{q}:Q", format=".3f", title=f"{q} %") for q in (15, 50, 85))]
    band = base.mark_area(opacity=0.3).encode(
        y=alt.Y("p15:Q", title=f"layer {layer} input"),
        y2="p85:Q",
        color=alt.Color("variant:N", scale=COLORS, legend=None),
    )
    median = base.mark_line(point=True).encode(
        y="p50:Q", color=alt.Color("variant:N", scale=COLORS, legend=None), tooltip=tips
    )
    what = "one unit" if which == "unit" else "all units"
    return (
        alt.layer(band, median)
        .properties(width=330, height=230)
        .facet(column=alt.Column("variant:N", title=f"15 / 50 / 85 % percentiles of {what}", sort=list(VARIANTS)))
    )


def hist_chart(hist: pd.DataFrame, steps: tuple[int, ...], quantity: str, layers: int) -> alt.FacetChart:
    data = hist[(hist["quantity"] == quantity) & hist["step"].isin(steps)]
    width = max(70, min(170, 760 // max(layers, 1)))
    x_title = "layer input" if quantity == "pre" else "activation output"
    return (
        alt.Chart(data)
        .mark_bar(opacity=0.5, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=x_title),
            x2="bin_end:Q",
            y=alt.Y("share:Q", title="share", stack=None, axis=alt.Axis(format="%")),
            color=alt.Color("step:O", title="step", scale=alt.Scale(scheme="viridis")),
            tooltip=[
                "variant:N",
                "layer:O",
                "step:O",
                alt.Tooltip("bin_start:Q", format=".3g", title="from"),
                alt.Tooltip("bin_end:Q", format=".3g", title="to"),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(width=width, height=110)
        .facet(
            row=alt.Row("variant:N", title=None, sort=list(VARIANTS)),
            column=alt.Column("layer:O", title="hidden layer"),
        )
        .resolve_scale(x="independent", y="independent")
    )


def _per_layer(layers: pd.DataFrame, metric: str, title: str, log: bool, fmt: str) -> alt.FacetChart:
    data = layers[(layers["metric"] == metric) & (layers["step"] > (0 if metric == "grad_norm" else -1))]
    pick = _legend_pick("layer")
    scale = alt.Scale(type="log") if log else alt.Scale(domain=[0, 1])
    return (
        alt.Chart(data)
        .mark_line(point=True, strokeWidth=1.5)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("value:Q", title=title, scale=scale, axis=alt.Axis(format=fmt)),
            color=alt.Color("layer:O", title="layer", scale=alt.Scale(scheme="viridis")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=fmt, title=title)],
        )
        .add_params(pick)
        .properties(width=330, height=200)
        .facet(column=alt.Column("variant:N", title=None, sort=list(VARIANTS)))
    )


def grad_chart(layers: pd.DataFrame) -> alt.FacetChart:
    return _per_layer(layers, "grad_norm", "‖∂L/∂W‖ (log)", log=True, fmt="~g")


def saturation_chart(layers: pd.DataFrame, activation: str) -> alt.FacetChart:
    metric = "zero_frac" if activation == "relu" else "saturation"
    title = "outputs exactly 0" if activation == "relu" else "saturated outputs"
    return _per_layer(layers, metric, title, log=False, fmt=".0%")


def grid_chart(summary: pd.DataFrame, axis: str, target: float) -> alt.VConcatChart:
    """Two heatmaps, axis value × {BN, no BN}: mean final test accuracy, and median steps to the target."""
    data = summary.assign(
        acc_text=[_acc_label(r) for r in summary.itertuples()],
        steps_text=[_steps_label(r) for r in summary.itertuples()],
        label=summary["value"].map("{:g}".format),
    )
    order = [f"{v:g}" for v in sorted(summary["value"].unique())]
    x = alt.X("label:O", title=axis.replace("_", " "), sort=order, axis=alt.Axis(labelAngle=0))
    y = alt.Y("variant:N", title=None, sort=list(VARIANTS))
    tips = [
        "variant:N",
        alt.Tooltip("label:N", title=axis),
        alt.Tooltip("mean_acc:Q", format=".1%", title="mean final test acc"),
        alt.Tooltip("min_acc:Q", format=".1%", title="worst seed"),
        alt.Tooltip("max_acc:Q", format=".1%", title="best seed"),
        alt.Tooltip("steps_to_target:Q", title=f"median steps to {target:.0%}"),
        alt.Tooltip("reached:Q", title="seeds that reached it"),
        alt.Tooltip("diverged:Q", title="seeds diverged"),
    ]
    base = alt.Chart(data).encode(x=x, y=y, tooltip=tips).properties(width=alt.Step(76), height=alt.Step(34))
    valid = "isValid(datum.mean_acc) && datum.diverged == 0"
    color = alt.Color("mean_acc:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), legend=None)
    acc = base.transform_filter(valid).mark_rect(stroke="white").encode(color=color)
    diverged = base.transform_filter(f"!({valid})").mark_rect(stroke="white", color="#FFC9C9")
    acc_text = base.mark_text(fontSize=12).encode(
        text="acc_text:N", color=alt.condition("datum.mean_acc > 0.6", alt.value("white"), alt.value("black"))
    )
    steps = base.mark_rect(stroke="white", color="#E9ECEF") + base.mark_text(fontSize=12).encode(text="steps_text:N")
    return alt.vconcat(
        (acc + diverged + acc_text).properties(title="Final test accuracy (mean over seeds; ✕ = diverged)"),
        steps.properties(title=f"Steps to {target:.0%} test accuracy (median over the seeds that got there)"),
    )


def _acc_label(r) -> str:
    if r.diverged == r.n_seeds:
        return "✕ diverged"
    mark = f" ✕{r.diverged}" if r.diverged else ""
    return f"{r.mean_acc:.0%}{mark}"


def _steps_label(r) -> str:
    if r.diverged == r.n_seeds:
        return "✕"
    if r.reached == 0:
        return "not reached"
    return f"{r.steps_to_target:.0f} ({r.reached}/{r.n_seeds})"


def backend_chart(curves: pd.DataFrame) -> alt.Chart:
    loss = curves[curves["metric"] == "loss"]
    pick = _legend_pick()
    return (
        alt.Chart(loss, title="Training loss: manual BN vs torch BN")
        .mark_line(strokeWidth=1.5)
        .encode(
            x="step:Q",
            y=alt.Y("value:Q", title="loss (log)", scale=alt.Scale(type="log")),
            color=alt.Color("variant:N", title=None),
            strokeDash=alt.StrokeDash("variant:N", legend=None),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", format=".6f")],
        )
        .add_params(pick)
        .properties(height=220)
    )


# -- manual vs torch ----------------------------------------------------------------


def backend_section(cfg: ComparisonConfig) -> None:
    """Train the BN net with both BN implementations and show how far apart the records are."""
    a, b = st.columns([3, 2])
    widgets.toggle(STATE, "check", "Train the BN net with both backends", where=a)
    widgets.toggle(STATE, "check64", "in float64 (exact arithmetic check)", where=b)
    if not STATE["check"]:
        return
    ccfg = replace(cfg, backend="manual", dtype="float64" if STATE["check64"] else "float32")
    check = common.run(compute_backends, ccfg, label="Training BN with both backends…")
    if check is None:
        return
    st.vega_lite_chart(backend_spec(ccfg), width="stretch")
    st.dataframe(check.diffs.style.format({"max_abs_diff": "{:.2e}"}), hide_index=True)
    worst = check.diffs["max_abs_diff"].max()
    st.markdown(
        f"Largest difference between the two backends over {ccfg.steps} steps in {ccfg.dtype}: **{worst:.2e}**. "
        + _backend_verdict(ccfg.dtype, worst)
    )


def _backend_verdict(dtype: str, worst: float) -> str:
    """What the measured difference means; the claim depends on the number, not on the setting alone."""
    if dtype == "float64" and worst < 1e-9:
        return "In float64 the two agree to rounding: the hand-written forward and backward are the same function."
    if dtype == "float64":
        return "That is more than float64 rounding: the two implementations differ here."
    return (
        "In float32 the two round differently (they sum in different orders). Those differences start in the "
        "last digits, and training amplifies them step by step, more in a long or chaotic run. Turn on float64: "
        "if the implementations are the same function, the differences shrink to rounding."
    )
