"""Load harness: a class of N students opening the same page at once, measured.

    python -m bench.load [--sessions 30] [--pages all|URL_PATH ...] [--mode agent|playwright|both]
                         [--timeout 900] [--quick]

For each page and mode it starts ``streamlit run app.py`` on 127.0.0.1 (a free port,
``tests.e2e.server.streamlit_server``) twice, each time fresh (cold):

1. **one session** alone: open the page at default settings, then one interaction;
2. **N sessions** at once (or spread over ``--ramp`` seconds), each doing the same.

It reports p50/p95 time to rendered (open, and after the interaction), the sessions
with an error, the server's CPU-seconds (process tree, from its first request to the
last answer) for both runs and their ratio, and the server's peak RSS sampled every
0.1 s. The client's own cost (Chromium, or the harness's HTTP threads) is reported
beside it, since on a 2-core box it competes with the server. With ``--warm`` the
teacher's session opens the page first in both runs, and the CPU per extra session is
counted after it, on cached results. See docs/load.md.

Everything is bounded: ``--timeout`` for the whole run (pages that do not fit are
reported as skipped; a watchdog kills what is left 60 s after it), ``--session-timeout``
per session. Every server is stopped by process group; browsers are closed.

Results go to stdout and, merged with what is there, into ``bench/results.json`` as
``load_<mode>_*`` entries (``--quick`` and ``--no-write`` leave the file alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.common import Result
from bench.load_drivers import SessionResult, agent_session, playwright_session, run_sessions
from bench.load_meter import Meter, drain
from bench.load_ws import ws_session
from tests.e2e.server import CHROMIUM_ARGS, chromium_path, streamlit_server
from ui.nav import PAGES, PageInfo

RESULTS = Path(__file__).with_name("results.json")
MODES = ("agent", "ws", "playwright")
# Issue 16: a class of 30 on this 2-core box; each extra student costs ≤ 50 ms of server CPU.
GOALS = {"sessions": 30, "p95_s": 5.0, "cpu_ratio": 1.5, "marginal_cpu_ms": 50.0, "peak_rss_mb": 700.0,
         "peak_pss_mb": 700.0}  # fmt: skip
QUICK_PAGE = "normalization-steps"
_SERVERS: set[int] = set()  # process groups to kill if the watchdog fires


# --- one batch: a fresh server and n sessions ----------------------------------------------------


@dataclass
class Batch:
    """n sessions on one fresh server."""

    page: str
    mode: str
    sessions: int
    results: list[SessionResult] = field(default_factory=list)
    server_cpu_s: float = 0.0
    server_peak_rss_mb: float = 0.0
    server_peak_pss_mb: float = 0.0
    client_cpu_s: float = 0.0
    client_peak_rss_mb: float = 0.0
    wall_s: float = 0.0
    server_pid: int = 0
    warmup: list[SessionResult] = field(default_factory=list)  # --warm: the teacher's session, not in the times
    server_cached_cpu_s: float | None = None  # --warm: server CPU after the teacher's session (results cached)
    tracebacks: int = 0
    log_tail: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(not r.ok for r in self.results) + (self.sessions - len(self.results))

    def times(self, which: str) -> list[float]:
        return [getattr(r, which) for r in self.results if getattr(r, which) is not None]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _server_args(mode: str, sessions: int, session_timeout: float, extra: list[str]) -> tuple[str, ...]:
    args = list(extra)
    if mode == "agent":  # the API is on in .streamlit/config.toml (Prepare this class); these are its limits
        args += ["--server.enableAgentApi", "true",
                 "--server.agentWaitTimeout", str(int(session_timeout)),
                 "--server.agentMaxSessions", str(sessions + 10)]  # fmt: skip
    return tuple(args)


async def _playwright_batch(base, info, seeds, delays, opts, budget_s) -> list[SessionResult]:
    """One headless Chromium; each session in its own browser context (its own cookies: a new session)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:

            def start(result: SessionResult, i: int):
                return playwright_session(browser, base, info, result, seeds[i], opts.session_timeout, opts.screenshots)

            return await run_sessions(start, len(seeds), delays, opts.session_timeout, budget_s)
        finally:
            await browser.close()


async def _agent_batch(base, info, seeds, delays, opts, budget_s) -> list[SessionResult]:
    """Each session in its own thread: a blocking HTTP client, so n requests are in flight at once."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=len(seeds))

    def start(result: SessionResult, i: int):
        return loop.run_in_executor(pool, agent_session, base, info, result, seeds[i], opts.session_timeout)

    try:  # 5 s more than each thread's own deadline, so a slow server is reported by the thread itself
        return await run_sessions(start, len(seeds), delays, opts.session_timeout + 5, budget_s)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a thread still waiting ends at its socket timeout


async def _ws_batch(base, info, seeds, delays, opts, budget_s) -> list[SessionResult]:
    """Each session is one WebSocket speaking the browser's protocol, all on this event loop."""

    def start(result: SessionResult, i: int):
        return ws_session(base, info, result, seeds[i], opts.session_timeout)

    return await run_sessions(start, len(seeds), delays, opts.session_timeout + 5, budget_s)


DRIVERS = {"agent": _agent_batch, "ws": _ws_batch, "playwright": _playwright_batch}


async def run_batch(info: PageInfo, mode: str, n: int, opts: argparse.Namespace, budget_s: float) -> Batch:
    """Start a fresh server, run n sessions against it, measure, stop it."""
    batch = Batch(info.url_path, mode, n)
    seeds = [1 + (i if opts.distinct_seeds else 0) for i in range(n)]
    delays = [opts.ramp * i / n for i in range(n)]
    started = time.perf_counter()
    with streamlit_server(_server_args(mode, n, opts.session_timeout, opts.server_arg)) as (base, proc):
        _SERVERS.add(proc.pid)
        batch.server_pid = proc.pid
        log = drain(proc)
        try:
            with Meter(proc.pid) as meter:
                server0, client0 = meter.cpu()
                drive = DRIVERS[mode]
                cached0 = None
                if opts.warm:  # the teacher's projector: one session first, before the 1 or the n students
                    batch.warmup = await drive(base, info, [seeds[0]], [0.0], opts, budget_s)
                    budget_s -= time.perf_counter() - started
                    await asyncio.sleep(0.3)
                    cached0, _ = meter.cpu()
                batch.results = await drive(base, info, seeds, delays, opts, budget_s)
                await asyncio.sleep(0.3)  # let the server finish answering and closing sessions
                server1, client1 = meter.cpu()
            batch.server_cpu_s, batch.client_cpu_s = server1 - server0, client1 - client0
            batch.server_cached_cpu_s = None if cached0 is None else server1 - cached0
            batch.server_peak_rss_mb = meter.server_peak_rss / 2**20
            batch.server_peak_pss_mb = meter.server_peak_pss / 2**20
            batch.client_peak_rss_mb = meter.client_peak_rss / 2**20
        finally:
            _SERVERS.discard(proc.pid)
    batch.wall_s = time.perf_counter() - started
    batch.tracebacks = sum("Traceback" in line for line in log)
    batch.log_tail += [line for line in log if line.strip()][-20:]
    return batch


# --- the whole run -------------------------------------------------------------------------------


@dataclass
class PageRun:
    """One page in one mode: the single-session baseline and the n-session batch."""

    info: PageInfo
    mode: str
    single: Batch | None = None
    many: Batch | None = None
    skipped: str | None = None

    def summary(self) -> dict:
        if self.skipped or self.many is None:
            return {"page": self.info.url_path, "skipped": self.skipped or "not run"}
        m, s = self.many, self.single
        row = {
            "page": self.info.url_path,
            "sessions": m.sessions,
            "errors": m.errors,
            "open_p50_s": percentile(m.times("open_s"), 50),
            "open_p95_s": percentile(m.times("open_s"), 95),
            "interact_p50_s": percentile(m.times("interact_s"), 50),
            "interact_p95_s": percentile(m.times("interact_s"), 95),
            "server_cpu_s": m.server_cpu_s,
            "server_peak_rss_mb": m.server_peak_rss_mb,
            "server_peak_pss_mb": m.server_peak_pss_mb,
            "client_cpu_s": m.client_cpu_s,
            "client_peak_rss_mb": m.client_peak_rss_mb,
            "server_tracebacks": m.tracebacks,
            "warmup_errors": sum(not r.ok for r in m.warmup) if m.warmup else None,
            "wall_s": m.wall_s,
            "first_errors": sorted({r.error for r in m.results if r.error})[:3],
        }
        if s is not None:
            row |= {
                "single_open_s": s.results[0].open_s if s.results else None,
                "single_interact_s": s.results[0].interact_s if s.results else None,
                "single_server_cpu_s": s.server_cpu_s,
                "single_server_peak_rss_mb": s.server_peak_rss_mb,
                "single_errors": s.errors,
                "cpu_ratio": m.server_cpu_s / s.server_cpu_s if s.server_cpu_s > 0 else None,
                "marginal_cpu_per_session_s": _marginal(m, s),
                "marginal_cpu_whole_window_s": (m.server_cpu_s - s.server_cpu_s) / max(m.sessions - 1, 1),
                "server_cached_cpu_s": m.server_cached_cpu_s,
                "single_server_cached_cpu_s": s.server_cached_cpu_s,
            }
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def _marginal(m: Batch, s: Batch) -> float:
    """Server CPU per extra session, (CPU of n − CPU of 1) / (n − 1).

    With ``--warm`` both runs start their CPU count after the teacher's session, so both
    measure students on cached results (the goal's definition) and the computation's own
    run-to-run variation (±0.3 s of CPU, ±10 ms per session over 29) drops out. Without it,
    both windows hold the computation once.
    """
    if m.server_cached_cpu_s is not None and s.server_cached_cpu_s is not None:
        return (m.server_cached_cpu_s - s.server_cached_cpu_s) / max(m.sessions - 1, 1)
    return (m.server_cpu_s - s.server_cpu_s) / max(m.sessions - 1, 1)


async def run_all(pages: list[PageInfo], modes: list[str], opts: argparse.Namespace) -> list[PageRun]:
    deadline = time.monotonic() + opts.timeout
    runs: list[PageRun] = []
    for mode in modes:
        for info in pages:
            run = PageRun(info, mode)
            runs.append(run)
            for n, slot in ((1, "single"), (opts.sessions, "many")):
                if slot == "single" and not opts.baseline:
                    continue
                left = deadline - time.monotonic()
                if left < 30:
                    run.skipped = f"overall --timeout {opts.timeout:.0f} s reached"
                    break
                print(f"# {mode:10} {info.url_path:22} {n:3} session(s) …", file=sys.stderr, flush=True)
                batch = await run_batch(info, mode, n, opts, budget_s=left - 15)
                setattr(run, slot, batch)
                for line in batch.log_tail if batch.errors or batch.tracebacks else ():
                    print(f"    server: {line}", file=sys.stderr)
    return runs


def results_for(runs: list[PageRun], opts: argparse.Namespace, run_info: dict) -> list[Result]:
    """Four goal entries per mode: the worst page for each goal, every page in ``detail``."""
    out = []
    for mode in sorted({r.mode for r in runs}):
        rows = [r.summary() for r in runs if r.mode == mode]
        done = [row for row in rows if "skipped" not in row]
        common = {"sessions": opts.sessions, "pages": rows, "run": run_info}

        def worst(key: str, rows: list[dict] = done) -> float:
            values = [row[key] for row in rows if row.get(key) is not None]
            return max(values) if values else float("nan")

        errors = sum(row["errors"] for row in done) + sum(1 for row in rows if "skipped" in row) * opts.sessions
        p95 = max(worst("open_p95_s"), worst("interact_p95_s"))
        out += [
            Result(f"load_{mode}_errors", errors, "sessions", goal=0, detail=common
                   | {"what": f"sessions (of {opts.sessions} per page) that failed to render or to interact; "
                              "a skipped page counts all its sessions"}),
            Result(f"load_{mode}_p95_s", p95, "s", goal=GOALS["p95_s"],
                   detail={"what": "worst page's p95 time to rendered, open or after the interaction"}),
            Result(f"load_{mode}_cpu_ratio", worst("cpu_ratio"), "ratio", goal=GOALS["cpu_ratio"],
                   detail={"what": f"server CPU-s, {opts.sessions} cold sessions / 1 cold session (worst page)"}),
            Result(f"load_{mode}_marginal_cpu_ms", 1e3 * worst("marginal_cpu_per_session_s"), "ms",
                   goal=GOALS["marginal_cpu_ms"],
                   detail={"what": f"server CPU per extra session: (CPU of {opts.sessions} − CPU of 1) / "
                                   f"{opts.sessions - 1}, open + one interaction (worst page); with --warm "
                                   "both counted after the teacher's session, on cached results"}),
            Result(f"load_{mode}_peak_pss_mb", worst("server_peak_pss_mb"), "MB", goal=GOALS["peak_pss_mb"],
                   detail={"what": "server process tree's peak PSS during the n-session run (worst page)"}),
            Result(f"load_{mode}_peak_rss_mb", worst("server_peak_rss_mb"), "MB", goal=GOALS["peak_rss_mb"],
                   detail={"what": "server process tree's peak RSS during the n-session run (worst page)",
                           "peak_pss_mb": worst("server_peak_pss_mb"),
                           "pss": "proportional set size: torch's shared libraries counted once across the "
                                  "server and its worker processes, closer to what a container's limit sees"}),
        ]  # fmt: skip
    return out


def merge_results(results: list[Result], path: Path = RESULTS) -> dict:
    """Replace only these entries in ``path``; keep every other result and key."""
    record = json.loads(path.read_text()) if path.exists() else {}
    record.setdefault("machine", {"python": platform.python_version(), "platform": platform.platform(),
                                  "cpu_count": os.cpu_count()})  # fmt: skip
    record["results"] = {**record.get("results", {}), **{r.name: r.as_dict() for r in results}}
    path.write_text(json.dumps(record, indent=2))
    return record


def _table(runs: list[PageRun]) -> str:
    head = (f"{'mode':10} {'page':22} {'n':>3} {'err':>3} {'open p50':>8} {'p95':>6} {'int p50':>7} {'p95':>6} "
            f"{'cpu 1':>6} {'cpu n':>6} {'ratio':>5} {'rss MB':>6} {'pss MB':>6} "
            f"{'client cpu':>10} {'client MB':>9} {'ms/extra':>8}")  # fmt: skip
    lines = [head]
    for run in runs:
        row = run.summary()
        if "skipped" in row:
            lines.append(f"{run.mode:10} {row['page']:22} skipped: {row['skipped']}")
            continue

        def f(key: str, fmt: str = "6.2f", row: dict = row, scale: float = 1.0) -> str:
            v = row.get(key)
            return format(scale * v, fmt) if isinstance(v, (int, float)) else "-".rjust(int(fmt.split(".")[0]))

        lines.append(
            f"{run.mode:10} {row['page']:22} {row['sessions']:3d} {row['errors']:3d} {f('open_p50_s', '8.2f')} "
            f"{f('open_p95_s')} {f('interact_p50_s', '7.2f')} {f('interact_p95_s')} {f('single_server_cpu_s')} "
            f"{f('server_cpu_s')} {f('cpu_ratio', '5.2f')} {f('server_peak_rss_mb', '6.0f')} "
            f"{f('server_peak_pss_mb', '6.0f')} "
            f"{f('client_cpu_s', '10.1f')} {f('client_peak_rss_mb', '9.0f')} "
            f"{f('marginal_cpu_per_session_s', '8.0f', scale=1000)}"
        )
        lines += [f"{'':14}error: {text}" for text in row["first_errors"]]
    return "\n".join(lines)


def _watchdog(seconds: float) -> threading.Timer:
    """Past the deadline plus grace: kill the servers' process groups and our own children, exit 124."""

    def fire() -> None:
        print(f"\nwatchdog: still running {seconds:.0f} s after start; stopping everything", file=sys.stderr)
        for pgid in list(_SERVERS):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
        os._exit(124)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--sessions", type=int, default=GOALS["sessions"], help="concurrent sessions per page")
    parser.add_argument("--pages", nargs="+", default=["all"], help="'all', or url paths from ui/nav.py")
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=[*MODES, "all"],
        default=None,
        help="one or more of agent, ws, playwright, or all (default: agent and ws; --quick: all)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--session-timeout", type=float, default=120, help="seconds per session")
    parser.add_argument("--ramp", type=float, default=0, help="spread the arrivals over this many seconds")
    parser.add_argument("--distinct-seeds", action="store_true", help="session i sets seed i+1 (no shared cache)")
    parser.add_argument("--warm", action="store_true",
                        help="one untimed session (the teacher's) before the 1 and the n; the per-session CPU "
                             "is counted after it")  # fmt: skip
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the 1-session run")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `streamlit run` argument")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server, e.g. BN_THREADS=2")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="playwright: save a screenshot of every failed session in this folder")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=f"5 sessions, {QUICK_PAGE} only; no results.json")
    parser.add_argument("--no-write", dest="write", action="store_false", help="leave bench/results.json alone")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.sessions, opts.pages, opts.write = 5, [QUICK_PAGE], False
    mode = opts.mode or (["all"] if opts.quick else ["agent", "ws"])
    opts.mode = list(MODES) if "all" in mode else mode
    return opts


def select_pages(names: list[str]) -> list[PageInfo]:
    if names == ["all"]:
        return list(PAGES)
    by_path = {p.url_path: p for p in PAGES}
    unknown = [n for n in names if n not in by_path]
    if unknown:
        raise SystemExit(f"unknown page(s) {unknown}; pages: {', '.join(by_path)}")
    return [by_path[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    pages = select_pages(opts.pages)
    modes = [m for m in MODES if m in opts.mode]
    for pair in opts.env:
        key, _, value = pair.partition("=")
        os.environ[key] = value  # streamlit_server passes os.environ to the server
    run_info = {
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "ramp_s": opts.ramp,
        "distinct_seeds": opts.distinct_seeds,
        "warm": opts.warm,
        "env": opts.env,
        "server_args": opts.server_arg,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    timer = _watchdog(opts.timeout + 60)
    started = time.perf_counter()
    try:
        runs = asyncio.run(run_all(pages, modes, opts))
    finally:
        timer.cancel()
    run_info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    run_info["wall_s"] = round(time.perf_counter() - started, 1)
    print(_table(runs))
    results = results_for(runs, opts, run_info)
    print(f"\n{'goal':28} {'value':>10} {'unit':9} {'goal':>6}  met")
    for r in results:
        print(f"{r.name:28} {r.value:10.4g} {r.unit:9} {'≤'}{r.goal:<5g}  {'yes' if r.met else 'NO'}")
    print(f"\nload average before {run_info['loadavg_before']}, after {run_info['loadavg_after']}; "
          f"{run_info['wall_s']} s", file=sys.stderr)  # fmt: skip
    if opts.write:
        merge_results(results)
        print(f"merged {len(results)} load_* results into {RESULTS}", file=sys.stderr)
    failed = any(row.get("errors") or "skipped" in row for run in runs for row in [run.summary()])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
