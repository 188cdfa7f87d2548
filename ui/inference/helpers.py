"""Train vs Inference: chart pieces several sections share (a log-2 axis, two metrics side by side)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ui import charts


def log2_x(field: str, title: str) -> alt.X:
    """A log-2 x axis that ends at the data (no rounding out to the next power of ten)."""
    return alt.X(f"{field}:Q", title=title, scale=alt.Scale(type="log", base=2, nice=False))


def two_panels(trace: pd.DataFrame, x: str, color: str, titles: dict[str, str], x_title: str) -> alt.FacetChart:
    """Two metrics side by side, each with its own y scale (one legend, one highlight selection)."""
    data = trace[trace["metric"].isin(titles)].assign(metric=lambda f: f["metric"].map(titles))
    chart = charts.lines(data, x=x, color=color, x_title=x_title, points=True, height=220)
    chart = chart.encode(y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)))  # small moves must show
    return chart.properties(width=280).facet(column=alt.Column("metric:N", title=None)).resolve_scale(y="independent")
