"""App-level timings: the Normalization Steps rerun after a slider change, and cold start in Chromium."""

from __future__ import annotations

import statistics
import time

from bench.common import Result, rerun_times


def _steps_rerun(quick: bool) -> list[Result]:
    from tests.helpers import open_page

    at = open_page("views/steps.py")
    slider = "steps:N"
    values = [17 + k for k in range(5 if quick else 15)]

    def set_n(n: int):
        return lambda at: at.slider(key=slider).set_value(n)

    fresh = rerun_times(at, [set_n(n) for n in values])  # a new N each time: a real cache miss
    cached = rerun_times(at, [set_n(n) for n in values])  # values seen before: the cached path a class mostly hits
    return [
        Result("steps_rerun_ms", statistics.median(fresh) * 1e3, "ms", goal=100.0,
               detail={"runs": len(fresh), "what": "AppTest rerun after changing N to a new value (cache miss)"}),
        Result("steps_rerun_cached_ms", statistics.median(cached) * 1e3, "ms", goal=100.0,
               detail={"runs": len(cached), "what": "AppTest rerun after changing N back to a seen value"}),
    ]  # fmt: skip


def _cold_start(quick: bool) -> list[Result]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.server import CHROMIUM_ARGS, browser_page, chromium_path, streamlit_server, wait_for_page

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for _ in range(1 if quick else 3):
            start = time.perf_counter()
            with streamlit_server() as (url, _proc):
                page, _errors = browser_page(browser)
                page.goto(f"{url}/normalization-steps")
                wait_for_page(page, min_charts=2)
                times.append(time.perf_counter() - start)
                page.close()
        browser.close()
    return [
        Result("cold_start_s", statistics.median(times), "s",
               detail={"runs": len(times), "what": "server process start → Normalization Steps rendered in Chromium"}),
    ]  # fmt: skip


def run(quick: bool) -> list[Result]:
    return _steps_rerun(quick) + _cold_start(quick)
