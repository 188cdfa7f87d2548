"""The first, uncached view of every preset of every page, on a fresh server (issue 16: none over 5 s).

The same path a student's browser takes: a headless session per view through the agent API
(``ui.prepare.open_view``, the code behind "Prepare this class"), each on a cache that no
earlier view of that preset filled. Reports the slowest view, with every view's time in
``detail``. Train/Run actions that a preset turns on (``run=1`` in its values) are included,
since a preset is what a teacher opens.
"""

from __future__ import annotations

import time

from bench.common import Result
from tests.e2e.server import streamlit_server
from ui.nav import PAGES
from ui.prepare import open_view, views

GOAL_S = 5.0


def _time_views(base: str, seed: int, quick: bool) -> list[tuple[str, str, float, str | None]]:
    rows = []
    for info in PAGES[1:]:
        for preset in views(info)[: 1 if quick else None]:
            start = time.perf_counter()
            problem = open_view(base, info, seed, preset)
            rows.append((info.url_path, preset or "defaults", time.perf_counter() - start, problem))
    return rows


def run(quick: bool) -> list[Result]:
    with streamlit_server() as (base, _proc):
        open_view(base, PAGES[0], 0, None)  # the server's one-time imports are not any page's first view
        rows = _time_views(base, seed=12345, quick=quick)
    slowest = max(rows, key=lambda r: r[2])
    detail = {
        "what": "wall time of each preset's first view on a fresh server (agent API, new session per view)",
        "slowest": {"page": slowest[0], "preset": slowest[1]},
        "views": [{"page": p, "preset": v, "s": round(t, 2), "problem": e} for p, v, t, e in rows],
        "over_goal": [f"{p}: {v} ({t:.1f} s)" for p, v, t, _e in rows if t > GOAL_S],
    }
    return [Result("first_view_slowest_s", slowest[2], "s", goal=GOAL_S, detail=detail)]
