"""Why BN Works: the page's state table and presets, the lazy tabs, and what every tab's charts share.

The tabs are lazy (``st.tabs(..., on_change="rerun")``): only the open tab's code runs, so
a student on the default tab pays only for the default experiment. The open tab is a
state field, so it round-trips through the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.why import ALPHA_GRID, BN, NO_NORM, NOISY_BN, NetOutcome
from bn_core.experiments.why.ics import ICSConfig
from bn_core.experiments.why.jacobian import JacobianConfig
from bn_core.experiments.why.landscape import LandscapeConfig
from bn_core.experiments.why.noisy import NoisyConfig
from bn_core.experiments.why.scale import ScaleConfig
from bn_core.models import ACTIVATIONS, MAX_DEPTH
from ui import present
from ui.charts import method_color
from ui.state import Field, PageState

INTRO = """
Why does batch norm help? **Ioffe & Szegedy (2015)** said: it reduces *internal covariate shift* (ICS), the
drift of each layer's input distribution while the layers below it learn. **Santurkar et al. (2018)** tested
that story and rejected it: BN helps, they argue, because it makes the loss landscape *smoother*, so
gradients stay predictive and larger steps are safe. Two more claims circulate: BN makes a layer
*scale-invariant*, and it keeps the layer Jacobian's singular values near 1. None of these is settled by
authority. Each tab below turns one claim into an experiment on real networks (digits, trained here) and
prints what this run measured. Judge for yourself; the global seed in the sidebar reruns everything.
"""
TABS = ("Noisy BN", "ICS", "Landscape", "Scale invariance", "Jacobians")
NOISY_LR = (0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)
NET_LR = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0)
EPS_GRID = (1e-12, 1e-8, 1e-5, 1e-3)
WIDTHS = (8, 16, 32, 64)
NOISY, ICS, LAND, SCALE, JAC = NoisyConfig(), ICSConfig(), LandscapeConfig(), ScaleConfig(), JacobianConfig()
VARIANT_ORDER = (BN, NO_NORM, NOISY_BN)
NOISY_COLOR = "#AE3EC9"  # noisy BN is none of the app's methods: a colour none of them uses

STATE = PageState(
    "why",
    [
        Field("tab", TABS[0], "choice", choices=TABS, label="tab"),
        Field("n_mu", NOISY.n_mu, "float", 0.0, 5.0, label="noise mean range n_μ"),
        Field("n_sigma", NOISY.n_sigma, "float", 1.0, 25.0, label="noise variance range n_σ"),
        Field("lr", NOISY.lr, "float", NOISY_LR[0], NOISY_LR[-1], choices=NOISY_LR, label="learning rate (noisy BN)"),
        Field("steps", NOISY.steps, "int", 50, 600, label="steps (noisy BN)"),
        Field("layer", 3, "choice", choices=(1, 2, 3), label="layer shown"),
        Field("view", "unit", "choice", choices=("unit", "pre"), label="distribution of"),
        Field("ics_act", ICS.activation, "choice", choices=ACTIVATIONS, label="activation (ICS)"),
        Field("ics_lr", ICS.lr, "float", NET_LR[0], NET_LR[-1], choices=NET_LR, label="learning rate (ICS)"),
        Field("ics_depth", ICS.depth, "int", 2, MAX_DEPTH, label="hidden layers (ICS)"),
        Field("ics_steps", ICS.steps, "int", 50, 300, label="steps (ICS)"),
        Field("ics_run", False, "bool", label="ICS experiment"),
        Field("land_act", LAND.activation, "choice", choices=ACTIVATIONS, label="activation (landscape)"),
        Field("land_lr", LAND.lr, "float", NET_LR[0], NET_LR[-1], choices=NET_LR, label="learning rate (landscape)"),
        Field("land_depth", LAND.depth, "int", 2, MAX_DEPTH, label="hidden layers (landscape)"),
        Field("land_steps", LAND.steps, "int", 50, 300, label="steps (landscape)"),
        Field("land_run", False, "bool", label="landscape experiment"),
        Field("alpha", SCALE.alpha, "float", ALPHA_GRID[0], ALPHA_GRID[-1], choices=ALPHA_GRID, label="weight scale α"),
        Field("eps", SCALE.eps, "float", EPS_GRID[0], EPS_GRID[-1], choices=EPS_GRID, label="ε"),
        Field("jac_act", JAC.activation, "choice", choices=ACTIVATIONS, label="activation (Jacobians)"),
        Field("jac_depth", JAC.depth, "int", 2, MAX_DEPTH, label="hidden layers (Jacobians)"),
        Field("jac_width", JAC.width, "choice", choices=WIDTHS, label="width W (Jacobians)"),
        Field("jac_batch", JAC.batch, "int", 1, 64, label="batch N (Jacobians)"),
        Field("jac_layer", 5, "int", 2, MAX_DEPTH, label="layer shown (Jacobians)"),
    ],
    presets={
        "Class default": {"n_mu": NOISY.n_mu, "n_sigma": NOISY.n_sigma, "lr": NOISY.lr, "steps": NOISY.steps},
        "Gentle noise (n_μ = 0.5, n_σ = 1.5)": {"n_mu": 0.5, "n_sigma": 1.5},
        "Violent noise (n_μ = 5, n_σ = 25)": {"n_mu": 5.0, "n_sigma": 25.0},
        "Fig. 1 sigmoid net in every tab": {
            **{"ics_act": "sigmoid", "ics_lr": 2.0, "land_act": "sigmoid", "land_lr": 2.0, "jac_act": "sigmoid"},
        },
        "Deep nets (8 hidden layers)": {"ics_depth": 8, "land_depth": 8, "jac_depth": 10},
        "Learning rate 10 (the plain ReLU net diverges)": {
            **{"ics_lr": 10.0, "land_lr": 10.0, "ics_act": "relu", "land_act": "relu", "ics_depth": 3, "land_depth": 3},
        },
        "Learning rate 100 in the Noisy BN tab": {"tab": "Noisy BN", "lr": 100.0},
        "Scale invariance with PyTorch's ε = 1e-5": {"tab": "Scale invariance", "eps": 1e-5, "alpha": 0.1},
    },
)


class _Flat:
    """A tab drawn flat, always open: the presenter view shows the five tabs as slides in a row."""

    open = True

    def __init__(self) -> None:
        self._box = st.container()

    def __enter__(self) -> Any:
        return self._box.__enter__()

    def __exit__(self, *exc: object) -> bool | None:
        return self._box.__exit__(*exc)


def tabs() -> Sequence[Any]:
    """The five lazy tabs; the open one is the ``tab`` field (so it round-trips through the URL).

    In the presenter view they are drawn flat, one slide per section, so Next walks through all of them.
    """
    if present.presenting():
        return tuple(_Flat() for _ in TABS)
    return st.tabs(list(TABS), key=STATE.key("tab"), on_change="rerun")


def start(name: str) -> None:
    """Button callback: turn an experiment on (it stays on, and in the URL, until the page is reset)."""
    STATE[name] = True


def run_button(name: str, label: str) -> bool:
    """A button that starts an experiment; True once it has been pressed (or the link says so)."""
    if not STATE[name]:
        st.button(
            label, on_click=start, args=(name,), type="primary", key=f"why:start_{name}", icon=":material/play_arrow:"
        )
    return bool(STATE[name])


def render_divergence(outcomes: Sequence[NetOutcome]) -> None:
    """A warning, in place, for every net that diverged ("diverged at step k")."""
    for o in outcomes:
        if o.divergence_note:
            st.warning(o.divergence_note, icon=":material/warning:")


# -- what the charts share -----------------------------------------------------------------------


def pick(field: str = "variant") -> alt.Parameter:
    """Click a legend entry to highlight its series."""
    return alt.selection_point(fields=[field], bind="legend")


def variant_color(data: pd.DataFrame, legend: Any = alt.Undefined) -> alt.Color:
    """The app's method colours (BN, no norm) plus noisy BN's, listing only the variants present."""
    present = [v for v in VARIANT_ORDER if v in set(data["variant"])]
    scale = alt.Scale(domain=present, range=[method_color(v) or NOISY_COLOR for v in present])
    return alt.Color("variant:N", scale=scale, title=None, legend=legend)


def variant_lines(
    data: pd.DataFrame,
    *,
    title: str,
    x: alt.X,
    y: alt.Y,
    tooltip: list,
    dash: str | None = None,
    point: bool = False,
    width: float = 2.0,
    legend: Any = alt.Undefined,
    height: int = 250,
) -> alt.Chart:
    """One line per variant (and per ``dash`` value, e.g. layer), with legend-click highlighting."""
    chosen = pick()
    encoding = {
        "x": x,
        "y": y,
        "color": variant_color(data, legend=legend),
        "opacity": alt.condition(chosen, alt.value(1.0), alt.value(0.12)),
        "tooltip": tooltip,
    }
    if dash:
        encoding["strokeDash"] = alt.StrokeDash(f"{dash}:O", title=dash, legend=legend)
    chart = alt.Chart(data, title=title).mark_line(point=point, strokeWidth=width).encode(**encoding)
    return chart.add_params(chosen).properties(height=height)
