"""Fixtures for the browser tests: one server and one Chromium for the whole session.

Without Debian's chromium the browser tests are skipped with the reason, except where
``BN_REQUIRE_BROWSER=1`` (set by .ci/run): there a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.server import CHROMIUM_ARGS, chromium_path
from tests.e2e.server import streamlit_server as _serve


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") or shutil.which("chromium-browser") or os.environ.get("BN_REQUIRE_BROWSER") == "1":
        return
    skip = pytest.mark.skip(reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def streamlit_server():
    with _serve() as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
