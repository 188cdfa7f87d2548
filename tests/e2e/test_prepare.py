"""Prepare this class: after the job, every preset's first view of every page is a cache hit.

A fresh server; the job (ui.prepare.run_job, the code behind the Welcome page's button)
opens every view through the agent API; then every view is opened again by a new session
and the server's own cache counters (``/_stcore/metrics``) must show no new miss.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.e2e.server import streamlit_server
from ui.nav import PAGES
from ui.prepare import Job, PageProgress, open_view, run_job, views

pytestmark = pytest.mark.e2e
SEED = 11


def _misses(base: str) -> int:
    metrics = urllib.request.urlopen(base + "/_stcore/metrics", timeout=30).read().decode()
    found = re.findall(r'cache_lookups_total\{[^}]*cache_type="st_cache_data"[^}]*result="miss"\} (\d+)', metrics)
    return sum(int(n) for n in found)


def test_after_preparing_every_preset_first_view_is_a_cache_hit():
    with streamlit_server() as (base, _proc):
        job = Job(SEED, [PageProgress(info.title, len(views(info))) for info in PAGES[1:]])
        run_job(base, job)
        assert job.finished is not None and job.fraction == 1.0
        assert [f for p in job.pages for f in p.failed] == []
        assert sum(p.total for p in job.pages) > len(PAGES)  # presets were found, not only defaults
        misses = _misses(base)
        assert misses > 0
        for info in PAGES[1:]:
            for preset in views(info):
                assert open_view(base, info, SEED, preset) is None, (info.title, preset)
        assert _misses(base) == misses  # a student's first view of any preset computed nothing
