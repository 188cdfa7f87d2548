"""When Batch-Size Sensitivity trains: on a click, on a shared link that asked for it, or when anyone already did.

Training a sweep takes seconds, so a control change never starts one by itself. A
result is shown when this session asked for exactly this configuration (the button,
or a link with ``run=1``), or when any session of this server already trained it: 30
students, one training. A control changed after the click clears the request, so the
link the page writes never asks for a configuration nobody trained.
"""

from __future__ import annotations

import threading

import streamlit as st

from ui.batch_size.state import STATE

__all__ = ["finished", "wants", "request", "mark_finished"]


class _Finished:
    """Configs whose training finished in this server process: their results are shown without a click."""

    def __init__(self) -> None:
        self._lock, self._done = threading.Lock(), set()

    def add(self, cfg: object) -> None:
        with self._lock:
            self._done.add(cfg)

    def __contains__(self, cfg: object) -> bool:
        with self._lock:
            return cfg in self._done

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


@st.cache_resource
def finished() -> _Finished:
    return _Finished()


def mark_finished(cfg: object) -> None:
    finished().add(cfg)


def _memo(flag: str) -> str:
    return f"{STATE.page}:requested:{flag}"  # not a control: the configuration this session asked for


def wants(cfg: object, flag: str) -> bool:
    """Whether to show (and if needed train) ``cfg``: asked for in this session, or already trained."""
    if STATE[flag] and _memo(flag) not in st.session_state:
        st.session_state[_memo(flag)] = cfg  # a shared link with the flag set asked for this view
    asked = bool(STATE[flag]) and st.session_state.get(_memo(flag)) == cfg
    if STATE[flag] and not asked:
        STATE[flag] = False  # a control changed since the click: wait for the next one
    return asked or cfg in finished()


def request(flag: str, cfg: object) -> None:
    """Button callback: train ``cfg`` (the flag round-trips through the URL, so a shared link trains too)."""
    STATE[flag] = True
    st.session_state[_memo(flag)] = cfg
