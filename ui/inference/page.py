"""Train vs Inference page: its state table, the training controls, and the page-level words.

Every control is a URL parameter (``m``, ``lr``, ``B``, ``steps``, ``layer``, ``j``, ``keras``,
``n``, ``lab``, ``a``, ``b``, ``noise``, ``lag_lr``, ``fold``, plus the global ``seed``).
"""

from __future__ import annotations

import streamlit as st

from bn_core.experiments.inference import FOLD_ARCHS, MOMENTA, InferenceConfig, momentum_label
from ui import widgets
from ui.sidebar import seed
from ui.state import Field, PageState

DEFAULTS = InferenceConfig()
LR_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
N_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 450.0)  # 450 = the whole test set
LAB_KEYS = ("eval", "val", "finetune", "shift", "lag")  # the labs of section 3, in order (ui.inference.labs)
DEFAULT_LAB = "eval"


def _momentum_key(m: float | None) -> str:
    """The widget/URL text of a momentum: "0.1", …, "None". A selectbox cannot hold None as a value:
    Streamlit reads a None in session state as "nothing selected"."""
    return "None" if m is None else f"{m:g}"


MOMENTUM_KEYS = tuple(_momentum_key(m) for m in MOMENTA)
MOMENTUM_OF = dict(zip(MOMENTUM_KEYS, MOMENTA, strict=True))

STATE = PageState(
    "inference",
    [
        Field("m", _momentum_key(DEFAULTS.momentum), "choice", choices=MOMENTUM_KEYS, label="BN momentum"),
        Field("lr", DEFAULTS.lr, "float", LR_GRID[0], LR_GRID[-1], choices=LR_GRID, label="learning rate"),
        Field("B", DEFAULTS.batch_size, "int", 1, 256, label="batch size B"),
        Field("steps", DEFAULTS.steps, "int", 50, 600, label="training steps"),
        Field("layer", 1, "choice", choices=tuple(range(1, DEFAULTS.depth + 1)), label="BN layer"),
        Field("j", 0, "int", 0, DEFAULTS.width - 1, label="feature"),
        Field("keras", 0.99, "float", 0.0, 0.999, label="Keras momentum"),
        Field("n", 32.0, "float", 1, 450, choices=N_GRID, label="batch fed in both modes"),
        Field("lab", DEFAULT_LAB, "choice", choices=LAB_KEYS, label="lab"),
        Field("a", 1.0, "float", -1.0, 3.0, label="contrast"),
        Field("b", 0.5, "float", -1.0, 1.0, label="brightness"),
        Field("noise", 0.0, "float", 0.0, 1.0, label="noise σ"),
        Field("lag_lr", 3.0, "float", LR_GRID[0], LR_GRID[-1], choices=LR_GRID, label="high learning rate"),
        Field("fold", "mlp", "choice", choices=FOLD_ARCHS, label="network to fold"),
    ],
    presets={
        "Class default: PyTorch momentum 0.1": {"m": "0.1", "lr": 0.1, "B": 32, "steps": 300, "lab": "eval"},
        "Keras default 0.99 (= PyTorch 0.01)": {"m": "0.01", "lr": 0.1, "B": 32, "steps": 300},
        "Cumulative average (momentum=None)": {"m": "None", "lr": 0.1, "B": 32, "steps": 300},
        "Tiny batches (B = 4)": {"B": 4, "n": 4.0, "lab": "eval"},
        "Domain shift and AdaBN": {"lab": "shift", "a": 1.0, "b": 0.5, "noise": 0.0},
        "EMA lag at a high learning rate": {"m": "0.01", "lr": 0.1, "lab": "lag", "lag_lr": 3.0},
        "Fold the CNN": {"fold": "cnn"},
    },
)


def controls() -> None:
    """The preset picker and the four controls of the training run."""
    widgets.preset_picker(STATE)
    a, b, c, d = st.columns(4)
    widgets.choice(STATE, "m", "BN momentum (PyTorch)", fmt=lambda k: momentum_label(MOMENTUM_OF[k]), where=a)
    widgets.grid_slider(STATE, "lr", "Learning rate (SGD)", where=b)
    widgets.slider(STATE, "B", "Batch size B", where=c)
    widgets.slider(STATE, "steps", "Training steps", step=50, where=d)


def config() -> InferenceConfig:
    """The run the controls describe (a batch of 1 included: the sections decide what it means)."""
    return InferenceConfig(
        momentum=MOMENTUM_OF.get(STATE["m"], DEFAULTS.momentum),
        batch_size=int(STATE["B"]),
        lr=float(STATE["lr"]),
        steps=int(STATE["steps"]),
        seed=seed(),
    )


def unit_controls() -> tuple[int, int]:
    """The BN layer and unit the EMA chart and the two-mode table follow."""
    a, b = st.columns([1, 3])
    widgets.choice(STATE, "layer", "BN layer", style="radio", where=a)
    widgets.slider(STATE, "j", "Feature (unit) of that layer", where=b)
    return int(STATE["layer"]), int(STATE["j"])


TAKEAWAY = (
    "Train mode normalizes with the batch and updates an EMA; eval mode uses that EMA. Call `model.eval()` "
    "to predict, keep BN in eval mode when fine-tuning a frozen backbone, and recompute the statistics "
    "(precise BN, AdaBN) when the EMA is stale or the data has moved."
)

TRY_THIS = (
    "Pick the *Keras default 0.99* preset: the blue EMA trails the orange precise-BN points for many steps; the "
    "half-life table says how many.",
    "Set B = 4: the grey batch statistics scatter, σ²_B drops toward 3/4 of the population variance, and the "
    "train/eval gap of section 2 grows.",
    "Set B = 1: section 1 shows, with this network's numbers, why BN cannot train on one example; the other "
    "sections keep working on the network trained at B = 2.",
    "Choose momentum *None*: the EMA averages every batch since step 1, including those of the early weights, so "
    "it lags precise BN: compare the numbers under the chart and the test accuracy in the caption.",
    "In the domain-shift lab set contrast a = −1 (inverted digits): AdaBN fixes shifts of mean and scale, "
    "not a sign flip.",
)
