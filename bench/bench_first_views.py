"""The first, uncached view of every preset of every page, on a fresh server (issue 16: none over 5 s).

Each view is opened twice, each time on a cache that no earlier view filled (its own seed):

* **as a student's browser opens it** (the goal's figure): the page's URL with the preset and
  the seed in its query string, over the browser's own WebSocket protocol
  (``bench.load_ws.ws_view``), timed to the run's ``script_finished``;
* **as "Prepare this class" opens it**: a headless session through the agent API
  (``ui.prepare.open_view``). The server also describes every element of that session for the
  agent, each chart's data as JSON rows, which a browser session never costs: the teacher's
  background job, not a student's wait. Its times are in ``detail.prepare``.

Train/Run actions that a preset turns on (``run=1`` in its values) are included, since a
preset is what a teacher opens. Reports the slowest browser view, with every view's times in
``detail``.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Result
from bench.load_ws import ws_view
from tests.e2e.server import streamlit_server
from ui.nav import PAGES
from ui.prepare import VIEW_TIMEOUT_S, open_view, views

GOAL_S = 5.0
BROWSER_SEED, PREPARE_SEED = 12345, 23456  # one uncached first view each


def _time_views(base: str, quick: bool) -> list[dict]:
    rows = []
    for info in PAGES[1:]:
        for preset in views(info)[: 1 if quick else None]:
            query = {"seed": str(BROWSER_SEED), **({"preset": preset} if preset else {})}
            browser_s, problem = asyncio.run(ws_view(base, info, query, VIEW_TIMEOUT_S))
            start = time.perf_counter()
            prepare_problem = open_view(base, info, PREPARE_SEED, preset)
            prepare_s = time.perf_counter() - start
            rows.append({"page": info.url_path, "preset": preset or "defaults", "s": round(browser_s, 2),
                         "problem": problem, "prepare_s": round(prepare_s, 2),
                         "prepare_problem": prepare_problem})  # fmt: skip
    return rows


def _problem(row: dict) -> str:
    return f"{row['page']}: {row['preset']}: {row['problem'] or row['prepare_problem']}"


def run(quick: bool) -> list[Result]:
    with streamlit_server() as (base, _proc):
        open_view(base, PAGES[0], 0, None)  # the server's one-time imports are not any page's first view
        rows = _time_views(base, quick=quick)
    slowest = max(rows, key=lambda r: r["s"])
    prepare = max(rows, key=lambda r: r["prepare_s"])
    detail = {
        "what": "seconds to rendered of each preset's first view on a fresh server, opened as a browser "
        "(WebSocket protocol); detail.prepare: the same views through the agent API",
        "slowest": {"page": slowest["page"], "preset": slowest["preset"]},
        "views": rows,
        "over_goal": [f"{r['page']}: {r['preset']} ({r['s']:.1f} s)" for r in rows if r["s"] > GOAL_S],
        "problems": [_problem(r) for r in rows if r["problem"] or r["prepare_problem"]],
        "prepare": {"slowest_s": prepare["prepare_s"], "page": prepare["page"], "preset": prepare["preset"]},
    }
    return [Result("first_view_slowest_s", slowest["s"], "s", goal=GOAL_S, detail=detail)]
