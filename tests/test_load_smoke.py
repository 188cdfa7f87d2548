"""The load harness, small: 5 concurrent sessions on Normalization Steps, in both modes.

``python -m bench.load --quick`` does the same from the command line. The full run
(30 sessions, every page) is a benchmark, not a test: see docs/load.md.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil

import psutil
import pytest

from bench.common import Result
from bench.load import merge_results, parse_args, percentile, run_batch
from ui.nav import PAGES

STEPS = next(p for p in PAGES if p.url_path == "normalization-steps")
HAS_BROWSER = bool(shutil.which("chromium") or shutil.which("chromium-browser"))


def _children() -> set[int]:
    """This process's live descendants."""
    alive = set()
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.add(p.pid)
    return alive


def _smoke(mode: str):
    # generous bounds: this box is shared, and 5 Chromium contexts on 2 cores are slow when it is busy
    opts = parse_args(["--quick", "--session-timeout", "60"])
    return _on_own_loop(run_batch(STEPS, mode, opts.sessions, opts, budget_s=75))


def _on_own_loop(coro):
    """``asyncio.run(coro)`` on a thread of its own: Playwright's sync API (the browser tests'
    fixture) keeps an event loop running on this thread for the rest of the session, and
    asyncio.run refuses to nest."""
    import asyncio

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.mark.e2e
@pytest.mark.timeout(150)
@pytest.mark.parametrize("mode", ["agent", "ws", "playwright"])
def test_five_concurrent_sessions_render_and_interact(mode):
    if mode == "playwright" and not HAS_BROWSER and os.environ.get("BN_REQUIRE_BROWSER") != "1":
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    before = _children()
    batch = _smoke(mode)
    assert not _children() - before, "the harness left processes running"  # server group, browser, driver
    problems = sorted({p for r in batch.results for p in r.problems})
    assert len(batch.results) == 5
    for r in batch.results:  # every session rendered the page, then rendered it again after the new seed
        assert r.open_s is not None and r.open_s > 0, problems
        assert r.interact_s is not None and r.interact_s > 0, problems
    assert batch.tracebacks == 0, batch.log_tail
    # the measurement itself: a server that imported torch and ran the page used CPU and memory
    assert batch.server_cpu_s > 0.5
    assert 100 < batch.server_peak_rss_mb < 2000
    assert batch.errors == 0, problems + batch.log_tail


def test_percentile_matches_linear_interpolation():
    assert percentile([], 95) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 21))), 95) == pytest.approx(19.05)  # numpy.percentile's value


def test_merge_keeps_other_results(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps({"machine": {"cpu_count": 2}, "quick": False, "results": {"steps_rerun_ms": {"value": 1}}})
    )
    merge_results([Result("load_agent_errors", 0, "sessions", goal=0)], path)
    record = json.loads(path.read_text())
    assert record["machine"] == {"cpu_count": 2} and record["quick"] is False
    assert record["results"]["steps_rerun_ms"] == {"value": 1}
    assert record["results"]["load_agent_errors"]["met"] is True


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_first_view_opened_over_the_browsers_protocol_is_timed_and_its_failures_named():
    import dataclasses

    from bench.load_ws import ws_view
    from tests.e2e.server import streamlit_server

    def view(base, info, query, timeout_s):
        return _on_own_loop(ws_view(base, info, query, timeout_s))

    batch = next(p for p in PAGES if p.url_path == "batch-size")
    with streamlit_server() as (base, _proc):
        seconds, problem = view(base, batch, {"seed": "4", "preset": "Class default: BN vs GN, LN, none"}, 90)
        assert problem is None and 0 < seconds < 90
        _, problem = view(base, dataclasses.replace(batch, url_path="no-such-page"), {"seed": "4"}, 90)
        assert problem == "page_not_found"
    _, problem = view(base, batch, {}, 5)  # the server is gone
    assert problem is not None and problem.startswith(("ConnectionRefusedError", "OSError", "InvalidURI"))
