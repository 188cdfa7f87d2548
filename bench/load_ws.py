"""The third way ``python -m bench.load`` drives a session: a browser's own WebSocket protocol.

A student's browser talks to Streamlit over one WebSocket, ``/_stcore/stream``: it
sends ``BackMsg`` protobufs (``rerun_script``, carrying the page, the query string
and the widget values) and receives ``ForwardMsg`` protobufs (``new_session``, the
deltas, ``script_finished``). This driver speaks exactly that protocol with the
``websockets`` package (a Streamlit dependency) and draws nothing, so the server does
for it what it does for a browser, and nothing more:

* unlike the agent API, the server builds no JSON snapshot of the page (in agent mode
  that snapshot is about 40 % of the server's CPU per session: docs/performance.md);
* like a browser, it reports the hashes of the large messages it already holds
  (``cached_message_hashes``), so a rerun gets references instead of repeated charts,
  and it sends back the query string the page last set.

Left out: the page's HTML and static JavaScript (163 files, about 5.7 MB, served once
per browser and then cached for a year; docs/load.md gives their cost, measured once by
hand, since no benchmark entry measures it), and the browser's drawing.

Time to rendered: from sending ``rerun_script`` until ``script_finished`` (finished
successfully) of the run it started. The page counts as rendered when that run drew
at least ``min_charts`` Vega-Lite charts and no exception or error element. The
interaction is the same as in the other modes: the sidebar's *Global seed* set to a
new value, sent as that widget's state.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode, urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

from bench.load_drivers import SEED_LABEL, SessionResult
from ui.nav import PageInfo

STREAM = "/_stcore/stream"


class Run:
    """What one script run sent: its charts, its failures, the seed box's widget id."""

    def __init__(self) -> None:
        self.charts = 0
        self.failures: list[str] = []
        self.seed_id: str | None = None
        self.finished = False

    def delta(self, msg: ForwardMsg) -> None:
        if msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "vega_lite_chart":
            self.charts += 1
        elif kind == "exception":
            self.failures.append(f"exception element: {element.exception.message[:160]}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            self.failures.append(f"error element: {element.alert.body[:160]}")
        elif kind == "number_input" and element.number_input.label == SEED_LABEL:
            self.seed_id = element.number_input.id


class BrowserProtocolSession:
    """One student's WebSocket: the message cache and query string a browser keeps between runs."""

    def __init__(self, ws, info: PageInfo) -> None:
        self.ws, self.info = ws, info
        self.page_script_hash = ""
        self.query_string = ""
        self.cached: dict[str, bool] = {}  # hash of each large message held → was it a chart

    async def rerun(self, seed_widget: tuple[str, int] | None, timeout_s: float) -> Run:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_script_hash
        state.page_name = self.info.route
        state.cached_message_hashes.extend(sorted(self.cached))  # as a browser reports its message cache
        if seed_widget is not None:
            widget = state.widget_states.widgets.add()
            widget.id, widget.int_value = seed_widget
        await self.ws.send(msg.SerializeToString())
        return await self._collect(timeout_s)

    async def _collect(self, timeout_s: float) -> Run:
        deadline = time.monotonic() + timeout_s
        run = Run()
        while not run.finished:
            payload = await _recv(self.ws, deadline)
            self._receive(ForwardMsg.FromString(payload), run)
        return run

    def _receive(self, msg: ForwardMsg, run: Run) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self.cached[msg.hash] = msg.delta.new_element.WhichOneof("type") == "vega_lite_chart"
        if kind == "new_session":
            run.__init__()  # a new run began: what came before belonged to an earlier one
        elif kind == "navigation":  # the page this run resolved to: a browser reruns that page
            self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            run.delta(msg)
        elif kind == "ref_hash":
            run.charts += self.cached.get(msg.ref_hash, False)  # a reference stands for a message held
        elif kind == "page_not_found":
            run.failures.append("page_not_found")
        elif kind == "script_finished":
            if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                run.failures.append("the script failed to compile")
            run.finished = msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY or bool(run.failures)


def _stream(base: str, timeout_s: float):
    """The WebSocket a browser opens to the server at ``base`` (an ``async with`` context)."""
    return connect(f"ws://{urlsplit(base).netloc}{STREAM}", subprotocols=["streamlit"], max_size=None,
                   open_timeout=timeout_s)  # fmt: skip


async def _recv(ws, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no script_finished message in time")
    payload = await asyncio.wait_for(ws.recv(), left)
    if isinstance(payload, str):
        raise TypeError("the server sent a text frame; Streamlit speaks binary protobufs")
    return payload


def _problem(run: Run, info: PageInfo) -> str | None:
    if run.failures:
        return run.failures[0]
    if run.charts < info.min_charts:
        return f"{run.charts} charts, expected ≥ {info.min_charts}"
    return None


async def ws_session(base: str, info: PageInfo, result: SessionResult, seed: int, timeout_s: float) -> None:
    """Open the page as a browser's WebSocket would, then set the seed; fills ``result``. Never raises."""
    try:
        async with _stream(base, timeout_s) as ws:
            session = BrowserProtocolSession(ws, info)
            start = time.perf_counter()
            run = await session.rerun(None, timeout_s)
            result.open_s = time.perf_counter() - start
            if problem := _problem(run, info):
                result.problems.append(f"open: {problem}")
                return
            if run.seed_id is None:
                result.problems.append(f"open: no {SEED_LABEL!r} box in the run")
                return
            start = time.perf_counter()
            run = await session.rerun((run.seed_id, seed), timeout_s)
            result.interact_s = time.perf_counter() - start
            if problem := _problem(run, info):
                result.problems.append(f"interaction: {problem}")
    except Exception as err:  # noqa: BLE001 - a failed session is a result, not a crash
        result.problems.append(f"{type(err).__name__}: {str(err)[:200]}")


async def ws_view(base: str, info: PageInfo, query: dict[str, str], timeout_s: float) -> tuple[float, str | None]:
    """Open one view (``info``'s page with ``query`` in its URL) as a browser's WebSocket would.

    Returns the seconds to the run's ``script_finished`` and None, or the seconds spent and what
    went wrong: an exception element, a failed compile, an unknown page, a timeout. Never raises.
    """
    start = time.perf_counter()
    try:
        async with _stream(base, timeout_s) as ws:
            session = BrowserProtocolSession(ws, info)
            session.query_string = urlencode(query)  # the link a student opens
            start = time.perf_counter()
            run = await session.rerun(None, timeout_s)
            elapsed = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - a failed view is a result, not a crash
        return time.perf_counter() - start, f"{type(err).__name__}: {str(err)[:200]}"
    broken = [f for f in run.failures if not f.startswith("error element")]  # a preset may show a lesson in red
    return elapsed, broken[0] if broken else None
