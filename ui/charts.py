"""Pure functions from a long-format DataFrame to an ``alt.Chart``; every chart has tooltips.

Conventions: long format, snake_case columns (``step, variant, layer, metric,
value``); histograms arrive pre-binned (``bn_core.binning.binned``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
from streamlit.dataframe_util import convert_anything_to_arrow_bytes

PALETTE = ["#4C6EF5", "#F76707", "#2B8A3E", "#C2255C", "#7048E8", "#0B7285", "#E67700", "#495057"]

# One name and one colour per normalization method, on every page. A series whose name starts
# with a method's name and a space or "(" (e.g. "BN (train-mode test)") takes that method's colour.
METHOD_COLORS: dict[str, str] = {
    "BN": "#4C6EF5",
    "no norm": "#868E96",
    "GN": "#2B8A3E",
    "LN": "#C2255C",
    "IN": "#0B7285",
    "Ghost BN": "#F76707",
    "Batch Renorm": "#7048E8",
    "sync BN": "#E67700",
}


def method_color(name: str) -> str | None:
    """The colour of the method a series name belongs to, or None for other series."""
    for method in sorted(METHOD_COLORS, key=len, reverse=True):
        if name == method or name.startswith((f"{method} ", f"{method}(")):
            return METHOD_COLORS[method]
    return None


def method_scale(domain: Sequence[str]) -> alt.Scale:
    """A colour scale for series named after methods: their fixed colours, the palette for the rest."""
    spare = iter(c for c in PALETTE if c not in METHOD_COLORS.values())
    return alt.Scale(domain=list(domain), range=[method_color(d) or next(spare, "#495057") for d in domain])


def _color(field: str, title: str | None = None, domain: Sequence[str] | None = None) -> alt.Color:
    scale = alt.Scale(range=PALETTE) if domain is None else alt.Scale(domain=list(domain), range=PALETTE)
    return alt.Color(f"{field}:N", title=title or field.replace("_", " "), scale=scale)


def histogram(
    df: pd.DataFrame, *, x_title: str, color: str = "series", column: str | None = None, height: int = 180
) -> alt.Chart:
    """Bars from pre-binned counts (``bin_start, bin_end, count`` + ``color``), optionally faceted."""
    chart = (
        alt.Chart(df)
        .mark_bar(opacity=0.75, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", title=x_title, bin="binned"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="count", stack=None),
            color=_color(color),
            tooltip=[
                alt.Tooltip(f"{color}:N"),
                alt.Tooltip("bin_start:Q", format=".3g", title="from"),
                alt.Tooltip("bin_end:Q", format=".3g", title="to"),
                alt.Tooltip("count:Q"),
            ],
        )
        .properties(height=height)
    )
    if column:
        chart = chart.properties(width=220).facet(column=alt.Column(f"{column}:N", title=None))
    return chart


def lines(
    df: pd.DataFrame,
    *,
    x: str = "step",
    y: str = "value",
    color: str = "variant",
    x_title: str | None = None,
    y_title: str | None = None,
    log_x: bool = False,
    log_y: bool = False,
    height: int = 260,
    points: bool = False,
    extra_tooltips: Sequence[str] = (),
) -> alt.Chart:
    """Lines per ``color`` with legend-click highlighting and a tooltip on every point."""
    pick = alt.selection_point(fields=[color], bind="legend")
    tips = [alt.Tooltip(f"{color}:N"), alt.Tooltip(f"{x}:Q", format=".4g"), alt.Tooltip(f"{y}:Q", format=".4g")]
    tips += [alt.Tooltip(t) for t in extra_tooltips]
    return (
        alt.Chart(df)
        .mark_line(point=points, strokeWidth=2)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title or x, scale=alt.Scale(type="log") if log_x else alt.Undefined),
            y=alt.Y(f"{y}:Q", title=y_title or y, scale=alt.Scale(type="log") if log_y else alt.Undefined),
            color=_color(color),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=tips,
        )
        .add_params(pick)
        .properties(height=height)
    )


def heatmap(
    df: pd.DataFrame, *, x: str, y: str, color: str, tooltips: Sequence[str], title: str = "", scheme: str = "tableau20"
) -> alt.Chart:
    """A grid of rectangles, one per (x, y), coloured by a nominal ``color`` field."""
    return (
        alt.Chart(df, title=title)
        .mark_rect(stroke="white", strokeWidth=1.5)
        .encode(
            x=alt.X(f"{x}:O", title=x.replace("_", " ")),
            y=alt.Y(f"{y}:O", title=y.replace("_", " ")),
            color=alt.Color(f"{color}:N", legend=None, scale=alt.Scale(scheme=scheme)),
            tooltip=list(tooltips),
        )
        .properties(width="container", height=110)
    )


def answer_bars(df: pd.DataFrame, *, height: int = 160) -> alt.Chart:
    """Live class answers: one bar per answer given (``answer, count, correct``), the right one in green."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="students", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("answer:N", title=None, sort=None),
            color=alt.Color(
                "correct:N", scale=alt.Scale(domain=["right", "wrong"], range=["#2B8A3E", "#ADB5BD"]), legend=None
            ),
            tooltip=[alt.Tooltip("answer:N"), alt.Tooltip("count:Q"), alt.Tooltip("correct:N")],
        )
        .properties(height=height)
    )


# -- specs that carry their data as Arrow ---------------------------------------------------

_ALTAIR_GLOBALS = threading.Lock()  # Altair's data transformer is process-global; sessions run on threads


def _arrow_dataset(data: Any, datasets: dict[str, bytes]) -> dict[str, str]:
    """An Altair data transformer: store the chart's data as Arrow IPC bytes under a content hash."""
    data_bytes = convert_anything_to_arrow_bytes(data)
    name = "data-" + hashlib.sha256(data_bytes).hexdigest()[:16]
    datasets[name] = data_bytes
    return {"name": name}


alt.data_transformers.register("bn_arrow", _arrow_dataset)


def arrow_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite dict with its datasets already as Arrow IPC bytes.

    Cached specs are built with this: Streamlit sends bytes datasets as they are, where it would
    otherwise convert every dataset from records to pandas to Arrow on every run of every session
    (a quarter of the server's CPU per session on the chart-heavy pages, py-spy under 30 sessions).
    """
    datasets: dict[str, bytes] = {}
    with _ALTAIR_GLOBALS, alt.data_transformers.enable("bn_arrow", datasets=datasets):
        spec = chart.to_dict()
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec
