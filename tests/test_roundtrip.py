"""Shareable views: the URL a page writes reproduces the same charts and tables in a new session.

The caches are cleared between the two sessions, so the second one recomputes
everything from the link alone: same seed, same controls, same numbers.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import assert_clean, open_page
from tests.test_hostile import IDS, STATES
from ui import cache

TIMING = re.compile(r"(^|_)(ms|s|seconds|time|timing)($|_)")


def _is_timing_table(frame) -> bool:
    return any(TIMING.search(str(c).lower()) for c in frame.columns)


def _fingerprint(at) -> tuple:
    """Every chart's spec and data, and every table, exactly.

    Left out: charts whose Vega-Lite ``description`` starts with "Live timing" and tables
    with a time column (wall-clock measurements of this server, not results of the
    seed), and Altair's auto-numbered selection names (``param_12``), which count per
    process and are not part of the view.
    """
    charts = [
        (re.sub(r"param_\d+", "param", c.proto.spec), tuple(d.data.data for d in c.proto.datasets))
        for c in at.get("vega_lite_chart")
        if '"description": "Live timing' not in c.proto.spec
    ]
    tables = [
        df.value.to_csv() for df in at.dataframe if hasattr(df.value, "to_csv") and not _is_timing_table(df.value)
    ]
    return tuple(charts), tuple(tables)


@pytest.mark.parametrize(("path", "state"), STATES, ids=IDS)
def test_a_shared_link_reproduces_the_view(path, state):
    first = open_page(path, query={"seed": "3"})
    assert_clean(first)
    if state.presets:  # a non-default view: the last preset
        first.selectbox(key=state.key("preset")).select_index(len(state.presets)).run()
        assert_clean(first)
    link = {k: first.query_params[k] for k in first.query_params}
    assert link["seed"] == "3" and set(state.keys) <= set(link)
    expected = _fingerprint(first)
    assert expected[0] or expected[1], "the page shows something to compare"
    cache.clear()
    second = open_page(path, query=link)
    assert_clean(second)
    assert {k: second.query_params[k] for k in second.query_params} == link
    assert _fingerprint(second) == expected
