"""Normalization Steps page: its state table, controls, cached computation and charts."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from bn_core.data import DISTRIBUTIONS, MAX_COLS, MAX_ROWS, ParsedCSV, parse_csv
from bn_core.experiments.steps import (
    NORM_SHAPE,
    StepsConfig,
    StepsResult,
    norm_comparison,
    run_steps,
)
from bn_core.experiments.steps import normalized_verdict as normalized_verdict  # re-exported for the page
from bn_core.experiments.steps_quiz import questions as questions  # re-exported for the page
from ui import charts, common, present, widgets
from ui.cache import cached
from ui.charts import arrow_spec
from ui.sidebar import bump_seed, seed
from ui.state import Field, PageState

EPS_GRID = tuple(10.0**k for k in range(-10, 1))  # ε on a log scale
MAX_SYNTH_C = 8
DEFAULTS = StepsConfig()
PER_FEATURE = {  # list field → (default for a new feature, lower, upper, label)
    "mean": (0.0, -1e3, 1e3, "mean"),
    "scale": (1.0, 0.0, 1e3, "scale"),
    "gamma": (1.0, -1e4, 1e4, "γ"),
    "beta": (0.0, -1e6, 1e6, "β"),
}
_LIST_DEFAULTS = {"mean": DEFAULTS.means, "scale": DEFAULTS.scales, "gamma": DEFAULTS.gamma, "beta": DEFAULTS.beta}

STATE = PageState(
    "steps",
    [
        Field("source", "synthetic", "choice", choices=("synthetic", "upload", "paste"), label="data source"),
        Field("dist", DEFAULTS.distribution, "choice", choices=DISTRIBUTIONS, label="distribution"),
        Field("N", DEFAULTS.n, "int", 1, 512, label="batch size N"),
        Field("C", len(DEFAULTS.means), "int", 1, MAX_SYNTH_C, label="features C"),
        Field("j", 0, "int", 0, MAX_COLS - 1, label="feature"),
        Field("i", 0, "int", 0, MAX_ROWS - 1, label="tracked example"),
        *(
            Field(name, _LIST_DEFAULTS[name], "floats", lo, hi, max_len=MAX_COLS, label=label)
            for name, (_fill, lo, hi, label) in PER_FEATURE.items()
        ),
        Field("all", False, "bool", label="apply to all features"),
        Field("eps", DEFAULTS.eps, "float", EPS_GRID[0], EPS_GRID[-1], choices=EPS_GRID, label="ε"),
        Field("backend", DEFAULTS.backend, "choice", choices=("manual", "torch")),
        Field("G", 2, "int", 1, NORM_SHAPE[1], label="groups G"),
    ],
)


BACKWARD_TEX = (
    r"\frac{\partial L}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma^2_\mathcal{B}+\epsilon}}"
    r"\left(m\,\frac{\partial L}{\partial y_i} - \sum_k \frac{\partial L}{\partial y_k}"
    r" - \hat{x}_i \sum_k \frac{\partial L}{\partial y_k}\hat{x}_k\right)"
)
TRY_THIS = (
    "Set the feature's scale to 0.001 and ε to 1e-5: the variance is now smaller than ε, so x̂ no longer has "
    "variance 1. Slide ε down and watch it recover.",
    "Press **γ ← σ_B, β ← μ_B** below: the output y equals the input x again. BN can undo itself.",
    "Switch the distribution to *heavy outliers*: one extreme value drags μ_B and inflates σ²_B for everyone.",
    "Set the batch size N to 1: train-mode BN refuses it, and the page says why.",
)

# -- cached computation -------------------------------------------------------------


@cached(max_entries=16)
def parsed_csv(raw: bytes) -> ParsedCSV:
    return parse_csv(raw)


@cached(max_entries=64)
def compute(cfg: StepsConfig, _progress=None) -> StepsResult:
    return run_steps(cfg)


@cached(max_entries=64)
def histogram_specs(cfg: StepsConfig) -> list[dict]:
    """Vega-Lite specs of the x, x̂ and y histograms (cached: building Altair charts costs more than the math)."""
    hist = compute(cfg).hist
    return [arrow_spec(histogram_chart(part)) for _series, part in hist.groupby("series", sort=False)]


@cached(max_entries=32)
def norms(seed: int, groups: int) -> pd.DataFrame:
    return norm_comparison(seed, groups)


@cached(max_entries=32)
def norms_specs(seed: int, groups: int) -> list[dict]:
    """One heatmap spec per norm kind: separate charts take their column's width and stack on a phone."""
    titles = {"batch": "Batch norm", "layer": "Layer norm", "instance": "Instance norm", "group": "Group norm"}
    tips = [
        "kind:N",
        "n:O",
        "c:O",
        "group:N",
        alt.Tooltip("mean:Q", format=".4f"),
        alt.Tooltip("var:Q", format=".4f"),
        "values_shared:Q",
    ]
    return [
        arrow_spec(charts.heatmap(part, x="c", y="n", color="group", tooltips=tips, title=titles[kind]))
        for kind, part in norms(seed, groups).groupby("kind", sort=False)
    ]


# -- data source --------------------------------------------------------------------


def data_source() -> tuple[bytes | None, ParsedCSV | None]:
    """Source controls. Returns the CSV bytes (None for synthetic data) and their parse report."""
    widgets.choice(
        STATE,
        "source",
        "Data",
        style="segmented",
        fmt={"synthetic": "Synthetic batch", "upload": "Upload CSV", "paste": "Paste CSV"}.get,
    )
    if STATE["source"] == "synthetic":
        a, b, c, d = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
        widgets.choice(STATE, "dist", "Distribution", where=a)
        widgets.slider(STATE, "N", "Batch size N", where=b)
        widgets.slider(STATE, "C", "Features C", where=c)
        d.button(
            "New batch",
            icon=":material/casino:",
            on_click=bump_seed,
            help="Next global seed: a fresh draw from the same distribution",
        )
        return None, None
    if STATE["source"] == "upload":
        upload = st.file_uploader("CSV file: rows are examples, columns are numeric features", type=["csv", "txt"])
        raw = upload.getvalue() if upload is not None else None
    else:
        text = st.text_area(
            "Paste CSV: rows are examples, columns are features",
            height=120,
            key="steps:paste",
            placeholder="height,weight\n1.70,65\n1.82,80\n1.65,58",
        )
        raw = text.encode() if text.strip() else None
    if raw is None:
        st.info("Waiting for data. Rows are examples, columns are numeric features; the first row may be a header.")
        return None, None
    return raw, parsed_csv(raw)


def fit_lists(c: int, n: int) -> tuple[int, int]:
    """Make every per-feature list at least C long (never cut: switching data back loses nothing);
    return the feature j and example i to show, in range.

    The feature box can only hold one of the C columns, so j is clamped (and the page says so).
    The tracked example keeps its value, so a batch made smaller and then larger again comes
    back to the same example; only the one shown moves, with a notice.
    """
    for name, (fill, *_rest) in PER_FEATURE.items():
        values = tuple(STATE[name])
        STATE[name] = values + (fill,) * max(0, c - len(values))
    if int(STATE["j"]) > c - 1:
        st.info(f"Feature j = {STATE['j']} is past the last of the {c} columns; showing feature {c - 1}.")
        STATE["j"] = c - 1
    i = min(int(STATE["i"]), max(n - 1, 0))
    if i != int(STATE["i"]):
        st.info(f"Example i = {STATE['i']} is past the end of this batch (N = {n}); showing example {i}.")
    for name in PER_FEATURE:  # the edit sliders show the chosen feature's values
        st.session_state[f"steps:edit_{name}"] = float(STATE[name][STATE["j"]])
    return int(STATE["j"]), i


def _write_edit(name: str) -> None:
    """Edit-slider callback: store the value for feature j, or for every feature."""
    value, values = float(st.session_state[f"steps:edit_{name}"]), list(STATE[name])
    targets = range(len(values)) if STATE["all"] else [int(STATE["j"])]
    for k in targets:
        values[k] = value
    STATE[name] = tuple(values)


def set_feature_values(updates: dict[str, float]) -> None:
    """Button callback: set some per-feature values of the chosen feature."""
    for name, value in updates.items():
        _fill, lo, hi, _label = PER_FEATURE[name]
        values = list(STATE[name])
        values[int(STATE["j"])] = min(max(float(value), lo), hi)
        STATE[name] = tuple(values)


def undo_button(r: StepsResult, j: int) -> None:
    """The "BN can undo itself" button: γ ← σ_B, β ← μ_B for feature j."""
    stats = r.stats.iloc[j]
    st.button(
        "γ ← σ_B, β ← μ_B (for this feature)",
        on_click=set_feature_values,
        args=({"gamma": float(stats.sigma_B), "beta": float(stats.mu_B)},),
    )


# -- controls -----------------------------------------------------------------------


def feature_controls(columns: tuple[str, ...], synthetic: bool) -> None:
    """Which feature and example to follow, and that feature's mean, scale, γ and β."""
    a, b = st.columns(2)
    widgets.choice(
        STATE, "j", "Feature j to inspect and edit", options=range(len(columns)), fmt=lambda k: columns[k], where=a
    )
    widgets.number(STATE, "i", "Tracked example i", where=b)
    names = [*(("mean", "scale") if synthetic else ()), "gamma", "beta"]
    cols = st.columns(len(names) + 1, vertical_alignment="bottom")
    for col, name in zip(cols, names, strict=False):
        _fill, lo, hi, label = PER_FEATURE[name]
        present.place(col).number_input(
            f"{label} of feature j",
            lo,
            hi,
            step=0.1,
            format="%g",
            key=f"steps:edit_{name}",
            on_change=_write_edit,
            args=(name,),
        )
    widgets.toggle(
        STATE,
        "all",
        "Apply to all features",
        where=cols[-1],
        help="On: an edit to mean, scale, γ or β sets that value for every feature.",
    )


def bn_controls() -> None:
    a, b = st.columns([3, 2])
    widgets.grid_slider(STATE, "eps", "ε (log scale)", fmt="{:.0e}", where=a)
    widgets.choice(
        STATE,
        "backend",
        "Backend",
        style="radio",
        where=b,
        fmt={"manual": "manual (bn_core.functional)", "torch": "torch (F.batch_norm)"}.get,
    )


def config(csv: bytes | None, c: int) -> StepsConfig:
    """The experiment config for the first ``c`` features."""
    first = {name: tuple(STATE[name][:c]) for name in PER_FEATURE}
    return StepsConfig(
        distribution=STATE["dist"],
        n=int(STATE["N"]),
        means=first["mean"],
        scales=first["scale"],
        gamma=first["gamma"],
        beta=first["beta"],
        eps=float(STATE["eps"]),
        backend=STATE["backend"],
        feature=int(STATE["j"]),
        seed=seed(),
        csv=csv,
    )


# -- presentation -------------------------------------------------------------------


def _num(v: float, sig: int = 4) -> str:
    """A number for LaTeX with ``sig`` significant digits, powers of ten spelled out, negatives in parentheses."""
    mantissa, _, exponent = f"{v:.{sig}g}".partition("e")
    if exponent:
        power = f"10^{{{int(exponent)}}}"
        mantissa = power if mantissa in ("1", "-1") else rf"{mantissa} \times {power}"
        mantissa = f"-{power}" if f"{v:.{sig}g}".startswith("-1e") else mantissa
    return f"({mantissa})" if v < 0 else mantissa


def digits_to_show(values: np.ndarray, mu: float, sig: int = 4) -> int:
    """Significant digits that keep every printed x − μ_B honest: ``sig`` digits of the smallest
    nonzero difference survive the rounding of x and μ_B (at most 15, float64's limit)."""
    diffs = np.abs(values - mu)
    scale = max(float(np.max(np.abs(values))), abs(mu))
    nonzero = diffs[diffs > 0]
    if not nonzero.size or scale == 0:
        return sig
    return int(min(15, sig + max(0, np.ceil(np.log10(scale / nonzero.min())))))


def step_equations(r: StepsResult, j: int, i: int) -> list[str]:
    """The four steps of Algorithm 1 with this batch's numbers for feature j, example i.

    x and μ_B are printed with as many digits as it takes for every shown x − μ_B to be
    right as printed (a tiny-scale feature would otherwise show "(2 − 2)").
    """
    x, s = r.x[:, j], r.stats.iloc[j]
    m, d = len(x), digits_to_show(r.x[: max(3, i + 1), j], float(s.mu_B))
    head = " + ".join(_num(v, d) for v in x[:3]) + (r" + \dots" if m > 3 else "")
    sq = " + ".join(f"({_num(v, d)} - {_num(s.mu_B, d)})^2" for v in x[:2]) + (r" + \dots" if m > 2 else "")
    return [
        rf"\mu_\mathcal{{B}} = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} x_i = \frac{{1}}{{{m}}}\left({head}\right)"
        rf" = {_num(s.mu_B, d)}",
        rf"\sigma^2_\mathcal{{B}} = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}}(x_i-\mu_\mathcal{{B}})^2 = \frac{{1}}{{{m}}}"
        rf"\left({sq}\right) = {_num(s.var_B)}",
        rf"\hat{{x}}_{{{i}}} = \frac{{x_{{{i}}} - \mu_\mathcal{{B}}}}{{\sqrt{{\sigma^2_\mathcal{{B}} + \epsilon}}}}"
        rf" = \frac{{{_num(x[i], d)} - {_num(s.mu_B, d)}}}{{\sqrt{{{_num(s.var_B)} + {_num(r.eps)}}}}}"
        rf" = {_num(r.x_hat[i, j])}",
        rf"y_{{{i}}} = \gamma\,\hat{{x}}_{{{i}}} + \beta = {_num(s.gamma)} \cdot {_num(r.x_hat[i, j])} + {_num(s.beta)}"
        rf" = {_num(r.y[i, j])}",
    ]


def marked_table(r: StepsResult, i: int) -> pd.DataFrame:
    """The N×C table of x, x̂ and y, the tracked example marked ▶ in the first column.

    A marker column instead of a pandas Styler: styling the whole table was 38 % of a
    rerun's server CPU under 30 sessions (docs/load.md).
    """
    return r.table.assign(tracked=np.where(r.table["example"] == i, "▶", "")).iloc[:, [-1, *range(r.table.shape[1])]]


def histogram_chart(part: pd.DataFrame) -> alt.Chart:
    """One series' histogram (x, x̂ or y), titled with the series."""
    return charts.histogram(part, x_title=str(part["series"].iloc[0]), height=170)


def norms_panel() -> tuple[list[dict], pd.DataFrame]:
    """The norm-comparison heatmaps' specs and the summary table, for the global seed and G."""
    return norms_specs(seed(), int(STATE["G"])), norms_summary(seed(), int(STATE["G"]))


@dataclass(frozen=True)
class Tables:
    """Sections 4, 5 and 7's tables with their column formats, built once per (batch, tracked example):
    every rerun of every session draws them, and preparing them was a fifth of the page's CPU."""

    batch: pd.DataFrame  # the N×C table, the tracked example marked
    batch_config: dict
    stats: dict  # column formats of StepsResult.stats, .backends, .backward, .grads
    backends: dict
    backward: dict
    grads: dict


@cached(max_entries=64)
def tables(cfg: StepsConfig, i: int) -> Tables:
    r = compute(cfg)
    return Tables(
        marked_table(r, i),
        table_config(r),
        *(common.number_config(frame) for frame in (r.stats, r.backends, r.backward, r.grads)),
    )


def table_config(r: StepsResult) -> dict:
    """Readable numbers in every column of the batch table (scientific where they are tiny or huge)."""
    return {"tracked": st.column_config.TextColumn("", width="small"), **common.number_config(r.table)}


@cached(max_entries=32)
def norms_summary(seed: int, groups: int) -> pd.DataFrame:
    return group_summary(norms(seed, groups))


def group_summary(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby("kind", sort=False)
    return pd.DataFrame(
        {"statistics (mean, var) pairs": g["group"].nunique(), "values per pair": g["values_shared"].first()}
    )
