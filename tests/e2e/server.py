"""Start and stop a real Streamlit server, and drive Chromium; used by the e2e tests and the load harness."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Chromium on a closed network logs failed lookups of Google hosts; they are not the app's.
IGNORED_CONSOLE = ("net::ERR_", "Failed to load resource", "favicon")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(extra_args: tuple[str, ...] = (), timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run app.py`` on 127.0.0.1 with a free port; always stopped afterwards."""
    port = free_port()
    home = tempfile.mkdtemp(prefix="bn-lab-home-")  # its own ~/.streamlit/cache: no results from another run
    env = {**os.environ, "BN_DEVICE": os.environ.get("BN_DEVICE", "cpu"), "PYTHONUNBUFFERED": "1", "HOME": home}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false", *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{proc.stdout.read().decode(errors='replace')}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("streamlit did not become healthy")
            time.sleep(0.3)
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout is not None:  # the pipe, closed here rather than left to the garbage collector
            proc.stdout.close()
        shutil.rmtree(home, ignore_errors=True)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is not installed: apt-get install -y chromium (.ci/run does this)")
    return path


def browser_page(browser, width: int = 1400, height: int = 1000):
    """A new page that records console errors and uncaught page errors."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(IGNORED_CONSOLE) and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return page, errors


def wait_for_page(page, min_charts: int = 0, timeout_ms: int = 120_000) -> None:
    """Until the script has run to the end and at least ``min_charts`` charts have drawn."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)
    if min_charts:
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, "
            "[data-testid=stVegaLiteChart] svg.marks').length >= n",
            arg=min_charts,
            timeout=timeout_ms,
        )
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)


def settle(page, min_charts: int = 0, timeout_ms: int = 120_000) -> None:
    """After an interaction: give the rerun a moment to start, then wait until it has finished."""
    page.wait_for_timeout(400)
    wait_for_page(page, min_charts=min_charts, timeout_ms=timeout_ms)
    page.wait_for_timeout(200)
    wait_for_page(page, min_charts=min_charts, timeout_ms=timeout_ms)


def url_params(page) -> dict[str, str]:
    """The query parameters of the page's current URL."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))


def exceptions_and_failures(page) -> list[str]:
    """Tracebacks and the scaffold's "went wrong" / "failed" boxes on screen."""
    boxes = page.locator("[data-testid=stException]").all_inner_texts()
    alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
    return boxes + [a for a in alerts if "went wrong" in a or "section failed" in a or "computation failed" in a]


def set_slider(page, label: str, value: float, rounds: int = 4) -> None:
    """Move a slider to ``value`` as a keyboard user would: Home or End, or arrow keys one step at a
    time, then look at the value and correct it (a key pressed while the page redraws can be lost).
    """
    thumb = page.locator(f'input[type=range][aria-label="{label}"]')
    lo, hi, step = (float(thumb.get_attribute(a)) for a in ("min", "max", "step"))
    for _ in range(rounds):
        thumb.focus()
        if value <= lo or value >= hi:
            thumb.press("Home" if value <= lo else "End")
        delta = round((value - float(thumb.input_value())) / step)
        for _ in range(abs(delta)):
            thumb.press("ArrowRight" if delta > 0 else "ArrowLeft")
        settle(page)
        if abs(float(thumb.input_value()) - value) < step / 2:
            return
    raise AssertionError(f"slider {label!r} stuck at {thumb.input_value()}, wanted {value}")
