"""Fixtures for the browser tests: one server and one Chromium for the whole session."""

from __future__ import annotations

import pytest

from tests.e2e.server import CHROMIUM_ARGS, chromium_path
from tests.e2e.server import streamlit_server as _serve


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
