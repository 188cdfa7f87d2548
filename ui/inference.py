"""Train vs Inference page: its state table, cached runs and chart specs, charts, and computed sentences."""

from __future__ import annotations

import math
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.inference import (
    FOLD_ARCHS,
    FT_CLASSES,
    FT_STEPS,
    MOMENTA,
    FinetuneResult,
    FoldResult,
    ForgotEvalResult,
    InferenceConfig,
    InferenceRun,
    LagResult,
    ShiftResult,
    TwoModes,
    ValidationResult,
    bessel_table,
    ema_slice,
    final_stats,
    finetune_lab,
    fold_lab,
    forgot_eval_lab,
    half_life,
    lag_lab,
    momentum_table,
    run_inference,
    shift_lab,
    two_modes,
    validation_lab,
)
from ui import charts, common, widgets
from ui.sidebar import seed
from ui.state import Field, PageState

DEFAULTS = InferenceConfig()
LR_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
N_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 450.0)  # 450 = the whole test set
LABS = {
    "eval": "Forgot model.eval()",
    "val": "Validation in train mode",
    "finetune": "Frozen fine-tuning",
    "shift": "Domain shift + AdaBN",
    "lag": "EMA lag",
}


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
        Field("lab", "eval", "choice", choices=tuple(LABS), label="lab"),
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


def momentum_label(m: float | None) -> str:
    return "None (cumulative average)" if m is None else f"{m:g}"


# -- cached computation (one shared entry per config: 30 students, one run) -----------


@st.cache_data(max_entries=24, show_spinner=False)
def compute(cfg: InferenceConfig, _progress=None) -> InferenceRun:
    return run_inference(cfg, progress=_progress)


@st.cache_data(max_entries=48, show_spinner=False)
def modes(cfg: InferenceConfig, n: int, _progress=None) -> TwoModes:
    return two_modes(compute(cfg), n)


@st.cache_data(max_entries=16, show_spinner=False)
def forgot(cfg: InferenceConfig, _progress=None) -> ForgotEvalResult:
    return forgot_eval_lab(compute(cfg))


@st.cache_data(max_entries=16, show_spinner=False)
def validation(cfg: InferenceConfig, _progress=None) -> ValidationResult:
    return validation_lab(compute(cfg))


@st.cache_data(max_entries=16, show_spinner=False)
def finetune(cfg: InferenceConfig, _progress=None) -> FinetuneResult:
    return finetune_lab(compute(cfg))


@st.cache_data(max_entries=32, show_spinner=False)
def shift(cfg: InferenceConfig, a: float, b: float, noise: float, _progress=None) -> ShiftResult:
    return shift_lab(compute(cfg), a, b, noise)


@st.cache_data(max_entries=16, show_spinner=False)
def lag(cfg: InferenceConfig, lag_lr: float, _progress=None) -> LagResult:
    """The page's run next to the same run at a higher learning rate (itself a cached page run)."""
    return lag_lab(compute(cfg), compute(replace(cfg, lr=lag_lr), _progress=_progress))


@st.cache_data(max_entries=16, show_spinner=False)
def folding(cfg: InferenceConfig, arch: str, _progress=None) -> FoldResult:
    """Timings are measured once, when this entry is first computed, on this server."""
    return fold_lab(compute(cfg), arch, progress=_progress)


# Views: the few numbers and sentences one rerun shows, cached apiece, so that a rerun unpickles a few
# kilobytes instead of the whole recorded run (2.7 MB), and the text is not recomputed for each student.
@st.cache_data(max_entries=24, show_spinner=False)
def overview(cfg: InferenceConfig, _progress=None) -> dict:
    """Status and the run-level sentences; trains the run on a cache miss (with the progress bar)."""
    run = compute(cfg, _progress=_progress)
    if run.diverged_at is not None:
        return {"diverged_at": run.diverged_at, "status": run.status}
    layers = range(1, cfg.depth + 1)
    return {
        "diverged_at": None,
        "status": run.status,
        "caption": run_sentence(run),
        "ema_caption": ema_caption(run),
        "gap": {layer: gap_sentence(run, layer) for layer in layers},
    }


@st.cache_data(max_entries=64, show_spinner=False)
def unit_view(cfg: InferenceConfig, layer: int, feature: int) -> tuple[dict, dict, bytes]:
    """One unit's final EMA vs precise BN, the Bessel numbers, and its statistics over training as CSV."""
    run = compute(cfg)
    frame = ema_slice(run, layer, feature)
    return final_stats(run, layer, feature), bessel_table(run, layer, feature), frame.to_csv(index=False).encode()


@st.cache_data(max_entries=64, show_spinner=False)
def modes_view(cfg: InferenceConfig, n: int, layer: int, feature: int, _progress=None) -> dict:
    tm = modes(cfg, n, _progress=_progress)
    if tm.errors:
        return {"errors": tm.errors}
    return {"errors": {}, "sentence": modes_sentence(tm, layer), "why": why_table(tm, layer, feature)}


@st.cache_data(max_entries=16, show_spinner=False)
def fold_view(cfg: InferenceConfig, arch: str, _progress=None) -> tuple[str, pd.DataFrame]:
    r = folding(cfg, arch, _progress=_progress)
    return fold_sentence(r), r.checks


# Chart specs are cached too: building and validating Altair charts costs more than the math.
@st.cache_data(max_entries=64, show_spinner=False)
def ema_spec(cfg: InferenceConfig, layer: int, feature: int) -> dict:
    return ema_chart(ema_slice(compute(cfg), layer, feature)).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def modes_spec(cfg: InferenceConfig, n: int, layer: int) -> dict:
    hist = modes(cfg, n).hist
    chart = charts.histogram(hist[hist["layer"] == layer], x_title="BN output y (all units)", column="series")
    return chart.resolve_scale(x="independent").to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def gap_specs(cfg: InferenceConfig, layer: int) -> tuple[dict, dict]:
    run = compute(cfg)
    sizes = _gap_labels(run.gap_sizes[run.gap_sizes["layer"] == layer])
    steps = _gap_labels(run.checks[(run.checks["layer"] == layer) & run.checks["metric"].isin(GAP_LABELS)])
    title = "|y_train − y_eval|"
    by_size = charts.lines(sizes, x="batch_size", color="metric", y_title=title, log_y=True, points=True, height=220)
    by_size = by_size.encode(x=_log2_x("batch_size", "batch size fed (log scale)"))
    by_step = charts.lines(steps, color="metric", x_title="training step", y_title=title, log_y=True, height=220)
    return by_size.to_dict(), by_step.to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def forgot_spec(cfg: InferenceConfig) -> dict:
    frame = forgot(cfg).accuracy.dropna()
    chart = charts.lines(frame, x="batch_size", y="accuracy", color="mode", y_title="test accuracy", points=True)
    return chart.encode(x=_log2_x("batch_size", "prediction batch size (log scale)")).properties(height=240).to_dict()


def _log2_x(field: str, title: str) -> alt.X:
    """A log-2 x axis that ends at the data (no rounding out to the next power of ten)."""
    return alt.X(f"{field}:Q", title=title, scale=alt.Scale(type="log", base=2, nice=False))


@st.cache_data(max_entries=16, show_spinner=False)
def validation_spec(cfg: InferenceConfig) -> dict:
    titles = {"eval_acc": "eval-mode test accuracy", "drift": "largest running_mean move (std)"}
    return _two_panels(
        validation(cfg).trace, "batch", "order", titles, "validation batches run in train mode"
    ).to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def finetune_spec(cfg: InferenceConfig) -> dict:
    titles = {"drift": "largest running_mean move (std)", "old_task_acc": "original task accuracy"}
    return _two_panels(finetune(cfg).trace, "step", "variant", titles, "fine-tuning step").to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def shift_spec(cfg: InferenceConfig, a: float, b: float, noise: float) -> dict:
    sweep = shift(cfg, a, b, noise).sweep
    line = charts.lines(sweep, x="brightness", y="accuracy", color="variant", x_title="brightness shift b",
                        y_title="test accuracy", points=True, height=240)  # fmt: skip
    rule = alt.Chart(pd.DataFrame({"brightness": [b]})).mark_rule(strokeDash=[4, 3]).encode(x="brightness:Q")
    return alt.layer(line, rule).to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def lag_spec(cfg: InferenceConfig, lag_lr: float) -> dict:
    trace = lag(cfg, lag_lr).trace
    names = {"acc_ema": "EMA (running stats)", "acc_precise": "precise BN"}
    acc = trace[trace["metric"] != "stat_error"].assign(statistics=lambda f: f["metric"].map(names))
    err = trace[trace["metric"] == "stat_error"]
    left = (
        alt.Chart(acc)
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title="test accuracy", scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", scale=alt.Scale(range=charts.PALETTE)),
            strokeDash=alt.StrokeDash("statistics:N", title="eval with", sort=list(names.values())),
            tooltip=["run:N", "statistics:N", "step:Q", alt.Tooltip("value:Q", format=".3f", title="accuracy")],
        )
        .properties(height=240)
    )
    right = charts.lines(err, color="run", x_title="step", y_title="|running_mean − population mean| / std",
                         height=240)  # fmt: skip
    return alt.hconcat(left, right).resolve_scale(color="shared").to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def fold_spec(cfg: InferenceConfig, arch: str) -> dict:
    return fold_chart(folding(cfg, arch).timing).to_dict()


# -- controls -----------------------------------------------------------------------


def controls() -> None:
    widgets.preset_picker(STATE)
    a, b, c, d = st.columns(4)
    widgets.choice(STATE, "m", "BN momentum (PyTorch)", fmt=lambda k: momentum_label(MOMENTUM_OF[k]), where=a)
    widgets.grid_slider(STATE, "lr", "Learning rate (SGD)", where=b)
    widgets.slider(STATE, "B", "Batch size B", where=c)
    widgets.slider(STATE, "steps", "Training steps", step=50, where=d)


def config() -> InferenceConfig:
    return InferenceConfig(
        momentum=MOMENTUM_OF[STATE["m"]],
        batch_size=int(STATE["B"]),
        lr=float(STATE["lr"]),
        steps=int(STATE["steps"]),
        seed=seed(),
    )


def unit_controls() -> tuple[int, int]:
    a, b = st.columns([1, 3])
    widgets.choice(STATE, "layer", "BN layer", style="radio", where=a)
    widgets.slider(STATE, "j", "Feature (unit) of that layer", where=b)
    return int(STATE["layer"]), int(STATE["j"])


# -- sentences and small tables (every number is computed) --------------------------


def run_sentence(run: InferenceRun) -> str:
    c = run.config
    return (
        f"Trained for real: digits MLP 64 → {c.width} → {c.width} → 10, Linear → BN → ReLU, SGD lr {c.lr:g}, "
        f"batch {c.batch_size}, {c.steps} steps, momentum {momentum_label(c.momentum)}, seed {c.seed}: "
        f"**{run.test_acc:.1%}** test accuracy in eval mode ({run.wall_s:.1f} s when first computed)."
    )


def ema_caption(run: InferenceRun) -> str:
    return (
        "Grey: each batch's μ_B and σ²_B (biased, as the forward pass uses them). Blue: the EMA after each step. "
        f"Orange: precise BN, the exact statistics of the current weights over all {run.n_train:,} training "
        f"images, recomputed every {run.config.precise_every} steps with the weights frozen. Click the legend."
    )


def ema_sentence(s: dict, layer: int, feature: int) -> str:
    return (
        f"After the last step, unit {feature} of layer {layer}: running_mean **{s['running_mean']:.4f}** vs the "
        f"population mean of the final weights **{s['precise_mean']:.4f}** (off by {s['mean_error_in_std']:.2f} "
        f"population std); running_var **{s['running_var']:.4f}** vs **{s['precise_var']:.4f}** "
        f"(ratio {s['var_ratio']:.3f})."
    )


def ema_latex(momentum: float | None) -> list[str]:
    m = r"\texttt{momentum}" if momentum is not None else r"\tfrac{1}{k}"
    rm, rv = r"\texttt{running\_mean}", r"\texttt{running\_var}"
    return [
        rf"{rm} \leftarrow (1 - {m})\cdot {rm} + {m}\cdot \mu_\mathcal{{B}}",
        rf"{rv} \leftarrow (1 - {m})\cdot {rv} + {m}\cdot \frac{{m}}{{m-1}}\,\sigma^2_\mathcal{{B}}",
    ]


MOMENTUM_NOTE = (
    " The momentum never changes training itself: train mode normalizes with μ_B and σ²_B, so for one seed every "
    "momentum gives bitwise the same weights; only the statistics eval mode uses, and its accuracy, differ."
)


def momentum_sentence(m: float | None) -> str:
    return _momentum_words(m) + MOMENTUM_NOTE


def _momentum_words(m: float | None) -> str:
    if m is None:
        return (
            "**momentum=None**: the k-th batch gets weight 1/k, so every batch since the start counts equally "
            "(a cumulative average). No half-life: early batches, from early weights, never fade."
        )
    approx, exact = half_life(m)
    return (
        f"**PyTorch momentum {m:g} = Keras momentum {1 - m:g}.** A batch's weight in the EMA halves every "
        f"ln 2 / m = **{approx:.2f}** steps (exactly ln 2 / −ln(1 − m) = {exact:.2f})."
    )


def keras_sentence(k: float) -> str:
    m = 1.0 - k
    if m <= 0:
        return "Keras momentum 1 is PyTorch momentum 0: the running statistics never move from their start."
    approx, exact = half_life(m)
    text = (
        f"Keras momentum **{k:g}** = PyTorch momentum **{m:.4g}**: half-life ln 2 / m = {approx:.3g} steps "
        f"(exact {exact:.3g})."
    )
    if 0 < k < 1:
        text += (
            f" Typing `momentum={k:g}` into PyTorch instead gives a half-life of {half_life(k)[1]:.3g} steps: "
            "a different EMA altogether."
        )
    return text


def _momentum_frame() -> pd.DataFrame:
    """The conversion table as text; momentum=None has no fixed Keras value or half-life (1/k at step k)."""
    table = momentum_table()
    text = table.map(lambda v: f"{v:.3f}" if isinstance(v, float) and not math.isnan(v) else "— (1/k at step k)")
    text["pytorch_momentum"] = table["pytorch_momentum"]
    return text.rename(
        columns={
            "pytorch_momentum": "PyTorch momentum",
            "keras_momentum": "Keras momentum",
            "half_life_ln2_over_m": "half-life ln2/m (steps)",
            "half_life_exact": "exact half-life (steps)",
            "weight_last_10": "weight of the last 10 batches",
        }
    )


MOMENTUM_FRAME = _momentum_frame()  # static: computed once per process, shown on every rerun


FOLD_COLUMNS = {
    "max_abs_diff": st.column_config.NumberColumn("max |folded − unfolded|", format="%.2e"),
    "max_abs_output": st.column_config.NumberColumn("max |output|", format="%.2f"),
    "tolerance": st.column_config.NumberColumn(format="%.1e"),
    "same_predictions": st.column_config.NumberColumn("same predictions", format="percent"),
}


def number_columns(frame: pd.DataFrame, fmt: str = "%.3f") -> dict:
    """A column_config giving every numeric column of ``frame`` the same format (cheaper than a Styler)."""
    numeric = frame.select_dtypes("number").columns
    return {c: st.column_config.NumberColumn(format=fmt) for c in numeric}


def bessel_latex(b: dict, width: int, layer: int) -> tuple[str, str]:
    m = int(b["m"])
    tex = (
        rf"\frac{{m}}{{m-1}} = \frac{{{m}}}{{{m - 1}}} = {b['factor']:.4f}, \qquad "
        rf"\sigma^2_\mathcal{{B}} = {b['var_B']:.5f} \;\rightarrow\; \frac{{m}}{{m-1}}\,\sigma^2_\mathcal{{B}}"
        rf" = {b['var_unbiased']:.5f}"
    )
    text = (
        f"Over the second half of training, across all {width} units of layer {layer}, the batch "
        f"variance σ²_B averaged **{b['ratio_biased']:.4f}** × the population variance (theory for m = {m}: "
        f"(m − 1)/m = {b['expected_biased']:.4f}); after the correction, **{b['ratio_unbiased']:.4f}** × "
        "(theory: 1). That is why `running_var` stores the unbiased estimate."
    )
    return tex, text


GAP_LABELS = {"gap_mean": "mean |Δ|", "gap_max": "max |Δ|"}


def _gap_labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(metric=frame["metric"].map(GAP_LABELS))


def modes_sentence(tm: TwoModes, layer: int) -> str:
    row = tm.summary.set_index("layer").loc[layer]
    return (
        f"The same {tm.n} test images through layer {layer}: the largest difference between the train-mode and "
        f"eval-mode outputs is **{row['max_abs_diff']:.4f}**, the mean {row['mean_abs_diff']:.4f}."
    )


def why_table(tm: TwoModes, layer: int, feature: int) -> pd.DataFrame:
    row = tm.features[(tm.features["layer"] == layer) & (tm.features["feature"] == feature)].iloc[0]
    return pd.DataFrame(
        {
            "statistic": ["mean", "variance"],
            "this batch (train mode)": [row["mu_B"], row["var_B"]],
            "running (eval mode)": [row["running_mean"], row["running_var"]],
        }
    )


def gap_sentence(run: InferenceRun, layer: int) -> str:
    sizes = run.gap_sizes[(run.gap_sizes["layer"] == layer) & (run.gap_sizes["metric"] == "gap_mean")]
    small, large = sizes.iloc[0], sizes.iloc[-1]
    steps = run.checks[(run.checks["layer"] == layer) & (run.checks["metric"] == "gap_mean")]
    ratio = math.sqrt(large["batch_size"] / small["batch_size"])
    return (
        f"Batch {small['batch_size']:.0f} → {large['batch_size']:.0f}: the mean gap fell from "
        f"{small['value']:.3f} to {large['value']:.3f} ({small['value'] / large['value']:.1f}×; the sampling "
        f"noise of μ_B alone would shrink ∝ 1/√B, {ratio:.1f}×). During training it went from "
        f"{steps['value'].iloc[0]:.3f} at step 0 (running statistics still 0 and 1) to {steps['value'].iloc[-1]:.3f}."
    )


# -- labs ---------------------------------------------------------------------------


def lab_forgot(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(forgot, cfg, label="Predicting in train and eval mode…")
    if r is None:
        return None
    for impl, text in r.errors.items():
        st.code(f"{impl}, train mode, batch of 1:\n{text}", language=None, wrap_lines=True)
    st.vega_lite_chart(forgot_spec(cfg), width="stretch")
    acc = r.accuracy.set_index(["batch_size", "mode"])["accuracy"]
    verdict = (
        f"Verdict: predicting one example at a time works only in eval mode ({acc[(1, 'eval mode')]:.1%}); train "
        f"mode raises the error above. In batches of 2 train mode gets **{acc[(2, 'train mode')]:.1%}**, of 8 "
        f"{acc[(8, 'train mode')]:.1%}, of 128 {acc[(128, 'train mode')]:.1%}; eval mode "
        f"{acc[(2, 'eval mode')]:.1%} at every size: its answer does not depend on the batch."
    )
    st.warning(verdict, icon="⚖️")
    return r.accuracy


def lab_validation(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(validation, cfg, label="Validating in train mode…")
    if r is None:
        return None
    st.vega_lite_chart(validation_spec(cfg), width="stretch")
    s = r.summary.set_index("order")
    st.dataframe(s, column_config=number_columns(s))
    c, sh = s.loc["class-sorted"], s.loc["shuffled"]
    st.warning(
        f"Verdict: validating in train mode reported **{sh['reported_acc']:.1%}** (shuffled) and "
        f"**{c['reported_acc']:.1%}** (class-sorted, like an unshuffled loader over class folders), against "
        f"{sh['eval_before']:.1%} in eval mode. It also moved running_mean by up to {c['drift']:.2f} std, so the "
        f"*next* eval run changed: {c['eval_before']:.1%} → **{c['eval_after']:.1%}** (class-sorted), "
        f"{sh['eval_before']:.1%} → {sh['eval_after']:.1%} (shuffled).",
        icon="⚖️",
    )
    return r.trace


def lab_finetune(cfg: InferenceConfig) -> pd.DataFrame | None:
    r = common.run(finetune, cfg, label="Fine-tuning a new head…")
    if r is None:
        return None
    st.vega_lite_chart(finetune_spec(cfg), width="stretch")
    s = r.summary.set_index("variant")
    st.dataframe(s, column_config=number_columns(s))
    tr, ev = s.iloc[0], s.iloc[1]
    st.warning(
        f"Verdict: with `requires_grad=False` every weight, γ and β moved by exactly {tr['param_change']:g}, yet "
        f"with BN left in train mode running_mean moved by up to **{tr['drift']:.2f} std** and the original "
        f"10-class accuracy fell {s['old_task_acc'].max():.1%} → **{tr['old_task_acc']:.1%}**. With the BN "
        f"layers in eval mode the statistics moved by {ev['drift']:g} and it stayed {ev['old_task_acc']:.1%}.",
        icon="⚖️",
    )
    return r.trace


def lab_shift(cfg: InferenceConfig) -> pd.DataFrame | None:
    a, b, c = st.columns(3)
    widgets.slider(STATE, "a", "Contrast a (x → a·x + b)", step=0.1, where=a)
    widgets.slider(STATE, "b", "Brightness b", step=0.1, where=b)
    widgets.slider(STATE, "noise", "Pixel noise σ", step=0.05, where=c)
    args = (float(STATE["a"]), float(STATE["b"]), float(STATE["noise"]))
    r = common.run(shift, cfg, *args, label="Shifting the test set and recomputing statistics…")
    if r is None:
        return None
    acc = r.accuracy.set_index("variant")["accuracy"]
    cols = st.columns(3)
    for col, (name, value) in zip(cols, acc.items(), strict=True):
        col.metric(name, f"{value:.1%}")
    st.vega_lite_chart(shift_spec(cfg, *args), width="stretch")
    recovered = "nothing was lost" if math.isnan(r.recovered) else f"AdaBN won back **{r.recovered:.0%}** of it"
    st.warning(
        f"Verdict: the shift cost {acc['clean'] - acc['shifted']:.1%} of accuracy ({acc['clean']:.1%} → "
        f"{acc['shifted']:.1%}); {recovered} ({acc['shifted + AdaBN']:.1%}) by recomputing the BN statistics "
        "on the shifted test inputs, labels unused.",
        icon="⚖️",
    )
    return r.sweep


def lab_lag(cfg: InferenceConfig) -> pd.DataFrame | None:
    widgets.grid_slider(STATE, "lag_lr", "High learning rate to compare with", fmt="{:g}")
    lag_lr = float(STATE["lag_lr"])
    r = common.run(lag, cfg, lag_lr, label=f"Training at lr {lag_lr:g}…")
    if r is None:
        return None
    st.vega_lite_chart(lag_spec(cfg, lag_lr), width="stretch")
    s = r.summary.set_index("run")
    st.dataframe(s, column_config=number_columns(s))
    calm, fast = s.iloc[0], s.iloc[-1]
    st.warning(
        f"Verdict (second half of training, momentum {momentum_label(cfg.momentum)}): at lr {fast['lr']:g} the "
        f"EMA sat **{fast['stat_error']:.3f}** std from the population mean of the current weights, vs "
        f"{calm['stat_error']:.3f} at lr {calm['lr']:g}; recomputing the statistics (precise BN) changed test "
        f"accuracy by **{fast['gap']:+.1%}** on average at lr {fast['lr']:g} and {calm['gap']:+.1%} at "
        f"lr {calm['lr']:g}. Final: EMA {fast['acc_ema_final']:.1%}, precise {fast['acc_precise_final']:.1%}."
        + _lag_hint(cfg.momentum),
        icon="⚖️",
    )
    return r.trace


def _lag_hint(m: float | None) -> str:
    if m is None or half_life(m)[1] > 20:
        return ""
    return (
        f" With momentum {m:g} the EMA forgets fast (half-life {half_life(m)[1]:.1f} steps), so it keeps up; "
        "the *EMA lag* preset uses Keras's default 0.99 (PyTorch 0.01)."
    )


LAB_RENDERERS = {
    "eval": lab_forgot,
    "val": lab_validation,
    "finetune": lab_finetune,
    "shift": lab_shift,
    "lag": lab_lag,
}


# -- folding ------------------------------------------------------------------------


def fold_sentence(r: FoldResult) -> str:
    f32 = r.checks[r.checks["dtype"] == "float32"]
    f64 = r.checks[r.checks["dtype"] == "float64"]
    sp = r.speedup.set_index(["batch_size", "baseline"])["speedup"]
    torch_name = "torch nn.BatchNorm (eval)"
    return (
        f"{r.n_folded} BN layers folded away. Largest |folded − unfolded| output: **{f32['max_abs_diff'].max():.2e}** "
        f"in float32 (outputs up to {f32['max_abs_output'].max():.1f}; tolerance 1e-6 × max(1, |output|)), "
        f"{f64['max_abs_diff'].max():.1e} in float64; identical predictions on "
        f"{f32['same_predictions'].min():.0%} of inputs; test accuracy {r.accuracy['unfolded']:.1%} → "
        f"{r.accuracy['folded']:.1%}. Measured on this server, interleaved, medians: the folded net is "
        f"**{sp[(1, torch_name)]:.2f}×** as fast as torch's BN for one image and {sp[(450, torch_name)]:.2f}× "
        "for the whole test set."
    )


def fold_chart(timing: pd.DataFrame) -> alt.FacetChart:
    return (
        alt.Chart(timing)
        .mark_bar()
        .encode(
            y=alt.Y("variant:N", title=None, sort=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("median_ms:Q", title="median time per forward pass (ms)"),
            color=alt.Color("variant:N", scale=alt.Scale(range=charts.PALETTE), legend=None),
            tooltip=["variant:N", "batch_size:Q", alt.Tooltip("median_ms:Q", format=".4f")],
        )
        .properties(width=300, height=110)
        .facet(column=alt.Column("batch_size:O", title="batch size"))
        .resolve_scale(x="independent")
        .properties(description="Live timing: folded vs unfolded forward passes, measured on this server")
    )


# -- charts -------------------------------------------------------------------------

EMA_COLORS = {"batch (μ_B, σ²_B)": "#ADB5BD", "running (EMA)": "#4C6EF5", "precise BN (population)": "#F76707"}


def ema_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """Mean (top) and variance (bottom) of one unit: every batch, the EMA, and precise BN every k steps."""
    pick = alt.selection_point(fields=["series"], bind="legend")
    domain, colors = list(EMA_COLORS), list(EMA_COLORS.values())
    base = alt.Chart().encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=domain, range=colors)),
        opacity=alt.condition(pick, alt.value(0.95), alt.value(0.12)),
        tooltip=["series:N", "stat:N", "step:Q", alt.Tooltip("value:Q", format=".5f")],
    )
    lines = base.transform_filter(f"datum.series != '{domain[-1]}'").mark_line(strokeWidth=2).add_params(pick)
    dots = base.transform_filter(f"datum.series == '{domain[-1]}'").mark_line(point=True, strokeWidth=2)
    return (
        alt.layer(lines, dots, data=frame)
        .properties(height=170, width=640)
        .facet(row=alt.Row("stat:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(y="independent")
    )


def _two_panels(trace: pd.DataFrame, x: str, color: str, titles: dict[str, str], x_title: str) -> alt.FacetChart:
    """Two metrics side by side, each with its own y scale (one legend, one highlight selection)."""
    data = trace[trace["metric"].isin(titles)].assign(metric=lambda f: f["metric"].map(titles))
    chart = charts.lines(data, x=x, color=color, x_title=x_title, points=True, height=220)
    chart = chart.encode(y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)))  # small moves must show
    return chart.properties(width=300).facet(column=alt.Column("metric:N", title=None)).resolve_scale(y="independent")


FT_NOTE = (
    f"Fine-tuning: a new {FT_CLASSES}-class head (digits 0–{FT_CLASSES - 1}) trained for {FT_STEPS} SGD steps on "
    "those digits only, over the trained backbone with `requires_grad=False`. The original-task accuracy uses the "
    "frozen backbone with the original 10-class head."
)


# -- words ----------------------------------------------------------------------------

LAB_TEXT = {
    "eval": (
        "**Forgot `model.eval()`.** The trained network predicts the test set in batches of 1 … 128, once in "
        "train mode (each batch normalized with its own statistics) and once in eval mode. A batch of one "
        "cannot be normalized in train mode: its variance is 0. Below, the real error texts."
    ),
    "val": (
        "**Validation run in train mode.** The trained network 'validates' on the test set with BN in train "
        "mode, batch B, as a forgotten `model.eval()` in a validation loop would, once shuffled and once "
        "class-sorted. After every validation batch the test set is scored properly in eval mode."
    ),
    "finetune": (
        "**Fine-tuning with `requires_grad=False`.** "
        + FT_NOTE
        + " Once with the model in train mode, once with every BN layer switched to eval mode."
    ),
    "shift": (
        "**Domain shift.** Every test pixel becomes a·x + b (+ noise). The network still normalizes with the "
        "training set's running statistics. **AdaBN** recomputes them on the shifted test inputs (no labels), "
        "keeping every weight."
    ),
    "lag": (
        "**EMA lag.** The EMA mixes statistics of *past* weights. At a high learning rate the weights move fast, "
        "so the EMA trails the population statistics of the current weights (precise BN). The page's run is "
        "compared with the same run at a higher learning rate; precise BN is recomputed every "
        f"{DEFAULTS.precise_every} steps."
    ),
}

FOLD_NAMES = {"mlp": "the page's MLP (Linear → BN1d)", "cnn": "a small CNN (Conv → BN2d), trained here"}

FOLD_NOTE = (
    "Foldable: BN right after a Linear or Conv (as here), and BN after the activation in the MLP (folded into the "
    "*next* Linear instead). Not foldable: BN after the activation in front of a zero-padded conv (the padding "
    "zeros would land on the wrong side of BN), layer/group/instance norm (per-example statistics at inference "
    "too), and BN without running statistics. The folded net has no BN left: one Linear/Conv per block."
)

_K_HALF = half_life(0.01)[1]
_P99_HALF = half_life(0.99)[1]

TRY_THIS = (
    "Pick the *Keras default 0.99* preset: the blue EMA trails the orange precise-BN points for many steps; the "
    "half-life table says how many.",
    "Set B = 4: the grey batch statistics scatter, σ²_B drops toward 3/4 of the population variance, and the "
    "train/eval gap of section 2 grows.",
    "Choose momentum *None*: the EMA averages every batch since step 1, including those of the early weights, so "
    "it lags precise BN: compare the numbers under the chart and the test accuracy in the caption.",
    "In the domain-shift lab set contrast a = −1 (inverted digits): AdaBN fixes shifts of mean and scale, "
    "not a sign flip.",
)

QUESTIONS = (
    (
        "**1.** You load a trained model and predict a single image without calling `model.eval()`. "
        "What happens with PyTorch's BatchNorm, and what changes with batches of 8?",
        "With one image, PyTorch raises *Expected more than 1 value per channel when training*: the batch "
        "variance of one value is 0, so x̂ would be 0 for everything. With 8 images it runs, but each image is "
        "normalized with its 7 neighbours' statistics, so its prediction depends on them. Lab *Forgot "
        "model.eval()* measures the cost.",
    ),
    (
        "**2.** Porting a Keras model, a colleague writes `nn.BatchNorm1d(C, momentum=0.99)`. "
        "What will `running_mean` track?",
        f"PyTorch's momentum is the weight of the *newest* batch, so 0.99 makes the running statistics almost "
        f"equal to the last batch's (half-life {_P99_HALF:.2f} steps). Keras's 0.99 is PyTorch's 0.01, "
        f"a half-life of {_K_HALF:.0f} steps.",
    ),
)
