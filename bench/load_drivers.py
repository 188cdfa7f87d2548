"""The two ways ``python -m bench.load`` drives a session: headless Chromium, and the agent API.

Each driver opens one session on one page at default settings (the page URL with no
query), waits until it is rendered, makes one interaction (a new value in the
sidebar's "Global seed" box, which reruns the whole page), waits again, and returns a
:class:`SessionResult`. They never raise: a failure is an ``error`` in the result.

Time to rendered:

* **playwright**: from ``page.goto`` (or pressing Enter in the seed box) until the
  browser has received the run's ``script_finished`` message on the WebSocket, then
  ``[data-testid=stApp]`` reports ``data-test-script-state="notRunning"`` and at least
  ``min_charts`` charts (``ui.nav.PageInfo.min_charts``) have drawn a canvas or SVG:
  the condition of ``tests.e2e.server.wait_for_page``. The message is needed because
  stApp's state alone can miss a short run: a busy browser handles "started" and
  "finished" in one batch, and the attribute never reads ``running``.
* **agent**: from sending ``POST /_stcore/agent/interact`` until its ``200`` answer,
  which the server sends only once the run chain has settled, with the page's full
  element tree. The page counts as rendered when ``status`` is ``"ready"``, the tree
  holds at least ``min_charts`` chart nodes and no exception or error element. No
  browser draws anything, so this leaves out the transfer to a browser and the
  client-side Vega drawing that the playwright time includes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.e2e.server import IGNORED_CONSOLE
from ui.nav import PageInfo
from ui.prepare import agent_interact

SEED_LABEL = "Global seed"  # the sidebar control every page shares (ui/sidebar.py)
CHART_TYPES = {"vega_lite_chart", "altair_chart", "line_chart", "bar_chart", "area_chart", "scatter_chart"}
FAILURE_TYPES = {"exception", "error"}  # st.exception, and st.error: ui.common shows failures with it
SEED_INPUT = f"input[aria-label='{SEED_LABEL}']"
DONE = "[data-testid=stApp][data-test-script-state=notRunning]"
CHARTS_DRAWN = (
    "n => document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, "
    "[data-testid=stVegaLiteChart] svg.marks').length >= n"
)
FAILURES = "[data-testid=stException], [data-testid=stAlertContentError]"
# Streamlit's answer to a URL its first run of a server process cannot resolve (see docs/load.md).
NOT_FOUND = "Page not found"
_FINISHED_OK = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


@dataclass
class SessionResult:
    """One session: seconds to rendered after opening and after the interaction, and what went wrong."""

    index: int
    open_s: float | None = None
    interact_s: float | None = None
    problems: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    runs_finished: int = 0  # playwright: script_finished messages seen on the WebSocket
    page_not_found: int = 0  # playwright: page_not_found messages (finding 1 in docs/load.md)
    stage: str = "starting"  # playwright: what the session is waiting for (named when it times out)

    @property
    def error(self) -> str | None:
        return self.problems[0] if self.problems else None

    @property
    def ok(self) -> bool:
        return not self.problems and self.open_s is not None and self.interact_s is not None


def page_url(base: str, info: PageInfo) -> str:
    """Default settings: the page's URL with no query (the default page at the root)."""
    return f"{base}/{info.route}"


# --- Playwright: one browser context per session, in one headless Chromium ---------------------


def _keep_console(message, into: list[str]) -> None:
    if message.type == "error" and not message.text.startswith(IGNORED_CONSOLE):
        into.append(message.text)


def _watch_frame(payload: str | bytes, result: SessionResult) -> None:
    """Count the server's ``script_finished`` and ``page_not_found`` messages (ForwardMsg protobufs)."""
    if isinstance(payload, str):
        return
    msg = ForwardMsg.FromString(payload)
    kind = msg.WhichOneof("type")
    if kind == "script_finished":
        if msg.script_finished in _FINISHED_OK:
            result.runs_finished += 1
        elif msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            result.problems.append("the script failed to compile")
    elif kind == "page_not_found":
        result.page_not_found += 1


async def _runs_finished(result: SessionResult, at_least: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while result.runs_finished < at_least:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no script_finished message within {timeout_s:.0f} s")
        await asyncio.sleep(0.02)


async def _rendered(page, min_charts: int, timeout_ms: float) -> None:
    """The async twin of ``tests.e2e.server.wait_for_page``, after the sidebar's seed box exists.

    stApp reports ``notRunning`` before the first run has even started; the seed box,
    drawn by app.py before the page body, proves a run has begun.
    """
    await page.wait_for_selector(SEED_INPUT, timeout=timeout_ms)
    await page.wait_for_selector(DONE, timeout=timeout_ms)
    if min_charts:
        await page.wait_for_function(CHARTS_DRAWN, arg=min_charts, timeout=timeout_ms)
    await page.wait_for_selector(DONE, timeout=timeout_ms)


async def _step(result: SessionResult, stage: str, waiting: Awaitable[None]) -> None:
    """Await ``waiting`` with ``stage`` recorded, so a session cut off at its timeout says where it stood."""
    result.stage = stage
    await waiting


async def playwright_session(
    browser, base: str, info: PageInfo, result: SessionResult, seed: int, timeout_s: float, shots: Path | None = None
):
    """Open the page in a fresh context (a new Streamlit session), then type a new seed; fills ``result``.

    With ``shots``, a session that did not finish cleanly leaves a screenshot there.
    """
    timeout_ms = timeout_s * 1000
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = None
    try:
        page = await context.new_page()
        page.on("console", lambda m: _keep_console(m, result.console))
        page.on("pageerror", lambda e: result.console.append(f"pageerror: {e}"))
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: _watch_frame(payload, result)))
        start = time.perf_counter()
        await page.goto(page_url(base, info), wait_until="commit", timeout=timeout_ms)
        await _step(result, "open: the first script_finished", _runs_finished(result, 1, timeout_s))
        await _step(result, "open: the page drawn", _rendered(page, info.min_charts, timeout_ms))
        result.open_s = time.perf_counter() - start
        if await page.locator(FAILURES).count():
            result.problems.append("open: the page shows an exception or error box")
        if result.page_not_found:
            result.problems.append(f"open: the server sent page_not_found; a {NOT_FOUND!r} dialog covers the page")
            with contextlib.suppress(Exception):  # dismiss it, so the interaction is still measured
                await page.get_by_text(NOT_FOUND, exact=True).wait_for(timeout=10_000)
                await page.keyboard.press("Escape")
        box = page.get_by_label(SEED_LABEL, exact=True)
        await box.fill(str(seed), timeout=timeout_ms)
        before = result.runs_finished
        start = time.perf_counter()
        await box.press("Enter", timeout=timeout_ms)
        await _step(result, "interaction: its script_finished", _runs_finished(result, before + 1, timeout_s))
        await _step(result, "interaction: the page drawn", _rendered(page, info.min_charts, timeout_ms))
        result.stage = "done"
        result.interact_s = time.perf_counter() - start
        if await box.input_value() != str(seed):
            result.problems.append(f"interaction: the seed box does not show {seed}")
        if await page.locator(FAILURES).count():
            result.problems.append("interaction: the page shows an exception or error box")
        result.problems += [f"console: {text[:200]}" for text in result.console]
    except Exception as err:  # noqa: BLE001 - a failed session is a result, not a crash
        result.problems.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    finally:
        if shots is not None and page is not None and not result.ok:
            with contextlib.suppress(Exception):  # also runs when the session is cancelled at its timeout
                shots.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(shots / f"{info.url_path}-{result.index:02d}.png"), timeout=10_000)
        await context.close()


# --- Agent API: POST /_stcore/agent/interact, one session id per simulated student --------------


def _nodes(tree: dict) -> list[dict]:
    """Every node of a snapshot's tree (a ``root`` node over main, sidebar, event, bottom)."""
    stack, out = [tree], []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.get("children", []))
    return out


def check_snapshot(reply: dict, info: PageInfo) -> str | None:
    """Why this snapshot is not the rendered page, or None when it is."""
    if reply.get("status") != "ready":
        return f"status {reply.get('status')!r}"
    if reply.get("page", {}).get("url_path") not in (info.url_path, info.route):
        return f"landed on {reply.get('page')}"
    nodes = _nodes(reply.get("tree", {}))
    failed = [n for n in nodes if n.get("type") in FAILURE_TYPES]
    if failed:
        return f"{failed[0]['type']} element: {json.dumps(failed[0].get('props', {}))[:200]}"
    charts = sum(n.get("type") in CHART_TYPES for n in nodes)
    if charts < info.min_charts:
        return f"{charts} charts, expected ≥ {info.min_charts}"
    return None


def seed_key(reply: dict) -> str:
    """The sidebar seed's key, read from the snapshot's ``actions`` (never constructed)."""
    for action in reply.get("actions", []):
        if action.get("label") == SEED_LABEL and action.get("kind") == "value":
            return action["key"]
    raise RuntimeError(f"no {SEED_LABEL!r} control in the snapshot's actions")


def agent_session(base: str, info: PageInfo, result: SessionResult, seed: int, timeout_s: float) -> None:
    """Create a session on the page, then set the seed; fills ``result``. Blocking: run it in a thread."""
    deadline = time.monotonic() + timeout_s
    try:
        start = time.perf_counter()
        reply = agent_interact(base, {"page": info.route} if info.route else {}, deadline)
        result.open_s = time.perf_counter() - start
        if problem := check_snapshot(reply, info):
            result.problems.append(f"open: {problem}")
            return
        key = seed_key(reply)
        start = time.perf_counter()
        reply = agent_interact(base, {"session_id": reply["session_id"], "widget_state": {key: seed}}, deadline)
        result.interact_s = time.perf_counter() - start
        shown = [n.get("value") for n in _nodes(reply.get("tree", {})) if n.get("key") == key]
        if problem := check_snapshot(reply, info):
            result.problems.append(f"interaction: {problem}")
        if shown != [seed]:
            result.problems.append(f"interaction: the seed box shows {shown}, expected [{seed}]")
    except Exception as err:  # noqa: BLE001 - a failed session is a result, not a crash
        result.problems.append(f"{type(err).__name__}: {str(err)[:200]}")


# --- n sessions at once, each bounded in time ------------------------------------------------


async def run_sessions(start: Callable[[SessionResult, int], Awaitable[None]], n: int, delays: list[float],
                       timeout_s: float, budget_s: float) -> list[SessionResult]:  # fmt: skip
    """``start(result, i)`` for i < n, the i-th after ``delays[i]`` s; each bounded by ``timeout_s``.

    Past ``budget_s`` the sessions still running are cancelled and reported as timed
    out; the finished ones keep their results.
    """
    results = [SessionResult(i) for i in range(n)]

    async def one(i: int) -> None:
        await asyncio.sleep(delays[i])
        try:
            await asyncio.wait_for(start(results[i], i), timeout_s)
        except TimeoutError:
            results[i].problems.append(
                f"timeout: not rendered within --session-timeout {timeout_s:.0f} s (waiting for {results[i].stage},"
                f" {results[i].runs_finished} script runs finished)"
            )

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    _done, pending = await asyncio.wait(tasks, timeout=budget_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if task in pending:
            result.problems.append("timeout: stopped at the overall --timeout")
    return results
