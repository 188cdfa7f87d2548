"""Why BN Works page: its state table, presets, controls, cached experiments, chart specs and computed sentences.

Five tabs, one per claim. The tabs are lazy (``st.tabs(..., on_change="rerun")``): only the
open tab's code runs, so a student on the default tab pays only for the default experiment.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from bn_core.binning import binned
from bn_core.experiments.why import ACTIVATIONS
from bn_core.experiments.why_ics import ICSConfig, ICSResult, run_ics
from bn_core.experiments.why_jacobian import JacobianConfig, JacobianResult, run_jacobian
from bn_core.experiments.why_landscape import LandscapeConfig, LandscapeResult, run_landscape
from bn_core.experiments.why_noisy import NoisyConfig, NoisyResult, run_noisy
from bn_core.experiments.why_scale import ALPHA_GRID, ScaleConfig, ScaleResult, run_scale
from bn_core.models import MAX_DEPTH
from ui import widgets
from ui.charts import PALETTE
from ui.sidebar import seed
from ui.state import Field, PageState

TABS = ("Noisy BN", "ICS", "Landscape", "Scale invariance", "Jacobians")
NOISY_LR = (0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)
NET_LR = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0)
EPS_GRID = (1e-12, 1e-8, 1e-5, 1e-3)
WIDTHS = (8, 16, 32, 64)
NOISY, ICS, LAND, SCALE, JAC = NoisyConfig(), ICSConfig(), LandscapeConfig(), ScaleConfig(), JacobianConfig()

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
        "Scale invariance with PyTorch's ε = 1e-5": {"tab": "Scale invariance", "eps": 1e-5, "alpha": 0.1},
    },
)


# -- the words ------------------------------------------------------------------------------

TEXT = {
    "noisy": (
        "**Claim: BN works by keeping each layer's input distribution stable** (it reduces ICS). "
        "**Test** (Santurkar et al. 2018, §2.1): train three copies of Ioffe & Szegedy's Fig. 1 net "
        "(3 × 100 sigmoid units, SGD, batch 60), with the same init and the same batches: no BN, BN, and "
        "**noisy BN**. In the noisy net every BN output unit is scaled by s and shifted by b, drawn afresh at "
        "every step (b ~ U(−n_μ, n_μ), s² ~ U(1, n_σ)), so the next layer's input distribution jumps at every "
        "step. If stability were BN's secret, the noisy net should lose BN's advantage."
    ),
    "noisy_dist": (
        "Each layer's input (the input to its sigmoid) on a fixed batch of 128 training digits, every 10 steps, "
        "in train mode: for the noisy net, *with* that step's noise, as the next layer sees it."
    ),
    "ics": (
        "**Claim: BN reduces internal covariate shift.** Ioffe & Szegedy never measured ICS. Santurkar et al. "
        "(2018, Def. 2.1) define it by what it would do to optimization: after the *earlier* layers take their "
        "update, how much has the gradient of layer i changed? G is layer i's weight gradient before the step, "
        "G′ the same gradient, on the same batch, once layers 1 … i−1 have been updated. No ICS means G′ = G "
        "(‖G − G′‖ = 0, cos = 1). Default: a ReLU net (3 × 100, SGD at η = 0.3, where both nets train), "
        "measured every steps/20 steps, for layers 2 … depth and the output layer."
    ),
    "landscape": (
        "**Claim: BN makes the loss landscape smoother** (Santurkar et al. 2018, §3.1, Fig. 4). At 10 "
        "checkpoints during training, from the current weights w, step along the gradient g with 8 step sizes "
        "η from ½× to 4× the learning rate, on a fixed batch of 60 training digits, and record the loss (left), "
        "how much the gradient changed (middle) and that change per unit of distance travelled (right; its "
        "maximum is the *effective β-smoothness*). Shaded: the range over η. A narrow band means the gradient "
        "predicts what happens when you follow it, so larger steps are safe. BN uses the batch's statistics, "
        "as in training; the probes never touch the running statistics."
    ),
    "scale": (
        "**Claim (seed text): BN makes a layer scale-invariant.** One Linear(8 → 4) → BN layer on a random "
        "float64 batch of 32, with a fixed random readout L = Σ r ⊙ y / N, through the hand-written "
        "`ManualBatchNorm` and torch's `nn.BatchNorm1d`. Multiply W by α:"
    ),
    "scale_training": (
        "**The consequence: the effective learning rate falls as the weights grow.** Because ∇L ⊥ w and "
        "‖∇L‖ ∝ 1/‖w‖, an SGD step of size η turns w by tan θ = η‖∇_w L‖ / ‖w‖ ∝ η / ‖w‖², the *effective* "
        "learning rate. And every step makes w longer: ‖w − ηg‖² = ‖w‖² + η²‖g‖² (van Laarhoven 2017; "
        "Hoffer et al. 2018). So with a fixed η the step that matters shrinks by itself. Measured on the BN and "
        "no-BN nets of the *Noisy BN* tab (with that tab's learning rate and steps):"
    ),
    "jacobian": (
        "**Claim (seed text): BN keeps the singular values of each layer's Jacobian near 1**, so a gradient "
        "crosses many layers without vanishing or exploding. Test: a deep MLP at initialization (the same "
        "weights with and without BN), one batch of N digits in train mode. For each hidden layer i ≥ 2, "
        "`torch.func.jacrev` gives the Jacobian of its output h_i with respect to its input h_(i−1) **for the "
        "whole batch**, an (N·W) × (N·W) matrix, because in train mode BN couples the examples of a batch "
        "(without BN it is block-diagonal, one W × W block per example). Singular values: "
        "`torch.linalg.svdvals`, in float64."
    ),
    "debate": (
        "**Where the debate stands.** *Internal covariate shift* was the original motivation (Ioffe & Szegedy "
        "2015, [arXiv:1502.03167](https://arxiv.org/abs/1502.03167)), but the paper never measured it; tabs 1 "
        "and 2 test it the way Santurkar et al. did, and on this problem find no sign that it is the mechanism. "
        "The *smoothness* account (Santurkar et al. 2018, [arXiv:1805.11604](https://arxiv.org/abs/1805.11604)) "
        "has the strongest "
        "measurements behind it, but they look along the gradient direction only and its theory covers a single "
        "BN layer; tab 3 shows a net where the effect is absent. Other accounts: BN's real gift is allowing "
        "larger learning rates (Bjorck et al. 2018, [arXiv:1806.02375](https://arxiv.org/abs/1806.02375)); "
        "length–direction decoupling and automatic rate tuning (tab 4; Arora et al. 2019, "
        "[arXiv:1812.03981](https://arxiv.org/abs/1812.03981)); and at initialization BN alone makes gradients "
        "*explode* with depth in nets without skip connections (Yang et al. 2019, "
        "[arXiv:1902.08129](https://arxiv.org/abs/1902.08129); tab 5). No single story explains everything. "
        "Each tab shows what happens on this small problem, not what holds in general."
    ),
}
TAKEAWAY = {
    "noisy": (
        "Santurkar et al.'s result, which the default run reproduces: a net whose layer inputs are made *less* "
        "stable than a plain net's still trains about as well as BN. Stable layer-input distributions are not "
        "what BN's benefit rests on."
    ),
    "ics": (
        "Measured this way, internal covariate shift is large with or without BN: when the layers below move, "
        "a layer's gradient changes by a large fraction of its size. BN does not remove it, and whether BN's "
        "ICS comes out a little lower or higher than the plain net's depends on the net and the seed (try a "
        "few), while BN's training advantage does not. ICS is a poor predictor of what BN does."
    ),
    "landscape": (
        "Where BN helps, following its gradient is more predictable: the loss and the gradient change less "
        "along the step, so larger steps are safe. This is the best-supported of the four claims, but it is a "
        "statement about the path training takes, and not every net shows it (try the sigmoid preset)."
    ),
    "scale": (
        "Behind BN the length of a unit's weight vector does not matter to the output: the gradient shrinks as "
        "the weights grow, and with a fixed learning rate the step that turns the weights decays by itself. "
        "Weight decay and learning-rate schedules act on BN nets through this."
    ),
    "jacobian": (
        "At initialization BN stops the gradient from vanishing on its way back through a deep net: every "
        "layer's pre-activations are rescaled to unit variance, whatever the weights. But BN's Jacobian is no "
        "isometry: it erases directions (a unit shifted, or scaled, for the whole batch), spreads the rest, and "
        "in deep nets the gradient grows toward the input rather than staying constant (Yang et al. 2019)."
    ),
}
TRY = {
    "noisy": (
        "Pick **Violent noise**: n_μ = 5, n_σ = 25. How strong must the noise be before it finally hurts?",
        "Set n_μ = 0 and n_σ = 1: the noisy net becomes exactly the BN net, number for number.",
        "Switch the view to *all units pooled*: per-unit shifts average out and the pooled band hardly moves. "
        "Which view is the fair test of 'stable distributions'?",
        "Lower the learning rate to 0.3: does BN's lead over no BN survive?",
    ),
    "ics": (
        "Pick **Fig. 1 sigmoid net in every tab**: the plain sigmoid net barely moves, so G′ ≈ G. Tiny ICS, "
        "and almost no learning either.",
        "Pick **Deep nets**: does ICS grow with depth, with and without BN?",
    ),
    "landscape": (
        "Pick **Fig. 1 sigmoid net in every tab**: at η = 2 the plain net sits on a plateau. Are the bands still "
        "different?",
        "Pick **Learning rate 10**: the plain ReLU net diverges and the page says at which step. BN's survives.",
    ),
    "scale": (
        "Slide α from 0.01 to 100: the errors stay at rounding level while the gradient spans four orders of "
        "magnitude.",
        "Pick the preset **Scale invariance with PyTorch's ε = 1e-5**: at α = 0.1, α²σ² approaches ε and the "
        "identities break. Which α makes them hold again?",
        "In the *Noisy BN* tab set the learning rate to 10, then come back: ‖W‖ grows faster and the turn per "
        "step falls faster.",
    ),
    "jacobian": (
        "Switch to ReLU: about half of the plain net's singular values are 0 (inactive units). What does BN do?",
        "Set the batch N to 1: BN cannot compute a variance from one example, and the page says so.",
        "Set N = 64 with W = 64: the whole-batch Jacobian would be 4,096 × 4,096, too large for this page.",
    ),
}
ICS_LATEX = (
    r"G = \nabla_{W_i} L\big(W_1^{t},\dots,W_{i-1}^{t},\,W_i^{t},\dots,W_k^{t}\big), \qquad "
    r"G' = \nabla_{W_i} L\big(W_1^{t+1},\dots,W_{i-1}^{t+1},\,W_i^{t},\dots,W_k^{t}\big)"
)
SCALE_LATEX = (
    r"\mathrm{BN}\big(x(\alpha W)^\top + b\big) = \mathrm{BN}\big(xW^\top + b\big), \qquad "
    r"\nabla_{\alpha W} L = \tfrac{1}{\alpha}\,\nabla_W L, \qquad w_j \cdot \nabla_{w_j} L = 0"
)


# -- cached computation ---------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def compute_noisy(cfg: NoisyConfig, _progress=None) -> NoisyResult:
    return run_noisy(cfg, _progress)


@st.cache_data(max_entries=16, show_spinner=False)
def compute_ics(cfg: ICSConfig, _progress=None) -> ICSResult:
    return run_ics(cfg, _progress)


@st.cache_data(max_entries=16, show_spinner=False)
def compute_landscape(cfg: LandscapeConfig, _progress=None) -> LandscapeResult:
    return run_landscape(cfg, _progress)


@st.cache_data(max_entries=32, show_spinner=False)
def compute_scale(cfg: ScaleConfig, _progress=None) -> ScaleResult:
    return run_scale(cfg)


@st.cache_data(max_entries=16, show_spinner=False)
def compute_jacobian(cfg: JacobianConfig, _progress=None) -> JacobianResult:
    return run_jacobian(cfg, _progress)


# Chart specs are cached too: building and validating Altair charts costs more than a cache hit.


@st.cache_data(max_entries=32, show_spinner=False)
def noisy_specs(cfg: NoisyConfig) -> tuple[dict, dict]:
    curves = compute_noisy(cfg).curves
    return accuracy_chart(curves).to_dict(), loss_chart(curves).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def dist_spec(cfg: NoisyConfig, layer: int, view: str) -> dict:
    return distribution_chart(compute_noisy(cfg).layers, layer, view).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def noisy_view(cfg: NoisyConfig, layer: int, view: str) -> tuple[str, pd.DataFrame, bytes]:
    """The default tab's sentence, table and CSV: cached, so a rerun of the class's view costs nothing here."""
    r = compute_noisy(cfg)
    return noisy_verdict(r, layer, view), noisy_table(r), r.layers.to_csv(index=False).encode()


@st.cache_data(max_entries=32, show_spinner=False)
def ics_specs(cfg: ICSConfig) -> tuple[dict, dict]:
    ics = compute_ics(cfg).ics
    return ics_chart(ics, "cos").to_dict(), ics_chart(ics, "l2").to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def landscape_specs(cfg: LandscapeConfig) -> tuple[dict, ...]:
    bands = compute_landscape(cfg).bands
    return tuple(band_chart(bands, metric).to_dict() for metric in BAND_TITLES)


@st.cache_data(max_entries=64, show_spinner=False)
def scale_spec(cfg: ScaleConfig) -> dict:
    return scale_chart(compute_scale(cfg).sweep, cfg.alpha).to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def weight_specs(cfg: NoisyConfig) -> tuple[dict, dict]:
    weights = compute_noisy(cfg).weights
    return weight_norm_chart(weights).to_dict(), turn_chart(weights).to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def jacobian_specs(cfg: JacobianConfig, layer: int) -> tuple[dict, dict, dict]:
    r = compute_jacobian(cfg)
    return sv_band_chart(r.layers).to_dict(), sv_hist_chart(r.svals, layer).to_dict(), grad_chart(r.grads).to_dict()


# -- controls and configs --------------------------------------------------------------------


def tabs() -> list:
    """The five lazy tabs; the open one is the ``tab`` field (so it round-trips through the URL)."""
    return st.tabs(list(TABS), key=STATE.key("tab"), on_change="rerun")


def noisy_controls() -> NoisyConfig:
    c = st.columns(4)
    widgets.slider(STATE, "n_mu", "Noise mean range n_μ", step=0.1, where=c[0], help="b ~ U(−n_μ, n_μ) per unit")
    widgets.slider(STATE, "n_sigma", "Noise variance range n_σ", step=0.5, where=c[1], help="s² ~ U(1, n_σ) per unit")
    widgets.grid_slider(STATE, "lr", "Learning rate (SGD, all three nets)", where=c[2])
    widgets.slider(STATE, "steps", "Steps", step=50, where=c[3])
    return noisy_config()


def noisy_config() -> NoisyConfig:
    return NoisyConfig(
        n_mu=float(STATE["n_mu"]),
        n_sigma=float(STATE["n_sigma"]),
        lr=float(STATE["lr"]),
        steps=int(STATE["steps"]),
        seed=seed(),
    )


def view_controls() -> tuple[int, str]:
    a, b = st.columns(2)
    widgets.choice(STATE, "layer", "Hidden layer", style="radio", where=a)
    names = {"unit": "one unit (as Santurkar et al. plot it)", "pre": "all units pooled"}
    widgets.choice(STATE, "view", "Distribution of", style="radio", fmt=names.get, where=b)
    return int(STATE["layer"]), str(STATE["view"])


def _net_controls(prefix: str) -> None:
    c = st.columns(4)
    widgets.choice(STATE, f"{prefix}_act", "Activation", where=c[0])
    widgets.grid_slider(STATE, f"{prefix}_lr", "Learning rate (SGD, both nets)", where=c[1])
    widgets.slider(STATE, f"{prefix}_depth", "Hidden layers", where=c[2])
    widgets.slider(STATE, f"{prefix}_steps", "Steps", step=50, where=c[3])


def ics_controls() -> ICSConfig:
    _net_controls("ics")
    steps = int(STATE["ics_steps"])
    return ICSConfig(
        lr=float(STATE["ics_lr"]),
        steps=steps,
        every=max(2, steps // 20),
        depth=int(STATE["ics_depth"]),
        activation=str(STATE["ics_act"]),
        seed=seed(),
    )


def landscape_controls() -> LandscapeConfig:
    _net_controls("land")
    return LandscapeConfig(
        lr=float(STATE["land_lr"]),
        steps=int(STATE["land_steps"]),
        depth=int(STATE["land_depth"]),
        activation=str(STATE["land_act"]),
        seed=seed(),
    )


def start(name: str) -> None:
    """Button callback: turn an experiment on (it stays on, and in the URL, until the page is reset)."""
    STATE[name] = True


def run_button(name: str, label: str) -> bool:
    """A button that starts an experiment; True once it has been pressed (or the link says so)."""
    if not STATE[name]:
        st.button(label, on_click=start, args=(name,), type="primary", key=f"why:start_{name}")
    return bool(STATE[name])


def scale_controls() -> ScaleConfig:
    a, b = st.columns([3, 2])
    widgets.grid_slider(STATE, "alpha", "Weight scale α (W → αW)", fmt="{:g}", where=a)
    widgets.grid_slider(STATE, "eps", "BN's ε", fmt="{:.0e}", where=b)
    return ScaleConfig(alpha=float(STATE["alpha"]), eps=float(STATE["eps"]), seed=seed())


def jacobian_controls() -> JacobianConfig:
    c = st.columns(4)
    widgets.choice(STATE, "jac_act", "Activation", where=c[0])
    widgets.slider(STATE, "jac_depth", "Hidden layers", where=c[1])
    widgets.choice(STATE, "jac_width", "Width W", style="radio", where=c[2])
    widgets.slider(STATE, "jac_batch", "Batch N", where=c[3])
    return JacobianConfig(
        depth=int(STATE["jac_depth"]),
        width=int(STATE["jac_width"]),
        batch=int(STATE["jac_batch"]),
        activation=str(STATE["jac_act"]),
        seed=seed(),
    )


def jacobian_layer(cfg: JacobianConfig) -> int:
    """The layer whose singular values are drawn, kept inside 2 … depth."""
    widgets.slider(STATE, "jac_layer", "Layer shown in the histogram")
    layer = int(STATE["jac_layer"])
    if layer > cfg.depth:
        st.info(f"The net has {cfg.depth} hidden layers; showing layer {cfg.depth} instead of {layer}.")
    return min(layer, cfg.depth)


# -- computed sentences and tables ------------------------------------------------------------


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.1%}"


def status_warnings(status: dict[str, str]) -> None:
    for name, text in status.items():
        if text.startswith("diverged"):
            st.warning(f"**{name}** {text}: its loss became NaN or infinite; its records stop there.", icon="💥")


def noisy_verdict(r: NoisyResult, layer: int, view: str) -> str:
    acc = r.summary.set_index("variant")["final_test_acc"]
    jump = r.jumps[(r.jumps["view"] == view) & (r.jumps["layer"] == layer)].set_index("variant")["median_jump"]
    noisy, bn, plain = (float(jump.get(v, math.nan)) for v in ("noisy BN", "BN", "no BN"))
    ratio = acc["noisy BN"] / acc["BN"] if acc["BN"] > 0 else math.nan
    if not math.isfinite(ratio):
        verdict = "cannot be compared with BN (a run did not finish)"
    else:
        verdict = "as well as" if ratio >= 0.97 else ("nearly as well as" if ratio >= 0.9 else "clearly worse than")
        verdict = f"trains {verdict} BN ({_pct(ratio)} of its accuracy)"
    text = (
        f"**Measured.** Final test accuracy: noisy BN **{_pct(acc['noisy BN'])}**, BN **{_pct(acc['BN'])}**, "
        f"no BN **{_pct(acc['no BN'])}**: the noisy net {verdict}. Between two records, layer {layer}'s input "
        f"median moved by **{noisy:.3g}** on average in the noisy net, against {bn:.3g} with BN and "
        f"{plain:.3g} without"
    )
    steadier = max(bn, plain)
    if math.isfinite(noisy) and steadier > 0:
        text += f": **{noisy / steadier:.1f}×** the larger of the two"
    return text + "."


def noisy_table(r: NoisyResult) -> pd.DataFrame:
    table = r.summary.rename(
        columns=lambda c: (
            c.replace("jump_layer_", "median jump, layer ")
            .replace("final_test_acc", "test accuracy")
            .replace("final_train_acc", "train accuracy")
        )
    )
    return table.assign(status=table["variant"].map(r.status))


PERCENT_COLUMNS = {c: st.column_config.NumberColumn(c, format="percent") for c in ("test accuracy", "train accuracy")}


def ics_verdict(r: ICSResult) -> str:
    mean = r.summary.pivot_table(index="metric", columns="variant", values="value")
    acc = r.curves[r.curves["metric"] == "test_acc"].groupby("variant")["value"].last()
    cos, rel = mean.loc["cos"], mean.loc["rel_l2"]
    if cos["BN"] > cos["no BN"] + 0.05 and rel["BN"] < rel["no BN"] - 0.05:
        compare = "BN's gradients change *less* than the plain net's when the earlier layers move"
    elif cos["BN"] < cos["no BN"] - 0.05 and rel["BN"] > rel["no BN"] + 0.05:
        compare = "BN's gradients change *more* than the plain net's: BN *increases* ICS here"
    else:
        compare = "the two nets' ICS is about the same (the two measures disagree or differ by < 0.05)"
    return (
        f"**Measured** (mean over layers 2 … {int(r.ics['layer'].max())} and every measured step): "
        f"cos(G, G′) = **{cos['BN']:.2f}** with BN, **{cos['no BN']:.2f}** without; "
        f"‖G − G′‖ / ‖G‖ = **{rel['BN']:.2f}** with BN, **{rel['no BN']:.2f}** without: {compare}. "
        f"With BN a layer's gradient still changes by {rel['BN']:.0%} of its size when the layers below it "
        f"move. Final test accuracy: BN {_pct(acc.get('BN', math.nan))}, no BN {_pct(acc.get('no BN', math.nan))}."
    )


def _times(ratio: float, what: str) -> str:
    """'3.2× wider without BN' or '2× narrower without BN' for a no-BN / BN ratio."""
    if not math.isfinite(ratio) or ratio <= 0:
        return f"the {what} cannot be compared"
    return (
        f"the {what} {ratio:.2g}× wider without BN"
        if ratio >= 1
        else f"the {what} {1 / ratio:.2g}× narrower without BN"
    )


def landscape_verdict(r: LandscapeResult) -> str:
    s = r.summary.set_index(["metric", "variant"])
    width, beta = s["mean_width"], s["mean_hi"]
    bn_w, plain_w = width[("grad_diff", "BN")], width[("grad_diff", "no BN")]
    loss_ratio = width[("loss", "no BN")] / width[("loss", "BN")] if width[("loss", "BN")] > 0 else math.nan
    smoother = "smoother" if beta[("beta", "BN")] < beta[("beta", "no BN")] else "*not* smoother"
    return (
        f"**Measured** (mean over the {r.bands['step'].nunique()} checkpoints): the gradient-predictiveness band is "
        f"**{bn_w:.3g}** wide with BN and **{plain_w:.3g}** without "
        f"({_times(plain_w / bn_w if bn_w > 0 else math.nan, 'band')}); {_times(loss_ratio, 'loss band')}; "
        f"effective β-smoothness **{beta[('beta', 'BN')]:.3g}** with BN vs **{beta[('beta', 'no BN')]:.3g}** "
        f"without ({smoother} with BN)."
    )


def scale_table(r: ScaleResult, alpha: float) -> pd.DataFrame:
    """The identities at α, one row each, with the measured error for both backends."""
    c = r.checks.set_index("backend")
    m = c.loc["manual"]
    rows = {
        "max |BN(x(αW)ᵀ + b) − BN(xWᵀ + b)|": c["output_max_abs_diff"],
        "‖α·∇_αW L − ∇_W L‖ / ‖∇_W L‖": c["grad_rel_err"],
        f"‖∇_W L‖ = {m.grad_norm_1:.4g} vs α·‖∇_αW L‖ = {alpha:g} × {m.grad_norm_alpha:.4g} (relative gap)": (
            (c["grad_norm_alpha"] * alpha - c["grad_norm_1"]).abs() / c["grad_norm_1"]
        ),
        "max_j |cos(w_j, ∇_w_j L)|: the gradient is orthogonal to w": c["orthogonality"],
        f"tan θ of one SGD step: {m.tan_turn_1:.4g} at α = 1, {m.tan_turn_alpha:.4g} at α; gap to tan θ₁ / α²": (
            c["turn_rel_err"]
        ),
    }
    table = pd.DataFrame(rows).T.reset_index(names="identity")
    return table.rename(columns={be: f"error ({be})" for be in c.index})


ERROR_COLUMNS = {
    f"error ({be})": st.column_config.NumberColumn(f"error, {label}", format="%.2e")
    for be, label in (("manual", "ManualBatchNorm"), ("torch", "nn.BatchNorm1d"))
}


def scale_sentence(r: ScaleResult, alpha: float, eps: float) -> str:
    c = r.checks.set_index("backend").loc["manual"]
    worst = float(r.checks[["output_max_abs_diff", "grad_rel_err"]].to_numpy().max())
    held = "hold to" if worst < 1e-6 else "are off by"
    return (
        f"At α = {alpha:g} with ε = {eps:.0e}, both identities {held} **{worst:.1e}** (the largest error over both "
        f"backends). One SGD step of η = {SCALE.lr} turns a unit's weights by tan θ = {c.tan_turn_1:.4g} at α = 1 "
        f"but {c.tan_turn_alpha:.4g} at α = {alpha:g}: the effective learning rate η/‖w‖² is "
        f"{c.eff_lr_1:.4g} at α = 1 and {c.eff_lr_alpha:.4g} at α = {alpha:g}."
    )


def weight_sentence(r: NoisyResult) -> str:
    w = r.weights
    bn = w[w["variant"] == "BN"]
    norm = bn[bn["metric"] == "weight_norm"].groupby("step")["value"].mean()
    turn = bn[bn["metric"] == "angle_deg"].groupby("step")["value"].mean()
    early, late = turn.iloc[:5], turn.iloc[-5:]  # the first and last 5 records (~50 per run)
    gap = w[w["metric"] == "norm_gap"].groupby("variant")["value"].mean()
    return (
        f"In the BN net, the mean ‖W‖ of the hidden layers grew from {norm.iloc[0]:.3g} (step {norm.index[0]}) to "
        f"{norm.iloc[-1]:.3g} (step {norm.index[-1]}), and the angle a unit's weights turn in one step fell from "
        f"{early.mean():.2g}° (steps {early.index[0]}–{early.index[-1]}) to {late.mean():.2g}° (steps "
        f"{late.index[0]}–{late.index[-1]}), with the learning rate fixed. The identity "
        f"‖w_(t+1)‖² = ‖w_t‖² + η²‖g_t‖² is off by {gap.get('BN', math.nan):.1e} (relative, mean over the "
        f"recorded steps) with BN, and by {gap.get('no BN', math.nan):.1e} without BN, where nothing makes the "
        "gradient orthogonal to w."
    )


def jacobian_verdict(r: JacobianResult, cfg: JacobianConfig) -> str:
    L = r.layers.pivot_table(index="metric", columns="variant", values="value")
    g = r.grads.pivot_table(index="layer", columns="variant", values="value")
    gain = g.loc[0] / g.loc[cfg.depth]  # ‖∂L/∂h_0‖ / ‖∂L/∂h_depth‖ per variant
    n = cfg.batch * cfg.width
    return (
        f"**Measured** (layers 2 … {cfg.depth}, mean): median singular value **{L.loc['sv_median', 'BN']:.2g}** "
        f"with BN, **{L.loc['sv_median', 'no BN']:.2g}** without; largest {L.loc['sv_max', 'BN']:.2g} vs "
        f"{L.loc['sv_max', 'no BN']:.2g}. Of the {n} directions of a layer, BN erases "
        f"{L.loc['erased', 'BN']:.0f} exactly and shrinks {L.loc['crushed', 'BN']:.0f} in all by more than 1000× "
        f"(no BN: {L.loc['erased', 'no BN']:.0f} and {L.loc['crushed', 'no BN']:.0f}). From the last hidden layer "
        f"back to the input the gradient norm is multiplied by **{gain['BN']:.3g}** with BN and "
        f"**{gain['no BN']:.3g}** without (1 = preserved, ≪ 1 vanishing, ≫ 1 exploding)."
    )


# -- charts -----------------------------------------------------------------------------------

ORDER = ("BN", "no BN", "noisy BN")


def _pick(field: str = "variant") -> alt.Parameter:
    return alt.selection_point(fields=[field], bind="legend")


def _variant_color(data: pd.DataFrame, legend: Any = alt.Undefined) -> alt.Color:
    """The variant colours (BN blue, no BN orange, noisy BN green), listing only the variants present."""
    present = [v for v in ORDER if v in set(data["variant"])]
    scale = alt.Scale(domain=present, range=[PALETTE[ORDER.index(v)] for v in present])
    return alt.Color("variant:N", scale=scale, title=None, legend=legend)


def _finite(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Rows whose columns are finite: JSON has no NaN or ∞, and a diverged probe has them."""
    ok = np.all([np.isfinite(frame[c].to_numpy(dtype=float)) for c in columns], axis=0)
    return frame[ok]


def accuracy_chart(curves: pd.DataFrame) -> alt.Chart:
    acc = _finite(curves[curves["metric"] == "test_acc"], "value")
    pick = _pick()
    return (
        alt.Chart(acc, title="Test accuracy (eval mode, noise off)")
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=_variant_color(acc),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", format=".1%", title="test accuracy")],
        )
        .add_params(pick)
        .properties(height=250)
    )


def loss_chart(curves: pd.DataFrame) -> alt.Chart:
    loss = _finite(curves[(curves["metric"] == "loss") & (curves["value"] > 0)], "value")
    loss = loss.assign(value=loss["value"].round(5))  # 5 decimals: a third of the bytes every rerun ships
    pick = _pick()
    return (
        alt.Chart(loss, title="Training loss (every step, with the noise)")
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="cross-entropy (log scale)", scale=alt.Scale(type="log")),
            color=_variant_color(loss),
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
            tooltip=["variant:N", "step:Q", alt.Tooltip("value:Q", title="loss", format=".4f")],
        )
        .add_params(pick)
        .properties(height=250)
    )


def distribution_chart(layers: pd.DataFrame, layer: int, view: str) -> alt.FacetChart:
    names = {f"{view}_p15": "p15", f"{view}_p50": "p50", f"{view}_p85": "p85"}
    rows = layers[(layers["layer"] == layer) & layers["metric"].isin(names)]
    wide = rows.pivot_table(index=["variant", "step"], columns="metric", values="value").rename(columns=names)
    wide = _finite(wide.reset_index(), "p15", "p50", "p85")
    base = alt.Chart(wide).encode(x=alt.X("step:Q", title="step"))
    tips = ["variant:N", "step:Q", *(alt.Tooltip(f"p{q}:Q", format=".3f", title=f"{q} %") for q in (15, 50, 85))]
    color = _variant_color(wide, legend=None)
    band = base.mark_area(opacity=0.3).encode(y=alt.Y("p15:Q", title=f"layer {layer} input"), y2="p85:Q", color=color)
    median = base.mark_line(point=True).encode(y="p50:Q", color=color, tooltip=tips)
    what = "one unit" if view == "unit" else "all units"
    return (
        alt.layer(band, median)
        .properties(width=250, height=220)
        .facet(
            column=alt.Column("variant:N", title=f"15 / 50 / 85 % of {what}'s input", sort=["no BN", "BN", "noisy BN"])
        )
    )


def ics_chart(ics: pd.DataFrame, metric: str) -> alt.Chart:
    data = _finite(ics[ics["metric"] == metric], "value")
    title = {"cos": "cos(G, G′): 1 = the update below changed nothing", "l2": "‖G − G′‖₂"}[metric]
    pick = _pick()
    return (
        alt.Chart(data, title=title)
        .mark_line(point=True, strokeWidth=1.6)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=metric if metric == "cos" else "‖G − G′‖"),
            color=_variant_color(data, legend=alt.Legend(orient="bottom")),
            strokeDash=alt.StrokeDash("layer:O", title="layer", legend=alt.Legend(orient="bottom")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g", title=metric)],
        )
        .add_params(pick)
        .properties(height=280)
    )


BAND_TITLES = {
    "loss": (["Loss landscape", "L(w − ηg) over η"], "loss"),
    "grad_diff": (["Gradient predictiveness", "‖∇L(w) − ∇L(w − ηg)‖ over η"], "gradient change"),
    "beta": (["Effective β-smoothness", "‖Δ∇L‖ / ‖ηg‖ over η (top: β)"], "β"),
}


def band_chart(bands: pd.DataFrame, metric: str) -> alt.LayerChart:
    data = _finite(bands[bands["metric"] == metric], "lo", "hi")
    title, y_title = BAND_TITLES[metric]
    pick = _pick()
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        color=_variant_color(data, legend=alt.Legend(orient="top")),
        opacity=alt.condition(pick, alt.value(0.35), alt.value(0.05)),
    )
    tips = ["variant:N", "step:Q", alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g")]
    area = base.mark_area().encode(y=alt.Y("lo:Q", title=y_title), y2="hi:Q", tooltip=tips).add_params(pick)
    edge = base.mark_line(strokeWidth=1.5).encode(y="hi:Q", opacity=alt.value(0.9), tooltip=tips)
    return alt.layer(area, edge, title=alt.TitleParams(title)).properties(height=240)


def scale_chart(sweep: pd.DataFrame, alpha: float) -> alt.LayerChart:
    """Measured ‖∇_αW L‖ and tan θ over α, each relative to α = 1, against the predicted 1/α and 1/α²."""
    data = sweep[(sweep["backend"] == "manual") & sweep["metric"].isin(["grad_norm_alpha", "tan_turn_alpha"])]
    at_one = data[np.isclose(data["alpha"], 1.0)].set_index("metric")["value"]
    data = data.assign(ratio=data["value"] / data["metric"].map(at_one))
    data = data.replace({"metric": {"grad_norm_alpha": "‖∇_αW L‖", "tan_turn_alpha": "tan θ (one SGD step)"}})
    alphas = np.asarray(sorted(data["alpha"].unique()))
    theory = pd.DataFrame(
        {"alpha": np.concatenate([alphas, alphas]), "ratio": np.concatenate([1 / alphas, 1 / alphas**2])}
    ).assign(law=["1/α"] * len(alphas) + ["1/α²"] * len(alphas))
    x = alt.X("alpha:Q", title="weight scale α (log)", scale=alt.Scale(type="log"))
    y = alt.Y("ratio:Q", title="value at α ÷ value at α = 1 (log)", scale=alt.Scale(type="log"))
    laws = alt.Chart(theory).mark_line(strokeDash=[4, 4], color="#868E96").encode(x=x, y=y, detail="law:N")
    measured = (
        alt.Chart(_finite(data[data["ratio"] > 0], "ratio"))
        .mark_point(filled=True, size=50)
        .encode(
            x=x,
            y=y,
            color=alt.Color("metric:N", title="measured", scale=alt.Scale(range=PALETTE[3:5])),
            tooltip=["metric:N", alt.Tooltip("alpha:Q", format=".3g"), alt.Tooltip("ratio:Q", format=".4g")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"alpha": [alpha]})).mark_rule(color="#495057", strokeDash=[2, 2])
    rule = rule.encode(x="alpha:Q", tooltip=[alt.Tooltip("alpha:Q", title="your α")])
    title = "Measured (dots) vs predicted (dashed: 1/α for the gradient, 1/α² for the turn)"
    return alt.layer(laws, measured, rule, title=title).properties(height=280)


def _thin(frame: pd.DataFrame, points: int = 120) -> pd.DataFrame:
    """Every k-th step, so a chart ships ~``points`` points per line (the first and last steps are kept)."""
    last = int(frame["step"].max())
    k = max(1, last // points)
    return frame[(frame["step"] % k == 0) | (frame["step"] == last) | (frame["step"] == 1)]


def weight_norm_chart(weights: pd.DataFrame) -> alt.Chart:
    data = _thin(_finite(weights[(weights["metric"] == "weight_norm") & (weights["variant"] != "noisy BN")], "value"))
    pick = _pick()
    return (
        alt.Chart(data, title="‖W‖ of each hidden layer over training")
        .mark_line(strokeWidth=1.6)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="‖W‖ (Frobenius)"),
            color=_variant_color(data),
            strokeDash=alt.StrokeDash("layer:O", title="layer"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g", title="‖W‖")],
        )
        .add_params(pick)
        .properties(height=250)
    )


def turn_chart(weights: pd.DataFrame) -> alt.Chart:
    bn = weights[(weights["variant"] == "BN") & weights["metric"].isin(["angle_deg", "eff_lr"])]
    bn = bn.sort_values("step").assign(  # a moving average over 5 records: the per-step turn is noisy
        value=lambda d: d.groupby(["metric", "layer"])["value"].transform(lambda v: v.rolling(5, min_periods=1).mean())
    )
    names = {"angle_deg": "turn per step (degrees)", "eff_lr": "effective LR η / mean ‖w_j‖²"}
    data = _thin(_finite(bn[bn["value"] > 0], "value")).replace({"metric": names})
    pick = _pick("metric")
    return (
        alt.Chart(data, title="BN net: the same η turns the weights less and less")
        .mark_line(strokeWidth=1.4)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="mean of 5 records (log)", scale=alt.Scale(type="log")),
            color=alt.Color(
                "metric:N",
                title=None,
                scale=alt.Scale(range=PALETTE[4:6]),
                legend=alt.Legend(orient="top", labelLimit=300),
            ),
            strokeDash=alt.StrokeDash("layer:O", title="layer"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["metric:N", "layer:O", "step:Q", alt.Tooltip("value:Q", format=".4g")],
        )
        .add_params(pick)
        .properties(height=250)
    )


def sv_band_chart(layers: pd.DataFrame) -> alt.LayerChart:
    wide = layers.pivot_table(index=["variant", "layer"], columns="metric", values="value").reset_index()
    wide = _finite(wide[wide["sv_p10"] > 0], "sv_p10", "sv_p90", "sv_median")
    base = alt.Chart(wide).encode(
        x=alt.X("layer:Q", title="hidden layer i (Jacobian ∂h_i / ∂h_(i−1))", axis=alt.Axis(tickMinStep=1)),
        color=_variant_color(wide),
    )
    tips = [
        "variant:N",
        "layer:Q",
        alt.Tooltip("sv_max:Q", format=".3g", title="largest"),
        alt.Tooltip("sv_p90:Q", format=".3g", title="90 %"),
        alt.Tooltip("sv_median:Q", format=".3g", title="median"),
        alt.Tooltip("sv_p10:Q", format=".3g", title="10 %"),
        alt.Tooltip("erased:Q", title="erased (= 0)"),
        alt.Tooltip("crushed:Q", title="shrunk > 1000×"),
    ]
    y = alt.Y("sv_p10:Q", title="singular value (log)", scale=alt.Scale(type="log"))
    band = base.mark_area(opacity=0.25).encode(y=y, y2="sv_p90:Q")
    median = base.mark_line(point=True).encode(y="sv_median:Q", tooltip=tips)
    one = alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(color="#868E96", strokeDash=[3, 3]).encode(y="one:Q")
    title = "Singular values per layer: median (line) and 10–90 % band of the non-erased ones; dashed: 1"
    return alt.layer(band, median, one, title=title).properties(height=260)


def sv_hist_chart(svals: pd.DataFrame, layer: int) -> alt.Chart:
    data = svals[(svals["layer"] == layer) & ~svals["erased"]]
    series = {v: np.log10(d["value"].to_numpy()) for v, d in data.groupby("variant")}
    hist = binned(series, bins=40).rename(columns={"series": "variant"})
    erased = svals[(svals["layer"] == layer) & svals["erased"]].groupby("variant").size()
    note = ", ".join(f"{v}: {n}" for v, n in erased.items()) or "none"
    return (
        alt.Chart(hist, title=[f"Layer {layer}: log₁₀ singular values", f"(erased, not drawn: {note})"])
        .mark_bar(opacity=0.55, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="log₁₀ singular value (0 ⇔ 1)"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="count", stack=None),
            color=_variant_color(hist),
            tooltip=[
                "variant:N",
                alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                alt.Tooltip("bin_end:Q", format=".2f", title="to"),
                "count:Q",
            ],
        )
        .properties(height=260)
    )


def grad_chart(grads: pd.DataFrame) -> alt.Chart:
    data = _finite(grads[grads["value"] > 0], "value")
    pick = _pick()
    return (
        alt.Chart(data, title="‖∂L/∂h_i‖ from the output back to the input")
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("layer:Q", title="layer i (0 = input)", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title="gradient norm (log)", scale=alt.Scale(type="log")),
            color=_variant_color(data),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            tooltip=["variant:N", "layer:Q", alt.Tooltip("value:Q", format=".3g", title="‖∂L/∂h‖")],
        )
        .add_params(pick)
        .properties(height=260)
    )
