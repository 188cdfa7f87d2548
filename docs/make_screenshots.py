"""Make the README's screenshots: ``python docs/make_screenshots.py``.

Starts a real server (tests/e2e/server.py), opens every page at default settings with
global seed 0 in headless Debian Chromium, waits until its charts are drawn, and saves
docs/screenshots/<url_path>.png, plus a presenter-view slide on a 1920×1080 projector
(presenter.png) and a page on a 400 px phone (phone.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.server import CHROMIUM_ARGS, browser_page, chromium_path, streamlit_server, wait_for_page  # noqa: E402
from ui.nav import PAGES  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as (url, _proc), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for info in PAGES[1:]:
            page, errors = browser_page(browser, width=1400, height=1500)
            page.goto(f"{url}/{info.url_path}")
            wait_for_page(page, min_charts=info.min_charts)
            page.wait_for_timeout(1500)  # let Vega finish its transitions
            page.screenshot(path=str(OUT / f"{info.url_path}.png"))
            if errors:
                print(f"{info.url_path}: console errors {errors}", file=sys.stderr)
            page.close()
        _shot(browser, f"{url}/training-comparison?present=1&slide=1", "presenter.png", (1920, 1080), 1)
        _shot(browser, f"{url}/normalization-steps", "phone.png", (400, 800), 1, full_page=False)
        browser.close()
    print(f"wrote {len(PAGES) + 1} screenshots to {OUT}")


def _shot(browser, url: str, name: str, size: tuple[int, int], charts: int, full_page: bool = False) -> None:
    page, errors = browser_page(browser, width=size[0], height=size[1])
    page.goto(url)
    wait_for_page(page, min_charts=charts)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / name), full_page=full_page)
    if errors:
        print(f"{name}: console errors {errors}", file=sys.stderr)
    page.close()


if __name__ == "__main__":
    main()
