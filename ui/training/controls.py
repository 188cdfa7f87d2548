"""Training Comparison controls: the state table, presets, widgets, and the frozen configs they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import streamlit as st

from bn_core.data import DATASETS
from bn_core.experiments.training import ComparisonConfig, GridConfig, grid_config, n_layers, snapshot_steps
from bn_core.models import ACTIVATIONS, PLACEMENTS
from bn_core.train import FIG1_LR, FIG1_STEPS, FIG1_TARGET_ACC, OPTIMIZERS
from ui import common, widgets
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
GRID_TABS = {"Learning rate": "lr", "Init scale": "init_scale", "Depth": "depth"}  # section 5's tabs → grid axis
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
    "Bad initialization": "§3.3: the paper reports that BN makes training less sensitive to the scale of the "
    "weights. Here every weight starts 10× smaller than PyTorch's default.",
    "Deep sigmoid net, 10 layers": "Ten saturating layers: does any signal reach layer 1 (section 4's gradient "
    "norms)? 1,000 steps, so it takes longer.",
    "ReLU CNN on digits": "BatchNorm2d in a small conv net: statistics per channel, over the batch and every "
    "pixel position.",
}


def _fit_view(ps: PageState) -> None:
    """Keep the layer and the histogram steps legal for the current net (before their widgets are seeded).

    The layer is brought back into 1 … depth (the selectbox shows the value it lands on);
    each histogram step snaps to the nearest recorded snapshot.
    """
    cfg = ComparisonConfig(arch=ps["arch"], depth=int(ps["depth"]), steps=int(ps["steps"]))
    ps["layer"] = min(max(int(ps["layer"]), 1), n_layers(cfg))
    options = snapshot_steps(cfg)
    chosen = {min(options, key=lambda s: abs(s - float(x))) for x in ps["snaps"]}
    ps["snaps"] = sorted(chosen)[:4] or [options[0], options[len(options) // 2], options[-1]]


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
        Field("target", FIG1_TARGET_ACC, "float", 0.5, 0.97, choices=TARGET_CHOICES, label="target test accuracy"),
        Field("layer", 3, "int", 1, 10, label="layer"),
        Field("band", "unit", "choice", choices=("unit", "pre"), label="band over"),
        Field("snaps", (0.0, 100.0, 600.0), "floats", 0, 2000, max_len=4, label="histogram steps"),
        Field("hist", "pre", "choice", choices=("pre", "act"), label="histogram of"),
        Field("seeds", 3, "int", 1, 5, label="seeds per grid cell"),
        Field("gsteps", 300.0, "float", 100, 1000, choices=GRID_STEPS_CHOICES, label="grid steps"),
        Field("grid", "Learning rate", "choice", choices=tuple(GRID_TABS), label="grid tab"),
        Field("lr_grid", False, "bool", label="learning-rate grid"),
        Field("init_grid", False, "bool", label="init-scale grid"),
        Field("depth_grid", False, "bool", label="depth grid"),
        Field("check", False, "bool", label="manual vs torch check"),
        Field("check64", False, "bool", label="float64 check"),
    ],
    presets=PRESETS,
    on_load=_fit_view,
)


@dataclass(frozen=True)
class ViewSettings:
    """The display choices that do not change the training: target, layer, band kind, histogram."""

    target: float  # target test accuracy (a fraction)
    layer: int  # the layer of section 2 (1 … depth)
    band: Literal["unit", "pre"]  # one tracked unit or all units pooled
    snaps: tuple[int, ...]  # histogram steps of section 3
    quantity: Literal["pre", "act"]  # histogram of the layer input or its output


def _label(field: str) -> Callable[[str], str]:
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
        # One row of four columns, three controls down each (one block per column, not per cell:
        # every block is a message in every rerun of every session). Read across, the rows are
        # the choices, the scales, and the schedule and BN's own settings.
        c = st.columns(4)
        widgets.choice(STATE, "arch", "Architecture", fmt=_label("arch"), where=c[0])
        widgets.slider(STATE, "depth", "Hidden layers (MLP)", where=c[0])
        widgets.grid_slider(STATE, "batch", "Batch size", fmt="{:.0f}", where=c[0])
        widgets.choice(STATE, "data", "Dataset", where=c[1])
        widgets.grid_slider(STATE, "width", "Width (MLP)", fmt="{:.0f}", where=c[1])
        widgets.grid_slider(STATE, "steps", "Steps", fmt="{:.0f}", where=c[1])
        widgets.choice(STATE, "act", "Activation", where=c[2])
        widgets.grid_slider(STATE, "init", "Init scale (× default)", where=c[2])
        widgets.choice(STATE, "place", "BN placement", fmt=_label("place"), where=c[2])
        widgets.choice(STATE, "opt", "Optimizer", fmt=_label("opt"), where=c[3])
        widgets.grid_slider(STATE, "lr", "Learning rate", where=c[3])
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


def view_settings() -> ViewSettings:
    """The current display choices (read from the model, so any section can use them)."""
    band = STATE["band"] if STATE["band"] in ("unit", "pre") else "unit"
    quantity = STATE["hist"] if STATE["hist"] in ("pre", "act") else "pre"
    snaps = tuple(int(s) for s in STATE["snaps"])
    return ViewSettings(float(STATE["target"]), int(STATE["layer"]), band, snaps, quantity)


def layer_controls(cfg: ComparisonConfig) -> None:
    """Section 2: the layer (1 … depth: its options depend on the net) and band."""
    here, layers = common.row(), range(1, n_layers(cfg) + 1)
    widgets.choice(STATE, "layer", "Layer", options=layers, fmt=_layer_label, where=here)
    widgets.choice(STATE, "band", "Percentiles of", style="radio", fmt=_label("band"), where=here)


def hist_controls(cfg: ComparisonConfig) -> None:
    """Section 3: up to 4 snapshot steps (the options depend on the steps) and the quantity."""
    here = common.row()
    widgets.multiselect(STATE, "snaps", "Steps to compare (up to 4)", snapshot_steps(cfg), where=here, max_selections=4)
    widgets.choice(STATE, "hist", "Histogram of", style="radio", fmt=_label("hist"), where=here)


def grid_settings() -> None:
    here = common.row()
    widgets.slider(STATE, "seeds", "Seeds per grid cell", where=here)
    widgets.grid_slider(STATE, "gsteps", "Steps per network", fmt="{:.0f}", where=here)


def grid_of(cfg: ComparisonConfig, axis: str) -> GridConfig:
    """The grid ``axis`` of section 5 at the current grid settings."""
    return grid_config(cfg, axis, int(STATE["gsteps"]), int(STATE["seeds"]))
