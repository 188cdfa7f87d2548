"""Multi-device page controls: its state table, the widgets and the frozen configs they make."""

from __future__ import annotations

import streamlit as st

from bn_core.distributed import MAX_WORLD
from bn_core.experiments.multi_device import ReplicaSweepConfig, StatsConfig
from ui import widgets
from ui.sidebar import seed
from ui.state import Field, PageState

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
        Field("epochs", 1.0, "float", 1, 3, choices=EPOCH_GRID, label="sweep epochs"),
    ],
    presets={
        "Class default: 2 ranks × 4 images": {"W": 2, "b": 4.0, "steps": DEFAULTS.steps},
        "Detection-like: 2 images per replica": {"W": 2, "b": 2.0, "steps": DEFAULTS.steps},
        "1 image per replica: only sync BN trains": {"W": 2, "b": 1.0, "steps": DEFAULTS.steps},
        # 60 steps: four ranks on two cores take turns (~50 ms a step here), and the lesson shows from the first
        "4 ranks × 2 images (oversubscribed cores)": {"W": 4, "b": 2.0, "steps": 60},
        "Large shards: 32 images per replica": {"W": 2, "b": 32.0, "steps": DEFAULTS.steps},
    },
)


def controls() -> None:
    """The launch's controls, above every section."""
    widgets.preset_picker(STATE)
    a, b, c = st.columns(3)
    widgets.slider(STATE, "W", "Ranks W (worker processes)", where=a)
    widgets.grid_slider(STATE, "b", "Images per replica b", fmt="{:.0f}", where=b)
    widgets.slider(STATE, "steps", "Training steps", step=10, where=c)


def layer_control() -> int:
    """Which BN layer section 1 shows; drawn before anything in the section can stop it."""
    widgets.choice(STATE, "layer", "BN layer", style="radio")
    return int(STATE["layer"])


def sweep_controls() -> bool:
    """Section 3's controls; drawn before the sweep runs, so a failed sweep keeps them. Returns the toggle."""
    a, b, c = st.columns([2, 1, 1], vertical_alignment="bottom")
    widgets.toggle(STATE, "sweep", "Run the sweep", where=a, help="Trains 4 sizes × 3 variants per seed")
    widgets.slider(STATE, "seeds", "Seeds", where=b)
    widgets.grid_slider(STATE, "epochs", "Epochs per run", fmt="{:.0f}", where=c)
    return bool(STATE["sweep"])


def stats_config() -> StatsConfig:
    return StatsConfig(
        world_size=int(STATE["W"]), images_per_replica=int(STATE["b"]), steps=int(STATE["steps"]), seed=seed()
    )


def sweep_config() -> ReplicaSweepConfig:
    return ReplicaSweepConfig(
        world_size=int(STATE["W"]), n_seeds=int(STATE["seeds"]), epochs=float(STATE["epochs"]), seed=seed()
    )
