"""Prepare this class: compute every preset of every page for one global seed, in the background.

The job opens each page once per preset (and once at its defaults) as a headless session
through Streamlit's agent API (``POST /_stcore/agent/interact``, on in .streamlit/config.toml),
on this same server. That runs exactly the code a student's browser runs, so it fills exactly
the caches a student will hit. The cached functions persist to disk (``persist="disk"``), so a
server restart does not lose the work. The job belongs to the server, not to the teacher's
session: navigating away, or closing the tab, does not stop it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from ui.nav import PAGES, PageInfo

AGENT_ROUTE = "/_stcore/agent/interact"
ROOT = Path(__file__).resolve().parents[1]
CODE_STAMP = ".batchnorm_lab_code"  # beside Streamlit's disk cache: the code its entries were computed by
VIEW_TIMEOUT_S = 600  # one preset's first view; the slowest measured is well under a minute


@dataclass
class PageProgress:
    title: str
    total: int
    done: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One seed's preparation: per-page progress, filled in by the job's thread."""

    seed: int
    pages: list[PageProgress]
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def fraction(self) -> float:
        total = sum(p.total for p in self.pages)
        return sum(p.done for p in self.pages) / total if total else 1.0


def views(info: PageInfo) -> list[str | None]:
    """A page's views to prepare: its defaults (None) and each of its presets."""
    try:
        state = importlib.import_module(f"ui.{Path(info.path).stem}").STATE
    except (ModuleNotFoundError, AttributeError):
        return [None]  # a page without controls
    return [None, *state.presets]


def agent_post(base: str, body: dict, timeout_s: float) -> tuple[int, dict]:
    """One ``POST /_stcore/agent/interact``: the HTTP status and the JSON reply (also for an error status)."""
    request = urllib.request.Request(
        base + AGENT_ROUTE, json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def agent_interact(base: str, body: dict, deadline: float) -> dict:
    """One interaction, waited for until ``deadline`` (monotonic): a ``202`` (still running) is collected
    by sending its session id again. Raises ``RuntimeError`` for any answer but ``200``."""
    status, reply = agent_post(base, body, max(1.0, deadline - time.monotonic()))
    while status == 202 and time.monotonic() < deadline:
        status, reply = agent_post(base, {"session_id": reply["session_id"]}, max(1.0, deadline - time.monotonic()))
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {reply.get('error', {}).get('code', reply)}")
    return reply


def open_view(base: str, info: PageInfo, seed: int, preset: str | None) -> str | None:
    """Open one view as a headless session; None when it rendered, else why not."""
    query = {"seed": [str(seed)], **({"preset": [preset]} if preset else {})}
    body = {"query_params": query, **({"page": info.route} if info.route else {})}
    try:
        reply = agent_interact(base, body, time.monotonic() + VIEW_TIMEOUT_S)
    except (OSError, RuntimeError, ValueError) as err:
        return f"{type(err).__name__}: {str(err)[:120]}"
    return None if reply.get("status") == "ready" else f"status {reply.get('status')!r}"


def run_job(base: str, job: Job) -> None:
    """Every view of every page, in lesson order; progress goes into ``job``."""
    for info, progress in zip(PAGES[1:], job.pages, strict=True):
        for preset in views(info):
            problem = open_view(base, info, job.seed, preset)
            if problem:
                progress.failed.append(f"{preset or 'defaults'}: {problem}")
            progress.done += 1
    job.finished = time.monotonic()


def code_version() -> str:
    """A digest of every source file whose code can change a cached result (bn_core and ui)."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("bn_core/**/*.py"), *ROOT.glob("ui/**/*.py")]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def drop_stale_disk_cache(cache_dir: Path) -> bool:
    """Clear the persisted results when they were computed by other code; True when it cleared.

    ``st.cache_data`` keys a result by its wrapper's own code and arguments, not by the bn_core
    code underneath, so results persisted by an older version must not outlive it.
    """
    stamp, version = cache_dir / CODE_STAMP, code_version()
    if stamp.exists() and stamp.read_text() == version:
        return False
    st.cache_data.clear()
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(version)
    return True


@st.cache_resource
def _jobs() -> dict[int, Job]:
    """The server's preparation jobs, one per seed."""
    return {}


def _self_url() -> str:
    port = st.get_option("server.port")
    base_path = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"http://127.0.0.1:{port}" + (f"/{base_path}" if base_path else "")


def start(seed: int) -> Job:
    """Start (or return the running) preparation for ``seed``."""
    jobs = _jobs()
    if seed in jobs and (jobs[seed].finished is None or not any(p.failed for p in jobs[seed].pages)):
        return jobs[seed]
    job = Job(seed, [PageProgress(info.title, len(views(info))) for info in PAGES[1:]])
    jobs[seed] = job
    threading.Thread(target=run_job, args=(_self_url(), job), daemon=True, name=f"prepare-{seed}").start()
    return job


def render_panel(seed: int) -> None:
    """The Welcome page's "Prepare this class" box: the button, then live progress per page."""
    st.markdown(
        f"Before class, compute every preset of every page for the global seed **{seed}**, so that no student "
        "waits for a first view. It runs on the server: you can keep using the app, or close this tab."
    )
    if st.button("Prepare this class", icon=":material/rocket_launch:", key="__prepare:start"):
        start(seed)
    _progress(seed)


@st.fragment(run_every=2)
def _progress(seed: int) -> None:
    job = _jobs().get(seed)
    if job is None:
        return
    for page in job.pages:
        label = f"{page.title}: {page.done} of {page.total} views"
        st.progress(page.done / page.total, text=label + (f" ({len(page.failed)} failed)" if page.failed else ""))
        for failure in page.failed:
            st.warning(f"{page.title}, {failure}", icon=":material/warning:")
    elapsed = (job.finished or time.monotonic()) - job.started
    if job.finished is not None:
        st.success(f"Prepared in {elapsed:.0f} s: every view above is cached for seed {seed}.", icon=":material/done:")
    elif job.fraction > 0:
        left = elapsed / job.fraction * (1 - job.fraction)
        st.caption(f"{elapsed:.0f} s so far, about {left:.0f} s left.")
