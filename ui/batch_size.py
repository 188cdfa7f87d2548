"""Batch-Size Sensitivity page: its state table, cached experiments, chart specs and computed sentences."""

from __future__ import annotations

import math
import threading

import altair as alt
import pandas as pd
import streamlit as st

from bn_core.experiments.batch_size import (
    BATCH_STAT_VARIANTS,
    PAPER_TABLE,
    POPULATIONS,
    TRAIN_MODE_SUFFIX,
    VARIANT_LABELS,
    BatchOfOneResult,
    NoiseConfig,
    NoiseResult,
    NonIIDConfig,
    NonIIDResult,
    NormSettings,
    SweepConfig,
    SweepResult,
    batch_of_one,
    check_sweep,
    run_batch_sweep,
    run_noise,
    run_non_iid,
)
from ui import charts, widgets
from ui.sidebar import seed
from ui.state import Field, PageState

POW2 = tuple(float(2**k) for k in range(12))  # 1 … 2048: batch sizes (floats: the URL snaps to this grid)
M_GRID = tuple(float(2**k) for k in range(3, 11))  # 8 … 1024: largest batch in the noise experiment
LR_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
EPOCH_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
WIDTHS = (16, 32, 48, 64, 96, 128)
SWEEP_DEFAULT = SweepConfig()
TOGGLES = {"gn": "group", "ln": "layer", "plain": "none", "ghost": "ghost", "renorm": "renorm"}

STATE = PageState(
    "batch",
    [
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
        Field("train_eval", False, "bool", label="train-mode evaluation"),
        Field("G", 8, "int", 1, 128, label="groups G"),
        Field("g", 4, "int", 1, 64, label="ghost batch g"),
        Field("r_max", 3.0, "float", 1.0, 10.0, label="r_max"),
        Field("d_max", 5.0, "float", 0.0, 10.0, label="d_max"),
        Field("seeds", SWEEP_DEFAULT.n_seeds, "int", 1, 5, label="seeds"),
        Field("epochs", SWEEP_DEFAULT.epochs, "float", 0.5, 10, choices=EPOCH_GRID, label="epochs"),
        Field(
            "lr", SWEEP_DEFAULT.lr, "float", LR_GRID[0], LR_GRID[-1], choices=LR_GRID, label="learning rate at B = 32"
        ),
        Field("lr_rule", "linear", "choice", choices=("linear", "constant"), label="learning-rate rule"),
        Field("width", SWEEP_DEFAULT.width, "choice", choices=WIDTHS, label="width"),
        Field("run", False, "bool", label="train the sweep"),
        Field("niid_b", 32.0, "float", 2, 256, choices=POW2[1:9], label="non-i.i.d. batch size"),
        Field("niid_run", False, "bool", label="train the non-i.i.d. comparison"),
    ],
    presets={
        "Class default: BN vs GN, LN, none": {
            "b_min": 2.0,
            "b_max": 64.0,
            "gn": True,
            "ln": True,
            "plain": True,
            "ghost": False,
            "renorm": False,
            "train_eval": False,
            "seeds": 3,
            "epochs": 3.0,
            "lr_rule": "linear",
            "lr": 0.05,
        },
        "Remedies at small batches": {
            "b_min": 2.0,
            "b_max": 64.0,
            "gn": True,
            "ln": False,
            "plain": False,
            "ghost": True,
            "renorm": True,
            "train_eval": True,
            "seeds": 3,
            "epochs": 3.0,
            "lr_rule": "linear",
            "lr": 0.05,
        },
        "Constant learning rate": {"lr_rule": "constant", "lr": 0.05},
        "Quick look: 1 seed, 1 epoch": {"seeds": 1, "epochs": 1.0},
        "Extremes: batch 1 to 1024": {"b_min": 1.0, "b_max": 1024.0, "ghost": False, "renorm": False},
    },
)


# -- cached computations and chart specs (specs too: Altair's validation costs more than the math) ---------------


@st.cache_data(max_entries=32, show_spinner=False)
def compute_noise(cfg: NoiseConfig, _progress=None) -> NoiseResult:
    return run_noise(cfg)


@st.cache_data(max_entries=32, show_spinner=False)
def noise_specs(cfg: NoiseConfig) -> tuple[dict, dict]:
    result = compute_noise(cfg)
    return spread_chart(result).to_dict(), jitter_chart(result).to_dict()


@st.cache_data(max_entries=8, show_spinner=False)
def compute_sweep(cfg: SweepConfig, _progress=None) -> SweepResult:
    result = run_batch_sweep(cfg, _progress)
    _finished().add(cfg)
    return result


@st.cache_data(max_entries=8, show_spinner=False)
def sweep_spec(cfg: SweepConfig) -> dict:
    return sweep_chart(compute_sweep(cfg)).to_dict()


@st.cache_data(max_entries=8, show_spinner=False)
def compute_non_iid(cfg: NonIIDConfig, _progress=None) -> NonIIDResult:
    result = run_non_iid(cfg, _progress)
    _finished().add(cfg)
    return result


@st.cache_data(max_entries=8, show_spinner=False)
def non_iid_spec(cfg: NonIIDConfig) -> dict:
    return non_iid_chart(compute_non_iid(cfg)).to_dict()


@st.cache_data(max_entries=16, show_spinner=False)
def compute_one(seed: int) -> BatchOfOneResult:
    return batch_of_one(seed)


class _Finished:
    """Configs whose training finished in this server process: their results are shown without a click."""

    def __init__(self) -> None:
        self._lock, self._done = threading.Lock(), set()

    def add(self, cfg: object) -> None:
        with self._lock:
            self._done.add(cfg)

    def __contains__(self, cfg: object) -> bool:
        with self._lock:
            return cfg in self._done

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


@st.cache_resource
def _finished() -> _Finished:
    return _Finished()


def is_ready(cfg: object, flag: str) -> bool:
    """Show a training result when asked for (the flag is in the URL) or already computed by anyone."""
    return bool(STATE[flag]) or cfg in _finished()


def request(flag: str) -> None:
    """Button callback: train (the flag round-trips through the URL, so a shared link trains too)."""
    STATE[flag] = True


# -- controls and configs ------------------------------------------------------------


def noise_controls() -> None:
    a, b, c, d = st.columns(4)
    widgets.choice(STATE, "pop", "Population", where=a)
    widgets.slider(STATE, "R", "Batches drawn per size", step=100, where=b)
    widgets.grid_slider(STATE, "m_max", "Largest batch m", fmt="{:.0f}", where=c)
    widgets.slider(STATE, "q", "Tracked example (population quantile)", step=0.01, where=d)


def noise_config() -> NoiseConfig:
    return NoiseConfig(
        population=STATE["pop"],
        n_batches=int(STATE["R"]),
        m_max=int(STATE["m_max"]),
        tracked_quantile=float(STATE["q"]),
        seed=seed(),
    )


def _stale() -> None:
    """A training control changed: wait for a click before training the new configuration (unless cached)."""
    STATE["run"] = False
    STATE["niid_run"] = False


def _pick_preset() -> None:
    STATE.apply_preset()
    _stale()


SWITCHES = (
    ("gn", "Group Norm"),
    ("ln", "Layer Norm"),
    ("plain", "No norm"),
    ("ghost", "Ghost BN"),
    ("renorm", "Batch Renorm"),
    ("train_eval", "BN, train-mode test"),
)


def sweep_controls() -> None:
    """Preset, training settings and the curve switches. Any change waits for a click to train."""
    st.selectbox(
        "Preset",
        list(STATE.spec("preset").choices),
        key=STATE.key("preset"),
        on_change=_pick_preset,
        help="A preset sets the controls below; you can change any of them afterwards.",
    )
    kw = {"on_change": _stale}
    a, b, c, d = st.columns(4)
    widgets.grid_slider(STATE, "b_min", "Smallest batch B", fmt="{:.0f}", where=a, **kw)
    widgets.grid_slider(STATE, "b_max", "Largest batch B", fmt="{:.0f}", where=b, **kw)
    widgets.slider(STATE, "seeds", "Seeds per point", where=c, help="Seeds s, s+1, … from the global seed s", **kw)
    widgets.grid_slider(STATE, "epochs", "Epochs (every B)", fmt="{:g}", where=d, **kw)
    a, b, c, d = st.columns(4)
    widgets.grid_slider(STATE, "lr", "Learning rate at B = 32", fmt="{:g}", where=a, **kw)
    rule_help = "linear: lr × B/32 at batch B (Goyal et al. 2017); constant: the same lr at every B"
    widgets.choice(STATE, "lr_rule", "Learning-rate rule", style="radio", where=b, help=rule_help, **kw)
    widgets.choice(STATE, "width", "Hidden units per layer", where=c, **kw)
    widgets.number(STATE, "G", "Groups G (group norm)", where=d, **kw)
    st.markdown("**Curves on the chart** (BN is always on)")
    for col, (name, label) in zip(st.columns(len(SWITCHES)), SWITCHES, strict=True):
        widgets.toggle(STATE, name, label, where=col, **kw)
    # Always drawn (disabled when unused): a widget that disappears loses its value in Streamlit.
    a, b, c = st.columns(3)
    widgets.number(STATE, "g", "Ghost BN: ghost batch g", where=a, disabled=not STATE["ghost"], **kw)
    widgets.slider(STATE, "r_max", "Batch Renorm: r_max", step=0.1, where=b, disabled=not STATE["renorm"], **kw)
    widgets.slider(STATE, "d_max", "Batch Renorm: d_max", step=0.1, where=c, disabled=not STATE["renorm"], **kw)


def non_iid_controls() -> None:
    widgets.grid_slider(STATE, "niid_b", "Batch size B for the comparison", fmt="{:.0f}", on_change=_stale)


def batch_sizes() -> tuple[int, ...]:
    lo, hi = int(STATE["b_min"]), int(STATE["b_max"])
    if lo > hi:
        raise ValueError(f"The smallest batch ({lo}) is larger than the largest ({hi}): swap them.")
    return tuple(2**k for k in range(int(math.log2(lo)), int(math.log2(hi)) + 1))


def _settings(variants: tuple[str, ...]) -> NormSettings:
    """Only the settings a chosen variant uses enter the config, so unused controls do not split the cache."""
    default = NormSettings()
    return NormSettings(
        groups=int(STATE["G"]) if "group" in variants else default.groups,
        ghost_batch=int(STATE["g"]) if "ghost" in variants else default.ghost_batch,
        r_max=float(STATE["r_max"]) if "renorm" in variants else default.r_max,
        d_max=float(STATE["d_max"]) if "renorm" in variants else default.d_max,
    )


def _training(variants: tuple[str, ...], sizes: tuple[int, ...], train_eval: bool) -> SweepConfig:
    return SweepConfig(
        variants=variants,
        batch_sizes=sizes,
        n_seeds=int(STATE["seeds"]),
        seed=seed(),
        epochs=float(STATE["epochs"]),
        lr=float(STATE["lr"]),
        lr_rule=STATE["lr_rule"],
        width=int(STATE["width"]),
        settings=_settings(variants),
        eval_train_mode=train_eval,
    )


def sweep_config() -> SweepConfig:
    """The sweep the controls describe; ValueError for an inverted batch range."""
    variants = ("batch", *(v for name, v in TOGGLES.items() if STATE[name]))
    return _training(variants, batch_sizes(), bool(STATE["train_eval"]))


def checked_sweep_config() -> SweepConfig | None:
    """The sweep config, or None after showing why it cannot run (checked before any training)."""
    try:
        cfg = sweep_config()
        check_sweep(cfg)
    except ValueError as err:
        st.error(str(err), icon="⚠️")
        return None
    return cfg


NON_IID_VARIANTS = ("batch", "group", "renorm")


def non_iid_config() -> NonIIDConfig:
    """BN, GN and Batch Renorm at one batch size; seeds, width and G from the controls above."""
    sweep = SweepConfig(
        n_seeds=int(STATE["seeds"]), seed=seed(), width=int(STATE["width"]), settings=_settings(NON_IID_VARIANTS)
    )
    return NonIIDConfig(variants=NON_IID_VARIANTS, batch_size=int(STATE["niid_b"]), sweep=sweep)


def network_count(cfg: SweepConfig) -> int:
    return (
        sum(len([v for v in cfg.variants if not (B == 1 and v in BATCH_STAT_VARIANTS)]) for B in cfg.batch_sizes)
        * cfg.n_seeds
    )


# -- sentences (every number in them is computed) ------------------------------------------


def noise_sentence(r: NoiseResult) -> str:
    big = r.ratio[r.ratio["m"] >= 8]
    worst = float((big["ratio"] - 1).abs().max()) if len(big) else math.nan
    row = r.ratio.set_index(["m", "statistic"])
    small, large = int(r.ratio["m"].min()), int(r.ratio["m"].max())
    m2 = 2 if (2, "var_B") in row.index else small
    return (
        f"From m = {m2} to m = {large}, the spread of μ_B falls from **{row.loc[(m2, 'mu_B'), 'empirical']:.3g}** to "
        f"**{row.loc[(large, 'mu_B'), 'empirical']:.3g}** and that of σ²_B from "
        f"**{row.loc[(m2, 'var_B'), 'empirical']:.3g}** to **{row.loc[(large, 'var_B'), 'empirical']:.3g}**. "
        f"At m ≥ 8 the measured spreads are within **{worst:.1%}** of the theory lines. "
        "Quadrupling the batch only halves the noise."
        + (
            " (Over 10 %: here σ²_B is itself heavy-tailed, so its measured spread converges slowly; "
            "draw more batches.)"
            if worst > 0.10
            else ""
        )
    )


def jitter_sentence(r: NoiseResult) -> str:
    j = r.jitter.pivot(index="m", columns="metric", values="value")
    sizes = list(j.index)
    mid = 4 if 4 in sizes else sizes[min(2, len(sizes) - 1)]
    return (
        f"The followed example has x = {r.x0:.3g}; normalized with the population's own μ and σ it would be "
        f"**{r.z0:.3f}**. In batches of {mid}, its x̂ ranged from {j.loc[mid, 'p05']:.2f} to "
        f"{j.loc[mid, 'p95']:.2f} (5th-95th percentile, std {j.loc[mid, 'std']:.2f}); in batches of {sizes[-1]}, "
        f"from {j.loc[sizes[-1], 'p05']:.3f} to {j.loc[sizes[-1], 'p95']:.3f}. At m = 1 it is always "
        f"{j.loc[1, 'p50']:.0f}; at m = 2 it is ±1 whatever x is."
    )


def divergence_notes(runs: pd.DataFrame) -> list[str]:
    """One line per diverged network: "BN at B = 2, seed 1: diverged at step 17"."""
    bad = runs[runs["diverged_at"].notna() & runs["metric"].eq("test_error")]
    return [
        f"{VARIANT_LABELS[r.variant]} at B = {r.batch_size}, seed {r.seed}: diverged at step {r.diverged_at} "
        "(left out of the means; lower the learning rate)"
        for r in bad.itertuples()
    ]


def _error_at(s: SweepResult, series: str, batch: int) -> float:
    rows = s.summary[(s.summary["series"] == series) & (s.summary["batch_size"] == batch)]
    rows = rows[rows["metric"].str.startswith("test_error")]
    return float(rows["mean"].iloc[0]) if len(rows) else math.nan


def sweep_sentence(s: SweepResult) -> str:
    sizes = sorted(s.summary["batch_size"].unique())
    small = min(b for b in sizes if b >= 2) if any(b >= 2 for b in sizes) else sizes[0]
    large = 32 if 32 in sizes else sizes[-1]
    parts = [
        f"{series} **{_error_at(s, series, small):.1%}** at B = {small} vs {_error_at(s, series, large):.1%} at "
        f"B = {large}"
        for series in dict.fromkeys(s.summary["series"])
    ]
    return "Test error (mean over seeds): " + "; ".join(parts) + "."


def remedy_sentences(s: SweepResult) -> list[str]:
    """One sentence per remedy that is on the chart, with its numbers at the smallest batch ≥ 2."""
    sizes = [b for b in sorted(s.summary["batch_size"].unique()) if b >= 2]
    if not sizes:
        return []
    batch, bn = sizes[0], _error_at(s, "BN", sizes[0])
    out = []
    for series, what in (
        ("Ghost BN", f"normalizes over ghost batches of g = {s.config.settings.ghost_batch} (or B when smaller)"),
        (
            "Batch Renorm",
            f"corrects toward the running statistics (r_max = {s.config.settings.r_max:g}, "
            f"d_max = {s.config.settings.d_max:g})",
        ),
        ("GN", "normalizes each example over groups of its own units"),
        (
            "BN" + TRAIN_MODE_SUFFIX,
            "is the same BN network evaluated with test batches of B instead of the running statistics",
        ),
    ):
        err = _error_at(s, series, batch)
        if not math.isnan(err):
            out.append(f"**{series}** {what}: **{err:.1%}** test error at B = {batch}, against BN's {bn:.1%}.")
    return out


def non_iid_text(cfg: NonIIDConfig) -> str:
    return (
        f"**Non-i.i.d. batches.** With *class-sorted* batches each epoch is sorted by digit and cut into batches of "
        f"B = {cfg.batch_size}, so a batch holds one digit (two where digits meet); the batches come in random "
        f"order. Same networks, seeds and number of steps as with shuffled batches: {cfg.epochs:g} epochs at "
        f"lr = {cfg.lr:g} × B/32 (smaller than above: each class-sorted step pulls toward one digit, and only small "
        "steps average the digits out). Test error in eval mode, on the usual shuffled test set."
    )


def non_iid_sentence(r: NonIIDResult) -> str:
    s = r.summary.set_index(["series", "metric", "order"])["mean"]
    parts = [
        f"{series} {s[(series, 'test_error', 'shuffled')]:.1%} → **{s[(series, 'test_error', 'class_sorted')]:.1%}** "
        f"(training loss {s[(series, 'train_loss', 'class_sorted')]:.2f})"
        for series in dict.fromkeys(r.summary["series"])
    ]
    return (
        "Test error, shuffled → class-sorted batches: " + "; ".join(parts) + ". A training loss near ln 10 = "
        f"{math.log(10):.2f} means chance: within a one-digit batch, BN subtracts that digit's own mean, so what "
        "tells the digits apart is normalized away."
    )


def one_sentence(r: BatchOfOneResult) -> str:
    f = r.functional
    refused = r.outcomes[r.outcomes["outcome"] == "error"]["implementation"].tolist()
    return (
        f"Refused: {', '.join(f'`{name}`' for name in refused)}. The bare `batch_norm_forward` computes what the "
        f"math gives (table below): μ_B = x, σ²_B = **{f['var_B'].abs().max():.0f}**, "
        f"x̂ = **{f['x_hat'].abs().max():.0f}** for every channel, so y = β whatever x was, and the gradient "
        f"reaching x is at most **{f['dx'].abs().max():.1e}** (zero up to rounding): the example is erased."
    )


ONE_NOTE = (
    "Eval mode is fine with one example (it uses the running statistics), and so is BatchNorm2d on one image: "
    "each channel still has H·W values (here 9), so its statistics are that image's own, like instance norm. "
    "Group norm never needs a second example."
)

REMEDIES_TEXT = """
- **Ghost BN** (Hoffer et al. 2017): the *normalization* batch g is separate from the *optimization* batch B.
  With g fixed, its curve stays near BN's value at B = g whatever B is: the noise comes from the statistics' batch.
- **Batch Renorm** (Ioffe 2017): x̂ = (x − μ_B)/σ_B · r + d, with r = clip(σ_B/σ, 1/r_max, r_max) and
  d = clip((μ_B − μ)/σ, −d_max, d_max) held constant in the backward pass. Unclipped, training normalizes with
  the running μ, σ, exactly as inference does. r_max = 1, d_max = 0 is plain BN.
- **Group Norm** (Wu & He 2018): statistics over groups of units within one example: no batch dependence at all.
- **Train-mode evaluation**: the same BN networks, tested with the statistics of test batches of B (what they saw
  in training) instead of the running averages. The gap between the two is BN's train/test inconsistency.
"""


# -- tables --------------------------------------------------------------------------


def paper_table() -> pd.DataFrame:
    return PAPER_TABLE.rename(columns={"images_per_gpu": "images per GPU", "BN": "BN error %", "GN": "GN error %"})


def sweep_table(s: SweepResult) -> pd.DataFrame:
    errors = s.summary[s.summary["metric"].str.startswith("test_error")]
    table = errors.pivot_table(index="batch_size", columns="series", values="mean", sort=False) * 100
    return table.round(1).join(s.schedule.set_index("batch_size")[["steps", "lr"]])


def outcomes_table(r: BatchOfOneResult) -> pd.DataFrame:
    table = r.outcomes.rename(columns={"input_shape": "input", "outcome": "result"})
    return table.set_index("implementation")


# -- charts ---------------------------------------------------------------------------


STAT_LABELS = {"mu_B": "std of μ_B", "var_B": "std of σ²_B"}


def spread_chart(r: NoiseResult) -> alt.LayerChart:
    """Empirical spread (points) and theory (lines) of μ_B and σ²_B vs m, log-log. σ²_B ≡ 0 at m = 1 is left off."""
    data = r.spread[r.spread["value"] > 0].assign(statistic=lambda d: d["statistic"].map(STAT_LABELS))
    data = data.merge(
        r.ratio.assign(statistic=lambda d: d["statistic"].map(STAT_LABELS))[["m", "statistic", "ratio"]],
        on=["m", "statistic"],
    )
    color = alt.Color("statistic:N", title=None, scale=alt.Scale(range=charts.PALETTE))
    x = alt.X("m:Q", title="batch size m (log scale)", scale=alt.Scale(type="log", base=2))
    y = alt.Y("value:Q", title="std across batches (log scale)", scale=alt.Scale(type="log"))
    tips = [
        "statistic:N",
        "source:N",
        "m:Q",
        alt.Tooltip("value:Q", format=".4g"),
        alt.Tooltip("ratio:Q", format=".3f"),
    ]
    theory = alt.Chart(data[data["source"] == "theory"]).mark_line(strokeDash=[5, 3]).encode(x, y, color, tooltip=tips)
    points = (
        alt.Chart(data[data["source"] == "empirical"])
        .mark_point(filled=True, size=70)
        .encode(x, y, color, tooltip=tips)
    )
    return alt.layer(theory, points).properties(height=280, title="Dashed: theory · dots: measured")


def jitter_chart(r: NoiseResult) -> alt.LayerChart:
    """The tracked example's x̂ across batches, per m: 5-95 % whisker, 25-75 % box, median tick; dashed: true z."""
    wide = r.jitter.pivot(index="m", columns="metric", values="value").reset_index()
    x = alt.X("m:Q", title="batch size m (log scale)", scale=alt.Scale(type="log", base=2))
    tips = ["m:Q", *(alt.Tooltip(f"{c}:Q", format=".3f") for c in ("p05", "p25", "p50", "p75", "p95", "std"))]
    base = alt.Chart(wide).encode(x, tooltip=tips)
    whisker = base.mark_rule(color=charts.PALETTE[0]).encode(
        alt.Y("p05:Q", title="x̂ of the followed example"), y2="p95"
    )
    box = base.mark_rule(strokeWidth=10, color=charts.PALETTE[0], opacity=0.5).encode(y="p25:Q", y2="p75")
    median = base.mark_tick(color="black", thickness=2, size=14).encode(y="p50:Q")
    truth = (
        alt.Chart(pd.DataFrame({"z": [r.z0]}))
        .mark_rule(strokeDash=[6, 4], color=charts.PALETTE[1])
        .encode(y="z:Q", tooltip=[alt.Tooltip("z:Q", format=".3f", title="(x − μ)/σ, population")])
    )
    return alt.layer(whisker, box, median, truth).properties(height=260)


SERIES_COLORS = {  # fixed per series, so a curve keeps its colour when others are switched on or off
    "BN": "#4C6EF5",
    "BN" + TRAIN_MODE_SUFFIX: "#4C6EF5",
    "GN": "#2B8A3E",
    "LN": "#C2255C",
    "no norm": "#868E96",
    "Ghost BN": "#F76707",
    "Batch Renorm": "#7048E8",
}


def _percent(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{col: frame[col] * 100 for col in ("mean", "lo", "hi")})


def sweep_chart(s: SweepResult) -> alt.LayerChart:
    """Test error vs B: mean over seeds (line), lowest-highest seed (bar); train-mode evaluation dashed."""
    data = _percent(s.summary[s.summary["metric"].str.startswith("test_error")])
    domain = list(dict.fromkeys(data["series"]))
    color = alt.Color(
        "series:N", title=None, scale=alt.Scale(domain=domain, range=[SERIES_COLORS.get(d, "#495057") for d in domain])
    )
    x = alt.X("batch_size:Q", title="batch size B (log scale)", scale=alt.Scale(type="log", base=2))
    y = alt.Y("lo:Q", title="test error (%)")
    bars = alt.Chart(data).mark_errorbar(thickness=2).encode(x, y, y2="hi:Q", color=color)
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
        strokeDash=alt.condition(
            f"indexof(datum.series, '{TRAIN_MODE_SUFFIX}') >= 0", alt.value([6, 4]), alt.value([1, 0])
        ),
    )
    return alt.layer(bars, lines).properties(height=320)


def non_iid_chart(r: NonIIDResult) -> alt.LayerChart:
    """Eval-mode test error per normalization, shuffled vs class-sorted batches; whiskers: lowest-highest seed."""
    data = _percent(r.summary[r.summary["metric"] == "test_error"])
    data["order"] = data["order"].map({"shuffled": "shuffled", "class_sorted": "class-sorted"})
    tips = ["series:N", "order:N", alt.Tooltip("mean:Q", format=".1f"), "lo:Q", "hi:Q", "n:Q"]
    base = alt.Chart(data).encode(
        x=alt.X("series:N", title=None, sort=list(dict.fromkeys(data["series"])), axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("order:N", sort=["shuffled", "class-sorted"]),
        color=alt.Color(
            "order:N",
            title="batches",
            scale=alt.Scale(domain=["shuffled", "class-sorted"], range=["#4C6EF5", "#F76707"]),
        ),
        tooltip=tips,
    )
    bars = base.mark_bar().encode(y=alt.Y("mean:Q", title="test error (%)"))
    whiskers = base.mark_errorbar(color="black").encode(y=alt.Y("lo:Q", title="test error (%)"), y2="hi:Q")
    return alt.layer(bars, whiskers).properties(height=260, width=360)
