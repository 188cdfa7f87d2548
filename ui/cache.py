"""``cached``: ``st.cache_data`` persisted to disk, with the process's own memo in front.

Every page reads its results from ``st.cache_data`` on every rerun of every session. A hit
there still hashes the arguments and unpickles the stored value (a copy per caller), which
was a sixth of a chart-heavy page's server CPU per session under 30 sessions (py-spy,
docs/performance.md). The memo in front keeps the last few results of each function as
Python objects, keyed by the arguments themselves (frozen dataclasses and plain values,
which are hashable), so a hit costs one dict look-up.

The rules that make sharing one object between sessions safe:

* results are read, never changed, by the code that draws them (chart specs are copied
  by Streamlit before it takes their datasets out; tables are copied by ``assign``);
* underscore arguments (``_progress``) are not part of the key, as in ``st.cache_data``;
* an argument that is not hashable skips the memo and goes to ``st.cache_data``;
* ``clear()`` empties every memo and ``st.cache_data`` (tests that recompute from a link
  call it); on disk, ``ui.prepare.drop_stale_disk_cache`` still drops results of older code.

One session at a time reads or computes a given result. Streamlit reads a result without
its per-result lock first: a session whose memory look-up missed an instant before another
session stored the result then finds the file that session has just opened for writing, still
empty, and Streamlit logs "Read zero byte file" with a traceback and raises ``CacheError``
(seen under 5 and under 30 fresh sessions). So the first call of each key holds that key's lock
around ``st.cache_data``, and the sessions that wait for it find the result in the memo. They wait
through Streamlit's own ``_hold_compute_lock``, so a waiting run still stops or reruns when its
user moves on, as it does on Streamlit's lock. A waiting run that was given a ``_progress``
callback shows the computing run's progress reports as they come, so a class opening a cold
page sees one real bar move on every screen; one without a callback shows the function's
``show_spinner`` text, as the computing run does. Different keys never wait for each other.

A stored result that still cannot be read (a file cut short by a crash) is never a student's
problem: the read is tried again, and if the stored results stay unreadable that function's
stored results are dropped and the result computed anew. Nor is a result that cannot be written
to the disk (a full disk): Streamlit keeps it in memory first and then raises, so the call is
made once more and reads it from memory, and only the copy that would outlive a restart is lost.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st
from streamlit.runtime.caching import cache_utils
from streamlit.runtime.caching.cache_errors import CacheError
from streamlit.runtime.caching.cache_utils import _hold_compute_lock  # Streamlit's own wait (pinned)
from streamlit.runtime.caching.storage.cache_storage_protocol import CacheStorageError
from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

from bn_core.progress import Progress, no_progress

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("batchnorm_lab")
FOLLOW_POLL_S = 0.25  # a waiting run's look at the computing run's progress: 4 a second (10 cost CPU under 30)
ESTIMATE_AFTER_S = 1.0  # a progress bar adds the time left once a computation has run this long
ESTIMATE_WINDOW_S = 1.0  # … at the pace of about its last this many seconds
MEMO_ENTRIES = 8  # per function: the views a class is looking at; st.cache_data keeps more, on disk
_MEMOS: list[_Memo] = []


class _Memo:
    """A small thread-safe LRU of one function's results."""

    def __init__(self, size: int) -> None:
        self.size, self.lock, self.items = size, threading.Lock(), OrderedDict()

    def get(self, key: Any) -> tuple[bool, Any]:
        with self.lock:
            if key not in self.items:
                return False, None
            self.items.move_to_end(key)
            return True, self.items[key]

    def clear(self) -> None:
        with self.lock:
            self.items.clear()

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class _Entry:
    """A key's lock, how many runs hold or wait for it, and the computing run's last progress report."""

    def __init__(self) -> None:
        self.lock, self.users = threading.Lock(), 0
        self.progress: tuple[float, str] | None = None  # (fraction, message), as the computing run's bar shows it


class _KeyLocks:
    """One lock per key while someone holds or waits for it; forgotten when the last one lets go."""

    def __init__(self) -> None:
        self.lock, self.held = threading.Lock(), {}

    @contextmanager
    def hold(self, key: Any, progress: Progress | None = None, spinner: str | None = None) -> Iterator[_Entry]:
        """Hold ``key``'s lock. A run that waits for another run's result and has a ``progress``
        callback is shown that run's progress while it waits, so 29 students watching the first one
        compute see a moving bar, not one stuck at 0; without one, the function's spinner text, as
        the computing run shows it."""
        with self.lock:
            entry = self.held.setdefault(key, _Entry())
            entry.users += 1
        try:
            if progress is not None:
                _follow(entry, progress)
            elif spinner and entry.lock.locked() and not in_cached_function.get():
                with st.spinner(spinner):
                    _follow(entry, no_progress)  # nothing to show but the spinner
            with _hold_compute_lock(entry.lock):  # a waiting run still stops or reruns when asked
                yield entry
        finally:
            with self.lock:
                entry.users -= 1
                if not entry.users:
                    del self.held[key]


def _follow(entry: _Entry, progress: Progress) -> None:
    """While another run holds ``entry``, show its progress; stop or rerun when Streamlit asks."""
    check = None if in_cached_function.get() else cache_utils.get_run_yield_check()
    shown = None
    while entry.lock.locked():
        if entry.progress is not None and entry.progress != shown:
            shown = entry.progress
            progress(*shown)
        if check is not None:
            check()
        time.sleep(FOLLOW_POLL_S)


def time_left(elapsed_s: float, fraction: float, since: float = 0.0) -> str:
    """ "about N s left": the rest, ``1 − fraction``, at the pace of the last ``elapsed_s`` (in which the
    computation went from ``since`` to ``fraction``); "" while too early to say (under
    ``ESTIMATE_AFTER_S``, or under 5 % done in it) and once done."""
    if elapsed_s < ESTIMATE_AFTER_S or fraction >= 1.0 or fraction - since < 0.05:
        return ""
    return f"about {max(1, round(elapsed_s * (1.0 - fraction) / (fraction - since)))} s left"


def _reporting(kwargs: dict, entry: _Entry) -> dict:
    """``kwargs`` whose ``_progress`` adds an estimate of the time left to each report and records it
    on ``entry`` for the runs waiting on it, so every screen shows the computing run's estimate.

    The pace is that of the last ``ESTIMATE_WINDOW_S``: a run's start-up, and the other sessions
    that opened the page with it, slow its first second or two (on the deep preset, 6.5 ms a step
    while a second browser loaded the page, then 2.1), and a pace since the start kept the
    estimate near twice the time really left."""
    own = kwargs.get("_progress")
    if own is None:
        return kwargs
    reports: deque[tuple[float, float]] = deque()  # (time, fraction), the last window's

    def report(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        reports.append((now, fraction))
        while len(reports) > 2 and now - reports[1][0] >= ESTIMATE_WINDOW_S:
            reports.popleft()
        then, since = reports[0]
        estimate = time_left(now - then, fraction, since)
        text = f"{message} · {estimate}" if estimate and message else message or estimate
        entry.progress = (fraction, text)
        own(fraction, text)

    return {**kwargs, "_progress": report}


def _through_cache(data_fn: Any, args: tuple, kwargs: dict) -> Any:
    """``data_fn(*args, **kwargs)``, read again when the stored result was unreadable or could not be
    written to the disk (see the module notes)."""
    try:
        return data_fn(*args, **kwargs)
    except CacheStorageError:  # Streamlit keeps a result in memory before it writes it to the disk
        log.warning("a result of %s could not be written to the disk; it is kept in memory", data_fn.__name__)
    except CacheError:
        log.warning("a stored result of %s could not be read; reading it again", data_fn.__name__)
    try:
        return data_fn(*args, **kwargs)  # from memory; or it raced a write of the same result, whole now
    except CacheError:
        log.warning("the stored results of %s stay unreadable; dropping them", data_fn.__name__)
        data_fn.clear()
        return data_fn(*args, **kwargs)


def cached(max_entries: int, show_spinner: bool | str = False) -> Callable[[F], F]:
    """``@st.cache_data(persist="disk", max_entries=..., show_spinner=...)`` behind a per-process memo."""

    def decorate(fn: F) -> F:
        data_fn = st.cache_data(persist="disk", max_entries=max_entries, show_spinner=show_spinner)(fn)
        memo, key_locks = _Memo(min(max_entries, MEMO_ENTRIES)), _KeyLocks()
        spinner = show_spinner if isinstance(show_spinner, str) else None  # for runs that wait on another
        _MEMOS.append(memo)

        def key_of(args: tuple, kwargs: dict) -> tuple:
            return args, tuple(sorted((k, v) for k, v in kwargs.items() if not k.startswith("_")))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = key_of(args, kwargs)
            try:
                found, value = memo.get(key)
            except TypeError:  # an unhashable argument: st.cache_data hashes it by value
                with key_locks.hold(None):  # no page passes one; such calls take turns
                    return _through_cache(data_fn, args, kwargs)
            if found:
                return value
            with key_locks.hold(key, kwargs.get("_progress"), spinner) as entry:
                found, value = memo.get(key)  # the session this one waited for stored it
                if not found:
                    value = _through_cache(data_fn, args, _reporting(kwargs, entry))
                    memo.put(key, value)
            return value

        def peek(*args: Any, **kwargs: Any) -> tuple[bool, Any]:
            """``(True, result)`` when the memo holds this call's result, else ``(False, None)``; computes nothing."""
            try:
                return memo.get(key_of(args, kwargs))
            except TypeError:
                return False, None

        def clear_one() -> None:
            memo.clear()
            data_fn.clear()

        wrapper.clear = clear_one  # type: ignore[attr-defined]
        wrapper.peek = peek  # type: ignore[attr-defined]
        wrapper.__memo_of__ = data_fn  # type: ignore[attr-defined]  # the st.cache_data function behind it
        return wrapper  # type: ignore[return-value]

    return decorate


def clear() -> None:
    """Forget every result: every memo of this process, and ``st.cache_data`` in memory and on disk."""
    for memo in _MEMOS:
        memo.clear()
    st.cache_data.clear()
