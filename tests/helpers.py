"""AppTest helpers shared by the page tests."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from tests.conftest import APP
from ui.state import PageState


def open_page(page: str | None = None, query: Mapping[str, str] | None = None, timeout: float = 120) -> AppTest:
    """A fresh session of the whole app (router + sidebar) on ``page``, after its first run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()  # AppTest resolves a page against st.navigation's registry only after a first run
    if page:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    """No exception element: a user never sees a traceback."""
    assert not at.exception, [e.message for e in at.exception]


def alerts(at: AppTest, kind: str = "all") -> list[str]:
    """Texts of the error / warning / info alerts on screen."""
    kinds = ("error", "warning", "info") if kind == "all" else (kind,)
    return [el.value for k in kinds for el in getattr(at, k)]


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def chart_tables(chart) -> list[pa.Table]:
    """The data a chart element carries: its named datasets and inline data, decoded from Arrow."""
    blobs = [d.data.data for d in chart.proto.datasets] + [chart.proto.data.data]
    return [pa.ipc.open_stream(blob).read_all() for blob in blobs if blob]


def page_states() -> list[tuple[str, PageState]]:
    """``(page path, its ui STATE table)`` for every page that has controls."""
    from ui.nav import PAGES

    found = []
    for info in PAGES:
        module = f"ui.{Path(info.path).stem}"
        try:
            state = importlib.import_module(module).STATE
        except (ModuleNotFoundError, AttributeError):
            continue  # a page without controls (the welcome page)
        found.append((info.path, state))
    return found
