"""Widgets bound to a :class:`ui.state.PageState` field.

Bounds, choices and the session-state key come from the field, so the widget and
the URL clamp can never disagree. No helper passes ``value=``: the value lives in
the page's model and ``PageState.load`` seeds each widget from it (see ui/state.py
for the state rules). A widget drawn with ``key=ps.key(name)`` outside these helpers
is bound the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import streamlit as st

from ui import present
from ui.state import PageState


def slider(ps: PageState, name: str, label: str, *, step: float | None = None, where: Any = st, **kw: Any) -> Any:
    """A numeric slider over the field's [lo, hi]."""
    f, where = ps.spec(name), present.place(where)
    lo, hi = (int(f.lo), int(f.hi)) if f.kind == "int" else (float(f.lo), float(f.hi))
    if step is None:
        step = 1 if f.kind == "int" else (hi - lo) / 100
    return where.slider(label, min_value=lo, max_value=hi, step=step, key=ps.key(name), **kw)


def number(ps: PageState, name: str, label: str, *, step: float | None = None, where: Any = st, **kw: Any) -> Any:
    """A number box over the field's [lo, hi]."""
    f, where = ps.spec(name), present.place(where)
    if f.kind == "int":
        return where.number_input(label, int(f.lo), int(f.hi), step=int(step or 1), key=ps.key(name), **kw)
    return where.number_input(label, float(f.lo), float(f.hi), step=float(step or 0.1), key=ps.key(name), **kw)


def grid_slider(ps: PageState, name: str, label: str, *, fmt: str = "{:g}", where: Any = st, **kw: Any) -> Any:
    """A select-slider over the field's numeric grid (e.g. a log scale for ε)."""
    f, where = ps.spec(name), present.place(where)
    return where.select_slider(label, options=list(f.choices), format_func=fmt.format, key=ps.key(name), **kw)


def choice(
    ps: PageState,
    name: str,
    label: str,
    *,
    style: str = "select",
    fmt: Callable[[Any], str] = str,
    options: Sequence[Any] | None = None,
    where: Any = st,
    **kw: Any,
) -> Any:
    """A choice among the field's values (or ``options``, when they depend on other controls; the
    page's ``on_load`` keeps the value among them): ``style`` is "select", "radio" or "segmented"."""
    options, where = list(ps.spec(name).choices if options is None else options), present.place(where)
    if style == "radio":
        return where.radio(label, options, format_func=fmt, key=ps.key(name), horizontal=True, **kw)
    if style == "segmented":
        return where.segmented_control(label, options, format_func=fmt, key=ps.key(name), required=True, **kw)
    return where.selectbox(label, options, format_func=fmt, key=ps.key(name), **kw)


def multiselect(
    ps: PageState, name: str, label: str, options: Sequence[Any], *, where: Any = st, **kw: Any
) -> list[Any]:
    """Several of ``options`` (a "floats"-kind field holds the list)."""
    return present.place(where).multiselect(label, list(options), key=ps.key(name), **kw)


def toggle(ps: PageState, name: str, label: str, *, where: Any = st, **kw: Any) -> bool:
    return present.place(where).toggle(label, key=ps.key(name), **kw)


def preset_picker(ps: PageState, label: str = "Preset", *, where: Any = st) -> str:
    """The preset selectbox: picking one sets every control it names."""
    return present.place(where).selectbox(
        label,
        list(ps.spec("preset").choices),
        key=ps.key("preset"),
        on_change=ps.apply_preset,
        help="A preset sets the controls below; you can change any of them afterwards.",
    )


@contextlib.contextmanager
def lazy_expander(label: str, key: str, **kwargs: Any) -> Iterator[bool]:
    """An expander whose content is built only while it is open: ``with lazy_expander(...) as shown:``.

    Opening it reruns the page (``on_change="rerun"``), which then draws the content. A closed
    one costs the server one element per rerun instead of every widget inside it, on every rerun
    of every student's session (docs/performance.md).

    Only for content without page-state controls (the Live class panel): a browser that sees a
    control appear again inside a reopened expander sends back the value that control was first
    drawn with, which would undo the user's change (seen in Chromium). Lazy tabs do not do that
    (tests/e2e/test_state_recovery.py).
    """
    box = st.expander(label, key=key, on_change="rerun", **kwargs)
    with box:
        yield box.open is not False
