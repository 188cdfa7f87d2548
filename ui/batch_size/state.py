"""Batch-Size Sensitivity: the page's typed state table and its presets."""

from __future__ import annotations

from bn_core.experiments.batch_size import POPULATIONS, BatchSizeSweepConfig
from ui.state import Field, PageState

__all__ = ["STATE", "POW2", "M_GRID", "LR_GRID", "EPOCH_GRID", "WIDTHS", "TOGGLES", "NON_IID_VARIANTS"]

POW2 = tuple(float(2**k) for k in range(12))  # 1 … 2048: batch sizes (floats: the URL snaps to this grid)
M_GRID = tuple(float(2**k) for k in range(3, 11))  # 8 … 1024: largest batch in the noise experiment
LR_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
EPOCH_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
WIDTHS = (16, 32, 48, 64, 96, 128)
TOGGLES = {"gn": "group", "ln": "layer", "plain": "none", "ghost": "ghost", "renorm": "renorm"}  # switch → variant
NON_IID_VARIANTS = ("batch", "group", "renorm")
_DEFAULT = BatchSizeSweepConfig()

_FIELDS = [
    Field("pop", "normal", "choice", choices=POPULATIONS, label="population"),
    Field("R", 4000, "int", 100, 20000, label="batches per size"),
    Field("m_max", 256.0, "float", 8, 1024, choices=M_GRID, label="largest batch m"),
    Field("q", 0.84, "float", 0.01, 0.99, label="tracked example's quantile"),
    Field("b_min", 2.0, "float", 1, 2048, choices=POW2, label="smallest batch"),
    Field("b_max", 64.0, "float", 1, 2048, choices=POW2, label="largest batch"),
    Field("gn", True, "bool", label="group norm"),
    Field("ln", True, "bool", label="layer norm"),
    Field("plain", True, "bool", label="no normalization"),
    Field("ghost", False, "bool", label="Ghost BN"),
    Field("renorm", False, "bool", label="Batch Renorm"),
    Field("train_eval", False, "bool", label="train-mode test"),
    Field("G", 8, "int", 1, 128, label="groups G"),
    Field("g", 4, "int", 1, 64, label="ghost batch g"),
    Field("r_max", 3.0, "float", 1.0, 10.0, label="r_max"),
    Field("d_max", 5.0, "float", 0.0, 10.0, label="d_max"),
    Field("seeds", _DEFAULT.n_seeds, "int", 1, 5, label="seeds"),
    Field("epochs", _DEFAULT.epochs, "float", 0.5, 10, choices=EPOCH_GRID, label="epochs"),
    Field("lr", _DEFAULT.lr, "float", LR_GRID[0], LR_GRID[-1], choices=LR_GRID, label="learning rate at B = 32"),
    Field("lr_rule", "linear", "choice", choices=("linear", "constant"), label="learning-rate rule"),
    Field("width", _DEFAULT.width, "choice", choices=WIDTHS, label="width"),
    Field("run", False, "bool", label="train the sweep"),
    Field("niid_b", 32.0, "float", 2, 256, choices=POW2[1:9], label="non-i.i.d. batch size"),
    Field("niid_run", False, "bool", label="train the non-i.i.d. comparison"),
]

_TRAINING = {"seeds": 3, "epochs": 3.0, "lr_rule": "linear", "lr": 0.05}
PRESETS = {
    "Class default: BN vs GN, LN, none": {
        "b_min": 2.0,
        "b_max": 64.0,
        **{"gn": True, "ln": True, "plain": True, "ghost": False, "renorm": False, "train_eval": False},
        **_TRAINING,
    },
    "Remedies at small batches": {
        "b_min": 2.0,
        "b_max": 64.0,
        **{"gn": True, "ln": False, "plain": False, "ghost": True, "renorm": True, "train_eval": True},
        **_TRAINING,
    },
    "Constant learning rate": {"lr_rule": "constant", "lr": 0.05},
    "Quick look: 1 seed, 1 epoch": {"seeds": 1, "epochs": 1.0},
    "Extremes: batch 1 to 1024": {"b_min": 1.0, "b_max": 1024.0, "ghost": False, "renorm": False},
}

STATE = PageState("batch", _FIELDS, presets=PRESETS)
