"""Why BN Works, tab 3: the loss landscape along the gradient (Santurkar et al. 2018, §3.1): words, charts.

The verdicts come from :mod:`bn_core.experiments.why.landscape`.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from bn_core.experiments.why.landscape import BAND_METRICS, LandscapeConfig, LandscapeResult, band_frame, run_landscape
from bn_core.progress import Progress
from ui.cache import cached
from ui.charts import arrow_spec
from ui.sidebar import seed
from ui.why.ics import net_controls
from ui.why.shared import STATE, pick, variant_color

TEXT = (
    "**Claim: BN makes the loss landscape smoother** (Santurkar et al. 2018, §3.1, Fig. 4). At 10 "
    "checkpoints during training, from the current weights w, step along the gradient g with 8 step sizes "
    "η from ½× to 4× the learning rate, on a fixed batch of 60 training digits, and record the loss (left), "
    "how much the gradient changed (middle) and that change per unit of distance travelled (right; its "
    "maximum is the *effective β-smoothness*). Shaded: the range over η. A narrow band means the gradient "
    "predicts what happens when you follow it, so larger steps are safe. BN uses the batch's statistics, "
    "as in training; the probes never touch the running statistics."
)
TRY = (
    "Pick **Fig. 1 sigmoid net in every tab**: at η = 2 the plain net sits on a plateau. Are the bands still "
    "different?",
    "Pick **Learning rate 10**: which net diverges, and at which step? Does the other survive?",
)
BAND_TITLES = {
    "loss": (["Loss landscape", "L(w − ηg) over η"], "loss"),
    "grad_diff": (["Gradient predictiveness", "‖∇L(w) − ∇L(w − ηg)‖ over η"], "gradient change"),
    "beta": (["Effective β-smoothness", "‖Δ∇L‖ / ‖ηg‖ over η (top: β)"], "β"),
}


@cached(max_entries=16)
def compute(cfg: LandscapeConfig, _progress: Progress | None = None) -> LandscapeResult:
    return run_landscape(cfg, _progress)


def config() -> LandscapeConfig:
    return LandscapeConfig(
        lr=float(STATE["land_lr"]),
        steps=int(STATE["land_steps"]),
        depth=int(STATE["land_depth"]),
        activation=str(STATE["land_act"]),
        seed=seed(),
    )


def controls() -> LandscapeConfig:
    net_controls("land")
    return config()


@cached(max_entries=32)
def specs(cfg: LandscapeConfig) -> tuple[dict, ...]:
    """The three band charts, in :data:`BAND_METRICS` order (loss, gradient change, β)."""
    bands = compute(cfg).bands
    return tuple(arrow_spec(band_chart(band_frame(bands, metric), metric)) for metric in BAND_METRICS)


def band_chart(data: pd.DataFrame, metric: str) -> alt.LayerChart:
    title, y_title = BAND_TITLES.get(metric, (metric, metric))
    chosen = pick()
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        color=variant_color(data, legend=alt.Legend(orient="top")),
        opacity=alt.condition(chosen, alt.value(0.35), alt.value(0.05)),
    )
    tips = ["variant:N", "step:Q", alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g")]
    area = base.mark_area().encode(y=alt.Y("lo:Q", title=y_title), y2="hi:Q", tooltip=tips).add_params(chosen)
    edge = base.mark_line(strokeWidth=1.5).encode(y="hi:Q", opacity=alt.value(0.9), tooltip=tips)
    return alt.layer(area, edge, title=alt.TitleParams(title)).properties(height=240)
